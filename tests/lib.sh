# lib.sh - helpers for end-to-end tests that drive the real docket binary.
# Source it from tests/e2e/*.sh; every check prints one TAP line.
#
#   dk ARGS...            run $DOCKET, output in $out/$err, status in $rc
#   expect_rc N NAME      check the last status
#   expect_out TEXT NAME  check that stdout contains TEXT (fixed string)
#   expect_err TEXT NAME  check that stderr contains TEXT
#   expect_eq GOT WANT NAME  check two values are equal
#   at INSTANT            set the clock (DOCKET_NOW) for the next commands
#   get ID FILTER         `docket show ID --json` through jq -r FILTER
#   file NAME TEXT        write TEXT and a newline to $T/NAME (a fixture)
#   report_flow           load examples/org.xml and deploy flow "plan": one
#                         state with a `report` evidence kind (many files),
#                         for tests of the archive rather than of flows
#   $EX                   the examples/ folder
set -u
: "${DOCKET:?run through tests/run.sh or set DOCKET}"
: "${DOCKET_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
T=$(mktemp -d "${TMPDIR:-/tmp}/docket-test.XXXXXX")
export DOCKET_HOME="$T/home"
trap 'rm -rf "$T"' EXIT
n=0
nfail=0
out=""
err=""
rc=0

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); nfail=$((nfail + 1)); echo "not ok $n - $*"; }

dk() {
	"$DOCKET" "$@" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	out=$(cat "$T/stdout")
	err=$(cat "$T/stderr")
	return 0
}

show_last() {
	echo "#   status: $rc"
	printf '%s\n' "$out" | head -n 20 | sed 's/^/#   out: /'
	printf '%s\n' "$err" | head -n 20 | sed 's/^/#   err: /'
}

expect_rc() {
	if [ "$rc" -eq "$1" ]; then ok "$2"; else
		not_ok "$2 (expected status $1)"
		show_last
	fi
}

expect_out() {
	case "$out" in *"$1"*) ok "$2" ;; *)
		not_ok "$2 (stdout lacks '$1')"
		show_last ;;
	esac
}

expect_err() {
	case "$err" in *"$1"*) ok "$2" ;; *)
		not_ok "$2 (stderr lacks '$1')"
		show_last ;;
	esac
}

expect_eq() {
	if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3 (got '$1', expected '$2')"; fi
}

at() { export DOCKET_NOW="$1"; }
get() { "$DOCKET" show "$1" --json | jq -r "$2"; }
file() { printf '%s\n' "$2" >"$T/$1"; }
EX="$DOCKET_SRC/examples"

report_flow() {
	cat >"$T/report-flow.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="plan" version="1">
  <title>Plan</title>
  <role id="employee"/>
  <evidence id="report" multiple="true"/>
  <state id="draft" initial="true" assign="$initiator">
    <transition id="submit" to="done"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML
	dk org load "$EX/org.xml"
	expect_rc 0 "org load"
	dk deploy "$T/report-flow.xml"
	expect_rc 0 "deploy"
}

done_testing() {
	echo "1..$n"
	[ "$nfail" -eq 0 ]
}
