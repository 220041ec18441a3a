# verify_notes.sh - the archive notes of state changes follow the database's
# commit; a crash (or a failure) between the two leaves the audit trail with
# no note in git. docket verify finds each such state change and --repair
# writes its note with the event's own time, actor and key.
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
expect_rc 0 "a whole history verifies"

# 1. the ref moved back past the last note (the note never landed)
$GIT update-ref refs/docket/instances/1 refs/docket/instances/1~1
dk verify
expect_rc 1 "a state change without its note is a problem"
expect_out "no note    1 1:4: the audit trail's 'submit' into review has no note" "named by its event key, transition and state"
expect_out "run 'docket verify --repair'" "and says what to do"
dk --json verify
expect_eq "$(printf '%s' "$out" | jq -r '.problems[0].problem')" "no note" "--json gives the problem"
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
# that is not empty stands in its way): the start is recorded all the same,
# with a warning that names verify
mkdir -p "$DOCKET_HOME/archive.git/refs/docket/instances/2"
: >"$DOCKET_HOME/archive.git/refs/docket/instances/2/in-the-way"
dk --as wang start monthly-plan --var month=2026-11 --var work=回款 --var end_date=2026-11-30
expect_rc 0 "a start whose note fails is still recorded"
expect_err "its archive note failed" "with a warning"
expect_err "docket verify reports it" "that names verify"
expect_eq "$(get 2 .state)" draft "the instance is in its first state"
rm -rf "$DOCKET_HOME/archive.git/refs/docket/instances/2"
dk verify 2
expect_rc 1 "verify finds the missing note"
expect_eq "$(printf '%s\n' "$out" | grep -c '^no note    2 2:1: ')" 1 "the start's, once"
dk verify --repair 2
expect_rc 0 "--repair writes it"
expect_eq "$($GIT log --format=%s refs/docket/instances/2 | tr '\n' '/')" \
	"start: (new) -> draft/" "as the ref's first commit"
dk --as wang attach 2 "$T/plan.pdf" --evidence plan
dk --as wang act 2 submit
expect_rc 0 "and the instance goes on"
dk verify
expect_rc 0 "the whole home verifies"
expect_eq "$($GIT log --format=%s refs/docket/instances/2 | tr '\n' '/')" \
	"submit: draft -> review/attach plan/plan.pdf/start: (new) -> draft/" "the story in order"
dk --json log 2
expect_eq "$(printf '%s' "$out" | jq length)" 5 "the audit trail is untouched by the repair"
done_testing
