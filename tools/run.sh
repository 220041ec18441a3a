#!/bin/sh
# run.sh - what `make run` does: prepare the default home (DOCKET_HOME or
# ./.docket-home) with the example org and flows, make sure a demo token
# for user wei exists, print the inbox URL and the token, then serve in the
# foreground until Ctrl-C. Safe to run again: deploying the same bytes and
# loading the same org are no-ops, and the demo token is reused while it
# still works.
set -eu
DOCKET_HOME=${DOCKET_HOME:-.docket-home}
export DOCKET_HOME
listen=${DOCKET_LISTEN:-127.0.0.1:8080}
user=${DOCKET_DEMO_USER:-wei}

./docket check examples/*.xml >/dev/null
./docket org load examples/org.xml
for f in examples/*.xml; do
	case "$f" in */org.xml) continue ;; esac
	# A flow edited without raising its version= is refused; say so and
	# go on serving the version already deployed.
	./docket deploy "$f" || echo "run.sh: $f not deployed (see above)" >&2
done

# The store keeps tokens hashed, so the demo token itself is kept in the
# home (mode 600) to be printed again on the next run.
tokfile="$DOCKET_HOME/demo-token"
token=""
if [ -s "$tokfile" ]; then
	id=$(sed -n 2p "$tokfile")
	if ./docket token list --json | jq -e --argjson id "${id:-0}" \
		'.[] | select(.id == $id and .state == "active")' >/dev/null 2>&1; then
		token=$(sed -n 1p "$tokfile")
	fi
fi
if [ -z "$token" ]; then
	(umask 077 && ./docket token create --user "$user" --name demo --json >"$tokfile.json")
	token=$(jq -r .token "$tokfile.json")
	(umask 077 && printf '%s\n%s\n' "$token" "$(jq -r .id "$tokfile.json")" >"$tokfile")
	rm -f "$tokfile.json"
fi

echo
echo "docket is serving $DOCKET_HOME"
echo "  inbox:  http://$listen/inbox"
echo "  token for $user (paste it into the sign-in box):"
echo "    $token"
echo "  API:    curl -H 'Authorization: Bearer $token' http://$listen/api/inbox"
echo "Ctrl-C stops it."
echo
exec ./docket serve --listen "$listen"
