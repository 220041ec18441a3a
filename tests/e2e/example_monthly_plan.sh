# example_monthly_plan.sh - examples/monthly-plan.xml through the real
# binary: a plan returned and approved, then frozen, phases done one by one
# up to the guard, a summary that closes it (final "done"); a second plan
# with a rejected and an approved extension and a termination (final
# "terminated"); the review deadline escalating to the division leader.
. "$DOCKET_SRC/tests/lib.sh"


at 2026-11-02T01:00:00Z
dk org load "$EX/org.xml"
expect_rc 0 "org loads"
dk deploy "$EX/monthly-plan.xml"
expect_rc 0 "monthly-plan deploys"
expect_out "monthly-plan@1" "deploy names the version"

dk start monthly-plan --as li --var month=2026-11 --var work=华东市场拓展
expect_rc 1 "start without end_date is refused"
expect_err "end_date" "the refusal names the missing variable"

dk start monthly-plan --as li --var month=2026-11 --var work=华东市场拓展 \
	--var end_date=2026-11-30 --var phases=2
expect_rc 0 "li starts a two-phase plan"
P=$out

# ---- draft and review -----------------------------------------------------
dk act 999 submit --as li
expect_rc 3 "an unknown instance is not found"
dk act "$P" publish --as li
expect_rc 3 "a transition the flow does not have is not found"
dk start weekly-plan --as li --var month=2026-11
expect_rc 3 "a flow that was never deployed is not found"
dk act "$P" submit --as li
expect_rc 6 "submit without the plan document is refused"
file plan-v1.docx "第一版计划"
dk attach "$P" "$T/plan-v1.docx" --evidence plan --as li
expect_rc 0 "li attaches the plan"
dk act "$P" submit --as li
expect_rc 0 "li submits the plan"
expect_eq "$(get "$P" .state)" review "the plan waits for review"
expect_eq "$(get "$P" '[.tasks[].user] | join(" ")')" wei "the sales head wei has the task"
dk inbox --as wei --json
expect_rc 0 "wei's inbox opens"
expect_eq "$(printf '%s' "$out" | jq -r --arg p "$P" '[.[] | select(.instance == $p)] | length')" 1 \
	"the plan is in wei's inbox"

dk act "$P" approve --as li
expect_rc 4 "the employee cannot approve their own plan"
dk act "$P" approve --as qian
expect_rc 4 "another department's head cannot approve"
dk act "$P" return --as wei
expect_rc 6 "return without a reason is refused"
dk act "$P" return --as wei --comment "阶段目标不清晰，请细化"
expect_rc 0 "wei returns the plan with a reason"
expect_eq "$(get "$P" .state)" draft "the plan is back in draft"

dk act "$P" submit --as li
expect_rc 6 "a returned plan must be uploaded again"
file plan-v2.docx "第二版计划"
dk attach "$P" "$T/plan-v2.docx" --evidence plan --as li
expect_rc 0 "li attaches the revised plan"
dk act "$P" submit --as li
expect_rc 0 "li resubmits"
at 2026-11-03T02:00:00Z
v=$(get "$P" .version)
dk act "$P" approve --as wei --expect-version $((v - 1))
expect_rc 5 "approving a version that moved on is a conflict"
dk act "$P" approve --as wei --expect-version "$v"
expect_rc 0 "wei approves the version he saw"
expect_eq "$(get "$P" .state)" in-progress "the plan is in progress"

# ---- frozen plan, phases --------------------------------------------------
file plan-v3.docx "偷改的计划"
dk attach "$P" "$T/plan-v3.docx" --evidence plan --as li
expect_rc 6 "the approved plan is frozen"
dk act "$P" finish --as li
expect_rc 6 "finish before any phase is refused by the guard"
dk act "$P" phase-done --as li
expect_rc 6 "a phase needs its report"
file phase1.pdf "阶段一报告"
dk attach "$P" "$T/phase1.pdf" --evidence phase-report --as li
dk act "$P" phase-done --as li
expect_rc 0 "phase 1 done"
expect_eq "$(get "$P" .vars.done_phases)" 1 "done_phases counts 1"
dk act "$P" phase-done --as li
expect_rc 6 "phase 2 needs a report of its own"
dk act "$P" finish --as li
expect_rc 6 "finish with one of two phases is refused"
file phase2.pdf "阶段二报告"
dk attach "$P" "$T/phase2.pdf" --evidence phase-report --as li
dk act "$P" phase-done --as li
expect_rc 0 "phase 2 done"
expect_eq "$(get "$P" .vars.done_phases)" 2 "done_phases counts 2"
file phase3.pdf "多余的报告"
dk attach "$P" "$T/phase3.pdf" --evidence phase-report --as li
dk act "$P" phase-done --as li
expect_rc 6 "no third phase of a two-phase plan"
dk act "$P" finish --as li
expect_rc 0 "finish once every phase is done"
expect_eq "$(get "$P" .state)" summary "the summary step is open"

