/* test_definitions.c - the compiled flow model, its lookups, the dk:
 * function table, diagrams, diagnostics and the org directory. */
#include "definitions/flow.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <libxml/xpathInternals.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const char flow_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<flow xmlns=\"urn:docket:flow:1\" xmlns:dk=\"urn:docket:fn\" id=\"plan\" version=\"3\"\n"
    "      timezone=\"Asia/Shanghai\">\n"
    "  <title>月度计划 / Plan</title>\n"
    "  <role id=\"dept-head\"/>\n"
    "  <role id=\"group\"/>\n"
    "  <var name=\"phases\" type=\"number\" default=\"3\"/>\n"
    "  <var name=\"done\" type=\"number\" default=\"0\"/>\n"
    "  <var name=\"month\" type=\"string\" required=\"true\"/>\n"
    "  <var name=\"end\" type=\"date\"/>\n"
    "  <var name=\"urgent\" type=\"boolean\" default=\"false\"/>\n"
    "  <evidence id=\"plan\" title=\"Plan\" types=\"PDF .docx\" max-size=\"20MB\"/>\n"
    "  <evidence id=\"report\" multiple=\"true\" due=\"P7D\" max-size=\"512KB\"/>\n"
    "  <evidence id=\"late-one\" due=\"dk:day-of-month(8)\" max-size=\"1GB\"/>\n"
    "  <state id=\"draft\" initial=\"true\" assign=\"$initiator\">\n"
    "    <transition id=\"submit\" to=\"review\">\n"
    "      <requires evidence=\"plan\"/>\n"
    "      <guard>$phases &gt;= 1 and not($urgent) and $month != '' and dk:count('late-one') "
    ">= 0</guard>\n"
    "    </transition>\n"
    "  </state>\n"
    "  <state id=\"review\" title=\"审核\" assign=\"dk:head-of($initiator)\" freeze=\"plan\">\n"
    "    <deadline after=\"P3D\"><remind every=\"P1D\"/><escalate to=\"role:dept-head\"/>"
    "<fire transition=\"return\"/></deadline>\n"
    "    <transition id=\"approve\" to=\"work\" role=\"dept-head\"/>\n"
    "    <transition id=\"return\" to=\"draft\" comment=\"required\"/>\n"
    "  </state>\n"
    "  <state id=\"work\" assign=\"role:group\" quorum=\"2\">\n"
    "    <deadline at=\"$end\"/>\n"
    "    <transition id=\"phase\" to=\"work\">\n"
    "      <requires evidence=\"report\"/>\n"
    "      <set var=\"done\" value=\"$done + 1\"/>\n"
    "    </transition>\n"
    "    <transition id=\"finish\" to=\"checks\"><guard>$done &gt;= $phases</guard></transition>\n"
    "  </state>\n"
    "  <parallel id=\"checks\" assign=\"$initiator\">\n"
    "    <region id=\"a\">\n"
    "      <state id=\"a-1\" initial=\"true\" assign=\"wei\" quorum=\"all\">\n"
    "        <transition id=\"ok\" to=\"a-2\"/>\n"
    "      </state>\n"
    "      <state id=\"a-2\" final=\"true\"/>\n"
    "    </region>\n"
    "    <region id=\"b\">\n"
    "      <state id=\"b-1\" initial=\"true\" assign=\"li\" quorum=\"any\">\n"
    "        <transition id=\"ok\" to=\"b-2\"/>\n"
    "      </state>\n"
    "      <state id=\"b-2\" final=\"true\"/>\n"
    "    </region>\n"
    "    <transition on=\"done\" to=\"closed\"/>\n"
    "    <transition id=\"cancel\" to=\"closed\"/>\n"
    "  </parallel>\n"
    "  <state id=\"closed\" final=\"true\"/>\n"
    "</flow>\n";

static dk_flow *load_ok(void)
{
	dk_flow *f = NULL;
	dk_diags d = DK_DIAGS_INIT;
	int rc = dk_flow_load_buffer(&f, "plan.xml", flow_xml, strlen(flow_xml), &d);
	if (rc != 0)
		dk_diags_print(&d, stderr);
	assert_int_equal(rc, 0);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 0);
	dk_diags_free(&d);
	assert_non_null(f);
	return f;
}

/* A deployed flow loads without RelaxNG only while its bytes hash as they
 * did at deploy; it still gets the same model and the semantic checks. */
