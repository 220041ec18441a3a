#!/bin/sh
# api_routes.sh - every route of `docket serve` over real HTTP: tokens,
# who sees what, starting and acting with ETag/If-Match, Idempotency-Key,
# problem objects for every error status.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/api_server.inc"

cat >"$T/leave.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="leave" version="1">
  <title>请假 / Leave request</title>
  <var name="days" type="number" required="true"/>
  <state id="draft" initial="true" assign="$initiator">
    <transition id="submit" to="review"/>
  </state>
  <state id="review" title="审批 / Review" assign="dk:head-of($initiator)">
    <transition id="approve" to="done"><guard>$days &lt;= 10</guard></transition>
    <transition id="return" to="draft" comment="required"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML

dk org load "$DOCKET_SRC/examples/org.xml"
expect_rc 0 "org loads"

# ---- tokens on the command line ----
dk token create --user nobody
expect_rc 3 "token create refuses a user the org does not know"
dk token create --user li --expires 2020-01-01
expect_rc 1 "token create refuses an expiry in the past"
dk token create --user li --name "li's laptop"
expect_rc 0 "token create for li"
li=$out
case "$li" in dkt_*) ok "token starts with dkt_" ;; *) not_ok "token starts with dkt_: $li" ;; esac
[ ${#li} -eq 47 ] && ok "token is dkt_ + 43 base64url characters" || not_ok "token length ${#li}"
for u in wei liu qian zhao sun chen gao; do
	dk token create --user $u
	eval "$u=\$out"
done
dk token create --user li --expires P30D --name later
expect_rc 0 "token create with a duration expiry"
dk token list --json
expect_out '"name": "li'"'"'s laptop"' "token list shows the name"
case "$out" in *dkt_*) not_ok "token list never shows a token" ;; *) ok "token list never shows a token" ;; esac
# The database keeps the hash only.
if sqlite3 "$DOCKET_HOME/docket.db" "select sha256 from tokens" | grep -q "$(printf %s "$li" | sha256sum | cut -c1-64)"; then
	ok "the store keeps the token's SHA-256"
else
	not_ok "the store keeps the token's SHA-256"
fi
dk token create --user li --name "to revoke"
revoked=$out
dk token list --json
rid=$(printf '%s' "$out" | jq -r '.[] | select(.name == "to revoke") | .id')
dk token revoke "$rid"
expect_rc 0 "token revoke"
dk token revoke 999
expect_rc 3 "token revoke of an unknown number"
# An expired token: made at a past clock, presented now.
DOCKET_NOW=2020-01-01T00:00:00Z "$DOCKET" token create --user li --expires P1D >"$T/exp" 2>/dev/null
expired=$(cat "$T/exp")

serve_start --timeout 5
[ "$base" != "http://" ] && ok "serve prints its bound address" || not_ok "serve did not start"

# ---- public routes ----
req GET /healthz ""
expect_code 200 "GET /healthz"
expect_body '"ok"' "healthz says ok"
req GET /openapi.json ""
expect_code 200 "GET /openapi.json"
expect_body '"openapi"' "the OpenAPI description"
req GET /inbox ""
expect_code 200 "GET /inbox"
expect_hdr "text/html; charset=utf-8" "the inbox page is UTF-8 HTML"
req GET /inbox/instances/1 ""
expect_code 200 "GET /inbox/instances/{id} serves the page"
req GET /static/inbox.js ""
expect_code 200 "GET /static/inbox.js"
req GET /static/..%2Fapi.h ""
expect_code 404 "a path outside the static files is not found"
req GET /nowhere ""
expect_code 404 "an unknown route is 404"
expect_body '"type": "urn:docket:problem:not-found"' "as a problem object"
req DELETE /api/inbox "$li"
expect_code 405 "a known path with another method is 405"

# ---- authentication ----
req GET /api/inbox ""
expect_code 401 "no token: 401"
expect_hdr "WWW-Authenticate: Bearer" "401 names the Bearer scheme"
req GET /api/inbox "dkt_wrongwrongwrongwrongwrongwrongwrongwrongwro"
expect_code 401 "wrong token: 401"
expect_body "unknown token" "the problem says unknown"
req GET /api/inbox "nonsense"
expect_code 401 "not a docket token: 401"
req GET /api/inbox "$expired"
expect_code 401 "expired token: 401"
expect_body "expired" "the problem says expired"
req GET /api/inbox "$revoked"
expect_code 401 "revoked token: 401"
expect_body "revoked" "the problem says revoked"
req GET /api/me "$li"
expect_code 200 "GET /api/me"
expect_body '"name": "李明"' "me: Chinese name intact"

