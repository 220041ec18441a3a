# archive_journal_rotate.sh - two processes uploading at once far past the
# size of the ref journal (store/archive_refs.c): a journal of 64 KiB
# (DOCKET_TEST_JOURNAL_BYTES, read when it is made; for tests) holds the
# records of about thirty small uploads, and once half of it is live an
# upload retires them (one syncfs) while the others go on writing; so
# sixty uploads from two `docket attach` loops, two instances of their own
# and one they share, go round it more than once while the other process
# reserves records in it. Nothing is lost: every upload is on its ref,
# verify and plain git agree, and a restart afterwards recovers cleanly.
. "$DOCKET_SRC/tests/lib.sh"
export DOCKET_NOW=2026-11-28T09:30:00Z DOCKET_USER=li DOCKET_TEST_JOURNAL_BYTES=65536
G() { git --git-dir="$DOCKET_HOME/archive.git" "$@"; }
J="$DOCKET_HOME/archive.git/docket-refs.journal"
tail_of() { head -n 1 "$J" | sed -n 's/.* tail \([0-9]*\) .*/\1/p'; }
EACH=30

if [ ! -r /proc/sys/kernel/random/boot_id ]; then
	ok "# SKIP no boot id on this system: uploads flush with syncfs, no journal"
	done_testing
	exit 0
fi
report_flow
for v in a b shared; do
	dk start plan
	eval "$v=\$out"
done
dk archive sync
printf 'first' >"$T/first.pdf"
dk attach "$shared" "$T/first.pdf" --evidence report
expect_rc 0 "a first upload"
expect_eq "$(stat -c %s "$J")" 65536 "the journal is made at the size asked for"
expect_eq "$(tail_of)" 0 "nothing retired yet"

# loop P OWN: EACH uploads, alternately to its own instance and the shared one
loop() {
	i=0
	while [ $i -lt $EACH ]; do
		printf 'process %s upload %s\n' "$1" $i >"$T/$1-$i.pdf"
		if [ $((i % 2)) -eq 0 ]; then inst=$2; else inst=$shared; fi
		"$DOCKET" attach "$inst" "$T/$1-$i.pdf" --evidence report >/dev/null 2>>"$T/$1.err" ||
			echo "$1 $i" >>"$T/failed"
		i=$((i + 1))
	done
}
loop p "$a" &
p1=$!
loop q "$b" &
p2=$!
wait $p1 $p2
expect_eq "$(cat "$T/failed" 2>/dev/null | wc -l)" 0 "every upload of the two processes succeeded"
[ -s "$T/p.err" ] || [ -s "$T/q.err" ] && { cat "$T/p.err" "$T/q.err" | head -n 5 | sed 's/^/#   /'; }
[ "$(tail_of)" -gt 65536 ] && ok "the journal went round (tail at $(tail_of))" ||
	not_ok "the journal did not go round (tail at $(tail_of))"
expect_eq "$(stat -c %s "$J")" 65536 "... and never grew"
files() { G ls-tree -r "refs/docket/instances/$1" | grep -c .; }
expect_eq "$(files "$a")" $((EACH / 2)) "the first process's own uploads are all on its ref"
expect_eq "$(files "$b")" $((EACH / 2)) "the second's too"
expect_eq "$(files "$shared")" $((EACH + 1)) "and every upload to the shared instance"
dk verify
expect_rc 0 "verify agrees with the database"
G fsck --full --strict >"$T/fsck" 2>&1 && ok "git fsck --full is happy" ||
	{ not_ok "git fsck finds damage"; head -n 5 "$T/fsck" | sed 's/^/#   /'; }

# a restart: recovery reads the records since the last rotation
printf 00000000-0000-0000-0000-000000000000 | dd of="$J" bs=1 seek=22 conv=notrunc 2>/dev/null
dk verify
expect_rc 0 "after a restart verify still agrees"
expect_eq "$(files "$shared")" $((EACH + 1)) "nothing moved back"
done_testing
