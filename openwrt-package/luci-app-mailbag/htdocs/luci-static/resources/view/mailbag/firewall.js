'use strict';
'require view';
'require rpc';
'require ui';

// Services → mailbag → Firewall: the walled-garden rules mailbag keeps in fw4 (preview as
// `mailbag firewall render --format nft` prints it) and applying them now.

var callPreview = rpc.declare({ object: 'luci.mailbag', method: 'firewall_preview', expect: { '': {} } });
var callApply = rpc.declare({ object: 'luci.mailbag', method: 'firewall_apply', expect: { '': {} } });

function T(s) {
	return document.createTextNode(s == null ? '' : String(s));
}

return view.extend({
	load: function() {
		return L.resolveDefault(callPreview(), { error: _('no answer from rpcd') });
	},

	render: function(p) {
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, _('Firewall')),
			E('div', { 'class': 'cbi-map-descr' }, _('SMTP from the WAN is admitted only from the silo. The rules live in fw4 (/usr/share/nftables.d) and are re-applied on every firewall reload; the mode and silo addresses are on the Settings page.')),
			p.error ? E('p', {}, E('em', {}, T(p.error))) : E('div', { 'class': 'cbi-section' }, [
				E('p', {}, T(_('Mode: %s').format(p.mode))),
				E('pre', { 'id': 'mailbag-rules' }, T(p.rules))
			]),
			E('div', { 'class': 'cbi-page-actions' }, E('button', {
				'class': 'cbi-button cbi-button-apply',
				'click': function() {
					return callApply().then(function(r) {
						ui.addNotification(null, E('p', {}, T(r.error || r.result)), r.error ? 'error' : 'info');
					});
				}
			}, _('Apply now')))
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
