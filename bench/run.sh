#!/bin/sh
# run.sh - `make bench`: every benchmark beside its peer, in one run on this
# machine, written to bench/results.md as ratios.
#
# Installs what the peers need (Debian: wrk, hyperfine, sqlite3; npm:
# xstate and bpmn-engine pinned in bench/package-lock.json into
# bench/node_modules), builds the C benchmarks into build/bench with -O2,
# runs each measure REPS times (median and min-max), and writes the tables.
# QUICK=1 runs each at a tenth of the size. A benchmark whose docket side is
# not there yet (its command missing from `docket help`, its header missing)
# is reported as "not yet measured" with the reason; a benchmark that fails
# makes the run fail, and no number is ever made up.
#
# Raw figures of the last run stay in bench/results.tmp/ (git ignores it).
set -eu
cd "$(dirname "$0")/.."
TOP=$(pwd)
OUT=$TOP/bench/results.tmp
BIN=$TOP/build/bench
DOCKET=$TOP/docket
REPS=${BENCH_REPS:-3}
case "${QUICK:-}" in "" | 0) SCALE=1 ;; *) SCALE=10 ;; esac
[ "$REPS" -ge 3 ] || { echo "bench: BENCH_REPS must be at least 3" >&2; exit 2; }

# sizes at full scale; QUICK divides them by 10
size() { echo $(($1 / SCALE)); }
N_CORE=$(size 20000)    # engine core and xstate: instances (8 transitions each)
N_BPMN=$(size 500)      # whole instances: bpmn-engine and docket
N_COMMIT=$(size 2000)   # SQLite floor commits, fsyncs, durable transitions
N_PROC=$(size 200)      # processes per per-process measure
N_UPLOAD=$(size 200)    # evidence uploads
MB_BIG=$(size 50)       # the big evidence file, MB
N_TIMERS=$(size 100000) # armed timers for tick

rm -rf "$OUT"
mkdir -p "$OUT" "$BIN"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/docket-bench.XXXXXX")
SINK_PID=""
cleanup() {
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

# ---- what the peers need -------------------------------------------------

sh tools/deps.sh wrk hyperfine sqlite3 git curl
command -v node >/dev/null || { log "node is needed for the xstate and bpmn-engine peers"; exit 1; }
# npm ci installs exactly the locked versions; skip it when they are there
if ! cmp -s bench/package-lock.json bench/node_modules/.bench-lock 2>/dev/null; then
	log "installing the npm peers (bench/package-lock.json)"
	npm ci --prefix bench --no-audit --no-fund --loglevel=error >&2
	cp bench/package-lock.json bench/node_modules/.bench-lock
fi

# ---- building ------------------------------------------------------------

PKGS="libxml-2.0 sqlite3 libcurl libgit2 jansson libmicrohttpd libcrypto"
CC=${CC:-cc}
CF="-std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I$TOP -I$TOP/build/release/gen $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread -lm"
LIBDOCKET=$TOP/build/release/libdocket.a

# build NAME SOURCE: a standalone program (the floors)
build() {
	$CC $CF -o "$BIN/$1" "$2" $LIBS
}
# build_docket NAME SOURCE HEADER...: a program linked with libdocket.a, only
# when every header it needs is in the tree; prints the reason otherwise
build_docket() {
	name=$1
	src=$2
	shift 2
	for h in "$src" "$@"; do
		if [ ! -f "$h" ]; then
			echo "$h is not on main yet" >"$OUT/$name.why"
			return 1
		fi
	done
	if ! $CC $CF -o "$BIN/$name" "$src" "$LIBDOCKET" $LIBS 2>"$OUT/$name.build"; then
		log "$src does not build; see bench/results.tmp/$name.build"
		failed="$failed $name"
		echo "$src does not build against today's headers" >"$OUT/$name.why"
		return 1
	fi
}

has_cmd() { "$DOCKET" help 2>/dev/null | awk -v c="$1" '$1 == c { f = 1 } END { exit !f }'; }

# needs_cmd KEY CMD...: 0 when docket has every command, else writes why
needs_cmd() {
	key=$1
	shift
	for c in "$@"; do
		if ! has_cmd "$c"; then
			echo "\`docket $c\` is not there yet" >"$OUT/$key.why"
			return 1
		fi
	done
}

failed=""
build sqlite_floor bench/floor/sqlite_floor.c
build fsync_rate bench/floor/fsync_rate.c

# ---- measuring -----------------------------------------------------------

# measure KEY CMD...: runs CMD $REPS times, each printing one number, and
# writes "median min max" to $OUT/KEY. A failing run marks the key failed.
measure() {
	key=$1
	shift
	: >"$OUT/$key.runs"
	i=0
	while [ $i -lt "$REPS" ]; do
		if ! v=$("$@" 2>>"$OUT/$key.err") || [ -z "$v" ]; then
			log "$key failed: $* (see bench/results.tmp/$key.err)"
			echo "failed: see bench/results.tmp/$key.err" >"$OUT/$key.why"
			failed="$failed $key"
			return 0
		fi
		echo "$v" >>"$OUT/$key.runs"
		i=$((i + 1))
	done
	sort -g "$OUT/$key.runs" | awk '{ a[NR] = $1 }
		END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		      print m, a[1], a[NR] }' >"$OUT/$key"
	log "$key: $(cat "$OUT/$key")"
}

