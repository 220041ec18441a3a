/* test_engine.c - the pure state machine: commands, refusals, quorum,
 * parallel regions, timers, the snapshot's JSON and the dk: functions. */
#include "definitions/flow.h"
#include "definitions/internal.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "engine/runner.h"
#include "util/buf.h"
#include "util/error.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libxml/xpath.h>
#include <jansson.h>

/* ---- fixtures ---------------------------------------------------------- */

static const char ORG[] =
    "<org xmlns='urn:docket:org:1' timezone='Asia/Shanghai'>"
    " <dept id='sales' name='Sales' head='wei' division-leader='zhao'/>"
    " <dept id='finance' name='Finance' head='qian' division-leader='sun'/>"
    " <user id='li' name='Li Ming' dept='sales' roles='employee'/>"
    " <user id='wei' name='Wei Guohua' dept='sales' roles='employee dept-head'/>"
    " <user id='zhao' name='Zhao' dept='sales' roles='division-leader'/>"
    " <user id='wang' name='Wang' dept='sales' roles='employee board'/>"
    " <user id='qian' name='Qian' dept='finance' roles='employee dept-head board'/>"
    " <user id='he' name='He' dept='finance' roles='employee board'/>"
    " <user id='sun' name='Sun' dept='finance' roles='division-leader'/>"
    " <holiday date='2026-10-01'/>"
    " <holiday date='2026-12-01'/>"
    "</org>";

/* The monthly plan of the design, with a timer and a role-narrowed step. */
static const char PLAN[] =
    "<flow xmlns='urn:docket:flow:1' xmlns:dk='urn:docket:fn' id='plan' version='1'>"
    " <role id='employee'/><role id='dept-head'/><role id='division-leader'/>"
    " <var name='month' type='string' required='true'/>"
    " <var name='phases' type='number' default='2'/>"
    " <var name='done_phases' type='number' default='0'/>"
    " <var name='urgent' type='boolean' default='false'/>"
    " <var name='end' type='date'/>"
    " <evidence id='plan' title='Plan document' types='pdf docx' max-size='1KB'/>"
    " <evidence id='phase-report' multiple='true' due='P7D'/>"
    " <state id='draft' initial='true' assign='$initiator'>"
    "  <transition id='submit' to='review'><requires evidence='plan'/></transition>"
    " </state>"
    " <state id='review' assign='dk:head-of($initiator)'>"
    "  <deadline after='P3D'><remind every='P1D'/>"
    "   <escalate to='role:division-leader'/></deadline>"
    "  <transition id='approve' to='in-progress'/>"
    "  <transition id='return' to='draft' comment='required'/>"
    " </state>"
    " <state id='in-progress' assign='$initiator' freeze='plan'>"
    "  <transition id='phase-done' to='in-progress'>"
    "   <requires evidence='phase-report'/>"
    "   <set var='done_phases' value='$done_phases + 1'/>"
    "  </transition>"
    "  <transition id='finish' to='signoff'><guard>$done_phases &gt;= $phases</guard>"
    "   <set var='urgent' value='$done_phases &gt; 5'/></transition>"
    " </state>"
    " <state id='signoff' assign='role:employee'>"
    "  <transition id='sign' to='done' role='dept-head'/>"
    " </state>"
    " <state id='done' final='true'/>"
    "</flow>";

static const char QUORUM[] =
    "<flow xmlns='urn:docket:flow:1' xmlns:dk='urn:docket:fn' id='board' version='2'>"
    " <role id='board'/>"
    " <state id='draft' initial='true' assign='$initiator'>"
    "  <transition id='to-all' to='all'/>"
    "  <transition id='to-any' to='any'/>"
    "  <transition id='to-two' to='two'/>"
    " </state>"
    " <state id='all' assign='role:board' quorum='all'>"
    "  <transition id='approve' to='done'/>"
    "  <transition id='reject' to='draft' comment='required'/>"
    " </state>"
    " <state id='any' assign='role:board' quorum='any'>"
    "  <transition id='approve' to='done'/>"
    "  <transition id='reject' to='draft'/>"
    " </state>"
    " <state id='two' assign='role:board' quorum='2'>"
    "  <transition id='approve' to='done'/>"
    "  <transition id='reject' to='draft'/>"
    " </state>"
    " <state id='done' final='true'/>"
    "</flow>";

static const char PARALLEL[] =
    "<flow xmlns='urn:docket:flow:1' xmlns:dk='urn:docket:fn' id='cross' version='1'>"
    " <evidence id='booking'/>"
    " <state id='prepare' initial='true' assign='$initiator'>"
    "  <transition id='submit' to='checks'/>"
    " </state>"
    " <parallel id='checks' assign='$initiator'>"
    "  <region id='sales'>"
    "   <state id='docs' initial='true' assign='wang'>"
    "    <transition id='approve' to='docs-ok'/></state>"
    "   <state id='docs-ok' final='true'/>"
    "  </region>"
    "  <region id='finance'>"
    "   <state id='money' initial='true' assign='qian'>"
    "    <transition id='approve' to='money-ok'/></state>"
    "   <state id='money-ok' final='true'/>"
    "  </region>"
    "  <region id='logistics'>"
    "   <state id='book' initial='true' assign='he'>"
    "    <deadline after='P2D'><remind every='P1D'/></deadline>"
    "    <transition id='submit' to='book-approve'><requires evidence='booking'/></transition>"
    "   </state>"
    "   <state id='book-approve' assign='qian'>"
    "    <transition id='approve' to='book-ok'/>"
    "    <transition id='return' to='book'/></state>"
    "   <state id='book-ok' final='true'/>"
    "  </region>"
    "  <transition on='done' to='dispatch'/>"
    "  <transition id='cancel' to='cancelled' comment='required'/>"
    " </parallel>"
    " <state id='dispatch' assign='he'><transition id='ship' to='shipped'/></state>"
    " <state id='shipped' final='true'/>"
    " <state id='cancelled' final='true'/>"
    "</flow>";

static const char TIMED[] =
    "<flow xmlns='urn:docket:flow:1' xmlns:dk='urn:docket:fn' id='timed' version='1'>"
    " <var name='ok' type='boolean' default='true'/>"
    " <state id='wait' initial='true' assign='$initiator'>"
    "  <deadline after='PT2H'><fire transition='expire'/></deadline>"
    "  <deadline at='dk:day-of-month(8, 1)'/>"
    "  <transition id='go' to='next'/>"
    "  <transition id='expire' to='expired'><guard>$ok</guard></transition>"
    " </state>"
    " <state id='next' assign='wei'><transition id='close' to='expired'/></state>"
    " <state id='expired' final='true'/>"
    "</flow>";

static dk_org *org;

static int64_t T(const char *s)
{
	int64_t t = 0;
	assert_int_equal(dk_time_parse(&t, s), 0);
	return t;
}

static dk_flow *load(const char *xml)
{
	dk_flow *f = NULL;
	dk_diags d = DK_DIAGS_INIT;
	int err = dk_flow_load_buffer(&f, "test.xml", xml, strlen(xml), &d);
	if (err < 0)
		dk_diags_print(&d, stderr);
	dk_diags_free(&d);
	assert_int_equal(err, 0);
	return f;
}

static int setup_org(void **state)
{
	(void)state;
	return dk_org_load_buffer(&org, "org.xml", ORG, strlen(ORG), NULL);
}

static int teardown_org(void **state)
{
	(void)state;
	dk_org_free(org);
	return 0;
}

/* One instance under test: the flow, the environment and the latest
 * result (whose snapshot is the instance's current one). */
typedef struct {
	dk_flow *flow;
	dk_engine_env env;
	dk_delegation dels[4];
	dk_engine_result res;
} inst;

static void begin(inst *in, const char *xml, const char *actor, const char *const *vars, size_t n)
{
	memset(in, 0, sizeof(*in));
	in->flow = load(xml);
	in->env.flow = in->flow;
	in->env.org = org;
	in->env.delegations = in->dels;
	in->env.now = T("2026-11-02T09:00:00Z");
	int err = dk_engine_start(&in->res, &in->env, "I-1", actor, vars, n);
	if (err < 0)
		fail_msg("start: %s", dk_error_last());
}

static void end(inst *in)
{
	dk_engine_result_free(&in->res);
	dk_flow_free(in->flow);
}

static dk_snapshot *snap(inst *in)
{
	return in->res.snapshot;
}

/* Every task.assigned event's data is the bytes jansson writes for the
 * same object (the engine writes it directly), from its task. */
static void check_assigned(const dk_engine_result *r)
{
	for (size_t i = 0; i < r->nevents; i++) {
		const dk_event *e = &r->events[i];
		const dk_task *t = NULL;
		json_t *o, *v;
		char *want;
		if (strcmp(e->type, DK_EV_ASSIGNED) != 0)
			continue;
		for (size_t j = 0; j < r->ntasks && !t; j++)
			if (strcmp(r->tasks[j].state, e->to) == 0 &&
			    strcmp(r->tasks[j].user, e->user) == 0)
				t = &r->tasks[j];
		assert_non_null(t);
		o = json_object();
		json_object_set_new(o, "assignee", json_string(t->user));
		json_object_set_new(o, "state", json_string(t->state));
		if (t->role && (v = json_string(t->role)) != NULL)
			json_object_set_new(o, "role", v);
		if (t->due_at) {
			char at[DK_TIME_STRLEN];
			dk_time_format(at, t->due_at);
			json_object_set_new(o, "due_at", json_string(at));
		}
		want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		assert_string_equal(e->data, want);
		free(want);
		json_decref(o);
	}
}

/* Runs a result-producing step; on success it becomes the current one. */
static int adopt(inst *in, int err, dk_engine_result *next)
{
	if (err == 0) {
		check_assigned(next);
		dk_engine_result_free(&in->res);
		in->res = *next;
	} else {
		assert_null(next->snapshot);
	}
	return err;
}

static int act_full(inst *in, const char *tid, const char *actor, const char *comment,
                    const char *const *vars, size_t nvars, const char *state)
{
	dk_fire_cmd cmd = DK_FIRE_CMD_INIT;
	dk_engine_result next;
	cmd.transition = tid;
	cmd.actor = actor;
	cmd.comment = comment;
	cmd.vars = vars;
	cmd.nvars = nvars;
	cmd.state = state;
	return adopt(in, dk_engine_fire(&next, &in->env, snap(in), &cmd), &next);
}

static int act(inst *in, const char *tid, const char *actor)
{
	return act_full(in, tid, actor, NULL, NULL, 0, NULL);
}

/* An upload; when it succeeds its evidence.attached data must be the bytes
 * jansson writes for the same object (the engine writes it directly). */
static int attach_full(inst *in, const char *kind, const char *actor, const char *name,
                       const char *sha256, int64_t size)
{
	dk_evidence_cmd cmd = {kind, actor, name, sha256, size};
	dk_engine_result next;
	int err = adopt(in, dk_engine_evidence(&next, &in->env, snap(in), &cmd), &next);
	if (err == 0) {
		const dk_event *e = &in->res.events[0];
		const dk_snap_evidence *up = &snap(in)->evidence[snap(in)->nevidence - 1];
		json_t *o = json_object(), *v;
		char *want;
		assert_string_equal(e->type, DK_EV_EVIDENCE);
		json_object_set_new(o, "kind", json_string(kind));
		json_object_set_new(o, "state", json_string(up->state));
		json_object_set_new(o, "visit", json_integer(up->visit));
		json_object_set_new(o, "size", json_integer(size));
		if (name && (v = json_string(name)) != NULL)
			json_object_set_new(o, "name", v);
		if (sha256 && (v = json_string(sha256)) != NULL)
			json_object_set_new(o, "sha256", v);
		want = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		assert_string_equal(e->data, want);
		free(want);
		json_decref(o);
	}
	return err;
}

static int attach(inst *in, const char *kind, const char *actor, const char *name, int64_t size)
{
	return attach_full(in, kind, actor, name, "ab12", size);
}

static size_t count_events(const dk_engine_result *r, const char *type)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nevents; i++)
		n += strcmp(r->events[i].type, type) == 0;
	return n;
}

static const dk_event *event(const dk_engine_result *r, const char *type)
{
	for (size_t i = 0; i < r->nevents; i++)
		if (strcmp(r->events[i].type, type) == 0)
			return &r->events[i];
	return NULL;
}

static int has_task(const dk_engine_result *r, const char *state, const char *user)
{
	for (size_t i = 0; i < r->ntasks; i++)
		if (strcmp(r->tasks[i].state, state) == 0 && strcmp(r->tasks[i].user, user) == 0)
			return 1;
	return 0;
}

static const dk_timer *timer_of(const dk_engine_result *r, const char *kind, const char *state)
{
	for (size_t i = 0; i < r->ntimers; i++)
		if (strcmp(r->timers[i].kind, kind) == 0 && strcmp(r->timers[i].state, state) == 0)
			return &r->timers[i];
	return NULL;
}

/* Fires a copy of a timer (the result it came from is replaced). */
static int fire_timer(inst *in, const char *kind, const char *state)
{
	const dk_timer *t = timer_of(&in->res, kind, state);
	dk_engine_result next;
	dk_timer copy;
	int err;
	assert_non_null(t);
	{
		/* the payload is written directly: jansson's bytes for the
		 * same object */
		json_t *o = json_loads(t->payload, 0, NULL);
		char *again;
		assert_non_null(o);
		assert_string_equal(json_string_value(json_object_get(o, "state")), t->state);
		again = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		assert_string_equal(again, t->payload);
		free(again);
		json_decref(o);
	}
	copy = *t;
	copy.kind = strdup(t->kind);
	copy.state = strdup(t->state);
	copy.payload = strdup(t->payload);
	copy.instance = NULL;
	if (in->env.now < copy.due_at)
		in->env.now = copy.due_at;
	err = adopt(in, dk_engine_timer(&next, &in->env, snap(in), &copy), &next);
	free(copy.kind);
	free(copy.state);
	free(copy.payload);
	return err;
}