# ---- flows ----
req POST /api/flows "$li" -H 'Content-Type: application/xml' --data-binary @"$T/leave.xml"
expect_code 403 "deploy by an employee: 403"
req POST /api/flows "$gao" -H 'Content-Type: application/xml' --data-binary @"$T/leave.xml"
expect_code 201 "deploy by the evaluation centre: 201"
expect_body '"flow": "leave"' "deploy names the flow"
req POST /api/flows "$gao" --data-binary @"$T/leave.xml"
expect_code 200 "the same bytes again: 200, unchanged"
expect_body '"unchanged": true' "unchanged is true"
printf '<flow xmlns="urn:docket:flow:1" id="bad" version="1"><state id="a"/></flow>' >"$T/bad.xml"
req POST /api/flows "$gao" --data-binary @"$T/bad.xml"
expect_code 422 "an invalid flow: 422"
expect_body '"errors"' "with every check error listed"
req GET /api/flows "$li"
expect_code 200 "GET /api/flows"
expect_body '"请假 / Leave request"' "lists the deployed flow"
req GET /api/flows/leave "$li"
expect_code 200 "GET /api/flows/{flow}"
[ "$(field '.states | length')" = 3 ] && ok "the flow model has its states" || not_ok "flow states: $body"
req GET /api/flows/nope "$li"
expect_code 404 "unknown flow: 404"
req GET /api/flows/leave/diagram "$li"
expect_code 200 "GET /api/flows/{flow}/diagram (mermaid)"
expect_body "stateDiagram" "a Mermaid diagram"
req GET "/api/flows/leave/diagram?format=dot" "$li"
expect_body "digraph" "a Graphviz diagram"
req GET "/api/flows/leave/diagram?format=png" "$li"
expect_code 400 "an unknown diagram format: 400"
req PUT /api/org "$li" --data-binary @"$DOCKET_SRC/examples/org.xml"
expect_code 403 "org load by an employee: 403"
req PUT /api/org "$gao" --data-binary @"$DOCKET_SRC/examples/org.xml"
expect_code 200 "org load by the evaluation centre"

# ---- instances ----
req POST /api/instances "$li" -H 'Content-Type: application/json' -d '{"flow":"leave","vars":{"days":3},"title":"年假 3 天"}'
expect_code 201 "POST /api/instances starts one"
id=$(field .id)
expect_hdr "Location: /api/instances/$id" "with its Location"
expect_hdr 'ETag: "1"' "and its version as ETag"
req POST /api/instances "$li" -d '{"flow":"leave","vars":{}}'
expect_code 422 "a missing required variable: 422"
req POST /api/instances "$li" -d '{"flow":"nope"}'
expect_code 404 "an unknown flow: 404"
req POST /api/instances "$li" -d '{"flow":"leave",'
expect_code 400 "malformed JSON: 400"
expect_body "not valid JSON" "the problem says so"
req POST /api/instances "$li" -d '["leave"]'
expect_code 400 "a JSON array where an object is wanted: 400"
req POST /api/instances "$li" -d '{"flow":"leave","vars":{"days":[1]}}'
expect_code 400 "a variable that is not a scalar: 400"
deep=$(awk 'BEGIN{for(i=0;i<5000;i++)printf "[";for(i=0;i<5000;i++)printf "]"}')
req POST /api/instances "$li" -d "{\"flow\":$deep}"
expect_code 400 "deeply nested JSON: 400"