static void deployed_flow_checks_its_hash(void **state)
{
	dk_flow *full = load_ok(), *f = NULL;
	char sha[65];
	size_t len = strlen(flow_xml);
	dk_sha256_hex(sha, flow_xml, len);
	assert_int_equal(dk_flow_load_deployed(&f, "plan", flow_xml, len, sha, NULL), 0);
	assert_non_null(f);
	assert_string_equal(f->sha256, full->sha256);
	assert_int_equal(f->nstates, full->nstates);
	assert_int_equal(f->nvars, full->nvars);
	assert_string_equal(f->initial->id, full->initial->id);
	const dk_transition *t = dk_state_transition(dk_flow_state(f, "work"), "finish");
	assert_non_null(t);
	assert_non_null(t->target);
	assert_non_null(t->guard);
	assert_non_null(t->guard->comp);
	dk_flow_free(f);
	dk_flow_free(full);

	/* one byte changed in the store: refused, whatever it says */
	char *tampered = dk_strdup(flow_xml);
	char *pos = strstr(tampered, "default=\"3\"");
	assert_non_null(pos);
	pos[9] = '9';
	f = NULL;
	assert_int_equal(dk_flow_load_deployed(&f, "plan", tampered, len, sha, NULL), DK_EINVALID);
	assert_null(f);
	assert_non_null(strstr(dk_error_last(), "changed after it was deployed"));
	assert_int_equal(dk_flow_load_deployed(&f, "plan", flow_xml, len, NULL, NULL), DK_EINVALID);
	assert_null(f);

	/* matching bytes that break a rule of meaning are still refused */
	char *bad = dk_strdup(flow_xml);
	pos = strstr(bad, "to=\"checks\"");
	assert_non_null(pos);
	memcpy(pos, "to=\"chucks\"", 11);
	dk_sha256_hex(sha, bad, len);
	assert_int_equal(dk_flow_load_deployed(&f, "plan", bad, len, sha, NULL), DK_EINVALID);
	assert_null(f);
	assert_non_null(strstr(dk_error_last(), "chucks"));
	free(bad);
	free(tampered);
}

static void flow_header(void **state)
{
	dk_flow *f = load_ok();
	char sha[65];
	(void)state;
	assert_string_equal(f->id, "plan");
	assert_int_equal(f->version, 3);
	assert_string_equal(f->title, "月度计划 / Plan");
	assert_string_equal(f->file, "plan.xml");
	assert_string_equal(f->timezone, "Asia/Shanghai");
	dk_sha256_hex(sha, flow_xml, strlen(flow_xml));
	assert_string_equal(f->sha256, sha);
	assert_int_equal(f->nroles, 2);
	assert_int_equal(f->role_lines[1], 6);
	assert_int_equal(f->line, 2);
	assert_int_equal(f->nstates, 9);
	assert_int_equal(f->nregions, 2);
	assert_ptr_equal(f->initial, dk_flow_state(f, "draft"));
	dk_flow_free(f);
}

static void flow_vars_and_evidence(void **state)
{
	dk_flow *f = load_ok();
	(void)state;
	const dk_var *v = dk_flow_var(f, "phases");
	assert_non_null(v);
	assert_int_equal(v->type, DK_VAR_NUMBER);
	assert_string_equal(v->default_value, "3");
	assert_int_equal(v->line, 7);
	assert_int_equal(dk_flow_var(f, "month")->required, 1);
	assert_int_equal(dk_flow_var(f, "end")->type, DK_VAR_DATE);
	assert_null(dk_flow_var(f, "end")->default_value);
	assert_int_equal(dk_flow_var(f, "urgent")->type, DK_VAR_BOOLEAN);
	assert_null(dk_flow_var(f, "nope"));

	const dk_evidence_kind *e = dk_flow_evidence(f, "plan");
	assert_non_null(e);
	assert_int_equal(e->ntypes, 2);
	assert_string_equal(e->types[0], "pdf");
	assert_string_equal(e->types[1], "docx");
	assert_int_equal(e->max_size, 20 * 1024 * 1024);
	assert_int_equal(e->multiple, 0);
	assert_int_equal(e->has_due_after, 0);
	assert_null(e->due_at);
	e = dk_flow_evidence(f, "report");
	assert_string_equal(e->title, "report");
	assert_int_equal(e->ntypes, 0);
	assert_int_equal(e->max_size, 512 * 1024);
	assert_int_equal(e->multiple, 1);
	assert_int_equal(e->has_due_after, 1);
	assert_int_equal(e->due_after.days, 7);
	e = dk_flow_evidence(f, "late-one");
	assert_int_equal(e->max_size, (int64_t)1024 * 1024 * 1024);
	assert_non_null(e->due_at);
	assert_non_null(e->due_at->comp);
	assert_string_equal(e->due_at->text, "dk:day-of-month(8)");
	assert_null(dk_flow_evidence(f, "nope"));
	assert_int_equal(dk_flow_has_role(f, "dept-head"), 1);
	assert_int_equal(dk_flow_has_role(f, "boss"), 0);
	dk_flow_free(f);
}

