/*
 * flow.h - the flow language: loading, checking and the compiled model.
 *
 * A flow file (namespace urn:docket:flow:1) is validated against the RelaxNG
 * schema in definitions/flow.rng, then checked for meaning (reachability,
 * references, XPath), then compiled into an immutable dk_flow. The org
 * directory (urn:docket:org:1) is loaded the same way into a dk_org.
 *
 * Ownership: a dk_flow or dk_org that comes back through **out is the
 * caller's and is freed with dk_flow_free / dk_org_free. Every pointer inside
 * the model is owned by the model and lives as long as it does; nothing in
 * it changes after loading, so one model may be shared by many threads.
 *
 * XML is untrusted: no network, no DTD, no entity expansion, at most
 * DK_FLOW_MAX_BYTES bytes.
 */
#ifndef DK_DEFINITIONS_FLOW_H
#define DK_DEFINITIONS_FLOW_H

#include "util/buf.h"
#include "util/time.h"

#include <libxml/xpath.h>
#include <stddef.h>
#include <stdint.h>

#define DK_FLOW_NS        "urn:docket:flow:1"
#define DK_ORG_NS         "urn:docket:org:1"
#define DK_FN_NS          "urn:docket:fn"
#define DK_FLOW_MAX_BYTES (4 * 1024 * 1024)

/* ---- diagnostics ------------------------------------------------------- */

typedef enum { DK_DIAG_WARNING = 0, DK_DIAG_ERROR = 1 } dk_diag_severity;

typedef struct {
	char *file; /* the name given to the loader */
	int line;   /* 1-based; 0 when the problem has no line (empty file) */
	dk_diag_severity severity;
	char *message; /* says what is wrong and what to change */
} dk_diag;

typedef struct {
	dk_diag *items;
	size_t count, cap;
	int errors, warnings;
} dk_diags;

#define DK_DIAGS_INIT                                                                              \
	{                                                                                          \
		NULL, 0, 0, 0, 0                                                                   \
	}