static const char *msg(void)
{
	return dk_error_last();
}

#define assert_msg(needle)                                                                         \
	do {                                                                                       \
		if (!strstr(msg(), needle))                                                        \
			fail_msg("message '%s' lacks '%s'", msg(), needle);                        \
	} while (0)

/* The events of a result as one line each: "type actor[ for U] [user]
 * [from>to] [transition]", QP/C style, so a test compares whole traces. */
static char *trace(const dk_engine_result *r)
{
	dk_buf b = DK_BUF_INIT;
	for (size_t i = 0; i < r->nevents; i++) {
		const dk_event *e = &r->events[i];
		dk_buf_printf(&b, "%s %s", e->type, e->actor);
		if (e->on_behalf_of)
			dk_buf_printf(&b, " for %s", e->on_behalf_of);
		if (e->user)
			dk_buf_printf(&b, " @%s", e->user);
		if (e->from || e->to)
			dk_buf_printf(&b, " %s>%s", e->from ? e->from : "", e->to ? e->to : "");
		if (e->transition)
			dk_buf_printf(&b, " %s", e->transition);
		dk_buf_putc(&b, '\n');
	}
	return dk_buf_detach(&b);
}

#define assert_trace(r, want)                                                                      \
	do {                                                                                       \
		char *got_ = trace(r);                                                             \
		if (strcmp(got_, want) != 0)                                                       \
			fail_msg("trace:\n%s\nwant:\n%s", got_, want);                             \
		free(got_);                                                                        \
	} while (0)

static const char *plan_vars[] = {"month=2026-11"};

/* Starts the plan flow as li and brings it to review. */
static void plan_to_review(inst *in)
{
	begin(in, PLAN, "li", plan_vars, 1);
	assert_int_equal(attach(in, "plan", "li", "plan.pdf", 100), 0);
	assert_int_equal(act(in, "submit", "li"), 0);
	assert_string_equal(snap(in)->state, "review");
}

/* ---- start and variables ----------------------------------------------- */

static void start_defaults_and_tasks(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	assert_string_equal(snap(&in)->state, "draft");
	assert_int_equal(snap(&in)->status, DK_INSTANCE_ACTIVE);
	assert_int_equal(snap(&in)->version, 1);
	assert_string_equal(dk_snapshot_var(snap(&in), "phases")->text, "2");
	assert_string_equal(dk_snapshot_var(snap(&in), "month")->text, "2026-11");
	assert_null(dk_snapshot_var(snap(&in), "end"));
	assert_string_equal(in.res.events[0].type, DK_EV_STARTED);
	assert_int_equal(count_events(&in.res, DK_EV_ASSIGNED), 1);
	assert_int_equal(in.res.ntasks, 1);
	assert_true(has_task(&in.res, "draft", "li"));
	assert_int_equal(in.res.ntimers, 0);
	end(&in);
}

static void start_var_errors(void **state)
{
	dk_flow *f = load(PLAN);
	dk_engine_env env = DK_ENGINE_ENV_INIT;
	dk_engine_result r;
	const char *bad_number[] = {"month=x", "phases=three"};
	const char *bad_date[] = {"month=x", "end=30/11/2026"};
	const char *bad_bool[] = {"month=x", "urgent=yes"};
	const char *unknown[] = {"month=x", "colour=red"};
	const char *good[] = {"month=x", "end=2026-11-30", "urgent=true", "phases=4.5"};
	(void)state;
	env.flow = f;
	env.org = org;
	env.now = T("2026-11-02T09:00:00Z");
	assert_int_equal(dk_engine_start(&r, &env, "I", "li", bad_number, 2), DK_EINVALID);
	assert_msg("'phases' must be a number, not 'three'");
	assert_int_equal(dk_engine_start(&r, &env, "I", "li", bad_date, 2), DK_EINVALID);
	assert_msg("'end' must be a date");
	assert_int_equal(dk_engine_start(&r, &env, "I", "li", bad_bool, 2), DK_EINVALID);
	assert_msg("true or false");
	assert_int_equal(dk_engine_start(&r, &env, "I", "li", unknown, 2), DK_EINVALID);
	assert_msg("no variable 'colour'; declared: month, phases, done_phases, urgent, end");
	assert_int_equal(dk_engine_start(&r, &env, "I", "li", NULL, 0), DK_EINVALID);
	assert_msg("requires variable 'month' (string); pass --var month=VALUE");
	assert_int_equal(dk_engine_start(&r, &env, "I", "li", good, 4), 0);
	assert_string_equal(dk_snapshot_var(r.snapshot, "end")->text, "2026-11-30");
	assert_true(dk_snapshot_var(r.snapshot, "urgent")->boolean);
	assert_true(dk_snapshot_var(r.snapshot, "phases")->number == 4.5);
	dk_engine_result_free(&r);
	dk_flow_free(f);
}

/* ---- linear flow ------------------------------------------------------- */

static void linear_approve(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_true(has_task(&in.res, "review", "wei"));
	assert_int_equal(in.res.ntasks, 1);
	const dk_event *e = event(&in.res, DK_EV_FIRED);
	assert_string_equal(e->from, "draft");
	assert_string_equal(e->to, "review");
	assert_string_equal(e->actor, "li");
	assert_int_equal(act(&in, "approve", "wei"), 0);
	assert_string_equal(snap(&in)->state, "in-progress");
	assert_true(has_task(&in.res, "in-progress", "li"));
	assert_int_equal(snap(&in)->version, 4);
	end(&in);
}

static void linear_return_needs_comment(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "return", "wei"), DK_EPRECOND);
	assert_msg("transition 'return' requires a comment; add --comment TEXT");
	assert_int_equal(act_full(&in, "return", "wei", "too vague", NULL, 0, NULL), 0);
	assert_string_equal(snap(&in)->state, "draft");
	assert_string_equal(event(&in.res, DK_EV_FIRED)->comment, "too vague");
	assert_int_equal(dk_snapshot_state(snap(&in), "draft")->visits, 2);
	end(&in);
}

static void unknown_transition_lists_all(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	assert_int_equal(act(&in, "aprove", "li"), DK_ENOTFOUND);
	assert_msg("no transition 'aprove'; it has: submit, approve, return, phase-done, finish, "
	           "sign");
	end(&in);
}

static void unavailable_transition_conflict(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	assert_int_equal(act(&in, "approve", "wei"), DK_ECONFLICT);
	assert_msg("transition 'approve' is not available in state 'draft'; available: submit");
	end(&in);
}

static void stale_version_conflict(void **state)
{
	inst in;
	dk_fire_cmd cmd = DK_FIRE_CMD_INIT;
	dk_engine_result r;
	(void)state;
	plan_to_review(&in);
	cmd.transition = "approve";
	cmd.actor = "wei";
	cmd.expect_version = 1;
	assert_int_equal(dk_engine_fire(&r, &in.env, snap(&in), &cmd), DK_ECONFLICT);
	assert_msg("is at version 3, not 1");
	cmd.expect_version = 3;
	assert_int_equal(dk_engine_fire(&r, &in.env, snap(&in), &cmd), 0);
	dk_engine_result_free(&r);
	end(&in);
}

static void forbidden_actor(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "li"), DK_EFORBIDDEN);
	assert_msg("li may not act on 'review': it is assigned to wei (head of sales)");
	assert_string_equal(snap(&in)->state, "review");
	end(&in);
}

static void transition_role_narrows(void **state)
{
	inst in;
	const char *two[] = {"phases=0"};
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	assert_int_equal(act_full(&in, "finish", "li", NULL, two, 1, NULL), 0);
	assert_string_equal(snap(&in)->state, "signoff");
	/* signoff is assigned to every employee; sign needs dept-head too */
	assert_true(has_task(&in.res, "signoff", "li"));
	/* five of them: more than a user list holds before it allocates */
	assert_int_equal(in.res.ntasks, 5);
	assert_true(has_task(&in.res, "signoff", "he"));
	assert_int_equal(act(&in, "sign", "li"), DK_EFORBIDDEN);
	assert_msg("needs role 'dept-head'");
	assert_int_equal(act(&in, "sign", "wei"), 0);
	assert_int_equal(snap(&in)->status, DK_INSTANCE_COMPLETED);
	assert_int_equal(in.res.ntasks, 0);
	assert_int_equal(count_events(&in.res, DK_EV_COMPLETED), 1);
	assert_int_equal(act(&in, "sign", "wei"), DK_ECONFLICT);
	assert_msg("already completed");
	end(&in);
}

/* ---- guards, sets, evidence -------------------------------------------- */

static void guard_false_shows_text(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	assert_int_equal(act(&in, "finish", "li"), DK_EPRECOND);
	assert_msg("its guard '$done_phases >= $phases' is false");
	end(&in);
}

/* Names and hashes with bytes to escape, past the writer's eight-byte
 * steps, not UTF-8, or missing: the event's data is still jansson's. */
static void evidence_data_matches_jansson(void **state)
{
	static const char *const names[] = {
	    "r.pdf",
	    "quote\" and back\\slash in a long report name.pdf",
	    "\xe6\x9d\x8e\xe6\x98\x8e \xe7\x9a\x84\xe7\xac\xac\xe4\xb8\x89 quarterly report.pdf",
	    "tab\tand newline\n in the name of the file.pdf",
	    "not utf-8 after eight bytes \xc3.pdf",
	    NULL,
	};
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(
		    attach_full(&in, "phase-report", "li", names[i],
		                i % 2 ? NULL : "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
		                (int64_t)i * 1000),
		    0);
		assert_int_equal(
		    attach_full(&in, "phase-report", "li", names[i], "bad \xff hash", 7), 0);
	}
	end(&in);
}

static void set_arithmetic_and_types(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(attach(&in, "phase-report", "li", "r.pdf", 10), 0);
		assert_int_equal(act(&in, "phase-done", "li"), 0);
	}
	assert_string_equal(dk_snapshot_var(snap(&in), "done_phases")->text, "2");
	assert_true(dk_snapshot_var(snap(&in), "done_phases")->number == 2);
	const dk_event *e = event(&in.res, DK_EV_FIRED);
	assert_non_null(strstr(e->data, "\"done_phases\":{\"from\":1"));
	assert_int_equal(act(&in, "finish", "li"), 0);
	/* a boolean set is converted with boolean() */
	assert_int_equal(dk_snapshot_var(snap(&in), "urgent")->type, DK_VAR_BOOLEAN);
	assert_false(dk_snapshot_var(snap(&in), "urgent")->boolean);
	end(&in);
}

static void requires_evidence_message(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	assert_int_equal(act(&in, "submit", "li"), DK_EPRECOND);
	assert_msg("transition 'submit' requires evidence 'plan' (Plan document); attach it with "
	           "docket attach I-1 FILE --evidence plan");
	end(&in);
}

static void requires_evidence_of_this_visit(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act_full(&in, "return", "wei", "redo", NULL, 0, NULL), 0);
	/* the plan uploaded in the first visit of draft does not count */
	assert_int_equal(act(&in, "submit", "li"), DK_EPRECOND);
	assert_int_equal(attach(&in, "plan", "li", "plan2.docx", 100), 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(snap(&in)->nevidence, 2);
	assert_int_equal(snap(&in)->evidence[1].visit, 2);
	end(&in);
}

static void evidence_freeze(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(attach(&in, "plan", "li", "better.pdf", 100), 0);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	assert_int_equal(attach(&in, "plan", "li", "sneaky.pdf", 100), DK_EPRECOND);
	assert_msg("evidence 'plan' is frozen since state 'in-progress': the approved plan cannot "
	           "be replaced");
	end(&in);
}

static void evidence_checks(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	assert_int_equal(attach(&in, "photo", "li", "a.jpg", 1), DK_ENOTFOUND);
	assert_msg("it has: plan, phase-report");
	assert_int_equal(attach(&in, "plan", "li", "a.jpg", 1), DK_EINVALID);
	assert_msg("takes pdf, docx files");
	assert_int_equal(attach(&in, "plan", "li", "a.pdf", 5000), DK_EINVALID);
	assert_msg("at most 1024 bytes");
	assert_int_equal(attach(&in, "plan", "zhao", "a.pdf", 10), DK_EFORBIDDEN);
	assert_int_equal(attach(&in, "plan", "li", "A.PDF", 10), 0);
	const dk_event *e = event(&in.res, DK_EV_EVIDENCE);
	assert_non_null(e);
	assert_non_null(strstr(e->data, "\"kind\":\"plan\""));
	assert_int_equal(in.res.ntasks, 1); /* tasks unchanged, no new assignment */
	assert_int_equal(count_events(&in.res, DK_EV_ASSIGNED), 0);
	end(&in);
}

/* ---- delegation -------------------------------------------------------- */

static void delegation_acts_for(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	in.dels[0] = (dk_delegation){"wei", "wang", NULL, T("2026-11-01T00:00:00Z"),
	                             T("2026-11-10T00:00:00Z")};
	in.env.ndelegations = 1;
	assert_int_equal(act(&in, "approve", "wang"), 0);
	const dk_event *e = event(&in.res, DK_EV_FIRED);
	assert_string_equal(e->actor, "wang");
	assert_string_equal(e->on_behalf_of, "wei");
	end(&in);
}

