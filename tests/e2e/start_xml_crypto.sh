# start_xml_crypto.sh - the docket binary links neither libxml2 (nor the
# ICU, libstdc++, libz and liblzma it brings) nor libcrypto: the commands
# that parse no flow and hash nothing (help, an idle tick, list, inbox, log)
# never load them, the commands that do (check, deploy, org load, start,
# token create, dispatch's signatures) still load them and work, an act
# whose flow and org come back from their compiled forms loads no libxml2,
# and a library that cannot be loaded is a clear error that changes nothing.
# Counts of loaded libraries, not times: no timing on a shared machine.
. "$DOCKET_SRC/tests/lib.sh"
RECEIVER="$DOCKET_BUILD/tests/receiver"
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# LOADED_BY NAME ARGS...: the shared objects the dynamic loader opened for
# the command (at start or by dlopen), one path a line, in $T/NAME.libs
loaded_by() {
	name=$1
	shift
	LD_DEBUG=libs LD_DEBUG_OUTPUT="$T/$name.ld" "$DOCKET" "$@" >"$T/stdout" 2>"$T/stderr"
	rc=$?
	out=$(cat "$T/stdout")
	err=$(cat "$T/stderr")
	cat "$T/$name.ld".* 2>/dev/null | sed -n 's/.*calling init: //p' | sort -u >"$T/$name.libs"
	rm -f "$T/$name.ld".*
}
# NO_XML_CRYPTO NAME: neither libxml2, libcrypto nor what only libxml2
# brings (ICU) in $T/NAME.libs
no_xml_crypto() {
	if [ ! -s "$T/$1.libs" ]; then
		not_ok "docket $1 loads neither libxml2 nor libcrypto (LD_DEBUG printed nothing)"
		return
	fi
	bad=$(grep -E '/lib(xml2|crypto|icuuc|icudata)[.-]' "$T/$1.libs")
	if [ -z "$bad" ]; then ok "docket $1 loads neither libxml2 nor libcrypto"; else
		not_ok "docket $1 loads neither libxml2 nor libcrypto"
		printf '%s\n' "$bad" | sed 's/^/#   loaded: /'
	fi
}
# LOADED NAME LIB: LIB was loaded for the command
loaded() {
	if grep -q "/$2" "$T/$1.libs"; then ok "docket $1 loads $2"; else
		not_ok "docket $1 loads $2"
		sed 's/^/#   loaded: /' "$T/$1.libs"
	fi
}

needed=$(readelf -d "$DOCKET" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
case "$needed" in *libxml2* | *libcrypto*)
	not_ok "the docket binary links neither libxml2 nor libcrypto"
	printf '%s\n' "$needed" | sed 's/^/#   NEEDED: /' ;;
*) ok "the docket binary links neither libxml2 nor libcrypto" ;; esac
# a data symbol would have to come from a NEEDED library at start
vars=$(nm -D --undefined-only "$DOCKET" | grep -E ' (xml|html|OPENSSL|EVP|SHA|HMAC|RAND|CRYPTO)')
[ -z "$vars" ] && ok "the binary imports no libxml2 or libcrypto symbol" ||
	{ not_ok "the binary imports no libxml2 or libcrypto symbol"; printf '%s\n' "$vars" | sed 's/^/#   /'; }

# What needs them still loads them and works.
loaded_by check check "$DOCKET_SRC/bench/monthly-plan.xml"
expect_rc 0 "docket check"
loaded check libxml2
loaded_by org org load "$EX/org.xml"
expect_rc 0 "docket org load"
loaded org libxml2
sed 's#<requires evidence="[^"]*"/>##g' "$DOCKET_SRC/bench/monthly-plan.xml" >"$T/plan.xml"
loaded_by deploy deploy "$T/plan.xml"
expect_rc 0 "docket deploy"
loaded deploy libxml2
loaded deploy libcrypto

"$RECEIVER" --secret "$SECRET" --port-file "$T/port" --log "$T/log" &
rpid=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
dk hooks add "http://127.0.0.1:$(cat "$T/port")/hook" --secret "$SECRET" \
	--events transition.fired
expect_rc 0 "hooks add"

at 2026-11-02T09:00:00+08:00
loaded_by start --as li start bench-plan --var month=2026-11
expect_rc 0 "docket start"
id=$out
loaded start libxml2
loaded_by act --as li act "$id" submit
expect_rc 0 "docket act"
expect_out "draft -> review" "the act moved the instance"
# the flow and org come back from their compiled forms, review's
# assignment (dk:head-of) is simple: no libxml2; the action links of the
# enabled hook are signed with libcrypto
bad=$(grep -E '/lib(xml2|icuuc)[.-]' "$T/act.libs")
[ -z "$bad" ] && ok "docket act loads no libxml2" || not_ok "docket act loads no libxml2"
loaded act libcrypto

# review has a deadline: one tick fires its reminder, the next finds
# nothing due, with the timers still armed
dk tick
expect_rc 0 "a tick with something due"
loaded_by tick tick
expect_rc 0 "an idle docket tick"
expect_out "0 timers fired" "the second tick had nothing due"
no_xml_crypto tick
unset DOCKET_NOW

