// Drives the mailbag admin page in headless Debian Chromium, like an admin would.
//
// Needs MAILBAG_WEB_DEMO = path of the built `mailbag-web-demo` binary (run.sh builds it).
// Starts that binary on 127.0.0.1 port 0 (it prints the bound address), uses a fresh
// Chromium profile, saves a screenshot of every page to test-artifacts/web/, and stops only
// the processes it started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, PASSWORD, ROOT_HASH, openPage } from './harness.mjs';

const DEMO = process.env.MAILBAG_WEB_DEMO;
const HOSTILE_SUBJECT = '<script>window.__pwned=1</script>Invoice';
const HOSTILE_ATTR = '"><img src=x onerror="window.__pwned=2">';

let tmp, demo, baseUrl, context, page;
const pageErrors = [];

async function startDemo() {
  assert.ok(DEMO, 'set MAILBAG_WEB_DEMO to the mailbag-web-demo binary');
  writeFileSync(join(tmp, 'shadow'), `daemon:*:19000:0:99999:7:::\nroot:${ROOT_HASH}:19000:0:99999:7:::\n`);
  demo = spawn(DEMO, ['--listen', '127.0.0.1:0', '--shadow', join(tmp, 'shadow'), '--config', join(tmp, 'mailbag.toml'), '--messages', '300'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  baseUrl = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('demo did not start: ' + out)), 15000);
    demo.on('exit', (code) => fail(new Error('demo exited ' + code + ': ' + out)));
    demo.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
  });
}

const shot = (name) => page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true });
const text = (sel) => page.locator(sel).first().textContent();
const pwned = () => page.evaluate(() => window.__pwned);

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mailbag-web-browser-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  await startDemo();
  ({ context, page } = await openPage(tmp, pageErrors));
});

