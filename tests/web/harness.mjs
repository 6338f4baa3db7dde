// Shared by the browser tests: paths, the test root password, and a fresh headless Debian
// Chromium profile whose page records script errors and CSP violations.
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'web');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const PASSWORD = 'browser-test-pw';
// `openssl passwd -6 -salt browsertest 'browser-test-pw'`
export const ROOT_HASH = '$6$browsertest$Vrvcy4UJD9.FIjSyJv6wU/6dZxFfUYJcL1bojfBRAoorknn6cwBosPkV8hh88Qq0bsYJB2QtG1wtxWQsr2Cj2/';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic'];

// Launches Chromium with a profile under `tmp`; errors the page reports go into `pageErrors`.
export async function openPage(tmp, pageErrors) {
  const context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text()); });
  page.on('dialog', (d) => d.accept());
  return { context, page };
}
