#!/bin/sh
# report.sh OUT SCALE REPS - writes bench/results.md (to stdout) from the
# figures bench/run.sh left in OUT: one file per measure holding
# "median min max", or KEY.why saying why it has no figure.
#
# Every ratio is docket's median over the peer's median; the target says
# which way is better (>= for rates, <= for times). A row whose docket side
# has no figure says why and claims nothing.
set -eu
OUT=$1
SCALE=$2
REPS=$3

# fmt VALUE: 1234567 -> 1,234,567; 12.345 -> 12.3; 0.5 -> 0.500
fmt() {
	awk -v v="$1" 'BEGIN {
		if (v >= 1000) {
			s = sprintf("%.0f", v); o = ""
			while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
			print s o
		} else if (v >= 100) printf "%.0f\n", v
		else printf "%.3g\n", v
	}'
}

# cell KEY UNIT: "median unit (min-max)" or empty when there is no figure
cell() {
	[ -f "$OUT/$1" ] || return 0
	set -- $(cat "$OUT/$1") "$2"
	echo "$(fmt "$1") $4 ($(fmt "$2")–$(fmt "$3"))"
}

median() { cut -d' ' -f1 "$OUT/$1"; }

why() {
	if [ -f "$OUT/$1.why" ]; then
		cat "$OUT/$1.why"
	else
		echo "no figure"
	fi
}

peer_cell() {
	if [ "$pkey" = - ]; then echo "—"; else echo "$peer: $pcell"; fi
}

# row MEASURE DKEY DUNIT PEER PKEY PUNIT OP TARGET
#   OP is ">=" or "<=" (or "-" for no target); TARGET a factor like 10.
#   OP "min" makes TARGET a floor for docket's own median, in DUNIT (the
#   ratio to the peer is still shown); "max" a ceiling it must stay under
row() {
	measure=$1 dkey=$2 dunit=$3 peer=$4 pkey=$5 punit=$6 op=$7 target=$8
	if [ "$pkey" = - ]; then
		pcell="—"
	else
		pcell=$(cell "$pkey" "$punit")
		[ -n "$pcell" ] || pcell="not measured: $(why "$pkey")"
	fi
	case $op in
	">=") tcell="≥ ${target}×" ;;
	"<=") tcell="≤ ${target}×" ;;
	min) tcell="≥ $(fmt "$target") $dunit" ;;
	max) tcell="< $(fmt "$target") $dunit" ;;
	*) tcell="—" ;;
	esac
	dcell=$(cell "$dkey" "$dunit")
	if [ -z "$dcell" ]; then
		echo "| $measure | not yet measured: $(why "$dkey") | $(peer_cell) | — | $tcell | — |"
		return
	fi
	if [ "$pkey" = - ] || [ ! -f "$OUT/$pkey" ]; then
		echo "| $measure | $dcell | $(peer_cell) | — | $tcell | — |"
		return
	fi
	ratio=$(awk -v d="$(median "$dkey")" -v p="$(median "$pkey")" 'BEGIN { printf "%.3g", d / p }')
	case $op in
	">=") met=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t) ? "yes" : "**no**" }') ;;
	"<=") met=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r <= t) ? "yes" : "**no**" }') ;;
	min) met=$(awk -v d="$(median "$dkey")" -v t="$target" 'BEGIN { print (d >= t) ? "yes" : "**no**" }') ;;
	max) met=$(awk -v d="$(median "$dkey")" -v t="$target" 'BEGIN { print (d < t) ? "yes" : "**no**" }') ;;
	*) met="—" ;;
	esac
	echo "| $measure | $dcell | $(peer_cell) | ${ratio}× | $tcell | $met |"
}

header() {
	echo
	echo "## $1"
	echo
	echo "| measure | docket | peer | ratio | target | met |"
	echo "| --- | --- | --- | --- | --- | --- |"
}

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
size_note="full size"
[ "$SCALE" -eq 1 ] || size_note="QUICK=1: a tenth of the full size, but for the durable steps and the timers"

cat <<EOF
# docket benchmarks