void dk_diags_add(dk_diags *d, const char *file, int line, dk_diag_severity sev, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
/* Sorts by line (stable), then writes "file:line: error: message\n" or
 * "file:line: warning: message\n" for each. */
void dk_diags_print(dk_diags *d, FILE *to);
void dk_diags_free(dk_diags *d);
/* Sorts by file, then line (stable), as dk_diags_print does. */
void dk_diags_sort(dk_diags *d);

/* Which kind of docket file bytes hold, told by the namespace of the root
 * element without loading it: DK_DOC_ORG for urn:docket:org:1, DK_DOC_FLOW
 * for anything else (the flow loader then says what is wrong). */
typedef enum { DK_DOC_FLOW, DK_DOC_ORG } dk_doc_kind;
dk_doc_kind dk_doc_detect(const char *bytes, size_t len);

/* ---- compiled XPath ---------------------------------------------------- */

/* An XPath 1.0 expression compiled once at load time. Variables are the
 * flow's <var>s plus the built-ins below; functions are XPath's own plus
 * the dk: functions listed by dk_fn_lookup. */
/* An expression simple enough to evaluate without libxml2: OPERAND, or
 * OPERAND OP OPERAND, where an operand is a variable ($name, no prefix), a
 * whole number of at most 9 digits, or one of the org lookups dk:head-of,
 * dk:dept-of, dk:division-leader-of, dk:name-of of a variable, and OP one
 * of + - * = != < <= > >=.
 * The engine evaluates it with XPath 1.0's own conversions
 * (engine/xpath.c) and gives the same result libxml2 would. */
typedef enum {
	DK_XOP_NONE,
	DK_XOP_ADD,
	DK_XOP_SUB,
	DK_XOP_MUL,
	DK_XOP_EQ,
	DK_XOP_NE,
	DK_XOP_LT,
	DK_XOP_LE,
	DK_XOP_GT,
	DK_XOP_GE
} dk_xop;

typedef enum {
	DK_XFN_NONE,
	DK_XFN_HEAD_OF,
	DK_XFN_DEPT_OF,
	DK_XFN_DIVISION_LEADER_OF,
	DK_XFN_NAME_OF
} dk_xfn;

typedef struct {
	char *var;     /* the variable's name, or NULL for a number */
	double number; /* when var is NULL */
	dk_xfn fn;     /* applied to the variable, when not DK_XFN_NONE */
} dk_xoperand;

typedef struct {
	dk_xoperand a, b; /* b unused with DK_XOP_NONE */
	dk_xop op;
} dk_xsimple;

typedef struct {
	char *text;
	xmlXPathCompExprPtr comp; /* see dk_xpath_comp */
	int line;
	dk_xsimple *simple; /* NULL: not simple, libxml2 evaluates comp */
} dk_xpath;

/* x's libxml2 form. A flow rebuilt from its compiled form (below) has
 * none until an evaluation needs one: it is compiled then, once, safely
 * from any thread. NULL only when libxml2 cannot compile the text. */
xmlXPathCompExprPtr dk_xpath_comp(const dk_xpath *x);

/* The simple form of text, or NULL when text is not that simple. Free
 * with dk_xsimple_free. */
dk_xsimple *dk_xsimple_parse(const char *text);
void dk_xsimple_free(dk_xsimple *x);

/* Variables every expression may use besides the flow's own. */
#define DK_BUILTIN_VARS                                                                            \
	{                                                                                          \
		"initiator", "actor", "state", "instance", NULL                                    \
	}

/* The dk: functions the language knows. Returns 1 and the arity range when
 * name (local part, e.g. "head-of") is one of them, 0 otherwise. The engine
 * implements every one of them. */
typedef struct {
	const char *name;
	int min_args, max_args;
	const char *doc; /* one line for the designer's guide */
} dk_fn_info;

const dk_fn_info *dk_fn_lookup(const char *name);
/* The whole table, ending with a {NULL} entry. */
const dk_fn_info *dk_fn_table(void);

/* ---- the model --------------------------------------------------------- */

typedef enum { DK_VAR_STRING, DK_VAR_NUMBER, DK_VAR_BOOLEAN, DK_VAR_DATE } dk_var_type;

typedef struct {
	char *name;
	dk_var_type type;
	int required;
	char *default_value; /* NULL when none; already checked against type */
	int line;
} dk_var;

typedef struct {
	char *id;
	char *title;  /* the id when the flow gives none */
	char **types; /* lower-case file extensions; ntypes == 0 means any */
	size_t ntypes;
	int64_t max_size; /* bytes; 0 means no limit ("20MB", "512KB", "1GB") */
	int multiple;
	/* due: from state entry (has_due_after) or an XPath date (due_at) */
	int has_due_after;
	dk_duration due_after;
	dk_xpath *due_at;
	int line;
} dk_evidence_kind;

typedef enum {
	DK_ASSIGN_NONE,      /* no assign attribute: nobody but the system acts */
	DK_ASSIGN_INITIATOR, /* "$initiator" */
	DK_ASSIGN_USER,      /* a user id, e.g. "wei" */
	DK_ASSIGN_ROLE,      /* "role:NAME"; text holds NAME */
	DK_ASSIGN_XPATH      /* anything else: XPath giving user ids */
} dk_assign_kind;

typedef struct {
	dk_assign_kind kind;
	char *text;     /* user id, role name or expression text */
	dk_xpath *expr; /* DK_ASSIGN_XPATH only */
} dk_assign;

typedef enum {
	DK_QUORUM_NONE, /* one task shared by all assignees, first act wins */
	DK_QUORUM_ALL,  /* every assignee; any other choice is a veto */
	DK_QUORUM_ANY,  /* the first assignee to choose decides */
	DK_QUORUM_N     /* quorum_n assignees choosing the same transition */
} dk_quorum_kind;

typedef struct {
	char *var;
	dk_xpath *value;
	int line;
} dk_set;

struct dk_state;

typedef struct {
	char *id;
	char *to;                      /* target state id as written */
	const struct dk_state *target; /* resolved */
	char *role;                    /* narrows who may fire; NULL when none */
	dk_xpath *guard;               /* NULL when none */
	char **requires;               /* evidence kind ids */
	size_t nrequires;
	int comment_required;
	dk_set *sets;
	size_t nsets;
	int on_done; /* join transition of a <parallel> (on="done"); its id is
	              * "done" when the flow gives none */
	int line;
} dk_transition;

typedef struct {
	int has_after;
	dk_duration after; /* counted from state entry */
	dk_xpath *at;      /* or an XPath date-time */
	int has_remind;
	dk_duration remind_every;
	int has_escalate;
	dk_assign escalate;
	char *fire; /* transition id taken by the system actor, or NULL */
	const dk_transition *fire_transition;
	int line;
} dk_deadline;

typedef enum { DK_STATE_SIMPLE, DK_STATE_PARALLEL } dk_state_kind;

struct dk_region;

typedef struct dk_state {
	char *id;
	char *title; /* NULL when none */
	dk_state_kind kind;
	int initial, final;
	dk_assign assign;
	dk_quorum_kind quorum;
	int quorum_n;
	char **freeze; /* evidence kind ids frozen from entry on */
	size_t nfreeze;
	dk_transition *transitions;
	size_t ntransitions;
	dk_deadline *deadlines;
	size_t ndeadlines;
	/* DK_STATE_PARALLEL only: its regions */
	struct dk_region **regions;
	size_t nregions;
	/* the region this state belongs to, NULL at top level */
	const struct dk_region *region;
	int line;
} dk_state;

/* A region of a parallel: a small state machine of simple states (regions
 * do not nest parallels). */
typedef struct dk_region {
	char *id;
	const dk_state *parallel; /* the enclosing parallel state */
	const dk_state *initial;
	const dk_state **states;
	size_t nstates;
	int line;
} dk_region;

typedef struct dk_flow {
	char *id;
	int version;
	char *title;     /* the id when the flow gives no <title> */
	char *file;      /* the name given to the loader */
	char sha256[65]; /* hex SHA-256 of the bytes loaded */
	char *timezone;  /* NULL: the org's, else UTC */
	char **roles;
	size_t nroles;
	int *role_lines; /* the line of each <role>, parallel to roles */
	dk_var *vars;
	size_t nvars;
	dk_evidence_kind *evidence;
	size_t nevidence;
	/* every state, top-level and inside regions, in document order;
	 * ids are unique across the whole flow */
	dk_state *states;
	size_t nstates;
	dk_region *regions;
	size_t nregions;
	const dk_state *initial; /* the top-level initial state */
	int line;                /* of the <flow> element */
} dk_flow;

/* Loads and checks a flow. On success returns 0 and *out; warnings may be
 * added to diags. When any error is found returns DK_EINVALID, *out = NULL,
 * and every problem found is in diags (all reported in one run). diags may
 * be NULL, then the first error's message is in dk_error_last(). */
int dk_flow_load_buffer(dk_flow **out, const char *name, const char *bytes, size_t len,
                        dk_diags *diags);
/* The same from a file; name in messages is the path. */
int dk_flow_load_file(dk_flow **out, const char *path, dk_diags *diags);
/* Loads a flow as deployed: bytes the store kept with the SHA-256 (hex)
 * taken at deploy, when dk_flow_load_buffer accepted them. When the bytes
 * still hash to sha256 the RelaxNG validation is skipped (it passed at
 * deploy; the schema only grows) and the flow is built, its expressions
 * compiled and checked as dk_flow_load_buffer does. When they do not,
 * nothing is loaded: DK_EINVALID, saying the stored flow was changed. */
int dk_flow_load_deployed(dk_flow **out, const char *name, const char *bytes, size_t len,
                          const char *sha256, dk_diags *diags);
void dk_flow_free(dk_flow *flow);

/* Lookups: NULL when absent. Lent. */
const dk_state *dk_flow_state(const dk_flow *flow, const char *id);
const dk_transition *dk_state_transition(const dk_state *st, const char *id);
const dk_var *dk_flow_var(const dk_flow *flow, const char *name);
const dk_evidence_kind *dk_flow_evidence(const dk_flow *flow, const char *id);
int dk_flow_has_role(const dk_flow *flow, const char *role);

/* Diagrams. format is "dot" or "mermaid"; highlight (or NULL) names states
 * to mark as current, a NULL-terminated array. Returns 0 or DK_EUSAGE for an
 * unknown format. */
int dk_flow_graph(dk_buf *out, const dk_flow *flow, const char *format,
                  const char *const *highlight);

/* ---- the org directory ------------------------------------------------- */

typedef struct {
	char *id;
	char *name;
	char *email; /* NULL when none */
	char *dept;  /* NULL when none */
	char **roles;
	size_t nroles;
	int line;
} dk_user;

typedef struct {
	char *id;
	char *name;
	char *head;            /* user id or NULL */
	char *division_leader; /* user id or NULL */
	int line;
} dk_dept;

typedef struct dk_org {
	char *file;
	char sha256[65];
	char *timezone; /* "UTC" when not given */
	dk_user *users;
	size_t nusers;
	dk_dept *depts;
	size_t ndepts;
	char **holidays; /* "YYYY-MM-DD" */
	size_t nholidays;
} dk_org;

int dk_org_load_buffer(dk_org **out, const char *name, const char *bytes, size_t len,
                       dk_diags *diags);
int dk_org_load_file(dk_org **out, const char *path, dk_diags *diags);
void dk_org_free(dk_org *org);

const dk_user *dk_org_user(const dk_org *org, const char *id);
/* 1 when date ("YYYY-MM-DD") is one of the org's holidays. */
int dk_org_is_holiday(const dk_org *org, const char *date);
const dk_dept *dk_org_dept(const dk_org *org, const char *id);
int dk_user_has_role(const dk_user *user, const char *role);

/* ---- compiled forms ----------------------------------------------------- */

/* A loaded flow or org directory as JSON text (definitions/compiled.c),
 * which the store keeps beside the file so that a command rebuilds the
 * model without libxml2 or libcrypto. The format is DK_COMPILED_FORMAT;
 * a form of another format is not read. */
#define DK_COMPILED_FORMAT 1
/* The text (free()), or NULL when out of memory. */
char *dk_flow_compiled(const dk_flow *flow);
char *dk_org_compiled(const dk_org *org);
/* The model back from that text, name as its file and sha256 as the
 * SHA-256 stored with it. DK_EINVALID when the text is not such a form
 * (damaged, or of another format): load the file instead. */
int dk_flow_from_compiled(dk_flow **out, const char *name, const char *sha256, const char *text);
int dk_org_from_compiled(dk_org **out, const char *name, const char *sha256, const char *text);

#endif
