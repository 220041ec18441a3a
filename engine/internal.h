/*
 * internal.h - what the engine's files share; not part of the interface.
 *
 * A command runs on a dk_run: the environment it was given, a working copy
 * of the snapshot (which becomes the result's snapshot on success) and the
 * result being filled. Nothing here touches the caller's snapshot.
 */
#ifndef DK_ENGINE_INTERNAL_H
#define DK_ENGINE_INTERNAL_H

#include "engine/engine.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/xmlvar.h"

#include <libxml/xpath.h>
#include <stddef.h>
#include <time.h>

/* how many strings a run remembers having copied (a transition's events,
 * tasks and timers name about ten) */
#define DK_RUN_KEPT 16
typedef struct {
	const dk_engine_env *env;
	const dk_flow *flow;
	dk_snapshot *snap;     /* working copy, owned by res on success */
	dk_engine_result *res; /* events collected here */
	const char *actor;     /* $actor while evaluating */
	/* strings of lasting sources (the flow's, the snapshot's, the
	 * actor) already copied into res, by source (dk__rkeep) */
	const char *kept_src[DK_RUN_KEPT];
	char *kept[DK_RUN_KEPT];
	unsigned nkept;
} dk_run;

/* A list of user ids with the role each came through (NULL when none). */
#define DK_USERS_INLINE 4
typedef struct {
	char **users; /* lent, except those that own[i] marks */
	char **roles; /* lent */
	unsigned char *own;
	size_t n, cap;
	/* the first DK_USERS_INLINE entries, so that the usual list of one
	 * or two assignees needs no allocation; never copy a dk_users */
	char *users_in[DK_USERS_INLINE], *roles_in[DK_USERS_INLINE];
	unsigned char own_in[DK_USERS_INLINE];
} dk_users;

/* ---- pool.c ------------------------------------------------------------ */
/* Blocks that snapshots and results are carved from (see pool.c): taken
 * memory is never freed piecemeal, the whole chain goes at once. */
typedef struct dk_pool_block {
	struct dk_pool_block *next; /* the older blocks */
	size_t used, cap;
	size_t packed; /* a snapshot's: bytes used when it was last packed */
	max_align_t data[];
} dk_pool_block;

#define DK_POOL_ALIGN(n) (((n) + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1))
/* room left in a new block for what a command adds */
#define DK_POOL_SLACK ((size_t)1024)

/* A block of at least cap bytes in front of next (a thread's spare when
 * one fits). */
dk_pool_block *dk__pool_block_new(size_t cap, dk_pool_block *next);
/* n bytes (aligned, not zeroed) from *head, which gains a block when the
 * first has no room (dk__pool_take_new). */
void *dk__pool_take_new(dk_pool_block **head, size_t n);
static inline void *dk__pool_take(dk_pool_block **head, size_t n)
{
	dk_pool_block *b = *head;
	n = DK_POOL_ALIGN(n ? n : 1);
	if (b && b->cap - b->used >= n) {
		void *p = (char *)b->data + b->used;
		b->used += n;
		return p;
	}
	return dk__pool_take_new(head, n);
}
char *dk__pool_strdup(dk_pool_block **head, const char *s); /* NULL stays NULL */
void dk__pool_free(dk_pool_block *head);
/* Bytes taken from every block of the chain. */
size_t dk__pool_used(const dk_pool_block *head);
/* Puts the chain other behind *head's (both then go together). */
void dk__pool_append(dk_pool_block **head, dk_pool_block *other);
/* The thread's scratch buffer, empty, lent until given back (a fresh one
 * when it is already lent), for text that ends up copied into a pool. */
void dk__scratch_take(dk_buf *out);
void dk__scratch_give(dk_buf *b);

/* ---- snapshot.c -------------------------------------------------------- */
/* A snapshot's memory (see the top of the memory section of snapshot.c):
 * everything a command puts into its working snapshot comes from these,
 * never from malloc, and goes back through dk__snap_release, never free. */
dk_snapshot *dk__snap_new(void);
void *dk__snap_alloc(dk_snapshot *s, size_t n); /* zeroed */
char *dk__snap_strdup(dk_snapshot *s, const char *str);
void dk__snap_release(dk_snapshot *s, void *p);
/* realloc: n bytes holding the first old bytes of p */
void *dk__snap_grow(dk_snapshot *s, void *p, size_t old, size_t n);
/* *field = a copy of value (NULL stays NULL), the old one released */
void dk__snap_setstr(dk_snapshot *s, char **field, const char *value);

dk_snap_state *dk__snap_state(dk_snapshot *snap, const char *state, int create);
void dk__snap_state_reset(dk_snapshot *snap, dk_snap_state *st);
/* Frees a dk_value made by dk__value_parse / dk__value_from_xpath. */
void dk__value_clear(dk_value *v);
/* Sets (copies) v into snap->vars keeping the flow's declaration order. */
void dk__snap_set_var(dk_snapshot *snap, const dk_flow *flow, const dk_value *v);
void dk__snap_drop_votes(dk_snapshot *snap, const char *state);
int dk__snap_is_active(const dk_snapshot *snap, const char *state);