loaded_by help help
expect_rc 0 "docket help"
no_xml_crypto help
loaded_by list list
expect_rc 0 "docket list"
expect_out "$id" "list shows the instance"
no_xml_crypto list
loaded_by inbox --as wei inbox
expect_rc 0 "docket inbox"
no_xml_crypto inbox
loaded_by log log "$id"
expect_rc 0 "docket log"
expect_out "submit" "the log shows the act"
no_xml_crypto log
loaded_by flows flows
expect_rc 0 "docket flows"
no_xml_crypto flows

loaded_by token token create --user li
expect_rc 0 "docket token create"
loaded token libcrypto
no_xml() {
	bad=$(grep -E '/lib(xml2|icuuc)[.-]' "$T/$1.libs")
	[ -z "$bad" ] && ok "docket $1 loads no libxml2" || not_ok "docket $1 loads no libxml2"
}
no_xml token

# the act queued a signed transition.fired; the receiver checks the HMAC
loaded_by dispatch dispatch
expect_rc 0 "docket dispatch"
loaded dispatch libcrypto
kill "$rpid" && wait "$rpid"
jq -s -e 'length >= 1 and all(.[]; .verified == true)' "$T/log" >/dev/null &&
	ok "the receiver verified what dispatch signed" || { not_ok "signatures"; cat "$T/log"; }

# A library that cannot be loaded: the message names it and its package,
# the status is 1, and nothing is stored.
DOCKET_LIBXML2="$T/no/libxml2.so.2" dk deploy "$EX/appeal.xml"
expect_rc 1 "deploy without libxml2 fails"
expect_err "libxml2 could not be loaded" "the message names libxml2"
expect_err "Debian package libxml2" "and the package to install"
expect_err "DOCKET_LIBXML2" "and the variable that named the file"
expect_err "\`docket deploy\` needs it" "and the command"
dk flows
case "$out" in *appeal*) not_ok "the failed deploy stored nothing" ;;
*) ok "the failed deploy stored nothing" ;; esac

# A home whose flow and org were stored before their compiled forms were
# kept: the act parses them, and without libxml2 it stops before anything
# is committed.
v=$(get "$id" .version)
sqlite3 "$DOCKET_HOME/docket.db" "DELETE FROM compiled"
DOCKET_LIBXML2="$T/no/libxml2.so.2" dk --as wei act "$id" approve
expect_rc 1 "act without libxml2 fails"
expect_err "libxml2 could not be loaded" "the act's message names libxml2"
expect_eq "$(get "$id" .version)" "$v" "the failed act changed nothing"
expect_eq "$(sqlite3 "$DOCKET_HOME/docket.db" "SELECT count(*) FROM compiled")" "0" \
	"nor stored a compiled form"

DOCKET_LIBXML2="$T/no/libxml2.so.2" dk delegate --from wei --to li --until 2027-01-01
expect_rc 1 "delegate without libxml2 fails"
expect_err "\`docket delegate\` needs it" "the message names delegate"
dk delegations
case "$out" in *wei*) not_ok "the failed delegate stored nothing" ;;
*) ok "the failed delegate stored nothing" ;; esac

# show loads the flow only when it runs: the same message, status 1
DOCKET_LIBXML2="$T/no/libxml2.so.2" dk show "$id"
expect_rc 1 "show without libxml2 fails"
expect_err "libxml2 could not be loaded" "show's message names libxml2"

# deploying and loading the same files again keeps their compiled forms:
# then the act needs no libxml2 at all
dk deploy "$T/plan.xml"
expect_rc 0 "the same flow deployed again"
dk org load "$EX/org.xml"
expect_rc 0 "the same org loaded again"
expect_eq "$(sqlite3 "$DOCKET_HOME/docket.db" "SELECT group_concat(kind) FROM (SELECT kind FROM compiled ORDER BY kind)")" \
	"flow,org" "both compiled forms are kept again"
DOCKET_LIBXML2="$T/no/libxml2.so.2" dk --as wei act "$id" approve
expect_rc 0 "act from the compiled forms runs without libxml2"
expect_out "review -> in-progress" "and moves the instance"

dk token list --json
ntok=$(printf '%s' "$out" | jq length)
DOCKET_LIBCRYPTO="$T/no/libcrypto.so.3" dk token create --user li
expect_rc 1 "token create without libcrypto fails"
expect_err "libcrypto could not be loaded" "the message names libcrypto"
expect_err "Debian package libssl3" "and its package"
expect_err "DOCKET_LIBCRYPTO" "and the variable"
dk token list --json
expect_eq "$(printf '%s' "$out" | jq length)" "$ntok" "the failed create stored no token"

# and commands that need neither run without them
DOCKET_LIBXML2="$T/no/libxml2.so.2" DOCKET_LIBCRYPTO="$T/no/libcrypto.so.3" dk list
expect_rc 0 "list runs without libxml2 and libcrypto"
expect_out "$id" "and lists the instance"

done_testing
