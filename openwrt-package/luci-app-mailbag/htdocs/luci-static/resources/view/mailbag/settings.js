'use strict';
'require view';
'require form';
'require uci';

// Services → mailbag → Settings: /etc/config/mailbag as a form. LuCI's Save & Apply
// commits with rollback; the init script's reload trigger then checks the file
// (mailbag check-config) and sends the daemon SIGHUP. Option names and types match the
// package's UCI file and the init script's validation.

function hopOrRoute(v) {
	// "[pref ]host:port" (next hop) — the daemon checks the details on reload.
	if (v == null || v === '') return true;
	return /^(\d+\s+)?[^\s:]+:\d+$|^(\d+\s+)?\[[0-9A-Fa-f:.]+\]:\d+$/.test(v) ? true : _('Expecting [preference ]host:port');
}

return view.extend({
	load: function() {
		return uci.load('mailbag');
	},

	render: function() {
		var m, s, o;

		m = new form.Map('mailbag', _('mailbag settings'),
			_('Changes apply when saved: domains, next hops, routes and retry settings at once, the others after the service restarts (the log names them).'));

		s = m.section(form.TypedSection, 'mailbag', _('Service'));
		s.anonymous = true;
		o = s.option(form.Flag, 'enabled', _('Enabled'));
		o.rmempty = false;
		o = s.option(form.ListValue, 'role', _('Role'));
		o.value('edge', _('edge: office router, delivers to the mail server on the LAN'));
		o.value('silo', _('silo: provider, holds mail for the offices'));
		o.default = 'edge';

		s = m.section(form.TypedSection, 'smtp', _('SMTP'));
		s.anonymous = true;
		o = s.option(form.Value, 'hostname', _('Host name'));
		o.datatype = 'hostname';
		o.placeholder = 'mailbag.lan';
		o = s.option(form.DynamicList, 'listen', _('Listen on'), _('address:port, e.g. 0.0.0.0:25 or [::]:25'));
		o.datatype = 'ipaddrport(1)';
		o = s.option(form.Value, 'max_message_size', _('Largest message (bytes)'));
		o.datatype = 'uinteger';
		o.placeholder = '10485760';
		o = s.option(form.Value, 'max_sessions', _('Sessions at once'));
		o.datatype = 'uinteger';
		o.placeholder = '32';
		o = s.option(form.Flag, 'starttls', _('Offer STARTTLS'), _('Without a certificate below, one is made by px5g.'));
		o.default = '1';
		o = s.option(form.Value, 'tls_cert', _('Certificate (PEM)'));
		o.optional = true;
		o = s.option(form.Value, 'tls_key', _('Key (PEM)'));
		o.optional = true;

		s = m.section(form.TypedSection, 'policy', _('Accepted mail'));
		s.anonymous = true;
		o = s.option(form.DynamicList, 'domains', _('Domains'), _('Mail is accepted for these only (never an open relay).'));
		o.datatype = 'hostname';
		o = s.option(form.DynamicList, 'recipients', _('Recipients'), _('Optional: only these addresses of the domains above.'));

		s = m.section(form.TypedSection, 'spool', _('Spool'));
		s.anonymous = true;
		o = s.option(form.Value, 'path', _('Image file or MTD partition'), _('Not under /tmp or /var (RAM). A USB disk or a spare partition (/dev/mtdN) keeps held mail across sysupgrade.'));
		o.placeholder = '/srv/mailbag/spool.img';
		o = s.option(form.Value, 'size', _('Image size (bytes)'));
		o.datatype = 'uinteger';
		o.placeholder = '16777216';
		o = s.option(form.Value, 'max_messages', _('Most messages held'));
		o.datatype = 'uinteger';
		o.placeholder = '4096';

		s = m.section(form.TypedSection, 'relay', _('Delivery'));
		s.anonymous = true;
		o = s.option(form.DynamicList, 'next_hops', _('Office mail server(s)'), _('[preference ]host:port, e.g. 10 192.168.1.10:25'));
		o.validate = function(id, v) { return hopOrRoute(v); };
		o = s.option(form.DynamicList, 'routes', _('Routes'), _('DOMAIN = HOPS or DOMAIN = mx'));
		o = s.option(form.Value, 'retry', _('Retry schedule'));
		o.placeholder = '15m for 2h, then 30m';
		o = s.option(form.Value, 'lifetime_days', _('Give up after (days)'));
		o.datatype = 'range(1,30)';
		o.placeholder = '7';
		o = s.option(form.Value, 'delay_warning_hours', _('Delay warning after (hours, 0 = never)'));
		o.datatype = 'uinteger';
		o.placeholder = '4';
		o = s.option(form.Value, 'probe_interval', _('Probe the server every (seconds)'));
		o.datatype = 'uinteger';
		o.placeholder = '30';
		// No 'require-verify': the router package is built without certificate checking
		// against CAs (the 'verify-tls' feature), and its daemon refuses that setting.
		o = s.option(form.ListValue, 'tls_policy', _('TLS to the next hop'),
			_('require: encrypted, the certificate not checked (checking against CAs is the silo\'s job; this build cannot).'));
		o.value('opportunistic');
		o.value('require');
		o.default = 'opportunistic';
		o = s.option(form.Value, 'upstream_silo', _('Upstream silo'), _('host:port; asked to send its mail (ETRN) when the WAN comes back.'));
		o.optional = true;
		o = s.option(form.DynamicList, 'dns_servers', _('DNS servers for MX lookups'), _('Empty: those of /etc/resolv.conf'));
		o.datatype = 'or(ipaddr, ipaddrport(1))';

		s = m.section(form.TypedSection, 'firewall', _('Firewall'));
		s.anonymous = true;
		o = s.option(form.ListValue, 'mode', _('Mode'));
		o.value('walled-garden', _('walled garden: port 25 only from the silo'));
		o.value('open-when-primary-down', _('open while the office server is down'));
		o.value('off', _('off: no rules'));
		o.default = 'walled-garden';
		o = s.option(form.DynamicList, 'silo', _('Silo addresses'), _('CIDRs, IPv4 and IPv6'));
		o.datatype = 'cidr';
		o = s.option(form.Value, 'silo_dns', _('Silo host name'), _('Its A/AAAA records are admitted too.'));
		o.datatype = 'hostname';
		o.optional = true;
		o = s.option(form.DynamicList, 'ports', _('Guarded ports'));
		o.datatype = 'port';
		o.placeholder = '25';
		o = s.option(form.Value, 'wan_zone', _('WAN zone'));
		o.datatype = 'uciname';
		o.placeholder = 'wan';

		s = m.section(form.TypedSection, 'daemon', _('Daemon'));
		s.anonymous = true;
		o = s.option(form.Value, 'control_socket', _('Control socket'), _('LuCI and the mailbag command reach the daemon here.'));
		o.placeholder = '/var/run/mailbag/control.sock';

		return m.render();
	}
});
