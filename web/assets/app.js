// mailbag admin page. Every value from the server is inserted with textContent or as a
// property, never as HTML: subjects, addresses and file names come from strangers.
'use strict';

const S = { csrf: null, timer: null, queue: { offset: 0, limit: 50, sort: 'age', dir: 'desc', domain: '', q: '', selected: new Set() } };
const $ = (id) => document.getElementById(id);

// h('div', {class: 'x', onclick: f}, 'text', child, [more]) -> element. Strings become text nodes.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value' || k === 'checked' || k === 'disabled') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  const add = (c) => {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  };
  kids.forEach(add);
  return el;
}

async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: {} };
  if (method !== 'GET') {
    if (S.csrf) opts.headers['X-CSRF-Token'] = S.csrf;
    if (body !== undefined) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
  }
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = { error: 'bad response (' + r.status + ')' }; }
  if (r.status === 401 && path !== '/api/login') { S.csrf = null; showLogin(); throw new Error('login required'); }
  return { status: r.status, ok: r.ok, data };
}

function notice(kind, text) {
  const box = $('notices');
  box.replaceChildren(h('div', { class: 'alert-message ' + kind, role: 'status' }, text));
}
function clearNotice() { $('notices').replaceChildren(); }

// ---------- formatting ----------
function fmtDur(s) {
  if (s === null || s === undefined) return '-';
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), hr = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return d + 'd ' + hr + 'h';
  if (hr) return hr + 'h ' + m + 'm';
  if (m) return m + 'm ' + (s % 60) + 's';
  return s + 's';
}
function fmtSize(b) {
  if (b === null || b === undefined) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : b) + ' ' + u[i];
}
function fmtTime(t) {
  if (!t) return '-';
  const d = new Date(t * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
}
function rel(t, now) {
  if (!t) return '-';
  const n = now || Date.now() / 1000;
  return t >= n ? 'in ' + fmtDur(t - n) : fmtDur(n - t) + ' ago';
}
const badge = (kind, text) => h('span', { class: 'label ' + kind }, text);
const kvTable = (rows) => h('div', { class: 'table-wrap' }, h('table', { class: 'table kv' },
  h('tbody', {}, rows.map(([k, v, id]) => h('tr', { id }, h('th', {}, k), h('td', { class: 'wrap' }, v))))));
const section = (title, ...body) => h('div', { class: 'cbi-section' }, title ? h('h3', {}, title) : null, ...body);

// ---------- routing ----------
const views = { status: viewStatus, queue: viewQueue, message: viewMessage, settings: viewSettings, firewall: viewFirewall, log: viewLog };

function route() {
  if (S.timer) { clearInterval(S.timer); S.timer = null; }
  if (!S.csrf) return showLogin();
  const [name, arg] = location.hash.replace(/^#/, '').split('/');
  const view = views[name] ? name : 'status';
  document.querySelectorAll('#tabs a').forEach((a) => a.classList.toggle('active', a.dataset.tab === (view === 'message' ? 'queue' : view)));
  clearNotice();
  views[view](arg ? decodeURIComponent(arg) : undefined).catch((e) => { if (S.csrf) notice('error', String(e.message || e)); });
}

function setView(...kids) { $('view').replaceChildren(...kids.flat(Infinity).filter(Boolean)); }

// ---------- login ----------
function showLogin() {
  $('tabs').hidden = true; $('logout').hidden = true; $('indicator').hidden = true;
  const user = h('input', { type: 'text', id: 'username', name: 'username', value: 'root', autocomplete: 'username' });
  const pass = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password' });
  const err = h('div', { class: 'cbi-value-errortext', id: 'login-error', role: 'alert' });
  const form = h('form', { class: 'login', onsubmit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const r = await api('POST', '/api/login', { username: user.value, password: pass.value });
    if (r.ok) { S.csrf = r.data.csrf; await enter(); } else { err.textContent = r.data.error || 'Login failed'; pass.value = ''; pass.focus(); }
  } },
  h('h2', {}, 'Authorization Required'),
  h('div', { class: 'cbi-map-descr' }, 'Please enter your username and password.'),
  section(null,
    h('div', { class: 'cbi-value' }, h('label', { class: 'cbi-value-title', for: 'username' }, 'Username'), h('div', { class: 'cbi-value-field' }, user)),
    h('div', { class: 'cbi-value' }, h('label', { class: 'cbi-value-title', for: 'password' }, 'Password'), h('div', { class: 'cbi-value-field' }, pass, err))),
  h('div', { class: 'cbi-page-actions' }, h('button', { type: 'submit', class: 'btn cbi-button-apply', id: 'login-submit' }, 'Login')));
  setView(form);
  pass.focus();
}

async function enter() {
  $('tabs').hidden = false; $('logout').hidden = false;
  route();
}

// ---------- status ----------
async function viewStatus() {
  const box = h('div', { id: 'status' });
  setView(h('h2', {}, 'Status'), h('div', { class: 'cbi-map-descr' }, 'Refreshes every 5 seconds.'), box, setupSection());
  const load = async () => {
    const r = await api('GET', '/api/status');
    if (!r.ok) { notice('error', r.data.error); return; }
    const s = r.data;
    $('brand').textContent = s.hostname || 'mailbag';
    document.title = (s.hostname || 'mailbag') + ' - mailbag';
    const ind = $('indicator');
    ind.hidden = false;
    ind.className = 'label ' + (s.primary.up ? 'success' : 'important');
    ind.textContent = s.primary.up ? 'primary up' : 'primary down';
    const up = s.upstream;
    box.replaceChildren(
      section('Mail flow', kvTable([
        ['Role', badge('notice', s.role), 'st-role'],
        ['Primary (' + (s.primary.name || 'next hop') + ')', [badge(s.primary.up ? 'success' : 'important', s.primary.up ? 'up' : 'down'), ' since ' + fmtTime(s.primary.since) + ' (' + rel(s.primary.since, s.now) + ')'], 'st-primary'],
        ['Upstream silos', up.length ? up.map((u, i) => h('div', {}, badge(u.reachable ? 'success' : 'important', u.reachable ? 'reachable' : 'unreachable'), ' ' + u.address + (up.length > 1 ? ' (tier ' + (i + 1) + ')' : ''))) : 'not configured', 'st-upstream'],
        ['Last delivery', s.last_delivery ? fmtTime(s.last_delivery) + ' (' + rel(s.last_delivery, s.now) + ')' : 'never', 'st-last'],
        ['Next retry', s.next_retry ? fmtTime(s.next_retry) + ' (' + rel(s.next_retry, s.now) + ')' : '-', 'st-next'],
      ])),
      section('Queue and spool', kvTable([
        ['Held messages', h('a', { href: '#queue', id: 'st-depth' }, String(s.queue_depth))],
        ['Oldest message', fmtDur(s.oldest_age_secs), 'st-oldest'],
        ['Spool used / free', fmtSize(s.spool_used_bytes) + ' / ' + fmtSize(s.spool_free_bytes), 'st-spool'],
      ])),
      section('Firewall', kvTable([['Mode', badge(s.firewall_mode === 'off' ? 'warning' : 'success', s.firewall_mode), 'st-fw']])),
      await routersSection(s),
      section('Domains', s.domains.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'st-domains' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Domain'), h('th', {}, 'Held / storage tier'), h('th', {}, 'Largest message'), h('th', {}, 'Accepts'))),
          h('tbody', {}, s.domains.map((d) => h('tr', {}, h('td', {}, d.domain),
            h('td', {}, fmtSize(d.held_bytes) + ' / ' + (d.max_bytes == null ? 'no tier' : fmtSize(d.max_bytes))),
            h('td', {}, d.max_message_size == null ? 'as smtp' : fmtSize(d.max_message_size)),
            h('td', {}, d.accept_when === 'always' ? 'always' : 'only while its next hop is down'))))))
        : h('div', { class: 'muted' }, 'No per-domain rules.')),
      section('Protection', h('div', { class: 'table-wrap' }, h('table', { class: 'table kv', id: 'st-protection' },
        h('tbody', {}, s.protection.map((p) => h('tr', { title: p.help }, h('th', {}, p.help), h('td', {}, String(p.value)))))))),
      h('div', { class: 'muted', id: 'st-updated' }, 'Updated ' + fmtTime(s.now)));
  };
  await load();
  S.timer = setInterval(() => load().catch(() => {}), 5000);
}