static void delegation_expired_or_other_role(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	in.dels[0] = (dk_delegation){"wei", "wang", NULL, T("2026-10-01T00:00:00Z"),
	                             T("2026-11-01T00:00:00Z")};
	in.dels[1] = (dk_delegation){"wei", "wang", "hr", 0, 0};
	in.env.ndelegations = 2;
	assert_int_equal(act(&in, "approve", "wang"), DK_EFORBIDDEN);
	assert_msg("wang may not act on 'review'");
	end(&in);
}

static void delegation_for_role(void **state)
{
	inst in;
	const char *none[] = {"phases=0"};
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	assert_int_equal(act_full(&in, "finish", "li", NULL, none, 1, NULL), 0);
	/* wei delegates his dept-head authority to zhao, who is no employee */
	in.dels[0] = (dk_delegation){"wei", "zhao", "dept-head", 0, 0};
	in.env.ndelegations = 1;
	assert_int_equal(act(&in, "sign", "zhao"), 0);
	assert_string_equal(event(&in.res, DK_EV_FIRED)->on_behalf_of, "wei");
	end(&in);
}

/* ---- recall ------------------------------------------------------------ */

static void recall_before_acting(void **state)
{
	inst in;
	dk_engine_result r;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(dk_engine_recall(&r, &in.env, snap(&in), "wei", NULL), DK_EFORBIDDEN);
	assert_msg("only its initiator (li)");
	assert_int_equal(adopt(&in, dk_engine_recall(&r, &in.env, snap(&in), "li", "oops"), &r), 0);
	assert_string_equal(snap(&in)->state, "draft");
	assert_int_equal(snap(&in)->status, DK_INSTANCE_RECALLED);
	assert_string_equal(event(&in.res, DK_EV_RECALLED)->from, "review");
	assert_true(has_task(&in.res, "draft", "li"));
	assert_false(has_task(&in.res, "review", "wei"));
	assert_int_equal(dk_engine_recall(&r, &in.env, snap(&in), "li", NULL), DK_ECONFLICT);
	assert_msg("already in its initial state");
	/* submitting again makes it active */
	assert_int_equal(attach(&in, "plan", "li", "plan.pdf", 10), 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(snap(&in)->status, DK_INSTANCE_ACTIVE);
	end(&in);
}

static void recall_refused_after_acting(void **state)
{
	inst in;
	dk_engine_result r;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	assert_int_equal(dk_engine_recall(&r, &in.env, snap(&in), "li", NULL), DK_ECONFLICT);
	assert_msg("can no longer be recalled");
	end(&in);
}

/* ---- quorum ------------------------------------------------------------ */

static void quorum_all_approves(void **state)
{
	inst in;
	(void)state;
	begin(&in, QUORUM, "li", NULL, 0);
	assert_int_equal(act(&in, "to-all", "li"), 0);
	assert_int_equal(in.res.ntasks, 3); /* wang, qian, he */
	assert_int_equal(act(&in, "approve", "wang"), 0);
	assert_string_equal(snap(&in)->state, "all");
	assert_int_equal(count_events(&in.res, DK_EV_VOTE), 1);
	assert_false(has_task(&in.res, "all", "wang"));
	assert_int_equal(in.res.ntasks, 2);
	assert_int_equal(act(&in, "approve", "wang"), DK_ECONFLICT);
	assert_msg("wang has already voted 'approve'");
	assert_int_equal(act(&in, "approve", "qian"), 0);
	assert_string_equal(snap(&in)->state, "all");
	assert_int_equal(act(&in, "approve", "he"), 0);
	assert_string_equal(snap(&in)->state, "done");
	assert_int_equal(count_events(&in.res, DK_EV_FIRED), 1);
	assert_int_equal(snap(&in)->nvotes, 0);
	end(&in);
}

static void quorum_all_veto(void **state)
{
	inst in;
	(void)state;
	begin(&in, QUORUM, "li", NULL, 0);
	assert_int_equal(act(&in, "to-all", "li"), 0);
	assert_int_equal(act(&in, "approve", "wang"), 0);
	assert_int_equal(act(&in, "reject", "he"), DK_EPRECOND); /* comment required */
	assert_int_equal(act_full(&in, "reject", "he", "no budget", NULL, 0, NULL), 0);
	assert_string_equal(snap(&in)->state, "draft");
	assert_int_equal(count_events(&in.res, DK_EV_VOTE), 1);
	assert_int_equal(count_events(&in.res, DK_EV_FIRED), 1);
	/* the next round starts with no votes */
	assert_int_equal(act(&in, "to-all", "li"), 0);
	assert_int_equal(in.res.ntasks, 3);
	end(&in);
}

static void quorum_any_first_decides(void **state)
{
	inst in;
	(void)state;
	begin(&in, QUORUM, "li", NULL, 0);
	assert_int_equal(act(&in, "to-any", "li"), 0);
	assert_int_equal(act(&in, "reject", "qian"), 0);
	assert_string_equal(snap(&in)->state, "draft");
	end(&in);
}

static void quorum_two(void **state)
{
	inst in;
	(void)state;
	begin(&in, QUORUM, "li", NULL, 0);
	assert_int_equal(act(&in, "to-two", "li"), 0);
	assert_int_equal(act(&in, "approve", "qian"), 0);
	assert_int_equal(act(&in, "reject", "he"), 0);
	assert_string_equal(snap(&in)->state, "two");
	assert_int_equal(act(&in, "approve", "wang"), 0);
	assert_string_equal(snap(&in)->state, "done");
	assert_int_equal(snap(&in)->status, DK_INSTANCE_COMPLETED);
	assert_int_equal(act(&in, "approve", "li"), DK_ECONFLICT);
	end(&in);
}

/* ---- parallel ---------------------------------------------------------- */

static void parallel_three_regions_join(void **state)
{
	inst in;
	const char *ids[8];
	(void)state;
	begin(&in, PARALLEL, "li", NULL, 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_string_equal(snap(&in)->state, "checks");
	assert_int_equal(snap(&in)->nregions, 3);
	assert_int_equal(dk_snapshot_active(snap(&in), ids, 8), 3);
	assert_string_equal(ids[2], "book");
	assert_true(has_task(&in.res, "docs", "wang"));
	assert_true(has_task(&in.res, "money", "qian"));
	assert_true(has_task(&in.res, "book", "he"));
	assert_int_equal(in.res.ntasks, 3);
	assert_non_null(timer_of(&in.res, "remind", "book"));

	assert_int_equal(act(&in, "approve", "wang"), 0);
	assert_string_equal(snap(&in)->regions[0].state, "docs-ok");
	assert_int_equal(act(&in, "submit", "he"), DK_EPRECOND);
	assert_int_equal(attach(&in, "booking", "he", "b.pdf", 1), 0);
	assert_string_equal(snap(&in)->evidence[0].state, "book");
	assert_int_equal(act(&in, "submit", "he"), 0);
	/* qian holds money and book-approve: approve is ambiguous */
	assert_int_equal(act(&in, "approve", "qian"), DK_ECONFLICT);
	assert_msg("several active states (money, book-approve)");
	assert_int_equal(act_full(&in, "approve", "qian", NULL, NULL, 0, "money"), 0);
	assert_string_equal(snap(&in)->state, "checks");
	assert_int_equal(act_full(&in, "approve", "qian", NULL, NULL, 0, "book-approve"), 0);
	/* every region final: the join fired in the same command */
	assert_string_equal(snap(&in)->state, "dispatch");
	assert_int_equal(snap(&in)->nregions, 0);
	assert_int_equal(count_events(&in.res, DK_EV_FIRED), 2);
	assert_string_equal(in.res.events[1].actor, DK_SYSTEM_ACTOR);
	assert_string_equal(in.res.events[1].from, "checks");
	assert_true(has_task(&in.res, "dispatch", "he"));
	assert_int_equal(in.res.ntimers, 0);
	end(&in);
}

static void parallel_level_transition_leaves_all(void **state)
{
	inst in;
	(void)state;
	begin(&in, PARALLEL, "li", NULL, 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(act(&in, "approve", "wang"), 0);
	/* any active region's assignee, or the parallel's own, may cancel */
	assert_int_equal(act(&in, "cancel", "zhao"), DK_EFORBIDDEN);
	assert_int_equal(act_full(&in, "cancel", "he", "customer withdrew", NULL, 0, NULL), 0);
	assert_string_equal(snap(&in)->state, "cancelled");
	assert_int_equal(snap(&in)->nregions, 0);
	assert_int_equal(snap(&in)->status, DK_INSTANCE_COMPLETED);
	assert_int_equal(in.res.ntasks, 0);
	assert_int_equal(in.res.ntimers, 0);
	end(&in);
}

static void parallel_region_return(void **state)
{
	inst in;
	(void)state;
	begin(&in, PARALLEL, "li", NULL, 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(attach(&in, "booking", "he", "b.pdf", 1), 0);
	assert_int_equal(act(&in, "submit", "he"), 0);
	assert_int_equal(act(&in, "return", "qian"), 0);
	assert_string_equal(snap(&in)->regions[2].state, "book");
	assert_int_equal(dk_snapshot_state(snap(&in), "book")->visits, 2);
	/* the booking of the first visit does not count any more */
	assert_int_equal(act(&in, "submit", "he"), DK_EPRECOND);
	end(&in);
}

/* ---- timers ------------------------------------------------------------ */

static void timers_armed_on_entry(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	const dk_timer *d = timer_of(&in.res, "escalate", "review");
	const dk_timer *r = timer_of(&in.res, "remind", "review");
	assert_non_null(d);
	assert_non_null(r);
	assert_int_equal(d->due_at, T("2026-11-05T09:00:00Z"));
	assert_int_equal(r->due_at, T("2026-11-03T09:00:00Z"));
	assert_int_equal(in.res.tasks[0].due_at, T("2026-11-05T09:00:00Z"));
	assert_string_equal(d->instance, "I-1");
	assert_int_equal(act(&in, "approve", "wei"), 0);
	assert_int_equal(in.res.ntimers, 0); /* exit disarms */
	end(&in);
}

static void timer_remind_rearms(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	in.env.now = T("2026-11-03T10:00:00Z");
	assert_int_equal(fire_timer(&in, "remind", "review"), 0);
	const dk_event *e = event(&in.res, DK_EV_REMINDER);
	assert_non_null(e);
	assert_string_equal(e->user, "wei");
	assert_int_equal(timer_of(&in.res, "remind", "review")->due_at, T("2026-11-04T09:00:00Z"));
	end(&in);
}

static void timer_escalates(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(fire_timer(&in, "escalate", "review"), 0);
	assert_int_equal(count_events(&in.res, DK_EV_MISSED), 1);
	/* both division leaders hold the role */
	assert_int_equal(count_events(&in.res, DK_EV_ESCALATED), 2);
	assert_true(has_task(&in.res, "review", "zhao"));
	assert_true(has_task(&in.res, "review", "wei"));
	assert_null(timer_of(&in.res, "escalate", "review"));
	assert_non_null(timer_of(&in.res, "remind", "review"));
	/* the escalation target may act now */
	assert_int_equal(act(&in, "approve", "zhao"), 0);
	assert_string_equal(snap(&in)->state, "in-progress");
	end(&in);
}

static void timer_fires_transition(void **state)
{
	inst in;
	(void)state;
	begin(&in, TIMED, "li", NULL, 0);
	assert_int_equal(fire_timer(&in, "fire", "wait"), 0);
	assert_string_equal(snap(&in)->state, "expired");
	const dk_event *e = event(&in.res, DK_EV_FIRED);
	assert_string_equal(e->actor, DK_SYSTEM_ACTOR);
	assert_string_equal(e->transition, "expire");
	assert_int_equal(snap(&in)->status, DK_INSTANCE_COMPLETED);
	end(&in);
}

static void timer_fire_guard_false(void **state)
{
	inst in;
	const char *no[] = {"ok=false"};
	(void)state;
	begin(&in, TIMED, "li", no, 1);
	assert_int_equal(fire_timer(&in, "fire", "wait"), 0);
	assert_string_equal(snap(&in)->state, "wait");
	assert_int_equal(count_events(&in.res, DK_EV_TIMER_DROP), 1);
	assert_int_equal(count_events(&in.res, DK_EV_MISSED), 1);
	end(&in);
}

static void timer_at_expression(void **state)
{
	inst in;
	(void)state;
	begin(&in, TIMED, "li", NULL, 0);
	/* day-of-month(8, 1) from 2026-11-02 in Shanghai: 2026-12-08 00:00 +08 */
	assert_int_equal(timer_of(&in.res, "deadline", "wait")->due_at, T("2026-12-07T16:00:00Z"));
	end(&in);
}

static void timer_of_left_state_dropped(void **state)
{
	inst in;
	dk_timer old;
	dk_engine_result r;
	(void)state;
	begin(&in, TIMED, "li", NULL, 0);
	const dk_timer *t = timer_of(&in.res, "fire", "wait");
	old.instance = NULL;
	old.kind = strdup(t->kind);
	old.state = strdup(t->state);
	old.payload = strdup(t->payload);
	old.due_at = t->due_at;
	assert_int_equal(act(&in, "go", "li"), 0);
	int64_t version = snap(&in)->version;
	in.env.now = T("2026-11-02T12:00:00Z");
	assert_int_equal(adopt(&in, dk_engine_timer(&r, &in.env, snap(&in), &old), &r), 0);
	assert_string_equal(snap(&in)->state, "next");
	assert_int_equal(in.res.nevents, 1);
	assert_string_equal(in.res.events[0].type, DK_EV_TIMER_DROP);
	assert_non_null(strstr(in.res.events[0].data, "the state was left"));
	assert_int_equal(snap(&in)->version, version);
	free(old.kind);
	free(old.state);
	free(old.payload);
	end(&in);
}

static void timer_not_due_refused(void **state)
{
	inst in;
	dk_engine_result r;
	(void)state;
	begin(&in, TIMED, "li", NULL, 0);
	assert_int_equal(dk_engine_timer(&r, &in.env, snap(&in), timer_of(&in.res, "fire", "wait")),
	                 DK_ECONFLICT);
	assert_msg("not due yet");
	end(&in);
}

/* ---- snapshot ---------------------------------------------------------- */

static void snapshot_json_round_trip(void **state)
{
	inst in;
	char *a = NULL, *b = NULL;
	dk_snapshot *back = NULL;
	(void)state;
	begin(&in, PARALLEL, "li", NULL, 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(attach(&in, "booking", "he", "b.pdf", 7), 0);
	assert_int_equal(dk_snapshot_to_json(&a, snap(&in)), 0);
	assert_non_null(strstr(a, "\"format\":1"));
	assert_non_null(strstr(a, "\"region\":\"logistics\""));
	assert_null(strchr(a, '\n')); /* compact: rewritten at every step */
	/* a snapshot stored indented, as before, reads the same */
	{
		json_t *j = json_loads(a, 0, NULL);
		char *indented = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
		assert_non_null(strchr(indented, '\n'));
		assert_int_equal(dk_snapshot_from_json(&back, indented), 0);
		assert_int_equal(dk_snapshot_to_json(&b, back), 0);
		assert_string_equal(a, b);
		dk_snapshot_free(back);
		free(b);
		free(indented);
		json_decref(j);
	}
	/* written straight, byte for byte what jansson's tree gave */
	{
		json_t *j = json_loads(a, 0, NULL);
		char *again = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		assert_string_equal(again, a);
		free(again);
		json_decref(j);
	}
	assert_int_equal(dk_snapshot_from_json(&back, a), 0);
	assert_int_equal(dk_snapshot_to_json(&b, back), 0);
	assert_string_equal(a, b);
	assert_int_equal(back->nregions, 3);
	/* a string that is not UTF-8 is left out, as the tree left it out */
	{
		dk_snapshot *odd = dk_snapshot_dup(back);
		char *c = NULL;
		dk__snap_setstr(odd, &odd->initiator, "he\xc3");
		assert_int_equal(dk_snapshot_to_json(&c, odd), 0);
		assert_null(strstr(c, "\"initiator\""));
		assert_non_null(strstr(c, "\"region\":\"logistics\""));
		free(c);
		dk_snapshot_free(odd);
	}
	assert_int_equal(back->evidence[0].size, 7);
	/* the parsed copy works as input */
	dk_snapshot_free(in.res.snapshot);
	in.res.snapshot = back;
	assert_int_equal(act(&in, "submit", "he"), 0);
	free(a);
	free(b);
	end(&in);
}

static void snapshot_vars_round_trip(void **state)
{
	inst in;
	const char *vars[] = {"month=2026-11", "phases=2.5", "urgent=true",
	                      "end=2026-11-30T18:00:00+08:00"};
	char *a = NULL, *b = NULL;
	dk_snapshot *back = NULL;
	(void)state;
	begin(&in, PLAN, "li", vars, 4);
	assert_int_equal(dk_snapshot_to_json(&a, snap(&in)), 0);
	assert_non_null(strstr(a, "\"value\":2.5"));
	assert_non_null(strstr(a, "\"value\":true"));
	assert_non_null(strstr(a, "\"value\":\"2026-11-30T10:00:00Z\""));
	assert_int_equal(dk_snapshot_from_json(&back, a), 0);
	assert_true(dk_snapshot_var(back, "phases")->number == 2.5);
	assert_string_equal(dk_snapshot_var(back, "phases")->text, "2.5");
	assert_int_equal(dk_snapshot_to_json(&b, back), 0);
	assert_string_equal(a, b);
	dk_snapshot_free(back);
	free(a);
	free(b);
	end(&in);
}

/* Replaces the first from in text (a copy, caller frees). */
static char *replaced(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	dk_buf b = DK_BUF_INIT;
	assert_non_null(at);
	dk_buf_put(&b, text, (size_t)(at - text));
	dk_buf_puts(&b, to);
	dk_buf_puts(&b, at + strlen(from));
	return dk_buf_detach(&b);
}

/* The straight reader takes the text this build writes and gives up on
 * anything else, which the tree reader then reads or refuses as before:
 * escaped strings come back whole, a damaged compact text is refused. */
static void snapshot_straight_reader_agrees(void **state)
{
	inst in;
	const char *vars[] = {"month=say \"hi\\there\"\n", "phases=3"};
	char *a = NULL, *b = NULL, *bad;
	dk_snapshot *back = NULL;
	(void)state;
	begin(&in, PLAN, "li", vars, 2);
	assert_int_equal(attach(&in, "plan", "li", "p.pdf", 7), 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(dk_snapshot_to_json(&a, snap(&in)), 0);
	assert_non_null(strstr(a, "say \\\"hi\\\\there\\\"\\n"));
	assert_int_equal(dk_snapshot_from_json(&back, a), 0);
	assert_string_equal(dk_snapshot_var(back, "month")->text, "say \"hi\\there\"\n");
	assert_int_equal(dk_snapshot_to_json(&b, back), 0);
	assert_string_equal(a, b);
	dk_snapshot_free(back);
	free(b);
	/* without the escapes: read straight, the same snapshot again */
	bad = replaced(a, "say \\\"hi\\\\there\\\"\\n", "plain");
	assert_int_equal(dk_snapshot_from_json(&back, bad), 0);
	assert_string_equal(dk_snapshot_var(back, "month")->text, "plain");
	assert_int_equal(back->states[0].visits, 1);
	assert_int_equal(back->nevidence, 1);
	assert_int_equal(back->evidence[0].size, 7);
	assert_int_equal(back->states[1].ndeadlines, 1);
	assert_true(back->states[1].deadlines[0].next_remind > 0);
	assert_int_equal(dk_snapshot_to_json(&b, back), 0);
	assert_string_equal(bad, b);
	dk_snapshot_free(back);
	free(b);
	/* damaged in ways only a strict reader sees */
	const char *cuts[][2] = {
	    {"\"visits\":1", "\"visits\":01"},  {"\"status\":\"active\"", "\"status\":\"paused\""},
	    {"\"plain\"", "\"pl\x01in\""},      {"\"phases\"", "\"phases\xc3\""},
	    {"\"votes\":[]", "\"votes\":[]}"},  {"\"votes\":[]", "\"votes\":["},
	    {"\"visits\":1", "\"visits\":1.5"},
	};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char *t = replaced(bad, cuts[i][0], cuts[i][1]);
		if (dk_snapshot_from_json(&back, t) != DK_EINVALID)
			fail_msg("accepted %s", t);
		assert_null(back);
		free(t);
	}
	free(bad);
	free(a);
	end(&in);
}

static void snapshot_rejects_garbage(void **state)
{
	dk_snapshot *s = NULL;
	(void)state;
	assert_int_equal(dk_snapshot_from_json(&s, "not json"), DK_EINVALID);
	assert_msg("restore the instance");
	assert_int_equal(dk_snapshot_from_json(&s, "{\"format\":1,\"flow\":{\"id\":\"x\"}}"),
	                 DK_EINVALID);
	assert_msg("'state'");
	assert_int_equal(dk_snapshot_from_json(&s, "{\"format\":99}"), DK_EINVALID);
	assert_msg("upgrade docket");
	/* wrong types anywhere are refused, never half read */
	const char *bad[] = {
	    "[]",
	    "{\"flow\":{\"id\":\"x\"},\"state\":\"a\",\"status\":\"paused\"}",
	    "{\"flow\":{\"id\":\"x\"},\"state\":\"a\",\"regions\":[1]}",
	    "{\"flow\":{\"id\":\"x\"},\"state\":\"a\",\"states\":[{\"state\":\"a\","
	    "\"deadlines\":\"soon\"}]}",
	    "{\"flow\":{\"id\":\"x\"},\"state\":\"a\",\"vars\":[{\"name\":\"n\","
	    "\"type\":\"number\",\"value\":\"3\"}]}",
	    "{\"flow\":{\"id\":\"x\"},\"state\":\"a\",\"created_at\":\"yesterday\"}",
	    "{\"flow\":{\"id\":\"x\"},\"state\":\"a\",\"votes\":[{\"state\":\"a\"}]}",
	    "{\"flow\":{\"id\":\"x\"},\"state\":\"a\",\"version\":\"3\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dk_snapshot_from_json(&s, bad[i]) != DK_EINVALID)
			fail_msg("accepted %s", bad[i]);
		assert_null(s);
	}
	/* an older snapshot lacking optional keys still loads */
	assert_int_equal(dk_snapshot_from_json(&s, "{\"flow\":{\"id\":\"x\",\"version\":1},"
	                                           "\"state\":\"a\"}"),
	                 0);
	assert_int_equal(s->status, DK_INSTANCE_ACTIVE);
	assert_int_equal(s->nvars, 0);
	dk_snapshot_free(s);
}

static void deterministic(void **state)
{
	inst a, b;
	char *ja = NULL, *jb = NULL;
	(void)state;
	plan_to_review(&a);
	plan_to_review(&b);
	assert_int_equal(dk_snapshot_to_json(&ja, snap(&a)), 0);
	assert_int_equal(dk_snapshot_to_json(&jb, snap(&b)), 0);
	assert_string_equal(ja, jb);
	assert_int_equal(a.res.nevents, b.res.nevents);
	free(ja);
	free(jb);
	end(&a);
	end(&b);
}

static void view_and_available(void **state)
{
	inst in;
	dk_engine_result v;
	const char *ids[8];
	(void)state;
	plan_to_review(&in);
	assert_int_equal(dk_engine_view(&v, &in.env, snap(&in)), 0);
	assert_int_equal(v.ntasks, 1);
	assert_int_equal(v.ntimers, 2);
	assert_int_equal(v.nevents, 0);
	dk_engine_result_free(&v);
	assert_int_equal(dk_engine_available(&in.env, snap(&in), "wei", ids, 8), 2);
	assert_string_equal(ids[0], "approve");
	assert_string_equal(ids[1], "return");
	assert_int_equal(dk_engine_available(&in.env, snap(&in), "li", ids, 8), 0);
	end(&in);
}

/* ---- dk: functions ----------------------------------------------------- */

static void every_fn_implemented(void **state)
{
	(void)state;
	int n = 0;
	for (const dk_fn_info *f = dk_fn_table(); f->name; f++, n++)
		if (!dk_engine_has_fn(f->name))
			fail_msg("dk:%s is in dk_fn_table but the engine lacks it", f->name);
	assert_true(n >= 19);
	assert_false(dk_engine_has_fn("no-such"));
}

/* Evaluates text against the current snapshot of in as li at now. */
static char *ev(inst *in, const char *text, const char *now)
{
	dk_xpath x = {(char *)text, xmlXPathCompile((const xmlChar *)text), 1, NULL};
	char *out = NULL;
	dk_engine_env env = in->env;
	if (now)
		env.now = T(now);
	assert_non_null(x.comp);
	if (dk_engine_eval_string(&out, &env, snap(in), "li", &x) < 0)
		fail_msg("%s: %s", text, dk_error_last());
	xmlXPathFreeCompExpr(x.comp);
	return out;
}

#define assert_eval(in, text, now, want)                                                           \
	do {                                                                                       \
		char *got_ = ev(in, text, now);                                                    \
		if (strcmp(got_, want) != 0)                                                       \
			fail_msg("%s gave '%s', want '%s'", text, got_, want);                     \
		free(got_);                                                                        \
	} while (0)

static void fn_org(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	assert_eval(&in, "dk:head-of($initiator)", NULL, "wei");
	assert_eval(&in, "dk:dept-of('qian')", NULL, "finance");
	assert_eval(&in, "dk:division-leader-of('he')", NULL, "sun");
	assert_eval(&in, "dk:name-of('li')", NULL, "Li Ming");
	assert_eval(&in, "dk:name-of('nobody')", NULL, "");
	assert_eval(&in, "dk:members('board')", NULL, "wang qian he");
	assert_eval(&in, "dk:members('board', 'finance')", NULL, "qian he");
	assert_eval(&in, "concat($actor, '/', $state, '/', $instance)", NULL, "li/draft/I-1");
	end(&in);
}

static void fn_clock(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	assert_eval(&in, "dk:now()", "2026-11-03T01:02:03Z", "2026-11-03T01:02:03Z");
	assert_eval(&in, "dk:entered-at()", "2026-11-05T00:00:00Z", "2026-11-02T09:00:00Z");
	assert_eval(&in, "dk:min(3, $phases)", NULL, "2");
	assert_eval(&in, "dk:max(3, $phases)", NULL, "3");
	end(&in);
}

static void fn_calendar_month_end_and_leap_day(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	/* Shanghai is UTC+8: local midnight is 16:00Z the day before */
	assert_eval(&in, "dk:day-of-month(8)", "2026-11-02T09:00:00Z", "2026-11-07T16:00:00Z");
	/* 2026-11-30T17:00Z is already December 1st in Shanghai */
	assert_eval(&in, "dk:day-of-month(8)", "2026-11-30T17:00:00Z", "2026-12-07T16:00:00Z");
	assert_eval(&in, "dk:day-of-month(31, 3)", "2027-11-15T00:00:00Z",
	            "2028-02-28T16:00:00Z"); /* Feb 29 2028, clamped */
	assert_eval(&in, "dk:day-of-month(30, 3)", "2026-11-15T00:00:00Z",
	            "2027-02-27T16:00:00Z"); /* Feb 28 2027 */
	assert_eval(&in, "dk:end-of-month()", "2028-02-10T00:00:00Z", "2028-02-29T15:59:59Z");
	assert_eval(&in, "dk:end-of-month(1)", "2026-12-31T15:00:00Z", "2027-01-31T15:59:59Z");
	assert_eval(&in, "dk:add('2028-01-31T04:00:00Z', 'P1M')", NULL, "2028-02-29T04:00:00Z");
	assert_eval(&in, "dk:add('2026-11-02T09:00:00Z', 'PT36H')", NULL, "2026-11-03T21:00:00Z");
	assert_eval(&in, "dk:days-between('2028-02-28', '2028-03-01')", NULL, "2");
	assert_eval(&in, "dk:days-between('2026-11-30T15:00:00Z', '2026-11-30T17:00:00Z')", NULL,
	            "1");
	/* Friday 2026-11-27 10:00 local + 2 working days: Tue Dec 1 is a holiday */
	assert_eval(&in, "dk:working-days(2, '2026-11-27T02:00:00Z')", NULL,
	            "2026-12-02T02:00:00Z");
	assert_eval(&in, "dk:working-days(1)", "2026-11-02T09:00:00Z", "2026-11-03T09:00:00Z");
	/* Wednesday 2026-11-04 local: next Monday 2026-11-09 00:00 local */
	assert_eval(&in, "dk:start-of-next-week()", "2026-11-04T03:00:00Z", "2026-11-08T16:00:00Z");
	/* on a Monday it is the Monday after */
	assert_eval(&in, "dk:start-of-next-week()", "2026-11-09T03:00:00Z", "2026-11-15T16:00:00Z");
	end(&in);
}

static void fn_evidence(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	assert_eval(&in, "dk:count('phase-report')", NULL, "0");
	assert_eval(&in, "dk:uploaded-at('phase-report')", NULL, "");
	/* phase reports are due 7 days after entering the state */
	assert_eval(&in, "dk:late('phase-report')", "2026-11-05T09:00:00Z", "false");
	assert_eval(&in, "dk:late('phase-report')", "2026-11-10T09:00:00Z", "true");
	in.env.now = T("2026-11-12T10:00:00Z");
	assert_int_equal(attach(&in, "phase-report", "li", "r.pdf", 1), 0);
	assert_eval(&in, "dk:count('phase-report')", NULL, "1");
	assert_eval(&in, "dk:uploaded-at('phase-report')", NULL, "2026-11-12T10:00:00Z");
	assert_eval(&in, "dk:late('phase-report')", NULL, "true");
	assert_eval(&in, "dk:days-late('phase-report')", NULL, "3");
	assert_eval(&in, "dk:late('plan')", NULL, "false"); /* no due */
	end(&in);
}

static void fn_errors_name_the_expression(void **state)
{
	inst in;
	char *out = NULL;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	dk_xpath x = {"dk:add('soon', 'P1D')",
	              xmlXPathCompile((const xmlChar *)"dk:add('soon', "
	                                               "'P1D')"),
	              7, NULL};
	assert_int_equal(dk_engine_eval_string(&out, &in.env, snap(&in), "li", &x), DK_EINVALID);
	assert_msg("'soon' is not a date");
	assert_msg("line 7");
	xmlXPathFreeCompExpr(x.comp);
	dk_xpath y = {"$nope", xmlXPathCompile((const xmlChar *)"$nope"), 2, NULL};
	assert_int_equal(dk_engine_eval_string(&out, &in.env, snap(&in), "li", &y), DK_EINVALID);
	xmlXPathFreeCompExpr(y.comp);
	assert_null(out);
	end(&in);
}

static void event_json(void **state)
{
	inst in;
	char *j = NULL;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act_full(&in, "return", "wei", "redo it", NULL, 0, NULL), 0);
	assert_int_equal(dk_event_to_json(&j, event(&in.res, DK_EV_FIRED), "I-1"), 0);
	assert_non_null(strstr(j, "\"type\":\"transition.fired\""));
	assert_non_null(strstr(j, "\"instance\":\"I-1\""));
	assert_non_null(strstr(j, "\"comment\":\"redo it\""));
	assert_non_null(strstr(j, "\"data\":{}"));
	assert_null(strstr(j, "on_behalf_of"));
	free(j);
	end(&in);
}

static void vote_records_comment_and_delegate(void **state)
{
	inst in;
	(void)state;
	begin(&in, QUORUM, "li", NULL, 0);
	assert_int_equal(act(&in, "to-two", "li"), 0);
	in.dels[0] = (dk_delegation){"qian", "sun", NULL, 0, 0};
	in.env.ndelegations = 1;
	assert_int_equal(act_full(&in, "approve", "sun", "fine by me", NULL, 0, NULL), 0);
	const dk_event *v = event(&in.res, DK_EV_VOTE);
	assert_string_equal(v->actor, "sun");
	assert_string_equal(v->on_behalf_of, "qian");
	assert_string_equal(v->user, "qian");
	assert_string_equal(v->comment, "fine by me");
	assert_non_null(strstr(v->data, "\"decided\":false"));
	/* the delegate voted in qian's name: qian cannot vote again */
	assert_int_equal(act(&in, "approve", "qian"), DK_ECONFLICT);
	assert_false(has_task(&in.res, "two", "qian"));
	assert_true(has_task(&in.res, "two", "he"));
	end(&in);
}

static void timer_of_completed_instance_dropped(void **state)
{
	inst in;
	dk_timer old;
	dk_engine_result r;
	(void)state;
	begin(&in, TIMED, "li", NULL, 0);
	const dk_timer *t = timer_of(&in.res, "deadline", "wait");
	old = (dk_timer){NULL, strdup(t->kind), strdup(t->state), t->due_at, strdup(t->payload)};
	assert_int_equal(fire_timer(&in, "fire", "wait"), 0);
	assert_int_equal(snap(&in)->status, DK_INSTANCE_COMPLETED);
	in.env.now = old.due_at;
	assert_int_equal(adopt(&in, dk_engine_timer(&r, &in.env, snap(&in), &old), &r), 0);
	assert_int_equal(count_events(&in.res, DK_EV_TIMER_DROP), 1);
	assert_int_equal(count_events(&in.res, DK_EV_MISSED), 0);
	free(old.kind);
	free(old.state);
	free(old.payload);
	end(&in);
}

static void timer_plain_deadline_only_records(void **state)
{
	inst in;
	(void)state;
	begin(&in, TIMED, "li", NULL, 0);
	assert_int_equal(fire_timer(&in, "deadline", "wait"), 0);
	assert_int_equal(count_events(&in.res, DK_EV_MISSED), 1);
	assert_int_equal(in.res.nevents, 1);
	assert_string_equal(snap(&in)->state, "wait");
	assert_null(timer_of(&in.res, "deadline", "wait"));
	assert_non_null(timer_of(&in.res, "fire", "wait"));
	end(&in);
}

static void timer_in_region(void **state)
{
	inst in;
	(void)state;
	begin(&in, PARALLEL, "li", NULL, 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(fire_timer(&in, "remind", "book"), 0);
	assert_int_equal(count_events(&in.res, DK_EV_REMINDER), 1);
	assert_string_equal(event(&in.res, DK_EV_REMINDER)->user, "he");
	assert_string_equal(snap(&in)->state, "checks");
	end(&in);
}

static void wrong_flow_version_refused(void **state)
{
	inst in;
	dk_flow *other;
	dk_engine_env env;
	dk_engine_result r;
	char *xml = strdup(PLAN);
	(void)state;
	plan_to_review(&in);
	memcpy(strstr(xml, "version='1'"), "version='2'", 11);
	other = load(xml);
	env = in.env;
	env.flow = other;
	dk_fire_cmd cmd = DK_FIRE_CMD_INIT;
	cmd.transition = "approve";
	cmd.actor = "wei";
	assert_int_equal(dk_engine_fire(&r, &env, snap(&in), &cmd), DK_EINVALID);
	assert_msg("runs flow plan@1, but plan@2 was given");
	dk_flow_free(other);
	free(xml);
	end(&in);
}

static void fn_bare_date_is_local_midnight(void **state)
{
	inst in;
	(void)state;
	begin(&in, PLAN, "li", plan_vars, 1);
	assert_eval(&in, "dk:add('2026-11-30', 'P1D')", NULL, "2026-11-30T16:00:00Z");
	assert_eval(&in, "dk:days-between('2026-11-30', dk:now())", "2026-12-02T01:00:00Z", "2");
	end(&in);
}

/* ---- the example flows ------------------------------------------------- */

/* Runs an example flow from examples/ against examples/org.xml. */
static void begin_example(inst *in, const char *name, const char *actor, const char *now,
                          const char *const *vars, size_t n)
{
	char path[1024];
	const char *src = getenv("DOCKET_SRC") ? getenv("DOCKET_SRC") : ".";
	dk_org *ex_org = NULL;
	memset(in, 0, sizeof(*in));
	snprintf(path, sizeof(path), "%s/examples/%s", src, name);
	assert_int_equal(dk_flow_load_file(&in->flow, path, NULL), 0);
	snprintf(path, sizeof(path), "%s/examples/org.xml", src);
	assert_int_equal(dk_org_load_file(&ex_org, path, NULL), 0);
	in->env.flow = in->flow;
	in->env.org = ex_org;
	in->env.delegations = in->dels;
	in->env.now = T(now);
	if (dk_engine_start(&in->res, &in->env, "E-1", actor, vars, n) < 0)
		fail_msg("start: %s", dk_error_last());
}

static void end_example(inst *in)
{
	dk_org_free((dk_org *)in->env.org);
	end(in);
}

static void example_appraisal_scores(void **state)
{
	inst in;
	const char *vars[] = {"month=2026-11"};
	const char *scores[] = {"daily_work=90", "days_absent=0.5"};
	(void)state;
	/* started 2026-11-01 09:00 in Shanghai; the monthly report is due on
	 * the 8th, the other two on the 13th and 15th */
	begin_example(&in, "appraisal.xml", "li", "2026-11-01T01:00:00Z", vars, 1);
	in.env.now = T("2026-11-09T02:00:00Z");
	assert_int_equal(attach(&in, "monthly-report", "li", "m.pdf", 1), 0);
	assert_int_equal(attach(&in, "ad-plan", "li", "a.pdf", 1), 0);
	assert_int_equal(attach(&in, "promotion-plan", "li", "p.pdf", 1), 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_string_equal(snap(&in)->state, "scoring");
	assert_true(has_task(&in.res, "scoring", "liu"));
	assert_int_equal(act_full(&in, "score", "liu", NULL, scores, 2, NULL), 0);
	assert_string_equal(dk_snapshot_var(snap(&in), "attendance")->text, "96");
	assert_string_equal(dk_snapshot_var(snap(&in), "late_items")->text, "1");
	/* 90 x 0.7 + 96 x 0.3 - 2 x 1 */
	assert_string_equal(dk_snapshot_var(snap(&in), "score")->text, "89.8");
	end_example(&in);
}

static void example_appeal_climbs_by_timer(void **state)
{
	inst in;
	const char *vars[] = {"appraisal=A-1", "month=2026-11", "original_score=70"};
	(void)state;
	begin_example(&in, "appeal.xml", "li", "2026-12-01T01:00:00Z", vars, 3);
	assert_int_equal(attach(&in, "appeal-evidence", "li", "e.png", 1), 0);
	assert_int_equal(act_full(&in, "submit", "li", "the late item was on time", NULL, 0, NULL),
	                 0);
	assert_string_equal(snap(&in)->state, "level1");
	assert_true(has_task(&in.res, "level1", "liu"));
	assert_int_equal(fire_timer(&in, "fire", "level1"), 0);
	assert_string_equal(snap(&in)->state, "level2");
	assert_string_equal(event(&in.res, DK_EV_FIRED)->actor, DK_SYSTEM_ACTOR);
	assert_int_equal(in.env.now, T("2026-12-15T01:00:00Z"));
	end_example(&in);
}

static void delegation_for_escalation_role(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(fire_timer(&in, "escalate", "review"), 0);
	in.dels[0] = (dk_delegation){"zhao", "wang", "dept-head", 0, 0};
	in.env.ndelegations = 1;
	assert_int_equal(act(&in, "approve", "wang"), DK_EFORBIDDEN);
	assert_msg("it is assigned to wei, zhao, sun");
	in.dels[0].role = "division-leader";
	assert_int_equal(act(&in, "approve", "wang"), 0);
	assert_string_equal(event(&in.res, DK_EV_FIRED)->on_behalf_of, "zhao");
	end(&in);
}

static void trace_parallel_join(void **state)
{
	inst in;
	(void)state;
	begin(&in, PARALLEL, "li", NULL, 0);
	assert_trace(&in.res, "instance.started li >prepare\n"
	                      "task.assigned system @li >prepare\n");
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_trace(&in.res, "transition.fired li prepare>checks submit\n"
	                      "task.assigned system @wang >docs\n"
	                      "task.assigned system @qian >money\n"
	                      "task.assigned system @he >book\n");
	assert_int_equal(act(&in, "approve", "wang"), 0);
	assert_trace(&in.res, "transition.fired wang docs>docs-ok approve\n");
	in.dels[0] = (dk_delegation){"qian", "sun", NULL, 0, 0};
	in.env.ndelegations = 1;
	assert_int_equal(act_full(&in, "approve", "sun", NULL, NULL, 0, "money"), 0);
	assert_trace(&in.res, "transition.fired sun for qian money>money-ok approve\n");
	assert_int_equal(act(&in, "cancel", "li"), DK_EPRECOND);
	assert_int_equal(attach(&in, "booking", "he", "b.pdf", 1), 0);
	assert_int_equal(act(&in, "submit", "he"), 0);
	assert_int_equal(act(&in, "approve", "qian"), 0);
	assert_trace(&in.res, "transition.fired qian book-approve>book-ok approve\n"
	                      "transition.fired system checks>dispatch done\n"
	                      "task.assigned system @he >dispatch\n");
	assert_int_equal(act(&in, "ship", "he"), 0);
	assert_trace(&in.res, "transition.fired he dispatch>shipped ship\n"
	                      "instance.completed he >shipped\n");
	end(&in);
}

static void trace_quorum_and_timer(void **state)
{
	inst in;
	(void)state;
	begin(&in, QUORUM, "li", NULL, 0);
	assert_int_equal(act(&in, "to-any", "li"), 0);
	assert_int_equal(act(&in, "approve", "he"), 0);
	assert_trace(&in.res, "vote.cast he @he any> approve\n"
	                      "transition.fired he any>done approve\n"
	                      "instance.completed he >done\n");
	end(&in);
	plan_to_review(&in);
	assert_int_equal(fire_timer(&in, "escalate", "review"), 0);
	assert_trace(&in.res, "deadline.missed system review>\n"
	                      "task.escalated system @zhao >review\n"
	                      "task.escalated system @sun >review\n"
	                      "task.assigned system @zhao >review\n"
	                      "task.assigned system @sun >review\n");
	end(&in);
}

static void timer_late_tick_reminds_once(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	in.env.now = T("2026-11-06T12:00:00Z"); /* three reminders were due */
	assert_int_equal(fire_timer(&in, "remind", "review"), 0);
	assert_int_equal(count_events(&in.res, DK_EV_REMINDER), 1);
	assert_int_equal(timer_of(&in.res, "remind", "review")->due_at, T("2026-11-07T09:00:00Z"));
	end(&in);
}

/* A tick merges the results of an instance's due timers: the events of
 * both, in order, outlive the results they came from (their strings live
 * in the results' blocks), and a replaced event's data is the result's. */
static void result_merge_and_set_data(void **state)
{
	inst in;
	dk_engine_result acc = DK_ENGINE_RESULT_INIT, next;
	dk_fire_cmd cmd = DK_FIRE_CMD_INIT;
	size_t n;
	(void)state;
	plan_to_review(&in);
	n = in.res.nevents;
	assert_true(n > 0);
	dk_engine_result_merge(&acc, &in.res); /* acc was empty: takes it whole */
	assert_null(in.res.snapshot);
	assert_int_equal(acc.nevents, n);
	cmd.transition = "return";
	cmd.actor = "wei";
	cmd.comment = "week 2 is missing";
	assert_int_equal(dk_engine_fire(&next, &in.env, acc.snapshot, &cmd), 0);
	dk_engine_result_merge(&acc, &next);
	assert_null(next.snapshot);
	assert_int_equal(next.nevents, 0);
	assert_true(acc.nevents > n);
	assert_string_equal(acc.events[n].type, DK_EV_FIRED);
	assert_string_equal(acc.events[n].comment, "week 2 is missing");
	assert_string_equal(acc.events[0].transition, "submit");
	assert_string_equal(acc.snapshot->state, "draft");
	assert_true(has_task(&acc, "draft", "li"));
	dk_engine_result_set_data(&acc, &acc.events[n], "{\"commit\":\"abc\"}");
	assert_string_equal(acc.events[n].data, "{\"commit\":\"abc\"}");
	dk_engine_result_free(&acc);
	end(&in);
}

static void available_in_parallel(void **state)
{
	inst in;
	const char *ids[8];
	(void)state;
	begin(&in, PARALLEL, "li", NULL, 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(dk_engine_available(&in.env, snap(&in), "qian", ids, 8), 2);
	assert_string_equal(ids[0], "approve");
	assert_string_equal(ids[1], "cancel");
	assert_int_equal(dk_engine_available(&in.env, snap(&in), "li", ids, 8), 1);
	assert_string_equal(ids[0], "cancel");
	assert_int_equal(dk_engine_available(&in.env, snap(&in), "zhao", ids, 8), 0);
	end(&in);
}

static const char NEW_YORK[] =
    "<flow xmlns='urn:docket:flow:1' xmlns:dk='urn:docket:fn' id='ny' version='1'"
    "      timezone='America/New_York'>"
    " <state id='a' initial='true' assign='$initiator'><transition id='go' to='b'/></state>"
    " <state id='b' final='true'/>"
    "</flow>";

/* The zone file is read directly (TZif): daylight saving must come out
 * as the C library's own conversion gives it. */
/* dk__add_local counts the calendar itself; it must land where the
 * broken-down route (dk__local, the fields added, dk__from_local with
 * timegm) lands, across zones with daylight saving, month ends, leap days,
 * negative instants and the gaps and overlaps of clock changes. */
static void add_local_matches_broken_down(void **state)
{
	static const char *const zones[] = {"UTC", "Asia/Shanghai", "America/New_York",
	                                    "Europe/Berlin", "Australia/Lord_Howe"};
	static const dk_duration durs[] = {{0, 0, 1, 0},  {0, 1, 0, 0},    {1, 0, 0, 0},
	                                   {0, 0, 3, 60}, {0, 13, 45, 0},  {2, 11, 400, 7},
	                                   {0, 0, 0, 0},  {0, -1, -31, 0}, {-3, 0, 0, 3600}};
	uint64_t x = 88172645463325252ull;
	(void)state;
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++)
		for (int i = 0; i < 3000; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* 1901..2099, with extra weight near the clock changes */
			int64_t t = (int64_t)(x % 6276000000ull) - 2147483648ll;
			if (i % 3 == 0)
				t = 1711846800 + (int64_t)(x % 172800) - 86400; /* 2024-03-31 */
			const dk_duration *d = &durs[(x >> 33) % (sizeof(durs) / sizeof(durs[0]))];
			struct tm tm;
			dk__local(&tm, zones[z], t);
			int64_t want = t;
			if (d->years || d->months || d->days) {
				int months = tm.tm_mon + d->months + 12 * d->years;
				int y = tm.tm_year + 1900 + months / 12, m = months % 12;
				if (m < 0) {
					m += 12;
					y--;
				}
				static const int dim[] = {31, 28, 31, 30, 31, 30,
				                          31, 31, 30, 31, 30, 31};
				int last = m == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)
				               ? 29
				               : dim[m];
				if (tm.tm_mday > last)
					tm.tm_mday = last;
				tm.tm_year = y - 1900;
				tm.tm_mon = m;
				tm.tm_mday += d->days;
				want = dk__from_local(zones[z], &tm);
			}
			want += d->seconds;
			int64_t got = dk__add_local(zones[z], t, d);
			if (got != want)
				fail_msg("%s: %lld + %dY%dM%dD%llds: %lld, want %lld", zones[z],
				         (long long)t, d->years, d->months, d->days,
				         (long long)d->seconds, (long long)got, (long long)want);
		}
}

static void fn_calendar_daylight_saving(void **state)
{
	inst in;
	(void)state;
	begin(&in, NEW_YORK, "li", NULL, 0);
	/* Saturday 2026-03-07 12:00 EST; clocks go forward on the 8th */
	assert_eval(&in, "dk:start-of-next-week()", "2026-03-07T17:00:00Z", "2026-03-09T04:00:00Z");
	assert_eval(&in, "dk:day-of-month(8)", "2026-03-07T17:00:00Z", "2026-03-08T05:00:00Z");
	assert_eval(&in, "dk:add('2026-03-07T17:00:00Z', 'P1D')", NULL, "2026-03-08T16:00:00Z");
	assert_eval(&in, "dk:add('2026-03-07T17:00:00Z', 'PT24H')", NULL, "2026-03-08T17:00:00Z");
	assert_eval(&in, "dk:end-of-month()", "2026-03-07T17:00:00Z", "2026-04-01T03:59:59Z");
	/* 2026-11-01 00:00 is still daylight time */
	assert_eval(&in, "dk:day-of-month(1)", "2026-11-20T12:00:00Z", "2026-11-01T04:00:00Z");
	assert_eval(&in, "dk:days-between('2026-03-07', '2026-03-09')", NULL, "2");
	/* 01:30 on 2026-11-01 happens twice; the earlier one is meant */
	assert_eval(&in, "dk:add('2026-10-31T05:30:00Z', 'P1D')", NULL, "2026-11-01T05:30:00Z");
	end(&in);
}

static const char BERLIN[] =
    "<flow xmlns='urn:docket:flow:1' xmlns:dk='urn:docket:fn' id='berlin' version='1'"
    "      timezone='Europe/Berlin'>"
    " <state id='wait' initial='true' assign='$initiator'>"
    "  <deadline after='P1D'><remind every='P1D'/></deadline>"
    "  <deadline after='PT24H'/>"
    "  <deadline after='P1M'/>"
    "  <transition id='go' to='done'/>"
    " </state>"
    " <state id='done' final='true'/>"
    "</flow>";

/* The deadline with this index among the armed timers of state. */
static const dk_timer *deadline_timer(const dk_engine_result *r, const char *state, int index)
{
	char want[32];
	snprintf(want, sizeof(want), "\"deadline\":%d", index);
	for (size_t i = 0; i < r->ntimers; i++)
		if (strcmp(r->timers[i].kind, "remind") != 0 &&
		    strcmp(r->timers[i].state, state) == 0 && strstr(r->timers[i].payload, want))
			return &r->timers[i];
	return NULL;
}

/* after= and every= count days and months on the flow's wall clock:
 * P1D across the spring change is 23 real hours and lands at the same
 * local time, PT24H stays 24 hours; reminders keep their local hour. */
static void deadline_days_follow_the_zone(void **state)
{
	inst in;
	(void)state;
	memset(&in, 0, sizeof(in));
	in.flow = load(BERLIN);
	in.env.flow = in.flow;
	in.env.org = org;
	/* Saturday 2026-03-28 09:00 CET; clocks go forward on the 29th */
	in.env.now = T("2026-03-28T08:00:00Z");
	if (dk_engine_start(&in.res, &in.env, "I-1", "li", NULL, 0) < 0)
		fail_msg("start: %s", dk_error_last());
	assert_non_null(deadline_timer(&in.res, "wait", 0));
	assert_int_equal(deadline_timer(&in.res, "wait", 0)->due_at, T("2026-03-29T07:00:00Z"));
	assert_int_equal(deadline_timer(&in.res, "wait", 1)->due_at, T("2026-03-29T08:00:00Z"));
	assert_int_equal(timer_of(&in.res, "remind", "wait")->due_at, T("2026-03-29T07:00:00Z"));
	assert_int_equal(fire_timer(&in, "remind", "wait"), 0);
	assert_int_equal(timer_of(&in.res, "remind", "wait")->due_at, T("2026-03-30T07:00:00Z"));
	end(&in);
	/* and back in autumn: 2026-10-24 09:00 CEST + P1D is 25 hours */
	memset(&in, 0, sizeof(in));
	in.flow = load(BERLIN);
	in.env.flow = in.flow;
	in.env.org = org;
	in.env.now = T("2026-10-24T07:00:00Z");
	if (dk_engine_start(&in.res, &in.env, "I-1", "li", NULL, 0) < 0)
		fail_msg("start: %s", dk_error_last());
	assert_int_equal(deadline_timer(&in.res, "wait", 0)->due_at, T("2026-10-25T08:00:00Z"));
	assert_int_equal(deadline_timer(&in.res, "wait", 1)->due_at, T("2026-10-25T07:00:00Z"));
	/* P1M from March 31st 09:00 CEST is April 30th 09:00 CEST */
	end(&in);
	memset(&in, 0, sizeof(in));
	in.flow = load(BERLIN);
	in.env.flow = in.flow;
	in.env.org = org;
	in.env.now = T("2026-03-31T07:00:00Z");
	if (dk_engine_start(&in.res, &in.env, "I-1", "li", NULL, 0) < 0)
		fail_msg("start: %s", dk_error_last());
	assert_int_equal(deadline_timer(&in.res, "wait", 2)->due_at, T("2026-04-30T07:00:00Z"));
	end(&in);
}

static void example_cross_department_regions(void **state)
{
	inst in;
	const char *vars[] = {"order_no=EX-7", "customer=ACME", "amount=1200"};
	(void)state;
	begin_example(&in, "cross-department.xml", "li", "2026-11-02T01:00:00Z", vars, 3);
	assert_int_equal(attach(&in, "export-docs", "li", "invoice.pdf", 1), 0);
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_string_equal(snap(&in)->state, "checks");
	/* XPath assignments give every member of the department a task */
	assert_true(has_task(&in.res, "docs-check", "wang"));
	assert_true(has_task(&in.res, "receivables-check", "qian"));
	assert_true(has_task(&in.res, "receivables-check", "he"));
	assert_true(has_task(&in.res, "booking", "zhou"));
	assert_true(has_task(&in.res, "booking", "ma"));
	assert_int_equal(in.res.ntasks, 5);
	assert_int_equal(act(&in, "submit", "ma"), DK_EPRECOND);
	assert_msg("requires evidence 'booking'");
	end_example(&in);
}

/* ---- the engine's JSON writer ------------------------------------------ */

/* An API answer's body must be jansson's JSON_INDENT(1) text, byte for
 * byte: clients and tests read it as it was. */
static void json_indented_matches_jansson(void **state)
{
	static const char *const trees[] = {
	    "{}",
	    "[]",
	    "{\"a\": 1}",
	    "[1]",
	    "{\"id\": \"50001\", \"states\": [\"draft\"], \"vars\": {\"month\": \"2026-11\", "
	    "\"phases\": 3, \"ratio\": 0.25, \"big\": 1e300, \"neg\": -7}, \"tasks\": [{\"user\": "
	    "\"li\", \"role\": null, \"overdue\": false, \"due\": true}], \"none\": [], "
	    "\"nothing\": {}}",
	    "[[], {}, [[1, [2, {\"x\": []}]]], {\"k\": {\"l\": {\"m\": [null]}}}]",
	    "{\"quote \\\" back\\\\slash\": \"ctl \\b\\f\\n\\r\\t \\u0001\\u001f\\u007f end\", "
	    "\"slash\": \"a/b\", \"\xe6\x9d\x8e\xe6\x98\x8e\": \"\xe6\x9d\x8e \\ud83d\\ude00\"}",
	    "{\"reals\": [0.1, 2.5, -0.0, 1.0, 123456789.125, 1e-7]}",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		json_error_t err;
		json_t *t = json_loads(trees[i], 0, &err);
		size_t len = 99;
		assert_non_null(t);
		char *want = json_dumps(t, JSON_INDENT(1));
		char *got = dk_json_indented(t, &len);
		assert_non_null(got);
		assert_string_equal(got, want);
		assert_int_equal(len, strlen(want));
		free(got);
		free(want);
		json_decref(t);
	}
	/* what json_dumps refuses without JSON_ENCODE_ANY is refused too */
	json_t *scalar = json_integer(3);
	size_t len = 99;
	assert_null(dk_json_indented(scalar, &len));
	assert_int_equal(len, 0);
	json_decref(scalar);
}

/* The writer must give jansson's compact bytes: events written by older
 * builds and by this one are compared and hashed as text. */
static void json_writer_matches_jansson(void **state)
{
	static const char *const strs[] = {
	    "",
	    "plain",
	    "quote \" and back\\slash",
	    "ctl \b\f\n\r\t \x01\x1f\x7f end",
	    "slash / stays",
	    "李明 ünïcode \xf0\x9f\x98\x80",
	    "tab\tat the end\t",
	    /* past eight bytes, where the writer copies eight at a time */
	    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	    "eight by\"then a quote, then eight\\ and a backslash",
	    "plain to the eighth\x01control after it, \x1f and \x7f",
	    "quarterly-report-2026.pdf \xe6\x9d\x8e\xe6\x98\x8e after eight plain bytes",
	    "exactly8",
	    "sixteen bytes ok",
	};
	static const int64_t ints[] = {0, 1, -1, 42, -9007199254740991LL, INT64_MAX, INT64_MIN};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		for (size_t j = 0; j < sizeof(ints) / sizeof(ints[0]); j++) {
			json_t *o =
			    json_pack("{s:s,s:I}", strs[i], strs[i], "n", (json_int_t)ints[j]);
			json_object_set_new(o, "opt", json_string(strs[i]));
			char *want = json_dumps(o, JSON_COMPACT);
			dk_jw w;
			dk__jw_begin(&w);
			dk__jw_str(&w, strs[i], strs[i]);
			dk__jw_int(&w, "n", ints[j]);
			dk__jw_str_opt(&w, "opt", strs[i]);
			char *got = dk__jw_end(&w);
			assert_string_equal(got, want);
			free(got);
			free(want);
			json_decref(o);
		}
	}
	/* a tree with every kind of value, reals in jansson's own format */
	json_t *tree = json_pack("{s:{s:n,s:b,s:f},s:[i,f,s,b],s:{}}", "vars", "from", "to", 1, "r",
	                         2.5, "list", 3, 0.1, "x\"y", 0, "empty");
	char *want = json_dumps(tree, JSON_COMPACT);
	char *got = dk__json_compact(tree);
	assert_string_equal(got, want);
	free(got);
	free(want);
	dk_jw w;
	dk__jw_begin(&w);
	dk__jw_str(&w, "flow", "plan");
	dk__jw_json(&w, "tree", tree);
	got = dk__jw_end(&w);
	json_t *wrap = json_pack("{s:s,s:O}", "flow", "plan", "tree", tree);
	want = json_dumps(wrap, JSON_COMPACT);
	assert_string_equal(got, want);
	free(got);
	free(want);
	json_decref(wrap);
	json_decref(tree);
	/* invalid UTF-8: a required string fails the object (as json_pack
	 * does), an optional one is left out (as json_object_set_new does) */
	static const char *const bad[] = {"\xc3",
	                                  "\xc0\xaf",
	                                  "\xed\xa0\x80",
	                                  "\xf5\x80\x80\x80",
	                                  "a\x80",
	                                  "more than eight plain bytes, then \xc3",
	                                  "eight ok\xed\xa0\x80 and more after it"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(json_string(bad[i]));
		dk__jw_begin(&w);
		dk__jw_str(&w, "k", "v");
		dk__jw_str_opt(&w, "name", bad[i]);
		got = dk__jw_end(&w);
		assert_string_equal(got, "{\"k\":\"v\"}");
		free(got);
		dk__jw_begin(&w);
		dk__jw_str(&w, "k", bad[i]);
		assert_null(dk__jw_end(&w));
	}
}

/* The simple expressions the engine computes without libxml2 must give
 * what libxml2 gives: every operator between every kind of operand (number
 * variables set, unset (NaN), negative, fractional and huge; booleans;
 * strings that are numbers, padded numbers, exponents, words and empty;
 * dates; the built-ins; literals), compared as type and value (NaN as NaN,
 * -0 as -0), as boolean() and as string(). */
static const char XFLOW[] = "<flow xmlns='urn:docket:flow:1' id='x' version='1'>"
                            " <var name='n' type='number'/><var name='m' type='number'/>"
                            " <var name='b' type='boolean'/><var name='c' type='boolean'/>"
                            " <var name='s' type='string'/><var name='t' type='string'/>"
                            " <var name='d' type='date'/>"
                            " <state id='a' initial='true' assign='$initiator'>"
                            "  <transition id='go' to='z'/></state>"
                            " <state id='z' final='true'/>"
                            "</flow>";

static void same_xpath_object(xmlXPathObjectPtr want, xmlXPathObjectPtr got, const char *text)
{
	if (want->type != got->type)
		fail_msg("'%s': libxml2 gives type %d, the engine %d", text, want->type, got->type);
	if (want->type == XPATH_NUMBER) {
		int wn = xmlXPathIsNaN(want->floatval), gn = xmlXPathIsNaN(got->floatval);
		if (wn != gn ||
		    (!wn && memcmp(&want->floatval, &got->floatval, sizeof(double)) != 0))
			fail_msg("'%s': libxml2 gives %.17g, the engine %.17g", text,
			         want->floatval, got->floatval);
	} else if (want->type == XPATH_BOOLEAN) {
		if (want->boolval != got->boolval)
			fail_msg("'%s': libxml2 gives %d, the engine %d", text, want->boolval,
			         got->boolval);
	} else {
		assert_int_equal(want->type, XPATH_STRING);
		if (strcmp((const char *)want->stringval, (const char *)got->stringval) != 0)
			fail_msg("'%s': libxml2 gives '%s', the engine '%s'", text,
			         (const char *)want->stringval, (const char *)got->stringval);
	}
}

/* A number variable's text is written without libxml2 when it is an
 * integer; it must be what libxml2 writes, and the rest left to it. */
static void number_text_matches_libxml2(void **state)
{
	static const double fixed[] = {
	    0.0,       -0.0,       1,           -1,         9,           10,
	    -10,       2147483646, -2147483647, 2147483647, -2147483648, 2147483648.,
	    1e15,      0.5,        -0.25,       1e-300,     3.0000001,   123456789,
	    -98765432, NAN,        INFINITY,    -INFINITY};
	uint64_t x = 0x2545F4914F6CDD1Dull;
	(void)state;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]) + 100000; i++) {
		double d;
		char b[16];
		if (i < sizeof(fixed) / sizeof(fixed[0])) {
			d = fixed[i];
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			d = (double)(int64_t)(x % 6000000000ull) - 3e9; /* integers past int */
			if (i % 3 == 0)
				d /= 8;
		}
		xmlChar *want = xmlXPathCastNumberToString(d);
		if (dk__number_int_text(b, d))
			assert_string_equal(b, (const char *)want);
		else
			assert_false(d == 0 ||
			             (d > -2147483648.0 && d < 2147483647.0 && d == (int)d));
		xmlFree(want);
	}
}

static void simple_xpath_matches_libxml2(void **state)
{
	static const char *const operands[] = {"$n",
	                                       "$m",
	                                       "$b",
	                                       "$c",
	                                       "$s",
	                                       "$t",
	                                       "$d",
	                                       "$initiator",
	                                       "$actor",
	                                       "$state",
	                                       "$instance",
	                                       "0",
	                                       "1",
	                                       "3",
	                                       "10",
	                                       "123456789",
	                                       "dk:head-of($initiator)",
	                                       "dk:dept-of($s)",
	                                       "dk:division-leader-of($actor)",
	                                       "dk:name-of($t)",
	                                       "dk:head-of($n)",
	                                       "dk:name-of($b)"};
	static const char *const ops[] = {"+", "-", "*", "=", "!=", "<", "<=", ">", ">="};
	/* each row: n, m, b, c, s, t, d (NULL: not set) */
	static const char *const rows[][7] = {
	    {"3", "10", "true", "false", "3", "abc", "2026-11-28"},
	    {NULL, "0", NULL, "true", "", " 3 ", NULL},
	    {"-2.5", "-0", "false", "false", "-2.5", "1e3", "2026-11-28T09:30:00+08:00"},
	    {"1e300", "1e300", "true", "true", "3.0", "3", NULL},
	    {"0.1", "0.2", "false", "true", "true", "false", NULL},
	    {"0", NULL, "true", NULL, "0", "", NULL},
	    {"123456789", "9007199254740993", NULL, NULL, "li", "li", NULL},
	    {"7", "7", "true", "false", "qian", "wei", NULL},
	};
	dk_flow *flow = load(XFLOW);
	dk_engine_env env = DK_ENGINE_ENV_INIT;
	dk_buf text = DK_BUF_INIT;
	dk_diags dg = DK_DIAGS_INIT;
	size_t nexpr = 0, nsimple = 0;
	env.flow = flow;
	env.org = org;
	env.now = T("2026-11-02T09:00:00Z");
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		static const char *const names[] = {"n", "m", "b", "c", "s", "t", "d"};
		char kv[7][64];
		const char *vars[7];
		size_t nv = 0;
		dk_engine_result res = DK_ENGINE_RESULT_INIT;
		for (size_t i = 0; i < 7; i++)
			if (rows[r][i]) {
				snprintf(kv[nv], sizeof(kv[nv]), "%s=%s", names[i], rows[r][i]);
				vars[nv] = kv[nv];
				nv++;
			}
		if (dk_engine_start(&res, &env, "I-7", "li", vars, nv) < 0)
			fail_msg("start, row %zu: %s", r, dk_error_last());
		dk_run run = {.env = &env,
		              .flow = flow,
		              .snap = res.snapshot,
		              .res = NULL,
		              .actor = r % 2 ? "wei" : "li"};
		for (size_t a = 0; a < sizeof(operands) / sizeof(operands[0]); a++) {
			for (size_t o = 0; o <= sizeof(ops) / sizeof(ops[0]); o++) {
				for (size_t b = 0; b < sizeof(operands) / sizeof(operands[0]);
				     b++) {
					dk_buf_clear(&text);
					if (o == sizeof(ops) / sizeof(ops[0])) { /* alone */
						if (b > 0)
							break;
						dk_buf_printf(&text, "%s", operands[a]);
					} else {
						dk_buf_printf(&text, b % 2 ? "%s %s %s" : "%s %s%s",
						              operands[a], ops[o], operands[b]);
					}
					dk_xpath *x = dk_xpath_compile("t", 1, "test",
					                               dk_buf_cstr(&text), &dg);
					if (!x) {
						fail_msg("'%s' does not compile",
						         dk_buf_cstr(&text));
						return;
					}
					nexpr++;
					nsimple += x->simple != NULL;
					xmlXPathObjectPtr want = NULL, got = NULL;
					int we = dk__eval_libxml(&want, &run, "a", x);
					int ge = dk__eval(&got, &run, "a", x);
					assert_int_equal(we, 0);
					assert_int_equal(ge, 0);
					same_xpath_object(want, got, x->text);
					int wb = -1, gb = -1;
					assert_int_equal(dk__eval_bool(&gb, &run, "a", x), 0);
					wb = xmlXPathCastToBoolean(want);
					assert_int_equal(wb, gb);
					xmlChar *ws = xmlXPathCastToString(want);
					xmlChar *gs = xmlXPathCastToString(got);
					assert_string_equal((const char *)ws, (const char *)gs);
					xmlFree(ws);
					xmlFree(gs);
					xmlXPathFreeObject(want);
					xmlXPathFreeObject(got);
					dk_xpath_free(x);
				}
			}
		}
		dk_engine_result_free(&res);
	}
	/* the corpus is simple, or the test compares libxml2 with itself */
	assert_int_equal(nsimple, nexpr);
	/* not simple: left to libxml2, and an unknown variable keeps its
	 * message */
	static const char *const not_simple[] = {"$n div 2",
	                                         "$n mod 2",
	                                         "-1",
	                                         "1.5",
	                                         "$dk:x",
	                                         "$n + 1 + 1",
	                                         "($n)",
	                                         "$n or $b",
	                                         "1234567890",
	                                         "3a",
	                                         "$n * -1",
	                                         "'a' = $s",
	                                         "dk:head-of( $s)",
	                                         "dk:head-of(3)",
	                                         "dk:members($s)",
	                                         "dk:head-of($s, $t)"};
	for (size_t i = 0; i < sizeof(not_simple) / sizeof(not_simple[0]); i++) {
		dk_xpath *x = dk_xpath_compile("t", 1, "test", not_simple[i], &dg);
		if (x && x->simple)
			fail_msg("'%s' should not be simple", not_simple[i]);
		dk_xpath_free(x);
	}
	/* "$n-1" is the variable n-1, in XPath as here */
	static const char *const unknown[] = {"$nope < 3", "$n-1", "$nope"};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		dk_xpath *x = dk_xpath_compile("t", 1, "test", unknown[i], &dg);
		assert_non_null(x);
		assert_non_null(x->simple);
		xmlXPathObjectPtr r = NULL;
		int ok = -1;
		dk_run run = {.env = &env, .flow = flow, .snap = NULL, .res = NULL, .actor = "li"};
		assert_int_equal(dk__eval(&r, &run, "a", x), DK_EINVALID);
		assert_non_null(strstr(dk_error_last(), unknown[i]));
		assert_int_equal(dk__eval_bool(&ok, &run, "a", x), DK_EINVALID);
		assert_null(r);
		dk_xpath_free(x);
	}
	dk_diags_free(&dg);
	dk_buf_free(&text);
	dk_flow_free(flow);
}