Written by \`make bench\` ($size_note) on $(date -u '+%Y-%m-%d %H:%M UTC'). Each
figure is the median of $REPS runs with the spread (min–max) in brackets;
each ratio is docket's median over the peer's, measured in the same run on
the same machine. Reproduce with \`make bench\` (or \`make bench QUICK=1\`).

| machine | |
| --- | --- |
| CPU | ${cpu:-unknown} |
| cores | $(nproc) |
| memory | $mem |
| kernel | $(uname -sr) |
| node | $(node --version 2>/dev/null || echo none) |
| xstate / bpmn-engine | $(node -p "require('./bench/node_modules/xstate/package.json').version" 2>/dev/null || echo ?) / $(node -p "require('./bench/node_modules/bpmn-engine/package.json').version" 2>/dev/null || echo ?) |
| sqlite3 CLI | $(sqlite3 --version | cut -d' ' -f1) |
| git / curl | $(git --version | cut -d' ' -f3) / $(curl --version | awk 'NR == 1 { print $2 }') |
EOF

header "Engine core, in memory (monthly-plan)"
row "transitions/s, each instance: submit, return, submit, approve, 3× phase-done, finish (and 5 uploads)" \
	core "/s" "xstate doing the same work" xstate "/s" ">=" 10
row "the same, against xstate's bare machine (no uploads, assignees, timers or audit events)" \
	core "/s" "xstate, bare machine" xstate_bare "/s" "-" ""

header "Durable steps (WAL, synchronous=FULL, one command per transaction)"
row "durable transitions/s through the runner (monthly-plan path, uploads left out)" durable "/s" \
	"bare SQLite insert+commit" floor "commits/s" ">=" 0.8
row "archive notes/s written by the catch-up (\`docket archive sync\` over the notes the durable transitions left)" \
	notes_sync "/s" "durable transitions/s through the runner, same run" durable "/s" min 5000
row "bare SQLite insert+commit against the disk's fsync rate" floor "commits/s" \
	"write+fsync 4 KiB" fsync "fsyncs/s" "-" ""
row "durable acts/s through \`docket serve\`, 64 connections (group commit)" serve_acts "/s" \
	"bare SQLite insert+commit, same run" serve_floor "commits/s" "-" ""
row "whole instances/s (start, submit with evidence, approve, finish), every step durable, through the library" \
	whole "/s" "bpmn-engine in memory" bpmn "/s" "-" ""

header "\`docket serve\` under wrk (2 threads, 64 connections, 100,000 stored instances)"
row "GET /api/instances/{id} requests/s (target ≥ 10,000/s)" wrk_get "/s" \
	"GET /healthz, same server and run" wrk_health "/s" "-" ""
row "p99 latency of those GETs (target < 50 ms)" wrk_get_p99 "ms" "-" - "" "-" ""
row "durable acts/s (submit/return, wrk Lua; target ≥ 3,000/s)" wrk_acts "/s" \
	"bare SQLite insert+commit, same run" wrk_floor "commits/s" "-" ""
row "p99 latency of those acts (target < 50 ms)" wrk_acts_p99 "ms" "-" - "" "-" ""
row "serve's peak resident memory (VmHWM) after a GET run (target < 64 MB)" wrk_rss "MB" "-" - "" "-" ""

header "Command line, one process per step"
row "milliseconds per \`docket act\` process against one \`sqlite3 DB 'insert…'\`" \
	docket_act "ms" "sqlite3 CLI" sqlite3_cli "ms" "<=" 2

header "Evidence archive"
row "uploads/s (blob, tree, commit, ref) of 4 KiB files" archive "/s" \
	"git CLI plumbing, default settings (no fsync)" git_uploads "/s" ">=" 20
row "the same, against git with every write fsynced" archive "/s" \
	"git CLI plumbing, core.fsync=all" git_uploads_fsync "/s" "-" ""
row "uploads/s of 4 KiB files by 16 uploaders at once (docket: threads of one process, a handle and an instance each, sharing packs and flushes)" \
	archive_at_once "/s" "git CLI plumbing, 16 shells at once, a ref each, default settings (no fsync)" \
	git_uploads_at_once "/s" "-" ""
row "storing one big file (50 MB at full size)" archive_big "MB/s" \
	"git hash-object -w" git_big "MB/s" ">=" 1
# the archive's growth: one run (archive_uploads growth), the mean cost of
# the last 1,000 uploads over that of the first 1,000
n_arch=$((100000 / SCALE))
if [ -f "$OUT/archive_growth" ]; then
	g=$(cat "$OUT/archive_growth")
	first=$(sed -n 's/.*first 1,000: \([0-9.]*\) ms each.*/\1/p' "$OUT/archive_growth.err")
	last=$(sed -n 's/.*last 1,000 ([^)]*): \([0-9.]*\) ms each.*/\1/p' "$OUT/archive_growth.err")
	met=$(awk -v r="$g" 'BEGIN { print (r <= 1.25) ? "yes" : "**no**" }')
	echo "| ms per upload at $(fmt "$n_arch") archived files (10 per instance; one run, mean of 1,000 uploads) | $(fmt "$last") ms | the first 1,000: $(fmt "$first") ms | $(awk -v r="$g" 'BEGIN { printf "%.3g", r }')× | ≤ 1.25× | $met |"
else
	echo "| ms per upload at $(fmt "$n_arch") archived files | not yet measured: $(why archive_growth) | — | — | ≤ 1.25× | — |"
fi

header "Webhooks"
N_HOOKS=$((20000 / SCALE)) N_PROC=$((200 / SCALE)) # as in run.sh
row "deliveries/s to a loopback receiver that verifies every signature, 64 in flight, keep-alive ($(fmt "$N_HOOKS") per run; curl: $(fmt "$N_PROC"))" \
	hooks_dispatch "/s" "curl CLI, one process per request" curl "/s" min 5000
row "event-to-delivery latency p50 inside \`docket serve\`, from the act's return (target p99 < 50 ms)" \
	hooks_p50 "ms" "none" - "" "-" ""
row "event-to-delivery latency p99, from the act's return" hooks_p99 "ms" "none" - "" "-" ""
row "the same p99 from the act's send (its own durable commit included)" hooks_p99_send "ms" \
	"none" - "" "-" ""

armed=$(cat "$OUT/tick_armed" 2>/dev/null || echo "none armed")
header "Timers (100,000 armed; this run: $armed)"
row "\`docket tick\` process, nothing due" tick_idle "ms" \
	"\`docket help\` process (loading the binary only)" docket_help "ms" max 5
row "\`docket tick\` process, nothing due, against exec's floor" tick_idle "ms" \
	"a C program that does nothing (bench/floor/exec_floor.c)" exec_floor "ms" "-" ""
row "\`docket help\` process against exec's floor" docket_help "ms" \
	"a C program that does nothing" exec_floor "ms" "-" ""
row "tick firing the tenth that is due" tick_fire "timers/s" "none" - "" "-" ""

# growth: one row per step, one column per size, from growth.dat
echo
echo "## Growth: one step against the number of stored instances"
echo
if [ -s "$OUT/growth.dat" ]; then
	sizes=$(cut -d' ' -f1 "$OUT/growth.dat")
	hdr="| step (ms, median of 21) |"
	sep="| --- |"
	for z in $sizes; do
		hdr="$hdr $(fmt "$z") |"
		sep="$sep --- |"
	done
	echo "$hdr largest over 1,000 | target | met |"
	echo "$sep --- | --- | --- |"
	col=2
	for step in "start" "upload (git + SQLite, flushed)" "act (submit)" "tick, nothing due" \
		"inbox, first page of 100" "\`list --overdue\`, first page of 100"; do
		awk -v c=$col -v step="$step" '{ v[NR] = $c } END {
			line = "| " step " |"
			for (i = 1; i <= NR; i++) line = line sprintf(" %.3g |", v[i])
			r = 0
			for (i = 2; i <= NR; i++) if (v[i] / v[1] > r) r = v[i] / v[1]
			printf "%s %.3g× | ≤ 1.25× | %s |\n", line, r, r <= 1.25 ? "yes" : "**no**" }' \
			"$OUT/growth.dat"
		col=$((col + 1))
	done
	echo
	echo "![milliseconds per step against stored instances](growth.png)"
else
	echo "not yet measured: $(why growth)"
fi

cat <<EOF

## What each row runs

- **Engine core**: bench/engine_core.c drives engine/engine.h in memory over
  bench/monthly-plan.xml and examples/org.xml; xstate runs the same machine
  (bench/peers/xstate-plan.mjs). Both create each instance inside the timed
  loop and count only its 8 transitions. Both do the same work on each
  command: the 5 uploads the flow requires are commands (kind, file type
  and size, the plan's freeze and the uploader checked; recorded against
  the state visit), each transition checks that the actor is the state's
  assignee, entering a state counts its visit and assigns it (the
  initiator, or the head of the initiator's department from the org),
  review arms its escalation and reminder timers (xstate: delayed
  transitions on a simulated clock) and every step leaves its audit events
  (23 per instance on both sides, each side checks the count). docket also
  writes each event's data and each timer's payload as JSON text, which
  the store keeps; xstate's events stay objects. The second row is
  xstate's bare machine of the earlier runs (guards over evidence counts
  preset in its context, none of the rest), for comparison with them.
- **Durable transitions**: bench/runner_steps.c through engine/runner.h, one
  transaction per act, on the bench flow with its \`<requires>\` removed (uploads
  are the archive rows). A step commits to SQLite only: the archive notes
  of its state changes are written later by a catch-up, whose rate is the
  next row (\`docket archive sync\` over a copy of the home the durable run
  left, every note waiting; one batch of the archive, two syncfs, per
  1,000 notes). The floor (bench/floor/sqlite_floor.c) commits one
  row per transaction with the same WAL and synchronous=FULL;
  bench/floor/fsync_rate.c is the disk under both.
- **Acts through serve**: bench/serve_acts.sh starts \`docket serve --threads
  64\` on a fresh home and bench/serve_acts.c drives 64 keep-alive
  connections, each cycling its own instance through submit (li) and return
  (wei): every act is a durable transition, answered only once committed;
  its archive note is written by serve's note thread after the commit, not
  on the act's path. The floor is run in turns with it.
- **serve under wrk**: bench/serve_wrk.sh seeds 100,000 instances (one
  started by docket, the rest copies of its rows in one sqlite3
  transaction) and starts \`docket serve --no-timers --no-hooks\` per run;
  wrk -t2 -c64 GETs random instances as their initiator
  (bench/serve_wrk_get.lua) or POSTs submit/return on 4,096 of them
  (bench/serve_wrk_acts.lua). Rates count 2xx answers only; a run with
  more than 1% errors fails. Memory is VmHWM of the serve process after a
  GET run.
- **Whole instances**: docket starts, uploads the plan (git archive and
  SQLite, both fsynced), submits, approves and finishes, each step durable;
  bpmn-engine runs bench/peers/plan.bpmn in memory with the XML parsed once.
- **Command line**: one \`docket act ID approve\` process per step against one
  \`sqlite3 DB 'PRAGMA synchronous=FULL; INSERT …'\` process, both from a shell
  loop.
- **Evidence**: bench/archive_uploads.c through store/archive.h (a nested
  STATE/KIND/NAME tree; each upload on disk before it returns, see the
  Durability paragraph of store/archive.h), 200 uploads to one instance,
  against git hash-object, mktree (one flat tree), commit-tree and
  update-ref per upload from a shell loop. Automatic packing runs beside
  the uploads on a thread of its own, as serve runs it (its request threads
  leave it to the writer, api/writer.c), and the clock stops only when it
  has finished. git's default settings do not fsync, hence the second row;
  200 uploads stay under git's automatic gc (6,700 loose objects).
- **Webhooks**: one \`docket dispatch\` process (libcurl multi, 64 in
  flight, connections kept alive) delivering $(fmt $((20000 / SCALE))) events queued by
  tests/tools/outbox_enqueue, timed from its start to its exit, against
  one curl process per request ($(fmt $((200 / SCALE))) of them, signed beforehand),
  compared per delivery; both post to the webhooks' test receiver
  (tests/tools/receiver.c, two epoll threads) on 127.0.0.1, which checks
  every signature and timestamp and deduplicates by webhook-id.
- **Archive growth**: bench/archive_uploads.c \`growth\`: 1,000 uploads timed
  (flushed to disk), the archive filled to $(fmt "$n_arch") files unflushed
  (automatic packing on, as in use), then 1,000 more timed, flushed.
- **Growth**: bench/growth.c makes 100 real instances through the runner
  (60 completed, 10 drafts, 10 in progress, 10 in review, 10 in review
  past their deadline and escalated; initiators from five departments),
  then copies their rows (instances, states, events, tasks, timers) under
  new ids, in a home of its own for each size. At the same clock, each
  size gets 21 starts, an upload to each, a submit of each, 21 idle ticks,
  21 first pages of the sales head's inbox (store.h, as the inbox page)
  and of \`list --overdue\` (runner, as the CLI), interleaved: the i-th
  round of a step runs at every size before the next round, so a noisy
  moment of the machine falls on all sizes alike. Open work grows with the
  store (a fifth of it waits in review), so both pages have work to do.
- **Webhook latency**: bench/hooks_latency.sh brings instances to review,
  starts \`docket serve\` with a subscription to transition.fired at the test
  receiver, approves each through the API (one curl process each, one after
  the other) and takes the receiver's arrival time of each webhook against
  the approval's return (a webhook that beat the response counts as 0) and
  against its send.
- **Timers**: instances waiting in review, each with its deadline and its
  reminder armed, a tenth of them four days before the rest. The idle row
  is one whole \`docket tick\` process (spawn included) at the arming clock,
  from a shell loop, beside \`docket help\` from the same loop (what starting
  the binary costs before any work) and a C program that does nothing (what
  any process costs: fork, exec, libc); the firing row is one tick through
  engine/runner.h four days later, when that tenth is due (targets: < 5 ms,
  >= 5,000/s).

docket and its peer take turns run by run, so both see the same share of
this machine (shared with other work); the spread shows how much that
share moved.
EOF
