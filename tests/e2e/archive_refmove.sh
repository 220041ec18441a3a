# archive_refmove.sh - `docket attach` moves the instance's ref without
# making or freeing a file (store/archive_refmove.c): each process claims a
# spare from ARCHIVE/docket-spare/, trades it with the ref, and gives the
# old ref file back; plain git reads, checks, packs and moves the ref as
# before, and a lock plain git holds is waited for.
. "$DOCKET_SRC/tests/lib.sh"
export DOCKET_NOW=2026-11-28T09:30:00Z
A="$DOCKET_HOME/archive.git"
G() { git -c core.quotepath=off --git-dir="$A" "$@"; }
ino() { stat -c %i "$1" 2>/dev/null; }
pool() { ls "$A/docket-spare" 2>/dev/null | grep '^free-' | wc -l; }

report_flow
dk start plan --as li
id=$out
expect_rc 0 "start"
REF="$A/refs/docket/instances/$id"

for k in 1 2 3 4 5; do printf 'report %s\n' "$k" >"$T/r$k.pdf"; done
dk attach "$id" "$T/r1.pdf" --evidence report --as li
expect_rc 0 "attach 1"
dk attach "$id" "$T/r2.pdf" --evidence report --as li
expect_rc 0 "attach 2"
# from here the ref and the pooled spare trade two inodes between processes
r2=$(ino "$REF")
s2=$(ls -i "$A/docket-spare" | awk '/ free-/ {print $1}')
expect_eq "$(pool)" 1 "the process gave its spare back to the pool"
dk attach "$id" "$T/r3.pdf" --evidence report --as li
expect_rc 0 "attach 3"
expect_eq "$(ino "$REF")" "$s2" "the next process moved the ref onto the pooled spare"
expect_eq "$(ls -i "$A/docket-spare" | awk '/ free-/ {print $1}')" "$r2" \
	"and pooled the old ref file"
expect_eq "$(G rev-list --count "refs/docket/instances/$id" -- draft/report | tr -d ' ')" 3 \
	"git log sees the three uploads"
G show "refs/docket/instances/$id:draft/report/r3.pdf" | cmp -s - "$T/r3.pdf" \
	&& ok "git show reads the last upload" || not_ok "git show reads the last upload"
G fsck --full --strict >"$T/fsck" 2>&1 && ok "git fsck --full is happy" || { not_ok "git fsck --full is happy"; sed 's/^/# /' "$T/fsck"; }
G gc --quiet && G fsck --full --strict >/dev/null 2>&1 \
	&& ok "git gc leaves docket-spare alone and the archive sound" || not_ok "git gc leaves the archive sound"
dk verify "$id"
expect_rc 0 "verify after git gc"

[ -e "$REF" ] || echo "# git gc packed the ref: the next attach makes its directory again"
# plain git holds the ref's lock for a second: attach waits, then lands
mkdir -p "$(dirname "$REF")"
G rev-parse "refs/docket/instances/$id" >"$T/tip"
( set -C; cat "$T/tip" >"$REF.lock" ) || not_ok "take the lock as git does"
(sleep 1; rm "$REF.lock" && touch "$T/released") &
dk attach "$id" "$T/r4.pdf" --evidence report --as li
expect_rc 0 "attach waits out a lock plain git holds"
wait
[ -e "$T/released" ] && ok "the lock was still git's to release" || not_ok "the lock was still git's to release"
expect_eq "$(G rev-list --count "refs/docket/instances/$id" -- draft/report | tr -d ' ')" 4 \
	"the upload after the lock is in the history"

# plain git moves the ref (checking its old value); docket goes on from it
tip=$(G rev-parse "refs/docket/instances/$id")
G update-ref -m "by hand" "refs/docket/instances/$id" "$tip" "$tip" \
	&& ok "git update-ref with the old value works" || not_ok "git update-ref with the old value works"
dk attach "$id" "$T/r5.pdf" --evidence report --as li
expect_rc 0 "attach after git update-ref"
expect_eq "$(G rev-parse "refs/docket/instances/$id~1")" "$tip" "attach built on the ref git wrote"
[ ! -e "$REF.lock" ] && ok "no lock left behind" || not_ok "no lock left behind"
dk verify "$id"
expect_rc 0 "verify at the end"
done_testing