static void flow_states_and_transitions(void **state)
{
	dk_flow *f = load_ok();
	(void)state;
	const dk_state *draft = dk_flow_state(f, "draft");
	const dk_state *review = dk_flow_state(f, "review");
	const dk_state *work = dk_flow_state(f, "work");
	assert_int_equal(draft->assign.kind, DK_ASSIGN_INITIATOR);
	assert_int_equal(draft->initial, 1);
	assert_int_equal(draft->quorum, DK_QUORUM_NONE);
	const dk_transition *submit = dk_state_transition(draft, "submit");
	assert_non_null(submit);
	assert_ptr_equal(submit->target, review);
	assert_int_equal(submit->nrequires, 1);
	assert_string_equal(submit->requires[0], "plan");
	assert_non_null(submit->guard);
	assert_non_null(submit->guard->comp);
	assert_int_equal(submit->guard->line, 18);
	assert_null(dk_state_transition(draft, "approve"));

	assert_string_equal(review->title, "审核");
	assert_int_equal(review->assign.kind, DK_ASSIGN_XPATH);
	assert_non_null(review->assign.expr);
	assert_int_equal(review->nfreeze, 1);
	assert_string_equal(review->freeze[0], "plan");
	assert_int_equal(review->ndeadlines, 1);
	const dk_deadline *dl = &review->deadlines[0];
	assert_int_equal(dl->has_after, 1);
	assert_int_equal(dl->after.days, 3);
	assert_int_equal(dl->has_remind, 1);
	assert_int_equal(dl->remind_every.days, 1);
	assert_int_equal(dl->has_escalate, 1);
	assert_int_equal(dl->escalate.kind, DK_ASSIGN_ROLE);
	assert_string_equal(dl->escalate.text, "dept-head");
	assert_ptr_equal(dl->fire_transition, dk_state_transition(review, "return"));
	assert_string_equal(dk_state_transition(review, "approve")->role, "dept-head");
	assert_int_equal(dk_state_transition(review, "return")->comment_required, 1);
	assert_int_equal(dk_state_transition(review, "approve")->comment_required, 0);

	assert_int_equal(work->assign.kind, DK_ASSIGN_ROLE);
	assert_string_equal(work->assign.text, "group");
	assert_int_equal(work->quorum, DK_QUORUM_N);
	assert_int_equal(work->quorum_n, 2);
	assert_non_null(work->deadlines[0].at);
	assert_int_equal(work->deadlines[0].has_after, 0);
	const dk_transition *phase = dk_state_transition(work, "phase");
	assert_ptr_equal(phase->target, work);
	assert_int_equal(phase->nsets, 1);
	assert_string_equal(phase->sets[0].var, "done");
	assert_string_equal(phase->sets[0].value->text, "$done + 1");
	assert_non_null(phase->sets[0].value->comp);
	assert_null(dk_flow_state(f, "nope"));
	dk_flow_free(f);
}

static void flow_parallel(void **state)
{
	dk_flow *f = load_ok();
	(void)state;
	const dk_state *par = dk_flow_state(f, "checks");
	assert_int_equal(par->kind, DK_STATE_PARALLEL);
	assert_null(par->region);
	assert_int_equal(par->nregions, 2);
	assert_int_equal(par->assign.kind, DK_ASSIGN_INITIATOR);
	const dk_region *a = par->regions[0];
	assert_string_equal(a->id, "a");
	assert_ptr_equal(a->parallel, par);
	assert_int_equal(a->nstates, 2);
	assert_ptr_equal(a->initial, dk_flow_state(f, "a-1"));
	assert_ptr_equal(a->states[1], dk_flow_state(f, "a-2"));
	assert_ptr_equal(dk_flow_state(f, "a-1")->region, a);
	assert_int_equal(dk_flow_state(f, "a-1")->assign.kind, DK_ASSIGN_USER);
	assert_string_equal(dk_flow_state(f, "a-1")->assign.text, "wei");
	assert_int_equal(dk_flow_state(f, "a-1")->quorum, DK_QUORUM_ALL);
	assert_int_equal(dk_flow_state(f, "b-1")->quorum, DK_QUORUM_ANY);
	assert_ptr_equal(dk_flow_state(f, "b-2")->region, par->regions[1]);
	const dk_transition *join = dk_state_transition(par, "done");
	assert_non_null(join);
	assert_int_equal(join->on_done, 1);
	assert_ptr_equal(join->target, dk_flow_state(f, "closed"));
	assert_int_equal(dk_state_transition(par, "cancel")->on_done, 0);
	dk_flow_free(f);
}