// The setup check (`mailbag doctor`): DNS, MTA-STS, next hops, silos, firewall, spool.
function setupSection() {
  const out = h('div', { id: 'doctor' });
  const run = h('button', { type: 'button', class: 'btn cbi-button-apply', id: 'st-check-setup', onclick: async () => {
    run.disabled = true;
    out.replaceChildren(h('div', { class: 'muted' }, 'Checking DNS, MX records, MTA-STS, next hops and silos\u2026'));
    try {
      const r = await api('POST', '/api/check-setup', {});
      if (!r.ok) { out.replaceChildren(); notice('error', r.data.error); return; }
      const kinds = { pass: 'success', warn: 'warning', fail: 'important' };
      const d = r.data;
      out.replaceChildren(
        h('p', { id: 'doctor-summary' }, badge(d.ok ? 'success' : 'important', d.ok ? 'ok' : 'problems'),
          ' ' + d.passed + ' passed, ' + d.warnings + ' warning(s), ' + d.failed + ' failed'),
        h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'doctor-table' }, h('tbody', {},
          d.checks.map((c) => h('tr', { class: 'doctor-' + c.status, 'data-id': c.id },
            h('td', {}, badge(kinds[c.status] || '', c.status)),
            h('td', { class: 'wrap' }, c.text, c.fix ? h('div', { class: 'cbi-value-description' }, 'Fix: ' + c.fix) : null)))))));
    } finally { run.disabled = false; }
  } }, 'Check setup');
  return section('Setup check', h('div', { class: 'cbi-section-descr' },
    'Checks the MX records, MTA-STS, the next hops and silos, the firewall and the spool, like "mailbag doctor".'),
  h('div', { class: 'toolbar' }, run), out);
}

