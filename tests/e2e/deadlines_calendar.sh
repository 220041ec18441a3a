# deadlines_calendar.sh - each example flow's deadlines fire at the right
# moment, to the second, where calendars are awkward: a month end (January
# 31st to February), a leap day (2028-02-29), a year end, and a change of
# daylight-saving time (the examples' Asia/Shanghai has none, so the same
# examples run again under an org in Europe/Berlin and America/New_York).
# Reminders repeat and stop once the state is left, escalation reaches the
# person the org directory names, and what timers do runs as the system
# actor and queues webhook deliveries.
. "$DOCKET_SRC/tests/lib.sh"

events() { "$DOCKET" log "$1" --json | jq -r "[.[] | select(.type == \"$2\")] | length"; }
# reminders ID STATE: reminders sent about STATE
reminders() {
	"$DOCKET" log "$1" --json |
		jq -r "[.[] | select(.type == \"task.reminder\" and .data.state == \"$2\")] | length"
}
# the instant one second before the ISO 8601 instant $1, in UTC
before() { date -u -d "@$(($(date -u -d "$1" +%s) - 1))" +%Y-%m-%dT%H:%M:%SZ; }
# fires_at ID TYPE T NAME: a tick one second before T adds no TYPE event to
# instance ID, and a tick at T adds one
fires_at() {
	n0=$(events "$1" "$2")
	at "$(before "$3")"
	"$DOCKET" tick >/dev/null
	n1=$(events "$1" "$2")
	at "$3"
	"$DOCKET" tick >/dev/null
	n2=$(events "$1" "$2")
	if [ "$n1" = "$n0" ] && [ "$n2" -gt "$n1" ]; then ok "$4"; else
		not_ok "$4 ($2 events: $n0, then $n1 a second before $3, $n2 at it)"
	fi
}
# in_inbox USER ID: 1 when instance ID is in USER's inbox
in_inbox() {
	"$DOCKET" inbox --as "$1" --json | jq -r --arg i "$2" '[.[] | select(.instance == $i)] | length'
}
last_fired_actor() {
	"$DOCKET" log "$1" --json | jq -r '[.[] | select(.type == "transition.fired")] | last | .actor'
}
file plan.docx "plan"
file report.pdf "report"

at 2027-01-31T10:00:00+08:00
dk org load "$EX/org.xml"
for f in monthly-plan appraisal appeal cross-department; do
	"$DOCKET" deploy "$EX/$f.xml" >/dev/null || not_ok "deploy $f"
done
dk hooks add https://hooks.example.com/docket --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
expect_rc 0 "a webhook subscription for every event"

# ---- monthly-plan: the month end -------------------------------------------
dk start monthly-plan --as li --var month=2027-02 --var work=月末 --var end_date=2027-02-28 \
	--var phases=1
P=$out
dk attach "$P" "$T/plan.docx" --evidence plan --as li
dk act "$P" submit --as li
expect_rc 0 "monthly-plan submitted on January 31st, 10:00 in Shanghai"
fires_at "$P" task.reminder 2027-02-01T10:00:00+08:00 \
	"monthly-plan: the first reminder a calendar day later, February 1st 10:00"
fires_at "$P" task.reminder 2027-02-02T10:00:00+08:00 "monthly-plan: reminders repeat daily"
fires_at "$P" deadline.missed 2027-02-03T10:00:00+08:00 \
	"monthly-plan: P3D from January 31st runs out on February 3rd, 10:00"
expect_eq "$(in_inbox zhao "$P")" 1 "the review escalated to li's division leader zhao (org directory)"
expect_eq "$(in_inbox wei "$P")" 1 "the department head wei keeps the task"
dk act "$P" approve --as zhao
expect_rc 0 "zhao approves the escalated plan"
r=$(reminders "$P" review)
at 2027-02-10T10:00:00+08:00
"$DOCKET" tick >/dev/null
expect_eq "$(reminders "$P" review)" "$r" "review reminders stop once the plan left review"

