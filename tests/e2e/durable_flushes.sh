# durable_flushes.sh - how many times a durable step flushes to disk,
# counted with strace: a state change (act, start) is durable with SQLite's
# commit alone, its archive note being written later by a catch-up; the
# archive is made durable by barriers (one syncfs(2) after a unit's
# objects, one after its refs; an upload's one flush, an fdatasync(2) of
# the ref journal, covers its objects and the intent of its ref's move,
# both in the journal's record), never by an fsync of every file; a
# catch-up (`docket archive sync`, a tick's, a `docket serve` round) pays
# one barrier pair for all the notes it writes; SQLite commits once per
# command and keeps its WAL across processes (no WAL re-made and no
# checkpoint at every exit). Fails when a step goes back to writing the
# archive, to per-file syncing or to flushes per note.
. "$DOCKET_SRC/tests/lib.sh"
. "$DOCKET_SRC/tests/e2e/api_server.inc"
# LeakSanitizer cannot run under ptrace: strace's runs go without it
# (every other test runs the same commands with it).
TRACED_ASAN="${ASAN_OPTIONS:-}:detect_leaks=0"
export DOCKET_USER=li DOCKET_NOW=2026-11-02T09:00:00+08:00

# traced FILE ARGS...: runs docket ARGS under strace -f, the flushes it
# made into $T/FILE; its status in $rc, its output in $out and $err
traced() {
	f=$1
	shift
	ASAN_OPTIONS=$TRACED_ASAN strace -f -qq -y -o "$T/$f" \
		-e trace=fsync,fdatasync,syncfs,sync_file_range,msync,sync \
		"$DOCKET" "$@" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	out=$(cat "$T/stdout")
	err=$(cat "$T/stderr")
}
# count FILE CALL: how many times CALL was made (strace -f pads the pid to
# five columns: a pid of four digits or fewer is followed by more spaces)
count() { grep -cE "(^|[0-9] +)$2\(" "$T/$1"; }
# journal FILE: fdatasyncs of the archive's ref journal (strace -y names the file)
journal() { grep -cE "fdatasync\([0-9]+<[^>]*docket-refs\.journal>" "$T/$1"; }
summary() { echo "# $1: fsync $(count "$1" fsync), fdatasync $(count "$1" fdatasync), syncfs $(count "$1" syncfs)"; }

dk org load "$EX/org.xml"
dk deploy "$EX/monthly-plan.xml"
dk start monthly-plan --var month=2026-11 --var work=x --var end_date=2026-11-30
expect_rc 0 "an instance to work on"
id=$out
printf '%%PDF-1.7 plan\n' >"$T/plan.pdf"
dk archive sync
expect_out "wrote 1 archive note" "the start's note, by the catch-up"

traced attach attach "$id" "$T/plan.pdf" --evidence plan
expect_rc 0 "attach under strace"
summary attach
expect_eq "$(count attach fsync)" 0 "attach fsyncs no file (no per-file syncing)"
expect_eq "$(count attach syncfs)" 0 "attach: no syncfs"
expect_eq "$(journal attach)" 1 "attach: one flush, of the journal's record of its objects and its ref's intent (store/archive_refs.c)"
# one commit, the directory once per process, and the WAL header when the
# WAL was just emptied: never the five of a re-made WAL and an exit checkpoint
sqlite=$(($(count attach fdatasync) - $(journal attach)))
[ "$sqlite" -le 3 ] && ok "attach: SQLite flushes at most 3 times" ||
	not_ok "attach: SQLite flushed $sqlite times"

traced act act "$id" submit
expect_rc 0 "act under strace"
summary act
expect_eq "$(count act fsync)" 0 "act fsyncs no file"
expect_eq "$(count act syncfs)" 0 "act flushes no archive: its note waits for the catch-up"
[ "$(count act fdatasync)" -le 3 ] && ok "act: SQLite flushes at most 3 times" ||
	not_ok "act: SQLite flushed $(count act fdatasync) times"
traced start start monthly-plan --var month=2026-12 --var work=z --var end_date=2026-12-31
expect_rc 0 "start under strace"
summary start
expect_eq "$(($(count start fsync) + $(count start syncfs)))" 0 "start flushes no archive either"
[ "$(count start fdatasync)" -le 3 ] && ok "start: SQLite flushes at most 3 times" ||
	not_ok "start: SQLite flushed $(count start fdatasync) times"
