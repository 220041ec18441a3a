# archive_sync_crash.sh - a catch-up killed in the middle of its round
# loses no note and writes none twice. A round writes its notes' commits as
# one pack, flushes it, moves the instances' refs, flushes them, and only
# then moves its mark in the database; SIGKILL is delivered (by strace's
# fault injection) before each of those steps in turn, and at random
# moments of longer rounds. After each kill the next `docket archive sync`
# completes the histories: every state change of the audit trail has exactly
# one note, each instance's in event order, plain git finds the archive
# sound, and `docket verify` agrees with the database.
. "$DOCKET_SRC/tests/lib.sh"
# LeakSanitizer cannot run under ptrace, and a killed process reports
# nothing anyway
TRACED_ASAN="${ASAN_OPTIONS:-}:detect_leaks=0"
G() { git --git-dir="$DOCKET_HOME/archive.git" "$@"; }
DB="$DOCKET_HOME/docket.db"
NOTED="'instance.started', 'transition.fired', 'instance.recalled'"

# want: every state change's key ("ID:seq"), sorted; have: the
# Docket-Event key of every commit on any instance's ref, sorted (a note
# written twice is two commits with one key, so it shows twice)
want() { sqlite3 "$DB" "SELECT instance_id || ':' || seq FROM events WHERE type IN ($NOTED)" | sort; }
have() { G log --format='%(trailers:key=Docket-Event,valueonly)' --glob='refs/docket/*' | grep . | sort; }
# out_of_order: notes of an instance not in event order on its ref (git
# lists each chain newest first: seqs must fall)
out_of_order() {
	G log --topo-order --format='%(trailers:key=Docket-Event,valueonly)' --glob='refs/docket/*' |
		grep . | awk -F: '($1 in last) && $2 + 0 >= last[$1] { bad++ } { last[$1] = $2 + 0 } END { print bad + 0 }'
}
pending() { "$DOCKET" verify --json | jq .pending; }
mark() { sqlite3 "$DB" "SELECT last_event FROM archive_noted"; }

# check NAME: the archive is whole after the catch-up that followed a kill
check() {
	want >"$T/want"
	have >"$T/have"
	if [ -s "$T/want" ] && cmp -s "$T/want" "$T/have"; then
		ok "$1: every state change has exactly one note ($(grep -c . "$T/want"))"
	else
		not_ok "$1: notes and state changes differ"
		diff "$T/want" "$T/have" | head -n 10 | sed 's/^/#   /'
	fi
	expect_eq "$(out_of_order)" 0 "$1: each instance's notes in event order"
	G fsck --strict >"$T/fsck" 2>&1 && ok "$1: git fsck is happy" ||
		{ not_ok "$1: git fsck finds damage"; head -n 5 "$T/fsck" | sed 's/^/#   /'; }
	dk verify
	expect_rc 0 "$1: docket verify agrees"
	expect_eq "$(pending)" 0 "$1: nothing waits"
}

# killed CALL N: archive sync, killed as it enters its Nth CALL
killed() {
	ASAN_OPTIONS=$TRACED_ASAN strace -f -qq -o /dev/null -e trace="$1" \
		-e inject="$1":signal=KILL:when="$2" "$DOCKET" archive sync >/dev/null 2>&1
	rc=$?
}

# more: state changes for the next round: a few instances move (chains of
# notes on existing refs) and new ones start (new refs)
round=0
more() {
	round=$((round + 1))
	for id in 1 2 3 4 5 6; do
		"$DOCKET" --as ann act "$id" ping --comment "round $round" >/dev/null
		"$DOCKET" --as ann act "$id" ping >/dev/null
	done
	"$DOCKET_BUILD/tests/start_many" "$DOCKET_HOME" loop ann "$1" >/dev/null
}

cat >"$T/org.xml" <<'XML'
<org xmlns="urn:docket:org:1">
  <dept id="ops" name="Ops" head="ann"/>
  <user id="ann" name="Ann" dept="ops" roles="clerk"/>
</org>
XML
cat >"$T/loop.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="loop" version="1">
  <title>Counter</title>
  <role id="clerk"/>
  <state id="open" initial="true" assign="role:clerk">
    <transition id="ping" to="open" comment="optional"/>
    <transition id="close" to="closed"/>
  </state>
  <state id="closed" final="true"/>