req GET "/api/instances/$id" "$li"
expect_code 200 "GET /api/instances/{id}"
expect_body '"title": "年假 3 天"' "the Chinese title intact"
expect_hdr 'ETag: "1.' "ETag is the version, then the mark of the caller's moves"
etag_li=$(printf '%s\n' "$hdrs" | tr -d '\r' | sed -n 's/^ETag: //p')
req GET "/api/instances/$id" "$li" -H "If-None-Match: $etag_li"
expect_code 304 "If-None-Match with the current ETag: 304"
req GET "/api/instances/$id" "$li" -H 'If-None-Match: "1"'
expect_code 200 "If-None-Match with the version alone is not this body: 200"
req GET /api/instances/999 "$li"
expect_code 404 "unknown instance: 404"
req GET "/api/instances/$id" "$qian"
expect_code 403 "another department's assessment group: 403"
req GET "/api/instances/$id" "$sun"
expect_code 403 "another department's division leader: 403"
req GET "/api/instances/$id" "$liu"
expect_code 200 "the department's assessment group sees it"
req GET "/api/instances/$id" "$zhao"
expect_code 200 "the department's division leader sees it"
req GET "/api/instances/$id" "$chen"
expect_code 200 "the top leader sees it"
req GET "/api/instances/$id/log" "$li"
expect_code 200 "GET /api/instances/{id}/log"
expect_body '"instance.started"' "the log starts with the start"
req GET "/api/instances/$id/log" "$qian"
expect_code 403 "another department's log: 403"

req POST "/api/instances/$id/transitions/submit" "$qian" -d '{}'
expect_code 403 "acting on an instance one cannot see: 403"
req POST "/api/instances/$id/transitions/submit" "$li" -H 'If-Match: "7"' -d '{}'
expect_code 412 "a stale If-Match: 412"
req POST "/api/instances/$id/transitions/submit" "$li" -H 'If-Match: "1.zz"' -d '{}'
expect_code 400 "an If-Match whose mark is not hex: 400"
req POST "/api/instances/$id/transitions/submit" "$li" -H "If-Match: $etag_li" -H 'Idempotency-Key: k-1' -d '{"comment":"请审批"}'
expect_code 200 "submit with the current If-Match (a GET's ETag)"
expect_body '"to": "review"' "moves to review"
expect_hdr 'ETag: "2"' "the new ETag"
first=$body
req POST "/api/instances/$id/transitions/submit" "$li" -H "If-Match: $etag_li" -H 'Idempotency-Key: k-1' -d '{"comment":"请审批"}'
expect_code 200 "the same Idempotency-Key again: the first answer"
[ "$(printf %s "$body" | jq -c .)" = "$(printf %s "$first" | jq -c .)" ] && ok "the same body" || not_ok "replayed body differs"
req POST "/api/instances/$id/recall" "$li" -H 'Idempotency-Key: k-1' -d '{}'
expect_code 422 "an Idempotency-Key reused on another route: 422"
req GET "/api/instances/$id/log" "$li"
[ "$(printf %s "$body" | jq '[.[] | select(.transition == "submit")] | length')" = 1 ] && ok "submitted once" || not_ok "submit count: $body"

# available_transitions: what the caller may fire, by the engine's rules
req GET "/api/instances/$id" "$li"
[ "$(field '.available | sort | join(",")')" = "approve,return" ] && ok "available: the review's moves" ||
	not_ok "available: $(field .available)"
[ "$(field '.available_transitions | length')" = 0 ] &&
	ok "available_transitions: none of the head's moves for the initiator" ||
	not_ok "li's available_transitions: $(field .available_transitions)"
req GET "/api/instances/$id" "$wei"
[ "$(field '.available_transitions | sort | join(",")')" = "approve,return" ] &&
	ok "available_transitions: the head may approve and return" ||
	not_ok "wei's available_transitions: $(field .available_transitions)"
req GET "/api/instances/$id" "$zhao"
[ "$(field '.available_transitions | length')" = 0 ] &&
	ok "available_transitions: the division leader sees the instance but may not act" ||
	not_ok "zhao's available_transitions: $(field .available_transitions)"

