# evidence.sh - attach, evidence, evidence get and verify through the real
# binary: byte-exact round trips, refusals that store nothing, tampering
# with a blob, a row or a ref caught by verify, and a crash between the git
# commit and the database (DOCKET_FAULT=after-archive) repaired.
. "$DOCKET_SRC/tests/lib.sh"
export DOCKET_NOW=2026-11-28T09:30:00Z
G() { git -c core.quotepath=off --git-dir="$DOCKET_HOME/archive.git" "$@"; }
check() { if eval "$1"; then ok "$2"; else not_ok "$2"; show_last; fi; }
nrows() { "$DOCKET" evidence "$id" --json | jq length; }

cat >"$T/org.xml" <<'XML'
<org xmlns="urn:docket:org:1" timezone="Asia/Shanghai">
  <dept id="sales" name="销售公司" head="wei" division-leader="zhao"/>
  <user id="li" name="李明" email="li@example.com" dept="sales" roles="employee"/>
  <user id="wei" name="魏总" dept="sales" roles="dept-head"/>
  <user id="qian" name="钱" dept="sales" roles="employee"/>
  <user id="zhao" name="赵副总" dept="sales" roles="division-leader"/>
</org>
XML
cat >"$T/plan.xml" <<'XML'
<flow xmlns="urn:docket:flow:1" xmlns:dk="urn:docket:fn" id="plan" version="1">
  <title>Plan</title>
  <role id="employee"/>
  <evidence id="plan" types="pdf docx" max-size="1KB"/>
  <evidence id="report" multiple="true"/>
  <state id="draft" initial="true" assign="$initiator">
    <transition id="submit" to="review"><requires evidence="plan"/><requires evidence="report"/></transition>
  </state>
  <state id="review" assign="dk:head-of($initiator)" freeze="plan">
    <transition id="approve" to="done"/>
  </state>
  <state id="done" final="true"/>
</flow>
XML
dk org load "$T/org.xml"
expect_rc 0 "org load"
dk deploy "$T/plan.xml"
expect_rc 0 "deploy"
dk start plan --as li
id=$out
expect_rc 0 "start"

: >"$T/empty.pdf"
printf 'x' >"$T/one.pdf"
printf '%%PDF-1.7 二〇二六年工作计划\n' >"$T/计划.pdf"
head -c 3000000 /dev/urandom >"$T/big.bin"

dk attach "$id" "$T/empty.pdf" --evidence plan --as li
expect_rc 0 "attach a 0-byte file"
expect_out "sha256  e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "attach prints the SHA-256"
expect_out "size    0" "attach prints the size"
dk attach "$id" "$T/one.pdf" --evidence plan --as li
expect_rc 0 "attach a 1-byte file"
dk attach "$id" "$T/计划.pdf" --evidence plan --as li
expect_rc 0 "attach a Chinese-named file"
expect_out "name    计划.pdf" "the Chinese name is kept"
commit=$(printf '%s\n' "$out" | sed -n 's/^commit  //p')
dk attach "$id" "$T/big.bin" --evidence report --name "大文件.bin" --as li
expect_rc 0 "attach 3 MB under another name"
dk attach "$id" "$T/one.pdf" --evidence report --name second.txt --as li
expect_rc 0 "the same bytes under another name"

dk evidence "$id"
expect_rc 0 "evidence lists"
expect_out "计划.pdf" "the list names the files"
check '[ "$(nrows)" = 5 ]' "five rows"
for f in empty.pdf one.pdf 计划.pdf; do
	"$DOCKET" evidence get "$id" "$f" >"$T/back"
	check 'cmp -s "$T/back" "$T/$f"' "evidence get $f is byte-exact"
done
dk evidence get "$id" "大文件.bin" -o "$T/back.bin"
expect_rc 0 "evidence get -o"
check 'cmp -s "$T/back.bin" "$T/big.bin"' "3 MB file byte-exact through -o"
dk evidence get "$id" nope.pdf
expect_rc 3 "evidence get of an unknown name is not found"
check '[ "$(G log --format=%s refs/docket/instances/$id | grep -c "^attach ")" = 5 ]' "one git commit per upload"
check 'G log -1 --format=%B "$commit" | grep -q "^Docket-Sha256: $(sha256sum "$T/计划.pdf" | cut -c1-64)$"' "the commit carries the SHA-256 trailer"
check 'G log -1 --format="%an <%ae>" "$commit" | grep -q "李明 <li@example.com>"' "the author is the uploader from the org"

