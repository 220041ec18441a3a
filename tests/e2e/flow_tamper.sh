# flow_tamper.sh - a deployed flow is loaded without its schema check only
# while its stored bytes hash as they did at deploy: a flow edited in the
# database afterwards (even into another valid flow) is refused by every
# command that loads it, with a message that says what to do, and nothing
# is written.
. "$DOCKET_SRC/tests/lib.sh"
export DOCKET_NOW=2026-11-28T09:30:00Z
export DOCKET_USER=li

file plan.xml '<flow xmlns="urn:docket:flow:1" id="tiny" version="1">
  <state id="draft" initial="true" assign="$initiator">
    <transition id="submit" to="done"/>
  </state>
  <state id="done" final="true"/>
</flow>'
dk deploy "$T/plan.xml"
expect_rc 0 "deploy"
dk start tiny
expect_rc 0 "start from the deployed flow"
id=$out
ver() { sqlite3 "$DOCKET_HOME/docket.db" "SELECT version FROM instances WHERE id='$id'"; }
v0=$(ver)

# the same flow, except that submit now goes nowhere valid... and then a
# quietly different but valid one: both are changes to what was deployed
sqlite3 "$DOCKET_HOME/docket.db" \
	"UPDATE flows SET bytes = replace(bytes, 'id=\"submit\"', 'id=\"submlt\"') WHERE flow_id='tiny'"
dk act "$id" submit
expect_rc 1 "act on a flow changed after deploy is refused"
expect_err "changed after it was deployed" "the message says the stored flow was changed"
expect_err "deploy the flow file again" "and what to do"
expect_eq "$(ver)" "$v0" "nothing was written"
dk start tiny
expect_rc 1 "start from it is refused too"

# put the deployed bytes back: the same hash, it loads again
sqlite3 "$DOCKET_HOME/docket.db" \
	"UPDATE flows SET bytes = replace(bytes, 'id=\"submlt\"', 'id=\"submit\"') WHERE flow_id='tiny'"
dk act "$id" submit
expect_rc 0 "the deployed bytes restored load again"
expect_out "draft -> done" "and the step fires"
done_testing
