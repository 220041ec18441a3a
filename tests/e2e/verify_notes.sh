# verify_notes.sh - the archive notes of state changes are written by a
# catch-up after the database's commit (docket archive sync, serve, tick,
# attach). docket verify tells the state changes still waiting for it
# (pending: not damage, exit 0) from a note that is missing at or before the
# catch-up's mark (damage, exit 1), and --repair writes the missing one with
# the event's own time, actor and key. A note that fails holds the mark
# before its event and is written by the next catch-up; the other
# instances' notes are not held back.
. "$DOCKET_SRC/tests/lib.sh"
GIT="git --git-dir=$DOCKET_HOME/archive.git"

dk org load "$EX/org.xml"
dk deploy "$EX/monthly-plan.xml"
expect_rc 0 "org and flow"
at 2026-11-02T09:00:00+08:00
file plan.pdf "%PDF-1.4 plan"
dk --as li start monthly-plan --var month=2026-11 --var work=渠道拓展 --var end_date=2026-11-30
dk --as li attach 1 "$T/plan.pdf" --evidence plan
dk --as li act 1 submit
expect_rc 0 "instance 1 submitted"
dk verify
expect_rc 0 "a note waiting for the catch-up is no damage"
expect_out "1 state change waits for the archive; \`docket archive sync\` writes them" \
	"verify says the submit waits, and what writes it"
dk --json verify
expect_eq "$(printf '%s' "$out" | jq -c '[.pending, (.problems | length)]')" "[1,0]" \
	"--json counts it as pending, not as a problem"
dk archive sync
expect_rc 0 "archive sync"
expect_out "wrote 1 archive note" "it wrote the waiting note"
dk verify
expect_rc 0 "a whole history verifies"
dk --json verify
expect_eq "$(printf '%s' "$out" | jq .pending)" 0 "nothing pending any more"

# 1. the ref moved back past the last note (the note was lost): at or before
# the mark, that is damage
$GIT update-ref refs/docket/instances/1 refs/docket/instances/1~1
dk verify
expect_rc 1 "a state change without its note is a problem"
expect_out "no note    1 1:4: the audit trail's 'submit' into review has no note" "named by its event key, transition and state"
expect_out "run 'docket verify --repair'" "and says what to do"
dk --json verify
expect_eq "$(printf '%s' "$out" | jq -r '.problems[0].problem')" "no note" "--json gives the problem"
dk archive sync
expect_out "wrote 0 archive notes" "the catch-up does not write a note it already passed"
dk verify --repair
expect_rc 0 "--repair writes it"
expect_out "repaired   1 1:4: wrote the note of 'submit' into review" "and says so"
dk verify
expect_rc 0 "then the history verifies"
expect_eq "$($GIT log -1 --format='%an|%ad|%(trailers:key=Docket-Event,valueonly)' --date=iso-strict refs/docket/instances/1 | head -n 1)" \
	"李明|2026-11-02T01:00:00+00:00|1:4" "the note carries the actor, the event's time and key"
expect_eq "$($GIT log --format=%s refs/docket/instances/1 | tr '\n' '/')" \
	"submit: draft -> review/attach plan/plan.pdf/start: (new) -> draft/" "in order on the ref"

# 2. the note of a new instance fails (its ref cannot be made: a directory
# that is not empty stands in its way): the start is recorded, the catch-up
# says which note failed and holds its mark there; instance 3's note, after
# it, is written all the same
mkdir -p "$DOCKET_HOME/archive.git/refs/docket/instances/2"
: >"$DOCKET_HOME/archive.git/refs/docket/instances/2/in-the-way"
dk --as wang start monthly-plan --var month=2026-11 --var work=回款 --var end_date=2026-11-30
expect_rc 0 "a start is recorded without its note"
expect_eq "$err" "" "and says nothing of the archive"
expect_eq "$(get 2 .state)" draft "the instance is in its first state"
dk --as li start monthly-plan --var month=2026-12 --var work=x --var end_date=2026-12-31
expect_eq "$out" 3 "instance 3 started after it"
dk archive sync
expect_rc 1 "archive sync fails when a note cannot be written"
expect_err "instance 2: the archive note of 2:1 failed" "it names the note that failed"
expect_err "the next 'docket archive sync' tries again" "and what happens to it"
expect_eq "$($GIT log --format=%s refs/docket/instances/3 | tr '\n' '/')" \
	"start: (new) -> draft/" "instance 3's note is not held back"
dk verify 2
expect_rc 0 "the failed note is pending, not damage"
expect_out "1 state change waits for the archive" "verify counts it as waiting"
dk verify --repair
expect_rc 1 "verify --repair cannot write it while the ref is in the way"
rm -rf "$DOCKET_HOME/archive.git/refs/docket/instances/2"
dk archive sync
expect_rc 0 "the next catch-up writes it"
expect_out "wrote 1 archive note" "that one note only: instance 3's is not written twice"
expect_eq "$($GIT log --format=%s refs/docket/instances/2 | tr '\n' '/')" \
	"start: (new) -> draft/" "as the ref's first commit"
expect_eq "$($GIT rev-list --count refs/docket/instances/3)" 1 "instance 3 has its one note"
dk --as wang attach 2 "$T/plan.pdf" --evidence plan
dk --as wang act 2 submit
expect_rc 0 "and the instance goes on"
dk archive sync
dk verify
expect_rc 0 "the whole home verifies"
expect_eq "$($GIT log --format=%s refs/docket/instances/2 | tr '\n' '/')" \
	"submit: draft -> review/attach plan/plan.pdf/start: (new) -> draft/" "the story in order"
dk --json log 2
expect_eq "$(printf '%s' "$out" | jq length)" 5 "the audit trail is untouched by the repair"
done_testing
