#!/bin/sh
# hooks_latency.sh DOCKET RECEIVER WORKDIR N - event-to-delivery latency of
# webhooks inside `docket serve`, when the receiver is healthy.
#
# N instances of the bench flow (uploads taken out) are brought to review
# beforehand; then `docket serve` runs with one subscription to
# transition.fired at the webhooks' test receiver (tests/tools/receiver.c,
# which checks every signature and logs when each request arrived), and N
# approvals go through the API one after the other, each by one curl
# process. The event is committed while its request is in flight, so its
# latency is taken from the moment the approval's response was back (a
# webhook that arrived before it counts as 0) to the moment the receiver had
# the whole webhook. Prints "P50 P99 P99SEND" in milliseconds, the last
# from just before the request was sent (the act's own durable commit and
# curl's start included: an upper bound). Fails when a delivery is missing,
# unverified, or late by more than 30 s.
set -eu
DOCKET=$1
RECEIVER=$2
W=$3
N=$4
TOP=$(cd "$(dirname "$0")/.." && pwd)

rm -rf "$W"
mkdir -p "$W"
H=$W/home
RPID=""
SPID=""
stop() {
	[ -z "$SPID" ] || kill "$SPID" 2>/dev/null || true
	[ -z "$RPID" ] || kill "$RPID" 2>/dev/null || true
	[ -z "$SPID" ] || wait "$SPID" 2>/dev/null || true
	[ -z "$RPID" ] || wait "$RPID" 2>/dev/null || true
}
trap stop EXIT

dk() { "$DOCKET" --home "$H" "$@"; }

sed 's#<requires evidence="[^"]*"/>##g' "$TOP/bench/monthly-plan.xml" >"$W/plan.xml"
dk org load "$TOP/examples/org.xml" >/dev/null
dk deploy "$W/plan.xml" >/dev/null 2>&1
: >"$W/ids"
i=0
while [ "$i" -lt "$N" ]; do
	id=$(dk --as li start bench-plan --var month=2026-11)
	dk --as li act "$id" submit >/dev/null
	echo "$id" >>"$W/ids"
	i=$((i + 1))
done
tok=$(dk --json token create --user wei | jq -r .token)

SECRET="whsec_$(head -c 32 /dev/urandom | base64)"
timeout 600 "$RECEIVER" --secret "$SECRET" --port 0 --port-file "$W/port" \
	--log "$W/recv.log" 2>"$W/recv.err" &
RPID=$!
i=0
while [ ! -s "$W/port" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
dk hooks add "http://127.0.0.1:$(cat "$W/port")/hook" --events transition.fired \
	--secret "$SECRET" >/dev/null
timeout 600 "$DOCKET" --home "$H" serve --listen 127.0.0.1:0 --address-file "$W/addr" \
	2>"$W/serve.log" &
SPID=$!
i=0
while [ ! -s "$W/addr" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
base="http://$(cat "$W/addr")"

: >"$W/sent"
while read -r id; do
	t0=$(date +%s%N)
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $tok" "$base/api/instances/$id/transitions/approve")
	t1=$(date +%s%N)
	[ "$code" = 200 ] || { echo "hooks_latency: approve $id: HTTP $code" >&2; exit 1; }
	echo "$id $((t0 / 1000)) $((t1 / 1000))" >>"$W/sent"
done <"$W/ids"

# every approval's webhook, verified, within 30 s
i=0
while [ "$(grep -c '"verified":true' "$W/recv.log" || true)" -lt "$N" ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
jq -r 'select(.verified and (.body | fromjson | .data.transition) == "approve")
	| "\(.body | fromjson | .data.instance.id) \(.received_us)"' "$W/recv.log" |
	sort -u -k1,1 >"$W/got"
got=$(wc -l <"$W/got")
[ "$got" -eq "$N" ] || { echo "hooks_latency: $got of $N webhooks arrived" >&2; exit 1; }
# columns: id, sent, returned, arrived (microseconds)
sort -k1,1 "$W/sent" | join - "$W/got" >"$W/joined"
pct() { sort -g | awk -v p="$1" '{ a[NR] = $1 } END { if (!NR) exit 1; printf "%.3f", a[int((NR - 1) * p) + 1] }'; }
# from the act's return; a webhook that arrived before the response did
# (the dispatcher is woken at the commit) counts as 0
awk '{ d = ($4 - $3) / 1000; print (d > 0 ? d : 0) }' "$W/joined" >"$W/lat"
# from the act's send: the act's own commit included
awk '{ print ($4 - $2) / 1000 }' "$W/joined" >"$W/lat_send"
echo "$(pct 0.50 <"$W/lat") $(pct 0.99 <"$W/lat") $(pct 0.99 <"$W/lat_send")"
