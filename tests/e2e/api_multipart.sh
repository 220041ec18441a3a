#!/bin/sh
# api_multipart.sh - evidence uploads from browser forms
# (multipart/form-data) through the real server: the file part streams to
# the archive byte-exact (memory stays flat for a large file), kind and
# name come from the path, the query or the form's fields, and a form
# with no file, two files, no kind, a path for a name, an oversize or a
# truncated body is refused like a raw upload and changes nothing.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/api_server.inc"

dk org load "$DOCKET_SRC/examples/org.xml"
dk deploy "$DOCKET_SRC/examples/monthly-plan.xml"
for u in li qian; do
	dk token create --user $u
	eval "$u=\$out"
done
serve_start --max-upload 80000000

req POST /api/instances "$li" -d '{"flow":"monthly-plan","vars":{"month":"2026-12","work":"客户回访","end_date":"2026-12-31"}}'
id=$(field .id)
# version and event count: what "nothing changed" compares
facts() {
	dk show "$id" --json
	v=$(printf %s "$out" | jq -r .version)
	dk log "$id" --json
	echo "$v $(printf %s "$out" | jq length) $(ls "$DOCKET_HOME" | wc -l)"
}
before=$(facts)

head -c 150000 /dev/urandom >"$T/plan.pdf"
req POST "/api/instances/$id/evidence" "$li" -F kind=plan -F "file=@$T/plan.pdf;filename=工作计划.pdf"
expect_code 201 "a form with kind and a file: 201"
expect_body '"name": "工作计划.pdf"' "named by the file part's Unicode file name"
expect_body "\"size\": 150000" "the whole file"
req GET "/api/instances/$id/evidence/plan/$(printf %s 工作计划.pdf | jq -sRr @uri)" "$li"
expect_code 200 "download it"
cmp -s "$T/body" "$T/plan.pdf" && ok "byte-exact" || not_ok "the download differs"

req POST "/api/instances/$id/evidence/plan?name=v2.pdf" "$li" -F "file=@$T/plan.pdf;filename=ignored.pdf"
expect_code 201 "kind in the path, name in the query: 201"
expect_body '"name": "v2.pdf"' "the query's name wins over the file name"
req POST "/api/instances/$id/evidence?kind=plan" "$li" -F "file=@$T/plan.pdf" -F "name=v3.docx"
expect_code 201 "kind in the query, name as a field after the file: 201"
expect_body '"name": "v3.docx"' "the name field"
with_files=$(facts)

# ---- refusals, each changing nothing ----
req POST "/api/instances/$id/evidence" "$li" -F kind=plan -F name=x.pdf
expect_code 400 "a form with no file part: 400"
expect_body "no file part" "says so"
req POST "/api/instances/$id/evidence" "$li" -F kind=plan -F "a=@$T/plan.pdf;filename=a.pdf" -F "b=@$T/plan.pdf;filename=b.pdf"
expect_code 400 "two files: 400"
expect_body "more than one file" "says so"
req POST "/api/instances/$id/evidence" "$li" -F "file=@$T/plan.pdf;filename=a.pdf"
expect_code 400 "no kind anywhere: 400"
req POST "/api/instances/$id/evidence" "$li" -F kind=plan -F "file=@$T/plan.pdf;filename=../../etc/passwd.pdf"
case "$code" in 400|422) ok "a path as the file name is refused ($code)" ;; *) not_ok "path name got $code"; show_req ;; esac
req POST "/api/instances/$id/evidence" "$li" -F kind=plan -F "name=../../x.pdf" -F "file=@$T/plan.pdf;filename=a.pdf"
case "$code" in 400|422) ok "a path as the name field is refused ($code)" ;; *) not_ok "got $code"; show_req ;; esac
req POST "/api/instances/$id/evidence" "$li" -F kind=plan -F "file=@$T/plan.pdf;filename=a.exe"
case "$code" in 400|422) ok "a type the flow does not allow is refused ($code)" ;; *) not_ok "got $code"; show_req ;; esac
req POST "/api/instances/$id/evidence" "$qian" -F kind=plan -F "file=@$T/plan.pdf;filename=a.pdf"
expect_code 403 "another department's instance: 403"
req POST "/api/instances/$id/evidence" "" -F kind=plan -F "file=@$T/plan.pdf;filename=a.pdf"
expect_code 401 "no token: 401"
req POST "/api/instances/$id/evidence" "$li" -H 'Content-Type: multipart/form-data' --data-binary @"$T/plan.pdf"
expect_code 400 "multipart without a boundary: 400"
# a body cut off inside the file part
b=XyZb0undary
{ printf -- "--$b\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nplan\r\n--$b\r\n"
  printf "Content-Disposition: form-data; name=\"file\"; filename=\"cut.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
  head -c 5000 "$T/plan.pdf"; } >"$T/cut"
req POST "/api/instances/$id/evidence" "$li" -H "Content-Type: multipart/form-data; boundary=$b" --data-binary @"$T/cut"
expect_code 400 "a body without its closing boundary: 400"
expect_body "closing boundary" "says so"
head -c 80000100 /dev/zero >"$T/huge.pdf"
req POST "/api/instances/$id/evidence" "$li" -F kind=plan -F "file=@$T/huge.pdf;filename=huge.pdf"
expect_code 413 "a form over --max-upload: 413"
expect_body "urn:docket:problem:too-large" "a problem object"
req POST "/api/instances/$id/evidence" "$li" -H 'Transfer-Encoding: chunked' -F kind=plan -F "file=@$T/huge.pdf;filename=huge.pdf"
expect_code 413 "chunked, over --max-upload: 413"
rm -f "$T/huge.pdf"
[ "$(facts)" = "$with_files" ] && ok "the refusals changed nothing" || not_ok "changed: $(facts) vs $with_files"

# ---- a large file streams: the server's peak memory hardly moves ----
hwm() { awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status"; }
head -c 60000000 /dev/zero >"$T/big.pdf"
m0=$(hwm)
req POST "/api/instances/$id/evidence" "$li" -F kind=phase-report -F "file=@$T/big.pdf;filename=big.pdf"
expect_code 201 "a 60 MB form upload: 201"
m1=$(hwm)
grow=$(( (m1 - m0) / 1024 ))
[ "$grow" -lt 30 ] && ok "peak memory grew ${grow} MB for a 60 MB file (streamed)" || not_ok "peak memory grew ${grow} MB"
req GET /healthz ""
expect_code 200 "still serving"
done_testing