</flow>
XML
dk org load "$T/org.xml"
dk deploy "$T/loop.xml"
expect_rc 0 "org and a flow that loops"
at 2026-11-02T09:00:00+08:00
"$DOCKET_BUILD/tests/start_many" "$DOCKET_HOME" loop ann 6 >/dev/null
dk archive sync
expect_out "wrote 6 archive notes" "six instances noted"

# Killed before the pack is in place: a temporary file is left, no ref
# moved, the mark did not; the next catch-up writes every note.
more 10
waiting=$(pending)
was=$(mark)
killed rename 1
expect_eq "$rc" 137 "killed before the pack was renamed into place"
expect_eq "$(mark)" "$was" "the mark did not move"
dk --json archive sync
expect_eq "$(printf '%s' "$out" | jq -c '[.written, .skipped, .failed]')" "[$waiting,0,0]" \
	"the next catch-up writes all $waiting notes"
check "killed before the pack"

# Killed at the flush of the pack: the pack is there, no ref names it; the
# next catch-up writes every note again (the same commits: no duplicate).
more 10
waiting=$(pending)
before=$(G for-each-ref --format='%(objectname)' 'refs/docket/' | md5sum)
killed syncfs 1
expect_eq "$rc" 137 "killed at the flush of the pack"
expect_eq "$(G for-each-ref --format='%(objectname)' 'refs/docket/' | md5sum)" "$before" \
	"no ref moved"
dk --json archive sync
expect_eq "$(printf '%s' "$out" | jq -c '[.written, .skipped, .failed]')" "[$waiting,0,0]" \
	"the next catch-up writes all $waiting notes"
check "killed at the pack's flush"

# Killed while the refs move (the second existing ref's rename: the first
# pack's two renames, then one ref): some instances have their notes, the
# others not; the next catch-up skips the first and writes the rest.
more 10
waiting=$(pending)
killed rename 4
expect_eq "$rc" 137 "killed while the refs moved"
# The kill left that ref's lock, which names no owner: a lock is judged
# stale by its age (60 s), so the next catch-up is run as if a minute had
# passed (a younger lock is waited for, up to 30 s, then the notes wait
# for a later catch-up: the order of the steps, not the clock, is tested).
locks=$(find "$DOCKET_HOME/archive.git/refs" -name '*.lock')
[ -n "$locks" ] && ok "the kill left a ref's lock" || not_ok "no ref lock left by the kill"
[ -n "$locks" ] && touch -d '2 minutes ago' $locks
dk --json archive sync
written=$(printf '%s' "$out" | jq .written)
skipped=$(printf '%s' "$out" | jq .skipped)
[ "$written" -gt 0 ] && [ "$skipped" -gt 0 ] &&
	ok "the next catch-up skips what is there ($skipped) and writes the rest ($written)" ||
	not_ok "after a kill among the refs: wrote $written, skipped $skipped"
expect_eq "$((written + skipped))" "$waiting" "... all $waiting accounted for"
check "killed among the refs"

# Killed at the flush of the refs, before the mark: every note is in; the
# next catch-up writes none again and moves the mark.
more 10
waiting=$(pending)
was=$(mark)
killed syncfs 2
expect_eq "$rc" 137 "killed at the flush of the refs"
expect_eq "$(mark)" "$was" "the mark did not move"
dk --json archive sync
expect_eq "$(printf '%s' "$out" | jq -c '[.written, .skipped, .failed]')" "[0,$waiting,0]" \
	"the next catch-up skips all $waiting and writes none twice"
check "killed before the mark"

# Killed at random moments of longer catch-ups (hundreds of notes, new
# refs and chains), several times over the same notes.
more 200
waiting=$(pending)
kills=0
for d in 0.05 0.2 0.1 0.4 0.15 0.3; do
	"$DOCKET" archive sync >/dev/null 2>&1 &
	pid=$!
	sleep "$d"
	kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
	wait "$pid" 2>/dev/null
done
echo "# $kills catch-ups killed at random over $waiting notes"
# a kill among the refs leaves a lock: a minute later it is stale
locks=$(find "$DOCKET_HOME/archive.git/refs" -name '*.lock')
echo "# $(printf '%s' "$locks" | grep -c .) ref locks left"
[ -n "$locks" ] && touch -d '2 minutes ago' $locks
dk archive sync
expect_rc 0 "the catch-up after the random kills"
check "killed at random"
ls "$DOCKET_HOME/archive.git/objects/pack" | grep -c '\.pack$' >"$T/packs"
[ "$(cat "$T/packs")" -le 33 ] && ok "packs stay few ($(cat "$T/packs"))" ||
	not_ok "$(cat "$T/packs") packs"
done_testing