# ---- summary ----------------------------------------------------------------
dk act "$P" close --as li
expect_rc 6 "close without the summary is refused"
file summary.pdf "工作总结"
dk attach "$P" "$T/summary.pdf" --evidence summary --as li
dk act "$P" close --as li
expect_rc 0 "li closes the plan"
expect_eq "$(get "$P" .state)" "done" "final state done"
expect_eq "$(get "$P" .status)" completed "the instance is completed"
dk act "$P" close --as li
expect_rc 5 "nothing more can fire on a completed plan"
dk log "$P"
expect_rc 0 "the log reads"
expect_out "阶段目标不清晰" "the log keeps wei's reason for returning"

# ---- extension and termination ----------------------------------------------
at 2026-11-02T01:00:00Z
dk start monthly-plan --as he --var month=2026-11 --var work=应收账款清理 \
	--var end_date=2026-11-20 --var phases=3
expect_rc 0 "he (finance) starts a plan"
Q=$out
file q-plan.xlsx "应收账款清理计划"
dk attach "$Q" "$T/q-plan.xlsx" --evidence plan --as he
dk act "$Q" submit --as he
expect_rc 0 "he submits"
expect_eq "$(get "$Q" '[.tasks[].user] | join(" ")')" qian "the finance head qian reviews"
dk act "$Q" approve --as qian
expect_rc 0 "qian approves"

at 2026-11-21T01:00:00Z
dk act "$Q" request-extension --as he --var requested_end=2026-12-10
expect_rc 6 "an extension request needs a reason"
dk act "$Q" request-extension --as he --var requested_end=2026-11-15 --comment "客户对账延迟"
expect_rc 6 "an extension must end after the current end date"
dk act "$Q" request-extension --as he --var requested_end=2026-12-10 --comment "客户对账延迟"
expect_rc 0 "he asks for an extension to 2026-12-10"
expect_eq "$(get "$Q" .state)" extension-review "the extension is reviewed"
dk act "$Q" reject --as qian
expect_rc 6 "rejecting needs a reason"
dk act "$Q" reject --as qian --comment "先完成已对账部分"
expect_rc 0 "qian rejects the extension"
expect_eq "$(get "$Q" .vars.end_date)" 2026-11-20 "a rejected extension keeps the end date"
dk act "$Q" request-extension --as he --var requested_end=2026-12-10 --comment "已完成大部分，仍需十天"
expect_rc 0 "he asks again"
dk act "$Q" approve --as qian
expect_rc 0 "qian approves the extension"
expect_eq "$(get "$Q" .state)" in-progress "back in progress"
expect_eq "$(get "$Q" .vars.end_date)" 2026-12-10 "the end date moved to the requested one"

dk act "$Q" request-termination --as he
expect_rc 6 "termination needs the reason"
dk act "$Q" request-termination --as he --comment "客户破产清算，已完成一个阶段"
expect_rc 0 "he asks to terminate with the reason"
dk act "$Q" approve --as he
expect_rc 4 "the employee cannot approve the termination"
dk act "$Q" approve --as qian
expect_rc 0 "qian approves the termination"
expect_eq "$(get "$Q" .state)" terminated "final state terminated"
expect_eq "$(get "$Q" .status)" completed "a terminated plan is completed"

# ---- the review deadline escalates ------------------------------------------
at 2026-11-02T01:00:00Z
dk start monthly-plan --as wang --var month=2026-11 --var work=促销活动 --var end_date=2026-11-30
R=$out
file r-plan.pdf "促销计划"
dk attach "$R" "$T/r-plan.pdf" --evidence plan --as wang
dk act "$R" submit --as wang
expect_rc 0 "wang submits a plan"
dk inbox --as zhao --json
expect_eq "$(printf '%s' "$out" | jq -r --arg p "$R" '[.[] | select(.instance == $p)] | length')" 0 \
	"the division leader has no task before the deadline"
at 2026-11-06T02:00:00Z
dk tick
expect_rc 0 "tick fires the due timers"
dk inbox --as zhao --json
expect_eq "$(printf '%s' "$out" | jq -r --arg p "$R" '[.[] | select(.instance == $p)] | length')" 1 \
	"after three days the review escalates to the division leader"
dk act "$R" approve --as zhao
expect_rc 0 "the division leader may decide after escalation"
expect_eq "$(get "$R" .state)" in-progress "the escalated review approved the plan"

done_testing