# the catch-up: the submit's note and the start's, one barrier pair for both
traced sync archive sync
expect_rc 0 "archive sync under strace"
expect_out "wrote 2 archive notes" "it wrote the two notes waiting"
summary sync
expect_eq "$(count sync fsync)" 0 "archive sync fsyncs no file"
expect_eq "$(count sync syncfs)" 2 "two notes: one flush for their commits, one for their refs"
traced idle archive sync
expect_eq "$(count idle syncfs)" 0 "with nothing waiting, archive sync flushes nothing to the archive"
[ -s "$DOCKET_HOME/docket.db-wal" ] && ok "the WAL outlives the process" ||
	not_ok "the WAL was checkpointed away at exit"

# A refused act writes nothing and flushes nothing.
traced refused act "$id" submit
expect_rc 5 "a refused act is refused"
expect_eq "$(($(count refused fsync) + $(count refused fdatasync) + $(count refused syncfs)))" 0 \
	"a refused act flushes nothing"

# The per-file mode is there for file systems shared with heavy writers:
# libgit2 fsyncs every file again, and no syncfs is made.
DOCKET_USER=wei dk act "$id" approve
expect_rc 0 "approve"
DOCKET_ARCHIVE_SYNC=file traced perfile archive sync
expect_rc 0 "archive sync with DOCKET_ARCHIVE_SYNC=file"
summary perfile
[ "$(count perfile fsync)" -ge 2 ] && ok "DOCKET_ARCHIVE_SYNC=file fsyncs each file" ||
	not_ok "DOCKET_ARCHIVE_SYNC=file made $(count perfile fsync) fsyncs"
expect_eq "$(count perfile syncfs)" 0 "... and makes no syncfs"
before=$("$DOCKET" list --json | jq length)
DOCKET_ARCHIVE_SYNC=bogus dk start monthly-plan --var month=2026-12 --var work=y \
	--var end_date=2026-12-31
expect_rc 2 "an unknown DOCKET_ARCHIVE_SYNC is a usage error"
expect_err "DOCKET_ARCHIVE_SYNC" "... naming the variable"
expect_eq "$("$DOCKET" list --json | jq length)" "$before" "... and nothing was started"
dk verify
expect_rc 0 "verify: the archive agrees with the database"
n_notes=$(git --git-dir="$DOCKET_HOME/archive.git" rev-list --count "refs/docket/instances/$id")
expect_eq "$n_notes" 4 "start, upload, submit, approve in the instance's history"

# A tick batch: timers of six instances fire their transitions, and the
# tick's catch-up writes their six notes (and the six starts') with one
# barrier pair.
cat >"$T/expire.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="expire" version="1">
  <title>Expires</title>
  <state id="open" initial="true" assign="$initiator">
    <deadline after="P1D"><fire transition="expire"/></deadline>
    <transition id="expire" to="expired"/>
    <transition id="close" to="closed"/>
  </state>
  <state id="expired" final="true"/>
  <state id="closed" final="true"/>
</flow>
XML
dk deploy "$T/expire.xml"
i=0
while [ $i -lt 6 ]; do
	"$DOCKET" start expire >>"$T/expire.ids"
	i=$((i + 1))
done
DOCKET_NOW=2026-11-04T09:00:00+08:00 traced tick tick
expect_rc 0 "tick under strace"
summary tick
expired=0
for e in $(cat "$T/expire.ids"); do
	[ "$(get "$e" .state)" = expired ] && expired=$((expired + 1))
	[ "$(git --git-dir="$DOCKET_HOME/archive.git" log -1 --format=%s "refs/docket/instances/$e")" = \
		"expire: open -> expired" ] || echo "# instance $e: no expire note"
done
expect_eq "$expired" 6 "the tick fired six transitions"
expect_out "12 archive notes written" "and wrote the twelve notes waiting"
expect_eq "$(count tick syncfs)" 2 "twelve notes of one tick: one barrier pair"
expect_eq "$(count tick fsync)" 0 "the tick fsyncs no file"

