'use strict';
'require view';
'require rpc';
'require ui';

// Services → mailbag → Queue: the held mail, oldest first, with flush, delete and bounce.

var PAGE = 50;
var callQueue = rpc.declare({ object: 'luci.mailbag', method: 'queue', params: [ 'offset', 'limit' ], expect: { '': {} } });
var callFlush = rpc.declare({ object: 'luci.mailbag', method: 'flush', params: [ 'domain' ], expect: { '': {} } });
var callDelete = rpc.declare({ object: 'luci.mailbag', method: 'delete', params: [ 'id' ], expect: { '': {} } });
var callBounce = rpc.declare({ object: 'luci.mailbag', method: 'bounce', params: [ 'id' ], expect: { '': {} } });

// Text from mail (subjects, addresses, bodies) and from the daemon goes in as text nodes,
// never as HTML (E() would parse a string child as markup).
function T(s) {
	return document.createTextNode(s == null ? '' : String(s));
}

function notify(r) {
	ui.addNotification(null, E('p', {}, T(r.error || r.result)), r.error ? 'error' : 'info');
}

return view.extend({
	offset: 0,

	load: function() {
		return L.resolveDefault(callQueue(this.offset, PAGE), { error: _('no answer from rpcd') });
	},

	act: function(fn, id, question) {
		if (!confirm(question.format(id)))
			return;
		return fn(id).then(notify).then(L.bind(this.reload, this));
	},

	reload: function() {
		return this.load().then(L.bind(function(page) {
			var old = document.getElementById('mailbag-queue');
			if (old) old.replaceWith(this.table(page));
		}, this));
	},

	table: function(page) {
		var self = this;
		var t = E('table', { 'class': 'table', 'id': 'mailbag-queue' }, [
			E('tr', { 'class': 'tr table-titles' }, [
				E('th', { 'class': 'th' }, _('Age')),
				E('th', { 'class': 'th' }, _('Sender')),
				E('th', { 'class': 'th' }, _('Recipients')),
				E('th', { 'class': 'th' }, _('Subject')),
				E('th', { 'class': 'th' }, _('Size')),
				E('th', { 'class': 'th' }, _('Attempts / last error')),
				E('th', { 'class': 'th cbi-section-actions' }, '')
			])
		]);
		if (page.error) {
			t.appendChild(E('tr', { 'class': 'tr' }, E('td', { 'class': 'td', 'colspan': 7 }, E('em', {}, T(page.error)))));
			return t;
		}
		(page.rows || []).forEach(function(r) {
			t.appendChild(E('tr', { 'class': 'tr' }, [
				E('td', { 'class': 'td' }, T('%t'.format(r.age_secs))),
				E('td', { 'class': 'td' }, T(r.sender || '<>')),
				E('td', { 'class': 'td' }, T((r.recipients || []).join(', '))),
				E('td', { 'class': 'td' }, E('a', { 'href': L.url('admin/services/mailbag/message') + '?id=' + encodeURIComponent(r.id) }, T(r.subject || _('(no subject)')))),
				E('td', { 'class': 'td' }, T('%1024.1mB'.format(r.size))),
				E('td', { 'class': 'td' }, T('%d %s'.format(r.attempts, r.last_error || ''))),
				E('td', { 'class': 'td cbi-section-actions' }, [
					E('button', { 'class': 'cbi-button cbi-button-remove', 'click': function() {
						return self.act(callDelete, r.id, _('Delete message %s? Nobody is told.'));
					} }, _('Delete')),
					' ',
					E('button', { 'class': 'cbi-button cbi-button-action', 'click': function() {
						return self.act(callBounce, r.id, _('Return message %s to its sender?'));
					} }, _('Bounce'))
				])
			]));
		});
		if (!(page.rows || []).length)
			t.appendChild(E('tr', { 'class': 'tr placeholder' }, E('td', { 'class': 'td' }, E('em', {}, _('No mail is held.')))));
		return t;
	},

	render: function(page) {
		var self = this;
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, _('Held mail')),
			E('div', { 'class': 'cbi-map-descr' }, T(_('%d message(s) held, oldest first.').format(page.total || 0))),
			E('div', { 'class': 'cbi-section' }, self.table(page)),
			E('div', { 'class': 'cbi-page-actions' }, [
				E('button', { 'class': 'cbi-button', 'click': function() {
					self.offset = Math.max(0, self.offset - PAGE);
					return self.reload();
				} }, _('Newer')),
				' ',
				E('button', { 'class': 'cbi-button', 'click': function() {
					if (self.offset + PAGE < (page.total || 0)) self.offset += PAGE;
					return self.reload();
				} }, _('Older')),
				' ',
				E('button', { 'class': 'cbi-button cbi-button-apply', 'click': function() {
					return callFlush('').then(notify).then(L.bind(self.reload, self));
				} }, _('Deliver all now'))
			])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
