#!/bin/sh
# api_security.sh - hostile requests against the real server, each checked
# for the right refusal AND for its effect: after every one the instance's
# version, its event count and its evidence are what they were, and the
# server still answers /healthz. Bad tokens (none, wrong, expired,
# revoked), another department's instance, paths in evidence names,
# oversize bodies, malformed and deeply nested JSON, a replayed action
# link, slow clients (a slowloris that never finishes its headers, a body
# that never ends) and many idle connections.
# (api_routes.sh and api_robust.sh check the statuses of the ordinary
# routes; here the point is that nothing changes.)
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/api_server.inc"

cat >"$T/leave.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" xmlns:dk="urn:docket:fn" id="leave" version="1">
  <var name="days" type="number" required="true"/>
  <evidence id="note" types="pdf txt"/>
  <state id="draft" initial="true" assign="$initiator">
    <transition id="submit" to="review"/>
  </state>
  <state id="review" assign="dk:head-of($initiator)">
    <transition id="approve" to="done"/>
    <transition id="return" to="draft" comment="required"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML
dk org load "$DOCKET_SRC/examples/org.xml"
dk deploy "$T/leave.xml"
dk hooks add http://127.0.0.1:9/hook --events task.assigned
for u in li wei qian sun; do
	dk token create --user $u
	eval "$u=\$out"
done
dk token create --user wei --name revoke-me
revoked=$out
dk token list --json
dk token revoke "$(printf %s "$out" | jq -r '.[] | select(.name == "revoke-me") | .id')"
DOCKET_NOW=2020-01-01T00:00:00Z "$DOCKET" token create --user wei --expires P1D >"$T/exp" 2>/dev/null
expired=$(cat "$T/exp")

serve_start --no-hooks --timeout 3 --max-body 200000
addr=${base#http://}
host=${addr%:*}
port=${addr##*:}

req POST /api/instances "$li" -d '{"flow":"leave","vars":{"days":2}}'
id=$(field .id)
req POST "/api/instances/$id/evidence/note?name=a.txt" "$li" --data-binary 'first note'
expect_code 201 "li attaches a note"
req POST "/api/instances/$id/transitions/submit" "$li" -d '{}'
expect_code 200 "li submits: wei reviews"

# version, event count and evidence count of the instance
facts() {
	dk show "$id" --json
	f=$(printf %s "$out" | jq -r .version)
	dk log "$id" --json
	f="$f $(printf %s "$out" | jq length)"
	dk evidence "$id" --json
	echo "$f $(printf %s "$out" | jq length)"
}
start=$(facts)
# After each hostile request: nothing changed, and the server serves.
unchanged() {
	now=$(facts)
	[ "$now" = "$start" ] && ok "$1: nothing changed" || not_ok "$1: $start became $now"
	c=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$base/healthz")
	[ "$c" = 200 ] || not_ok "$1: /healthz answered $c"
}

# ---- tokens ----
for t in "" "dkt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" "$expired" "$revoked" "Basic d2VpOnB3"; do
	case "$t" in
	"") what="no token" ;; dkt_A*) what="a wrong token" ;; "$expired") what="an expired token" ;;
	"$revoked") what="a revoked token" ;; *) what="a Basic credential" ;;
	esac
	if [ "$what" = "a Basic credential" ]; then
		code=$(curl -s -m 10 -o "$T/body" -w '%{http_code}' -H "Authorization: $t" -d '{}' \
			"$base/api/instances/$id/transitions/approve")
		body=$(cat "$T/body")
	else
		req POST "/api/instances/$id/transitions/approve" "$t" -d '{}'
	fi
	expect_code 401 "approve with $what: 401"
	expect_body '"status": 401' "as a problem object"
	unchanged "approve with $what"
done
req POST "/api/instances/$id/evidence/note?name=b.txt" "$expired" --data-binary 'x'
expect_code 401 "upload with an expired token: 401"
unchanged "upload with an expired token"

# ---- another department ----
req POST "/api/instances/$id/transitions/approve" "$qian" -d '{}'
expect_code 403 "another department's employee approves: 403"
unchanged "another department's approve"
req POST "/api/instances/$id/transitions/approve" "$sun" -d '{}'
expect_code 403 "another department's division leader approves: 403"
unchanged "another division leader's approve"
req POST "/api/instances/$id/recall" "$qian" -d '{}'
expect_code 403 "another department recalls: 403"
req POST "/api/instances/$id/evidence/note?name=c.txt" "$qian" --data-binary 'x'
expect_code 403 "another department uploads: 403"
req GET "/api/instances/$id/evidence/note/a.txt" "$qian"
expect_code 403 "another department downloads: 403"
unchanged "another department's recall, upload and download"
req GET "/api/instances?flow=leave" "$qian"
[ "$(field length)" = 0 ] && ok "another department's list does not show it" || not_ok "listed: $body"