after(async () => {
  if (context) await context.close();
  if (demo && demo.exitCode === null) demo.kill('SIGTERM');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('admin page in Chromium', async (t) => {
  await t.test('wrong password is refused', async () => {
    await page.goto(baseUrl);
    await page.fill('#password', 'wrong-password');
    await page.click('#login-submit');
    await page.waitForFunction(() => document.querySelector('#login-error')?.textContent.length > 0);
    assert.match(await text('#login-error'), /wrong user name or password/);
    assert.equal(await page.locator('#tabs').isHidden(), true);
    await shot('login-failed');
  });

  await t.test('log in and see status', async () => {
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForSelector('#st-depth');
    assert.equal(await text('#brand'), 'office-gw');
    assert.equal(await text('#st-depth'), '304');
    assert.match(await text('#st-primary'), /down\s+since/);
    assert.match(await text('#st-upstream'), /reachable silo\.provider\.example:25/);
    assert.match(await text('#st-fw'), /walled-garden/);
    // Protection: the per-domain tiers and the checks' counters.
    assert.match(await text('#st-domains'), /example\.com.*500\.0 MiB/s);
    assert.match(await text('#st-protection'), /blocking list lists them\s*12/);
    const cookies = await context.cookies();
    const sid = cookies.find((c) => c.name === 'mailbag_sid');
    assert.ok(sid && sid.httpOnly && sid.sameSite === 'Strict', JSON.stringify(cookies));
    assert.equal(await page.evaluate(() => document.cookie), '', 'session cookie invisible to scripts');
    await shot('status');
  });

  await t.test('status refreshes by itself', async () => {
    const first = await text('#st-updated');
    await page.waitForFunction((f) => document.querySelector('#st-updated')?.textContent !== f, first, { timeout: 12000 });
  });

  await t.test('check setup lists each line with its fix, and survives the refresh', async () => {
    await page.click('#st-check-setup');
    await page.waitForSelector('#doctor-table tr[data-id=firewall]');
    assert.match(await text('#doctor-summary'), /PROBLEMS\s+\d+ passed, \d+ warning\(s\), 2 failed/i);
    const fw = page.locator('#doctor-table tr[data-id=firewall]');
    assert.match(await fw.textContent(), /fail.*not loaded.*Fix: run `mailbag firewall apply`/);
    assert.equal(await page.locator('#doctor-table tr.doctor-warn').count(), 3, 'TLS-RPT, one per domain');
    await shot('setup-check');
    const first = await text('#st-updated');
    await page.waitForFunction((f) => document.querySelector('#st-updated')?.textContent !== f, first, { timeout: 12000 });
    assert.equal(await page.locator('#doctor-table tr[data-id=firewall]').count(), 1, 'not wiped by the refresh');
  });

  await t.test('find a held message in the queue, sort and page', async () => {
    await page.click('a[data-tab=queue]');
    await page.waitForSelector('#queue-table tbody tr[data-id]');
    assert.match(await text('#q-info'), /^1–50 of 304$/);
    await page.click('#q-next');
    await page.waitForFunction(() => /^51–100 of 304$/.test(document.querySelector('#q-info').textContent));
    await page.click('th[data-sort=size]');
    await page.waitForSelector('th.sorted-asc[data-sort=size]');
    await page.waitForFunction(() => /^1–50 of 304$/.test(document.querySelector('#q-info').textContent));
    const sizes = await page.$$eval('#queue-table tbody tr', (rows) => rows.map((r) => r.children[6].textContent));
    const bytes = sizes.map((s) => { const [n, u] = s.split(' '); return Number(n) * ({ B: 1, KiB: 1024, MiB: 1048576 }[u]); });
    assert.deepEqual(bytes, [...bytes].sort((a, b) => a - b), 'ascending by size');
    await page.fill('#q-text', 'Report #42 ');
    await page.waitForFunction(() => document.querySelector('#q-info').textContent === '1–1 of 1');
    assert.equal(await page.locator('#queue-table tbody tr').first().getAttribute('data-id'), 'm000042');
    await page.fill('#q-text', '');
    await page.fill('#q-domain', 'example.org');
    await page.waitForFunction(() => /^1–50 of 102$/.test(document.querySelector('#q-info').textContent));
    const rcpts = await page.$$eval('#queue-table tbody tr', (rows) => rows.map((r) => r.children[4].textContent));
    assert.ok(rcpts.every((r) => r.includes('@example.org')), rcpts.join());
    await shot('queue');
    await page.fill('#q-domain', '');
  });

  await t.test('hostile subjects render as text', async () => {
    await page.fill('#q-text', 'm-hostile');
    await page.waitForFunction(() => document.querySelector('#q-info').textContent === '1–2 of 2');
    const subjects = await page.$$eval('#queue-table td.subject', (tds) => tds.map((td) => td.textContent));
    assert.deepEqual(subjects.sort(), [HOSTILE_ATTR, HOSTILE_SUBJECT].sort());
    assert.equal(await page.locator('#queue-table script, #queue-table img, #queue-table svg').count(), 0);
    assert.equal(await pwned(), undefined);
    await shot('queue-hostile');
  });

  await t.test('bulk retry and .eml download', async () => {
    await page.fill('#q-text', 'Report #1');
    await page.waitForFunction(() => /^1–50 of \d+$/.test(document.querySelector('#q-info').textContent));
    const ids = await page.$$eval('#queue-table tbody tr', (rows) => rows.slice(0, 3).map((r) => r.dataset.id));
    const before = await page.$$eval('#queue-table tbody tr', (rows) => rows.slice(0, 3).map((r) => Number(r.querySelector('.attempts').textContent)));
    for (const id of ids) await page.check(`#queue-table tr[data-id=${id}] input.q-select`);
    await page.click('#q-bulk-retry');
    await page.waitForFunction(() => /Retried 3 message/.test(document.querySelector('#notices').textContent));
    await page.waitForFunction(([ids, before]) => ids.every((id, i) =>
      Number(document.querySelector(`#queue-table tr[data-id=${id}] .attempts`)?.textContent) === before[i] + 1), [ids, before]);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(`#queue-table tr[data-id=${ids[0]}] a[download]`)]);
    assert.equal(download.suggestedFilename(), ids[0] + '.eml');
    const eml = readFileSync(await download.path(), 'utf8');
    assert.match(eml, /^From: .*\r\nTo: .*\r\nSubject: Report #1/);
    await page.fill('#q-text', 'm-hostile');
    await page.waitForFunction(() => document.querySelector('#q-info').textContent === '1–2 of 2');
  });

  await t.test('open a message and retry it', async () => {
    await page.fill('#q-text', 'm000042');
    await page.waitForFunction(() => document.querySelector('#q-info').textContent === '1–1 of 1');
    await page.click('#queue-table a[href="#message/m000042"]');
    await page.waitForSelector('#msg-id');
    assert.equal(await text('#msg-id'), 'm000042');
    const before = Number(await text('#msg-attempts td'));
    await page.click('#msg-retry');
    await page.waitForFunction((b) => Number(document.querySelector('#msg-attempts td')?.textContent) === b + 1, before);
    assert.match(await text('#notices'), /Retried 1 message/);
    assert.match(await text('#msg-body'), /Generated demo message m000042/);
    assert.match(await text('#msg-checks'), /spam score 2 of 5 \(MISSING_MESSAGE_ID\)/);
    await shot('message');
  });

  await t.test('HTML mail shows as escaped source, attachments listed', async () => {
    await page.goto(baseUrl + '#message/m-html-0001');
    await page.waitForSelector('#msg-attachments');
    const body = await text('#msg-body');
    assert.ok(body.includes('<script>window.__pwned=3</script>'), body);
    assert.ok(body.includes('<img src=x onerror="window.__pwned=4">'), body);
    const atts = await page.$$eval('#msg-attachments tbody tr', (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
    assert.deepEqual(atts, [['statement.pdf', 'application/pdf', '192 B'], ['<img src=x onerror=alert(1)>.png', 'image/png', '8 B']]);
    assert.equal(await page.locator('#view img, #view script, #view iframe').count(), 0);
    assert.equal(await pwned(), undefined);
    await shot('message-html');
  });

  await t.test('delete one message', async () => {
    await page.goto(baseUrl + '#queue');
    await page.fill('#q-text', 'm000043');
    await page.waitForFunction(() => document.querySelector('#q-info').textContent === '1–1 of 1');
    await page.click('#queue-table tr[data-id=m000043] button.danger');
    await page.waitForFunction(() => document.querySelector('#q-info').textContent === '0 messages');
    assert.match(await text('#notices'), /Deleted 1 message/);
    const status = await page.evaluate(() => fetch('/api/messages/m000043').then((r) => r.status));
    assert.equal(status, 404);
    await page.fill('#q-text', '');
  });

  await t.test('inline validation error, then a saved setting lands in the config file', async () => {
    await page.click('a[data-tab=settings]');
    await page.waitForSelector('#cfg-relay-lifetime-days');
    await page.fill('#cfg-relay-lifetime-days', '45');
    await page.fill('#cfg-relay-next-hops', '10 mail.lan:25\nnot a host');
    await page.click('#cfg-save');
    await page.waitForSelector('#cfg-relay-lifetime-days-row.cbi-value-error');
    assert.equal(await text('#cfg-relay-lifetime-days-error'), 'must be a whole number from 1 to 30');
    assert.equal(await text('#cfg-relay-next-hops-error'), "'not a host' is not host:port (optionally preceded by a preference)");
    assert.doesNotMatch(readFileSync(join(tmp, 'mailbag.toml'), 'utf8'), /lifetime-days = 45/);
    await shot('settings-error');
    await page.fill('#cfg-relay-lifetime-days', '12');
    await page.fill('#cfg-relay-next-hops', '10 mail.lan:25\n20 backup.lan:2525');
    await page.click('#cfg-save');
    await page.waitForFunction(() => /Saved to/.test(document.querySelector('#notices').textContent));
    assert.equal(await page.locator('.cbi-value-error').count(), 0);
    const cfg = readFileSync(join(tmp, 'mailbag.toml'), 'utf8');
    assert.match(cfg, /lifetime-days = 12/);
    assert.match(cfg, /next-hops = \["10 mail.lan:25", "20 backup.lan:2525"\]/);
    await page.reload();
    await page.waitForSelector('#cfg-relay-lifetime-days');
    assert.equal(await page.inputValue('#cfg-relay-lifetime-days'), '12');
    await shot('settings');
  });

  await t.test('firewall preview and apply', async () => {
    await page.click('a[data-tab=firewall]');
    await page.waitForSelector('#fw-rules');
    assert.match(await text('#fw-rules'), /203\.0\.113\.0\/28/);
    await page.click('#fw-apply');
    await page.waitForFunction(() => /applied/.test(document.querySelector('#notices').textContent));
    assert.equal(await page.locator('.label.success', { hasText: 'applied' }).count(), 1);
    await shot('firewall');
  });

  await t.test('log shows the delete and the deferrals', async () => {
    await page.click('a[data-tab=log]');
    await page.waitForSelector('#log-table tbody tr');
    const rows = await page.$$eval('#log-table tbody tr', (rs) => rs.map((r) => [...r.children].map((c) => c.textContent).slice(1).join('|')));
    assert.ok(rows.some((r) => r === 'deleted|m000043|deleted by admin'), rows.slice(0, 5).join('\n'));
    assert.ok(rows.some((r) => r.startsWith('deferred|m000042|')), 'retry logged');
    assert.ok(rows.some((r) => r.startsWith('primary-down|')));
    await shot('log');
  });

  await t.test('usable at phone width', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    await page.click('a[data-tab=queue]');
    await page.waitForSelector('#queue-table tbody tr[data-id]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 375, 'page scrolls sideways: ' + overflow);
    assert.ok(await page.locator('#q-bulk-retry').isVisible());
    await shot('queue-phone');
    await page.click('a[data-tab=status]');
    await page.waitForSelector('#st-depth');
    await shot('status-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await t.test('log out', async () => {
    await page.click('#logout');
    await page.waitForSelector('#password');
    const status = await page.evaluate(() => fetch('/api/status').then((r) => r.status));
    assert.equal(status, 401);
  });

  await t.test('no script errors or CSP violations', () => {
    assert.deepEqual(pageErrors, []);
  });
});
