# run_basic.sh - carry a small flow from start to end through the real binary:
# deploy, start, act, refusals with their exit statuses, show, log, list,
# inbox, recall, delegation, optimistic concurrency.
. "$DOCKET_SRC/tests/lib.sh"

cat >"$T/org.xml" <<'XML'
<org xmlns="urn:docket:org:1" timezone="Asia/Shanghai">
  <dept id="sales" name="销售公司" head="wei" division-leader="zhao"/>
  <user id="li" name="李明" email="li@example.com" dept="sales" roles="employee"/>
  <user id="wei" name="魏总" dept="sales" roles="dept-head assessment-group"/>
  <user id="zhao" name="赵副总" dept="sales" roles="division-leader"/>
  <user id="qian" name="钱" dept="sales" roles="employee"/>
</org>
XML
cat >"$T/leave.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" xmlns:dk="urn:docket:fn" id="leave" version="1">
  <title>请假 / Leave request</title>
  <role id="employee"/>
  <role id="dept-head"/>
  <var name="days" type="number" required="true"/>
  <var name="reason" type="string"/>
  <var name="approved_days" type="number" default="0"/>
  <state id="draft" initial="true" assign="$initiator">
    <transition id="submit" to="review"><guard>$days &gt; 0</guard></transition>
  </state>
  <state id="review" assign="dk:head-of($initiator)">
    <transition id="approve" to="done">
      <set var="approved_days" value="$days"/>
    </transition>
    <transition id="return" to="draft" comment="required"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML

dk start leave --as li
expect_rc 3 "start before deploy: unknown flow is not found"
dk org load "$T/org.xml"
expect_rc 0 "org load"
expect_out "4 users" "org load counts users"
dk deploy "$T/leave.xml"
expect_rc 0 "deploy"
expect_out "leave@1" "deploy prints ID@VERSION"
dk deploy "$T/leave.xml"
expect_rc 0 "deploy of the same bytes is a no-op"
expect_err "unchanged" "deploy says unchanged"
sed 's/Leave request/Leave request (edited)/' "$T/leave.xml" >"$T/leave2.xml"
dk deploy "$T/leave2.xml"
expect_rc 5 "same id and version with other bytes is a conflict"
expect_err "raise" "the conflict says to raise the version"

dk start leave --var days=3
expect_rc 2 "start without --as is a usage error"
dk start leave --as li --var days=three
expect_rc 1 "a non-number for a number var is invalid"
expect_err "days" "the message names the variable"
dk start leave --as li --var dayz=3
expect_rc 1 "an unknown variable is invalid"
expect_err "reason" "the message lists the declared variables"
dk start leave --as li
expect_rc 1 "a required variable missing is invalid"
dk start leave --as li --var days=2 --var "reason=O'Brien; DROP TABLE instances;--"
expect_rc 0 "start"
id=$out
[ -n "$id" ] && ok "start prints an id" || not_ok "start prints an id"

dk show "$id" --json
expect_rc 0 "show --json"
[ "$(printf '%s' "$out" | jq -r '.state')" = draft ] && ok "new instance is in draft" || { not_ok "new instance is in draft"; show_last; }
[ "$(printf '%s' "$out" | jq -r '.vars.reason')" = "O'Brien; DROP TABLE instances;--" ] && ok "SQL metacharacters kept verbatim" || not_ok "SQL metacharacters kept verbatim"