# per_second COUNT CMD...: runs CMD once, prints COUNT per second of its
# wall time
per_second() {
	count=$1
	shift
	t0=$(date +%s%N)
	"$@" >/dev/null || return 1
	t1=$(date +%s%N)
	awk -v n="$count" -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f\n", n / (ns / 1e9) }'
}

# ms_each COUNT CMD...: runs CMD once, prints milliseconds per item
ms_each() {
	count=$1
	shift
	t0=$(date +%s%N)
	"$@" >/dev/null || return 1
	t1=$(date +%s%N)
	awk -v n="$count" -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f\n", ns / 1e6 / n }'
}

# -- engine core against xstate ---------------------------------------------
log "engine core: xstate, $N_CORE instances"
measure xstate node bench/peers/xstate-plan.mjs "$N_CORE"
if build_docket engine_core bench/engine_core.c engine/engine.h; then
	measure core "$BIN/engine_core" bench/monthly-plan.xml examples/org.xml "$N_CORE"
else
	cp "$OUT/engine_core.why" "$OUT/core.why"
fi

# -- whole instances: bpmn-engine in memory, docket durable -----------------
log "whole instances: bpmn-engine, $N_BPMN instances"
measure bpmn node bench/peers/bpmn-plan.mjs "$N_BPMN"

# -- durable steps: floors and the runner -----------------------------------
log "durable steps: fsync and SQLite floors, $N_COMMIT each"
fsync_run() {
	rm -f "$WORK/fsync.dat"
	"$BIN/fsync_rate" "$WORK/fsync.dat" "$N_COMMIT"
}
floor_run() {
	rm -f "$WORK/floor.db" "$WORK/floor.db-wal" "$WORK/floor.db-shm"
	"$BIN/sqlite_floor" "$WORK/floor.db" "$N_COMMIT"
}
measure fsync fsync_run
measure floor floor_run
# the durable transitions leave uploads out (the archive rows measure them):
# the same flow with its <requires> taken away
sed 's#<requires evidence="[^"]*"/>##g' bench/monthly-plan.xml >"$WORK/plan-noupload.xml"
if build_docket runner_steps bench/runner_steps.c engine/runner.h; then
	log "durable steps: docket runner, $N_COMMIT transitions"
	durable_run() {
		rm -rf "$WORK/rhome"
		"$BIN/runner_steps" "$WORK/rhome" transitions "$WORK/plan-noupload.xml" \
			examples/org.xml "$N_COMMIT"
	}
	measure durable durable_run
else
	cp "$OUT/runner_steps.why" "$OUT/durable.why"
