# example_cross_department.sh - examples/cross-department.xml through the
# real binary: sales prepares an export shipment; sales, finance and
# logistics check it at once, each region with its preset worker and
# approver (one region returned and redone); the join fires when all three
# are done; logistics dispatches (final "shipped"). A second shipment is
# cancelled from the parallel, leaving every region (final "cancelled").
. "$DOCKET_SRC/tests/lib.sh"

active() { get "$1" '.states | sort | join(" ")'; }

at 2026-11-09T01:00:00Z
dk org load "$EX/org.xml"
expect_rc 0 "org loads"
dk deploy "$EX/cross-department.xml"
expect_rc 0 "cross-department deploys"

dk start cross-department --as li --var order_no=EX-2026-118 --var customer=Hamburg-GmbH \
	--var amount=120000
expect_rc 0 "li starts an export shipment"
S=$out
dk act "$S" submit --as li
expect_rc 6 "submitting needs the export documents"
file invoice.pdf "商业发票 装箱单"
dk attach "$S" "$T/invoice.pdf" --evidence export-docs --as li
expect_rc 0 "li attaches the export documents"
dk act "$S" submit --as li
expect_rc 0 "li submits"
expect_eq "$(get "$S" '.available | index("cancel") != null')" true "the checks run: cancel is available"
expect_eq "$(active "$S")" "booking docs-check receivables-check" "every region is at its start"
dk graph "$EX/cross-department.xml" --instance "$S"
expect_rc 0 "graph draws the running shipment"
expect_eq "$(printf '%s\n' "$out" | grep -c fillcolor)" 3 "the diagram highlights the three active region states"
expect_eq "$(get "$S" '[.tasks[].user] | unique | join(" ")')" "he ma qian wang zhou" \
	"wang and the finance and logistics employees have tasks"

# ---- sales: documents check, returned once --------------------------------
dk act "$S" approve --as wei
expect_rc 5 "the sales head cannot approve before the check is done"
dk act "$S" submit --as he
expect_rc 6 "the finance employee's submit needs the receivables statement"
dk act "$S" submit --as wang
expect_rc 0 "wang (documents clerk) finishes the check"
expect_eq "$(active "$S")" "booking docs-approve receivables-check" "only the sales region moved"
dk act "$S" return --as wei
expect_rc 6 "returning needs a reason"
dk act "$S" return --as qian --comment x
expect_rc 4 "the finance head cannot return the sales documents"
dk act "$S" return --as wei --comment "装箱单毛重与发票不符"
expect_rc 0 "wei returns the documents check"
expect_eq "$(active "$S")" "booking docs-check receivables-check" "the sales region is back at its start"
dk act "$S" submit --as wang
expect_rc 0 "wang checks again"
dk act "$S" approve --as wei
expect_rc 0 "wei approves the documents"
expect_eq "$(active "$S")" "booking docs-ok receivables-check" "the sales region is done"

# ---- finance -------------------------------------------------------------
file receivables.xlsx "应收账款核对表"
dk attach "$S" "$T/receivables.xlsx" --evidence receivables --as he
expect_rc 0 "he attaches the receivables statement"
dk act "$S" submit --as he
expect_rc 0 "he finishes the receivables check"
dk act "$S" approve --as he
expect_rc 4 "the finance employee cannot approve"
dk act "$S" approve --as qian
expect_rc 0 "qian approves the receivables"

# ---- logistics, the join, dispatch ----------------------------------------
file booking.pdf "订舱确认"
dk attach "$S" "$T/booking.pdf" --evidence booking --as ma
expect_rc 0 "ma attaches the booking confirmation"
dk act "$S" submit --as ma
expect_rc 0 "ma books shipping"
expect_eq "$(active "$S")" "booking-approve docs-ok receivables-ok" "two of three regions done: no join yet"
at 2026-11-10T03:00:00Z
dk act "$S" approve --as zhou
expect_rc 0 "zhou approves the booking"
expect_eq "$(get "$S" .state)" dispatch "the join fired: dispatch"
expect_eq "$(get "$S" '[.tasks[].user] | sort | join(" ")')" "ma zhou" "logistics employees dispatch"
dk log "$S"
expect_out "dispatch" "the log records the join into dispatch"

dk act "$S" ship --as li
expect_rc 4 "sales cannot dispatch"
dk act "$S" ship --as ma
expect_rc 6 "shipping needs the bill of lading"
file bl.pdf "提单"
dk attach "$S" "$T/bl.pdf" --evidence bill-of-lading --as ma
dk act "$S" ship --as ma
expect_rc 0 "ma ships"
expect_eq "$(get "$S" .state)" shipped "final state shipped"
expect_eq "$(get "$S" .status)" completed "the shipment is completed"

# ---- a cancelled shipment ------------------------------------------------
dk start cross-department --as wang --var order_no=EX-2026-119 --var customer=Lyon-SARL \
	--var amount=0
C=$out
file c-invoice.pdf "发票"
dk attach "$C" "$T/c-invoice.pdf" --evidence export-docs --as wang
dk act "$C" submit --as wang
expect_rc 6 "an order of amount 0 cannot be submitted"
dk start cross-department --as wang --var order_no=EX-2026-120 --var customer=Lyon-SARL \
	--var amount=56000
C=$out
dk attach "$C" "$T/c-invoice.pdf" --evidence export-docs --as wang
dk act "$C" submit --as wang
expect_rc 0 "wang submits a second shipment"
dk act "$C" submit --as wang
expect_rc 0 "wang also does the documents check"
dk act "$C" cancel --as wang
expect_rc 6 "cancelling needs a reason"
dk act "$C" cancel --as liu --comment x
expect_rc 4 "someone with no part in the shipment cannot cancel"
dk act "$C" cancel --as qian --comment x
expect_rc 6 "a region's approver cannot cancel (guard: only the initiator)"
dk act "$C" cancel --as wang --comment "客户取消订单"
expect_rc 0 "wang cancels the shipment"
expect_eq "$(get "$C" .state)" cancelled "final state cancelled"
expect_eq "$(get "$C" '.tasks | length')" 0 "no region keeps a task"
dk act "$C" approve --as wei
expect_rc 5 "the regions are gone"

done_testing
