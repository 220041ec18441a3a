# hooks_receiver.sh - the test receiver against requests signed by an
# independent implementation (the openssl and curl command lines): it must
# accept a good signature, refuse a forged or stale one, deduplicate by
# webhook-id and fail on demand.
. "$DOCKET_SRC/tests/lib.sh"
RECEIVER="$DOCKET_BUILD/tests/receiver"
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEYHEX=$(printf '%s' "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')

start_receiver() { # args...
	rm -f "$T/port"
	"$RECEIVER" --secret "$SECRET" --port-file "$T/port" --log "$T/log" "$@" &
	rpid=$!
	i=0
	while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(cat "$T/port")
}
stop_receiver() { kill "$rpid" && wait "$rpid"; }

# post ID TS BODY [SIG]: signs with openssl unless SIG is given; sets $code
post() {
	sig=${4:-v1,$(printf '%s.%s.%s' "$1" "$2" "$3" |
		openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEYHEX" -binary | base64)}
	code=$(curl -s -o /dev/null -D "$T/hdr" -w '%{http_code}' -X POST -H "webhook-id: $1" \
		-H "webhook-timestamp: $2" -H "webhook-signature: $sig" \
		-H 'Content-Type: application/json' --data-binary "$3" "http://127.0.0.1:$port/")
}
expect_code() {
	if [ "$code" = "$1" ]; then ok "$2"; else not_ok "$2 (got $code, expected $1)"; fi
}
line() { sed -n "${1}p" "$T/log" | jq -r "$2"; }

now=$(date +%s)
start_receiver
case "$port" in [1-9]*) ok "port 0 picks a port and writes it" ;; *) not_ok "no port file" ;; esac
post 1 "$now" '{"a":1}'
expect_code 200 "a signature made by openssl verifies"
[ "$(line 1 .verified)" = true ] && ok "recorded as verified" || not_ok "recorded as verified"
[ "$(line 1 .body)" = '{"a":1}' ] && ok "body recorded as sent" || not_ok "body recorded"
post 1 "$now" '{"a":1}'
expect_code 200 "a repeat is acknowledged"
[ "$(line 2 .duplicate)" = true ] && ok "a repeated id is a duplicate" || not_ok "duplicate"
post 2 "$now" '{"a":2}' "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
expect_code 401 "a forged signature is refused"
post 3 "$now" '{"a":3}' "v1,AAAA $(printf '%s.%s.%s' 3 "$now" '{"a":3}' |
	openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEYHEX" -binary | base64 | sed 's/^/v1,/')"
expect_code 200 "any one matching signature of several will do"
post 4 $((now - 400)) '{"a":4}'
expect_code 401 "a timestamp 400 s old is refused"
post 5 $((now + 400)) '{"a":5}'
expect_code 401 "a timestamp 400 s ahead is refused"
stop_receiver

# the receiver's clock can follow DOCKET_NOW through a file
echo "2026-01-01T00:00:00Z" >"$T/now"
start_receiver --now-file "$T/now"
post 6 "$(date -u -d 2026-01-01T00:04:00Z +%s)" '{}'
expect_code 200 "tolerance is measured from the now file"
post 7 "$now" '{}'
expect_code 401 "the real clock is not used with a now file"
stop_receiver

: >"$T/log"
start_receiver --fail 2 --status 503 --retry-after 7
post 8 "$now" '{}'
expect_code 503 "fails on demand"
grep -qi '^retry-after: 7' "$T/hdr" && ok "with the Retry-After asked for" || not_ok "Retry-After"
post 8 "$now" '{}'
expect_code 503 "fails twice"
post 8 "$now" '{}'
expect_code 200 "then recovers"
[ "$(line 3 .duplicate)" = false ] && ok "a failed attempt is no acknowledgement" ||
	not_ok "failed attempts must not count as acknowledged"
ra=$(curl -s -D - -o /dev/null -X POST --data-binary x "http://127.0.0.1:$port/" | tr -d '\r' |
	grep -i '^retry-after:' || true)
[ -z "$ra" ] && ok "no Retry-After on a refusal not asked for" || not_ok "Retry-After on 401: $ra"
stop_receiver

start_receiver --fail 1 --status 302
post 9 "$now" '{}'
expect_code 302 "can answer with a redirect"
stop_receiver
done_testing
