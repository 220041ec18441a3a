#!/bin/sh
# serve_acts.sh DOCKET SERVE_ACTS WORK CONNS ACTS [SERVE OPTION...] - durable
# acts per second through `docket serve` with CONNS connections.
#
# Sets up a fresh home in WORK (the org of examples/, bench/monthly-plan.xml
# without its <requires>, a token for li and one for wei, CONNS instances in
# draft), starts the server on a free loopback port, then times ACTS acts
# with bench/serve_acts.c: each connection cycles its own instance through
# submit (li) and return (wei, with the comment the flow requires), so every
# act is a real transition with its audit event, tasks, timers and outbox
# rows (its archive note is written by serve's note thread after the
# commit, off the act's path). Prints one number: acts answered 2xx per
# second.
set -eu
DOCKET=$1 TOOL=$2 WORK=$3 CONNS=$4 ACTS=$5
shift 5
SRC=$(cd "$(dirname "$0")/.." && pwd)
H=$WORK/serve-home
rm -rf "$H"
mkdir -p "$H"
pid=""
trap 'if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi' EXIT

d() { "$DOCKET" --home "$H" "$@"; }
sed 's#<requires evidence="[^"]*"/>##g' "$SRC/bench/monthly-plan.xml" >"$WORK/serve-plan.xml"
d org load "$SRC/examples/org.xml" >/dev/null
d deploy "$WORK/serve-plan.xml" >/dev/null 2>&1
LI=$(d token create --user li 2>/dev/null)
WEI=$(d token create --user wei 2>/dev/null)
: >"$WORK/serve-ids"
i=0
while [ $i -lt "$CONNS" ]; do
	d --as li start bench-plan --var month=2026-11 >>"$WORK/serve-ids"
	i=$((i + 1))
done

rm -f "$WORK/serve-addr"
"$DOCKET" --home "$H" serve --listen 127.0.0.1:0 --address-file "$WORK/serve-addr" \
	--no-timers --no-hooks "$@" 2>"$WORK/serve.log" &
pid=$!
i=0
while [ ! -s "$WORK/serve-addr" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -s "$WORK/serve-addr" ] || { echo "serve_acts.sh: the server did not start" >&2; exit 1; }
"$TOOL" "$(cat "$WORK/serve-addr")" "$CONNS" "$ACTS" "$WORK/serve-ids" \
	"submit:$LI:{}" "return:$WEI:{\"comment\":\"the numbers for week 2 are missing\"}"
kill -TERM "$pid"
wait "$pid"
pid=""