/* A snapshot lives in blocks it owns: one that outgrows the room a copy
 * leaves (hundreds of uploads, long names) must still copy, serialise and
 * parse back to the same bytes, and a copy must not share memory with its
 * source. */
/* Copies are made whole (one block copied, its pointers moved) while the
 * garbage of replaced pieces stays small, else packed: along a path of
 * many small commands, every copy must say what its source says, and
 * stand alone once the source is freed (ASan keeps no spare blocks). */
static void snapshot_copies_along_a_path(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(act(&in, "approve", "wei"), 0);
	for (int i = 0; i < 60; i++) {
		char *a = NULL, *b = NULL;
		dk_snapshot *copy = dk_snapshot_dup(snap(&in));
		assert_int_equal(dk_snapshot_to_json(&a, snap(&in)), 0);
		if (i % 3 == 2)
			assert_int_equal(act(&in, "phase-done", "li"), 0);
		else
			assert_int_equal(attach(&in, "phase-report", "li", "r.pdf", 10 + i), 0);
		assert_int_equal(dk_snapshot_to_json(&b, copy), 0);
		assert_string_equal(a, b);
		free(a);
		free(b);
		dk_snapshot_free(copy);
	}
	assert_int_equal(dk_snapshot_var(snap(&in), "done_phases")->number, 20);
	assert_int_equal(snap(&in)->nevidence, 41);
	end(&in);
}

