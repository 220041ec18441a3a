# archive_restart.sh - an upload returns once its objects and the intent of
# its ref's move are on disk (one flush); the move itself may be lost with
# the power. Simulated here: the ref rolled back (or its file left empty,
# or gone) and the journal's boot id changed, as after a restart. The next
# docket command puts the refs forward before it reads them, so verify
# agrees with the database and plain git sees every upload.
. "$DOCKET_SRC/tests/lib.sh"
export DOCKET_NOW=2026-11-28T09:30:00Z DOCKET_USER=li
G() { git --git-dir="$DOCKET_HOME/archive.git" "$@"; }
J="$DOCKET_HOME/archive.git/docket-refs.journal"
REFS="$DOCKET_HOME/archive.git/refs/docket/instances"
# restarted: the journal written under another boot
restarted() { sed -i '1s/^docket-refs 1 boot .*/docket-refs 1 boot 00000000-0000-0000-0000-000000000000/' "$J"; }

if [ ! -r /proc/sys/kernel/random/boot_id ]; then
	ok "# SKIP no boot id on this system: uploads flush their refs instead"
	done_testing
	exit 0
fi
cat >"$T/flow.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" id="plan" version="1">
  <title>Plan</title>
  <role id="employee"/>
  <evidence id="report" multiple="true"/>
  <state id="draft" initial="true" assign="$initiator">
    <transition id="submit" to="done"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML
dk org load "$EX/org.xml"
dk deploy "$T/flow.xml"
expect_rc 0 "deploy"
dk start plan
a=$out
dk start plan
b=$out
printf 'one' >"$T/one.pdf"
printf 'two' >"$T/two.pdf"
printf 'three' >"$T/three.pdf"
dk attach "$a" "$T/one.pdf" --evidence report
expect_rc 0 "first upload"
first=$(G rev-parse "refs/docket/instances/$a")
dk attach "$a" "$T/two.pdf" --evidence report
expect_rc 0 "second upload"
second=$(G rev-parse "refs/docket/instances/$a")
dk attach "$b" "$T/three.pdf" --evidence report
expect_rc 0 "an upload to another instance"
third=$(G rev-parse "refs/docket/instances/$b")
grep -q "refs/docket/instances/$a $first $second" "$J" &&
	ok "the journal holds the intent of the second upload's move" ||
	not_ok "the journal lacks the second upload's intent"

# the power went: a's ref is back one upload, b's file is empty
printf '%s\n' "$first" >"$REFS/$a"
: >"$REFS/$b"
restarted
dk verify
expect_rc 0 "after the restart verify finds every upload"
expect_eq "$(G rev-parse "refs/docket/instances/$a")" "$second" "the rolled-back ref is put forward"
expect_eq "$(G rev-parse "refs/docket/instances/$b")" "$third" "the empty ref file is put right"
expect_eq "$(head -c 19 "$J")" "docket-refs 1 boot " "the journal starts again"
expect_eq "$(grep -c . "$J")" 1 "... holding only its boot line"
G fsck --strict >/dev/null 2>&1 && ok "git fsck is happy" || not_ok "git fsck finds damage"

# a lost new ref: the first upload of an instance
dk start plan
c=$out
dk attach "$c" "$T/one.pdf" --evidence report
expect_rc 0 "an instance's first upload"
tip=$(G rev-parse "refs/docket/instances/$c")
rm -f "$REFS/$c"
restarted
dk evidence get "$c" one.pdf -o "$T/got"
expect_rc 0 "after the restart the file reads back"
cmp -s "$T/got" "$T/one.pdf" && ok "byte for byte" || not_ok "the file read back differs"
expect_eq "$(G rev-parse "refs/docket/instances/$c")" "$tip" "the lost ref is made again"

# without a restart the journal is not consulted: a ref moved back is
# damage for verify to report (evidence.sh), not something to undo
printf '%s\n' "$first" >"$REFS/$a"
dk verify
expect_rc 1 "in the same boot a ref moved back is reported"
done_testing
