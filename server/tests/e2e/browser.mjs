// What every browser script here shares: Debian's headless chromium as a phone,
// driven by playwright-core; the checks every page must pass; screenshots.

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
};

// Opens chromium on a fresh profile; `shots` is where screenshots go (or null) and
// `only` the names to take (or null: all); `hostRules`, chromium's
// --host-resolver-rules (or null): a name of the test's choosing sent to loopback.
export async function openPhone({ shots = null, only = null, hostRules = null } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'deviceflow-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(hostRules ? [`--host-resolver-rules=${hostRules}`] : []),
    ],
    // A phone: 390 x 844 CSS pixels (iPhone 12-15), touch, 2x pixels for legible shots.
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'en-US',
    colorScheme: 'light',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems = [];
  // Console errors, except Chromium's note on a page answered 4xx on purpose (the error
  // pages) and, at a plain http name (hostRules), its note that it ignores
  // Cross-Origin-Opener-Policy there; and any request besides the page itself: the
  // pages load nothing else.
  const expected = [
    /^Failed to load resource: the server responded with a status of 4\d\d/,
    ...(hostRules ? [/^The Cross-Origin-Opener-Policy header has been ignored, because the URL's origin was untrustworthy/] : []),
  ];
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.some((e) => e.test(m.text()))) {
      problems.push(`console: ${m.text()}`);
    }
  });
  page.on('request', (r) => {
    if (r.resourceType() !== 'document') problems.push(`unexpected request: ${r.resourceType()} ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const visited = [];

  async function shot(name) {
    if (!shots || (only && !only.includes(name))) return;
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  }

  // What every page must be: one h1, no sideways scrolling on a phone, every input
  // labelled, nothing the CSP refused.
  async function looksRight(name, heading) {
    const h1 = page.locator('h1');
    check((await h1.count()) === 1, `${name}: one h1`);
    const text = (await h1.innerText()).trim();
    check(heading instanceof RegExp ? heading.test(text) : text === heading, `${name}: h1 is "${text}"`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `${name}: ${overflow}px wider than the phone`);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input:not([type=hidden])')]
        .filter((i) => !i.labels || i.labels.length === 0).map((i) => i.name));
    check(unlabelled.length === 0, `${name}: inputs without a label: ${unlabelled}`);
    check(problems.length === 0, `${name}: ${problems.join('; ')}`);
    visited.push({ page: name, url: page.url(), status: 'ok' });
  }

  async function close() {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }

  return { page, shot, looksRight, visited, close };
}