// The routers a silo watches (their heartbeat beacons); nothing on an edge.
async function routersSection(s) {
  if (s.role !== 'silo') return '';
  const r = await api('GET', '/api/routers');
  if (!r.ok || !r.data.routers.length) return section('Routers', h('div', { class: 'muted' }, r.ok ? 'No routers configured (monitor.routers).' : r.data.error));
  return section('Routers', h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'st-routers' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Router'), h('th', {}, 'Beacon'), h('th', {}, 'Last seen'), h('th', {}, 'Held'), h('th', {}, 'Its primary'))),
    h('tbody', {}, r.data.routers.map((x) => h('tr', {},
      h('td', {}, x.router),
      h('td', {}, badge(x.overdue ? 'important' : (x.last_seen ? 'success' : 'warning'), x.overdue ? 'overdue' : (x.last_seen ? 'on time' : 'not heard yet'))),
      h('td', {}, x.last_seen ? fmtTime(x.last_seen) + ' (' + rel(x.last_seen, s.now) + ')' : '-'),
      h('td', {}, String(x.held)),
      h('td', {}, badge(x.primary === 'up' ? 'success' : (x.primary === 'down' ? 'important' : ''), x.primary))))))));
}

// ---------- queue ----------
const COLS = [['id', 'ID'], ['age', 'Age'], ['sender', 'Sender'], ['recipients', 'Recipients'], [null, 'Subject'], ['size', 'Size'], ['attempts', 'Tries'], [null, 'Last error'], ['next-attempt', 'Next attempt']];

