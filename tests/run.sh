#!/bin/sh
# run.sh BUILD - runs every test program and counts their TAP lines.
#
# Unit tests are cmocka programs in BUILD/tests/test_*; end-to-end tests are
# shell scripts in tests/e2e/*.sh that drive BUILD/docket. Each speaks TAP
# ("ok N - name" / "not ok N - name"). A program that dies, or exits non-zero
# without a "not ok", counts as one more failure. The last line is
# "N passed, N failed".
set -u
BUILD=${1:-build/asan}
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$top/$BUILD" 2>/dev/null && pwd) || { echo "no build in $1; run make test" >&2; exit 1; }
export DOCKET="$BUILD/docket" DOCKET_BUILD="$BUILD" DOCKET_SRC="$top"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=99"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=99"
export CMOCKA_MESSAGE_OUTPUT=TAP
unset DOCKET_HOME DOCKET_USER DOCKET_NOW
passed=0
failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

run_one() { # name command...
	name=$1
	shift
	out="$log/out"
	"$@" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^not ok ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited with status $rc" >>"$out"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" -gt 0 ]; then
		printf '%-40s %4d passed, %d FAILED\n' "$name" "$p" "$f"
		sed 's/^/    /' "$out" | tail -n 80
	else
		printf '%-40s %4d passed\n' "$name" "$p"
	fi
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run_one "unit/$(basename "$t")" "$t"
done
for t in "$top"/tests/e2e/*.sh; do
	[ -f "$t" ] || continue
	run_one "e2e/$(basename "$t" .sh)" sh "$t"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
