# api_group_commit.sh - `docket serve` commits concurrent writes in batches
# (one transaction, a savepoint per command, one commit). Under 64 parallel
# requests: every acknowledged act is in the audit trail exactly once,
# refused ones changed nothing, versions count the acts, one
# Idempotency-Key acts once however many copies race. Then kill -9 in the
# middle of a load: after a restart every act answered 2xx is there and
# the database is sound.
. "$DOCKET_SRC/tests/lib.sh"
. "$DOCKET_SRC/tests/e2e/api_server.inc"

cat >"$T/org.xml" <<'XML'
<org xmlns="urn:docket:org:1">
  <dept id="ops" name="Ops" head="ann"/>
  <user id="ann" name="Ann" dept="ops" roles="clerk"/>
  <user id="bob" name="Bob" dept="ops" roles="clerk"/>
</org>
XML
cat >"$T/loop.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="loop" version="1">
  <title>Counter</title>
  <role id="clerk"/>
  <var name="n" type="number" default="0"/>
  <state id="open" initial="true" assign="role:clerk">
    <transition id="ping" to="open"><set var="n" value="$n + 1"/></transition>
    <transition id="close" to="closed"/>
  </state>
  <state id="closed" final="true"/>
</flow>
XML
dk org load "$T/org.xml"
dk deploy "$T/loop.xml"
expect_rc 0 "deploy the counter flow"
ANN=$("$DOCKET" token create --user ann 2>/dev/null)
BOB=$("$DOCKET" token create --user bob 2>/dev/null)

serve_start --threads 16 --no-timers --no-hooks
[ -n "$base" ] && ok "serve started" || not_ok "serve did not start"

