#!/bin/sh
# api_evidence.sh - evidence over HTTP: upload streamed into the archive,
# list, byte-exact download with a Unicode-safe Content-Disposition, and
# the refusals: no token before any byte is read, a path in the name, a
# wrong kind or type, another department, an oversize upload.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/api_server.inc"
# serve spools uploads under TMPDIR: this test's own, so that another
# docket serve on the machine (a parallel test run) cannot pass for a leak
# in the check at the end
export TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"

dk org load "$DOCKET_SRC/examples/org.xml"
dk deploy "$DOCKET_SRC/examples/monthly-plan.xml"
expect_rc 0 "deploy monthly-plan"
for u in li wei qian; do
	dk token create --user $u
	eval "$u=\$out"
done
serve_start --max-upload 300000

req POST /api/instances "$li" -d '{"flow":"monthly-plan","vars":{"month":"2026-12","work":"客户回访","end_date":"2026-12-31"}}'
expect_code 201 "start a monthly plan"
id=$(field .id)
req POST "/api/instances/$id/transitions/submit" "$li" -d '{}'
expect_code 422 "submit without the plan: 422"
expect_body "requires evidence 'plan'" "the problem names the missing evidence"

head -c 200000 /dev/urandom >"$T/plan.pdf"
name="工作计划 2026-12.pdf"
enc=$(printf %s "$name" | jq -sRr @uri)
req POST "/api/instances/$id/evidence/plan?name=$enc" "" --data-binary @"$T/plan.pdf"
expect_code 401 "an upload without a token: 401"
req POST "/api/instances/$id/evidence/plan?name=$enc" "$qian" --data-binary @"$T/plan.pdf"
expect_code 403 "an upload to another department's instance: 403"
req POST "/api/instances/$id/evidence/plan?name=..%2F..%2Fetc%2Fpasswd.pdf" "$li" --data-binary @"$T/plan.pdf"
case "$code" in 400|422) ok "a path in the name is refused ($code)" ;; *) not_ok "path name got $code"; show_req ;; esac
req POST "/api/instances/$id/evidence/plan?name=plan.exe" "$li" --data-binary @"$T/plan.pdf"
case "$code" in 400|422) ok "a type the flow does not allow is refused ($code)" ;; *) not_ok "exe got $code"; show_req ;; esac
req POST "/api/instances/$id/evidence/nope?name=a.pdf" "$li" --data-binary @"$T/plan.pdf"
case "$code" in 404|422) ok "an unknown evidence kind is refused ($code)" ;; *) not_ok "kind got $code"; show_req ;; esac
req POST "/api/instances/$id/evidence/plan" "$li" --data-binary @"$T/plan.pdf"
expect_code 400 "an upload without ?name=: 400"
head -c 300001 /dev/zero >"$T/huge.pdf"
req POST "/api/instances/$id/evidence/plan?name=huge.pdf" "$li" --data-binary @"$T/huge.pdf"
expect_code 413 "an upload over --max-upload: 413"

req POST "/api/instances/$id/evidence/plan?name=$enc" "$li" -H 'Content-Type: application/pdf' --data-binary @"$T/plan.pdf"
expect_code 201 "upload the plan"
[ "$(field .sha256)" = "$(sha256sum "$T/plan.pdf" | cut -c1-64)" ] && ok "the archive's SHA-256 is the file's" || not_ok "sha256: $body"
[ "$(field .size)" = 200000 ] && ok "the size is the file's" || not_ok "size: $body"

req GET "/api/instances/$id/evidence" "$wei"
expect_code 200 "GET /api/instances/{id}/evidence"
[ "$(field '.[0].name')" = "$name" ] && ok "the list holds the Unicode name" || not_ok "list: $body"
req GET "/api/instances/$id/evidence" "$qian"
expect_code 403 "another department's evidence list: 403"

req GET "/api/instances/$id/evidence/plan/$enc" "$wei"
expect_code 200 "download the plan"
cmp -s "$T/body" "$T/plan.pdf" && ok "the download is byte-exact" || not_ok "download differs"
expect_hdr "filename*=UTF-8''%E5%B7%A5%E4%BD%9C%E8%AE%A1%E5%88%92%202026-12.pdf" "Content-Disposition carries the UTF-8 name"
expect_hdr 'filename="____ 2026-12.pdf"' "with an ASCII fallback"
req GET "/api/instances/$id/evidence/plan/other.pdf" "$wei"
expect_code 404 "an unknown evidence name: 404"
req GET "/api/instances/$id/evidence/plan/$enc" "$qian"
expect_code 403 "another department's download: 403"

req POST "/api/instances/$id/transitions/submit" "$li" -d '{}'
expect_code 200 "submit with the plan attached"
req GET /healthz ""
expect_code 200 "still serving"
serve_stop
[ "$serve_rc" = 0 ] && ok "clean stop" || not_ok "serve exited $serve_rc"
ls "${TMPDIR:-/tmp}"/docket-upload-* >/dev/null 2>&1 && not_ok "temporary uploads left behind" || ok "no temporary uploads left behind"
done_testing