dk act "$id" approve --as li
expect_rc 5 "a transition of another state is not available"
expect_err "available: submit" "the refusal lists what is available"
dk act "$id" fly --as li
expect_rc 3 "an unknown transition is not found"
dk act "$id" submit --as qian
expect_rc 4 "someone else may not act on the initiator's draft"
dk act 99999 submit --as li
expect_rc 3 "unknown instance is not found"
dk act "$id" submit --as li
expect_rc 0 "submit"
dk inbox --as wei --json
[ "$(printf '%s' "$out" | jq -r '.[0].instance')" = "$id" ] && ok "the head of sales has the task" || { not_ok "the head of sales has the task"; show_last; }
dk inbox --as li --json
[ "$(printf '%s' "$out" | jq 'length')" = 0 ] && ok "the initiator's inbox is empty" || not_ok "the initiator's inbox is empty"
dk act "$id" return --as wei
expect_rc 6 "return without a comment fails its precondition"
expect_err "comment" "the message asks for a comment"
dk act "$id" return --as wei --comment "请补充说明"
expect_rc 0 "return with a comment"
dk act "$id" submit --as li --var days=0
expect_rc 6 "a false guard fails its precondition"
dk act "$id" submit --as li
expect_rc 0 "submit again"
dk show "$id" --json
v=$(printf '%s' "$out" | jq -r '.version')
dk act "$id" approve --as wei --expect-version $((v - 1))
expect_rc 5 "a stale --expect-version is a conflict"
dk recall "$id" --as qian
expect_rc 4 "only the initiator may recall"
dk recall "$id" --as li
expect_rc 0 "the initiator recalls before the head acts"
dk show "$id" --json
[ "$(printf '%s' "$out" | jq -r '.state')" = draft ] && ok "recall goes back to the initial state" || { not_ok "recall goes back to the initial state"; show_last; }
dk act "$id" submit --as li
dk delegate --from wei --to zhao --until 2099-01-01
expect_rc 0 "delegate"
dk delegations --json
[ "$(printf '%s' "$out" | jq -r '.[0].to')" = zhao ] && ok "delegations lists it" || { not_ok "delegations lists it"; show_last; }
dk act "$id" approve --as zhao --expect-version "$((v + 2))"
expect_rc 0 "the delegate approves for the head"
dk show "$id" --json
[ "$(printf '%s' "$out" | jq -r '.status')" = completed ] && ok "the instance is completed" || { not_ok "the instance is completed"; show_last; }
[ "$(printf '%s' "$out" | jq -r '.vars.approved_days')" = 2 ] && ok "set ran on approve" || { not_ok "set ran on approve"; show_last; }
dk act "$id" approve --as wei
expect_rc 5 "a completed instance takes no more transitions"
dk log "$id"
expect_rc 0 "log"
expect_out "zhao for wei" "the audit trail records the delegate"
expect_out "请补充说明" "the audit trail keeps the comment"
expect_out "instance.recalled" "the audit trail records the recall"
dk log "$id" --json
seqs=$(printf '%s' "$out" | jq -r '[.[].seq] | map(tostring) | join(",")')
want=$(printf '%s' "$out" | jq -r '[range(1; length+1)] | map(tostring) | join(",")')
[ "$seqs" = "$want" ] && ok "event sequence has no gap" || not_ok "event sequence has no gap ($seqs)"
dk list --flow leave --json
[ "$(printf '%s' "$out" | jq 'length')" = 1 ] && ok "list --flow" || { not_ok "list --flow"; show_last; }
dk list --state review --json
[ "$(printf '%s' "$out" | jq 'length')" = 0 ] && ok "list --state filters" || { not_ok "list --state filters"; show_last; }
# the notes of the state changes are written by the catch-up
dk archive sync
expect_rc 0 "archive sync writes the notes of the state changes"
gitlog=$(git --git-dir="$DOCKET_HOME/archive.git" log --reverse --format='%an|%s|%(trailers:key=Docket-Transition,valueonly)' "refs/docket/instances/$id")
printf '%s\n' "$gitlog" | grep -q '^李明|start' && ok "a plain git log shows the start by its author" || { not_ok "git log start"; echo "$gitlog"; }
printf '%s\n' "$gitlog" | grep -q '^赵副总|.*approve' && ok "a plain git log shows the delegate's approval" || { not_ok "git log approve"; echo "$gitlog"; }
dk graph --instance "$id"
expect_rc 0 "graph --instance draws the instance's flow"
expect_out "digraph" "graph --instance gives dot by default"
printf '%s\n' "$out" | grep '^.*"done" \[' | grep -q fillcolor && ok "the current state is highlighted" || not_ok "current state not highlighted"
[ "$(printf '%s\n' "$out" | grep -c fillcolor)" = 1 ] && ok "only the current state is highlighted" || not_ok "other states highlighted"
printf '%s' "$out" | dot -Tsvg >/dev/null 2>&1 && ok "graph --instance renders with dot" || not_ok "dot rejects graph --instance"
dk graph --instance "$id" --format mermaid
expect_out "stateDiagram" "graph --instance --format mermaid"
dk graph --instance 424242
expect_rc 3 "graph --instance of an unknown instance is not found"
done_testing