req GET /api/inbox "$wei"
expect_code 200 "GET /api/inbox"
expect_body "\"instance\": \"$id\"" "the head has the task"
req POST "/api/instances/$id/transitions/return" "$wei" -d '{}'
expect_code 422 "return without the required comment: 422"
req POST "/api/instances/$id/transitions/nope" "$wei" -d '{}'
expect_code 404 "an unknown transition: 404"
req POST "/api/instances/$id/transitions/submit" "$wei" -d '{}'
expect_code 409 "a transition not available in this state: 409"
req POST "/api/instances/$id/transitions/approve" "$li" -d '{}'
expect_code 403 "approving one's own request: 403"
req POST "/api/instances/$id/transitions/return" "$wei" -d '{"comment":"补充说明"}'
expect_code 200 "return with a comment"
req POST "/api/instances/$id/transitions/submit" "$li" -d '{}'
req POST "/api/instances/$id/recall" "$li" -d '{"comment":"不休了"}'
expect_code 200 "POST /api/instances/{id}/recall"
req GET "/api/instances?flow=leave" "$li"
expect_code 200 "GET /api/instances?flow="
[ "$(field length)" = 1 ] && ok "li lists their instance" || not_ok "li list: $body"
req GET "/api/instances?status=active" "$qian"
[ "$(field length)" = 0 ] && ok "another department lists nothing" || not_ok "qian list: $body"
req GET "/api/instances?overdue=1&limit=5" "$chen"
expect_code 200 "list with overdue and limit"
req GET "/api/instances?limit=0" "$chen"
expect_code 400 "a bad limit: 400"

# big enough days: the guard refuses
req POST /api/instances "$li" -d '{"flow":"leave","vars":{"days":30}}'
id2=$(field .id)
req POST "/api/instances/$id2/transitions/submit" "$li" -d '{}'
req POST "/api/instances/$id2/transitions/approve" "$wei" -d '{}'
expect_code 422 "a false guard: 422"

# ---- delegations ----
# liu's view before the delegation, to revalidate after it.
req GET "/api/instances/$id2" "$liu"
etag_before=$(printf '%s\n' "$hdrs" | tr -d '\r' | sed -n 's/^ETag: //p')
[ "$(field '.available_transitions | length')" = 0 ] && ok "before the delegation liu may do nothing" ||
	not_ok "liu's available_transitions before: $(field .available_transitions)"
dk delegate --from wei --to liu --until 2099-01-01
req GET "/api/instances/$id2" "$liu" -H "If-None-Match: $etag_before"
expect_code 200 "a delegation changes the caller's moves: the old ETag gets the new body, not 304"
req GET /api/delegations "$liu"
expect_code 200 "GET /api/delegations"
expect_body '"to": "liu"' "liu sees the delegation to them"
req GET /api/delegations "$qian"
[ "$(field length)" = 0 ] && ok "others do not see it" || not_ok "qian delegations: $body"
req GET "/api/instances/$id2" "$liu"
expect_code 200 "the delegate sees the delegated task's instance"
[ "$(field '.available_transitions | sort | join(",")')" = "approve,return" ] &&
	ok "available_transitions: the delegate may act for the head" ||
	not_ok "liu's available_transitions: $(field .available_transitions)"

# ---- a revocation takes effect at once, however warm the token cache ----
dk token create --user li --name hot
hot=$out
warm=0
for round in 1 2 3; do
	pids=""
	for k in 1 2 3 4 5 6 7 8; do
		curl -s -m 20 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $hot" \
			"$base/api/me" >"$T/warm.$round.$k" &
		pids="$pids $!"
	done
	wait $pids
	warm=$((warm + $(cat "$T"/warm.$round.* | grep -c '^200$')))
done
expect_eq "$warm" 24 "a token used 24 times, 8 at once (cached by every request thread)"
dk token list --json
dk token revoke "$(printf '%s' "$out" | jq -r '.[] | select(.name == "hot") | .id')"
expect_rc 0 "revoke it while the server runs"
pids=""
for k in 1 2 3 4 5 6 7 8; do
	curl -s -m 20 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $hot" \
		"$base/api/me" >"$T/after.$k" &
	pids="$pids $!"
done
wait $pids
expect_eq "$(cat "$T"/after.* | grep -c '^401$')" 8 "every request after the revoke gets 401"

# ---- the body limit ----
head -c 1100000 /dev/zero | tr '\0' 'x' >"$T/big"
req POST /api/instances "$li" --data-binary @"$T/big"
expect_code 413 "a body over 1 MiB: 413"
req GET /healthz ""
expect_code 200 "still serving after the 413"

serve_stop
[ "$serve_rc" = 0 ] && ok "SIGTERM stops the server with status 0" || not_ok "serve exited $serve_rc"
grep -q "GET /api/inbox 200 .*ms wei" "$T/serve.log" && ok "a log line per request: method, path, status, duration, user" || not_ok "log lines"
grep -q "docket serve: stopped" "$T/serve.log" && ok "the server says it stopped" || not_ok "no stop line"
done_testing
