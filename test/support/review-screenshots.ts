import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { listLogFiles } from '../../src/decisionlog/files.js';
import { ReviewServer } from '../../src/review/server.js';
import { VerifyWatch } from '../../src/review/verify-watch.js';
import { cleanupTempDirs, openSink, tempDir } from '../unit/decisionlog/helpers.js';
import { writeReviewLog } from '../unit/review/fixture.js';
import { chainVerdict, launchChromium, openPage, tamperWithRecord, waitForBroken } from './review-browser.js';

/**
 * `make review-screenshots`: draws the PNGs docs/review.md shows, from the same sample log the
 * browser test uses. On demand only; the tests never write into docs/.
 */
async function main(outDir: string): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  const dir = join(tempDir('tg-review-shots-'), 'decisions');
  const sink = openSink(dir, { checkpointEvery: 10 });
  writeReviewLog(sink, 120);
  await sink.close();
  const files = () => listLogFiles(dir);
  const server = await ReviewServer.start({ host: '127.0.0.1', port: 0, files, verify: new VerifyWatch({ dir, files, flags: [], everyMs: 200 }), password: null, refreshMs: 0 });
  const chromium = await launchChromium();
  try {
    const { page } = await openPage(chromium, 1360, 1000);
    const shot = async (name: string): Promise<void> => {
      await page.screenshot({ path: join(outDir, name) as `${string}.png` });
      process.stdout.write(`wrote ${join(outDir, name)}\n`);
    };
    await page.goto(server.url, { waitUntil: 'networkidle0' });
    await chainVerdict(page);
    await shot('overview.png');

    await page.goto(`${server.url}?team=growth&decision=deny`, { waitUntil: 'networkidle0' });
    await chainVerdict(page);
    await shot('filtered.png');

    await page.goto(`${server.url}?sub=billing-ops-user-3`, { waitUntil: 'networkidle0' });
    await page.click('#timeline tbody tr[data-row="10"]');
    await page.waitForSelector('#detail:not([hidden]) dl');
    const detail = await page.$('#detail');
    await detail!.screenshot({ path: join(outDir, 'detail.png') as `${string}.png` });
    process.stdout.write(`wrote ${join(outDir, 'detail.png')}\n`);

    // A reviewer's nightmare: someone edited record 33 after the fact.
    tamperWithRecord(dir, '000000000033');
    await waitForBroken(page, server.url);
    await page.setViewport({ width: 1360, height: 420 });
    await shot('tampered.png');
  } finally {
    await chromium.close();
    await server.close();
    cleanupTempDirs();
  }
}

main(resolve(process.argv[2] ?? 'docs/review')).then(() => process.exit(0), (e: Error) => { process.stderr.write(`${e.stack ?? e.message}\n`); process.exit(1); });
