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
# Some measures keep their full size under QUICK: the durable commits (a
# tenth of them left the notes' catch-up timing its own start-up rather
# than its notes, and the fsync-bound ratios noisier), the armed timers
# (issue 6 asks for tick with 100,000 armed), both about a minute more, and
# the small uploads (20 were a few milliseconds of docket, under the
# first automatic gc, and the 20x ratio swung with one slow flush; 200
# cost docket under a second and git about ten).
N_COMMIT=2000           # SQLite floor commits, fsyncs, durable transitions
N_PROC=$(size 200)      # processes per per-process measure
N_HOOKS=$(size 20000)   # webhook deliveries per docket dispatch run
N_UPLOAD=200            # evidence uploads
N_UPLOAD_AT_ONCE=640    # evidence uploads by UPLOADERS at once
UPLOADERS=16            # ... each its own instance (docket: threads; git: shells)
MB_BIG=$(size 50)       # the big evidence file, MB
N_TIMERS=100000         # armed timers for tick
N_ARCH_GROWTH=$(size 100000) # archived files for the upload cost's growth
# stored instances at which each step is timed: up to 1,000,000 even with
# QUICK, since seeding by copying rows takes about two minutes (2.6 GB)
GROWTH_SIZES="1000 10000 100000 1000000"

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

sh tools/deps.sh wrk hyperfine sqlite3 git curl gnuplot-nox
command -v node >/dev/null || { log "node is needed for the xstate and bpmn-engine peers"; exit 1; }
# npm ci installs exactly the locked versions; skip it when they are there
if ! cmp -s bench/package-lock.json bench/node_modules/.bench-lock 2>/dev/null; then
	log "installing the npm peers (bench/package-lock.json)"
	npm ci --prefix bench --no-audit --no-fund --loglevel=error >&2
	cp bench/package-lock.json bench/node_modules/.bench-lock
fi

# ---- building ------------------------------------------------------------

PKGS="libxml-2.0 sqlite3 libcurl libgit2 jansson libmicrohttpd libcrypto zlib"
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
# (no libraries: the floor of a process is libc's)
$CC -O2 -o "$BIN/exec_floor" bench/floor/exec_floor.c

# ---- measuring -----------------------------------------------------------

