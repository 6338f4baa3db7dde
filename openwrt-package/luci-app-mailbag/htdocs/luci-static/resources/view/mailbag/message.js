'use strict';
'require view';
'require rpc';
'require ui';

// Services → mailbag → Message: one held message (?id=…): envelope, each recipient's state,
// header fields and the start of the body, always as text.

var callMessage = rpc.declare({ object: 'luci.mailbag', method: 'message', params: [ 'id' ], expect: { '': {} } });
var callDelete = rpc.declare({ object: 'luci.mailbag', method: 'delete', params: [ 'id' ], expect: { '': {} } });
var callBounce = rpc.declare({ object: 'luci.mailbag', method: 'bounce', params: [ 'id' ], expect: { '': {} } });

// Text from mail (subjects, addresses, bodies) and from the daemon goes in as text nodes,
// never as HTML (E() would parse a string child as markup).
function T(s) {
	return document.createTextNode(s == null ? '' : String(s));
}

function idFromUrl() {
	var m = /[?&]id=([0-9A-Fa-f]{16})(&|$)/.exec(window.location.search);
	return m ? m[1] : null;
}

return view.extend({
	load: function() {
		var id = idFromUrl();
		if (!id)
			return Promise.resolve({ error: _('Choose a message on the Queue page.') });
		return L.resolveDefault(callMessage(id), { error: _('no answer from rpcd') });
	},

	render: function(m) {
		if (m.error)
			return E('div', { 'class': 'cbi-map' }, [ E('h2', {}, _('Message')), E('p', {}, E('em', {}, T(m.error))) ]);
		var done = function(r) {
			ui.addNotification(null, E('p', {}, T(r.error || r.result)), r.error ? 'error' : 'info');
		};
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, T(_('Message %s').format(m.id))),
			E('table', { 'class': 'table' }, [
				[ _('From'), m.sender || '<>' ],
				[ _('Received'), new Date(m.received * 1000).toLocaleString() ],
				[ _('Size'), '%1024.1mB'.format(m.size) ],
				[ _('Attempts'), String(m.attempts) ],
				[ _('Last error'), m.last_error || '-' ]
			].concat((m.recipient_status || []).map(function(r) {
				return [ _('To'), '%s (%s)'.format(r.address, r.status) ];
			})).map(function(r) {
				return E('tr', { 'class': 'tr' }, [ E('td', { 'class': 'td left', 'width': '25%' }, r[0]), E('td', { 'class': 'td left' }, T(r[1])) ]);
			})),
			E('h3', {}, _('Header')),
			E('pre', { 'style': 'white-space: pre-wrap' }, T((m.headers || []).map(function(h) { return h[0] + ': ' + h[1]; }).join('\n'))),
			E('h3', {}, _('Body (start)')),
			E('pre', { 'style': 'white-space: pre-wrap' }, T(m.preview + (m.truncated ? '\n…' : ''))),
			E('div', { 'class': 'cbi-page-actions' }, [
				E('button', { 'class': 'cbi-button cbi-button-remove', 'click': function() {
					if (confirm(_('Delete this message? Nobody is told.'))) return callDelete(m.id).then(done);
				} }, _('Delete')),
				' ',
				E('button', { 'class': 'cbi-button cbi-button-action', 'click': function() {
					if (confirm(_('Return this message to its sender?'))) return callBounce(m.id).then(done);
				} }, _('Bounce'))
			])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
