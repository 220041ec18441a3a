# start_cost.sh - what a docket process loads before it works: the binary
# links neither libcurl, libmicrohttpd nor libgit2 (their ~50 libraries
# were most of the cost of every `docket tick` and `docket act`), tick and
# act never load the first two, act never libgit2 (its archive note is
# written by a catch-up) and tick only when notes wait for it, the commands
# that need them still do (libgit2 still without reading the CA bundle), and a library
# that cannot be loaded is a clear error that changes nothing. Counts, not
# times: no timing on a shared machine.
. "$DOCKET_SRC/tests/lib.sh"

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
# NOT_LOADED NAME WHAT: neither library nor what only they bring in (GnuTLS,
# nghttp2, LDAP, RTMP, libpsl) in $T/NAME.libs
not_loaded() {
	bad=$(grep -E '/lib(curl|microhttpd|gnutls|nghttp2|ldap|rtmp|psl)[.-]' "$T/$1.libs")
	if [ -z "$bad" ]; then ok "$2"; else
		not_ok "$2"
		printf '%s\n' "$bad" | sed 's/^/#   loaded: /'
	fi
}
loaded() {
	if grep -q "/$2" "$T/$1.libs"; then ok "$3"; else
		not_ok "$3"
		sed 's/^/#   loaded: /' "$T/$1.libs"
	fi
}

needed=$(readelf -d "$DOCKET" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
case "$needed" in *libcurl* | *libmicrohttpd* | *libgit2*)
	not_ok "the docket binary links neither libcurl, libmicrohttpd nor libgit2"
	printf '%s\n' "$needed" | sed 's/^/#   NEEDED: /' ;;
*) ok "the docket binary links neither libcurl, libmicrohttpd nor libgit2" ;; esac

sed 's#<requires evidence="[^"]*"/>##g' "$DOCKET_SRC/bench/monthly-plan.xml" >"$T/plan.xml"
dk org load "$EX/org.xml"
expect_rc 0 "org load"
dk deploy "$T/plan.xml"
expect_rc 0 "deploy"
id=$("$DOCKET" --as li start bench-plan --var month=2026-11)
dk --as li act "$id" submit
expect_rc 0 "start and submit an instance"

loaded_by help help
expect_rc 0 "docket help"
[ -s "$T/help.libs" ] && ok "LD_DEBUG shows what a command loads" ||
	not_ok "LD_DEBUG=libs printed nothing: the checks below would prove nothing"
not_loaded help "docket help loads no network library"
no_git() {
	bad=$(grep -E '/lib(git2|mbedtls|ssh2)[.-]' "$T/$1.libs")
	if [ -z "$bad" ]; then ok "$2"; else
		not_ok "$2"
		printf '%s\n' "$bad" | sed 's/^/#   loaded: /'
	fi
}
no_git help "docket help loads no libgit2"

at 2026-11-02T09:00:00+08:00
# the start and the submit wait for their notes: this tick writes them
loaded_by tickw tick
expect_rc 0 "docket tick with notes waiting"
expect_out "2 archive notes written" "the tick wrote the two notes waiting"
not_loaded tickw "docket tick loads no network library"
loaded tickw libgit2 "a tick with notes waiting loads libgit2 to write them"
loaded_by tick tick
expect_rc 0 "docket tick"
expect_out "fired" "tick reports what it fired"
not_loaded tick "docket tick loads no network library"
no_git tick "an idle docket tick (no timer due, no note waiting) loads no libgit2"
unset DOCKET_NOW

loaded_by act --as wei act "$id" approve
expect_rc 0 "docket act"
expect_out "review -> in-progress" "the act moved the instance"
not_loaded act "docket act loads no network library"
no_git act "docket act loads no libgit2 (its note is written by a catch-up)"
loaded_by start --as li start bench-plan --var month=2026-12
expect_rc 0 "docket start"
no_git start "docket start loads no libgit2 either"
# libgit2's init parses the CA bundle unless it binds cli/git_tls.c's
# mbedtls_x509_crt_parse_file, which only an exported symbol allows
LD_DEBUG=bindings LD_DEBUG_OUTPUT="$T/bind" "$DOCKET" archive sync >/dev/null 2>&1
b=$(cat "$T/bind".* | grep "normal symbol \`mbedtls_x509_crt_parse_file'")
rm -f "$T/bind".*
case "$b" in *"to $DOCKET "*) ok "libgit2 binds the executable's certificate loader" ;;
*) not_ok "libgit2 binds the executable's certificate loader"
	printf '%s\n' "$b" | sed 's/^/#   /' ;; esac

# The commands that need them load them when they run.
loaded_by dispatch dispatch
expect_rc 0 "docket dispatch runs"
loaded dispatch libcurl "docket dispatch loads libcurl"

# A library that cannot be loaded: the message names it and its package,
# the status is 1, and nothing is stored.
DOCKET_LIBCURL="$T/no/libcurl.so.4" dk hooks add https://example.com/hook
expect_rc 1 "hooks add without libcurl fails"
expect_err "libcurl could not be loaded" "the message names the library"
expect_err "libcurl4" "and the package to install"
expect_err "DOCKET_LIBCURL" "and the variable that named the file"
dk hooks list
expect_out "no webhook subscriptions" "the failed add stored nothing"

DOCKET_LIBCURL="$T/no/libcurl.so.4" dk dispatch
expect_rc 1 "dispatch without libcurl fails"
expect_err "\`docket dispatch\` needs it" "the message names the command"

# (a serve that did start is stopped by timeout, and fails the checks)
DOCKET_LIBMICROHTTPD="$T/no/libmicrohttpd.so.12" timeout 30 "$DOCKET" serve \
	--listen 127.0.0.1:0 --address-file "$T/addr" >"$T/stdout" 2>"$T/stderr"
rc=$?
err=$(cat "$T/stderr")
expect_rc 1 "serve without libmicrohttpd fails at once"
expect_err "libmicrohttpd could not be loaded" "the message names libmicrohttpd"
[ -e "$T/addr" ] && not_ok "serve wrote an address without its library" ||
	ok "serve listened nowhere"

DOCKET_LIBGIT2="$T/no/libgit2.so" dk archive gc
expect_rc 1 "archive gc without libgit2 fails"
expect_err "libgit2 could not be loaded" "the message names libgit2"

# With the library there, the same add works: it was the load that failed.
dk hooks add https://example.com/hook
expect_rc 0 "hooks add with libcurl works"
expect_out "hook 1 added" "the hook is stored"

done_testing
