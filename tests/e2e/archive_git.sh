# archive_git.sh - the evidence archive seen from outside: files put with
# tests/tools/archive_put, read back by plain git, packed by
# `docket archive gc`, copied by `docket archive push`.
. "$(dirname "$0")/../lib.sh"
PUT="$DOCKET_BUILD/tests/archive_put"
export DOCKET_NOW=2026-11-28T09:30:00Z DOCKET_USER=li
G() { git -c core.quotepath=off --git-dir="$DOCKET_HOME/archive.git" "$@"; }

printf '%%PDF-1.7 plan\n' >"$T/plan.pdf"
head -c 300000 /dev/urandom >"$T/scan.bin"
: >"$T/empty"

"$PUT" "$DOCKET_HOME" i-1 draft plan "月度计划.pdf" "$T/plan.pdf" >"$T/p1" 2>&1
expect_rc_of() { rc=$1; expect_rc 0 "$2"; }
expect_rc_of $? "put a Chinese-named file"
"$PUT" "$DOCKET_HOME" i-1 draft scan scan.bin "$T/scan.bin" >/dev/null 2>&1
expect_rc_of $? "put a binary file"
"$PUT" "$DOCKET_HOME" i-1 draft plan empty.pdf "$T/empty" >/dev/null 2>&1
expect_rc_of $? "put an empty file"
cat "$T/plan.pdf" | "$PUT" "$DOCKET_HOME" i-2 review plan piped.pdf - >/dev/null 2>&1
expect_rc_of $? "put from a pipe"

out=$(G log --format='%an <%ae> %cn|%s' refs/docket/instances/i-1)
case "$out" in *"li <li@docket.invalid> docket|attach plan/月度计划.pdf"*) ok "git log shows the upload and its author" ;;
*) not_ok "git log shows the upload and its author"; echo "# $out" ;; esac
sha=$(sha256sum "$T/plan.pdf" | cut -d' ' -f1)
out=$(G log --format='%(trailers:key=Docket-Sha256,valueonly)' refs/docket/instances/i-1 | grep -c "$sha")
[ "$out" = 1 ] && ok "git log reads the Docket-Sha256 trailer" || not_ok "git log reads the Docket-Sha256 trailer"
G show "refs/docket/instances/i-1:draft/plan/月度计划.pdf" >"$T/back.pdf"
cmp -s "$T/plan.pdf" "$T/back.pdf" && ok "git show gives the file byte-exact" || not_ok "git show gives the file byte-exact"
G show "refs/docket/instances/i-1:draft/scan/scan.bin" | cmp -s - "$T/scan.bin" \
	&& ok "git show gives a binary file byte-exact" || not_ok "git show gives a binary file byte-exact"
[ "$(G cat-file -s refs/docket/instances/i-1:draft/plan/empty.pdf)" = 0 ] \
	&& ok "the empty file is empty" || not_ok "the empty file is empty"
[ "$(G rev-list --count refs/docket/instances/i-1)" = 3 ] \
	&& ok "one commit per upload, in a parent chain" || not_ok "one commit per upload, in a parent chain"

"$PUT" "$DOCKET_HOME" i-1 draft plan big.pdf "$T/scan.bin" 1000 >"$T/o" 2>&1
rc=$?; expect_rc 1 "oversize refused"
grep -q "accepts at most" "$T/o" && ok "oversize message says the limit" || not_ok "oversize message says the limit"
"$PUT" "$DOCKET_HOME" i-1 draft plan ../../etc/passwd "$T/plan.pdf" >"$T/o" 2>&1
rc=$?; expect_rc 1 "path traversal refused"
[ "$(G rev-list --count refs/docket/instances/i-1)" = 3 ] \
	&& ok "refused uploads add no commit" || not_ok "refused uploads add no commit"

# uploads write packs (one each); a loose object, as plain git writes one,
# is packed by gc
echo "written by plain git" | G hash-object -w --stdin >/dev/null
dk archive gc
expect_rc 0 "archive gc"
expect_out "packed 1 objects" "archive gc packs loose objects"
dk --json archive gc
expect_out '"packed":0' "a second gc has nothing to pack"
G fsck --strict >/dev/null 2>&1 && ok "git fsck is happy after gc" || not_ok "git fsck is happy after gc"
G show "refs/docket/instances/i-1:draft/plan/月度计划.pdf" | cmp -s - "$T/plan.pdf" \
	&& ok "files read back after gc" || not_ok "files read back after gc"