/* ---- vars.c ------------------------------------------------------------ */
/* XPath's string() of d as xmlXPathCastNumberToString writes it, into out,
 * when d is 0 or an integer between INT_MIN and INT_MAX (returns 1); 0
 * for the rest, which libxml2 writes. */
int dk__number_int_text(char out[16], double d);
/* Parses text as a value of decl's type into *out (name copied). */
int dk__value_parse(dk_value *out, const dk_var *decl, const char *text);
/* Converts an XPath result to decl's type. */
int dk__value_from_xpath(dk_value *out, const dk_var *decl, xmlXPathObjectPtr obj);
/* The variable changes of one command, in the order first changed; a
 * variable changed twice keeps its place and takes the later from/to, as
 * the jansson object it replaces did. from and to are JSON texts. */
typedef struct {
	char *name;
	char *from, *to; /* in name's allocation, after it */
} dk_change;
typedef struct {
	dk_change *v;
	size_t n;
} dk_changes;
void dk__changes_free(dk_changes *c);
/* {"k":{"from":..,"to":..},...} into b, byte for byte what json_dumps
 * (JSON_COMPACT) gave for the jansson object. */
void dk__changes_write(dk_buf *b, const dk_changes *c);
/* Applies "K=V" strings to run->snap, recording each change in changes
 * (may be NULL). */
int dk__vars_assign(dk_run *run, const char *const *kv, size_t n, dk_changes *changes);
/* A change that cannot be written as JSON (a string that is not UTF-8) is
 * left out, as jansson left it out. */
void dk__var_change(dk_changes *changes, const dk_value *before, const dk_value *after);
/* The value's JSON text into b (see dk__value_json); -1 and nothing
 * written when it has none (a string that is not UTF-8). */
int dk__value_write(dk_buf *b, const dk_value *v);
/* The value as a new jansson reference: integer-valued numbers as JSON
 * integers, NaN as null, booleans as true/false, the rest as strings. */
void *dk__value_json(const dk_value *v);

/* ---- xpath.c ----------------------------------------------------------- */
/* Evaluates expr with $state = state. *out freed with xmlXPathFreeObject.
 * DK_EINVALID with a message naming the expression when it fails. */
int dk__eval(xmlXPathObjectPtr *out, dk_run *run, const char *state, const dk_xpath *expr);
/* The same through libxml2 even when expr has a simple form (for the test
 * that holds the two to the same results). */
int dk__eval_libxml(xmlXPathObjectPtr *out, dk_run *run, const char *state, const dk_xpath *expr);
int dk__eval_bool(int *out, dk_run *run, const char *state, const dk_xpath *expr);
/* 1 and *out when expr is a simple expression (see xpath.c) whose value is
 * a string, without an XPath object: *out is lent from what lasts the
 * whole command (the snapshot's, the org's or the flow's strings, the
 * actor). 0 when it is not: then use dk__eval. */
int dk__eval_simple_string(const char **out, dk_run *run, const char *state, const dk_xpath *expr);
/* A date-time: a string that dk_time_parse accepts. *out = 0 when the
 * expression gives the empty string. */
int dk__eval_time(int64_t *out, dk_run *run, const char *state, const dk_xpath *expr);

/* ---- calendar.c -------------------------------------------------------- */
/* The zone the flow's calendar rules use: the flow's, else the org's. */
const char *dk__zone(const dk_run *run);
/* The same for an environment alone (the runner's reads). */
const char *dk__env_zone(const dk_engine_env *env);
/* UTC instant -> local broken-down time in zone (tm_gmtoff set). */
void dk__local(struct tm *out, const char *zone, int64_t t);
/* Local broken-down time in zone -> UTC instant (fields normalised). */
int64_t dk__from_local(const char *zone, struct tm *tm);
/* t + d applied to the local calendar of zone. */
int64_t dk__add_local(const char *zone, int64_t t, const dk_duration *d);
/* Days from a to b counted on the local calendar (midnights crossed). */
int64_t dk__days_between(const char *zone, int64_t a, int64_t b);
int dk__is_holiday(const dk_run *run, const struct tm *local);
/* dk_time_parse, except that a bare date ("2026-11-28") is midnight in
 * zone rather than in UTC. */
int dk__parse_time(int64_t *out, const char *zone, const char *s);

/* ---- assign.c ---------------------------------------------------------- */
/* Adds user (unless empty or already there) with the role it came
 * through. Both are lent: they must outlive u (the flow's, the org's and
 * the snapshot's strings do; a snapshot's are never freed before it). */
void dk__users_add(dk_users *u, const char *user, const char *role);
int dk__users_has(const dk_users *u, const char *user);
void dk__users_free(dk_users *u);
/* Who is assigned to state (not counting escalation). */
int dk__assignees(dk_users *out, dk_run *run, const dk_state *st, const dk_assign *a);
/* The same plus users added by escalation in the current visit. */
int dk__state_actors(dk_users *out, dk_run *run, const dk_state *st);
/* The same with st's record in run->snap already looked up (NULL: none). */
int dk__state_actors_rec(dk_users *out, dk_run *run, const dk_state *st, const dk_snap_state *rec);
/* May run->actor fire t (NULL: any act, no role) in st? On success
 * *on_behalf is NULL (for self) or the assignee acted for (caller frees). */