# ---- paths in evidence names ----
for nm in "../../docket.db" "..%2F..%2Fdocket.db" "a%2Fb.txt" "..%5C..%5Cx.txt" "x%00.txt" ".." "%2Fetc%2Fpasswd" "a%0Ab.txt"; do
	req POST "/api/instances/$id/evidence/note?name=$nm" "$li" --data-binary 'evil'
	case "$code" in 400|404|422) ok "upload named '$nm' refused ($code)" ;; *) not_ok "upload named '$nm' got $code"; show_req ;; esac
done
req POST "/api/instances/$id/evidence/..%2F..%2Fnote?name=x.txt" "$li" --data-binary 'evil'
case "$code" in 400|404|422) ok "a path as the kind refused ($code)" ;; *) not_ok "kind path got $code" ;; esac
unchanged "uploads with paths in their names"
ls "$DOCKET_HOME" | grep -qv '^\(docket.db.*\|archive.git\)$' && not_ok "a stray file in the home: $(ls "$DOCKET_HOME")" || ok "no stray file in the home"
for p in "/api/instances/$id/evidence/note/..%2F..%2F..%2Fdocket.db" "/api/instances/$id/evidence/note/%2E%2E" \
	"/static/..%2F..%2Fapi%2Fserver.c" "/static/../../etc/passwd"; do
	code=$(curl -s --path-as-is -m 10 -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $li" "$base$p")
	case "$code" in 400|404) ok "GET $p: $code" ;; *) not_ok "GET $p: $code" ;; esac
	grep -q "SQLite format\|root:" "$T/body" && not_ok "GET $p leaked a file"
done
unchanged "downloads with paths"

# ---- oversize bodies ----
head -c 200001 /dev/zero | tr '\0' ' ' >"$T/big"
req POST "/api/instances/$id/transitions/approve" "$wei" -H 'Content-Type: application/json' --data-binary @"$T/big"
expect_code 413 "an act with a body over --max-body: 413"
expect_hdr "application/problem+json" "a problem object"
expect_body '"urn:docket:problem:too-large"' "of type too-large"
unchanged "an oversize act"
req POST "/api/instances/$id/transitions/approve" "$wei" -H 'Transfer-Encoding: chunked' --data-binary @"$T/big"
expect_code 413 "the same, chunked: 413"
unchanged "an oversize chunked act"
# a Content-Length far beyond anything, with no body following
printf 'POST /api/instances/%s/transitions/approve HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 99999999999\r\n\r\n' "$id" "$wei" >"$T/huge.req"
code=$(timeout 10 curl -s -m 8 "telnet://$host:$port" <"$T/huge.req" 2>/dev/null | head -n 1 | tr -d '\r')
case "$code" in *413*) ok "a declared 100 GB body is refused before it is sent: $code" ;; *) not_ok "huge Content-Length: '$code'" ;; esac
unchanged "a declared 100 GB body"

# ---- malformed and deeply nested JSON ----
for j in '{"comment":' '{"comment":"x"}}' "{\"comment\":\"\377\"}" '{"comment":"a","comment":"b"}' 'null' '"str"' '{"vars":{"days":{"x":1}}}'; do
	req POST "/api/instances/$id/transitions/approve" "$wei" -H 'Content-Type: application/json' -d "$j"
	expect_code 400 "approve with the body $j: 400"
done
unchanged "malformed JSON"
awk 'BEGIN{for(i=0;i<100000;i++)printf "["}' >"$T/deep"
req POST "/api/instances/$id/transitions/approve" "$wei" -H 'Content-Type: application/json' --data-binary @"$T/deep"
expect_code 400 "100,000 '[': 400"
unchanged "100,000 '['"
awk 'BEGIN{printf "{\"comment\":\"ok\",\"vars\":"; for(i=0;i<30000;i++)printf "{\"a\":"; }' >"$T/deep2"
req POST "/api/instances" "$li" -H 'Content-Type: application/json' --data-binary @"$T/deep2"
expect_code 400 "30,000 nested objects: 400"
unchanged "30,000 nested objects"

