#!/usr/bin/env bash
# Browser tests (tests/web/run.sh) need Debian's chromium at /usr/bin/chromium and Node >= 18
# (playwright-core 1.56 is pinned for Node 18 support). Packages come from .ci/deps/web.apt;
# this only checks them, so it is safe to run repeatedly.
set -euo pipefail
# Node.js: the machine image ships Node 20 with npm (a NodeSource build that conflicts with
# Debian's separate npm package); only on a machine without them install Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
test -x /usr/bin/chromium || { echo "web: /usr/bin/chromium missing (apt-get install -y chromium)" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$major" -ge 18 ] || { echo "web: node $major too old, need >= 18" >&2; exit 1; }
command -v npm >/dev/null || { echo "web: npm missing" >&2; exit 1; }
