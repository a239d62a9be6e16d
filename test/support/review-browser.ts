import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { canonicalize } from '../../src/decisionlog/canonical.js';
import { listLogFiles } from '../../src/decisionlog/files.js';
import { fileLines, writeLines } from '../unit/decisionlog/helpers.js';

/**
 * Headless Debian chromium for the review page's tests and screenshots, driven over the DevTools
 * protocol by puppeteer-core (which downloads no browser). `make chromium` installs it.
 */

export function chromiumPath(): string {
  const p = process.env.TOLLGATE_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(p)) throw new Error(`no chromium at ${p}: run \`make chromium\` (Debian's chromium package), or set TOLLGATE_CHROMIUM`);
  return p;
}

export interface Chromium {
  browser: Browser;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Chromium> {
  const profile = mkdtempSync(join(tmpdir(), 'tg-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    userDataDir: profile,
    // Root in CI has no user namespace sandbox to give chromium; the page is our own, on loopback.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'],
    timeout: 60_000,
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A page that records what the browser complained about (CSP violations, script errors). */
export async function openPage(c: Chromium, width = 1360, height = 900): Promise<{ page: Page; problems: string[] }> {
  const page = await c.browser.newPage();
  await page.setViewport({ width, height });
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  return { page, problems };
}

/** Waits until the chain box shows a finished verification; returns its text. */
export async function chainVerdict(page: Page): Promise<string> {
  await page.waitForFunction("/^(INTACT|BROKEN|verification could not run)/.test(document.getElementById('chain-status').textContent)", { timeout: 60_000 });
  return text(page, '#chain');
}

/**
 * The rendered text of an element. Browser-side code is passed as strings: the project compiles
 * without the DOM library, so nothing in src/ can reach for browser globals by mistake.
 */
export async function text(page: Page, selector: string): Promise<string> {
  return page.evaluate(`document.querySelector(${JSON.stringify(selector)}).innerText`) as Promise<string>;
}

/** Edits a decision's subject in place after the fact (re-serialised, so only the hash chain can tell); returns where. */
export function tamperWithRecord(dir: string, idSuffix: string): { file: string; line: number } {
  const f = listLogFiles(dir)[0]!;
  const lines = fileLines(f.path);
  const i = lines.findIndex((l) => l.includes(idSuffix));
  const rec = JSON.parse(lines[i]!) as { identity: { sub: string } };
  rec.identity.sub = 'someone-else';
  lines[i] = canonicalize(rec);
  writeLines(f.path, lines);
  return { file: f.name, line: i + 1 };
}

/** Reloads the page until the chain box reports the break (the watcher verifies again on change); returns its text. */
export async function waitForBroken(page: Page, url: string): Promise<string> {
  for (let n = 0; n < 40; n++) {
    await page.goto(url, { waitUntil: 'networkidle0' });
    if (/BROKEN/.test(await chainVerdict(page))) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return chainVerdict(page);
}
