#!/bin/sh
# api_links.sh - signed action links from webhook payloads, through the
# real server: the payload carries one link per assignee and move, built
# on --public-url; GET only shows a page (a mail scanner's fetch changes
# nothing); POST acts as the link's user and lands on the inbox page; a
# replay (even after a restart), an expired, tampered or stale link is
# refused in plain words with 410/403/409 and changes nothing.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/api_server.inc"

cat >"$T/leave.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" xmlns:dk="urn:docket:fn" id="leave" version="1">
  <title>请假 / Leave</title>
  <var name="days" type="number" required="true"/>
  <state id="draft" title="填写 / Draft" initial="true" assign="$initiator">
    <transition id="submit" to="review"/>
  </state>
  <state id="review" title="部门审批 / Head review" assign="dk:head-of($initiator)">
    <transition id="approve" to="done"/>
    <transition id="return" to="draft" comment="required"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML
dk org load "$DOCKET_SRC/examples/org.xml"
dk deploy "$T/leave.xml"
dk hooks add http://127.0.0.1:9/hook --events task.assigned
expect_rc 0 "a subscription for task.assigned (never sent: --no-hooks)"
dk token create --user li
li=$out

serve_start --no-hooks --public-url https://docket.example.com/ap/
# The state of instance $1 as "version events", to show nothing changed.
facts() {
	v=$(dk show "$1" --json && printf %s "$out" | jq -r .version)
	e=$(dk log "$1" --json && printf %s "$out" | jq length)
	echo "$v $e"
}
# The link for user $2 and transition $3 in the newest task.assigned
# payload of instance $1, rebased from the public URL onto this server.
link_of() {
	dk deliveries --json
	printf %s "$out" | jq -r --arg i "$1" --arg u "$2" --arg t "$3" \
		'[.[] | select(.instance == $i) | .body | fromjson | .data.assignees[]
		  | select(.id == $u) | .actions[] | select(.transition == $t) | .url] | last'
}
path_of() { printf %s "$1" | sed 's|^.*/links/|/links/|'; }

req POST /api/instances "$li" -d '{"flow":"leave","vars":{"days":2},"title":"年假 2 天"}'
id=$(field .id)
req POST "/api/instances/$id/transitions/submit" "$li" -d '{}'
expect_code 200 "li submits; wei has the review task"

url=$(link_of "$id" wei approve)
case "$url" in https://docket.example.com/ap/links/*) ok "the payload carries wei's approve link on the public URL" ;;
*) not_ok "approve link: '$url'"; printf %s "$out" | head -c 2000 | sed 's/^/#   /' ;; esac
ret=$(link_of "$id" wei return)
[ -n "$ret" ] && [ "$ret" != null ] && [ "$ret" != "$url" ] && ok "and a separate return link" || not_ok "return link: '$ret'"
dk deliveries --json
[ "$(printf %s "$out" | jq -c --arg i "$id" '[.[] | select(.instance == $i) | .body | fromjson
	| .data.assignees[] | select(.id == "li") | .actions[].transition]')" = '["submit"]' ] &&
	ok "li's only link is the submit of the draft, her own task" || not_ok "li's links: $out"
approve=$(path_of "$url")
back=$(path_of "$ret")
before=$(facts "$id")

# ---- GET shows, never acts ----
req GET "$approve" ""
expect_code 200 "GET on the link: 200"
expect_hdr "text/html" "a page"
expect_body "确认操作 / Confirm action" "that asks to confirm"
expect_body "年假 2 天" "naming the instance"
expect_body "部门审批 / Head review" "its step"
expect_body "approve" "and the move"
expect_body 'method="post"' "with a button that POSTs"
req GET "$approve" ""
req HEAD "$approve" "" -I
[ "$(facts "$id")" = "$before" ] && ok "two GETs and a HEAD (a mail scanner) changed nothing" || not_ok "changed: $(facts "$id") vs $before"
req GET "$back" ""
expect_body "required" "the return page says a comment is required"
expect_body 'textarea id="comment" name="comment" rows="3" required' "and the field is required"
grep -q "/links/(token)" "$T/serve.log" && ! grep -q "$(printf %s "$approve" | cut -c8-40)" "$T/serve.log" &&
	ok "the log names no token" || not_ok "a token in the log"

# ---- tampered ----
tampered=$(printf %s "$approve" | sed 's/\.\(.\)/.\1x/')
req GET "$tampered" ""
expect_code 403 "a tampered signature: 403"
expect_body "not valid" "says the link is not valid"
# A link for another user (li's name swapped in the signed part) fails too.
fields=$(printf %s "$approve" | sed 's|/links/||; s|\..*||')
sig=$(printf %s "$approve" | sed 's|.*\.||')
forged=$(printf %s "$fields" | tr -- '-_' '+/' | base64 -d 2>/dev/null | sed 's/^wei$/li/' | base64 -w0 | tr -- '+/' '-_' | tr -d '=')
req POST "/links/$forged.$sig" "" -d 'comment=x'
expect_code 403 "a link with its user changed: 403"
req GET "/links/garbage" ""
expect_code 403 "garbage: 403"
[ "$(facts "$id")" = "$before" ] && ok "forgeries changed nothing" || not_ok "changed"

