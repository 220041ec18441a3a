#!/bin/sh
# api_upload_group.sh - uploads through `docket serve` at the same time
# share the archive's flushes (group commit, store/archive_pack.c): 16
# uploads to 16 instances sent at once are each answered 201 after the
# flush that covers them, in fewer flushes than uploads (fdatasync(2) of the
# ref journal, store/archive_refs.c, or syncfs(2); counted with strace), and every one is on its instance's ref, in the database and
# found sound by verify and by plain git.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/api_server.inc"
TRACED_ASAN="${ASAN_OPTIONS:-}:detect_leaks=0"
export TMPDIR="$T/tmp" DOCKET_USER=li
mkdir -p "$TMPDIR"
N=16

dk org load "$DOCKET_SRC/examples/org.xml"
dk deploy "$DOCKET_SRC/examples/monthly-plan.xml"
expect_rc 0 "deploy monthly-plan"
dk token create --user li
li=$out
: >"$T/ids"
i=0
while [ $i -lt $N ]; do
	"$DOCKET" start monthly-plan --var month=2026-12 --var work="w$i" --var end_date=2026-12-31 \
		>>"$T/ids" 2>>"$T/start.err"
	head -c 4096 /dev/urandom >"$T/plan$i.pdf"
	i=$((i + 1))
done
expect_eq "$(grep -c . "$T/ids")" "$N" "$N instances started"
# their notes written now, so the uploads have nothing to catch up with
dk archive sync
expect_rc 0 "archive sync"

ASAN_OPTIONS=$TRACED_ASAN strace -f -qq -y -o "$T/serve.trace" -e trace=syncfs,fdatasync \
	"$DOCKET" serve --listen 127.0.0.1:0 --address-file "$T/addr" --threads $N --no-timers \
	--no-hooks 2>>"$T/serve.log" &
serve_pid=$!
i=0
while [ ! -s "$T/addr" ] && [ $i -lt 600 ] && kill -0 "$serve_pid" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
child=$(ps -o pid= --ppid "$serve_pid" | tr -d ' ')
trap 'kill -KILL $child $serve_pid 2>/dev/null; rm -rf "$T"' EXIT
base="http://$(cat "$T/addr" 2>/dev/null)"
# the archive's flushes: syncfs, or fdatasync of the ref journal
archive_flushes() { grep -cE 'syncfs\(|fdatasync\([0-9]+<[^>]*docket-refs\.journal>' "$T/serve.trace"; }
before=$(archive_flushes)
pids=""
i=0
for id in $(cat "$T/ids"); do
	curl -s -m 120 -o "$T/up.$i.json" -w '%{http_code}\n' -X POST \
		-H "Authorization: Bearer $li" --data-binary @"$T/plan$i.pdf" \
		"$base/api/instances/$id/evidence/plan?name=plan.pdf" >"$T/code.$i" &
	pids="$pids $!"
	i=$((i + 1))
done
[ -n "$pids" ] && wait $pids
flushes=$(($(archive_flushes) - before))
codes=$(cat "$T"/code.* | sort | uniq -c | tr -s ' ')
expect_eq "$codes" " $N 201" "$N uploads at once through serve answered 201"
kill -TERM "$child"
wait "$serve_pid"
serve_pid=""
echo "# $N uploads at once: $flushes flushes ($(grep -c 'syncfs(' "$T/serve.trace") syncfs in all)"
[ "$flushes" -ge 1 ] && [ "$flushes" -lt $N ] &&
	ok "the uploads shared their flushes ($flushes for $N)" ||
	not_ok "$N uploads made $flushes flushes"
i=0
on_ref=0
for id in $(cat "$T/ids"); do
	blob=$(git --git-dir="$DOCKET_HOME/archive.git" rev-parse \
		"refs/docket/instances/$id:draft/plan/plan.pdf" 2>/dev/null)
	[ "$blob" = "$(git hash-object "$T/plan$i.pdf")" ] && on_ref=$((on_ref + 1))
	i=$((i + 1))
done
expect_eq "$on_ref" "$N" "every upload is on its instance's ref"
dk verify
expect_rc 0 "verify agrees with the database"
git --git-dir="$DOCKET_HOME/archive.git" fsck --strict >/dev/null 2>&1 && ok "git fsck is happy" ||
	not_ok "git fsck finds damage"
done_testing
