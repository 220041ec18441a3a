# cli.sh - the docket command's global behaviour: help, usage errors.
. "$DOCKET_SRC/tests/lib.sh"

dk help
expect_rc 0 "help exits 0"
expect_out "exit status" "help lists exit statuses"
dk
expect_rc 2 "no command is a usage error"
dk frobnicate
expect_rc 2 "unknown command is a usage error"
expect_err "no command 'frobnicate'" "unknown command is named"
dk --home
expect_rc 2 "--home without a value is a usage error"
dk version
expect_rc 0 "version exits 0"
done_testing