async function act(action, ids) {
  if ((action === 'delete' || action === 'bounce') && !confirm(action[0].toUpperCase() + action.slice(1) + ' ' + ids.length + ' message(s)?')) return null;
  const r = ids.length === 1
    ? await api('POST', '/api/messages/' + encodeURIComponent(ids[0]) + '/' + action, {})
    : await api('POST', '/api/queue/action', { action, ids });
  if (!r.ok) { notice('error', r.data.error); return null; }
  const verb = { retry: 'Retried', delete: 'Deleted', bounce: 'Bounced' }[action];
  notice('success', verb + ' ' + r.data.done + ' message(s)' + (r.data.missing.length ? ', ' + r.data.missing.length + ' already gone' : '') + '.');
  return r.data;
}

async function viewQueue() {
  const q = S.queue;
  const body = h('tbody', {});
  const info = h('span', { id: 'q-info', class: 'muted' });
  const domain = h('input', { type: 'search', id: 'q-domain', placeholder: 'Domain', value: q.domain, size: 16 });
  const text = h('input', { type: 'search', id: 'q-text', placeholder: 'Search id, sender, subject, error', value: q.q, size: 28 });
  const all = h('input', { type: 'checkbox', id: 'q-all', title: 'Select page' });
  const head = h('tr', {}, h('th', {}, all), COLS.map(([key, label]) => h('th', {
    class: key ? 'sortable' + (q.sort === key ? ' sorted-' + q.dir : '') : null, 'data-sort': key,
    onclick: key ? () => { q.dir = q.sort === key && q.dir === 'asc' ? 'desc' : 'asc'; q.sort = key; q.offset = 0; viewQueue(); } : null,
  }, label)), h('th', {}, 'Actions'));
  const prev = h('button', { type: 'button', class: 'btn', id: 'q-prev', onclick: () => { q.offset = Math.max(0, q.offset - q.limit); load(); } }, '\u2039 Prev');
  const next = h('button', { type: 'button', class: 'btn', id: 'q-next', onclick: () => { q.offset += q.limit; load(); } }, 'Next \u203a');
  const bulk = (action) => async () => { if (!q.selected.size) return notice('info', 'Select messages first.'); if (await act(action, [...q.selected])) { q.selected.clear(); load(); } };
  const flush = async (dom) => {
    const r = await api('POST', '/api/queue/flush', dom ? { domain: dom } : {});
    if (r.ok) { notice('success', 'Flushed ' + r.data.flushed + ' message(s)' + (dom ? ' for ' + dom : '') + '.'); load(); } else notice('error', r.data.error);
  };
  let debounce = null;
  const refilter = () => { clearTimeout(debounce); debounce = setTimeout(() => { q.domain = domain.value.trim(); q.q = text.value.trim(); q.offset = 0; load(); }, 250); };
  domain.addEventListener('input', refilter); text.addEventListener('input', refilter);
  all.addEventListener('change', () => { body.querySelectorAll('input[type=checkbox]').forEach((c) => { c.checked = all.checked; c.dispatchEvent(new Event('change')); }); });

  setView(h('h2', {}, 'Queue'), h('div', { class: 'cbi-map-descr' }, 'Messages held until the next hop accepts them.'),
    section(null,
      h('div', { class: 'toolbar' }, domain, text,
        h('button', { type: 'button', class: 'btn', onclick: () => flush(null), id: 'q-flush-all' }, 'Flush all'),
        h('button', { type: 'button', class: 'btn', id: 'q-flush-domain', onclick: () => q.domain ? flush(q.domain) : notice('info', 'Enter a domain to flush.') }, 'Flush domain')),
      h('div', { class: 'toolbar' }, h('span', { class: 'muted' }, 'Selected:'),
        h('button', { type: 'button', class: 'btn cbi-button-apply', id: 'q-bulk-retry', onclick: bulk('retry') }, 'Retry now'),
        h('button', { type: 'button', class: 'btn', id: 'q-bulk-bounce', onclick: bulk('bounce') }, 'Bounce'),
        h('button', { type: 'button', class: 'btn cbi-button-remove', id: 'q-bulk-delete', onclick: bulk('delete') }, 'Delete')),
      h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'queue-table' }, h('thead', {}, head), body)),
      h('div', { class: 'pager' }, prev, next, info)));

  async function load() {
    const p = new URLSearchParams({ offset: q.offset, limit: q.limit, sort: q.sort, dir: q.dir });
    if (q.domain) p.set('domain', q.domain);
    if (q.q) p.set('q', q.q);
    const r = await api('GET', '/api/queue?' + p);
    if (!r.ok) return notice('error', r.data.error);
    const { total, rows } = r.data;
    if (q.offset >= total && total > 0) { q.offset = Math.floor((total - 1) / q.limit) * q.limit; return load(); }
    all.checked = false;
    body.replaceChildren(...rows.map((m) => {
      const box = h('input', { type: 'checkbox', class: 'q-select', checked: q.selected.has(m.id) });
      box.addEventListener('change', () => { box.checked ? q.selected.add(m.id) : q.selected.delete(m.id); });
      const one = (a) => async () => { if (await act(a, [m.id])) load(); };
      return h('tr', { 'data-id': m.id },
        h('td', {}, box),
        h('td', {}, h('a', { href: '#message/' + encodeURIComponent(m.id) }, m.id)),
        h('td', {}, fmtDur(m.age_secs)),
        h('td', { class: 'wrap' }, m.sender || '<>'),
        h('td', { class: 'wrap' }, m.recipients.join(', ')),
        h('td', { class: 'wrap subject' }, m.subject),
        h('td', {}, fmtSize(m.size)),
        h('td', { class: 'attempts' }, String(m.attempts)),
        h('td', { class: 'wrap' }, m.last_error || ''),
        h('td', {}, m.next_attempt ? rel(m.next_attempt) : '-'),
        h('td', {}, h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'btn small', onclick: one('retry') }, 'Retry'),
          h('button', { type: 'button', class: 'btn small', onclick: one('bounce') }, 'Bounce'),
          h('button', { type: 'button', class: 'btn small danger', onclick: one('delete') }, 'Delete'),
          h('a', { class: 'btn small', href: '/api/messages/' + encodeURIComponent(m.id) + '/eml', download: m.id + '.eml' }, '.eml'))));
    }));
    if (!rows.length) body.replaceChildren(h('tr', {}, h('td', { colspan: COLS.length + 2, class: 'muted' }, 'No held messages match.')));
    info.textContent = total ? (q.offset + 1) + '\u2013' + (q.offset + rows.length) + ' of ' + total : '0 messages';
    prev.disabled = q.offset === 0;
    next.disabled = q.offset + rows.length >= total;
  }
  await load();
}