/* An upload leaves the tasks as they were: no task.assigned, the same
 * task, whether or not the assignments are evaluated again to see it. */
static void upload_assigns_nobody(void **state)
{
	inst in;
	(void)state;
	plan_to_review(&in);
	assert_int_equal(attach(&in, "plan", "li", "plan2.pdf", 100), 0);
	assert_int_equal(count_events(&in.res, DK_EV_ASSIGNED), 0);
	assert_int_equal(count_events(&in.res, DK_EV_EVIDENCE), 1);
	assert_int_equal(in.res.ntasks, 1);
	assert_true(has_task(&in.res, "review", "wei"));
	assert_int_equal(in.res.ntimers, 2);
	end(&in);
}

static void snapshot_outgrows_its_block(void **state)
{
	inst in;
	char name[600];
	begin(&in, PLAN, "li", plan_vars, 1);
	for (int i = 0; i < 300; i++) {
		memset(name, 'a' + i % 26, sizeof(name));
		snprintf(name + (i % 500), sizeof(name) - (size_t)(i % 500), "-%d.pdf", i);
		assert_int_equal(attach(&in, "plan", "li", name, 100 + i), 0);
	}
	assert_int_equal(act(&in, "submit", "li"), 0);
	assert_int_equal(snap(&in)->nevidence, 300);
	assert_string_equal(snap(&in)->evidence[299].name + 299, "-299.pdf");
	char *a = NULL, *b = NULL, *c = NULL;
	dk_snapshot *parsed = NULL, *copy = dk_snapshot_dup(snap(&in));
	assert_int_equal(dk_snapshot_to_json(&a, snap(&in)), 0);
	assert_int_equal(dk_snapshot_from_json(&parsed, a), 0);
	assert_int_equal(dk_snapshot_to_json(&b, parsed), 0);
	assert_int_equal(dk_snapshot_to_json(&c, copy), 0);
	assert_string_equal(a, b);
	assert_string_equal(a, c);
	assert_ptr_not_equal(copy->evidence, snap(&in)->evidence);
	assert_ptr_not_equal(copy->evidence[0].name, snap(&in)->evidence[0].name);
	/* the parsed one works as a command's input */
	dk_fire_cmd cmd = DK_FIRE_CMD_INIT;
	dk_engine_result next;
	cmd.transition = "approve";
	cmd.actor = "wei";
	assert_int_equal(dk_engine_fire(&next, &in.env, parsed, &cmd), 0);
	assert_string_equal(next.snapshot->state, "in-progress");
	assert_int_equal(next.snapshot->nevidence, 300);
	dk_engine_result_free(&next);
	free(a);
	free(b);
	free(c);
	dk_snapshot_free(parsed);
	dk_snapshot_free(copy);
	end(&in);
}

