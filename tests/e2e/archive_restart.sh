# archive_restart.sh - an upload returns once the journal's record of its
# round (its pack, the pack's index, the intent of its ref's move) is
# flushed (one fdatasync, store/archive_refs.c); the pack files and the
# move itself may be lost with the power. Simulated here: the packs the
# uploads wrote gone or cut short, the refs rolled back (or left empty, or
# gone) and the journal's boot id changed, as after a restart. The next
# docket command writes the packs again from the journal and puts the refs
# forward before it reads them, so verify agrees with the database and
# plain git sees every upload.
. "$DOCKET_SRC/tests/lib.sh"
export DOCKET_NOW=2026-11-28T09:30:00Z DOCKET_USER=li
G() { git --git-dir="$DOCKET_HOME/archive.git" "$@"; }
J="$DOCKET_HOME/archive.git/docket-refs.journal"
REFS="$DOCKET_HOME/archive.git/refs/docket/instances"
PACKS="$DOCKET_HOME/archive.git/objects/pack"
# restarted: the journal written under another boot (its first line is
# "docket-journal 2 boot ID salt ..."; the id rewritten in place)
restarted() {
	printf 00000000-0000-0000-0000-000000000000 |
		dd of="$J" bs=1 seek=22 conv=notrunc 2>/dev/null
}
packs() { ls "$PACKS" 2>/dev/null | grep '\.pack$' | sort; }

if [ ! -r /proc/sys/kernel/random/boot_id ]; then
	ok "# SKIP no boot id on this system: uploads flush their refs instead"
	done_testing
	exit 0
fi
report_flow
dk start plan
a=$out
dk start plan
b=$out
printf 'one' >"$T/one.pdf"
printf 'two' >"$T/two.pdf"
printf 'three' >"$T/three.pdf"
# the starts' notes first (flushed by syncfs): the packs after are the uploads'
dk archive sync
packs >"$T/packs.before"
dk attach "$a" "$T/one.pdf" --evidence report
expect_rc 0 "first upload"
first=$(G rev-parse "refs/docket/instances/$a")
dk attach "$a" "$T/two.pdf" --evidence report
expect_rc 0 "second upload"
second=$(G rev-parse "refs/docket/instances/$a")
dk attach "$b" "$T/three.pdf" --evidence report
expect_rc 0 "an upload to another instance"
third=$(G rev-parse "refs/docket/instances/$b")
grep -qa "refs/docket/instances/$a $first $second" "$J" &&
	ok "the journal holds the intent of the second upload's move" ||
	not_ok "the journal lacks the second upload's intent"
packs >"$T/packs.after"
comm -13 "$T/packs.before" "$T/packs.after" >"$T/packs.new"
expect_eq "$(grep -c . "$T/packs.new")" 3 "each upload wrote a pack"

# the power went: the packs gone or cut short (written, never flushed),
# a's ref back one upload, b's file empty
k=0
for p in $(cat "$T/packs.new"); do
	base="$PACKS/${p%.pack}"
	chmod u+w "$base.pack" "$base.idx"
	case $k in
	0) rm -f "$base.pack" "$base.idx" ;;
	1) truncate -s 100 "$base.pack" && : >"$base.idx" ;;
	2) rm -f "$base.idx" && truncate -s -1 "$base.pack" ;;
	esac
	k=$((k + 1))
done
printf '%s\n' "$first" >"$REFS/$a"
: >"$REFS/$b"
restarted
dk verify
expect_rc 0 "after the restart verify finds every upload"
expect_eq "$(G rev-parse "refs/docket/instances/$a")" "$second" "the rolled-back ref is put forward"
expect_eq "$(G rev-parse "refs/docket/instances/$b")" "$third" "the empty ref file is put right"
expect_eq "$(head -c 58 "$J" | cut -c 23-)" "$(cat /proc/sys/kernel/random/boot_id)" \
	"the journal starts again under this boot"
for p in $(cat "$T/packs.new"); do
	[ -s "$PACKS/$p" ] && [ -s "$PACKS/${p%.pack}.idx" ] || not_ok "$p is not back"
done
G fsck --full --strict >"$T/fsck" 2>&1 && ok "git fsck --full is happy" ||
	{ not_ok "git fsck finds damage"; head -n 5 "$T/fsck" | sed 's/^/#   /'; }
for f in one two; do
	dk evidence get "$a" $f.pdf -o "$T/got"
	cmp -s "$T/got" "$T/$f.pdf" && ok "$f.pdf reads back byte for byte" ||
		not_ok "$f.pdf read back differs"
done

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
