# archive_sync.sh - the archive notes of state changes are written by a
# catch-up, not by the steps: `docket archive sync` writes every note
# waiting, in commit order (an instance's notes in event order), once; a
# catch-up cut short between its notes and its mark writes none twice;
# attach catches up first, so an upload lands after the notes of the acts
# before it; `docket serve` catches up by itself after its commits.
. "$DOCKET_SRC/tests/lib.sh"
. "$DOCKET_SRC/tests/e2e/api_server.inc"
G() { git --git-dir="$DOCKET_HOME/archive.git" "$@"; }
# keys ID: the Docket-Event keys of the instance's history, oldest first
keys() { G log --reverse --format='%(trailers:key=Docket-Event,valueonly)' "refs/docket/instances/$1" | grep . | tr '\n' ' '; }
# moves ID: the Docket-Transition of each note of the instance, oldest first
moves() { G log --reverse --format='%(trailers:key=Docket-Transition,valueonly)' "refs/docket/instances/$1" | grep . | tr '\n' ' '; }
# seqs ID: the seqs of the instance's state changes in the audit trail
seqs() { "$DOCKET" log "$1" --json | jq -r --arg i "$1" '[.[] | select(.type == "instance.started" or .type == "transition.fired" or .type == "instance.recalled") | "\($i):\(.seq)"] | join(" ")' | sed 's/$/ /'; }
noted() { "$DOCKET" verify --json | jq .pending; }

sed 's#<requires evidence="[^"]*"/>##g' "$DOCKET_SRC/bench/monthly-plan.xml" >"$T/plan.xml"
dk org load "$EX/org.xml"
dk deploy "$T/plan.xml"
expect_rc 0 "org and a flow without required uploads"
at 2026-11-02T09:00:00+08:00

# Two instances moved in turns: their notes wait.
a=$("$DOCKET" --as li start bench-plan --var month=2026-11)
b=$("$DOCKET" --as li start bench-plan --var month=2026-12)
dk --as li act "$a" submit
dk --as li act "$b" submit
dk --as wei act "$a" return --comment "week 2 is missing"
dk --as li act "$a" submit
expect_rc 0 "two instances, six state changes"
[ -e "$DOCKET_HOME/archive.git" ] && not_ok "the steps opened the archive" ||
	ok "the steps did not touch the archive"
expect_eq "$(noted)" 6 "six notes wait"

dk archive sync
expect_rc 0 "archive sync"
expect_out "wrote 6 archive notes" "writes the six"
expect_eq "$(moves "$a")" "start submit return submit " "instance $a's notes in event order"
expect_eq "$(keys "$a")" "$(seqs "$a")" "keyed by the audit trail's events"
expect_eq "$(moves "$b")" "start submit " "instance $b's notes in event order"
expect_eq "$(keys "$b")" "$(seqs "$b")" "keyed by its events"
expect_eq "$(G log -1 --format='%an|%s' "refs/docket/instances/$a")" \
	"李明|submit: draft -> review" "the last one by its actor, as a plain git log shows it"
expect_eq "$(G log --format='%s' "refs/docket/instances/$a" | sed -n 2p)" \
	"return: review -> draft" "the return before it"
expect_eq "$(noted)" 0 "nothing waits any more"
dk --json archive sync
expect_eq "$(printf '%s' "$out" | jq -c .)" '{"written":0,"skipped":0,"failed":0}' \
	"a second sync writes nothing"
expect_eq "$(G rev-list --count "refs/docket/instances/$a")" 4 "and the history is unchanged"

# A catch-up cut short after its notes, before its mark (a crash there):
# the mark goes back, and the next catch-up writes none of them again.
dk --as wei act "$a" approve
dk --as li act "$b" submit
expect_rc 5 "(b is in review: submit is refused and writes nothing)"
dk --as wei act "$b" approve
dk archive sync
expect_out "wrote 2 archive notes" "two more notes"
sqlite3 "$DOCKET_HOME/docket.db" "UPDATE archive_noted SET last_event = 0"
dk --as li act "$a" phase-done
dk --json archive sync
expect_rc 0 "the catch-up after the 'crash'"
expect_eq "$(printf '%s' "$out" | jq -c .)" '{"written":1,"skipped":8,"failed":0}' \
	"writes only the new note, skipping the eight already there"
expect_eq "$(keys "$a")" "$(seqs "$a")" "no note twice, none missing, in order"
expect_eq "$(moves "$a")" "start submit return submit approve phase-done " "the history of $a"
expect_eq "$(keys "$b")" "$(seqs "$b")" "nor on the other instance"
dk verify
expect_rc 0 "verify agrees"

# attach catches up first: the upload comes after the note of the act
# before it, as in the audit trail.
file report.pdf "%PDF-1.4 report"
dk --as li act "$a" phase-done
expect_eq "$(noted)" 1 "the act's note waits"
dk --as li attach "$a" "$T/report.pdf" --evidence phase-report
expect_rc 0 "attach"
expect_eq "$(G log -2 --format=%s "refs/docket/instances/$a" | tr '\n' '/')" \
	"attach phase-report/report.pdf/phase-done: in-progress -> in-progress/" \
	"the act's note, then the upload"
expect_eq "$(noted)" 0 "attach wrote the note that waited"
dk --as li act "$a" phase-done
dk archive sync
expect_eq "$(G log -1 --format=%s "refs/docket/instances/$a")" \
	"phase-done: in-progress -> in-progress" "an act after the upload: its note on top"
dk --json archive sync
expect_eq "$(printf '%s' "$out" | jq .written)" 0 "nothing twice after an upload either"

# docket serve writes the notes of its commits by itself.
ANN=$("$DOCKET" token create --user li 2>/dev/null)
c=$("$DOCKET" --as li start bench-plan --var month=2027-01)
expect_eq "$(noted)" 1 "a start from the command line waits for its note"
serve_start --no-timers --no-hooks
req POST "/api/instances/$c/transitions/submit" "$ANN"
expect_code 200 "an act through serve"
i=0
while [ "$(moves "$c")" != "start submit " ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
expect_eq "$(moves "$c")" "start submit " "serve wrote the start's note and the act's, in order"
expect_eq "$(keys "$c")" "$(seqs "$c")" "keyed by their events"
serve_stop
expect_eq "$serve_rc" 0 "serve stops"
grep -q "archive notes in" "$T/serve.log" && ok "serve's last line counts the notes" ||
	not_ok "serve's last line: $(tail -n 1 "$T/serve.log")"
dk verify
expect_rc 0 "the home verifies"
expect_eq "$(noted)" 0 "nothing waits"
dk archive
expect_rc 2 "archive without a command is a usage error"
expect_err "sync, gc or push" "naming the three"
dk archive sync now
expect_rc 2 "archive sync takes no arguments"
done_testing
