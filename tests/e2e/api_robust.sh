#!/bin/sh
# api_robust.sh - `docket serve` under hostile or unlucky clients: a slow
# client that never finishes its request is cut off while others are
# served, oversize bodies are refused before they are read, a request in
# flight at SIGTERM still gets its answer, and timers fire by themselves.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/api_server.inc"

dk org load "$DOCKET_SRC/examples/org.xml"
dk token create --user gao
gao=$out
dk token create --user li
li=$out

serve_start --timeout 2 --max-body 100000
addr=${base#http://}
host=${addr%:*}
port=${addr##*:}

# ---- a slow client: half a request, then silence ----
# bash's /dev/tcp holds the socket open without closing our side, and cat
# returns as soon as the server closes its side.
bash -c 'exec 3<>"/dev/tcp/$1/$2"
printf "POST /api/instances HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"flow\":" >&3
s=$(date +%s)
timeout 8 cat <&3 >/dev/null
echo $(( $(date +%s) - s )) >"$3"' slow "$host" "$port" "$T/slow.secs" &
slow=$!
sleep 0.5
req GET /healthz ""
expect_code 200 "others are served while a slow client hangs"
wait $slow
secs=$(cat "$T/slow.secs")
# The server cuts it off after its 2 s timeout, long before the client's 8 s.
[ "$secs" -le 4 ] && ok "the slow client is cut off by the server (after ${secs} s)" ||
	not_ok "the slow client was held ${secs} s"
req GET /healthz ""
expect_code 200 "still serving after the slow client"
req GET /api/instances "$gao"
[ "$(field length)" = 0 ] && ok "the half request started nothing" || not_ok "instances: $body"

# ---- many idle connections do not stop the server ----
idle=""
for k in 1 2 3 4 5 6 7 8; do
	sleep 3 | curl -s -m 6 "telnet://$host:$port" >/dev/null 2>&1 &
	idle="$idle $!"
done
sleep 0.3
req GET /healthz ""
expect_code 200 "served with idle connections open"
wait $idle 2>/dev/null

# ---- body limits ----
head -c 100001 /dev/zero | tr '\0' 'x' >"$T/big"
req POST /api/flows "$gao" --data-binary @"$T/big"
expect_code 413 "a declared body over --max-body: 413"
expect_body '"urn:docket:problem:too-large"' "as a problem object"
# Chunked: no length announced, refused once the limit is crossed.
req POST /api/flows "$gao" -H 'Transfer-Encoding: chunked' --data-binary @"$T/big"
expect_code 413 "a chunked body over --max-body: 413"
req GET /healthz ""
expect_code 200 "still serving after oversize bodies"

# ---- a request in flight at SIGTERM finishes ----
cat >"$T/flow.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="ping" version="1">
  <state id="a" initial="true" assign="$initiator">
    <deadline after="PT1S"><fire transition="go"/></deadline>
    <transition id="go" to="b"/>
  </state>
  <state id="b" final="true"/>
</flow>
XML
# pad the flow with a comment so the upload takes a while at 20 kB/s
awk 'BEGIN{printf "<!--"; for(i=0;i<1200;i++) printf "padding padding padding padding padding padding. "; print "-->"}' >>"$T/flow.xml"
curl -s -m 20 -o "$T/inflight.body" -w '%{http_code}' --limit-rate 20k \
	-H "Authorization: Bearer $gao" --data-binary @"$T/flow.xml" "$base/api/flows" >"$T/inflight.code" &
inflight=$!
sleep 1
kill -TERM "$serve_pid"
wait $inflight
[ "$(cat "$T/inflight.code")" = 201 ] && ok "the request in flight at SIGTERM is answered" ||
	not_ok "in-flight request got $(cat "$T/inflight.code")"
wait "$serve_pid"
serve_rc=$?
serve_pid=""
[ "$serve_rc" = 0 ] && ok "serve stops cleanly (status 0)" || not_ok "serve exited $serve_rc"
curl -s -m 2 "$base/healthz" >/dev/null 2>&1 && not_ok "nothing listens after the stop" || ok "nothing listens after the stop"

# ---- timers fire inside serve ----
# The timer thread sleeps until the next due timer (here a day away, so
# for its longest nap, a minute); the request that arms an earlier one
# wakes it: the ping fires after its second, not after the minute.
cat >"$T/slow.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="slow" version="1">
  <state id="a" initial="true" assign="$initiator">
    <deadline after="P1D"><fire transition="go"/></deadline>
    <transition id="go" to="b"/>
  </state>
  <state id="b" final="true"/>
</flow>
XML
dk deploy "$T/slow.xml"
serve_start --timeout 2
req POST /api/instances "$li" -d '{"flow":"slow"}'
expect_code 201 "start an instance whose deadline is a day away"
sleep 1
req POST /api/instances "$li" -d '{"flow":"ping"}'
expect_code 201 "start an instance whose deadline fires after 1 s"
pid_id=$(field .id)
i=0
while [ $i -lt 50 ]; do
	req GET "/api/instances/$pid_id" "$li"
	[ "$(field .state)" = b ] && break
	sleep 0.2
	i=$((i + 1))
done
[ "$(field .state)" = b ] && ok "serve fired the timer by itself" || not_ok "state: $(field .state)"
serve_stop
[ "$serve_rc" = 0 ] && ok "second stop is clean too" || not_ok "serve exited $serve_rc"
grep -q "timer fired" "$T/serve.log" && ok "the log says a timer fired" || not_ok "no timer line"
done_testing
