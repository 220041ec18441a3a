# flows_examples.sh - every example flow and the org directory pass
# `docket check`, and every example flow draws with Graphviz.
. "$DOCKET_SRC/tests/lib.sh"
cd "$DOCKET_SRC" || exit 1

for f in examples/*.xml; do
	[ -f "$f" ] || continue
	dk check "$f"
	expect_rc 0 "check $f"
	expect_out "$f: ok (" "check $f prints its summary"
done

dk check examples/*.xml
expect_rc 0 "check of all examples at once"

for f in examples/*.xml; do
	case "$f" in */org.xml) continue ;; esac
	dk graph "$f"
	expect_rc 0 "graph $f"
	if printf '%s\n' "$out" | dot -Tsvg >/dev/null 2>"$T/dot.err"; then
		ok "dot accepts the graph of $f"
	else
		not_ok "dot accepts the graph of $f"
		sed 's/^/#   /' "$T/dot.err"
	fi
	dk graph "$f" --format mermaid
	expect_rc 0 "mermaid graph of $f"
	expect_out "stateDiagram-v2" "mermaid graph of $f is a state diagram"
done
done_testing