// ---------- message ----------
async function viewMessage(id) {
  const r = await api('GET', '/api/messages/' + encodeURIComponent(id || ''));
  if (!r.ok) { setView(h('h2', {}, 'Message'), h('p', {}, h('a', { href: '#queue' }, '\u2039 Back to queue'))); return notice('error', r.data.error); }
  const { message: m, content: c } = r.data;
  const after = async (a) => { if (await act(a, [m.id])) { if (a === 'retry') viewMessage(id); else location.hash = '#queue'; } };
  setView(h('h2', {}, 'Message ', h('span', { id: 'msg-id' }, m.id)),
    h('p', {}, h('a', { href: '#queue' }, '\u2039 Back to queue')),
    h('div', { class: 'cbi-page-actions' },
      h('button', { type: 'button', class: 'btn cbi-button-apply', id: 'msg-retry', onclick: () => after('retry') }, 'Retry now'),
      h('button', { type: 'button', class: 'btn', id: 'msg-bounce', onclick: () => after('bounce') }, 'Bounce'),
      h('button', { type: 'button', class: 'btn cbi-button-remove', id: 'msg-delete', onclick: () => after('delete') }, 'Delete'),
      h('a', { class: 'btn', href: '/api/messages/' + encodeURIComponent(m.id) + '/eml', download: m.id + '.eml' }, 'Download .eml')),
    section('Envelope', kvTable([
      ['Sender', m.sender || '<> (null sender)', 'msg-sender'], ['Recipients', m.recipients.join(', '), 'msg-rcpts'],
      ['Subject', m.subject, 'msg-subject'], ['Received', fmtTime(m.received) + ' (' + fmtDur(m.age_secs) + ' ago)'],
      ['From client', m.client + ' (HELO ' + m.helo + ')'], ['Size', fmtSize(m.size)],
      ['Checks', m.checks || 'none recorded', 'msg-checks'],
      ['Attempts', String(m.attempts), 'msg-attempts'], ['Last error', m.last_error || '-', 'msg-error'],
      ['Next attempt', m.next_attempt ? fmtTime(m.next_attempt) : '-']])),
    section('Headers', h('div', { class: 'table-wrap' }, h('table', { class: 'table kv', id: 'msg-headers' },
      h('tbody', {}, c.headers.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { class: 'wrap' }, v))))))),
    section('Body' + (c.preview_type === 'text/html' ? ' (HTML shown as source text, not rendered)' : ''),
      h('pre', { id: 'msg-body' }, c.preview || '(no text part)'),
      c.truncated ? h('div', { class: 'muted' }, 'Shown in part: the message is larger than the preview limits.') : null),
    section('Attachments', c.attachments.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'msg-attachments' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Type'), h('th', {}, 'Size'))),
        h('tbody', {}, c.attachments.map((a) => h('tr', {}, h('td', { class: 'wrap' }, a.name || '(unnamed)'), h('td', {}, a.content_type), h('td', {}, fmtSize(a.size)))))))
      : h('div', { class: 'muted' }, 'None.')));
}

