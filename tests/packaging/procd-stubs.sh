# SPDX-License-Identifier: Apache-2.0
# Stand-ins for the OpenWrt shell API the init script calls (rc.common, procd.sh,
# functions.sh, validate.sh), recording what it asks procd to do in $LOG. Sourced by
# init.sh's harness under POSIX sh. Reads only the simple UCI the fixtures use:
# `config TYPE ['NAME']` and `option NAME 'VALUE'`.
# shellcheck shell=sh

log() { echo "$*" >>"$LOG"; }

procd_open_instance() { log "open_instance $*"; }
procd_set_param() { log "set_param $*"; }
procd_close_instance() { log "close_instance"; }
procd_add_reload_trigger() { log "reload_trigger $*"; }
procd_add_validation() { log "validation $*"; }
logger() {
	while read -r line; do log "logger $* $line"; done
}

config_load() { UCI_FILE="$CONFIG"; }

# Section names of TYPE (anonymous ones as cfgN, N counting all sections).
uci_sections() {
	awk -v t="$1" '$1 == "config" { n++; if ($2 == t) { s = $3; gsub("'\''", "", s); print (s == "" ? "cfg" n : s) } }' "$UCI_FILE"
}

uci_option() { # SECTION OPTION
	awk -v want="$1" -v opt="$2" '
		$1 == "config" { n++; s = $3; gsub("'\''", "", s); cur = (s == "" ? "cfg" n : s) }
		$1 == "option" && cur == want && $2 == opt { v = $3; gsub("'\''", "", v); print v }
	' "$UCI_FILE"
}

config_foreach() {
	fn="$1" type="$2"
	shift 2
	for sec in $(uci_sections "$type"); do "$fn" "$sec" "$@"; done
}

uci_load_validate() { # PACKAGE TYPE SECTION CALLBACK SPEC...
	sec="$3" cb="$4" result=0
	shift 4
	for spec in "$@"; do
		name="${spec%%:*}" rest="${spec#*:}"
		vtype="${rest%%:*}" default="${rest#*:}"
		value="$(uci_option "$sec" "$name")"
		[ -n "$value" ] || value="$default"
		case "$vtype:$value" in
		bool:0 | bool:1 | bool:true | bool:false | bool:on | bool:off | bool:yes | bool:no) ;;
		bool:*) result=1 ;;
		esac
		case "$value" in true | on | yes) [ "$vtype" = bool ] && value=1 ;; esac
		case "$value" in false | off | no) [ "$vtype" = bool ] && value=0 ;; esac
		eval "$name=\$value"
	done
	"$cb" "$sec" "$result"
}
