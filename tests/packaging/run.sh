#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs every packaging test; exits non-zero if any fails.
set -uo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
status=0
for t in shellcheck.sh ipk.sh init.sh hotplug.sh feed-makefile.sh luci.sh router.sh size.sh; do
	echo "== $t"
	bash "$dir/$t" || status=1
done
exit "$status"
