# archive_spare.sh - `docket attach` writes its pack into the files of packs
# `docket archive gc` merged away (store/archive_spare.c): gc pools them in
# ARCHIVE/docket-spare/ instead of unlinking them, the next uploads take
# their inodes, and plain git reads and checks everything.
. "$DOCKET_SRC/tests/lib.sh"
export DOCKET_NOW=2026-11-28T09:30:00Z
A="$DOCKET_HOME/archive.git"
G() { git -c core.quotepath=off --git-dir="$A" "$@"; }
pool_inos() { ls -i "$A/docket-spare" 2>/dev/null | awk '$2 ~ /^pack-/ {print $1}' | sort; }
pack_inos() { ls -i "$A/objects/pack" | awk '$2 ~ /^pack-.*\.(pack|idx)$/ {print $1}' | sort; }

report_flow
dk start plan --as li
id=$out
expect_rc 0 "start"

report() { i=0; while [ $i -lt 150 ]; do echo "report $1 line $i"; i=$((i + 1)); done; }
for k in $(seq 1 12); do report "$k" >"$T/r$k.pdf"; done
for k in $(seq 1 12); do
	dk attach "$id" "$T/r$k.pdf" --evidence report --as li
	[ "$rc" -eq 0 ] || { not_ok "attach $k"; show_last; }
done
ok "twelve attaches"
dk archive gc
expect_rc 0 "archive gc"
pool_inos >"$T/pool"
npool=$(wc -l <"$T/pool")
[ "$npool" -ge 16 ] && ok "gc pooled the merged packs' files ($npool)" \
	|| not_ok "gc pooled the merged packs' files ($npool)"
pack_inos >"$T/before"

for k in 13 14 15; do
	report "$k" >"$T/r$k.pdf"
	dk attach "$id" "$T/r$k.pdf" --evidence report --as li
	expect_rc 0 "attach $k"
done
pack_inos >"$T/after"
comm -13 "$T/before" "$T/after" >"$T/new"
expect_eq "$(wc -l <"$T/new" | tr -d ' ')" 6 "three uploads wrote three packs and indexes"
expect_eq "$(comm -23 "$T/new" "$T/pool" | wc -l | tr -d ' ')" 0 \
	"every one of them is a pooled inode"
expect_eq "$(pool_inos | wc -l | tr -d ' ')" "$((npool - 6))" "and left the pool"
G fsck --full --strict >"$T/fsck" 2>&1 && ok "git fsck --full is happy" \
	|| { not_ok "git fsck --full is happy"; sed 's/^/# /' "$T/fsck"; }
bad=0
for k in $(seq 1 15); do
	G show "refs/docket/instances/$id:draft/report/r$k.pdf" | cmp -s - "$T/r$k.pdf" || bad=$((bad + 1))
done
expect_eq "$bad" 0 "git show reads back all fifteen uploads"
dk verify "$id"
expect_rc 0 "verify"
dk archive gc
expect_rc 0 "archive gc again"
[ "$(pool_inos | wc -l)" -le 256 ] && ok "the pool stays within its cap" || not_ok "the pool stays within its cap"
G fsck --full --strict >/dev/null 2>&1 && ok "git fsck --full after the second gc" \
	|| not_ok "git fsck --full after the second gc"
done_testing