before=$(G rev-parse refs/docket/instances/$id)
dk attach "$id" "$T/one.pdf" --evidence plan --name "../../etc/passwd" --as li
expect_rc 1 "a path in --name is refused"
expect_err "--name" "the refusal says what to do"
dk attach "$id" "$T/one.pdf" --evidence plan --name ".git" --as li
expect_rc 1 ".git is refused"
printf 'MZ' >"$T/virus.exe"
dk attach "$id" "$T/virus.exe" --evidence plan --as li
expect_rc 1 "a wrong type is refused"
head -c 2048 /dev/zero >"$T/large.pdf"
dk attach "$id" "$T/large.pdf" --evidence plan --as li
expect_rc 1 "an oversize file is refused"
expect_err "at most" "the refusal names the limit"
dk attach "$id" "$T/one.pdf" --evidence plan --as li
expect_rc 5 "a name already used is a conflict"
dk attach "$id" "$T/one.pdf" --evidence plan --name other.pdf --as qian
expect_rc 4 "someone else may not attach"
dk attach "$id" "$T/one.pdf" --evidence nosuch --as li
expect_rc 3 "an unknown kind is not found"
check '[ "$(G rev-parse refs/docket/instances/$id)" = "$before" ]' "refusals added no commit"
check '[ "$(nrows)" = 5 ]' "refusals added no row"

dk verify
expect_rc 0 "verify a sound archive"
expect_out "0 problems" "verify says so"

# a crash between the git commit and the database
DOCKET_FAULT=after-archive "$DOCKET" attach "$id" "$T/one.pdf" --evidence report --name crash.txt --as li >"$T/o" 2>&1
check '[ $? -eq 1 ]' "the fault hook stops attach after git"
check '[ "$(nrows)" = 5 ]' "the database has no row for it"
dk verify "$id"
expect_rc 1 "verify finds the unrecorded commit"
expect_out "unrecorded" "verify names it unrecorded"
expect_out "crash.txt" "verify names the file"
dk verify --repair
expect_rc 0 "verify --repair records it"
expect_out "repaired" "repair says what it did"
check '[ "$(nrows)" = 6 ]' "the row is there now"
dk verify
expect_rc 0 "verify is clean after repair"

# the engine sees the uploads: submit needs plan, then plan is frozen
dk act "$id" submit --as li
expect_rc 0 "submit with a plan attached"
dk attach "$id" "$T/one.pdf" --evidence plan --name later.pdf --as li
expect_rc 6 "plan is frozen in review"
expect_err "frozen" "the refusal says why"

# tampering with a database row
sqlite3 "$DOCKET_HOME/docket.db" "UPDATE evidence SET sha256='00$(printf '%062d' 0)' WHERE name='one.pdf'"
dk verify
expect_rc 1 "a tampered row is caught"
expect_out "altered" "reported as altered"
sqlite3 "$DOCKET_HOME/docket.db" "UPDATE evidence SET sha256='$(sha256sum "$T/one.pdf" | cut -c1-64)' WHERE name='one.pdf'"
dk verify
expect_rc 0 "restored row verifies"

# tampering with a blob: swap one object file for another (each upload
# wrote its objects as one pack: plain git makes them loose files first)
for p in "$DOCKET_HOME"/archive.git/objects/pack/*.pack; do
	[ -f "$p" ] || continue
	mv "$p" "$T/exploding.pack" && rm -f "${p%.pack}.idx" &&
		G unpack-objects -q <"$T/exploding.pack" && rm -f "$T/exploding.pack"
done
b1=$(G rev-parse "refs/docket/instances/$id:draft/plan/one.pdf")
b2=$(G rev-parse "refs/docket/instances/$id:draft/plan/计划.pdf")
o1="$DOCKET_HOME/archive.git/objects/$(echo "$b1" | cut -c1-2)/$(echo "$b1" | cut -c3-)"
o2="$DOCKET_HOME/archive.git/objects/$(echo "$b2" | cut -c1-2)/$(echo "$b2" | cut -c3-)"
cp "$o1" "$T/o1.keep"
chmod u+w "$o1" && cp "$o2" "$o1"
dk verify --json
expect_rc 1 "a tampered blob is caught"
check 'printf "%s" "$out" | jq -e ".problems[] | select(.name == \"one.pdf\" and .problem == \"altered\")" >/dev/null' "verify --json names the altered file"
dk evidence get "$id" one.pdf
expect_rc 1 "evidence get refuses to serve a damaged blob"
cp "$T/o1.keep" "$o1"

# tampering with a ref: move it back one upload
G update-ref "refs/docket/instances/$id" "$commit"
dk verify
expect_rc 1 "a ref moved back is caught"
expect_out "missing" "files after that commit are missing"
done_testing
