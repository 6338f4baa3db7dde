// Drives the admin page of a REAL `mailbag run` daemon in headless Debian Chromium.
//
// Needs MAILBAG_BIN = path of the built `mailbag` binary (run.sh builds it). Writes a TOML
// config into a fresh temp dir (SMTP and web on 127.0.0.1 port 0, spool image there, a
// shadow file with a test root password), starts the daemon, reads the bound addresses from
// its log, sends 3 messages over SMTP with node's net module, then clicks through the page.
// Screenshots go to test-artifacts/web/real-*.png. Stops only the daemon it started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARTIFACTS, PASSWORD, ROOT_HASH, openPage } from './harness.mjs';

const BIN = process.env.MAILBAG_BIN;
const HOSTILE_SUBJECT = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">Invoice';

let tmp, daemon, baseUrl, smtpPort, context, page, configPath, sinkPort;
const pageErrors = [];

function config() {
  return `role = "edge"
[smtp]
hostname = "mailbag.example.test"
listen = ["127.0.0.1:0"]
starttls = false
[policy]
domains = ["example.test"]
[spool]
path = "${join(tmp, 'spool.img')}"
size = 4194304
max-bytes = 3145728
[relay]
next-hops = ["127.0.0.1:${sinkPort}"]
lifetime-days = 7
probe-interval = 3600
# Nothing answers DNS here (port 9, discard): the setup check's lookups fail at once.
dns-servers = ["127.0.0.1:9"]
[firewall]
mode = "off"
[web]
listen = ["127.0.0.1:0"]
shadow = "${join(tmp, 'shadow')}"
[daemon]
control-socket = "${join(tmp, 'control.sock')}"
`;
}

// A free loopback port for the office's primary server (smtp-sink, started later).
async function freePort() {
  const srv = net.createServer();
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  const { port } = srv.address();
  await new Promise((ok) => srv.close(ok));
  return port;
}

async function startDaemon() {
  assert.ok(BIN, 'set MAILBAG_BIN to the mailbag binary');
  sinkPort = await freePort();
  writeFileSync(join(tmp, 'shadow'), `root:${ROOT_HASH}:19000:0:99999:7:::\n`);
  configPath = join(tmp, 'mailbag.toml');
  writeFileSync(configPath, config());
  daemon = spawn(BIN, ['run', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('daemon did not start: ' + out)), 20000);
    daemon.on('exit', (code) => fail(new Error('daemon exited ' + code + ': ' + out)));
    // Informational lines (the listeners, ready) come on stdout, warnings on stderr.
    const seen = (d) => {
      out += d;
      process.stderr.write(d);
      const web = out.match(/admin page on (http:\/\/127\.0\.0\.1:\d+\/)/);
      const smtp = out.match(/smtp listening on 127\.0\.0\.1:(\d+)/);
      if (web && smtp && /ready:/.test(out)) { clearTimeout(timer); baseUrl = web[1]; smtpPort = Number(smtp[1]); ok(); }
    };
    daemon.stdout.on('data', seen);
    daemon.stderr.on('data', seen);
  });
}

