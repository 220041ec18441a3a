# hooks_dead.sh - the failure paths: the default schedule ending in a dead
# delivery and a hook.failing line, redelivery with the same id and body,
# 410 Gone disabling the subscription, a redirect counted as a failure, and
# a receiver that hangs past the timeout.
. "$DOCKET_SRC/tests/lib.sh"
RECEIVER="$DOCKET_BUILD/tests/receiver"
ENQUEUE="$DOCKET_BUILD/tests/outbox_enqueue"
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

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
at() {
	now=$1
	DOCKET_NOW=$(date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ)
	export DOCKET_NOW
	echo "$DOCKET_NOW" >"$T/now"
}
check() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }
requests() { wc -l <"$T/log" | tr -d ' '; }
delivery() { # ID FIELD
	"$DOCKET" deliveries --json | jq -r --argjson id "$1" ".[] | select(.id == \$id) | .$2"
}

# --- the default schedule, to the end -------------------------------------
t=$(date -u -d 2026-11-28T10:00:00Z +%s)
at "$t"
start_receiver --fail 8 --status 500
dk hooks add "$url" --secret "$SECRET"
"$ENQUEUE" --home "$DOCKET_HOME" --type deadline.missed --flow plan --instance d1
sent=0
for delay in 0 5 300 1800 7200 18000 36000 36000; do
	t=$((t + delay))
	at "$t"
	dk dispatch
	[ "$rc" -eq 0 ] && case "$out" in "1 attempts"*) sent=$((sent + 1)) ;; esac
done
[ "$sent" -eq 8 ] && ok "eight attempts, each when the default schedule says" ||
	not_ok "attempts made on schedule: $sent of 8"
[ "$(delivery 1 status)" = dead ] && ok "after the eighth failure the delivery is dead" ||
	not_ok "status $(delivery 1 status)"
expect_err "hook.failing" "the last failure logs hook.failing"
expect_err "delivery=1" "naming the delivery"
[ "$(delivery 1 attempts)" = 8 ] && ok "eight attempts recorded" || not_ok "attempts"
at $((t + 86400))
dk dispatch
expect_out "0 attempts" "a dead delivery is not retried"
dk deliveries --failed
expect_out "dead" "deliveries --failed lists it"

# --- redeliver: same id, same body -----------------------------------------
dk redeliver 1
expect_rc 0 "redeliver a dead delivery"
dk redeliver 1
expect_rc 5 "redelivering a pending one is a conflict"
dk dispatch
expect_out "1 delivered" "the receiver takes it now"
[ "$(requests)" = 9 ] && ok "nine requests in all" || not_ok "requests: $(requests)"
jq -s -e '(map(.id) | unique == ["1"]) and (map(.body) | unique | length == 1) and
	(.[8].status == 200)' "$T/log" >/dev/null
check $? "redelivered with the same webhook-id and body"
[ "$(delivery 1 status)" = delivered ] && ok "recorded delivered" || not_ok "not delivered"
stop_receiver
dk hooks remove 1

# --- 410 Gone disables the subscription ------------------------------------
start_receiver --fail 1 --status 410
dk hooks add "$url" --secret "$SECRET"
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance g --count 2
dk dispatch
expect_out "0 delivered, 0 to retry, 1 dead" "410 kills the delivery at once"
expect_err "hook.disabled" "and logs that the subscription is disabled"
dk hooks list --json
[ "$(printf '%s' "$out" | jq -r '.[0].enabled')" = false ] && ok "the subscription is disabled" ||
	not_ok "still enabled: $out"
[ "$(requests)" = 1 ] && ok "the next event waits while disabled" || not_ok "sent $(requests)"
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance g2
dk deliveries --json
[ "$(printf '%s' "$out" | jq '[.[] | select(.instance == "g2")] | length')" = 0 ] &&
	ok "a disabled subscription gets no new events" || not_ok "deliveries: $out"
dk hooks enable 2
dk dispatch
expect_out "1 delivered" "enabled again, the waiting event goes"
stop_receiver
dk hooks remove 2

# --- a redirect is a failure, never followed -------------------------------
start_receiver --fail 1 --status 302
dk hooks add "$url" --secret "$SECRET"
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance r
dk dispatch
expect_out "1 to retry" "a 302 is retried"
dk deliveries --failed --json
[ "$(printf '%s' "$out" | jq -r '.[0].last_status_code')" = 302 ] && ok "status 302 recorded" ||
	not_ok "code: $out"
printf '%s' "$out" | jq -e '.[0].last_error | test("redirects are not followed")' >/dev/null
check $? "the error says redirects are not followed"
jq -s -e 'all(.[]; .path == "/hook")' "$T/log" >/dev/null
check $? "the Location was not followed"
stop_receiver
dk hooks remove 3

# --- a receiver that hangs past the timeout --------------------------------
start_receiver --slow 4000 --slow-count 1
dk hooks add "$url" --secret "$SECRET"
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance s
start=$(date +%s%N)
DOCKET_HOOK_TIMEOUT_MS=500 dk dispatch
ms=$((($(date +%s%N) - start) / 1000000))
expect_out "1 to retry" "a hung request fails"
[ "$ms" -lt 3500 ] && ok "dispatch gave up after the timeout (${ms} ms)" ||
	not_ok "dispatch took ${ms} ms"
dk deliveries --failed --json
printf '%s' "$out" | jq -e '.[0].last_error | test("[Tt]imeout|timed out")' >/dev/null
check $? "the error says it timed out"
at $((now + 6))
DOCKET_HOOK_TIMEOUT_MS=500 dk dispatch
expect_out "1 delivered" "the retry gets through"
stop_receiver
done_testing