# ---- monthly-plan: the leap day --------------------------------------------
at 2028-02-20T09:00:00+08:00
dk start monthly-plan --as li --var month=2028-02 --var work=闰年 --var end_date=2028-02-29 \
	--var phases=1
L=$out
dk attach "$L" "$T/plan.docx" --evidence plan --as li
dk act "$L" submit --as li
dk act "$L" approve --as wei
expect_rc 0 "a plan ending on 2028-02-29 is approved"
fires_at "$L" deadline.missed 2028-02-29T00:00:00+08:00 \
	"monthly-plan: the end date 2028-02-29 is due at that day's midnight in Shanghai"
fires_at "$L" task.reminder 2028-02-29T09:00:00+08:00 \
	"monthly-plan: a reminder on the leap day itself, 09:00 as every day"
fires_at "$L" task.reminder 2028-03-01T09:00:00+08:00 \
	"monthly-plan: and the next one on March 1st"

# ---- appraisal: the leap day ------------------------------------------------
at 2028-02-20T09:00:00+08:00
dk start appraisal --as li --var month=2028-02
A=$out
for k in monthly-report ad-plan promotion-plan; do
	"$DOCKET" attach "$A" "$T/report.pdf" --evidence "$k" --as li --name "$k.pdf" >/dev/null ||
		not_ok "attach $k"
done
at 2028-02-24T09:00:00+08:00
dk act "$A" submit --as li
expect_rc 0 "appraisal materials submitted on February 24th, 2028"
fires_at "$A" deadline.missed 2028-02-29T09:00:00+08:00 \
	"appraisal: P5D from February 24th, 2028 runs out on the leap day"
expect_eq "$(in_inbox feng "$A") $(in_inbox gao "$A")" "1 1" \
	"scoring escalated to both members of the evaluation centre"
expect_eq "$(in_inbox liu "$A")" 1 "the assessment group keeps its task"

# ---- appeal: the year end -----------------------------------------------------
at 2026-12-20T10:00:00+08:00
dk start appeal --as li --var appraisal=7 --var month=2026-11 --var original_score=80
B=$out
dk attach "$B" "$T/report.pdf" --evidence appeal-evidence --as li
dk act "$B" submit --as li --comment "the November report was on time"
expect_rc 0 "an appeal filed on December 20th"
expect_eq "$(in_inbox liu "$B")" 1 "level 1 is sales' assessment group (liu)"
fires_at "$B" task.reminder 2026-12-23T10:00:00+08:00 "appeal: level 1 is reminded after P3D"
fires_at "$B" task.reminder 2026-12-26T10:00:00+08:00 "appeal: and again three days later"
fires_at "$B" task.reminder 2026-12-29T10:00:00+08:00 "appeal: and again on December 29th"
fires_at "$B" task.reminder 2027-01-01T10:00:00+08:00 "appeal: and on New Year's Day, across the year end"
fires_at "$B" transition.fired 2027-01-03T10:00:00+08:00 \
	"appeal: P14D from December 20th runs out on January 3rd, across the year end"
expect_eq "$(get "$B" .state)" level2 "level 1's deadline passed the appeal up to level 2"
expect_eq "$(last_fired_actor "$B")" system "the system actor passed it up"
expect_eq "$(in_inbox gao "$B")" 1 "the evaluation centre has it now"
expect_eq "$(reminders "$B" level1)" 4 "level 1 was reminded on Dec 23, 26, 29 and Jan 1"
fires_at "$B" task.reminder 2027-01-06T10:00:00+08:00 "appeal: level 2's reminders start P3D after it came in"
expect_eq "$(reminders "$B" level1)" 4 "level 1's reminders stopped when the appeal left it"
dk deliveries --json
expect_eq "$(printf '%s' "$out" | jq -r --arg i "$B" \
	'[.[] | select(.instance == $i and .event == "transition.fired")] | length')" 2 \
	"the submit and the system's escalation both queued a transition.fired delivery"