# more packs than DK_ARCHIVE_AUTO_PACKS (each upload writes one): gc merges
# them by copying their entries as they are; git checks the merged pack
i=0
while [ $i -lt 36 ]; do
	printf 'report %d\n' $i >"$T/r"
	"$PUT" "$DOCKET_HOME" i-3 draft report "r$i.pdf" "$T/r" >/dev/null 2>&1 || break
	i=$((i + 1))
done
expect_eq "$i" 36 "36 more uploads"
dk archive gc
expect_rc 0 "archive gc merges the packs"
packs=$(ls "$DOCKET_HOME/archive.git/objects/pack" | grep -c '\.pack$')
[ "$packs" -le 3 ] && ok "few packs after gc ($packs)" || not_ok "few packs after gc ($packs)"
bad=0
for idx in "$DOCKET_HOME"/archive.git/objects/pack/*.idx; do
	git verify-pack -v "$idx" >/dev/null 2>&1 || bad=1
done
expect_eq "$bad" 0 "git verify-pack accepts every pack"
G fsck --full --strict >/dev/null 2>&1 && ok "git fsck --full is happy after the merge" ||
	not_ok "git fsck --full is happy after the merge"
[ "$(G show refs/docket/instances/i-3:draft/report/r7.pdf)" = "report 7" ] &&
	ok "git show reads a merged file" || not_ok "git show reads a merged file"
[ "$(G log --format=%s refs/docket/instances/i-3 | wc -l)" = 36 ] &&
	ok "git log reads the merged history" || not_ok "git log reads the merged history"

# a pack with a byte flipped inside an entry is not merged: gc says which
# pack is damaged and keeps every pack
for i in 0 1 2; do
	printf 'late %d\n' $i >"$T/r"
	"$PUT" "$DOCKET_HOME" i-4 draft report "l$i.pdf" "$T/r" >/dev/null 2>&1
done
tip=$(G rev-parse refs/docket/instances/i-4)
victim=
for idx in "$DOCKET_HOME"/archive.git/objects/pack/*.idx; do
	git show-index <"$idx" | grep -q "$tip" && victim="${idx%.idx}.pack"
done
before=$(ls "$DOCKET_HOME/archive.git/objects/pack" | sort)
chmod u+w "$victim"
byte=$(od -An -tu1 -j 20 -N 1 "$victim" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 16)))" | dd of="$victim" bs=1 seek=20 conv=notrunc 2>/dev/null
dk archive gc
[ "$rc" -ne 0 ] && ok "gc fails on a damaged pack" || not_ok "gc fails on a damaged pack"
expect_err "is damaged" "the message says a pack is damaged"
expect_err "the old ones are kept" "and that the old packs are kept"
expect_eq "$(ls "$DOCKET_HOME/archive.git/objects/pack" | sort)" "$before" "every pack is kept, nothing added"
printf "\\$(printf %o "$byte")" | dd of="$victim" bs=1 seek=20 conv=notrunc 2>/dev/null
dk archive gc
expect_rc 0 "gc merges once the byte is back"
G fsck --full --strict >/dev/null 2>&1 && ok "git fsck --full is happy then" ||
	not_ok "git fsck --full is happy then"

dk archive push "$T/backup.git"
expect_rc 0 "archive push to a new local path"
expect_out "pushed 4 instance refs" "push names what it copied"
dk archive push "$T/backup.git"
expect_rc 0 "archive push again is a no-op"
[ "$(git --git-dir="$T/backup.git" rev-parse refs/docket/instances/i-1)" = "$(G rev-parse refs/docket/instances/i-1)" ] \
	&& ok "the remote has the same tip" || not_ok "the remote has the same tip"
dk archive push
expect_rc 2 "archive push without a remote is a usage error"
dk archive frobnicate
expect_rc 2 "unknown archive command"
done_testing
