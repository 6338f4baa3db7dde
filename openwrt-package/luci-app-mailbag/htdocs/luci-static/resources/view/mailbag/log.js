'use strict';
'require view';
'require rpc';
'require poll';

// Services → mailbag → Log: the daemon's recent events (deliveries, bounces, flushes,
// admin actions), newest first. The full log is in `logread -e mailbag`.

var callLog = rpc.declare({ object: 'luci.mailbag', method: 'log', params: [ 'limit' ], expect: { '': {} } });

function text(r) {
	if (r.error) return r.error;
	return (r.events || []).map(function(e) {
		return '%s  %-10s %s %s'.format(new Date(e.time * 1000).toLocaleString(), e.kind, e.message_id || '-', e.text);
	}).join('\n') || _('Nothing happened yet.');
}

return view.extend({
	load: function() {
		return L.resolveDefault(callLog(200), { error: _('no answer from rpcd') });
	},

	render: function(r) {
		var area = E('textarea', {
			'id': 'mailbag-log', 'readonly': 'readonly', 'wrap': 'off', 'rows': 25,
			'style': 'width: 100% !important; font-family: monospace'
		});
		area.value = text(r);
		poll.add(function() {
			return L.resolveDefault(callLog(200), { error: _('no answer from rpcd') }).then(function(r) {
				area.value = text(r);
			});
		}, 10);
		return E('div', { 'class': 'cbi-map' }, [ E('h2', {}, _('mailbag log')), E('div', { 'class': 'cbi-section' }, area) ]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
