# run_hooks.sh - what the runner does reaches subscribers: starting and
# acting on an instance queue signed deliveries in the same transaction as
# the events, and `docket dispatch` sends them, in order, to a receiver.
. "$DOCKET_SRC/tests/lib.sh"
RECEIVER="$DOCKET_BUILD/tests/receiver"
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
export DOCKET_NOW=2026-11-02T09:00:00+08:00
date -u -d 2026-11-02T01:00:00Z +%Y-%m-%dT%H:%M:%SZ >"$T/now"

"$RECEIVER" --secret "$SECRET" --port-file "$T/port" --log "$T/log" --now-file "$T/now" &
rpid=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
url="http://127.0.0.1:$(cat "$T/port")/hook"

dk org load "$DOCKET_SRC/examples/org.xml"
dk deploy "$DOCKET_SRC/examples/monthly-plan.xml"
dk hooks add "$url" --secret "$SECRET" --events instance.started,task.assigned,transition.fired
expect_rc 0 "subscribe to three event types"
dk hooks add "$url" --secret "$SECRET" --flow appraisal
expect_rc 0 "a second subscription for another flow only"
dk start monthly-plan --as li --var month=2026-11 --var "work=渠道拓展" --var end_date=2026-11-30
id=$out
dk deliveries --json
[ "$(printf '%s' "$out" | jq length)" = 2 ] && ok "start queued instance.started and task.assigned" || { not_ok "deliveries after start"; show_last; }
dk act "$id" submit --as li
expect_rc 6 "a refused act queues nothing"
dk deliveries --json
[ "$(printf '%s' "$out" | jq length)" = 2 ] && ok "still two deliveries" || { not_ok "refusal queued something"; show_last; }
dk dispatch
expect_rc 0 "dispatch"
kill "$rpid" && wait "$rpid"
[ "$(wc -l <"$T/log")" = 2 ] && ok "the receiver got two requests" || not_ok "receiver got $(wc -l <"$T/log")"
jq -s -e 'all(.[]; .verified == true)' "$T/log" >/dev/null && ok "every signature verified" || not_ok "signatures"
types=$(jq -r -s '[.[] | .body | fromjson | .type] | join(",")' "$T/log")
[ "$types" = "instance.started,task.assigned" ] && ok "events in order: $types" || not_ok "events: $types"
jq -s -e --arg id "$id" '.[1].body | fromjson | .data.instance.id == $id and .data.assignees[0].id == "li" and .data.assignees[0].name == "李明"' "$T/log" >/dev/null &&
	ok "the payload names the instance and the assignee from the org" || { not_ok "payload"; head -c 600 "$T/log"; }
done_testing
