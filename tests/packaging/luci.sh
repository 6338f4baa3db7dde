#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# SPDX-License-Identifier: Apache-2.0
# luci-app-mailbag against itself and the binary: every view parses (node --check, wrapped
# in a function as LuCI's loader wraps it), menu.d and acl.d are valid JSON and point at
# views that exist, the ubus methods the views declare, the ACL grants and `mailbag rpcd
# list` names are one and the same set, and every option the settings form edits is one
# the init script validates for that section type.
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v node >/dev/null || { fail "node not installed (.ci/deps/web.apt)"; finish; }
bin="$(mailbag_bin)" || { echo "cannot build mailbag" >&2; exit 1; }
app="$repo/openwrt-package/luci-app-mailbag"
views="$app/htdocs/luci-static/resources/view"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for js in "$views"/mailbag/*.js "$views"/status/include/*.js; do
	{ echo "(function() {"; cat "$js"; echo "});"; } >"$work/view.js"
	check "node --check ${js#"$app"/}" node --check "$work/view.js"
done

"$bin" rpcd list >"$work/list.json" || fail "mailbag rpcd list failed"
check "rpcd plugin execs the binary's rpcd command" \
	grep -qx 'exec /usr/bin/mailbag rpcd "$@"' "$app/root/usr/libexec/rpcd/luci.mailbag"
check "rpcd plugin is executable" test -x "$app/root/usr/libexec/rpcd/luci.mailbag"

python3 - "$work/list.json" "$app" "$repo/openwrt-package/mailbag/files/mailbag.init" >"$work/report" 2>&1 <<'PY'
import json, os, re, sys
listing, app, init = sys.argv[1:4]
views = os.path.join(app, "htdocs/luci-static/resources/view")
ok = True
def check(what, cond, detail=""):
    global ok
    print(("ok: " if cond else "FAIL: ") + what + ("" if cond else " " + detail))
    ok = ok and cond

listed = set(json.load(open(listing)))
acl = json.load(open(os.path.join(app, "root/usr/share/rpcd/acl.d/luci-app-mailbag.json")))
menu = json.load(open(os.path.join(app, "root/usr/share/luci/menu.d/luci-app-mailbag.json")))
grant = acl["luci-app-mailbag"]
granted = set(grant["read"]["ubus"]["luci.mailbag"]) | set(grant["write"]["ubus"]["luci.mailbag"])
declared = set()
for root, _, files in os.walk(views):
    for f in files:
        text = open(os.path.join(root, f)).read()
        declared |= set(re.findall(r"object:\s*'luci\.mailbag',\s*method:\s*'([a-z_]+)'", text))
check("ACL grants exactly the methods rpcd list names", granted == listed,
      f"granted {sorted(granted)} listed {sorted(listed)}")
check("views call exactly the methods rpcd list names", declared == listed,
      f"declared {sorted(declared)} listed {sorted(listed)}")
read = set(grant["read"]["ubus"]["luci.mailbag"])
check("actions (flush, delete, bounce, firewall_apply, check_setup) need write access",
      not read & {"flush", "delete", "bounce", "firewall_apply", "check_setup"})
check("ACL: uci mailbag read and write", grant["read"]["uci"] == ["mailbag"] and grant["write"]["uci"] == ["mailbag"])
for path, entry in menu.items():
    action = entry.get("action", {})
    if action.get("type") == "view":
        f = os.path.join(views, action["path"] + ".js")
        check(f"menu {path} -> view {action['path']}.js exists", os.path.isfile(f))
check("menu entry depends on the ACL", menu["admin/services/mailbag"]["depends"]["acl"] == ["luci-app-mailbag"])

# Settings form options per section type, against the init script's validation.
validated = {}
for m in re.finditer(r"uci_load_validate mailbag (\w+) \"\$1\" \"\$2\"((?:\s*\\\n\s*'[^']*')+)", open(init).read()):
    validated[m.group(1)] = set(re.findall(r"'(\w+):", m.group(2)))
form = {}
section = None
for line in open(os.path.join(views, "mailbag/settings.js")):
    s = re.search(r"m\.section\(form\.TypedSection, '(\w+)'", line)
    if s:
        section = s.group(1)
    o = re.search(r"s\.option\(form\.\w+, '(\w+)'", line)
    if o:
        form.setdefault(section, set()).add(o.group(1))
# Not in the form: the built-in page (web) and what the router build leaves out (scan: no
# clamd client without the 'scan' feature; its daemon refuses scan.clamd).
check("settings form covers every section type", set(form) == set(validated) - {"web", "scan"},
      f"form {sorted(form)} init {sorted(validated)}")
for sec, opts in sorted(form.items()):
    unknown = opts - validated.get(sec, set())
    check(f"settings [{sec}]: every option is one the init script validates", not unknown, f"unknown {sorted(unknown)}")
js = open(os.path.join(views, "mailbag/settings.js")).read()
check("settings offer no require-verify (not in the router build)", "value('require-verify')" not in js)
check("settings refuse https webhooks (not in the router build)", "^http:\\/\\/" in js)
check("settings offer no metrics token and no page listener (the router build has no page)",
      "'metrics_token'" not in js and not form.get("web"))
sys.exit(0 if ok else 1)
PY
status=$?
cat "$work/report"
[ "$status" = 0 ] || failures=$((failures + $(grep -c '^FAIL' "$work/report")))
finish