/* The compiled guard is a real libxml2 expression: the engine evaluates it
 * with variables and the dk: namespace registered. */
static void compiled_guard_evaluates(void **state)
{
	dk_flow *f = load_ok();
	(void)state;
	const dk_transition *fin = dk_state_transition(dk_flow_state(f, "work"), "finish");
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathRegisterVariable(ctx, (const xmlChar *)"done", xmlXPathNewFloat(3));
	xmlXPathRegisterVariable(ctx, (const xmlChar *)"phases", xmlXPathNewFloat(3));
	xmlXPathObjectPtr r = xmlXPathCompiledEval(fin->guard->comp, ctx);
	assert_non_null(r);
	assert_int_equal(xmlXPathCastToBoolean(r), 1);
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	dk_flow_free(f);
}

static void errors_all_reported(void **state)
{
	const char *xml = "<flow xmlns=\"urn:docket:flow:1\" id=\"x\" version=\"1\">\n"
	                  "  <state id=\"a\" initial=\"true\">\n"
	                  "    <transition id=\"go\" to=\"nowhere\"/>\n"
	                  "    <transition id=\"g2\" to=\"z\"><guard>$nope</guard></transition>\n"
	                  "  </state>\n"
	                  "  <state id=\"z\" final=\"true\" quorum=\"x\"/>\n"
	                  "</flow>\n";
	dk_flow *f = (dk_flow *)1;
	dk_diags d = DK_DIAGS_INIT;
	(void)state;
	assert_int_equal(dk_flow_load_buffer(&f, "x.xml", xml, strlen(xml), &d), DK_EINVALID);
	assert_null(f);
	assert_int_equal(d.errors, 3);
	dk_diags_sort(&d);
	assert_int_equal(d.items[0].line, 3);
	assert_non_null(strstr(d.items[0].message, "unknown state 'nowhere'"));
	assert_int_equal(d.items[1].line, 4);
	assert_non_null(strstr(d.items[1].message, "'$nope'"));
	assert_int_equal(d.items[2].line, 6);
	assert_string_equal(d.items[2].file, "x.xml");
	dk_diags_free(&d);

	/* without diags the first error is the message */
	assert_int_equal(dk_flow_load_buffer(&f, "x.xml", xml, strlen(xml), NULL), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "x.xml:3: transition 'go'"));
}

static void hostile_input(void **state)
{
	const char *laughs = "<!DOCTYPE flow [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>\n"
	                     "<flow xmlns=\"urn:docket:flow:1\" id=\"x\" version=\"1\">&b;</flow>";
	const char *xxe = "<!DOCTYPE flow [<!ENTITY s SYSTEM \"file:///etc/hostname\">]>"
	                  "<flow xmlns=\"urn:docket:flow:1\" id=\"x\" version=\"1\">&s;</flow>";
	dk_flow *f = NULL;
	dk_diags d = DK_DIAGS_INIT;
	char *big;
	(void)state;
	assert_int_equal(dk_flow_load_buffer(&f, "l.xml", laughs, strlen(laughs), &d), DK_EINVALID);
	assert_int_equal(d.count, 1);
	assert_string_equal(
	    d.items[0].message,
	    "entity declarations are not allowed in flow files; remove the DOCTYPE");
	dk_diags_free(&d);
	assert_int_equal(dk_flow_load_buffer(&f, "x.xml", xxe, strlen(xxe), &d), DK_EINVALID);
	assert_int_equal(d.count, 1);
	dk_diags_free(&d);
	big = calloc(1, DK_FLOW_MAX_BYTES + 2);
	memset(big, ' ', DK_FLOW_MAX_BYTES + 1);
	assert_int_equal(dk_flow_load_buffer(&f, "b.xml", big, DK_FLOW_MAX_BYTES + 1, &d),
	                 DK_EINVALID);
	assert_int_equal(d.items[0].line, 0);
	assert_non_null(strstr(d.items[0].message, "larger than the limit"));
	dk_diags_free(&d);
	free(big);
	assert_int_equal(dk_flow_load_buffer(&f, "e.xml", "", 0, &d), DK_EINVALID);
	assert_non_null(strstr(d.items[0].message, "empty"));
	dk_diags_free(&d);
	assert_int_equal(dk_flow_load_file(&f, "/nonexistent/flow.xml", &d), DK_ENOTFOUND);
	dk_diags_free(&d);
}

