# example_appraisal.sh - examples/appraisal.xml through the real binary:
# desk materials uploaded on time or late against their day-of-month due
# dates (in Asia/Shanghai), the score computed from weighted daily work and
# attendance minus late deductions, the interview, the improvement plan, the
# vice president's and HR's reviews sending it back to scoring, and a review
# deadline escalating to the evaluation centre. Both instances end "closed".
. "$DOCKET_SRC/tests/lib.sh"

in_inbox() { # USER INSTANCE -> 1 or 0
	"$DOCKET" inbox --as "$1" --json | jq -r --arg p "$2" '[.[] | select(.instance == $p)] | length'
}

at 2026-11-02T01:00:00Z
dk org load "$EX/org.xml"
expect_rc 0 "org loads"
dk deploy "$EX/appraisal.xml"
expect_rc 0 "appraisal deploys"

# ---- A: li, one desk material late ------------------------------------------
dk start appraisal --as li --var month=2026-11
expect_rc 0 "li's November appraisal starts"
A=$out
expect_eq "$(get "$A" .state)" materials "li uploads desk materials first"

# due before the 8th, 13th, 15th (8日前): 00:00 of that day in Shanghai (UTC+8)
at 2026-11-07T15:30:00Z # 23:30 on the 7th in Shanghai: on time
file monthly.docx "十一月月报"
dk attach "$A" "$T/monthly.docx" --evidence monthly-report --as li
expect_rc 0 "monthly report on the 7th: on time"
dk act "$A" submit --as li
expect_rc 6 "submit with two materials missing is refused"
at 2026-11-12T16:30:00Z # still the 12th in UTC, but 00:30 on the 13th in Shanghai: late
file ad.xlsx "广告计划表"
dk --json attach "$A" "$T/ad.xlsx" --evidence ad-plan --as li
expect_rc 0 "advertising plan half an hour late"
expect_out '"late": true' "the upload is recorded as late"
at 2026-11-14T10:00:00Z # 18:00 on the 14th: on time
file promo.pdf "促销活动计划报告"
dk attach "$A" "$T/promo.pdf" --evidence promotion-plan --as li
expect_rc 0 "promotion plan on the 14th"
expect_out "(on time)" "the upload is recorded as on time"
at 2026-11-16T01:00:00Z
dk act "$A" submit --as li
expect_rc 0 "li submits the desk materials"
expect_eq "$(get "$A" .state)" scoring "the assessment group scores"
expect_eq "$(get "$A" '[.tasks[].user] | join(" ")')" liu "the sales assessment group (liu) has the task"

dk act "$A" score --as li --var daily_work=100
expect_rc 4 "the employee cannot score themselves"
dk act "$A" score --as qian --var daily_work=100
expect_rc 4 "another department's assessment group cannot score"
dk act "$A" score --as liu
expect_rc 6 "scoring without daily_work is refused by the guard"
dk act "$A" score --as liu --var daily_work=120
expect_rc 6 "daily_work above 100 is refused"
dk act "$A" score --as liu --var daily_work=85 --var days_absent=1.5
expect_rc 0 "liu scores 85 with one and a half days absent"
# attendance 100 - 4 x ceiling(1.5) = 92; 85 x 0.7 + 92 x 0.3 - 2 x 1 late
expect_eq "$(get "$A" .vars.attendance)" 92 "half a day counts as a whole day: attendance 92"
expect_eq "$(get "$A" .vars.late_items)" 1 "one desk material was late"
expect_eq "$(get "$A" .vars.score)" 85.1 "score = 85x0.7 + 92x0.3 - 2 = 85.1"

dk act "$A" record --as liu
expect_rc 6 "the interview needs its record"
dk act "$A" record --as liu --comment "月报详实；广告计划表迟交，下月注意时限"
expect_rc 0 "liu records the feedback interview"
dk act "$A" submit --as li
expect_rc 6 "the improvement step needs the improvement plan"
file improve.docx "改进方案"
dk attach "$A" "$T/improve.docx" --evidence improvement-plan --as li
dk act "$A" submit --as li
expect_rc 0 "li submits the improvement plan"
expect_eq "$(get "$A" '[.tasks[].user] | join(" ")')" zhao "the sales vice president zhao reviews first"