/* The variable changes written without jansson must be the bytes of the
 * jansson object they replace: {"k":{"from":..,"to":..}} built with
 * json_object_set_new, a variable changed twice keeping its first place,
 * a value jansson cannot hold (a string that is not UTF-8) left out. */
static void var_changes_match_jansson(void **state)
{
	static const dk_var_type types[] = {DK_VAR_NUMBER,  DK_VAR_NUMBER,  DK_VAR_NUMBER,
	                                    DK_VAR_NUMBER,  DK_VAR_NUMBER,  DK_VAR_NUMBER,
	                                    DK_VAR_BOOLEAN, DK_VAR_BOOLEAN, DK_VAR_STRING,
	                                    DK_VAR_STRING,  DK_VAR_DATE,    DK_VAR_STRING};
	static const double nums[] = {0, -3, 2.5, 1e300, -0.0, 0.1};
	static const char *const texts[] = {"", "李明 \"q\" \\ \n\x01", "2026-11-28", "bad \xc3"};
	const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"};
	dk_value vals[12];
	size_t nv = sizeof(types) / sizeof(types[0]);
	memset(vals, 0, sizeof(vals));
	for (size_t i = 0; i < nv; i++) {
		vals[i].name = (char *)names[i];
		vals[i].type = types[i];
		if (i < 6)
			vals[i].number = nums[i];
		else if (i < 8)
			vals[i].boolean = i == 6;
		else
			vals[i].text = (char *)texts[i - 8];
	}
	vals[5].number = xmlXPathNAN; /* NaN is null */
	/* every pair, then some names changed again out of order */
	for (size_t round = 0; round < 2; round++) {
		json_t *want_obj = json_object();
		dk_changes got = {NULL, 0};
		for (size_t i = 0; i < nv; i++) {
			const dk_value *before = i % 3 == 0 ? NULL : &vals[(i + round) % nv];
			const dk_value *after = &vals[i];
			json_object_set_new(want_obj, after->name,
			                    json_pack("{s:o,s:o}", "from",
			                              (json_t *)dk__value_json(before), "to",
			                              (json_t *)dk__value_json(after)));
			dk__var_change(&got, before, after);
		}
		for (size_t i = nv; i > 0; i -= 2) {
			const dk_value *after = &vals[i - 1];
			const dk_value *before = &vals[(i + 5) % nv];
			json_object_set_new(want_obj, after->name,
			                    json_pack("{s:o,s:o}", "from",
			                              (json_t *)dk__value_json(before), "to",
			                              (json_t *)dk__value_json(after)));
			dk__var_change(&got, before, after);
		}
		char *want = json_dumps(want_obj, JSON_COMPACT);
		dk_buf b = DK_BUF_INIT;
		dk__changes_write(&b, &got);
		assert_string_equal(dk_buf_cstr(&b), want);
		/* the string that is not UTF-8 was left out by both */
		assert_null(strstr(want, "\"l\""));
		dk_buf_free(&b);
		free(want);
		json_decref(want_obj);
		dk__changes_free(&got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(json_writer_matches_jansson),
	    cmocka_unit_test(json_indented_matches_jansson),
	    cmocka_unit_test(var_changes_match_jansson),
	    cmocka_unit_test(simple_xpath_matches_libxml2),
	    cmocka_unit_test(number_text_matches_libxml2),
	    cmocka_unit_test(snapshot_outgrows_its_block),
	    cmocka_unit_test(upload_assigns_nobody),
	    cmocka_unit_test(snapshot_copies_along_a_path),
	    cmocka_unit_test(start_defaults_and_tasks),
	    cmocka_unit_test(start_var_errors),
	    cmocka_unit_test(linear_approve),
	    cmocka_unit_test(linear_return_needs_comment),
	    cmocka_unit_test(unknown_transition_lists_all),
	    cmocka_unit_test(unavailable_transition_conflict),
	    cmocka_unit_test(stale_version_conflict),
	    cmocka_unit_test(forbidden_actor),
	    cmocka_unit_test(transition_role_narrows),
	    cmocka_unit_test(guard_false_shows_text),
	    cmocka_unit_test(set_arithmetic_and_types),
	    cmocka_unit_test(evidence_data_matches_jansson),
	    cmocka_unit_test(requires_evidence_message),
	    cmocka_unit_test(requires_evidence_of_this_visit),
	    cmocka_unit_test(evidence_freeze),
	    cmocka_unit_test(evidence_checks),
	    cmocka_unit_test(delegation_acts_for),
	    cmocka_unit_test(delegation_expired_or_other_role),
	    cmocka_unit_test(delegation_for_role),
	    cmocka_unit_test(recall_before_acting),
	    cmocka_unit_test(recall_refused_after_acting),
	    cmocka_unit_test(quorum_all_approves),
	    cmocka_unit_test(quorum_all_veto),
	    cmocka_unit_test(quorum_any_first_decides),
	    cmocka_unit_test(quorum_two),
	    cmocka_unit_test(parallel_three_regions_join),
	    cmocka_unit_test(parallel_level_transition_leaves_all),
	    cmocka_unit_test(parallel_region_return),
	    cmocka_unit_test(timers_armed_on_entry),
	    cmocka_unit_test(deadline_days_follow_the_zone),
	    cmocka_unit_test(timer_remind_rearms),
	    cmocka_unit_test(timer_escalates),
	    cmocka_unit_test(timer_fires_transition),
	    cmocka_unit_test(timer_fire_guard_false),
	    cmocka_unit_test(timer_at_expression),
	    cmocka_unit_test(timer_of_left_state_dropped),
	    cmocka_unit_test(timer_not_due_refused),
	    cmocka_unit_test(snapshot_json_round_trip),
	    cmocka_unit_test(snapshot_vars_round_trip),
	    cmocka_unit_test(snapshot_straight_reader_agrees),
	    cmocka_unit_test(snapshot_rejects_garbage),
	    cmocka_unit_test(deterministic),
	    cmocka_unit_test(view_and_available),
	    cmocka_unit_test(every_fn_implemented),
	    cmocka_unit_test(fn_org),
	    cmocka_unit_test(fn_clock),
	    cmocka_unit_test(fn_calendar_month_end_and_leap_day),
	    cmocka_unit_test(fn_evidence),
	    cmocka_unit_test(fn_errors_name_the_expression),
	    cmocka_unit_test(event_json),
	    cmocka_unit_test(vote_records_comment_and_delegate),
	    cmocka_unit_test(timer_of_completed_instance_dropped),
	    cmocka_unit_test(timer_plain_deadline_only_records),
	    cmocka_unit_test(timer_in_region),
	    cmocka_unit_test(wrong_flow_version_refused),
	    cmocka_unit_test(fn_bare_date_is_local_midnight),
	    cmocka_unit_test(fn_calendar_daylight_saving),
	    cmocka_unit_test(add_local_matches_broken_down),
	    cmocka_unit_test(delegation_for_escalation_role),
	    cmocka_unit_test(trace_parallel_join),
	    cmocka_unit_test(trace_quorum_and_timer),
	    cmocka_unit_test(timer_late_tick_reminds_once),
	    cmocka_unit_test(available_in_parallel),
	    cmocka_unit_test(result_merge_and_set_data),
	    cmocka_unit_test(example_appraisal_scores),
	    cmocka_unit_test(example_appeal_climbs_by_timer),
	    cmocka_unit_test(example_cross_department_regions),
	};
	return cmocka_run_group_tests(tests, setup_org, teardown_org);
}