# docket serve: the note writer catches up after the writer's commits, one
# barrier pair a round however many notes it holds; the writer's own
# commits flush SQLite only.
ANN=$("$DOCKET" token create --user li 2>/dev/null)
: >"$T/serve.log"
ASAN_OPTIONS=$TRACED_ASAN strace -f -qq -o "$T/serve" -e trace=fsync,fdatasync,syncfs \
	"$DOCKET" serve --listen 127.0.0.1:0 --address-file "$T/addr" --threads 16 --no-timers \
	--no-hooks 2>>"$T/serve.log" &
serve_pid=$!
i=0
while [ ! -s "$T/addr" ] && [ $i -lt 600 ] && kill -0 "$serve_pid" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
# strace holds SIGTERM back: the server itself is told to stop, and strace
# ends with it (and passes on its status)
child=$(ps -o pid= --ppid "$serve_pid" | tr -d ' ')
trap 'kill -KILL $child $serve_pid 2>/dev/null; rm -rf "$T"' EXIT
base="http://$(cat "$T/addr" 2>/dev/null)"
pids=""
i=0
while [ $i -lt 16 ]; do
	"$DOCKET" start expire >>"$T/serve.ids"
	i=$((i + 1))
done
for e in $(cat "$T/serve.ids"); do
	curl -s -m 60 -o /dev/null -w '%{http_code}\n' -X POST -H "Authorization: Bearer $ANN" \
		"$base/api/instances/$e/transitions/close" >"$T/close.$e" &
	pids="$pids $!"
done
wait $pids
codes=$(cat "$T"/close.* | sort | uniq -c | tr -s ' ')
expect_eq "$codes" " 16 200" "16 concurrent acts through serve answered 200"
kill -TERM "$child"
wait "$serve_pid"
serve_rc=$?
serve_pid=""
# a server that died says why: its log into the TAP output as comments
[ "$serve_rc" = 0 ] || sed 's/^/# serve: /' "$T/serve.log"
expect_eq "$serve_rc" 0 "serve stops"
line=$(grep 'writes in' "$T/serve.log")
echo "# $line"
rounds=$(echo "$line" | sed -n 's/.*in \([0-9]*\) rounds.*/\1/p')
summary serve
[ -n "$rounds" ] && [ "$rounds" -ge 1 ] && [ "$rounds" -le 16 ] &&
	ok "serve wrote the notes in $rounds rounds" || not_ok "no note rounds in the serve log"
expect_eq "$(count serve syncfs)" $((2 * ${rounds:-0})) "serve: one barrier pair per round of notes"
expect_eq "$(count serve fsync)" 0 "serve fsyncs no file"
closed=0
for e in $(cat "$T/serve.ids"); do
	[ "$(git --git-dir="$DOCKET_HOME/archive.git" log -1 --format=%s "refs/docket/instances/$e")" = \
		"close: open -> closed" ] && closed=$((closed + 1))
done
expect_eq "$closed" 16 "every acknowledged act has its note"
git --git-dir="$DOCKET_HOME/archive.git" fsck --strict >/dev/null 2>&1 && ok "git fsck is happy" ||
	not_ok "git fsck finds damage"

# SQLite writes a WAL frame as two writes, its header and its page: a step
# of eight pages was sixteen system calls before its flush. The docket VFS
# hands a commit's frames to the kernel at once (store/sqlite_vfs.c): one
# write, two when the WAL starts over (its header, flushed apart).
"$DOCKET" start expire >"$T/walw.id"
ASAN_OPTIONS=$TRACED_ASAN strace -f -qq -y -o "$T/walw" -e trace=pwrite64,write \
	"$DOCKET" act "$(cat "$T/walw.id")" close >/dev/null 2>&1
rc=$?
expect_rc 0 "act under strace, its writes traced"
walw=$(grep -c 'docket.db-wal>' "$T/walw")
[ "$walw" -ge 1 ] && [ "$walw" -le 2 ] && ok "the act's commit reached the WAL in $walw write(s)" ||
	not_ok "the act's commit took $walw writes to the WAL"
expect_eq "$(get "$(cat "$T/walw.id")" .state)" closed "... and the act is there"
done_testing
