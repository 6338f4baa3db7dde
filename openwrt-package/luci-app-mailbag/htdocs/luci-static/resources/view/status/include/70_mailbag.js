'use strict';
'require baseclass';
'require rpc';

// Status → Overview: mailbag's held mail and the office server's state, in one table.

var callStatus = rpc.declare({ object: 'luci.mailbag', method: 'status', expect: { '': {} } });

function T(s) {
	return document.createTextNode(s == null ? '' : String(s));
}

return baseclass.extend({
	title: _('Mail (mailbag)'),

	load: function() {
		return L.resolveDefault(callStatus(), null);
	},

	render: function(s) {
		if (!s || s.error)
			return null;
		var rows = [
			[ _('Held messages'), String(s.queue_depth) ],
			[ _('Office mail server'), s.primary.up ? _('up') : _('down') ],
			[ _('Spool free'), '%1024.2mB'.format(s.spool_free_bytes) ]
		];
		return E('table', { 'class': 'table' }, rows.map(function(r) {
			return E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td left', 'width': '33%' }, r[0]),
				E('td', { 'class': 'td left' }, T(r[1]))
			]);
		}));
	}
});
