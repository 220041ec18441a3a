# example_appeal.sh - examples/appeal.xml through the real binary: an
# appeal upheld at level 1; one passed up and revised at level 2; one
# returned for more evidence, then carried up by the 14-day deadlines to
# the top leader, returned again and withdrawn; one upheld by the top
# leader. Finals: upheld, revised, withdrawn.
. "$DOCKET_SRC/tests/lib.sh"

appeal() { # USER -> instance id in $out, with two pieces of evidence, filed
	dk start appeal --as "$1" --var appraisal=A-2026-11 --var month=2026-11 \
		--var original_score=85.1
	id=$out
	file "$1-1.pdf" "考勤记录"
	file "$1-2.png" "客户拜访照片"
	dk attach "$id" "$T/$1-1.pdf" --evidence appeal-evidence --as "$1"
	dk attach "$id" "$T/$1-2.png" --evidence appeal-evidence --as "$1"
	dk act "$id" submit --as "$1" --comment "出勤扣分有误"
	out=$id
}

at 2026-12-01T01:00:00Z
dk org load "$EX/org.xml"
expect_rc 0 "org loads"
dk deploy "$EX/appeal.xml"
expect_rc 0 "appeal deploys"

# ---- 1: filed, upheld at level 1 ----------------------------------------------
dk start appeal --as li --var appraisal=A-2026-11 --var month=2026-11
expect_rc 1 "an appeal names the original score"
dk start appeal --as li --var appraisal=A-2026-11 --var month=2026-11 --var original_score=85.1
expect_rc 0 "li starts an appeal"
A=$out
dk act "$A" submit --as li --comment "出勤扣分有误"
expect_rc 6 "filing needs evidence"
file a1.pdf "考勤记录"
file a2.jpg "请假条"
dk attach "$A" "$T/a1.pdf" --evidence appeal-evidence --as li
expect_rc 0 "first piece of evidence"
dk attach "$A" "$T/a2.jpg" --evidence appeal-evidence --as li
expect_rc 0 "second piece of evidence (multiple allowed)"
dk act "$A" submit --as li
expect_rc 6 "filing needs the grounds"
dk act "$A" submit --as li --comment "出勤扣分有误，11月5日为公休"
expect_rc 0 "li files the appeal"
expect_eq "$(get "$A" .state)" level1 "level 1 holds it"
expect_eq "$(get "$A" '[.tasks[].user] | join(" ")')" liu "the sales assessment group decides first"
dk act "$A" uphold --as li --comment "x"
expect_rc 4 "the appellant cannot decide"
dk act "$A" uphold --as gao --comment "x"
expect_rc 4 "level 2 cannot decide at level 1"
dk act "$A" uphold --as liu
expect_rc 6 "upholding needs a reason"
dk act "$A" uphold --as liu --comment "经核实考勤无误"
expect_rc 0 "liu upholds the score"
expect_eq "$(get "$A" .state)" upheld "final state upheld"
expect_eq "$(get "$A" .status)" completed "the appeal is completed"
expect_eq "$(get "$A" .vars.decided_by)" liu "decided_by names liu"

# ---- 2: passed up, revised at level 2 ------------------------------------------
appeal wang
B=$out
expect_eq "$(get "$B" .state)" level1 "wang's appeal is at level 1"
dk act "$B" escalate --as liu
expect_rc 0 "liu passes it up"
expect_eq "$(get "$B" .state)" level2 "the evaluation centre holds it"
dk act "$B" revise --as liu --var revised_score=90 --comment x
expect_rc 4 "level 1 cannot decide at level 2"
dk act "$B" revise --as gao --comment "考勤更正"
expect_rc 6 "revising needs the new score"
dk act "$B" revise --as gao --var revised_score=85.1 --comment "考勤更正"
expect_rc 6 "a revision must change the score"
dk act "$B" revise --as gao --var revised_score=130 --comment "考勤更正"
expect_rc 6 "a revised score above 100 is refused"
dk act "$B" revise --as gao --var revised_score=88.5 --comment "考勤更正，加回3.4分"
expect_rc 0 "gao revises the score to 88.5"
expect_eq "$(get "$B" .state)" revised "final state revised"
expect_eq "$(get "$B" .vars.revised_score)" 88.5 "the revised score is kept"
expect_eq "$(get "$B" .vars.decided_by)" gao "decided_by names gao"

# ---- 3: returned, deadlines carry it up, withdrawn ------------------------------
at 2026-12-01T01:00:00Z
appeal li
C=$out
dk act "$C" return --as liu
expect_rc 6 "returning needs to say what is missing"
dk act "$C" return --as liu --comment "请补充区域经理签字的考勤表"
expect_rc 0 "liu asks for more evidence"
expect_eq "$(get "$C" .state)" evidence1 "li has it back"
dk act "$C" resubmit --as li
expect_rc 6 "resubmitting needs new evidence"
file c3.pdf "签字考勤表"
dk attach "$C" "$T/c3.pdf" --evidence appeal-evidence --as li
dk act "$C" resubmit --as li
expect_rc 0 "li resubmits with the signed sheet"
expect_eq "$(get "$C" .state)" level1 "back at level 1"

at 2026-12-10T01:00:00Z
dk tick
expect_eq "$(get "$C" .state)" level1 "nine days in, still at level 1"
at 2026-12-16T02:00:00Z
dk tick
expect_rc 0 "tick after 14 days"
expect_eq "$(get "$C" .state)" level2 "level 1's deadline passed it to level 2"
dk log "$C"
expect_out "system" "the system actor fired the escalation"
at 2026-12-31T03:00:00Z
dk tick
expect_eq "$(get "$C" .state)" level3 "level 2's deadline passed it to the top leader"
expect_eq "$(get "$C" '[.tasks[].user] | join(" ")')" chen "the top leader chen has it"
dk act "$C" escalate --as chen
expect_rc 5 "there is no level above the top leader"
dk act "$C" return --as chen --comment "请说明11月5日公休依据"
expect_rc 0 "chen asks for more evidence"
expect_eq "$(get "$C" .state)" evidence3 "li has it back from level 3"
dk act "$C" withdraw --as liu
expect_rc 4 "only the appellant withdraws"
dk act "$C" withdraw --as li
expect_rc 0 "li withdraws the appeal"
expect_eq "$(get "$C" .state)" withdrawn "final state withdrawn"

# ---- 4: the top leader upholds -------------------------------------------------
at 2027-01-04T01:00:00Z
appeal he
D=$out
expect_eq "$(get "$D" '[.tasks[].user] | join(" ")')" qian "the finance assessment group decides first for he"
dk act "$D" escalate --as qian
dk act "$D" escalate --as feng
expect_rc 0 "both levels pass it up"
dk act "$D" uphold --as chen --comment "维持原评分"
expect_rc 0 "the top leader upholds"
expect_eq "$(get "$D" .state)" upheld "upheld at level 3"
expect_eq "$(get "$D" .vars.decided_by)" chen "decided_by names chen"

done_testing