fi
# whole instances with their upload need the runner's attach command
if [ -f engine/runner.h ] && ! grep -q 'dk_runner_attach' engine/runner.h; then
	echo "engine/runner.h has no attach command yet (submit needs the plan uploaded)" \
		>"$OUT/whole.why"
elif [ -f "$OUT/runner_steps.why" ]; then
	cp "$OUT/runner_steps.why" "$OUT/whole.why"
else
	echo "the runner's attach is new: bench/runner_steps.c does not drive it yet" \
		>"$OUT/whole.why"
fi

# -- the command line: docket act against sqlite3 per process ----------------
log "per process: sqlite3 CLI, $N_PROC processes"
sqlite3 "$WORK/cli.db" "PRAGMA journal_mode=WAL;
	CREATE TABLE steps(id INTEGER PRIMARY KEY, instance TEXT, seq INTEGER, body TEXT);" >/dev/null
sqlite3_loop() {
	i=0
	while [ $i -lt "$N_PROC" ]; do
		sqlite3 "$WORK/cli.db" "PRAGMA synchronous=FULL;
			INSERT INTO steps(instance, seq, body) VALUES ('bench', $i, '{\"to\":\"in-progress\"}');" ||
			return 1
		i=$((i + 1))
	done
}
measure sqlite3_cli ms_each "$N_PROC" sqlite3_loop

# docket act: instances brought to review (not timed), then each
# `docket act ID approve` timed. The flow is the one without uploads, as for
# the durable transitions: what is measured is a process doing one step.
if needs_cmd docket_act act start deploy org; then
	log "per process: docket act, $N_PROC processes"
	DH=$WORK/cli-home
	"$DOCKET" --home "$DH" org load examples/org.xml >/dev/null
	"$DOCKET" --home "$DH" deploy "$WORK/plan-noupload.xml" >/dev/null
	act_loop() {
		: >"$WORK/ids"
		i=0
		while [ $i -lt "$N_PROC" ]; do
			id=$("$DOCKET" --home "$DH" --as li start bench-plan --var month=2026-11) &&
				"$DOCKET" --home "$DH" --as li act "$id" submit >/dev/null || return 1
			echo "$id" >>"$WORK/ids"
			i=$((i + 1))
		done
		t0=$(date +%s%N)
		while read -r id; do
			"$DOCKET" --home "$DH" --as wei act "$id" approve || return 1
		done <"$WORK/ids" >/dev/null
		t1=$(date +%s%N)
		awk -v n="$N_PROC" -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f\n", ns / 1e6 / n }'
	}
	measure docket_act act_loop
fi