// ---------- settings ----------
async function viewSettings() {
  const r = await api('GET', '/api/settings');
  if (!r.ok) return notice('error', r.data.error);
  const inputs = {};
  const errs = {};
  const groups = new Map();
  for (const f of r.data.fields) {
    let input;
    const id = 'cfg-' + f.key.replace(/[^a-z0-9]+/gi, '-');
    if (f.kind.type === 'bool') input = h('input', { type: 'checkbox', id, checked: f.value === '1' });
    else if (f.kind.type === 'select') input = h('select', { id }, f.kind.options.map((o) => h('option', { value: o }, o)));
    else if (f.kind.type === 'list') input = h('textarea', { id, rows: Math.max(2, f.value.split('\n').length + 1) });
    else input = h('input', { type: 'text', id, inputmode: f.kind.type === 'number' ? 'numeric' : null });
    input.value = f.value; input.dataset.key = f.key;
    inputs[f.key] = [f, input];
    errs[f.key] = h('div', { class: 'cbi-value-errortext', id: id + '-error' });
    const row = h('div', { class: 'cbi-value', id: id + '-row' }, h('label', { class: 'cbi-value-title', for: id }, f.label),
      h('div', { class: 'cbi-value-field' }, input, f.help ? h('div', { class: 'cbi-value-description' }, f.help) : null, errs[f.key]));
    if (!groups.has(f.section)) groups.set(f.section, []);
    groups.get(f.section).push(row);
  }
  const save = async () => {
    const values = {};
    for (const [key, [f, input]] of Object.entries(inputs)) values[key] = f.kind.type === 'bool' ? (input.checked ? '1' : '0') : input.value;
    for (const [key, e] of Object.entries(errs)) { e.textContent = ''; $(inputs[key][1].id + '-row').classList.remove('cbi-value-error'); }
    const s = await api('POST', '/api/settings', { values });
    if (s.status === 422) {
      for (const e of s.data.errors) {
        if (errs[e.field]) { errs[e.field].textContent = e.message; $(inputs[e.field][1].id + '-row').classList.add('cbi-value-error'); }
      }
      notice('error', 'Not saved: ' + s.data.errors.length + ' field(s) need attention.');
      const first = s.data.errors.find((e) => inputs[e.field]);
      if (first) inputs[first.field][1].focus();
    } else if (s.ok) {
      const r = s.data.restart_needed;
      const what = !s.data.applied ? (r.length ? '; restart to apply: ' + r.join(', ') : '')
        : r.length ? '; applied, except (restart needed): ' + r.join(', ') : '; applied';
      notice('success', 'Saved to ' + s.data.path + what + '.');
    } else notice('error', s.data.error);
  };
  setView(h('h2', {}, 'Settings'), h('div', { class: 'cbi-map-descr' }, 'Checked like "mailbag check-config" before anything is written.'),
    [...groups].map(([title, rows]) => section(title, rows)),
    h('div', { class: 'cbi-page-actions' },
      h('button', { type: 'button', class: 'btn', onclick: () => viewSettings() }, 'Reset'),
      h('button', { type: 'button', class: 'btn cbi-button-save', id: 'cfg-save', onclick: save }, 'Save & Apply')));
}