static void diags_print_format(void **state)
{
	dk_diags d = DK_DIAGS_INIT;
	char buf[512] = "";
	FILE *mem = fmemopen(buf, sizeof(buf), "w");
	(void)state;
	dk_diags_add(&d, "f.xml", 9, DK_DIAG_WARNING, "later %d", 1);
	dk_diags_add(&d, "f.xml", 0, DK_DIAG_ERROR, "no line");
	dk_diags_add(&d, "f.xml", 3, DK_DIAG_ERROR, "first");
	dk_diags_add(&d, "f.xml", 3, DK_DIAG_ERROR, "first"); /* said once */
	assert_int_equal(d.count, 3);
	assert_int_equal(d.errors, 2);
	assert_int_equal(d.warnings, 1);
	dk_diags_print(&d, mem);
	fclose(mem);
	assert_string_equal(buf, "f.xml: error: no line\n"
	                         "f.xml:3: error: first\n"
	                         "f.xml:9: warning: later 1\n");
	dk_diags_free(&d);
}

static void diags_are_capped(void **state)
{
	dk_diags d = DK_DIAGS_INIT;
	(void)state;
	for (int i = 1; i <= 150; i++)
		dk_diags_add(&d, "f.xml", i, DK_DIAG_ERROR, "problem %d", i);
	dk_diags_add(&d, "g.xml", 1, DK_DIAG_ERROR, "another file");
	assert_int_equal(d.count, 102);
	assert_int_equal(d.items[99].line, 100);
	assert_int_equal(d.items[100].line, 101);
	assert_string_equal(d.items[100].message,
	                    "more problems from here on are not shown; fix these first");
	assert_string_equal(d.items[101].file, "g.xml");
	dk_diags_free(&d);
}

static void fn_table(void **state)
{
	const dk_fn_info *fn;
	size_t n = 0;
	(void)state;
	fn = dk_fn_lookup("head-of");
	assert_non_null(fn);
	assert_int_equal(fn->min_args, 1);
	assert_int_equal(fn->max_args, 1);
	fn = dk_fn_lookup("members");
	assert_int_equal(fn->min_args, 1);
	assert_int_equal(fn->max_args, 2);
	assert_int_equal(dk_fn_lookup("now")->max_args, 0);
	assert_int_equal(dk_fn_lookup("end-of-month")->min_args, 0);
	assert_int_equal(dk_fn_lookup("end-of-month")->max_args, 1);
	assert_int_equal(dk_fn_lookup("working-days")->max_args, 2);
	assert_null(dk_fn_lookup("boss-of"));
	assert_null(dk_fn_lookup(NULL));
	for (fn = dk_fn_table(); fn->name; fn++) {
		n++;
		assert_non_null(fn->doc);
		assert_true(strncmp(fn->doc, fn->name, strlen(fn->name)) == 0);
		assert_true(fn->min_args <= fn->max_args);
	}
	assert_int_equal(n, 19);
}

static void graph_output(void **state)
{
	dk_flow *f = load_ok();
	dk_buf b = DK_BUF_INIT;
	const char *hl[] = {"review", NULL};
	(void)state;
	assert_int_equal(dk_flow_graph(&b, f, "dot", hl), 0);
	const char *s = dk_buf_cstr(&b);
	assert_non_null(strstr(s, "digraph \"plan\" {"));
	assert_non_null(strstr(s, "subgraph \"cluster_checks\""));
	assert_non_null(strstr(s, "subgraph \"cluster_checks_a\""));
	assert_non_null(strstr(s, "\"closed\" [label=\"closed\", shape=doublecircle"));
	assert_non_null(strstr(s, "\"__start\" -> \"draft\""));
	assert_non_null(strstr(s,
	                       "\"review\" [label=\"审核\\n(review)\", style=\"rounded,filled\", "
	                       "fillcolor="));
	assert_non_null(strstr(s, "\"review\" -> \"work\" [label=\"approve [dept-head]\"]"));
	assert_non_null(strstr(s, "\"a-1\" -> \"a-2\" [label=\"ok\"]"));
	dk_buf_clear(&b);
	assert_int_equal(dk_flow_graph(&b, f, "mermaid", hl), 0);
	s = dk_buf_cstr(&b);
	assert_non_null(strstr(s, "stateDiagram-v2\n"));
	assert_non_null(strstr(s, "    [*] --> draft\n"));
	assert_non_null(strstr(s, "    state checks {\n"));
	assert_non_null(strstr(s, "        --\n"));
	assert_non_null(strstr(s, "        [*] --> a_1\n"));
	assert_non_null(strstr(s, "        a_2 --> [*]\n"));
	assert_non_null(strstr(s, "    checks --> closed : done\n"));
	assert_non_null(strstr(s, "    class review current\n"));
	dk_buf_clear(&b);
	assert_int_equal(dk_flow_graph(&b, f, "png", NULL), DK_EUSAGE);
	dk_buf_free(&b);
	dk_flow_free(f);
}

