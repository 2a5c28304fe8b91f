// A person at a real browser: Debian's Chromium, driven by playwright-core.
//
//   node person.mjs approve URL   open Monzo's login URL, click Approve, land on the service's
//                                 "you're logged in" page (this is what BROWSER runs for the CLI)
//   node person.mjs demo URL      walk the demo landing page on a phone-sized viewport (390 px):
//                                 start a login, approve in the tab it opens, wait for the
//                                 (masked) token; measure the buttons' contrast and whether a
//                                 token wraps; then ask for a page that does not exist
//
// Screenshots and a JSON summary (page texts, and the path of every page the browser navigated
// to, never a query string: those carry codes and states) go to $BROWSER_ARTIFACTS.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [mode, url] = process.argv.slice(2);
const artifacts = process.env.BROWSER_ARTIFACTS || 'artifacts';
const timeout = 20_000;

function fail(message) {
  console.error(`person.mjs: ${message}`);
  process.exit(1);
}

if (!['approve', 'demo'].includes(mode) || !url) {
  fail('usage: person.mjs approve|demo URL');
}
mkdirSync(artifacts, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), 'monzo-auth-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Without the networking flags Chromium floods a closed network with connection attempts.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

const navigations = [];
context.on('request', (request) => {
  if (request.isNavigationRequest()) {
    const { origin, pathname } = new URL(request.url());
    navigations.push(`${request.method()} ${origin}${pathname}`);
  }
});
const consoleErrors = [];
context.on('console', (message) => {
  if (message.type() === 'error') consoleErrors.push(message.text());
});

// WCAG 2 contrast ratio of an element's text on its background (both opaque rgb()).
async function contrastOf(page, selector) {
  return page.$eval(selector, (el) => {
    const style = getComputedStyle(el);
    const rgb = (text) => text.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const [a, b] = [lum(rgb(style.color)), lum(rgb(style.backgroundColor))].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  });
}

async function approveAt(page) {
  await page.waitForSelector('#approve', { timeout });
  await page.screenshot({ path: join(artifacts, `${mode}-monzo-login.png`) });
  await page.click('#approve');
  await page.waitForURL((u) => u.pathname.endsWith('/callback/done'), { timeout });
  await page.waitForLoadState('load');
}

const summary = { mode, navigations, consoleErrors };
try {
  const page = await context.newPage();
  if (mode === 'demo') await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(url, { timeout });
  if (mode === 'approve') {
    await approveAt(page);
    summary.doneTitle = await page.title();
    summary.doneText = await page.textContent('main');
    await page.screenshot({ path: join(artifacts, 'approve-done.png') });
  } else {
    summary.landingText = await page.textContent('main');
    summary.landingTitle = await page.title();
    summary.startContrast = await contrastOf(page, '#start');
    await page.screenshot({ path: join(artifacts, 'demo-landing.png') });
    await page.click('#start');
    await page.waitForSelector('#login:visible', { timeout });
    const [tab] = await Promise.all([context.waitForEvent('page'), page.click('#login')]);
    await approveAt(tab);
    summary.doneText = await tab.textContent('main');
    await page.waitForSelector('#step-token:visible', { timeout });
    summary.maskedToken = await page.textContent('#token');
    summary.resultText = await page.textContent('main');
    summary.loginContrast = await contrastOf(page, '#login');
    // A value on one line has one box; a wrapped one has several.
    summary.wrappedValues = await page.$$eval('dd code', (codes) =>
      codes.filter((code) => code.getClientRects().length > 1).map((code) => code.id));
    await page.screenshot({ path: join(artifacts, 'demo-token.png') });
    // Chromium reports the 404 itself as a console error: the pages' errors are those so far.
    summary.consoleErrors = consoleErrors.slice();
    const missing = await page.goto(new URL('no-such-page', url).href, { timeout });
    summary.missingStatus = missing.status();
    summary.missingType = missing.headers()['content-type'];
    summary.missingText = await page.textContent('main');
  }
} catch (error) {
  summary.error = String(error);
}
writeFileSync(join(artifacts, `${mode}-summary.json`), JSON.stringify(summary, null, 2));
await context.close();
rmSync(profile, { recursive: true, force: true });
if (summary.error) fail(summary.error);
