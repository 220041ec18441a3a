#!/bin/sh
# browser_inbox.sh - the approver inbox in headless Chromium (Debian's
# chromium driven by playwright-core, tests/browser/inbox.mjs) against the
# real `docket serve`: staff upload evidence with a Chinese name and submit,
# the department head approves with a comment. Fails, saying what to
# install, when chromium, node or a Chinese font is missing.
. "$DOCKET_SRC/tests/lib.sh"
. "$DOCKET_SRC/tests/e2e/api_server.inc"

dir="$DOCKET_SRC/tests/browser"
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
missing=""
[ -n "$CHROMIUM" ] || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
fc-list :lang=zh 2>/dev/null | grep -q . || missing="$missing fonts-wqy-microhei"
if [ -n "$missing" ]; then
	not_ok "the browser test needs:$missing (run: sudo apt-get install$missing, or make deps as root)"
	done_testing
	exit 1
fi
ok "chromium, node and a Chinese font are installed"

# playwright-core at the version package-lock.json pins; npm ci when it is
# missing or another version is installed.
want=$(jq -r '.packages["node_modules/playwright-core"].version' "$dir/package-lock.json")
have=$(jq -r .version "$dir/node_modules/playwright-core/package.json" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
	if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1; then
		ok "npm ci installed playwright-core $want"
	else
		not_ok "npm ci in tests/browser failed (is the npm registry reachable?)"
		sed 's/^/#   /' "$T/npm.log" | tail -n 15
		done_testing
		exit 1
	fi
fi

dk check "$DOCKET_SRC"/examples/*.xml
expect_rc 0 "the examples check"
dk org load "$DOCKET_SRC/examples/org.xml"
expect_rc 0 "the example org loads"
dk deploy "$DOCKET_SRC/examples/monthly-plan.xml"
expect_rc 0 "monthly-plan deploys"
dk token create --user li --name browser --json
staff=$(printf '%s' "$out" | jq -r .token)
dk token create --user wei --name browser --json
head=$(printf '%s' "$out" | jq -r .token)
dk --as li start monthly-plan --var month=2026-11 --var 'work=季度销售计划' --var end_date=2026-12-20
expect_rc 0 "staff start a monthly plan"
id=$out

serve_start
req GET /healthz ""
expect_code 200 "serve answers on $base"

mkdir -p "$T/files"
up="$T/files/十一月工作计划.pdf"
printf '%%PDF-1.4\n%% 月度工作计划\n%%%%EOF\n' >"$up"

DOCKET_BASE=$base STAFF_TOKEN=$staff HEAD_TOKEN=$head INSTANCE=$id \
	UPLOAD_FILE=$up CHROMIUM=$CHROMIUM USER_DATA_DIR="$T/chromium" \
	SCREENSHOT=${SCREENSHOT:-} HOME="$T" \
	node "$dir/inbox.mjs" >"$T/tap" 2>"$T/node.err"
brc=$?
# Renumber the browser's TAP lines into this script's sequence.
while IFS= read -r line; do
	case "$line" in
	"ok "*) ok "browser: ${line#* - }" ;;
	"not ok "*) not_ok "browser: ${line#* - }" ;;
	"#"*) echo "$line" ;;
	esac
done <"$T/tap"
if [ "$brc" -ne 0 ] && ! grep -q '^not ok' "$T/tap"; then
	not_ok "the browser script exited with status $brc"
	sed 's/^/#   /' "$T/node.err" | tail -n 15
fi

# What the browser did is what the store holds.
dk --as li show "$id" --json
state=$(printf '%s' "$out" | jq -r .state)
[ "$state" = in-progress ] && ok "the store has the instance in-progress" || not_ok "the store has the instance in $state"
dk --as li log "$id"
expect_out "同意，按计划执行" "the audit trail keeps the head's comment"
dk --as li evidence "$id"
expect_out "十一月工作计划.pdf" "the archive holds the upload under its Chinese name"

serve_stop
expect_rc 0 "serve stops cleanly"
rc=$serve_rc
expect_rc 0 "serve exits 0 on SIGTERM"
done_testing
