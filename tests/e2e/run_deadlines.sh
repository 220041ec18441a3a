# run_deadlines.sh - deadlines through `docket tick`: reminders repeat and
# stop when the state is left, escalation reaches the division leader from
# the org directory, <fire> auto-approves as the system actor, overdue work
# shows in inbox and list --overdue, and two ticks at once fire each timer
# once.
. "$DOCKET_SRC/tests/lib.sh"

cat >"$T/org.xml" <<'XML'
<org xmlns="urn:docket:org:1" timezone="Asia/Shanghai">
  <dept id="sales" name="销售公司" head="wei" division-leader="zhao"/>
  <user id="li" name="李明" dept="sales" roles="employee"/>
  <user id="wei" name="魏总" dept="sales" roles="dept-head"/>
  <user id="zhao" name="赵副总" dept="sales" roles="division-leader"/>
</org>
XML
cat >"$T/review.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" xmlns:dk="urn:docket:fn" id="review" version="1">
  <title>Review with deadlines</title>
  <role id="division-leader"/>
  <state id="draft" initial="true" assign="$initiator">
    <transition id="submit" to="review"/>
  </state>
  <state id="review" assign="dk:head-of($initiator)">
    <deadline after="P1D"><remind every="PT12H"/></deadline>
    <deadline after="P3D"><escalate to="role:division-leader"/></deadline>
    <deadline after="P5D"><fire transition="approve"/></deadline>
    <transition id="approve" to="done"/>
    <transition id="return" to="draft" comment="required"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML
at() { DOCKET_NOW=$1; export DOCKET_NOW; }
events() { "$DOCKET" log "$1" --json | jq -r "[.[] | select(.type == \"$2\")] | length"; }

dk org load "$T/org.xml"
dk deploy "$T/review.xml"
expect_rc 0 "deploy a flow with three deadlines"
at 2026-02-27T09:00:00+08:00
dk start review --as li
a=$out
dk act "$a" submit --as li
expect_rc 0 "submit on Feb 27th"
dk tick
expect_out "0 timers fired" "nothing is due at once"

at 2026-02-28T09:00:00+08:00
dk tick
expect_rc 0 "tick after one day"
[ "$(events "$a" task.reminder)" = 1 ] && ok "the first reminder within the first day" || not_ok "reminders: $(events "$a" task.reminder)"
dk tick
[ "$(events "$a" task.reminder)" = 1 ] && ok "a second tick at the same instant fires nothing more" || not_ok "reminder fired twice"
at 2026-02-28T21:00:00+08:00
dk tick
[ "$(events "$a" task.reminder)" = 2 ] && ok "reminders repeat every PT12H" || not_ok "reminders: $(events "$a" task.reminder)"
dk inbox --as wei --json
[ "$(printf '%s' "$out" | jq -r '.[0].overdue')" = true ] && ok "the head's task is overdue in the inbox" || { not_ok "overdue in inbox"; show_last; }
dk list --overdue --json
[ "$(printf '%s' "$out" | jq -r '.[0].id')" = "$a" ] && ok "list --overdue shows it" || { not_ok "list --overdue"; show_last; }

# 2026 is no leap year: three days after Feb 27th is March 2nd
at 2026-03-02T09:00:01+08:00
dk tick
[ "$(events "$a" task.escalated)" = 1 ] && ok "escalated after P3D, across the month end" || not_ok "escalations: $(events "$a" task.escalated)"
dk inbox --as zhao --json
[ "$(printf '%s' "$out" | jq -r '.[0].instance')" = "$a" ] && ok "the division leader now has the task" || { not_ok "zhao's inbox"; show_last; }
[ "$(events "$a" deadline.missed)" -ge 1 ] && ok "deadline.missed is recorded" || not_ok "no deadline.missed"

at 2026-03-04T09:00:01+08:00
dk tick
dk show "$a" --json
[ "$(printf '%s' "$out" | jq -r .status)" = completed ] && ok "<fire> approved after P5D" || { not_ok "auto-approve"; show_last; }
dk log "$a" --json
[ "$(printf '%s' "$out" | jq -r '[.[] | select(.type == "transition.fired")] | last | .actor')" = system ] &&
	ok "the automatic approval is by the system actor" || { not_ok "actor of fire"; show_last; }
subjects=$(git --git-dir="$DOCKET_HOME/archive.git" log --format='%an %s' "refs/docket/instances/$a")
case "$subjects" in
"system "*approve*) ok "git log of the instance shows the timer's approval, by the system" ;;
*) not_ok "archive notes of the timer's transition"; echo "# $subjects" ;;
esac
[ "$(printf '%s\n' "$subjects" | grep -c approve)" = 1 ] && ok "one archive note for the one approval" ||
	not_ok "approval notes: $(printf '%s\n' "$subjects" | grep -c approve)"