# The note writer runs 10 nice levels below the writer (at most 19), so
# under load it does not take the writer's share of the cores.
nice_of() { # nice_of THREAD-NAME: field 19 of its /proc stat
	for t in /proc/"$serve_pid"/task/*; do
		[ "$(cat "$t/comm")" = "$1" ] && sed 's/.*) //' "$t/stat" | awk '{print $17}'
	done
}
wnice=$(nice_of docket-writer)
want=$((wnice + 10 > 19 ? 19 : wnice + 10))
expect_eq "$(nice_of docket-notes)" "$want" "the note writer runs 10 nice levels below the writer"

# 16 instances, started through the API at once (a bare `wait` would
# wait for the server too: every client is waited for by its pid)
pids=""
i=0
while [ $i -lt 16 ]; do
	curl -s -m 30 -o "$T/start.$i" -w '%{http_code}' -X POST -H "Authorization: Bearer $ANN" \
		-H 'Content-Type: application/json' -d '{"flow":"loop"}' "$base/api/instances" \
		>"$T/start.$i.code" &
	pids="$pids $!"
	i=$((i + 1))
done
wait $pids
pids=""
bad=0
: >"$T/ids"
i=0
while [ $i -lt 16 ]; do
	[ "$(cat "$T/start.$i.code")" = 201 ] || bad=$((bad + 1))
	jq -r .id "$T/start.$i" >>"$T/ids"
	i=$((i + 1))
done
expect_eq "$bad" 0 "16 concurrent starts answered 201"
expect_eq "$(sort -u "$T/ids" | grep -c .)" 16 "16 distinct instances"

# 64 requests at once: 3 pings on each of 15 instances (by ann and bob, no
# If-Match), 12 pings with If-Match "1" on the 16th (exactly one may win),
# 7 copies of one Idempotency-Key on the first instance.
hot=$(sed -n 16p "$T/ids")
first=$(sed -n 1p "$T/ids")
k=0
act() { # act FILE TOKEN ID [CURL ARGS]
	f=$1 tok=$2 id=$3
	shift 3
	curl -s -m 30 -o "$T/act.$f" -w '%{http_code}' -X POST -H "Authorization: Bearer $tok" \
		"$@" "$base/api/instances/$id/transitions/ping" >"$T/act.$f.code" &
	pids="$pids $!"
}
for id in $(sed -n 1,15p "$T/ids"); do
	act "p.$id.1" "$ANN" "$id"
	act "p.$id.2" "$BOB" "$id"
	act "p.$id.3" "$ANN" "$id"
done
while [ $k -lt 12 ]; do
	act "m.$k" "$BOB" "$hot" -H 'If-Match: "1"'
	k=$((k + 1))
done
k=0
while [ $k -lt 7 ]; do
	act "k.$k" "$ANN" "$first" -H 'Idempotency-Key: once-only'
	k=$((k + 1))
done
wait $pids

bad=0
for id in $(sed -n 1,15p "$T/ids"); do
	for j in 1 2 3; do
		[ "$(cat "$T/act.p.$id.$j.code")" = 200 ] || bad=$((bad + 1))
	done
done
expect_eq "$bad" 0 "45 plain concurrent acts all answered 200"
# (curl -w writes the status without a newline: one file, one status)
codes_of() { for f in "$@"; do cat "$f"; echo; done; }
won=$(codes_of "$T"/act.m.*.code | grep -c '^200$')
lost=$(codes_of "$T"/act.m.*.code | grep -c '^412$')
expect_eq "$won/$lost" "1/11" "If-Match \"1\" from 12 at once: one wins, 11 get 412"
codes=$(codes_of "$T"/act.k.*.code | sort -u | tr '\n' ' ')
expect_eq "$codes" "200 " "7 copies of one Idempotency-Key all answered 200"
bodies=$(for k in 0 1 2 3 4 5 6; do jq -c . "$T/act.k.$k"; done | sort -u | grep -c .)
expect_eq "$bodies" 1 "... with the same answer"

# The audit trail: what was acknowledged is there exactly once.
bad=0
for id in $(cat "$T/ids"); do
	case $id in
	"$hot") want=1 ;;
	"$first") want=4 ;; # 3 plain pings + the one keyed act
	*) want=3 ;;
	esac
	"$DOCKET" log "$id" --json >"$T/log.$id"
	fired=$(jq '[.[] | select(.type == "transition.fired")] | length' "$T/log.$id")
	seqs=$(jq -c '[.[].seq]' "$T/log.$id")
	gapless=$(jq -c '[range(1; length + 1)]' "$T/log.$id")
	"$DOCKET" show "$id" --json >"$T/show.$id"
	count=$(jq -r .vars.n "$T/show.$id")
	v=$(jq -r .version "$T/show.$id")
	if [ "$fired" != "$want" ] || [ "$count" != "$want" ] || [ "$seqs" != "$gapless" ] ||
		[ "$v" != $((want + 1)) ]; then
		echo "# instance $id: $fired fired, n=$count, version $v, seqs $seqs; wanted $want"
		bad=$((bad + 1))
	fi
done
expect_eq "$bad" 0 "each instance: acked acts fired once each, counter and version agree, no gap"
# the versions the winners were told are each a distinct step
vs=$(for f in "$T"/act.p.*; do case $f in *.code) ;; *) jq -r '"\(.instance) \(.version)"' "$f" ;; esac; done | sort -u | grep -c .)
expect_eq "$vs" 45 "the 45 plain acts were told 45 distinct (instance, version) pairs"

serve_stop
expect_eq "$serve_rc" 0 "serve stops cleanly after the burst"
grep 'writes in' "$T/serve.log" | sed 's/^/# /'

# ---- one request thread, many connections writing -------------------------
# A write waits for its commit with its connection suspended, not holding
# its request thread: with a pool of one thread, 48 acts at once on 16
# instances (3 each) are all answered, each a distinct version, and a GET
# sent meanwhile is answered too.
serve_start --threads 1 --no-timers --no-hooks
pids=""
for id in $(cat "$T/ids"); do
	for j in 1 2 3; do
		curl -s -m 30 -o "$T/one.$id.$j" -w '%{http_code}' -X POST \
			-H "Authorization: Bearer $BOB" \
			"$base/api/instances/$id/transitions/ping" >"$T/one.$id.$j.code" &
		pids="$pids $!"
	done
done
req GET "/api/instances/$first" "$ANN"
expect_code 200 "a GET is answered while 48 acts are in flight on one request thread"
wait $pids
pids=""
bad=0
for f in "$T"/one.*.code; do
	[ "$(cat "$f")" = 200 ] || bad=$((bad + 1))
done
expect_eq "$bad" 0 "48 concurrent acts through one request thread all answered 200"
vs=$(for f in "$T"/one.*; do case $f in *.code) ;; *) jq -r '"\(.instance) \(.version)"' "$f" ;; esac; done | sort -u | grep -c .)
expect_eq "$vs" 48 "... and told 48 distinct (instance, version) pairs"
bad=0
for id in $(cat "$T/ids"); do
	before=$(jq -r .version "$T/show.$id")
	"$DOCKET" show "$id" --json >"$T/show.$id"
	[ "$(jq -r .version "$T/show.$id")" = $((before + 3)) ] || bad=$((bad + 1))
done
expect_eq "$bad" 0 "each instance moved 3 versions, one per acknowledged act"
serve_stop
expect_eq "$serve_rc" 0 "serve with one request thread stops cleanly"
grep 'writes in' "$T/serve.log" | sed 's/^/# /'

# ---- kill -9 in the middle of a load --------------------------------------
serve_start --threads 16 --no-timers --no-hooks
: >"$T/acked"
w=0
while [ $w -lt 8 ]; do
	id=$(sed -n "$((w + 1))p" "$T/ids")
	(
		while :; do
			code=$(curl -s -m 30 -o "$T/last.$w" -w '%{http_code}' -X POST \
				-H "Authorization: Bearer $ANN" "$base/api/instances/$id/transitions/ping") ||
				exit 0
			[ "$code" = 200 ] || exit 0
			echo "$id $(jq -r .version "$T/last.$w")" >>"$T/acked"
		done
	) &
	eval "load_$w=\$!"
	w=$((w + 1))
done
sleep 2
kill -KILL "$serve_pid"
wait "$serve_pid" 2>/dev/null
serve_pid=""
w=0
while [ $w -lt 8 ]; do
	eval "wait \$load_$w"
	w=$((w + 1))
done
nacked=$(grep -c . "$T/acked")
[ "$nacked" -gt 0 ] && ok "acts were acknowledged before the kill ($nacked)" || not_ok "no act acknowledged under load"

serve_start --threads 16 --no-timers --no-hooks
missing=0
for id in $(cut -d' ' -f1 "$T/acked" | sort -u); do
	top=$(awk -v id="$id" '$1 == id && $2 > m { m = $2 } END { print m + 0 }' "$T/acked")
	req GET "/api/instances/$id" "$ANN"
	have=$(field .version)
	"$DOCKET" log "$id" --json >"$T/log.$id"
	fired=$(jq '[.[] | select(.type == "transition.fired")] | length' "$T/log.$id")
	# every acknowledged version is on disk, and each step left its event
	if [ "$have" -lt "$top" ] || [ "$fired" -ne $((have - 1)) ]; then
		echo "# instance $id: acknowledged version $top, found $have with $fired fired"
		missing=$((missing + 1))
	fi
done
expect_eq "$missing" 0 "after kill -9 and a restart every acknowledged act is there"
expect_eq "$(sqlite3 "$DOCKET_HOME/docket.db" 'PRAGMA integrity_check')" ok \
	"integrity_check ok after kill -9"
req POST "/api/instances/$first/transitions/ping" "$BOB"
expect_code 200 "the restarted server acts"
serve_stop
expect_eq "$serve_rc" 0 "serve stops cleanly"
done_testing