# -- evidence: docket's archive against git plumbing -------------------------
log "evidence: git CLI plumbing, $N_UPLOAD uploads; ${MB_BIG} MB hash-object"
# git_uploads [GIT OPTION...]: every upload is a blob, a tree holding every
# file so far (one flat tree: docket's STATE/KIND/NAME needs three), a
# commit on the previous one and a compare-and-swap of the ref
git_uploads() {
	rm -rf "$WORK/git.git" "$WORK/up"
	git init -q --bare "$WORK/git.git"
	mkdir -p "$WORK/up"
	: >"$WORK/tree.txt"
	i=0
	while [ $i -lt "$N_UPLOAD" ]; do
		head -c 4096 /dev/urandom >"$WORK/up/$i.pdf"
		i=$((i + 1))
	done
	export GIT_AUTHOR_NAME=li GIT_AUTHOR_EMAIL=li@example.com
	export GIT_COMMITTER_NAME=docket GIT_COMMITTER_EMAIL=docket@localhost
	t0=$(date +%s%N)
	i=0
	old=0000000000000000000000000000000000000000
	while [ $i -lt "$N_UPLOAD" ]; do
		blob=$(git "$@" --git-dir="$WORK/git.git" hash-object -w "$WORK/up/$i.pdf")
		printf '100644 blob %s\tplan-%s.pdf\n' "$blob" "$i" >>"$WORK/tree.txt"
		tree=$(git "$@" --git-dir="$WORK/git.git" mktree <"$WORK/tree.txt")
		if [ $i -eq 0 ]; then
			commit=$(echo "plan $i" | git "$@" --git-dir="$WORK/git.git" commit-tree "$tree")
		else
			commit=$(echo "plan $i" |
				git "$@" --git-dir="$WORK/git.git" commit-tree "$tree" -p "$old")
		fi
		git "$@" --git-dir="$WORK/git.git" update-ref refs/docket/instances/bench "$commit" \
			"$old" || return 1
		old=$commit
		i=$((i + 1))
	done
	t1=$(date +%s%N)
	# every upload must be on the ref: a failed step above is no upload
	[ "$(git --git-dir="$WORK/git.git" rev-list --count refs/docket/instances/bench)" \
		-eq "$N_UPLOAD" ] || return 1
	awk -v n="$N_UPLOAD" -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f\n", n / (ns / 1e9) }'
}
measure git_uploads git_uploads
# the same with every object and ref fsynced, as docket's archive does
measure git_uploads_fsync git_uploads -c core.fsync=all -c core.fsyncMethod=fsync
head -c $((MB_BIG * 1024 * 1024)) /dev/urandom >"$WORK/big.bin"
git_big() {
	rm -rf "$WORK/big.git"
	git init -q --bare "$WORK/big.git"
	per_second "$MB_BIG" git --git-dir="$WORK/big.git" hash-object -w "$WORK/big.bin"
}
measure git_big git_big
if build_docket archive_uploads bench/archive_uploads.c store/archive.h; then
	archive_run() {
		rm -rf "$WORK/arch"
		"$BIN/archive_uploads" "$WORK/arch" "$@"
	}
	measure archive archive_run uploads "$N_UPLOAD"
	measure archive_big archive_run big "$WORK/big.bin"
else
	cp "$OUT/archive_uploads.why" "$OUT/archive.why"
	cp "$OUT/archive_uploads.why" "$OUT/archive_big.why"
fi

