import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { ReviewServer } from '../../../src/review/server.js';
import { VerifyWatch } from '../../../src/review/verify-watch.js';
import { chainVerdict, launchChromium, openPage, tamperWithRecord, text, waitForBroken, type Chromium } from '../../support/review-browser.js';
import { cleanupTempDirs, openSink, tempDir } from '../../unit/decisionlog/helpers.js';
import { HOSTILE_TOOL, writeReviewLog } from '../../unit/review/fixture.js';

/** Issue 16: the review page in a real browser (Debian's chromium, headless). */
describe('tollgate review in headless chromium (issue 16)', function () {
  this.timeout(120_000);
  let dir: string;
  let server: ReviewServer;
  let chromium: Chromium;

  before(async () => {
    dir = join(tempDir('tg-review-ui-'), 'decisions');
    const sink = openSink(dir, { checkpointEvery: 10 });
    writeReviewLog(sink, 60);
    await sink.close();
    const files = () => listLogFiles(dir);
    server = await ReviewServer.start({ host: '127.0.0.1', port: 0, files, verify: new VerifyWatch({ dir, files, flags: [], everyMs: 200 }), password: null, refreshMs: 0 });
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
    await server?.close();
    cleanupTempDirs();
  });

  const rowsOf = (page: Page): Promise<string[][]> =>
    page.evaluate("Array.from(document.querySelectorAll('#timeline tbody tr')).map((tr) => Array.from(tr.children).map((td) => td.textContent))") as Promise<string[][]>;

  it('loads: the timeline, the counts, the charts and an intact chain, with no script error or CSP violation', async () => {
    const { page, problems } = await openPage(chromium);
    await page.goto(server.url, { waitUntil: 'networkidle0' });
    assert.equal(await page.title(), 'Tollgate review');
    await page.waitForSelector('#timeline tbody tr');
    const rows = await rowsOf(page);
    assert.equal(rows.length, 50, 'one page of 50');
    assert.equal(rows[0]![0], '2025-03-09 01:00:00Z', 'newest first');
    assert.equal(await page.$eval('#more', (e) => e.hasAttribute('hidden')), false);
    assert.match(await text(page, '#counts'), /^60 matching decisions: 50 allowed, 10 denied/);
    assert.match(await chainVerdict(page), /INTACT: 110 records \(seq 1\.\.110\), 11 of 11 checkpoint signatures valid/);
    // Charts are SVG images the browser decoded (a broken SVG has no natural width).
    await page.waitForFunction("document.querySelectorAll('#charts img, #burn img').length >= 5 && Array.from(document.querySelectorAll('#charts img, #burn img')).every((i) => i.complete && i.naturalWidth > 0)");
    // "Older records" fetches the next page by cursor.
    await page.click('#more');
    await page.waitForFunction("document.querySelectorAll('#timeline tbody tr').length === 60");
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('shows caller data as text: a tool named like markup stays inert', async () => {
    const { page, problems } = await openPage(chromium);
    await page.goto(`${server.url}?tool=${encodeURIComponent(HOSTILE_TOOL)}`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#timeline tbody tr');
    const rows = await rowsOf(page);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]![6], HOSTILE_TOOL);
    assert.equal(await page.title(), 'Tollgate review', 'the onerror handler never ran');
    assert.equal(await page.evaluate("document.querySelectorAll('img[src=x]').length"), 0);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('filters: the form narrows the timeline, the counts and the URL', async () => {
    const { page } = await openPage(chromium);
    await page.goto(server.url, { waitUntil: 'networkidle0' });
    await page.type('input[name=team]', 'growth');
    await page.select('select[name=decision]', 'deny');
    await page.type('input[name=revision]', 'rev-2');
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#filters button[type=submit]')]);
    assert.equal(new URL(page.url()).search, '?team=growth&revision=rev-2&decision=deny');
    const rows = await rowsOf(page);
    assert.deepEqual(rows.map((r) => r[0]), ['2025-03-09 00:58:00Z', '2025-03-09 00:52:00Z', '2025-03-09 00:46:00Z', '2025-03-09 00:40:00Z', '2025-03-09 00:34:00Z']);
    assert.ok(rows.every((r) => r[1] === 'deny' && r[3] === 'growth' && r[7] === 'rev-2'));
    assert.match(await text(page, '#counts'), /^5 matching decisions: 0 allowed, 5 denied/);
    assert.equal(await page.$eval('input[name=team]', (e) => (e as unknown as { value: string }).value), 'growth', 'the form shows the filters in force');
    await page.close();
  });

  it('opens a record: masked input, reasons, delegation chain, revision, tokens and the accounting record', async () => {
    const { page } = await openPage(chromium);
    await page.goto(`${server.url}?sub=billing-ops-user-3`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('#timeline tbody tr');
    // Record 11 (billing-ops-user-3, delegated through the gateway) is row 10.
    const target = await page.$('#timeline tbody tr[data-row="10"]');
    assert.ok(target, 'row 11 is listed');
    await target.click();
    await page.waitForSelector('#detail:not([hidden]) dl');
    const d = await text(page, '#detail');
    assert.match(d, /Decision 00000000-0000-4000-8000-000000000011/);
    assert.match(d, /Where\s+decisions-000001\.jsonl:\d+ \(seq \d+\)/);
    assert.match(d, /Delegation chain\s+\[\s+\{\s+"act": "call_tool",\s+"sub": "gateway"/);
    assert.match(d, /Policy revision\s+rev-1/);
    assert.match(d, /Tokens\s+in 23, out 211/);
    assert.match(d, /"password": "\[masked\]"/);
    assert.match(d, /Masked paths\s+input\.mcp\.arguments\.password/);
    assert.match(d, /Accounting record\s+\{\s+"place": "decisions-000001\.jsonl:\d+"/);
    assert.match(d, /Chain\s+in an intact chain/);
    await page.close();
  });

  it('shows a tampered log as broken, at the file and line of the edit', async () => {
    const at = tamperWithRecord(dir, '000000000033');
    const { page } = await openPage(chromium);
    const verdict = await waitForBroken(page, server.url);
    assert.match(verdict, new RegExp(`BROKEN at ${at.file}:${at.line}: `));
    assert.match(verdict, new RegExp(`\nERROR edited at ${at.file}:${at.line}: record seq \\d+ at ${at.file}:${at.line} was altered`));
    assert.equal(await page.$eval('#chain', (e) => e.className), 'chain broken');
    await page.close();
  });
});