r=$(events "$a" task.reminder)
at 2026-03-10T09:00:00+08:00
dk tick
[ "$(events "$a" task.reminder)" = "$r" ] && ok "reminders stop once the state is left" || not_ok "reminded after leaving"

# a reply before the deadline disarms it
at 2026-03-10T09:00:00+08:00
dk start review --as li
b=$out
dk act "$b" submit --as li
dk act "$b" approve --as wei
at 2026-03-20T09:00:00+08:00
dk tick
[ "$(events "$b" task.reminder)" = 0 ] && ok "leaving the state disarms its deadlines" || not_ok "fired after leaving"

# two ticks at once over 1,000 due timers: each fires once. 500 instances
# wait in a state with a reminder and a deadline (started in one process
# by tests/tools/start_many, as `docket start` would, to save 500 spawns).
cat >"$T/pair.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="pair" version="1">
  <state id="wait" initial="true" assign="$initiator">
    <deadline after="P1D"><remind every="PT12H"/></deadline>
    <transition id="go" to="done"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML
dk deploy "$T/pair.xml"
at 2026-04-01T09:00:00+08:00
first=$(($(sqlite3 "$DOCKET_HOME/docket.db" "select coalesce(max(id), 0) from instances") + 1))
"$DOCKET_BUILD/tests/start_many" "$DOCKET_HOME" pair li 500 >/dev/null
armed=$(sqlite3 "$DOCKET_HOME/docket.db" "select count(*) from timers where instance_id >= $first")
[ "$armed" = 1000 ] && ok "500 instances arm 1,000 timers" || not_ok "$armed timers armed"
at 2026-04-02T09:00:00+08:00
"$DOCKET" tick --json >"$T/t1" &
p1=$!
"$DOCKET" tick --json >"$T/t2" &
p2=$!
wait $p1
r1=$?
wait $p2
r2=$?
[ $r1 -eq 0 ] && [ $r2 -eq 0 ] && ok "two concurrent ticks both succeed" || not_ok "tick statuses $r1 $r2"
total=$(($(jq .fired "$T/t1") + $(jq .fired "$T/t2")))
[ "$total" = 1000 ] && ok "1,000 due timers fired once between them ($(jq .fired "$T/t1") + $(jq .fired "$T/t2"))" ||
	not_ok "fired $total"
count() { sqlite3 "$DOCKET_HOME/docket.db" "select count(*) from events where instance_id >= $first and type = '$1'"; }
dups() {
	sqlite3 "$DOCKET_HOME/docket.db" "select count(*) from (select instance_id from events
		where instance_id >= $first and type = '$1' group by instance_id having count(*) > 1)"
}
[ "$(count task.reminder)" = 500 ] && [ "$(dups task.reminder)" = 0 ] &&
	ok "one reminder for each of the 500 instances" || not_ok "$(count task.reminder) reminders, $(dups task.reminder) twice"
[ "$(count deadline.missed)" = 500 ] && [ "$(dups deadline.missed)" = 0 ] &&
	ok "one deadline.missed for each" || not_ok "$(count deadline.missed) missed, $(dups deadline.missed) twice"

# a timer that cannot fire (its instance's snapshot is damaged) is dropped
# alone: its batch-mates fire in the same tick, and later ticks go on
at 2026-05-01T09:00:00+08:00
for k in 1 2 3; do
	id=$("$DOCKET" start review --as li) && "$DOCKET" act "$id" submit --as li >/dev/null
	eval "d$k=\$id"
done
sqlite3 "$DOCKET_HOME/docket.db" "update instances set snapshot = '{\"damaged' where id = $d2"
at 2026-05-02T09:00:00+08:00
dk tick --json
expect_rc 0 "a tick with one damaged instance among its timers succeeds"
[ "$(printf '%s' "$out" | jq .fired)" -ge 4 ] && ok "the other two instances' four timers fired" || { not_ok "fired"; show_last; }
[ "$(events "$d1" task.reminder)" = 1 ] && [ "$(events "$d3" task.reminder)" = 1 ] &&
	ok "both neighbours were reminded" || not_ok "neighbours: $(events "$d1" task.reminder) $(events "$d3" task.reminder)"
drops=$(sqlite3 "$DOCKET_HOME/docket.db" "select count(*) from events where instance_id = $d2 and type = 'timer.dropped' and data like '%damaged snapshot%'")
[ "$drops" = 2 ] && ok "the damaged instance's two timers are dropped with the reason in the trail" || not_ok "drops: $drops"
left=$(sqlite3 "$DOCKET_HOME/docket.db" "select count(*) from timers where instance_id = $d2 and due_at <= strftime('%s', '2026-05-02T01:00:00')")
[ "$left" = 0 ] && ok "no due timer of it is left to wedge later ticks" || not_ok "$left due timers left"
dk tick
expect_out "0 timers fired" "the next tick has nothing left to do"
done_testing
