# scenarios.sh - replays every tests/scenarios/*.scn through the real binary
# and compares the transcript it produces with the file, line for line.
#
# A scenario is a transcript: lines starting with "$ " are commands, the
# indented lines under each are what must follow. Adding a case means
# adding a file. Commands:
#   $ at TIME                 the clock (DOCKET_NOW) from now on
#   $ file NAME SIZE          make a file of SIZE bytes to attach
#   $ USER ARGS...            run `docket ARGS` as USER ("-" for nobody)
#   $ trace ID                the trace line of instance ID (after a tick)
#   $ print USER ARGS...      as USER ARGS, and its standard output follows,
#                             indented (e.g. `print - log 1`)
# After each docket command the driver writes
#   exit N                    its status
#   error: MESSAGE            the first line of stderr, when it failed
#   ID: STATE | tasks U,V | +EVENT,EVENT
# the last for the instance the command names (or starts): its states, open
# tasks and the audit events the command added. SCN_SHOW=1 prints each
# transcript on stderr, to write a new case: run it, read it, keep it;
# SCN_ONLY=NAME replays only NAME.scn.
. "$DOCKET_SRC/tests/lib.sh"

seen_file="$T/seen"
: >"$seen_file"

trace_instance() { # ID
	id=$1
	"$DOCKET" show "$id" --json >"$T/show" 2>/dev/null || return 0
	"$DOCKET" log "$id" --json >"$T/log" 2>/dev/null || return 0
	before=$(sed -n "s/^$id //p" "$seen_file" | tail -n 1)
	before=${before:-0}
	total=$(jq length "$T/log")
	events=$(jq -r --argjson n "$before" '[.[$n:][] | .type] | join(",")' "$T/log")
	echo "$id $total" >>"$seen_file"
	jq -r --arg ev "$events" '"  \(.id): \(.states | join(",")) [\(.status)] | tasks \([.tasks[] | .user] | unique | join(",")) | +\($ev)"' "$T/show"
}

replay() { # FILE -> transcript on stdout
	cd "$T/work" || return 1
	while IFS= read -r line; do
		case "$line" in
		'$ '*) ;;
		*) continue ;;
		esac
		echo "$line"
		set -- ${line#\$ }
		case "$1" in
		at) DOCKET_NOW=$2; export DOCKET_NOW; continue ;;
		file) head -c "$3" /dev/urandom >"$2"; continue ;;
		trace) trace_instance "$2"; continue ;;
		esac
		print=
		if [ "$1" = print ]; then
			print=1
			shift
		fi
		user=$1
		shift
		if [ "$user" = - ]; then
			"$DOCKET" "$@" >"$T/o" 2>"$T/e"
		else
			"$DOCKET" --as "$user" "$@" >"$T/o" 2>"$T/e"
		fi
		status=$?
		echo "  exit $status"
		[ $status -ne 0 ] && sed -n '1s/^docket [a-z]*: /  error: /p' "$T/e"
		[ -n "$print" ] && sed 's/^/  | /' "$T/o"
		case "$1" in
		start) [ $status -eq 0 ] && trace_instance "$(cat "$T/o")" ;;
		act | recall | attach) trace_instance "$2" ;;
		esac
	done <"$1"
}

for scn in "$DOCKET_SRC"/tests/scenarios/*.scn; do
	name=$(basename "$scn" .scn)
	[ -n "${SCN_ONLY:-}" ] && [ "$name" != "$SCN_ONLY" ] && continue
	rm -rf "$DOCKET_HOME" "$T/work"
	mkdir -p "$T/work"
	ln -s "$DOCKET_SRC/examples" "$T/work/examples"
	ln -s "$DOCKET_SRC/tests/scenarios" "$T/work/scenarios"
	: >"$seen_file"
	unset DOCKET_NOW
	(replay "$scn") >"$T/got"
	[ -n "${SCN_SHOW:-}" ] && cat "$T/got" >&2
	grep -v '^#' "$scn" | grep -v '^$' >"$T/want"
	if diff -u "$T/want" "$T/got" >"$T/diff"; then
		ok "scenario $name"
	else
		not_ok "scenario $name"
		sed 's/^/#   /' "$T/diff" | head -n 40
	fi
done
done_testing
