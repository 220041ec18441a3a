# flows_good.sh - every file in tests/flows/good/ passes `docket check`
# (exit 0, "ok" on stdout; stderr empty, or exactly NAME.expected when a
# case has one, for warnings), and every good flow draws: the DOT output is
# accepted by Graphviz and the Mermaid output is a state diagram.
. "$DOCKET_SRC/tests/lib.sh"
cd "$DOCKET_SRC" || exit 1

for f in tests/flows/good/*.xml; do
	[ -f "$f" ] || continue
	name=$(basename "$f" .xml)
	want="${f%.xml}.expected"
	dk check "$f"
	expect_rc 0 "$name passes"
	expect_out "$f: ok (" "$name summary"
	if [ -f "$want" ]; then
		if [ "$err" = "$(cat "$want")" ]; then ok "$name warnings"; else
			not_ok "$name warnings"
			printf '%s\n' "$err" >"$T/got"
			diff "$want" "$T/got" | sed 's/^/#   /'
		fi
	elif [ -z "$err" ]; then ok "$name says nothing on stderr"; else
		not_ok "$name says nothing on stderr"
		show_last
	fi
	case "$out" in *"(org,"*) continue ;; esac
	dk graph "$f"
	expect_rc 0 "$name graph"
	expect_out "digraph" "$name graph is DOT"
	if printf '%s\n' "$out" | dot -Tsvg >"$T/g.svg" 2>"$T/dot.err" && [ -s "$T/g.svg" ]; then
		ok "$name: dot -Tsvg accepts it"
	else
		not_ok "$name: dot -Tsvg accepts it"
		sed 's/^/#   /' "$T/dot.err"
	fi
	dk graph --format mermaid "$f"
	expect_rc 0 "$name mermaid"
	expect_out "stateDiagram-v2" "$name mermaid is a state diagram"
done

# The diagram of the richest flow shows what it should.
dk graph tests/flows/good/every-feature.xml
expect_out 'subgraph "cluster_checks"' "parallel drawn as a cluster"
expect_out '"closed" [label="已关闭 / Closed\n(closed)", shape=doublecircle' "final state is a double circle, Chinese title kept"
expect_out '"__start" -> "draft"' "entry point to the initial state"
expect_out '"review.1" -> "countersign" [label="approve [dept-head]"]' "edge labelled with transition and role"
dk graph --format mermaid tests/flows/good/every-feature.xml
expect_out '    state checks {' "parallel as a composite state"
expect_out '        --' "regions separated by --"
expect_out '    [*] --> draft' "initial state from [*]"
expect_out '    review_01 --> countersign : approve [dept-head]' "dotted id escaped for Mermaid"
expect_out '        l_1 --> l_2 : ok' "dashed ids escaped for Mermaid"
expect_out 'as _kend' "Mermaid keyword id escaped"

dk graph tests/flows/good/minimal.xml --format svg
expect_rc 2 "unknown format is a usage error"
dk graph tests/flows/bad/no-initial.xml
expect_rc 1 "graph of a broken flow fails"
expect_err "no-initial.xml:2: error:" "graph of a broken flow says why"
dk graph
expect_rc 2 "graph without a file is a usage error"
dk check
expect_rc 2 "check without a file is a usage error"
dk check tests/flows/good/no-such-file.xml
expect_rc 1 "check of a missing file fails"
expect_err "no-such-file.xml: error: no such file" "missing file named"
done_testing