int dk__authorize(char **on_behalf, dk_run *run, const dk_state *st, const dk_transition *t);
/* A user's description for messages: "li (head of sales)". */
void dk__describe_users(dk_buf *b, dk_run *run, const dk_users *u);

/* ---- result.c ---------------------------------------------------------- */
/* A flat JSON object written straight as text: byte for byte what
 * jansson's json_dumps(JSON_COMPACT) gives for the same members in the same
 * order, without the object tree and the loop-detection table jansson's
 * dump builds on every call (they cost more than the rest of a transition).
 * Like json_pack's "s", a required string that is not valid UTF-8 fails
 * the whole object (dk__jw_end gives NULL); like json_object_set_new with
 * json_string, an optional one is left out. */
typedef struct {
	dk_buf b;
	int bad;
} dk_jw;
void dk__jw_begin(dk_jw *w);
void dk__jw_str(dk_jw *w, const char *key, const char *val);
void dk__jw_str_opt(dk_jw *w, const char *key, const char *val);
void dk__jw_int(dk_jw *w, const char *key, int64_t val);
/* A jansson value (void * so that this header needs no jansson.h). */
void dk__jw_json(dk_jw *w, const char *key, const void *val);
/* The object's text (caller frees), or NULL after a bad required string. */
char *dk__jw_end(dk_jw *w);
/* The same, copied into *mem. */
char *dk__jw_end_in(dk_jw *w, dk_pool_block **mem);
/* The literal s onto b, which has room for it (dk_buf_grow first). */
#define DK_PUT_LIT(b, s)                                                                           \
	do {                                                                                       \
		memcpy((b)->ptr + (b)->len, s, sizeof(s));                                         \
		(b)->len += sizeof(s) - 1;                                                         \
	} while (0)
/* Any jansson value as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) writes
 * it, through the writer above (caller frees). */
char *dk__json_compact(const void *val);
/* s as a JSON string into b; s must be valid UTF-8 (dk__utf8_valid). */
void dk__json_quote(dk_buf *b, const char *s);
/* The same when s is valid UTF-8 (returns 0), checked in the same pass;
 * -1 and b as it was when it is not. */
int dk__json_quote_valid(dk_buf *b, const char *s);
int dk__utf8_valid(const char *s);
/* val in decimal into b, as jansson writes a JSON integer. */
void dk__json_int(dk_buf *b, int64_t val);

/* The result's blocks: everything reachable from it is carved from them. */
static inline dk_pool_block **dk__res_mem(dk_engine_result *res)
{
	return (dk_pool_block **)&res->mem;
}
/* A copy of s in run's result (NULL stays NULL). */
char *dk__rstr(dk_run *run, const char *s);
/* The same for a string whose address holds it for the whole command
 * (the flow's, the input or working snapshot's, the actor): a source
 * copied before gives the same copy. Never for a buffer that is reused. */
char *dk__rkeep(dk_run *run, const char *s);
/* The same for s from malloc, which is freed. */
char *dk__rtake(dk_run *run, char *s);
/* A new event in run's result, its type (a DK_EV_ constant, not copied)
 * and actor (run's, else the system) filled; set its other fields with
 * dk__rstr or dk__rkeep. */
dk_event *dk__event(dk_run *run, const char *type);
/* Fills res->tasks and res->timers from run->snap and adds a task.assigned
 * event for every task that was not open in before (may be NULL). */
int dk__finish(dk_run *run, const dk_snapshot *before);
/* The tasks and timers run->snap implies, carved from *mem. */
int dk__desired_tasks(dk_run *run, dk_pool_block **mem, dk_task **out, size_t *n);
int dk__desired_timers(dk_run *run, dk_pool_block **mem, dk_timer **out, size_t *n);

/* ---- fire.c ------------------------------------------------------------ */
int dk__enter(dk_run *run, const dk_state *st);
/* Takes t out of from (which is active) with all its effects; actor and
 * on_behalf as recorded. Runs sets, exit, entry, join, completion. */
int dk__take(dk_run *run, const dk_state *from, const dk_transition *t, const char *on_behalf,
             const char *comment, dk_changes *var_changes);
/* Preconditions: guard, requires, comment. */
int dk__check(dk_run *run, const dk_state *st, const dk_transition *t, const char *comment,
              int system);

/* ---- quorum.c ---------------------------------------------------------- */
/* Records the vote of user (acting actor) for t in the quorum state st;
 * sets *fire when the transition now fires. */
int dk__vote(int *fire, dk_run *run, const dk_state *st, const dk_transition *t, const char *user);

/* ---- evidence.c -------------------------------------------------------- */
const dk_snap_evidence *dk__latest_upload(const dk_snapshot *snap, const char *kind);
size_t dk__count_uploads(const dk_snapshot *snap, const char *kind);
/* The due instant of an upload of kind (0 when the kind has no due). */
int dk__evidence_due(int64_t *out, dk_run *run, const dk_evidence_kind *k,
                     const dk_snap_evidence *upload);

#endif