static const char org_xml[] =
    "<org xmlns=\"urn:docket:org:1\">\n"
    "  <dept id=\"sales\" name=\"销售公司\" head=\"wei\" division-leader=\"zhao\"/>\n"
    "  <user id=\"li\" name=\"李明\" email=\"li@example.com\" dept=\"sales\" roles=\"employee\"/>\n"
    "  <user id=\"wei\" dept=\"sales\" roles=\"employee  dept-head\"/>\n"
    "  <user id=\"zhao\"/>\n"
    "  <holiday date=\"2026-10-01\"/>\n"
    "</org>\n";

static void org_model(void **state)
{
	dk_org *o = NULL;
	dk_diags d = DK_DIAGS_INIT;
	(void)state;
	assert_int_equal(dk_org_load_buffer(&o, "org.xml", org_xml, strlen(org_xml), &d), 0);
	assert_int_equal(d.count, 0);
	assert_string_equal(o->timezone, "UTC");
	assert_int_equal(o->nusers, 3);
	assert_int_equal(o->ndepts, 1);
	const dk_user *li = dk_org_user(o, "li");
	assert_string_equal(li->name, "李明");
	assert_string_equal(li->email, "li@example.com");
	assert_string_equal(li->dept, "sales");
	assert_int_equal(li->line, 3);
	const dk_user *wei = dk_org_user(o, "wei");
	assert_string_equal(wei->name, "wei");
	assert_null(wei->email);
	assert_int_equal(wei->nroles, 2);
	assert_int_equal(dk_user_has_role(wei, "dept-head"), 1);
	assert_int_equal(dk_user_has_role(li, "dept-head"), 0);
	assert_null(dk_org_user(o, "nobody"));
	const dk_dept *sales = dk_org_dept(o, "sales");
	assert_string_equal(sales->head, "wei");
	assert_string_equal(sales->division_leader, "zhao");
	assert_null(dk_org_dept(o, "hr"));
	assert_int_equal(dk_org_is_holiday(o, "2026-10-01"), 1);
	assert_int_equal(dk_org_is_holiday(o, "2026-10-02"), 0);
	assert_int_equal(strlen(o->sha256), 64);
	dk_org_free(o);
}

static void org_errors(void **state)
{
	const char *xml = "<org xmlns=\"urn:docket:org:1\" timezone=\"Europe/Paris\">\n"
	                  "  <dept id=\"d\" head=\"ghost\"/>\n"
	                  "  <user id=\"u\" dept=\"nowhere\"/>\n"
	                  "  <holiday date=\"2026-13-01\"/>\n"
	                  "</org>\n";
	dk_org *o = NULL;
	dk_diags d = DK_DIAGS_INIT;
	(void)state;
	assert_int_equal(dk_org_load_buffer(&o, "o.xml", xml, strlen(xml), &d), DK_EINVALID);
	assert_null(o);
	assert_int_equal(d.errors, 3);
	dk_diags_free(&d);
}

static void doc_detect(void **state)
{
	const char *org = "<?xml version=\"1.0\"?><!-- <flow> --><org xmlns=\"urn:docket:org:1\"/>";
	const char *flow = "<flow xmlns=\"urn:docket:flow:1\"/>";
	(void)state;
	assert_int_equal(dk_doc_detect(org, strlen(org)), DK_DOC_ORG);
	assert_int_equal(dk_doc_detect(flow, strlen(flow)), DK_DOC_FLOW);
	assert_int_equal(dk_doc_detect("", 0), DK_DOC_FLOW);
	assert_int_equal(dk_doc_detect("\x01\x02<", 3), DK_DOC_FLOW);
}

