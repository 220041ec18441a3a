# hooks_cli.sh - managing webhook subscriptions: what `hooks add` accepts
# and refuses, secrets shown once and never listed, enable/disable/remove,
# rotation, and the errors of deliveries/redeliver.
. "$DOCKET_SRC/tests/lib.sh"

dk hooks add ftp://example.com/hook
expect_rc 1 "a non-http scheme is refused"
expect_err "scheme 'ftp'" "the message names the scheme"
expect_err "http:// or https://" "and says what is allowed"
[ -e "$DOCKET_HOME" ] && not_ok "a refused add created the home" ||
	ok "a refused add leaves no trace"
dk hooks add file:///etc/passwd
expect_rc 1 "file:// is refused"
dk hooks add example.com/hook
expect_rc 1 "a URL without a scheme is refused"
dk hooks add https://example.com/hook --events task.assigned,task.asigned
expect_rc 1 "an unknown event type is refused"
expect_err "'task.asigned'" "the message names the bad type"
dk hooks add https://example.com/hook --secret whsec_c2hvcnQ=
expect_rc 1 "a short secret is refused"
expect_err "at least 24" "the message says how long"
dk hooks add https://example.com/hook --secret not-a-secret
expect_rc 1 "a secret without whsec_ is refused"
dk hooks add
expect_rc 2 "hooks add without a URL is a usage error"
dk hooks frob
expect_rc 2 "an unknown hooks command is a usage error"
dk hooks list
expect_rc 0 "nothing was stored by refused adds"
expect_out "no webhook subscriptions" "the list is empty"

dk hooks add https://example.com/hook --events task.assigned,task.reminder --flow monthly-plan
expect_rc 0 "hooks add succeeds"
expect_out "hook 1 added" "prints the id"
secret=$(printf '%s\n' "$out" | sed -n 's/^secret //p')
case "$secret" in whsec_*) ok "prints a generated whsec_ secret" ;;
*) not_ok "no secret printed: $out" ;; esac
nbytes=$(printf '%s' "${secret#whsec_}" | base64 -d 2>/dev/null | wc -c)
[ "$nbytes" -ge 24 ] && ok "the secret holds $nbytes random bytes (>= 24)" ||
	not_ok "secret holds $nbytes bytes"
dk --json hooks add http://127.0.0.1:9/x --secret "$secret"
expect_rc 0 "hooks add with a given secret"
[ "$(printf '%s' "$out" | jq -r '.id')" = 2 ] && ok "--json gives the id" || not_ok "json id: $out"
[ "$(printf '%s' "$out" | jq -r '.secret')" = null ] && ok "a given secret is not echoed" ||
	not_ok "secret echoed"
dk --json hooks add https://example.com/other
second=$(printf '%s' "$out" | jq -r .secret)
[ "$second" != "$secret" ] && ok "each generated secret differs" || not_ok "same secret twice"

dk hooks list
expect_rc 0 "hooks list"
expect_out "task.assigned task.reminder" "lists the events"
expect_out "monthly-plan" "lists the flow filter"
case "$out" in *whsec_*) not_ok "hooks list shows a secret" ;; *) ok "hooks list hides secrets" ;; esac
dk hooks list --json
case "$out" in *whsec_*) not_ok "hooks list --json shows a secret" ;;
*) ok "hooks list --json hides secrets" ;; esac
[ "$(printf '%s' "$out" | jq -r '.[0].events | join(",")')" = "task.assigned,task.reminder" ] &&
	ok "--json lists events" || not_ok "--json events: $out"
[ "$(printf '%s' "$out" | jq -r '.[1].events | length')" = 0 ] && ok "no --events means all" ||
	not_ok "default events: $out"

dk hooks disable 1
expect_rc 0 "disable"
dk hooks list --json
[ "$(printf '%s' "$out" | jq -r '.[0].enabled')" = false ] && ok "disabled shows" || not_ok "disable"
dk hooks enable 1
dk hooks list --json
[ "$(printf '%s' "$out" | jq -r '.[0].enabled')" = true ] && ok "enabled again" || not_ok "enable"
dk hooks disable 99
expect_rc 3 "disabling an unknown subscription is not found"
expect_err "hooks list" "and says where to look"
dk hooks remove abc
expect_rc 2 "a non-number is a usage error"

export DOCKET_NOW=2026-11-28T10:00:00Z
dk hooks rotate 1 --overlap PT2H
expect_rc 0 "rotate"
expect_out "until 2026-11-28T12:00:00Z" "the overlap ends when asked"
new=$(printf '%s\n' "$out" | sed -n 's/^secret //p')
case "$new" in whsec_*) [ "$new" != "$secret" ] && ok "rotate makes a new secret" ||
	not_ok "same secret after rotate" ;; *) not_ok "rotate printed no secret" ;; esac
dk hooks list --json
[ "$(printf '%s' "$out" | jq -r '.[0].old_secret_until')" = 2026-11-28T12:00:00Z ] &&
	ok "the overlap is listed" || not_ok "overlap: $out"
dk hooks rotate 1 --secret whsec_short
expect_rc 1 "rotate checks a given secret"
dk hooks rotate 1 --overlap tomorrow
expect_rc 2 "rotate checks the overlap"
unset DOCKET_NOW

dk hooks remove 2
expect_rc 0 "remove"
dk hooks remove 2
expect_rc 3 "removing twice is not found"

dk deliveries
expect_rc 0 "deliveries with none"
expect_out "no deliveries" "says so"
dk deliveries --json
[ "$out" = "[]" ] && ok "deliveries --json is an empty array" || not_ok "deliveries --json: $out"
dk deliveries --bogus
expect_rc 2 "deliveries rejects unknown options"
dk redeliver 42
expect_rc 3 "redeliver of an unknown delivery is not found"
dk redeliver x
expect_rc 2 "redeliver needs a number"
dk dispatch
expect_rc 0 "dispatch with an empty queue"
expect_out "0 attempts" "does nothing"
DOCKET_HOOK_TIMEOUT_MS=fast dk dispatch
expect_rc 1 "a bad DOCKET_HOOK_TIMEOUT_MS is refused"
expect_err "DOCKET_HOOK_TIMEOUT_MS" "and named"
DOCKET_HOOK_SCHEDULE="0,soon" dk dispatch
expect_rc 1 "a bad DOCKET_HOOK_SCHEDULE is refused"
done_testing
