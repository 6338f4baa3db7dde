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

		s = m.section(form.TypedSection, 'policy', _('Protection'));
		s.anonymous = true;
		o = s.option(form.DynamicList, 'trusted', _('Trusted networks'), _('CIDRs no check applies to (the silo, the LAN)'));
		o.datatype = 'cidr';
		o = s.option(form.DynamicList, 'dnsbl', _('DNS blocklists'), _('Zones asked at connect; a listed client gets 554'));
		o.datatype = 'hostname';
		o = s.option(form.DynamicList, 'dnsbl_score', _('Scoring blocklists'), _('Zones that only add to the spam score'));
		o.datatype = 'hostname';
		o = s.option(form.Flag, 'verify_recipients', _('Verify recipients at the office server'), _('Unknown recipients get 550; answers are cached on flash'));
		o.default = '0';
		o = s.option(form.ListValue, 'verify_unknown_while_down', _('Unknown recipient while the server is down'));
		o.value('accept');
		o.value('defer', _('defer (450)'));
		o.default = 'accept';
		o = s.option(form.DynamicList, 'block_extensions', _('Blocked attachment extensions'), _('e.g. scr; a match gets 554. Empty list: pif and scr'));
		o = s.option(form.Value, 'spam_flag_score', _('Spam flag score'), _('Points for X-Spam-Flag: YES; 0 = no scoring'));
		o.datatype = 'range(0,65535)';
		o.placeholder = '5';
		o = s.option(form.Value, 'spam_reject_score', _('Spam reject score'), _('Points for 554; 0 = never'));
		o.datatype = 'range(0,65535)';
		o.placeholder = '0';
		o = s.option(form.Value, 'guess_threshold', _('Guessed recipients before cool-down'), _('Refused recipients per client in 10 minutes; 0 = off'));
		o.datatype = 'uinteger';
		o.placeholder = '20';
		o = s.option(form.Value, 'sessions_per_client', _('Sessions per client'), _('Per IPv4 address or IPv6 /64; more get 421'));
		o.datatype = 'min(1)';
		o.placeholder = '8';
		o = s.option(form.DynamicList, 'domain_rules', _('Per-domain rules'), _('DOMAIN: accept-when=always|next-hop-down max-message-size=50M max-bytes=500M verify=on|off attachments=on|off spam=on|off'));

		s = m.section(form.TypedSection, 'policy', _('Protection (advanced)'), _('The defaults suit most sites; the daemon checks the same ranges.'));
		s.anonymous = true;
		o = s.option(form.Value, 'dnsbl_timeout', _('Blocklist timeout (seconds)'), _('All blocklist lookups of a connection together; a client is let through when it passes (1-60)'));
		o.datatype = 'range(1,60)';
		o.placeholder = '5';
		o = s.option(form.Value, 'verify_positive_days', _('Keep "exists" answers (days)'), _('Recipient verification cache (1-365)'));
		o.datatype = 'range(1,365)';
		o.placeholder = '30';
		o = s.option(form.Value, 'verify_negative_minutes', _('Keep "unknown" answers (minutes)'), _('Recipient verification cache (1-10080, a week)'));
		o.datatype = 'range(1,10080)';
		o.placeholder = '60';
		o = s.option(form.Value, 'verify_cache', _('Verification cache file'), _('Empty: next to the spool image (spool.img.verify). Applies after a restart.'));
		o.placeholder = '/srv/mailbag/spool.img.verify';
		o = s.option(form.Value, 'guess_window', _('Guessing window (seconds)'), _('Refused recipients are counted over this long (1-86400)'));
		o.datatype = 'range(1,86400)';
		o.placeholder = '600';
		o = s.option(form.Value, 'guess_cooldown', _('Guessing cool-down (seconds)'), _('A guessing client gets 450 for every RCPT this long (1-86400)'));
		o.datatype = 'range(1,86400)';
		o.placeholder = '600';
		o = s.option(form.Value, 'guess_delay', _('Cool-down delay (seconds)'), _('Each RCPT of a cooling-down client waits this long before its 450 (0-60)'));
		o.datatype = 'range(0,60)';
		o.placeholder = '5';
		o = s.option(form.Value, 'stress_idle_timeout', _('Idle timeout under stress (seconds)'), _('Before MAIL, while three quarters of the sessions are taken; 0 = no stress mode (0-3600)'));
		o.datatype = 'range(0,3600)';
		o.placeholder = '10';

		// No 'Virus scanning' section: the router package is built without the 'scan'
		// feature (clamd), and its daemon refuses scan.clamd. The silo scans.

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
		o = s.option(form.DynamicList, 'upstream_silo', _('Upstream silos'), _('host:port, most preferred first; each is asked to send its mail (ETRN) when it can be reached again.'));
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

		s = m.section(form.TypedSection, 'notify', _('Notifications'));
		s.anonymous = true;
		o = s.option(form.DynamicList, 'to', _('Tell these addresses'), _('When the office server goes down or comes back, the spool is nearly full, or mail expires.'));
		o = s.option(form.Value, 'via', _('Send notices via'), _('mx (the recipients\' MX, never the server that is down) or [preference ]host:port'));
		o.placeholder = 'mx';
		// http:// only: https needs certificate checking against CAs (the 'verify-tls'
		// feature), which the router package is built without; its daemon refuses https.
		o = s.option(form.DynamicList, 'webhook', _('Webhooks'), _('http:// URLs (on the LAN), POSTed a JSON document per notice; https is not supported by the router build'));
		o.validate = function(id, v) {
			if (v == null || v === '') return true;
			return /^http:\/\//i.test(v) ? true : _('Expecting an http:// URL (https is not supported by the router build)');
		};
		o = s.option(form.Value, 'hook', _('Hook directory'), _('Executables run per notice'));
		o.placeholder = '/etc/mailbag/notify.d';
		o = s.option(form.Value, 'damping', _('At most one notice of a kind per (seconds)'));
		o.datatype = 'uinteger';
		o.placeholder = '900';
		o = s.option(form.Value, 'spool_full_percent', _('Spool nearly full at (percent, 0 = never)'));
		o.datatype = 'range(0,100)';
		o.placeholder = '80';

		s = m.section(form.TypedSection, 'monitor', _('Monitoring'));
		s.anonymous = true;
		o = s.option(form.Value, 'router_id', _('Router name in beacons'), _('Empty: the SMTP host name'));
		o.optional = true;
		o = s.option(form.Value, 'beacon_secret', _('Beacon secret'), _('Given by the provider; empty sends no beacons to the upstream silo.'));
		o.password = true;
		o.optional = true;
		o = s.option(form.Value, 'beacon_interval', _('Beacon every (seconds)'));
		o.datatype = 'min(1)';
		o.placeholder = '300';
		o = s.option(form.Value, 'down_after', _('Server down after (failures in a row)'));
		o.datatype = 'range(1,100)';
		o.placeholder = '2';
		o = s.option(form.Value, 'led', _('LED'), _('Under /sys/class/leds/: on while mail is held, blinking while the server is down'));
		o.optional = true;

		s = m.section(form.TypedSection, 'daemon', _('Daemon'));
		s.anonymous = true;
		o = s.option(form.Value, 'control_socket', _('Control socket'), _('LuCI and the mailbag command reach the daemon here.'));
		o.placeholder = '/var/run/mailbag/control.sock';

		return m.render();
	}
});
