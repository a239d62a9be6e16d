import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

describe('LICENSE', () => {
  it('is the Apache License 2.0 that package.json and the Helm chart declare, unmodified', () => {
    const text = readFileSync('LICENSE', 'utf8');
    assert.match(text, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(text, /END OF TERMS AND CONDITIONS/);
    // The digest of the canonical text (as Debian ships it in /usr/share/common-licenses/Apache-2.0).
    assert.equal(createHash('md5').update(text).digest('hex'), '3b83ef96387f14655fc854ddc3c6bd57');
    assert.equal((JSON.parse(readFileSync('package.json', 'utf8')) as { license: string }).license, 'Apache-2.0');
    assert.equal((parse(readFileSync('manifests/helm/tollgate/Chart.yaml', 'utf8')) as { annotations: Record<string, string> }).annotations['artifacthub.io/license'], 'Apache-2.0');
  });
});