expect_eq "$(printf '%s' "$out" | jq -r --arg i "$B" \
	'[.[] | select(.instance == $i and .event == "deadline.missed")] | length')" 1 \
	"the missed deadline queued its delivery"
subjects=$(git --git-dir="$DOCKET_HOME/archive.git" log --format='%an|%s' "refs/docket/instances/$B")
case "$subjects" in
system\|*escalate*) ok "git log of the appeal shows the system's escalation on top" ;;
*) not_ok "archive note of the escalation"; printf '%s\n' "$subjects" | sed 's/^/# /' ;;
esac

# ---- daylight saving: the same examples in zones that change ----------------
# Europe/Berlin springs forward on 2027-03-28 (02:00 -> 03:00): a calendar
# day that crosses it is 23 hours, and P2D lands at the same wall-clock time.
export DOCKET_HOME="$T/berlin"
sed 's#Asia/Shanghai#Europe/Berlin#' "$EX/org.xml" >"$T/org-berlin.xml"
at 2027-03-27T10:00:00+01:00
dk org load "$T/org-berlin.xml"
dk deploy "$EX/cross-department.xml"
dk start cross-department --as li --var order_no=EX-9 --var customer=ACME --var amount=900
C=$out
dk attach "$C" "$T/report.pdf" --evidence export-docs --as li
dk act "$C" submit --as li
dk act "$C" submit --as wang
expect_rc 0 "the documents reach the sales head on Saturday, March 27th, 10:00 CET"
fires_at "$C" task.reminder 2027-03-28T10:00:00+02:00 \
	"cross-department in Berlin: P1D after 10:00 CET is 10:00 CEST, 23 hours on"
fires_at "$C" deadline.missed 2027-03-29T10:00:00+02:00 \
	"cross-department in Berlin: P2D runs out at 10:00 local, not an hour later"
# the other regions and the join, to reach dispatch and its escalation
dk attach "$C" "$T/report.pdf" --evidence receivables --as he --name receivables.pdf
dk act "$C" submit --as he
dk act "$C" approve --as qian
dk attach "$C" "$T/report.pdf" --evidence booking --as ma --name booking.pdf
dk act "$C" submit --as ma
dk act "$C" approve --as zhou
at 2027-10-29T10:00:00+02:00
dk act "$C" approve --as wei
expect_eq "$(get "$C" .state)" dispatch "every region approved: the shipment waits for dispatch"
# and back on 2027-10-31 (03:00 -> 02:00): P5D from Friday 10:00 CEST is
# Wednesday 10:00 CET, 121 hours on
fires_at "$C" deadline.missed 2027-11-03T10:00:00+01:00 \
	"cross-department in Berlin: P5D across the autumn change is 10:00 local too"
expect_eq "$(in_inbox zhou "$C")" 1 "dispatch escalated to zhou, as the flow names him"

# America/New_York falls back on 2026-11-01: P3D from Friday 10:00 EDT is
# Monday 10:00 EST (73 hours); the reminder on Sunday comes 25 hours on.
export DOCKET_HOME="$T/new-york"
sed 's#Asia/Shanghai#America/New_York#' "$EX/org.xml" >"$T/org-ny.xml"
at 2026-10-30T10:00:00-04:00
dk org load "$T/org-ny.xml"
dk deploy "$EX/monthly-plan.xml"
dk start monthly-plan --as li --var month=2026-11 --var work=纽约 --var end_date=2026-11-30
N=$out
dk attach "$N" "$T/plan.docx" --evidence plan --as li
dk act "$N" submit --as li
fires_at "$N" task.reminder 2026-10-31T10:00:00-04:00 "monthly-plan in New York: Saturday's reminder"
fires_at "$N" task.reminder 2026-11-01T10:00:00-05:00 \
	"monthly-plan in New York: Sunday's reminder at 10:00 EST, 25 hours later"
fires_at "$N" deadline.missed 2026-11-02T10:00:00-05:00 \
	"monthly-plan in New York: P3D runs out on Monday 10:00 EST"
expect_eq "$(in_inbox zhao "$N")" 1 "escalated to zhao"
done_testing
