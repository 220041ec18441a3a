# run_race.sh - two processes act on one instance at once, many times:
# exactly one wins each round, the other gets exit 5, and the audit trail
# has no gap and no duplicate. Then kill -9 in the middle of a run of acts:
# every act that reported success is still there and the database is sound.
. "$DOCKET_SRC/tests/lib.sh"

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
dk start loop --as ann
id=$out

rounds=25
bad=0
i=0
while [ $i -lt $rounds ]; do
	v=$("$DOCKET" show "$id" --json | jq -r .version)
	"$DOCKET" act "$id" ping --as ann --expect-version "$v" >/dev/null 2>&1 &
	p1=$!
	"$DOCKET" act "$id" ping --as bob --expect-version "$v" >/dev/null 2>&1 &
	p2=$!
	wait $p1
	r1=$?
	wait $p2
	r2=$?
	case "$r1$r2" in 05 | 50) ;; *) bad=$((bad + 1)); echo "# round $i: statuses $r1 and $r2" ;; esac
	i=$((i + 1))
done
[ $bad -eq 0 ] && ok "each of $rounds rounds: one wins, the other gets 5" || not_ok "$bad of $rounds rounds went wrong"
dk show "$id" --json
[ "$(printf '%s' "$out" | jq -r .vars.n)" = $rounds ] && ok "the counter saw every winning act once" || { not_ok "counter"; show_last; }
dk log "$id" --json
seqs=$(printf '%s' "$out" | jq -c '[.[].seq]')
want=$(printf '%s' "$out" | jq -c '[range(1; length+1)]')
[ "$seqs" = "$want" ] && ok "audit trail has no gap or duplicate" || not_ok "audit seqs $seqs"

# kill -9 in the middle of a run of acts
dk start loop --as ann
id2=$out
: >"$T/acked"
(
	while :; do
		"$DOCKET" act "$id2" ping --as ann --json >"$T/last" 2>/dev/null || exit 0
		jq -r .version "$T/last" >>"$T/acked"
	done
) &
loop=$!
sleep 2
pkill -9 -P $loop docket 2>/dev/null
kill -9 $loop 2>/dev/null
wait $loop 2>/dev/null
acked=$(tail -n 1 "$T/acked")
dk show "$id2" --json
have=$(printf '%s' "$out" | jq -r .version)
if [ -n "$acked" ] && [ "$have" -ge "$acked" ]; then
	ok "after kill -9 every acknowledged act is on disk ($acked acked, version $have)"
else
	not_ok "acknowledged version $acked, found $have"
fi
[ "$(sqlite3 "$DOCKET_HOME/docket.db" 'PRAGMA integrity_check')" = ok ] && ok "integrity_check ok after kill -9" || not_ok "integrity_check"
dk act "$id2" close --as bob
expect_rc 0 "the instance still works after the crash"
done_testing
