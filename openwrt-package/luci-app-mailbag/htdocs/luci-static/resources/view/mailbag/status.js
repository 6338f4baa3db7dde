'use strict';
'require view';
'require rpc';
'require poll';
'require ui';

// Services → mailbag → Status: the daemon's view of itself (ubus luci.mailbag status).

var callStatus = rpc.declare({ object: 'luci.mailbag', method: 'status', expect: { '': {} } });
var callFlush = rpc.declare({ object: 'luci.mailbag', method: 'flush', params: [ 'domain' ], expect: { '': {} } });
var callCheckSetup = rpc.declare({ object: 'luci.mailbag', method: 'check_setup', expect: { '': {} } });

// Text from mail (subjects, addresses, bodies) and from the daemon goes in as text nodes,
// never as HTML (E() would parse a string child as markup).
function T(s) {
	return document.createTextNode(s == null ? '' : String(s));
}

function age(secs) {
	if (secs == null) return '-';
	if (secs < 120) return _('%d s').format(secs);
	if (secs < 7200) return _('%d min').format(Math.floor(secs / 60));
	if (secs < 172800) return _('%d h').format(Math.floor(secs / 3600));
	return _('%d days').format(Math.floor(secs / 86400));
}

function when(unix) {
	return unix ? new Date(unix * 1000).toLocaleString() : '-';
}

function rows(s) {
	if (s.error)
		return [ [ _('Daemon'), E('em', {}, T(s.error)) ] ];
	return [
		[ _('Role'), s.role ],
		[ _('Host name'), s.hostname ],
		[ _('Accepted domains'), (s.domains || []).join(', ') || _('none: all mail is refused') ],
		[ _('Office mail server'), '%s (%s)'.format((s.primary.next_hops || []).join(', ') || _('by MX'), s.primary.up ? _('up') : _('down')) ],
		[ _('Upstream silos'), (s.upstream || []).map(function(u) {
			return '%s (%s)'.format(u.address, u.reachable ? _('reachable') : _('not reachable'));
		}).join(', ') || '-' ],
		[ _('Held messages'), String(s.queue_depth) ],
		[ _('Oldest held'), age(s.oldest_age_secs) ],
		[ _('Next retry'), when(s.next_retry) ],
		[ _('Spool used / free'), '%1024.2mB / %1024.2mB'.format(s.spool_used_bytes, s.spool_free_bytes) ],
		[ _('Firewall'), s.firewall_mode ],
		[ _('Version'), s.version ]
	];
}

// The setup check (`mailbag doctor`): one row per check, its fix under each problem.
function checks(r) {
	if (r.error)
		return E('p', { 'id': 'mailbag-doctor' }, E('em', {}, T(r.error)));
	var badge = { pass: 'success', warn: 'warning', fail: 'danger' };
	return E('div', { 'id': 'mailbag-doctor' }, [
		E('p', {}, T(_('%d passed, %d warnings, %d failed').format(r.passed, r.warnings, r.failed))),
		E('table', { 'class': 'table' }, (r.checks || []).map(function(c) {
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td left', 'width': '10%' }, E('span', { 'class': 'label ' + (badge[c.status] || '') }, T(c.status))),
				E('td', { 'class': 'td left' }, [ T(c.text), c.fix ? E('div', { 'class': 'cbi-value-description' }, T(_('Fix: %s').format(c.fix))) : '' ])
			]);
		}))
	]);
}

function table(s) {
	return E('table', { 'class': 'table', 'id': 'mailbag-status' }, rows(s).map(function(r) {
		return E('tr', { 'class': 'tr' }, [
			E('td', { 'class': 'td left', 'width': '33%' }, r[0]),
			E('td', { 'class': 'td left' }, T(r[1]))
		]);
	}));
}

return view.extend({
	load: function() {
		return L.resolveDefault(callStatus(), { error: _('no answer from rpcd') });
	},

	render: function(status) {
		var node = E('div', { 'class': 'cbi-section' }, table(status));
		poll.add(function() {
			return L.resolveDefault(callStatus(), { error: _('no answer from rpcd') }).then(function(s) {
				var old = document.getElementById('mailbag-status');
				if (old) old.replaceWith(table(s));
			});
		}, 10);
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, _('mailbag')),
			E('div', { 'class': 'cbi-map-descr' }, _('SMTP backup MX: mail for the office is held here while its server or link is down.')),
			node,
			E('button', {
				'class': 'cbi-button cbi-button-apply',
				'click': function() {
					return callFlush('').then(function(r) {
						ui.addNotification(null, E('p', {}, T(r.error || r.result)), r.error ? 'error' : 'info');
					});
				}
			}, _('Deliver held mail now')),
			E('h3', {}, _('Setup check')),
			E('div', { 'class': 'cbi-map-descr' }, _('MX records, MTA-STS, the next hops and silos (they get an ETRN), the firewall and the spool, as "mailbag doctor" checks them.')),
			E('button', {
				'class': 'cbi-button cbi-button-action',
				'click': ui.createHandlerFn(this, function() {
					return L.resolveDefault(callCheckSetup(), { error: _('no answer from rpcd') }).then(function(r) {
						var old = document.getElementById('mailbag-doctor');
						if (old) old.replaceWith(checks(r));
					});
				})
			}, _('Check setup')),
			E('div', { 'id': 'mailbag-doctor' })
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
