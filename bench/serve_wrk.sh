#!/bin/sh
# serve_wrk.sh DOCKET WORK MODE [SECONDS [SERVE OPTION...]] - `docket serve` under wrk.
#
# MODE setup: a fresh home in WORK with the org of examples/,
#   bench/monthly-plan.xml without its <requires>, tokens for li and wei in
#   WORK/wrk-li and WORK/wrk-wei, and 100,000 instances in draft: one
#   started through docket, the rest copies of its rows (instance, state,
#   start event, task) made by sqlite3 in one transaction, so seeding takes
#   seconds; every copy is a real instance the engine can act on. The
#   archive notes' mark moves past the copies, as in a home whose notes
#   have caught up: else serve's note thread wrote 100,000 start notes in
#   the background of the first measures.
# MODE get: GET /api/instances/{id} on random ids of the 100,000, 2 wrk
#   threads, 64 connections; prints requests/s answered 200, and writes
#   the p99 latency (ms) to WORK/wrk-get.p99.
# MODE acts: durable acts, 64 connections: bench/serve_wrk_acts.lua POSTs
#   submit (li) and return (wei, with the comment the flow requires) on
#   the next 4,096 instances still in draft (each run takes fresh ones),
#   each in turn; prints acts/s answered 2xx, p99 to
#   WORK/wrk-acts.p99.
# MODE health: the same wrk on GET /healthz (no store, no auth): what
#   this machine's HTTP path gives in the same minutes; prints requests/s.
# MODE rss: VmRSS and VmHWM (kB) of the serve process after a get run,
#   written to WORK/wrk-rss ("rss hwm"); prints VmHWM in MB.
# The server runs with --no-timers --no-hooks: wrk measures the API.
set -eu
DOCKET=$1 WORK=$2 MODE=$3 SECS=${4:-5}
shift 3
[ $# -gt 0 ] && shift
SRC=$(cd "$(dirname "$0")/.." && pwd)
H=$WORK/wrk-home
N=${WRK_INSTANCES:-100000}
pid=""
trap 'if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi' EXIT
d() { "$DOCKET" --home "$H" "$@"; }

if [ "$MODE" = setup ]; then
	rm -rf "$H"
	mkdir -p "$H"
	sed 's#<requires evidence="[^"]*"/>##g' "$SRC/bench/monthly-plan.xml" >"$WORK/wrk-plan.xml"
	d org load "$SRC/examples/org.xml" >/dev/null
	d deploy "$WORK/wrk-plan.xml" >/dev/null 2>&1
	d token create --user li >"$WORK/wrk-li" 2>/dev/null
	d token create --user wei >"$WORK/wrk-wei" 2>/dev/null
	first=$(d --as li start bench-plan --var month=2026-11)
	d archive sync >/dev/null
	db=$H/docket.db
	[ -f "$db" ] || { echo "serve_wrk.sh: no $db" >&2; exit 1; }
	sqlite3 "$db" <<SQL
BEGIN;
CREATE TEMP TABLE n (i INTEGER PRIMARY KEY);
WITH RECURSIVE c(i) AS (SELECT $first + 1 UNION ALL SELECT i + 1 FROM c WHERE i < $first + $N - 1)
INSERT INTO n SELECT i FROM c;
INSERT INTO instances (id, flow_id, flow_version, state, snapshot, version, initiator, title,
  created_at, updated_at, final, status)
  SELECT n.i, flow_id, flow_version, state, snapshot, version, initiator, title, created_at,
    updated_at, final, status FROM instances, n WHERE instances.id = $first;
INSERT INTO instance_states (state, instance_id)
  SELECT state, n.i FROM instance_states, n WHERE instance_id = $first;
INSERT INTO events (instance_id, seq, type, actor, on_behalf_of, at, from_state, to_state,
  transition, comment, data)
  SELECT n.i, seq, type, actor, on_behalf_of, at, from_state, to_state, transition, comment, data
  FROM events, n WHERE instance_id = $first;
INSERT INTO tasks (id, instance_id, state_id, user_id, role, due_at, created_at)
  SELECT (n.i << 32) + (id & 4294967295), n.i, state_id, user_id, role, due_at, created_at
  FROM tasks, n WHERE instance_id = $first;
UPDATE archive_noted SET last_event = (SELECT MAX(rowid) FROM events) WHERE one = 1;
COMMIT;
SQL
	echo "$first" >"$WORK/wrk-first"
	rm -f "$WORK/wrk-acts-next"
	exit 0
fi

first=$(cat "$WORK/wrk-first")
rm -f "$WORK/wrk-addr"
"$DOCKET" --home "$H" serve --listen 127.0.0.1:0 --address-file "$WORK/wrk-addr" \
	--no-timers --no-hooks "$@" 2>"$WORK/wrk-serve.log" &
pid=$!
i=0
while [ ! -s "$WORK/wrk-addr" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -s "$WORK/wrk-addr" ] || { echo "serve_wrk.sh: the server did not start" >&2; exit 1; }
base="http://$(cat "$WORK/wrk-addr")"

case $MODE in
get | rss | health)
	[ "$MODE" = health ] && export WRK_PATH=/healthz
	WRK_FIRST=$first WRK_COUNT=$N WRK_LI=$(cat "$WORK/wrk-li") \
		wrk -t2 -c64 --timeout 10s -d"${SECS}s" -s "$SRC/bench/serve_wrk_get.lua" "$base" >"$WORK/wrk-get.out"
	if [ "$MODE" = health ]; then
		awk '/^ok/ { print $2 }' "$WORK/wrk-get.out"
	elif [ "$MODE" = rss ]; then
		rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
		hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
		echo "$rss $hwm" >"$WORK/wrk-rss"
		awk -v k="$hwm" 'BEGIN { printf "%.1f\n", k / 1024 }'
	else
		awk '/^ok/ { print $2 }' "$WORK/wrk-get.out"
		awk '/^ok/ { print $3 }' "$WORK/wrk-get.out" >"$WORK/wrk-get.p99"
	fi
	out=$WORK/wrk-get.out
	;;
acts)
	# each run takes the next block of instances still in draft: 4,096
	# (N/25 when fewer are seeded, so QUICK=1 has enough for its runs)
	blk=$((N / 25))
	[ "$blk" -le 4096 ] || blk=4096
	next=$(cat "$WORK/wrk-acts-next" 2>/dev/null || echo $((first + 1)))
	[ $((next + blk)) -le $((first + N)) ] || { echo "serve_wrk.sh: no drafts left for acts" >&2; exit 1; }
	echo $((next + blk)) >"$WORK/wrk-acts-next"
	WRK_FIRST=$next WRK_COUNT=$blk WRK_LI=$(cat "$WORK/wrk-li") WRK_WEI=$(cat "$WORK/wrk-wei") \
		wrk -t2 -c64 --timeout 10s -d"${SECS}s" -s "$SRC/bench/serve_wrk_acts.lua" "$base" >"$WORK/wrk-acts.out"
	awk '/^ok/ { print $2 }' "$WORK/wrk-acts.out"
	awk '/^ok/ { print $3 }' "$WORK/wrk-acts.out" >"$WORK/wrk-acts.p99"
	out=$WORK/wrk-acts.out
	;;
*)
	echo "serve_wrk.sh: MODE is setup, get, acts or rss" >&2
	exit 2
	;;
esac
kill -TERM "$pid"
wait "$pid"
pid=""
# a run where most answers failed measures errors, not docket
grep -q '^ok' "$out" || { cat "$out" >&2; exit 1; }