# ---- a replayed action link ----
dk deliveries --json
link=$(printf %s "$out" | jq -r --arg i "$id" '[.[] | select(.instance == $i) | .body | fromjson
	| .data.assignees[] | select(.id == "wei") | .actions[] | select(.transition == "return") | .url] | last' |
	sed 's|^.*/links/|/links/|')
req POST "$link" "" -d 'comment=请补充'
expect_code 303 "wei returns through an action link"
start=$(facts)
req POST "$link" "" -d 'comment=again'
expect_code 410 "the link replayed: 410"
unchanged "the replayed link"
req POST "${link}x" "" -d 'comment=again'
expect_code 403 "the link altered: 403"
unchanged "the altered link"

# ---- slow clients ----
# Two slowlorises (a header line a second, never finishing: never idle,
# so only the request deadline stops them) and two bodies that never end,
# all cut off after the 3 s timeout while others are served.
slow() {
	bash -c 'c=0
	until exec 3<>"/dev/tcp/$1/$2"; do
		c=$((c + 1))
		[ $c -lt 10 ] || { echo "no-connection" >"$3"; exit 0; }
		sleep 0.2
	done 2>/dev/null
	s=$(date +%s)
	if [ "$4" = headers ]; then
		# the request line first, then the header drip: started the other
		# way round, a busy machine let a header line go first, the server
		# rightly refused it and the next write killed this client (SIGPIPE)
		printf "POST /api/instances/$5/transitions/approve HTTP/1.1\r\nHost: x\r\n" >&3
		for k in 1 2 3 4 5 6 7 8 9 10; do printf "X-Slow-$k: y\r\n" >&3 2>/dev/null || break; sleep 1; done &
	else
		printf "POST /api/instances/$5/transitions/approve HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $6\r\nContent-Length: 100\r\n\r\n{\"comm" >&3
	fi
	timeout 12 cat <&3 >/dev/null
	echo $(( $(date +%s) - s )) >"$3"' slow "$host" "$port" "$1" "$2" "$id" "$wei" &
}
slow "$T/s1" headers; s1=$!
slow "$T/s2" headers; s2=$!
slow "$T/s3" body; s3=$!
slow "$T/s4" body; s4=$!
sleep 1
req GET "/api/instances/$id" "$li"
expect_code 200 "others are served while four slow clients hang"
wait $s1 $s2 $s3 $s4
for f in s1 s2 s3 s4; do
	secs=$(cat "$T/$f")
	# a header every second keeps no connection alive past the timeout
	# plus one interval (a client that could not even connect, ten times
	# in two seconds, says so instead of an empty figure)
	case "$secs" in
	[0-9]*) [ "$secs" -le 6 ] && ok "slow client $f cut off after ${secs} s" ||
		not_ok "slow client $f held ${secs} s" ;;
	*) not_ok "slow client $f: ${secs:-no result}" ;;
	esac
done
unchanged "slow clients"

# ---- many idle connections ----
socks() { ls -l "/proc/$serve_pid/fd" 2>/dev/null | grep -c socket; }
s0=$(socks)
idle=""
for k in $(seq 1 100); do
	sleep 5 | curl -s -m 8 "telnet://$host:$port" >/dev/null 2>&1 &
	idle="$idle $!"
done
sleep 1
s1=$(socks)
[ "$s1" -ge $((s0 + 50)) ] && ok "the server holds the idle connections ($s0 -> $s1 sockets)" || not_ok "sockets $s0 -> $s1"
req GET "/api/instances/$id" "$li"
expect_code 200 "served with 100 idle connections open"
sleep 3.5
s2=$(socks)
[ "$s2" -le $((s0 + 5)) ] && ok "the idle connections are dropped after the timeout ($s2 sockets)" || not_ok "still $s2 sockets"
wait $idle 2>/dev/null
unchanged "many idle connections"
serve_stop
[ "$serve_rc" = 0 ] && ok "serve stops cleanly after all that" || not_ok "serve exited $serve_rc"

# ---- the default timeout is 30 s, and --timeout is checked ----
dk serve --timeout 0
expect_rc 2 "--timeout 0 is refused"
grep -q '"127.0.0.1:8080", NULL, 4, 256, 30,' "$DOCKET_SRC/api/api.h" && ok "the default connection timeout is 30 s" || not_ok "default timeout changed"
done_testing