# -- webhooks: docket dispatch against curl per request ----------------------
log "webhooks: curl CLI, $N_PROC requests"
# the webhooks' test receiver (tests/tools/receiver.c) checks every
# signature, for curl's requests as for docket's; loopback only, and bounded
# in time by timeout(1) should this script die without its trap
if build_docket receiver tests/tools/receiver.c web-hooks/hooks.h; then
	SECRET="whsec_$(head -c 32 /dev/urandom | base64)"
	timeout 900 "$BIN/receiver" --secret "$SECRET" --port 0 --port-file "$WORK/recv.port" \
		>"$OUT/receiver.log" 2>&1 &
	SINK_PID=$!
	i=0
	while [ ! -s "$WORK/recv.port" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	PORT=$(cat "$WORK/recv.port")
	BODY='{"type":"task.created","timestamp":"2026-11-28T12:00:00Z","data":{"instance":"bench"}}'
	KEYHEX=$(echo "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
	# signatures are made before the clock starts: curl only sends
	curl_loop() {
		ts=$(date +%s)
		: >"$WORK/signed"
		i=0
		while [ $i -lt "$N_PROC" ]; do
			id="msg_bench_${ts}_$i"
			sig=$(printf '%s.%s.%s' "$id" "$ts" "$BODY" |
				openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEYHEX" -binary | base64)
			echo "$id v1,$sig" >>"$WORK/signed"
			i=$((i + 1))
		done
		t0=$(date +%s%N)
		while read -r id sig; do
			curl -s -f -o /dev/null -X POST -H 'content-type: application/json' \
				-H "webhook-id: $id" -H "webhook-timestamp: $ts" \
				-H "webhook-signature: $sig" --data-binary "$BODY" \
				"http://127.0.0.1:$PORT/hook" || return 1
		done <"$WORK/signed"
		t1=$(date +%s%N)
		awk -v n="$N_PROC" -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f\n", n / (ns / 1e9) }'
	}
	measure curl curl_loop
	# docket's side: N events queued in the outbox (one per instance, as the
	# runner queues them) by the webhooks' test tool, then one `docket
	# dispatch` process timed until every one is delivered
	if needs_cmd hooks_dispatch dispatch hooks &&
		build_docket outbox_enqueue tests/tools/outbox_enqueue.c web-hooks/hooks.h; then
		log "webhooks: docket dispatch, $N_PROC deliveries"
		hooks_run() {
			HH=$WORK/hooks-home
			rm -rf "$HH"
			"$DOCKET" --home "$HH" hooks add "http://127.0.0.1:$PORT/hook" \
				--secret "$SECRET" >/dev/null &&
				"$BIN/outbox_enqueue" --home "$HH" --type task.assigned --flow bench-plan \
					--instance bench --instances "$N_PROC" --count "$N_PROC" \
					--assignee wei --title Plan >/dev/null || return 1
			t0=$(date +%s%N)
			"$DOCKET" --home "$HH" --json dispatch >"$WORK/dispatch.json" || return 1
			t1=$(date +%s%N)
			n=$(jq .delivered "$WORK/dispatch.json")
			[ "$n" -eq "$N_PROC" ] || return 1
			awk -v n="$n" -v ns="$((t1 - t0))" 'BEGIN { printf "%.3f\n", n / (ns / 1e9) }'
		}
		measure hooks_dispatch hooks_run
	else
		[ -f "$OUT/hooks_dispatch.why" ] || cp "$OUT/outbox_enqueue.why" "$OUT/hooks_dispatch.why"
	fi
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	SINK_PID=""
else
	cp "$OUT/receiver.why" "$OUT/curl.why"
	cp "$OUT/receiver.why" "$OUT/hooks_dispatch.why"
fi

# -- timers ------------------------------------------------------------------
if [ -x "$BIN/runner_steps" ] && grep -q 'dk_runner_tick' engine/runner.h; then
	# each instance waiting in review arms its deadline and its reminder
	log "timers: arming $N_TIMERS timers"
	if "$BIN/runner_steps" "$WORK/thome" arm "$WORK/plan-noupload.xml" examples/org.xml \
		$((N_TIMERS / 2)) >/dev/null 2>"$OUT/tick_arm.err"; then
		sqlite3 "$WORK/thome/docket.db" 'SELECT count(*) FROM timers' \
			>"$OUT/tick_armed" 2>/dev/null || echo "?" >"$OUT/tick_armed"
		log "timers armed: $(cat "$OUT/tick_armed")"
		measure tick_idle "$BIN/runner_steps" "$WORK/thome" idle
		# firing changes the store: each repetition works on a fresh copy
		tick_fire() {
			rm -rf "$WORK/tcopy"
			cp -r "$WORK/thome" "$WORK/tcopy"
			"$BIN/runner_steps" "$WORK/tcopy" fire
		}
		measure tick_fire tick_fire
	else
		log "arming timers failed; see bench/results.tmp/tick_arm.err"
		failed="$failed tick_arm"
		echo "arming failed: see bench/results.tmp/tick_arm.err" >"$OUT/tick_idle.why"
		cp "$OUT/tick_idle.why" "$OUT/tick_fire.why"
	fi
elif [ -f "$OUT/runner_steps.why" ]; then
	cp "$OUT/runner_steps.why" "$OUT/tick_idle.why"
	cp "$OUT/runner_steps.why" "$OUT/tick_fire.why"
else
	echo "engine/runner.h has no tick yet" >"$OUT/tick_idle.why"
	cp "$OUT/tick_idle.why" "$OUT/tick_fire.why"
fi

# ---- the report ------------------------------------------------------------

sh bench/report.sh "$OUT" "$SCALE" "$REPS" >bench/results.md
log "wrote bench/results.md"
if [ -n "$failed" ]; then
	log "failed:$failed"
	exit 1
fi