/* ---- compiled forms ---- */

/* Every pointer of g stands where f's does: same indices, same ids. */
static void same_pointers(const dk_flow *f, const dk_flow *g)
{
	assert_int_equal(f->nstates, g->nstates);
	assert_int_equal(f->nregions, g->nregions);
	assert_int_equal(f->initial - f->states, g->initial - g->states);
	for (size_t i = 0; i < f->nstates; i++) {
		const dk_state *a = &f->states[i], *b = &g->states[i];
		assert_string_equal(a->id, b->id);
		assert_int_equal(a->region ? a->region - f->regions : -1,
		                 b->region ? b->region - g->regions : -1);
		assert_int_equal(a->nregions, b->nregions);
		for (size_t k = 0; k < a->nregions; k++)
			assert_int_equal(a->regions[k] - f->regions, b->regions[k] - g->regions);
		assert_int_equal(a->ntransitions, b->ntransitions);
		for (size_t k = 0; k < a->ntransitions; k++)
			assert_int_equal(
			    a->transitions[k].target ? a->transitions[k].target - f->states : -1,
			    b->transitions[k].target ? b->transitions[k].target - g->states : -1);
		assert_int_equal(a->ndeadlines, b->ndeadlines);
		for (size_t k = 0; k < a->ndeadlines; k++) {
			const dk_transition *x = a->deadlines[k].fire_transition;
			const dk_transition *y = b->deadlines[k].fire_transition;
			assert_int_equal(x ? x - a->transitions : -1, y ? y - b->transitions : -1);
		}
	}
	for (size_t i = 0; i < f->nregions; i++) {
		const dk_region *a = &f->regions[i], *b = &g->regions[i];
		assert_string_equal(a->id, b->id);
		assert_int_equal(a->parallel - f->states, b->parallel - g->states);
		assert_int_equal(a->initial - f->states, b->initial - g->states);
		assert_int_equal(a->nstates, b->nstates);
		for (size_t k = 0; k < a->nstates; k++)
			assert_int_equal(a->states[k] - f->states, b->states[k] - g->states);
	}
}

/* f back from its compiled form: the same text again, the same pointers,
 * the same diagram. Returns the rebuilt flow. */
static dk_flow *round_trip(const dk_flow *f)
{
	dk_flow *g = NULL;
	dk_buf da = DK_BUF_INIT, db = DK_BUF_INIT;
	char *a = dk_flow_compiled(f), *b;

	assert_non_null(a);
	assert_int_equal(dk_flow_from_compiled(&g, f->id, f->sha256, a), 0);
	b = dk_flow_compiled(g);
	assert_non_null(b);
	assert_string_equal(a, b);
	same_pointers(f, g);
	assert_string_equal(g->sha256, f->sha256);
	assert_string_equal(g->file, f->id);
	assert_int_equal(dk_flow_graph(&da, f, "dot", NULL), 0);
	assert_int_equal(dk_flow_graph(&db, g, "dot", NULL), 0);
	assert_string_equal(dk_buf_cstr(&da), dk_buf_cstr(&db));
	dk_buf_free(&da);
	dk_buf_free(&db);
	free(a);
	free(b);
	return g;
}

static void compiled_flow_round_trip(void **state)
{
	static const char *const examples[] = {"appeal", "appraisal", "cross-department",
	                                       "monthly-plan", NULL};
	const char *src = getenv("DOCKET_SRC");
	dk_flow *f = NULL, *g;
	(void)state;

	assert_int_equal(dk_flow_load_buffer(&f, "plan.xml", flow_xml, strlen(flow_xml), NULL), 0);
	g = round_trip(f);
	/* expressions come back as text, compiled by libxml2 when asked */
	const dk_transition *submit = dk_state_transition(dk_flow_state(g, "draft"), "submit");
	assert_null(submit->guard->comp);
	assert_null(submit->guard->simple);
	xmlXPathCompExprPtr c = dk_xpath_comp(submit->guard);
	assert_non_null(c);
	assert_ptr_equal(dk_xpath_comp(submit->guard), c);
	const dk_transition *phase = dk_state_transition(dk_flow_state(g, "work"), "phase");
	assert_non_null(phase->sets[0].value->simple);
	assert_string_equal(phase->sets[0].value->text, "$done + 1");
	dk_flow_free(g);
	dk_flow_free(f);

	assert_non_null(src);
	for (size_t i = 0; examples[i]; i++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/examples/%s.xml", src, examples[i]);
		assert_int_equal(dk_flow_load_file(&f, path, NULL), 0);
		dk_flow_free(round_trip(f));
		dk_flow_free(f);
	}
}