// One SMTP transaction; resolves with the reply to the final dot.
function sendMail(from, to, subject, body) {
  const steps = [null, 'EHLO browser.test', `MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, 'DATA',
    `From: <${from}>\r\nTo: <${to}>\r\nSubject: ${subject}\r\n\r\n${body}\r\n.`, 'QUIT'];
  return new Promise((ok, fail) => {
    const sock = net.connect(smtpPort, '127.0.0.1');
    let buf = '', step = 0, stored;
    sock.setTimeout(10000, () => { sock.destroy(); fail(new Error('smtp timeout at step ' + step)); });
    sock.on('error', fail);
    sock.on('data', (d) => {
      buf += d;
      // A reply is complete at a line "NNN text" (not "NNN-text").
      const m = buf.match(/(^|\r\n)(\d{3}) [^\r\n]*\r\n$/);
      if (!m) return;
      const reply = buf; buf = '';
      if (!/^[23]/.test(m[2])) { sock.destroy(); fail(new Error(`step ${step}: ${reply}`)); return; }
      if (step === 5) stored = reply.trim();
      step += 1;
      if (step < steps.length) sock.write(steps[step] + '\r\n'); else { sock.end(); ok(stored); }
    });
  });
}

const shot = (name) => page.screenshot({ path: join(ARTIFACTS, 'real-' + name + '.png'), fullPage: true });
const text = (sel) => page.locator(sel).first().textContent();
const pwned = () => page.evaluate(() => window.__pwned);
const queueInfo = (want) => page.waitForFunction((w) => document.querySelector('#q-info')?.textContent === w, want);

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'mailbag-web-real-'));
  mkdirSync(ARTIFACTS, { recursive: true });
  await startDaemon();
  ({ context, page } = await openPage(tmp, pageErrors));
});

after(async () => {
  if (context) await context.close();
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((ok) => { daemon.on('exit', ok); setTimeout(ok, 25000); });
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('admin page of a real daemon', async (t) => {
  const ids = {};
  await t.test('three messages go in over SMTP', async () => {
    const mails = [['quarterly', 'Quarterly report', 'Numbers for Q3 are attached below.'],
      ['hostile', HOSTILE_SUBJECT, 'Pay now.'], ['lunch', 'Lunch on Friday?', 'Pizza or sushi.']];
    for (const [key, subject, body] of mails) {
      const reply = await sendMail('alice@sender.test', `bob@example.test`, subject, body);
      const m = reply.match(/^250 .*queued as ([0-9A-F]{16})/);
      assert.ok(m, reply);
      ids[key] = m[1];
    }
    // Not an accepted domain: refused at RCPT, never stored.
    await assert.rejects(sendMail('alice@sender.test', 'eve@elsewhere.test', 'no', 'no'), /step 3: 5\d\d /);
  });

  await t.test('log in and see status', async () => {
    await page.goto(baseUrl);
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForSelector('#st-depth');
    assert.equal(await text('#brand'), 'mailbag.example.test');
    assert.equal(await text('#st-depth'), '3');
    // Nothing listens on the next hop yet: the deliverer reports it down.
    assert.match(await text('#st-primary'), /down/);
    assert.match(await text('#st-fw'), /off/);
    await shot('status');
  });

  await t.test('check setup runs the daemon\'s own checks', async () => {
    await page.click('#st-check-setup');
    await page.waitForSelector('#doctor-table tr[data-id=daemon]', { timeout: 30000 });
    assert.match(await page.locator('#doctor-table tr[data-id=daemon]').textContent(), /pass.*the daemon is running \(mailbag /);
    // Nothing listens on the next hop yet: a failure, with its fix.
    const hop = await page.locator('#doctor-table tr[data-id=next-hop]').textContent();
    assert.match(hop, new RegExp(`fail.*127\\.0\\.0\\.1:${sinkPort} \\(relay\\.next-hops\\) does not answer SMTP now.*Fix: `));
    assert.match(await page.locator('#doctor-table tr[data-id="mx.present"]').textContent(), /lookup of example\.test failed/);
    assert.match(await text('#doctor-summary'), /failed/);
    await shot('setup-check');
  });

  await t.test('find a held message in the queue and open it', async () => {
    await page.click('a[data-tab=queue]');
    await page.waitForSelector('#queue-table tbody tr[data-id]');
    await queueInfo('1–3 of 3');
    await page.fill('#q-text', 'quarterly');
    await queueInfo('1–1 of 1');
    assert.equal(await page.locator('#queue-table tbody tr').first().getAttribute('data-id'), ids.quarterly);
    await shot('queue');
    await page.click(`#queue-table a[href="#message/${ids.quarterly}"]`);
    await page.waitForSelector('#msg-id');
    assert.equal(await text('#msg-id'), ids.quarterly);
    assert.match(await text('#msg-body'), /Numbers for Q3 are attached below\./);
    await shot('message');
  });

  await t.test('the hostile subject renders as text', async () => {
    await page.goto(baseUrl + '#queue');
    await page.fill('#q-text', '');
    await queueInfo('1–3 of 3');
    await page.fill('#q-text', 'invoice');
    await queueInfo('1–1 of 1');
    assert.equal(await text('#queue-table td.subject'), HOSTILE_SUBJECT);
    assert.equal(await page.locator('#queue-table script, #queue-table img').count(), 0);
    await page.click(`#queue-table a[href="#message/${ids.hostile}"]`);
    await page.waitForSelector('#msg-id');
    assert.equal(await page.locator('#view script, #view img').count(), 0);
    assert.equal(await pwned(), undefined);
    await shot('hostile');
  });

  await t.test('delete one message and see it gone', async () => {
    await page.goto(baseUrl + '#queue');
    await page.fill('#q-text', '');
    await queueInfo('1–3 of 3');
    await page.fill('#q-text', 'lunch');
    await queueInfo('1–1 of 1');
    await page.click(`#queue-table tr[data-id="${ids.lunch}"] button.danger`);
    await queueInfo('0 messages');
    assert.match(await text('#notices'), /Deleted 1 message/);
    const status = await page.evaluate((id) => fetch('/api/messages/' + id).then((r) => r.status), ids.lunch);
    assert.equal(status, 404);
    await page.fill('#q-text', '');
    await queueInfo('1–2 of 2');
    await page.click('a[data-tab=status]');
    await page.waitForFunction(() => document.querySelector('#st-depth')?.textContent === '2');
  });

  await t.test('retry a held message and see it leave once the primary is up', async () => {
    // The primary (Postfix's smtp-sink) comes up; the probe interval is an hour, so only the
    // page's Retry can send the message now.
    const sink = spawn('smtp-sink', ['-u', 'nobody', `127.0.0.1:${sinkPort}`, '10'], { stdio: 'ignore' });
    try {
      await new Promise((ok) => setTimeout(ok, 300));
      await page.goto(baseUrl + '#queue');
      await page.fill('#q-text', 'quarterly');
      await queueInfo('1–1 of 1');
      await page.click(`#queue-table tr[data-id="${ids.quarterly}"] button:has-text("Retry")`);
      const deadline = Date.now() + 15000;
      let status = 200;
      while (status !== 404 && Date.now() < deadline) {
        await new Promise((ok) => setTimeout(ok, 250));
        status = await page.evaluate((id) => fetch('/api/messages/' + id).then((r) => r.status), ids.quarterly);
      }
      assert.equal(status, 404, 'the retried message was delivered and left the queue');
      // Its delivery showed the primary is back: the rest of the held mail follows at once.
      await page.click('a[data-tab=status]');
      await page.waitForFunction(() => document.querySelector('#st-depth')?.textContent === '0', null, { timeout: 15000 });
      await shot('after-delivery');
    } finally {
      sink.kill();
    }
  });

  await t.test('inline validation error, then a saved setting lands in the config file', async () => {
    await page.click('a[data-tab=settings]');
    await page.waitForSelector('#cfg-relay-lifetime-days');
    await page.fill('#cfg-relay-lifetime-days', '45');
    await page.click('#cfg-save');
    await page.waitForSelector('#cfg-relay-lifetime-days-row.cbi-value-error');
    assert.equal(await text('#cfg-relay-lifetime-days-error'), '45 is out of range 1..=30 days');
    assert.match(readFileSync(configPath, 'utf8'), /lifetime-days = 7/);
    await shot('settings-error');
    await page.fill('#cfg-relay-lifetime-days', '12');
    await page.click('#cfg-save');
    await page.waitForFunction(() => /Saved to/.test(document.querySelector('#notices').textContent));
    assert.equal(await page.locator('.cbi-value-error').count(), 0);
    assert.match(readFileSync(configPath, 'utf8'), /lifetime-days = 12/);
    await page.reload();
    await page.waitForSelector('#cfg-relay-lifetime-days');
    assert.equal(await page.inputValue('#cfg-relay-lifetime-days'), '12');
    await shot('settings');
  });

  await t.test('log shows what happened', async () => {
    await page.click('a[data-tab=log]');
    await page.waitForSelector('#log-table tbody tr');
    const rows = await page.$$eval('#log-table tbody tr', (rs) => rs.map((r) => [...r.children].map((c) => c.textContent).slice(1).join('|')));
    assert.ok(rows.some((r) => r.startsWith(`deleted|${ids.lunch}|`)), rows.join('\n'));
    assert.equal(rows.filter((r) => r.startsWith('accepted|')).length, 3, rows.join('\n'));
    assert.ok(rows.some((r) => r === 'refused|-|550 5.7.1 Relay access denied'), rows.join('\n'));
    await shot('log');
  });

  await t.test('no script errors or CSP violations', () => {
    assert.deepEqual(pageErrors, []);
  });
});
