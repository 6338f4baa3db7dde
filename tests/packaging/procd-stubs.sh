# SPDX-License-Identifier: Apache-2.0
# Stand-ins for the OpenWrt shell API the init script calls (rc.common, procd.sh,
# functions.sh, validate.sh), recording what it asks procd to do in $LOG. Sourced by
# init.sh's and hotplug.sh's harnesses under POSIX sh. Reads only the simple UCI the
# fixtures use: `config TYPE ['NAME']`, `option NAME 'VALUE'`, `list NAME 'VALUE'`.
# shellcheck shell=sh

log() { echo "$*" >>"$LOG"; }

procd_open_instance() {
	log "open_instance $*"
	jail_open=""
}
procd_set_param() { log "set_param $*"; }
procd_close_instance() { log "close_instance"; }
# procd.sh adds mounts to the instance's jail object: before procd_add_jail they are lost.
procd_add_jail() {
	log "jail $*"
	jail_open=1
}
# One line per path: 'jail_mount PATH', 'jail_mount_rw PATH' ('..._lost' without a jail).
jail_mounts() {
	kind="$1"
	shift
	[ -n "$jail_open" ] || kind="${kind}_lost"
	for p in "$@"; do log "$kind $p"; done
}
procd_add_jail_mount() { jail_mounts jail_mount "$@"; }
procd_add_jail_mount_rw() { jail_mounts jail_mount_rw "$@"; }
procd_add_reload_trigger() { log "reload_trigger $*"; }
procd_add_validation() { log "validation $*"; }
procd_send_signal() { log "send_signal $*"; }
procd_open_validate() { log "open_validate"; }
procd_close_validate() { log "close_validate"; }
logger() { # [-t TAG] [-p PRIO] [MESSAGE...]: the message, or each line of stdin
	opts=""
	while [ $# -ge 2 ] && case "$1" in -t | -p) true ;; *) false ;; esac do
		opts="$opts $1 $2"
		shift 2
	done
	if [ $# -gt 0 ]; then
		log "logger$opts $*"
	else
		while read -r line; do log "logger$opts $line"; done
	fi
}

# config_load PACKAGE: mailbag is $CONFIG, anything else $UCI_DIR/PACKAGE.
config_load() {
	if [ "$1" = mailbag ]; then UCI_FILE="$CONFIG"; else UCI_FILE="$UCI_DIR/$1"; fi
}

config_get() { # VAR SECTION OPTION
	eval "$1=\$(uci_option \"\$2\" \"\$3\")"
}

# Section names of TYPE (anonymous ones as cfgN, N counting all sections).
uci_sections() {
	awk -v t="$1" '$1 == "config" { n++; if ($2 == t) { s = $3; gsub("'\''", "", s); print (s == "" ? "cfg" n : s) } }' "$UCI_FILE"
}

uci_option() { # SECTION OPTION: the value, or a list's values separated by spaces
	awk -v want="$1" -v opt="$2" '
		$1 == "config" { n++; s = $3; gsub("'\''", "", s); cur = (s == "" ? "cfg" n : s) }
		($1 == "option" || $1 == "list") && cur == want && $2 == opt {
			v = $3; gsub("'\''", "", v); out = (out == "" ? v : out " " v)
		}
		END { if (out != "") print out }
	' "$UCI_FILE"
}

config_foreach() {
	fn="$1" type="$2"
	shift 2
	for sec in $(uci_sections "$type"); do "$fn" "$sec" "$@"; done
}

uci_load_validate() { # PACKAGE TYPE SECTION CALLBACK SPEC...
	# Without a section (inside procd_open_validate): the schema procd is given.
	if [ -z "$3" ]; then
		pkg="$1" type="$2"
		shift 4
		log "validate $pkg $type $*"
		return 0
	fi
	sec="$3" cb="$4" result=0
	shift 4
	for spec in "$@"; do
		name="${spec%%:*}" rest="${spec#*:}"
		vtype="${rest%%:*}" default=""
		case "$rest" in *:*) default="${rest#*:}" ;; esac
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