# ---- a comment the flow requires is required ----
req POST "$back" "" -H 'Content-Type: application/json' -d '{}'
expect_code 422 "return without the comment: 422"
[ "$(facts "$id")" = "$before" ] && ok "and nothing changed" || not_ok "changed"

# ---- POST acts as wei and lands on the inbox ----
req POST "$approve" "" --data-urlencode 'comment=同意 / agreed'
expect_code 303 "POST the form: 303"
expect_hdr "Location: /inbox/instances/$id" "landing on the inbox page of the instance"
req GET "/api/instances/$id/log" "$li"
printf %s "$body" | jq -e '.[-2] | .transition == "approve" and .actor == "wei" and .comment == "同意 / agreed"' >/dev/null ||
	printf %s "$body" | jq -e 'any(.[]; .transition == "approve" and .actor == "wei" and .comment == "同意 / agreed")' >/dev/null &&
	ok "the log: wei approved, with the comment" || not_ok "log: $body"
after=$(facts "$id")

# ---- replayed ----
req POST "$approve" "" -d 'comment=again'
expect_code 410 "the same link again: 410"
expect_body "already used by wei" "says it was used, and by whom"
req GET "$approve" ""
expect_code 410 "GET on a used link: 410"
[ "$(facts "$id")" = "$after" ] && ok "the replay changed nothing" || not_ok "changed"
serve_stop
serve_start --no-hooks
req POST "$approve" "" -H 'Content-Type: application/json' -d '{}'
expect_code 410 "replayed after a restart: 410"
expect_body '"urn:docket:problem:' "a problem object for a JSON client"
[ "$(facts "$id")" = "$after" ] && ok "nothing changed" || not_ok "changed"

# ---- stale: the return link of the finished instance ----
req POST "$back" "" -d 'comment=too late'
expect_code 409 "the other link after the decision: 409"
expect_body "finished" "says the instance is finished"

# ---- stale: the state was left and entered again ----
req POST /api/instances "$li" -d '{"flow":"leave","vars":{"days":1}}'
id2=$(field .id)
req POST "/api/instances/$id2/transitions/submit" "$li" -d '{}'
old=$(path_of "$(link_of "$id2" wei approve)")
oldret=$(path_of "$(link_of "$id2" wei return)")
req POST "$oldret" "" -d 'comment=请补充 / add the dates'
expect_code 303 "wei returns through the return link"
req POST "/api/instances/$id2/transitions/submit" "$li" -d '{}'
expect_code 200 "li submits again: review, second visit"
before2=$(facts "$id2")
req GET "$old" ""
expect_code 409 "the approve link of the first visit: 409"
expect_body "moved on" "says the instance moved on"
req POST "$old" "" -d ''
expect_code 409 "and POST too: 409"
[ "$(facts "$id2")" = "$before2" ] && ok "the stale link changed nothing" || not_ok "changed"
new=$(path_of "$(link_of "$id2" wei approve)")
[ "$new" != "$old" ] && ok "the second visit has a new link" || not_ok "same link"

# ---- expired ----
serve_stop
DOCKET_NOW=2100-01-01T00:00:00Z serve_start --no-hooks
req GET "$new" ""
expect_code 410 "an expired link: 410"
expect_body "expired" "says it expired"
req POST "$new" "" -d ''
expect_code 410 "POST on it: 410"
serve_stop
[ "$(facts "$id2")" = "$before2" ] && ok "the expired link changed nothing" || not_ok "changed"

# ---- links expire after DOCKET_LINK_TTL ----
dk act "$id2" return --as wei --comment "again"
DOCKET_NOW=2030-01-01T08:00:00Z DOCKET_LINK_TTL=PT1H dk act "$id2" submit --as li
expect_rc 0 "a command-line act queues links too"
dk deliveries --json
exp=$(printf %s "$out" | jq -r --arg i "$id2" '[.[] | select(.instance == $i) | .body | fromjson
	| .data.assignees[] | select(.id == "wei") | .actions[0].expires_at] | last')
expect_eq "$exp" 2030-01-01T09:00:00Z "they expire after DOCKET_LINK_TTL"
DOCKET_LINK_TTL=soon dk act "$id2" return --as wei --comment "x"
expect_rc 1 "a DOCKET_LINK_TTL that is not a duration is refused"
expect_err "DOCKET_LINK_TTL" "naming the variable"
done_testing