/* Text that is not a whole compiled form of this format is refused, so
 * the caller loads the file instead of running half a flow. */
static void compiled_flow_damaged(void **state)
{
	dk_flow *f = NULL, *g = NULL;
	char *a, *p;
	(void)state;

	assert_int_equal(dk_flow_load_buffer(&f, "plan.xml", flow_xml, strlen(flow_xml), NULL), 0);
	a = dk_flow_compiled(f);
	assert_int_equal(dk_flow_from_compiled(&g, "plan", f->sha256, "{\"format\":1}"),
	                 DK_EINVALID);
	assert_null(g);
	assert_int_equal(dk_flow_from_compiled(&g, "plan", f->sha256, "not json"), DK_EINVALID);
	assert_null(g);
	/* another format */
	p = strstr(a, "\"format\":1");
	assert_non_null(p);
	p[9] = '7';
	assert_int_equal(dk_flow_from_compiled(&g, "plan", f->sha256, a), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "format"));
	p[9] = '1';
	/* a target past the states, in otherwise good text */
	p = strstr(a, "\"target\":1,");
	assert_non_null(p);
	dk_buf far = DK_BUF_INIT;
	dk_buf_printf(&far, "%.*s\"target\":99,%s", (int)(p - a), a, p + 11);
	assert_int_equal(dk_flow_from_compiled(&g, "plan", f->sha256, dk_buf_cstr(&far)),
	                 DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "target"));
	assert_null(g);
	dk_buf_free(&far);
	/* cut short */
	free(a);
	a = dk_flow_compiled(f);
	a[strlen(a) / 2] = '\0';
	assert_int_equal(dk_flow_from_compiled(&g, "plan", f->sha256, a), DK_EINVALID);
	assert_null(g);
	free(a);
	dk_flow_free(f);
}

static void compiled_org_round_trip(void **state)
{
	dk_org *o = NULL, *p = NULL;
	char *a, *b;
	(void)state;

	assert_int_equal(dk_org_load_buffer(&o, "org.xml", org_xml, strlen(org_xml), NULL), 0);
	a = dk_org_compiled(o);
	assert_non_null(a);
	assert_int_equal(dk_org_from_compiled(&p, "org", o->sha256, a), 0);
	b = dk_org_compiled(p);
	assert_string_equal(a, b);
	assert_string_equal(p->sha256, o->sha256);
	assert_string_equal(p->timezone, o->timezone);
	assert_int_equal(p->nusers, o->nusers);
	assert_int_equal(p->ndepts, o->ndepts);
	assert_int_equal(p->nholidays, o->nholidays);
	const dk_user *li = dk_org_user(p, "li");
	assert_non_null(li);
	assert_string_equal(li->name, "李明");
	assert_string_equal(li->email, "li@example.com");
	assert_true(dk_user_has_role(li, "employee"));
	assert_string_equal(dk_org_dept(p, "sales")->head, "wei");
	for (size_t i = 0; i < o->nholidays; i++)
		assert_true(dk_org_is_holiday(p, o->holidays[i]));
	dk_org_free(p);
	p = NULL;
	a[strlen(a) - 2] = '\0';
	assert_int_equal(dk_org_from_compiled(&p, "org", o->sha256, a), DK_EINVALID);
	assert_null(p);
	free(a);
	free(b);
	dk_org_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(flow_header),
	    cmocka_unit_test(deployed_flow_checks_its_hash),
	    cmocka_unit_test(flow_vars_and_evidence),
	    cmocka_unit_test(flow_states_and_transitions),
	    cmocka_unit_test(flow_parallel),
	    cmocka_unit_test(compiled_guard_evaluates),
	    cmocka_unit_test(errors_all_reported),
	    cmocka_unit_test(hostile_input),
	    cmocka_unit_test(diags_print_format),
	    cmocka_unit_test(diags_are_capped),
	    cmocka_unit_test(fn_table),
	    cmocka_unit_test(graph_output),
	    cmocka_unit_test(org_model),
	    cmocka_unit_test(org_errors),
	    cmocka_unit_test(doc_detect),
	    cmocka_unit_test(compiled_flow_round_trip),
	    cmocka_unit_test(compiled_flow_damaged),
	    cmocka_unit_test(compiled_org_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
