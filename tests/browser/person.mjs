// A person at a real browser: Debian's Chromium, driven by playwright-core.
//
//   node person.mjs approve URL   open Monzo's login URL, click Approve, land on the service's
//                                 "you're logged in" page (this is what BROWSER runs for the CLI)
//   node person.mjs demo URL      walk the demo landing page: start a login, approve in the tab it
//                                 opens, wait for the (masked) token
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
  await page.goto(url, { timeout });
  if (mode === 'approve') {
    await approveAt(page);
    summary.doneTitle = await page.title();
    summary.doneText = await page.textContent('main');
    await page.screenshot({ path: join(artifacts, 'approve-done.png') });
  } else {
    summary.landingText = await page.textContent('main');
    await page.screenshot({ path: join(artifacts, 'demo-landing.png') });
    await page.click('#start');
    await page.waitForSelector('#login:visible', { timeout });
    const [tab] = await Promise.all([context.waitForEvent('page'), page.click('#login')]);
    await approveAt(tab);
    summary.doneText = await tab.textContent('main');
    await page.waitForSelector('#step-token:visible', { timeout });
    summary.maskedToken = await page.textContent('#token');
    summary.resultText = await page.textContent('main');
    await page.screenshot({ path: join(artifacts, 'demo-token.png') });
  }
} catch (error) {
  summary.error = String(error);
}
writeFileSync(join(artifacts, `${mode}-summary.json`), JSON.stringify(summary, null, 2));
await context.close();
rmSync(profile, { recursive: true, force: true });
if (summary.error) fail(summary.error);
