# flows_bad.sh - every broken or hostile file in tests/flows/bad/ is refused
# by `docket check` with exit status 1, nothing on stdout, and exactly the
# diagnostics in its sibling NAME.expected on stderr. Adding a case is adding
# NAME.xml and NAME.expected (write the lines by hand, or check the output of
# `docket check tests/flows/bad/NAME.xml` line by line before keeping it).
. "$DOCKET_SRC/tests/lib.sh"
cd "$DOCKET_SRC" || exit 1

count=0
for f in tests/flows/bad/*.xml; do
	[ -f "$f" ] || continue
	count=$((count + 1))
	name=$(basename "$f" .xml)
	want="${f%.xml}.expected"
	if [ ! -f "$want" ]; then
		not_ok "$name has a $want"
		continue
	fi
	dk check "$f"
	expect_rc 1 "$name is refused"
	if [ -z "$out" ]; then ok "$name prints nothing on stdout"; else
		not_ok "$name prints nothing on stdout"
		show_last
	fi
	if [ "$err" = "$(cat "$want")" ]; then ok "$name diagnostics"; else
		not_ok "$name diagnostics"
		printf '%s\n' "$err" >"$T/got"
		diff "$want" "$T/got" | sed 's/^/#   /'
	fi
	# every line is one of ours: no libxml2 noise
	if printf '%s\n' "$err" | grep -v "^$f:" >/dev/null; then
		not_ok "$name: every stderr line starts with $f:"
	else
		ok "$name: every stderr line starts with $f:"
	fi
done
if [ "$count" -ge 35 ]; then ok "at least 35 bad cases ($count)"; else
	not_ok "at least 35 bad cases (only $count)"
fi

# A file over the 4 MB limit is refused before it is parsed. It is made
# here rather than kept in the tree: 4 MB of padding in every clone for
# one line of diagnostics.
{
	printf '<?xml version="1.0" encoding="UTF-8"?>\n'
	printf '<flow xmlns="urn:docket:flow:1" xmlns:dk="urn:docket:fn" id="t" version="1">\n  <!-- '
	head -c 4194304 /dev/zero | tr '\0' 'p'
	printf ' -->\n  <state id="draft" initial="true"><transition id="submit" to="done"/></state>\n'
	printf '  <state id="done" final="true"/>\n</flow>\n'
} >"$T/huge.xml"
dk check "$T/huge.xml"
expect_rc 1 "a file over 4 MB is refused"
expect_eq "$err" "$T/huge.xml: error: the file is larger than the limit of 4194304 bytes (4 MB); a flow this big is a mistake, split it or remove what is not needed" \
	"huge: one line that names the limit and what to do"
expect_eq "$out" "" "huge prints nothing on stdout"

# All files at once: every file's problems, one exit status.
dk check tests/flows/bad/unknown-target.xml examples/monthly-plan.xml tests/flows/bad/no-initial.xml
expect_rc 1 "one bad file among several fails the run"
expect_out "examples/monthly-plan.xml: ok" "the good file among them is still reported ok"
expect_err "unknown-target.xml:7: error:" "first bad file reported"
expect_err "no-initial.xml:2: error:" "second bad file reported"

# --json carries the same diagnostics.
dk --json check tests/flows/bad/unknown-target.xml
expect_rc 1 "--json exits 1 on a bad file"
if printf '%s' "$out" | jq -e '.valid == false and .files[0].diagnostics[0].line == 7
	and .files[0].diagnostics[0].severity == "error"
	and (.files[0].diagnostics[0].message | startswith("transition '\''approve'\''"))' >/dev/null; then
	ok "--json diagnostics"
else
	not_ok "--json diagnostics"
	show_last
fi
done_testing
