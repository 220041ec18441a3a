# hooks_rotate.sh - secret rotation: during the overlap every delivery is
# signed with both secrets, so a receiver still holding the old one and a
# receiver already holding the new one both accept it; after the overlap
# only the new secret signs.
. "$DOCKET_SRC/tests/lib.sh"
RECEIVER="$DOCKET_BUILD/tests/receiver"
ENQUEUE="$DOCKET_BUILD/tests/outbox_enqueue"
OLD="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

start_receiver() { # SECRET
	rm -f "$T/port"
	: >"$T/log"
	"$RECEIVER" --secret "$1" --port-file "$T/port" --log "$T/log" --now-file "$T/now" &
	rpid=$!
	i=0
	while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	url="http://127.0.0.1:$(cat "$T/port")/hook"
}
stop_receiver() { kill "$rpid" && wait "$rpid"; }
at() {
	DOCKET_NOW=$1
	export DOCKET_NOW
	echo "$1" >"$T/now"
}
check() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }

at 2026-11-28T10:00:00Z
start_receiver "$OLD"
dk hooks add "$url" --secret "$OLD"
dk --json hooks rotate 1 --overlap PT1H
expect_rc 0 "rotate with a one-hour overlap"
NEW=$(printf '%s' "$out" | jq -r .secret)
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance a
dk dispatch
expect_out "1 delivered" "a receiver holding the old secret accepts"
jq -s -e '.[0].verified and (.[0].signature | split(" ") | length == 2)' "$T/log" >/dev/null
check $? "two signatures, space-separated"
stop_receiver

# each receiver listens on a new port: subscribe it, then rotate the same way
start_receiver "$NEW"
dk hooks remove 1
dk hooks add "$url" --secret "$OLD"
dk hooks rotate 2 --secret "$NEW" --overlap PT1H
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance b
dk dispatch
expect_out "1 delivered" "a receiver holding the new secret accepts"
jq -s -e '.[0].verified' "$T/log" >/dev/null
check $? "verified with the new secret"

at 2026-11-28T11:30:00Z
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance c
dk dispatch
expect_out "1 delivered" "after the overlap the new secret still works"
jq -s -e '.[1].signature | split(" ") | length == 1' "$T/log" >/dev/null
check $? "after the overlap only one signature is sent"
stop_receiver

start_receiver "$OLD"
dk hooks remove 2
dk hooks add "$url" --secret "$OLD"
dk hooks rotate 3 --secret "$NEW" --overlap PT1H
at 2026-11-28T13:00:00Z
"$ENQUEUE" --home "$DOCKET_HOME" --type task.assigned --flow plan --instance d
dk dispatch
expect_out "1 to retry" "after the overlap the old secret no longer verifies"
jq -s -e '(.[0].verified | not) and .[0].status == 401' "$T/log" >/dev/null
check $? "the old-secret receiver refused it"
stop_receiver
done_testing