# interleave KEY:FUNC...: runs each FUNC (one number on stdout) $REPS times,
# taking turns (docket, peer, docket, peer, ...) so that both sides of a
# ratio see the same share of this shared machine, then writes
# "median min max" to $OUT/KEY. A failing run marks its key failed and
# stops that key only.
interleave() {
	for kv in "$@"; do
		: >"$OUT/${kv%%:*}.runs"
	done
	rep=0
	while [ $rep -lt "$REPS" ]; do
		for kv in "$@"; do
			key=${kv%%:*}
			[ -f "$OUT/$key.why" ] && continue
			if ! v=$(${kv#*:} 2>>"$OUT/$key.err") || [ -z "$v" ]; then
				log "$key failed (see bench/results.tmp/$key.err)"
				echo "failed: see bench/results.tmp/$key.err" >"$OUT/$key.why"
				failed="$failed $key"
				continue
			fi
			echo "$v" >>"$OUT/$key.runs"
		done
		rep=$((rep + 1))
	done
	for kv in "$@"; do
		key=${kv%%:*}
		[ -f "$OUT/$key.why" ] && continue
		sort -g "$OUT/$key.runs" | awk '{ a[NR] = $1 }
			END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			      print m, a[1], a[NR] }' >"$OUT/$key"
		log "$key: $(cat "$OUT/$key") (median min max)"
	done
}

# available KEY...: the keys of the arguments whose side can run (no
# KEY.why written by a build or command check), as KEY:run_KEY words
available() {
	for k in "$@"; do
		[ -f "$OUT/$k.why" ] || printf '%s:run_%s ' "$k" "$k"
	done
}

# rate COUNT T0 T1 / ms_per COUNT T0 T1: from date +%s%N stamps
rate() { awk -v n="$1" -v ns="$(($3 - $2))" 'BEGIN { printf "%.3f\n", n / (ns / 1e9) }'; }
ms_per() { awk -v n="$1" -v ns="$(($3 - $2))" 'BEGIN { printf "%.3f\n", ns / 1e6 / n }'; }

# -- engine core against xstate ---------------------------------------------
# xstate doing the work docket's engine does on each command (uploads,
# assignees, deadline timers, audit events), and xstate's bare machine of
# the earlier runs (guards over preset counts, nothing else), side by side
run_xstate() { node bench/peers/xstate-plan.mjs "$N_CORE" examples/org.xml; }
run_xstate_bare() { node bench/peers/xstate-plan.mjs "$N_CORE" --bare; }
run_core() { "$BIN/engine_core" bench/monthly-plan.xml examples/org.xml "$N_CORE"; }
build_docket engine_core bench/engine_core.c engine/engine.h ||
	cp "$OUT/engine_core.why" "$OUT/core.why"
log "engine core: $N_CORE instances, docket and xstate (same work, and bare)"
interleave $(available core xstate xstate_bare)

# -- durable steps: the runner against the floors ---------------------------
run_fsync() {
	rm -f "$WORK/fsync.dat"
	"$BIN/fsync_rate" "$WORK/fsync.dat" "$N_COMMIT"
}
run_floor() {
	rm -f "$WORK/floor.db" "$WORK/floor.db-wal" "$WORK/floor.db-shm"
	"$BIN/sqlite_floor" "$WORK/floor.db" "$N_COMMIT"
}
# the durable transitions leave uploads out (the archive rows measure them):
# the same flow with its <requires> taken away
sed 's#<requires evidence="[^"]*"/>##g' bench/monthly-plan.xml >"$WORK/plan-noupload.xml"
run_durable() {
	rm -rf "$WORK/rhome"
	"$BIN/runner_steps" "$WORK/rhome" transitions "$WORK/plan-noupload.xml" examples/org.xml \
		"$N_COMMIT"
}
# A step commits to SQLite only: the archive notes of its state changes are
# written by a catch-up (`docket archive sync`, serve's note thread, tick),
# off its path. Their cost is measured here rather than hidden: the catch-up
# over a copy of the home the durable run just left (its 2,250 notes at full
# size, all waiting), notes written per second; its ratio to the durable
# transitions tells whether the notes keep up with the steps.
run_notes_sync() {
	rm -rf "$WORK/shome"
	cp -a "$WORK/rhome" "$WORK/shome" || return 1
	t0=$(date +%s%N)
	n=$("$DOCKET" --home "$WORK/shome" --json archive sync |
		sed -n 's/.*"written":\([0-9]*\).*/\1/p') || return 1
	t1=$(date +%s%N)
	[ "${n:-0}" -gt 0 ] || return 1
	rate "$n" "$t0" "$t1"
}
build_docket runner_steps bench/runner_steps.c engine/runner.h ||
	cp "$OUT/runner_steps.why" "$OUT/durable.why"
if [ -f "$OUT/durable.why" ]; then
	cp "$OUT/durable.why" "$OUT/notes_sync.why"
else
	needs_cmd notes_sync archive
fi
log "durable steps: $N_COMMIT each, docket runner, SQLite floor, fsync, the notes' catch-up"
interleave $(available durable floor fsync notes_sync)

# -- durable acts through `docket serve`: 64 connections, group commit -------
# bench/serve_acts.sh: each connection cycles its own instance through
# submit and return over keep-alive HTTP; the floor runs again in turns with
# it, so the ratio compares figures of the same minutes
N_SERVE=$(size 6400)
build serve_acts bench/serve_acts.c
run_serve_acts() {
	sh bench/serve_acts.sh "$DOCKET" "$BIN/serve_acts" "$WORK" 64 "$N_SERVE" --threads 64
}
run_serve_floor() { run_floor; }
needs_cmd serve_acts serve token start deploy org
log "serve: $N_SERVE acts over 64 connections, and the SQLite floor"
interleave $(available serve_acts serve_floor)

# -- docket serve under wrk: GET, durable acts, p99, memory --------------------
# bench/serve_wrk.sh seeds 100,000 instances once (copies of a started one,
# in one sqlite3 transaction), then each run starts serve on that home: GET
# /api/instances/{id} on random ids, acts (submit/return) over 64
# connections through bench/serve_wrk_acts.lua, and the serve process's
# VmHWM after a GET run. The p99 keys read what the run before them wrote;
# the SQLite floor runs in the same turns as the acts.
WRK_SECS=$((10 / SCALE + 2))
WRK_INSTANCES=$((100000 / SCALE))
export WRK_INSTANCES
run_wrk_get() { sh bench/serve_wrk.sh "$DOCKET" "$WORK" get "$WRK_SECS"; }
run_wrk_get_p99() { cat "$WORK/wrk-get.p99"; }
run_wrk_health() { sh bench/serve_wrk.sh "$DOCKET" "$WORK" health "$WRK_SECS"; }
run_wrk_acts() { sh bench/serve_wrk.sh "$DOCKET" "$WORK" acts "$WRK_SECS"; }
run_wrk_acts_p99() { cat "$WORK/wrk-acts.p99"; }
run_wrk_floor() { run_floor; }
run_wrk_rss() { sh bench/serve_wrk.sh "$DOCKET" "$WORK" rss "$WRK_SECS"; }
needs_cmd wrk_get serve token start deploy org && command -v wrk >/dev/null ||
	echo "wrk or a docket command is missing" >"$OUT/wrk_get.why"
for k in wrk_get_p99 wrk_health wrk_acts wrk_acts_p99 wrk_floor wrk_rss; do
	[ -f "$OUT/wrk_get.why" ] && cp "$OUT/wrk_get.why" "$OUT/$k.why"
done
if [ ! -f "$OUT/wrk_get.why" ] && ! WRK_INSTANCES=$((100000 / SCALE)) \
	sh bench/serve_wrk.sh "$DOCKET" "$WORK" setup 2>"$OUT/wrk_setup.err"; then
	log "seeding for wrk failed; see bench/results.tmp/wrk_setup.err"
	failed="$failed wrk_setup"
	for k in wrk_get wrk_get_p99 wrk_health wrk_acts wrk_acts_p99 wrk_floor wrk_rss; do
		echo "seeding failed: see bench/results.tmp/wrk_setup.err" >"$OUT/$k.why"
	done
fi
log "serve under wrk: $((100000 / SCALE)) instances, 64 connections, ${WRK_SECS}s per run"
interleave $(available wrk_get wrk_get_p99 wrk_health)
interleave $(available wrk_acts wrk_acts_p99 wrk_floor)
interleave $(available wrk_rss)

# -- whole instances: docket durable, bpmn-engine in memory ------------------
printf '%%PDF-1.4\n%% docket bench plan\n' >"$WORK/plan.pdf"
run_whole() {
	rm -rf "$WORK/whome"
	"$BIN/whole_instances" "$WORK/whome" bench/monthly-plan.xml examples/org.xml "$N_BPMN" \
		"$WORK/plan.pdf"
}
run_bpmn() { node bench/peers/bpmn-plan.mjs "$N_BPMN"; }
if [ -f engine/runner.h ] && ! grep -q 'dk_runner_attach' engine/runner.h; then
	echo "engine/runner.h has no attach yet (submit needs the plan uploaded)" >"$OUT/whole.why"
elif ! build_docket whole_instances bench/whole_instances.c engine/runner.h; then
	cp "$OUT/whole_instances.why" "$OUT/whole.why"
fi
log "whole instances: $N_BPMN each, docket runner and bpmn-engine"
interleave $(available whole bpmn)

# -- the command line: docket act against sqlite3, one process per step ------
sqlite3 "$WORK/cli.db" "PRAGMA journal_mode=WAL;
	CREATE TABLE steps(id INTEGER PRIMARY KEY, instance TEXT, seq INTEGER, body TEXT);" >/dev/null
run_sqlite3_cli() {
	t0=$(date +%s%N)
	i=0
	while [ $i -lt "$N_PROC" ]; do
		sqlite3 "$WORK/cli.db" "PRAGMA synchronous=FULL;
			INSERT INTO steps(instance, seq, body) VALUES ('bench', $i, '{\"to\":\"in-progress\"}');" ||
			return 1
		i=$((i + 1))
	done
	ms_per "$N_PROC" "$t0" "$(date +%s%N)"
}
# docket act: instances brought to review (not timed), then each
# `docket act ID approve` timed. The flow is the one without uploads, as for
# the durable transitions: what is measured is a process doing one step.
DH=$WORK/cli-home
run_docket_act() {
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
		"$DOCKET" --home "$DH" --as wei act "$id" approve >/dev/null || return 1
	done <"$WORK/ids"
	ms_per "$N_PROC" "$t0" "$(date +%s%N)"
}
if needs_cmd docket_act act start deploy org; then
	# (deploy warns that phase-report is no longer required: that is the point)
	"$DOCKET" --home "$DH" org load examples/org.xml >/dev/null
	"$DOCKET" --home "$DH" deploy "$WORK/plan-noupload.xml" >/dev/null 2>"$OUT/docket_act.deploy"
fi
log "per process: $N_PROC each, docket act and sqlite3"
interleave $(available docket_act sqlite3_cli)

# -- evidence: docket's archive against git plumbing -------------------------
# git_uploads [GIT OPTION...]: every upload is a blob, a tree holding every
# file so far (one flat tree: docket's STATE/KIND/NAME needs three), a
# commit on the previous one and a compare-and-swap of the ref
git_uploads() {
	g=$WORK/ev/git.$(date +%s%N)
	git init -q --bare "$g.git"
	mkdir -p "$g.up"
	: >"$g.tree"
	i=0
	while [ $i -lt "$N_UPLOAD" ]; do
		head -c 4096 /dev/urandom >"$g.up/$i.pdf"
		i=$((i + 1))
	done
	export GIT_AUTHOR_NAME=li GIT_AUTHOR_EMAIL=li@example.com
	export GIT_COMMITTER_NAME=docket GIT_COMMITTER_EMAIL=docket@localhost
	t0=$(date +%s%N)
	i=0
	old=0000000000000000000000000000000000000000
	while [ $i -lt "$N_UPLOAD" ]; do
		blob=$(git "$@" --git-dir="$g.git" hash-object -w "$g.up/$i.pdf")
		printf '100644 blob %s\tplan-%s.pdf\n' "$blob" "$i" >>"$g.tree"
		tree=$(git "$@" --git-dir="$g.git" mktree <"$g.tree")
		if [ $i -eq 0 ]; then
			commit=$(echo "plan $i" | git "$@" --git-dir="$g.git" commit-tree "$tree")
		else
			commit=$(echo "plan $i" |
				git "$@" --git-dir="$g.git" commit-tree "$tree" -p "$old")
		fi
		git "$@" --git-dir="$g.git" update-ref refs/docket/instances/bench "$commit" \
			"$old" || return 1
		old=$commit
		i=$((i + 1))
	done
	t1=$(date +%s%N)
	# every upload must be on the ref: a failed step above is no upload
	[ "$(git --git-dir="$g.git" rev-list --count refs/docket/instances/bench)" \
		-eq "$N_UPLOAD" ] || return 1
	rate "$N_UPLOAD" "$t0" "$t1"
}
# git_uploads_at_once P: the same plumbing in P shells at once, each on a
# ref of its own (N_UPLOAD_AT_ONCE uploads in all), as docket's
# `archive_uploads ... uploads N P` does with P threads
git_uploads_at_once() {
	g=$WORK/ev/gitp.$(date +%s%N)
	git init -q --bare "$g.git"
	mkdir -p "$g.up"
	i=0
	while [ $i -lt "$N_UPLOAD_AT_ONCE" ]; do
		head -c 4096 /dev/urandom >"$g.up/$i.pdf"
		i=$((i + 1))
	done
	export GIT_AUTHOR_NAME=li GIT_AUTHOR_EMAIL=li@example.com
	export GIT_COMMITTER_NAME=docket GIT_COMMITTER_EMAIL=docket@localhost
	t0=$(date +%s%N)
	p=0
	while [ $p -lt "$1" ]; do
		(
			: >"$g.tree.$p"
			i=$p
			old=""
			while [ $i -lt "$N_UPLOAD_AT_ONCE" ]; do
				blob=$(git --git-dir="$g.git" hash-object -w "$g.up/$i.pdf")
				printf '100644 blob %s\tplan-%s.pdf\n' "$blob" "$i" >>"$g.tree.$p"
				tree=$(git --git-dir="$g.git" mktree <"$g.tree.$p")
				if [ -z "$old" ]; then
					commit=$(echo "plan $i" | git --git-dir="$g.git" commit-tree "$tree")
					git --git-dir="$g.git" update-ref "refs/docket/instances/b$p" \
						"$commit" "" || exit 1
				else
					commit=$(echo "plan $i" |
						git --git-dir="$g.git" commit-tree "$tree" -p "$old")
					git --git-dir="$g.git" update-ref "refs/docket/instances/b$p" \
						"$commit" "$old" || exit 1
				fi
				old=$commit
				i=$((i + $1))
			done
		) &
		p=$((p + 1))
	done
	wait
	t1=$(date +%s%N)
	# every upload must be on its ref
	n=$(git --git-dir="$g.git" rev-list --count --glob='refs/docket/instances/*')
	[ "$n" -eq "$N_UPLOAD_AT_ONCE" ] || return 1
	rate "$N_UPLOAD_AT_ONCE" "$t0" "$t1"
}
run_git_uploads() { git_uploads; }
run_git_uploads_at_once() { git_uploads_at_once "$UPLOADERS"; }
# the same with every object and ref fsynced (docket flushes each upload with two syncfs)
run_git_uploads_fsync() { git_uploads -c core.fsync=all -c core.fsyncMethod=fsync; }
head -c $((MB_BIG * 1024 * 1024)) /dev/urandom >"$WORK/big.bin"
run_git_big() {
	g=$WORK/ev/big.$(date +%s%N)
	git init -q --bare "$g.git"
	t0=$(date +%s%N)
	git --git-dir="$g.git" hash-object -w "$WORK/big.bin" >/dev/null || return 1
	rate "$MB_BIG" "$t0" "$(date +%s%N)"
}
run_archive() {
	"$BIN/archive_uploads" "$WORK/ev/arch.$(date +%s%N)" uploads "$N_UPLOAD"
}
run_archive_at_once() {
	"$BIN/archive_uploads" "$WORK/ev/arch.$(date +%s%N)" uploads "$N_UPLOAD_AT_ONCE" "$UPLOADERS"
}
run_archive_big() {
	"$BIN/archive_uploads" "$WORK/ev/arch.$(date +%s%N)" big "$WORK/big.bin"
}
if ! build_docket archive_uploads bench/archive_uploads.c store/archive.h; then
	cp "$OUT/archive_uploads.why" "$OUT/archive.why"
	cp "$OUT/archive_uploads.why" "$OUT/archive_big.why"
	cp "$OUT/archive_uploads.why" "$OUT/archive_at_once.why"
fi
# Every run of either side writes into directories of its own under
# $WORK/ev, all removed after the section: on ext4 a file created soon
# after many were deleted pays for scanning past them (recently deleted
# inodes are not reused for a minute or more), so removing the last run's
# repository before each run slowed the next one, docket's or git's,
# by how many files the one before had left.
mkdir -p "$WORK/ev"
log "evidence: $N_UPLOAD uploads each, docket archive and git CLI; ${MB_BIG} MB file"
interleave $(available archive git_uploads git_uploads_fsync)
log "evidence: $N_UPLOAD_AT_ONCE uploads by $UPLOADERS uploaders at once, docket and git CLI"
interleave $(available archive_at_once git_uploads_at_once)
interleave $(available archive_big git_big)
rm -rf "$WORK/ev"

# -- webhooks: docket dispatch against curl, one process per request ----------
# the webhooks' test receiver (tests/tools/receiver.c) checks every
# signature, for curl's requests as for docket's; loopback only, and bounded
# in time by timeout(1) should this script die without its trap
BODY='{"type":"task.created","timestamp":"2026-11-28T12:00:00Z","data":{"instance":"bench"}}'
# signatures are made before the clock starts: curl only sends
run_curl() {
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
	rate "$N_PROC" "$t0" "$(date +%s%N)"
}
# docket's side: N_HOOKS events queued in the outbox (one per instance, as
# the runner queues them) by the webhooks' test tool, then one `docket
# dispatch` process (64 in flight, its default) timed until every one is
# delivered: enough that its start-up is noise
run_hooks_dispatch() {
	HH=$WORK/hooks-home
	rm -rf "$HH"
	"$DOCKET" --home "$HH" hooks add "http://127.0.0.1:$PORT/hook" --secret "$SECRET" \
		>/dev/null &&
		"$BIN/outbox_enqueue" --home "$HH" --type task.assigned --flow bench-plan \
			--instance bench --instances "$N_HOOKS" --count "$N_HOOKS" --assignee wei \
			--title Plan >/dev/null || return 1
	t0=$(date +%s%N)
	DOCKET_HOOK_MAX_IN_FLIGHT=64 "$DOCKET" --home "$HH" --json dispatch \
		>"$WORK/dispatch.json" || return 1
	t1=$(date +%s%N)
	n=$(jq .delivered "$WORK/dispatch.json")
	[ "$n" -eq "$N_HOOKS" ] || return 1
	rate "$n" "$t0" "$t1"
}
if build_docket receiver tests/tools/receiver.c web-hooks/hooks.h; then
	if needs_cmd hooks_dispatch dispatch hooks; then
		build_docket outbox_enqueue tests/tools/outbox_enqueue.c web-hooks/hooks.h ||
			cp "$OUT/outbox_enqueue.why" "$OUT/hooks_dispatch.why"
	fi
	SECRET="whsec_$(head -c 32 /dev/urandom | base64)"
	KEYHEX=$(echo "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
	timeout 900 "$BIN/receiver" --secret "$SECRET" --port 0 --port-file "$WORK/recv.port" \
		>"$OUT/receiver.log" 2>&1 &
	SINK_PID=$!
	i=0
	while [ ! -s "$WORK/recv.port" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	PORT=$(cat "$WORK/recv.port")
	log "webhooks: docket dispatch $N_HOOKS deliveries, curl $N_PROC processes"
	interleave $(available hooks_dispatch curl)
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	SINK_PID=""
	# the receiver's tally when it stops: every request it had must have
	# verified (a refused one would have failed its sender anyway)
	if ! grep -q ', 0 refused$' "$OUT/receiver.log"; then
		log "the webhooks' receiver refused requests (see bench/results.tmp/receiver.log)"
		failed="$failed receiver"
	fi
else
	cp "$OUT/receiver.why" "$OUT/curl.why"
	cp "$OUT/receiver.why" "$OUT/hooks_dispatch.why"
fi

# -- webhooks: event-to-delivery latency inside docket serve ----------------
# bench/hooks_latency.sh prints "P50 P99 P99SEND" (ms); each key is its own run
N_LAT=$(size 100)
hooks_latency() {
	sh bench/hooks_latency.sh "$DOCKET" "$BIN/receiver" "$WORK/lat" "$N_LAT" | cut -d' ' -f"$1"
}
run_hooks_p50() { hooks_latency 1; }
run_hooks_p99() { hooks_latency 2; }
run_hooks_p99_send() { hooks_latency 3; }
for k in hooks_p50 hooks_p99 hooks_p99_send; do
	if [ -f "$OUT/receiver.why" ]; then
		cp "$OUT/receiver.why" "$OUT/$k.why"
	else
		needs_cmd "$k" serve hooks token act || true
	fi
done
log "webhooks: latency of $N_LAT approvals through docket serve"
interleave $(available hooks_p50 hooks_p99 hooks_p99_send)

# -- timers: tick with many armed --------------------------------------------
# an idle tick is what cron pays every minute: a whole `docket tick`
# process (spawn, open, one indexed look-up) at the arming clock
run_tick_idle() {
	t0=$(date +%s%N)
	i=0
	while [ $i -lt "$N_PROC" ]; do
		DOCKET_NOW=2026-11-02T09:00:00+08:00 "$DOCKET" --home "$WORK/thome" tick >/dev/null ||
			return 1
		i=$((i + 1))
	done
	ms_per "$N_PROC" "$t0" "$(date +%s%N)"
}
# its peer: the same binary doing nothing (`docket help`), which is what
# loading docket and the shared libraries it links costs any command here
run_docket_help() {
	t0=$(date +%s%N)
	i=0
	while [ $i -lt "$N_PROC" ]; do
		"$DOCKET" help >/dev/null || return 1
		i=$((i + 1))
	done
	ms_per "$N_PROC" "$t0" "$(date +%s%N)"
}
# and the floor under both: a C program that does nothing, from the same loop
run_exec_floor() {
	t0=$(date +%s%N)
	i=0
	while [ $i -lt "$N_PROC" ]; do
		"$BIN/exec_floor" >/dev/null || return 1
		i=$((i + 1))
	done
	ms_per "$N_PROC" "$t0" "$(date +%s%N)"
}
# firing changes the store: each repetition works on a fresh copy
run_tick_fire() {
	rm -rf "$WORK/tcopy"
	cp -r "$WORK/thome" "$WORK/tcopy"
	"$BIN/runner_steps" "$WORK/tcopy" fire
}
if [ -f "$OUT/runner_steps.why" ]; then
	cp "$OUT/runner_steps.why" "$OUT/tick_idle.why"
	cp "$OUT/runner_steps.why" "$OUT/tick_fire.why"
elif ! grep -q 'dk_runner_tick' engine/runner.h; then
	echo "engine/runner.h has no tick yet" >"$OUT/tick_idle.why"
	cp "$OUT/tick_idle.why" "$OUT/tick_fire.why"
else
	# each instance waiting in review arms its deadline and its reminder;
	# a tenth of them are due at the firing tick, the rest a month later
	log "timers: arming $N_TIMERS timers, $((N_TIMERS / 10)) of them due"
	if "$BIN/runner_steps" "$WORK/thome" arm "$WORK/plan-noupload.xml" examples/org.xml \
		$((N_TIMERS / 2)) $((N_TIMERS / 20)) >/dev/null 2>"$OUT/tick_arm.err"; then
		sqlite3 "$WORK/thome/docket.db" 'SELECT count(*) FROM timers' \
			>"$OUT/tick_armed" 2>/dev/null || echo "?" >"$OUT/tick_armed"
		log "timers armed: $(cat "$OUT/tick_armed")"
		# the arming steps' archive notes wait for a catch-up, which the
		# first tick would run: made beforehand (not timed), as in a home
		# whose notes keep up, so every idle tick measured is idle
		"$DOCKET" --home "$WORK/thome" archive sync >/dev/null 2>>"$OUT/tick_arm.err" ||
			log "archive sync after arming failed; see bench/results.tmp/tick_arm.err"
	else
		log "arming timers failed; see bench/results.tmp/tick_arm.err"
		failed="$failed tick_arm"
		echo "arming failed: see bench/results.tmp/tick_arm.err" >"$OUT/tick_idle.why"
		cp "$OUT/tick_idle.why" "$OUT/tick_fire.why"
	fi
fi
interleave $(available tick_idle docket_help exec_floor)
interleave $(available tick_fire)

# -- growth: the cost of one step as the store grows ---------------------------
# Both run once: each figure is already a median (growth.c: of 21 steps at
# each size) or a mean (archive: of 1,000 uploads), and each run takes
# minutes. The ratios compare sizes within that one run.
run_archive_growth() {
	rm -rf "$WORK/agrow" "$WORK/agrow.files"
	"$BIN/archive_uploads" "$WORK/agrow" growth "$N_ARCH_GROWTH"
}
if [ ! -f "$OUT/archive_uploads.why" ]; then
	log "archive growth: $N_ARCH_GROWTH uploads over $((N_ARCH_GROWTH / 10)) instances"
	if v=$(run_archive_growth 2>"$OUT/archive_growth.err"); then
		echo "$v" >"$OUT/archive_growth"
		log "archive growth: $(cat "$OUT/archive_growth.err")"
	else
		log "archive growth failed (see bench/results.tmp/archive_growth.err)"
		echo "failed: see bench/results.tmp/archive_growth.err" >"$OUT/archive_growth.why"
		failed="$failed archive_growth"
	fi
else
	cp "$OUT/archive_uploads.why" "$OUT/archive_growth.why"
fi
if build_docket growth bench/growth.c engine/runner.h store/store.h; then
	log "growth: steps at $GROWTH_SIZES stored instances"
	if "$BIN/growth" "$WORK/ghome" "$WORK/plan-noupload.xml" examples/org.xml "$WORK/plan.pdf" \
		$GROWTH_SIZES >"$OUT/growth.txt" 2>"$OUT/growth.err"; then
		# one row per size: size start upload act tick inbox overdue
		awk '{ v[$1, $2] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
			END { for (i = 1; i <= n; i++) { s = order[i]
				print s, v[s, "start"], v[s, "upload"], v[s, "act"], v[s, "tick"],
				      v[s, "inbox"], v[s, "overdue"] } }' "$OUT/growth.txt" >"$OUT/growth.dat"
		gnuplot -e "set terminal pngcairo size 900,560 noenhanced; set output 'bench/growth.png';
			set title 'docket: milliseconds per step against stored instances (make bench$([ "$SCALE" -eq 1 ] || echo ' QUICK=1'))';
			set logscale xy; set xlabel 'stored instances'; set ylabel 'ms per step (median)';
			set key outside right; set grid; set format x '%.0s%c';
			plot for [c=2:7] '$OUT/growth.dat' using 1:c with linespoints lw 2 title word('start upload act tick inbox-page overdue-page', c - 1)" \
			2>"$OUT/growth.plot.err" || {
			log "gnuplot failed; see bench/results.tmp/growth.plot.err"
			failed="$failed growth_plot"
		}
	else
		log "growth failed (see bench/results.tmp/growth.err)"
		echo "failed: see bench/results.tmp/growth.err" >"$OUT/growth.why"
		failed="$failed growth"
	fi
fi

# ---- the report ------------------------------------------------------------

sh bench/report.sh "$OUT" "$SCALE" "$REPS" >bench/results.md
log "wrote bench/results.md"
if [ -n "$failed" ]; then
	log "failed:$failed"
	exit 1
fi