// ---------- firewall ----------
async function viewFirewall() {
  const r = await api('GET', '/api/firewall');
  if (!r.ok) return notice('error', r.data.error);
  const f = r.data;
  setView(h('h2', {}, 'Firewall'), h('div', { class: 'cbi-map-descr' }, 'Rules generated from the current settings.'),
    section('Rules (' + f.format + ', mode ' + f.mode + ')',
      h('p', {}, badge(f.applied ? 'success' : 'warning', f.applied ? 'applied' : 'not applied')),
      h('pre', { id: 'fw-rules' }, f.rules)),
    h('div', { class: 'cbi-page-actions' }, h('button', { type: 'button', class: 'btn cbi-button-apply', id: 'fw-apply', onclick: async () => {
      const a = await api('POST', '/api/firewall/apply');
      if (a.ok) { await viewFirewall(); notice('success', a.data.message); } else notice('error', a.data.error);
    } }, 'Apply')));
}

// ---------- log ----------
async function viewLog() {
  const r = await api('GET', '/api/log?limit=200');
  if (!r.ok) return notice('error', r.data.error);
  const kinds = { delivered: 'success', accepted: 'notice', deferred: 'warning', bounced: 'important', 'primary-down': 'important', 'primary-up': 'success', deleted: 'important', expired: 'important', 'spool-full': 'important', 'router-overdue': 'important', 'router-back': 'success', 'beacon-refused': 'warning', 'upstream-down': 'warning', firewall: 'notice' };
  setView(h('h2', {}, 'Log'), h('div', { class: 'cbi-map-descr' }, 'Recent events, newest first.'),
    section(null, h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'log-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Event'), h('th', {}, 'Message'), h('th', {}, 'Details'))),
      h('tbody', {}, r.data.events.map((e) => h('tr', {}, h('td', {}, fmtTime(e.time)), h('td', {}, badge(kinds[e.kind] || '', e.kind)),
        h('td', {}, e.message_id ? h('a', { href: '#message/' + encodeURIComponent(e.message_id) }, e.message_id) : '-'),
        h('td', { class: 'wrap' }, e.text))))))));
}

// ---------- start ----------
window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', async () => {
  $('logout').addEventListener('click', async () => { await api('POST', '/api/logout', {}).catch(() => {}); S.csrf = null; showLogin(); });
  try {
    const r = await api('GET', '/api/session');
    if (r.ok && r.data.csrf) { S.csrf = r.data.csrf; enter(); }
  } catch (e) { /* showLogin already ran */ }
});
