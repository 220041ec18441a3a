# hooks_retry.sh - a receiver that fails three times then recovers: every
# event arrives, per-instance order holds, each attempt carries the same id
# and bytes, signatures check out under the openssl command line, retries
# follow the schedule and Retry-After. The clock is DOCKET_NOW, shared with
# the receiver through its now file.
. "$DOCKET_SRC/tests/lib.sh"
RECEIVER="$DOCKET_BUILD/tests/receiver"
ENQUEUE="$DOCKET_BUILD/tests/outbox_enqueue"
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEYHEX=$(printf '%s' "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')

start_receiver() { # args...
	rm -f "$T/port"
	: >"$T/log"
	"$RECEIVER" --secret "$SECRET" --port-file "$T/port" --log "$T/log" \
		--now-file "$T/now" "$@" &
	rpid=$!
	i=0
	while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	url="http://127.0.0.1:$(cat "$T/port")/hook"
}
stop_receiver() { kill "$rpid" && wait "$rpid"; }
at() { # EPOCH: the clock of docket and of the receiver
	now=$1
	DOCKET_NOW=$(date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ)
	export DOCKET_NOW
	echo "$DOCKET_NOW" >"$T/now"
}
check() { # CONDITION-STATUS NAME
	if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi
}

t0=$(date -u -d 2026-11-28T10:00:00Z +%s)
at "$t0"
start_receiver --fail 3 --status 500
dk hooks add "$url" --secret "$SECRET"
expect_rc 0 "subscribe the receiver"
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance inst \
	--instances 3 --count 9 --assignee wei --title "Plan" --org "$DOCKET_SRC/examples/org.xml"
check $? "nine events for three instances queued"

dk dispatch
expect_rc 0 "first dispatch"
expect_out "3 attempts: 0 delivered, 3 to retry" "the three heads fail, nothing behind them goes"
dk deliveries --failed --json
printf '%s' "$out" >"$T/failed.json"
[ "$(jq length "$T/failed.json")" = 3 ] && ok "three deliveries failed" || not_ok "failed: $out"
[ "$(jq '[.[] | select(.last_status_code == 500 and .attempts == 1)] | length' "$T/failed.json")" = 3 ]
check $? "each shows one attempt and status 500"
# jitter only shortens: the 5 s retry is due within 4..5 s
lo=$(date -u -d "@$((t0 + 4))" +%Y-%m-%dT%H:%M:%SZ)
hi=$(date -u -d "@$((t0 + 5))" +%Y-%m-%dT%H:%M:%SZ)
jq -e --arg lo "$lo" --arg hi "$hi" \
	'all(.[]; .next_attempt_at >= $lo and .next_attempt_at <= $hi)' "$T/failed.json" >/dev/null
check $? "the next attempt is 5 s out, jittered down by at most a fifth"
jq -e 'all(.[]; .last_error | test("HTTP 500"))' "$T/failed.json" >/dev/null
check $? "the last error names the status"

at $((t0 + 3))
dk dispatch
expect_out "0 attempts" "nothing goes before the retry is due"

at $((t0 + 6))
dk dispatch
expect_rc 0 "second dispatch"
expect_out "9 attempts: 9 delivered" "the receiver recovered: all nine delivered"
dk deliveries --json
printf '%s' "$out" >"$T/all.json"
[ "$(jq '[.[] | select(.status == "delivered")] | length' "$T/all.json")" = 9 ]
check $? "the store records nine delivered"
dk dispatch
expect_out "0 attempts" "a delivered event is not sent again"
stop_receiver

# Every event arrived with a 2xx, exactly once acknowledged.
[ "$(jq -s '[.[] | select(.status == 200)] | length' "$T/log")" = 9 ]
check $? "the receiver acknowledged nine requests"
[ "$(jq -s '[.[] | select(.status == 200) | .id] | unique | length' "$T/log")" = 9 ]
check $? "nine distinct webhook-ids"
[ "$(jq -s 'length' "$T/log")" = 12 ] && ok "twelve requests in all (three failed)" ||
	not_ok "requests: $(jq -s length "$T/log")"
# the same id carries the same bytes on every attempt, the bytes stored
jq -s -e 'group_by(.id) | all(.[]; (map(.body) | unique | length) == 1)' "$T/log" >/dev/null
check $? "each id carried the same body on every attempt"
jq -s -e --slurpfile d "$T/all.json" \
	'all(.[]; . as $r | ($d[0][] | select((.id | tostring) == $r.id) | .body) == $r.body)' \
	"$T/log" >/dev/null
check $? "the bytes sent are the bytes stored at enqueue"
# per-instance order: within an instance, requests never go back in sequence,
# and a later event is only sent after the earlier one was acknowledged
jq -s -e '
  map(. + {inst: (.body | fromjson | .data.instance.id),
           seq: (.body | fromjson | .id | split(":")[1] | tonumber)})
  | group_by(.inst)
  | all(.[]; . as $g | [range(1; length)] | all(. as $i |
        ($g[$i].seq >= $g[$i - 1].seq) and
        ($g[$i].seq == $g[$i - 1].seq or $g[$i - 1].status == 200)))' "$T/log" >/dev/null
check $? "per-instance order kept"
# the nine requests of the second run went over at most three connections
# (one per instance in flight at a time): connections are kept alive
[ "$(jq -s '.[3:] | map(.client_port) | unique | length' "$T/log")" -le 3 ]
check $? "connections are reused ($(jq -s '.[3:] | map(.client_port) | unique | length' \
	"$T/log") for 9 requests)"
jq -s -e 'all(.[]; .verified)' "$T/log" >/dev/null
check $? "the receiver verified every signature"
jq -s -e 'all(.[]; .content_type == "application/json" and .user_agent == "docket/0.1")' \
	"$T/log" >/dev/null
check $? "Content-Type and User-Agent"
# webhook-timestamp is the instant of each attempt, not of the event
jq -s -e --arg t0 "$t0" --arg t1 "$((t0 + 6))" \
	'(.[0:3] | all(.[]; .timestamp == $t0)) and (.[3:] | all(.[]; .timestamp == $t1))' \
	"$T/log" >/dev/null
check $? "webhook-timestamp is the time of the attempt"
jq -s -e '.[0].body | fromjson | .data.assignees[0].id == "wei" and .data.instance.title == "Plan"' \
	"$T/log" >/dev/null
check $? "the payload carries the event's data"
jq -s -e '.[0].body | fromjson | .data.assignees[0] |
	.name == "魏国华" and .email == "wei@example.com"' "$T/log" >/dev/null
check $? "assignee names and e-mails come from the org directory"

# An independent check of every signature: the openssl command line.
bad=0
nl=$(wc -l <"$T/log")
i=1
while [ "$i" -le "$nl" ]; do
	sed -n "${i}p" "$T/log" >"$T/line"
	id=$(jq -r .id "$T/line")
	ts=$(jq -r .timestamp "$T/line")
	jq -j .body "$T/line" >"$T/body"
	want=$( (printf '%s.%s.' "$id" "$ts" && cat "$T/body") |
		openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEYHEX" -binary | base64)
	[ "$(jq -r .signature "$T/line")" = "v1,$want" ] || bad=$((bad + 1))
	i=$((i + 1))
done
[ "$bad" -eq 0 ] && ok "openssl agrees with all $nl signatures" || not_ok "$bad signatures differ"

# Retry-After: the receiver asks for two minutes; the retry waits for them.
dk hooks remove 1
at $((t0 + 1000))
start_receiver --fail 1 --status 503 --retry-after 120
dk hooks add "$url" --secret "$SECRET"
"$ENQUEUE" --home "$DOCKET_HOME" --type instance.started --flow plan --instance ra
dk dispatch
expect_out "1 to retry" "a 503 is retried"
expect_out "next retry due $(date -u -d "@$((t0 + 1120))" +%Y-%m-%dT%H:%M:%SZ)" \
	"Retry-After: 120 sets the next attempt"
at $((t0 + 1060))
dk dispatch
expect_out "0 attempts" "not before Retry-After"
at $((t0 + 1121))
dk dispatch
expect_out "1 delivered" "delivered once Retry-After passed"
stop_receiver
done_testing
