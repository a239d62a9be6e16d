import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

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