dk act "$A" approve --as wu
expect_rc 4 "HR cannot take the first review"
dk act "$A" return --as zhao
expect_rc 6 "returning needs a reason"
dk act "$A" return --as zhao --comment "出勤记录有误，实际缺勤0天"
expect_rc 0 "zhao returns it to scoring"
expect_eq "$(get "$A" .state)" scoring "back to scoring"
dk act "$A" score --as liu --var daily_work=90 --var days_absent=0
expect_rc 0 "liu rescores 90 with no absence"
expect_eq "$(get "$A" .vars.score)" 91 "score = 90x0.7 + 100x0.3 - 2 = 91"
dk act "$A" record --as liu --comment "已更正出勤"
expect_rc 0 "interview again"
dk act "$A" submit --as li
expect_rc 6 "a new visit needs the improvement plan uploaded again"
dk attach "$A" "$T/improve.docx" --evidence improvement-plan --as li
expect_rc 5 "the same file name cannot be uploaded twice"
file improve-2.docx "改进方案（第二版）"
dk attach "$A" "$T/improve-2.docx" --evidence improvement-plan --as li
expect_rc 0 "li uploads the second improvement plan"
dk act "$A" submit --as li
expect_rc 0 "improvement plan again"
dk act "$A" approve --as zhao
expect_rc 0 "zhao approves"
expect_eq "$(get "$A" .state)" second-review "HR reviews second"
dk act "$A" return --as xu --comment "请附考勤表"
expect_rc 0 "HR (xu) returns it to scoring"
dk act "$A" score --as liu --var daily_work=90 --var days_absent=0
dk act "$A" record --as liu --comment "附考勤表"
file improve-3.docx "改进方案（第三版）"
dk attach "$A" "$T/improve-3.docx" --evidence improvement-plan --as li
dk act "$A" submit --as li
dk act "$A" approve --as zhao
expect_rc 0 "the second pass reaches the first review again"
dk act "$A" approve --as wu
expect_rc 0 "HR (wu) approves"
expect_eq "$(get "$A" .state)" closed "final state closed"
expect_eq "$(get "$A" .status)" completed "the appraisal is completed"
expect_eq "$(get "$A" .vars.score)" 91 "the final score is 91"
dk log "$A"
expect_out "出勤记录有误" "the log keeps the vice president's reason"

# ---- B: wang, every material late, attendance floored at 0 -------------------
at 2026-11-02T01:00:00Z
dk start appraisal --as wang --var month=2026-11
B=$out
at 2026-11-20T02:00:00Z
for k in monthly-report ad-plan promotion-plan; do
	file "$k.pdf" "$k"
	dk attach "$B" "$T/$k.pdf" --evidence "$k" --as wang
done
expect_rc 0 "wang uploads everything on the 20th"
dk act "$B" submit --as wang
expect_rc 0 "wang submits"
dk act "$B" score --as liu --var daily_work=50 --var days_absent=25.5
expect_rc 0 "liu scores 50 with 25.5 days absent"
expect_eq "$(get "$B" .vars.attendance)" 0 "attendance never goes below 0"
expect_eq "$(get "$B" .vars.late_items)" 3 "three late materials"
expect_eq "$(get "$B" .vars.score)" 29 "score = 50x0.7 + 0 - 3x2 = 29"
dk act "$B" record --as liu --comment "缺勤严重，材料全部迟交"
file b-improve.pdf "改进方案"
dk attach "$B" "$T/b-improve.pdf" --evidence improvement-plan --as wang
dk act "$B" submit --as wang
expect_rc 0 "wang's appraisal reaches the first review"

# the first review's P3D deadline escalates to the evaluation centre
expect_eq "$(in_inbox feng "$B")" 0 "the evaluation centre has no task yet"
at 2026-11-24T03:00:00Z
dk tick
expect_rc 0 "tick"
expect_eq "$(in_inbox feng "$B")" 1 "after three days the evaluation centre has the task"
expect_eq "$(in_inbox zhao "$B")" 1 "zhao keeps the task too"
dk act "$B" approve --as feng
expect_rc 0 "the evaluation centre approves in the vice president's place"
dk act "$B" approve --as xu
expect_rc 0 "HR approves"
expect_eq "$(get "$B" .state)" closed "wang's appraisal is closed"
dk act "$B" approve --as xu
expect_rc 5 "a closed appraisal takes no more transitions"

done_testing
