/*
 * xml.c - reading untrusted XML safely and validating it against the
 * embedded RelaxNG schemas, with messages a process designer understands.
 *
 * Safety: libxml2 2.9.14 fetches file:// URLs even with XML_PARSE_NONET, so
 * an external entity loader refuses every external resource; no NOENT, no
 * DTD options; a DOCTYPE stops the parser before its internal subset is
 * read, so entities are never declared, let alone expanded (billion laughs).
 * libxml2's own printing is silenced: its errors come back through a
 * structured error handler and become dk_diags with line numbers.
 *
 * Messages: libxml2's RelaxNG errors are terse ("Element state failed to
 * validate attributes") and come in cascades. When the schema rejects a
 * document, explain() walks it with a table of what each element allows and
 * says precisely what is wrong and where; the raw schema messages are used
 * only when the table finds nothing to say.
 */
#include "definitions/internal.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"
#include "util/resource.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/relaxng.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Limits on one expression, far above what a flow needs, far below what
 * overflows libxml2's recursive XPath compiler. */
#define DK_XPATH_MAX_LEN   2000
#define DK_XPATH_MAX_DEPTH 32

/* ---- small DOM helpers ------------------------------------------------- */

int dk_xml_line(const xmlNode *n)
{
	long l = n ? xmlGetLineNo(n) : 0;
	return l > 0 ? (int)l : 0;
}

char *dk_xml_attr(const xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
	char *s;
	if (!v)
		return NULL;
	s = dk_strdup((const char *)v);
	dk_xml_free(v);
	return s;
}

int dk_xml_is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

char **dk_split_words(const char *s, size_t *n)
{
	char **v = dk_calloc(1, sizeof(*v));
	size_t count = 0;
	const char *p = s ? s : "";
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		const char *start = p;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		if (p > start) {
			v = dk_realloc(v, (count + 2) * sizeof(*v));
			v[count++] = dk_strndup(start, (size_t)(p - start));
			v[count] = NULL;
		}
	}
	*n = count;
	return v;
}

void dk_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- silencing libxml2 ------------------------------------------------- */

static void silent(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

static xmlParserInputPtr refuse_entity(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	(void)ctxt;
	return NULL;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml(void)
{
	xmlInitParser();
	/* Process-wide on purpose: docket never wants an external resource. */
	xmlSetExternalEntityLoader(refuse_entity);
}

/* One problem libxml2 reported during a parse or a validation. */
typedef struct {
	int line;
	int code;
	int domain;
	int int1; /* XPath: the offset of the error in the expression */
	char *message;
	xmlNodePtr node;
} lib_error;

typedef struct {
	lib_error *items;
	size_t count;
	int doctype_line; /* > 0 once a DOCTYPE was seen */
} lib_errors;

static void on_error(void *ctx, xmlErrorPtr e)
{
	lib_errors *errs = ctx;
	if (!e || errs->count >= 200)
		return;
	errs->items = dk_realloc(errs->items, (errs->count + 1) * sizeof(*errs->items));
	lib_error *le = &errs->items[errs->count++];
	le->line = e->line;
	le->code = e->code;
	le->domain = e->domain;
	le->node = e->node;
	le->int1 = e->int1;
	if (le->node && le->line <= 0)
		le->line = dk_xml_line(le->node);
	/* libxml2 messages end with a newline and start upper-case. */
	char *m = dk_strdup(e->message ? e->message : "unknown problem");
	size_t n = strlen(m);
	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		m[--n] = '\0';
	for (char *p = m; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	le->message = m;
}

static void errors_free(lib_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		free(errs->items[i].message);
	free(errs->items);
	memset(errs, 0, sizeof(*errs));
}

static void capture_begin(lib_errors *errs)
{
	pthread_once(&init_once, init_libxml);
	xmlSetStructuredErrorFunc(errs, on_error);
	xmlSetGenericErrorFunc(NULL, silent);
}

static void capture_end(void)
{
	xmlSetStructuredErrorFunc(NULL, NULL);
	xmlSetGenericErrorFunc(NULL, NULL);
}

/* A DOCTYPE may declare entities (billion laughs, XXE) or name an external
 * DTD: flows need neither, so the parser stops right at it. */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
	xmlParserCtxtPtr ctxt = ctx;
	lib_errors *errs = ctxt->_private;
	(void)name;
	(void)ext;
	(void)sys;
	errs->doctype_line = ctxt->input ? ctxt->input->line : 1;
	if (errs->doctype_line <= 0)
		errs->doctype_line = 1;
	xmlStopParser(ctxt);
}

static int contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return 1;
	return 0;
}

static void lower_first(char *s)
{
	if (s && s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
		s[0] = (char)(s[0] - 'A' + 'a');
}

/* Turns the first well-formedness error into one diag: later ones are
 * mostly consequences of the first. */
static void report_parse_error(const char *file, const lib_error *le, const char *what,
                               const char *example, dk_diags *d)
{
	char *m = dk_strdup(le->message);
	lower_first(m);
	switch (le->code) {
	case XML_ERR_DOCUMENT_EMPTY:
		dk_diags_add(d, file, 0, DK_DIAG_ERROR,
		             "the file holds no XML element; a %s file starts with %s", what,
		             example);
		break;
	case XML_ERR_DOCUMENT_START:
		dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
		             "this is not XML (no '<' where the first element should start); "
		             "a %s file starts with %s",
		             what, example);
		break;
	case XML_ERR_INVALID_CHAR:
	case XML_ERR_INVALID_ENCODING: {
		const char *bytes = strstr(le->message, "Bytes:");
		if (bytes)
			dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
			             "the file is not UTF-8 text (bad bytes %s); save it as UTF-8",
			             bytes + 7);
		else
			dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
			             "the file is not UTF-8 text (%s); save it as UTF-8", m);
		break;
	}
	case XML_ERR_TAG_NAME_MISMATCH: {
		/* "Opening and ending tag mismatch: OPEN line N and CLOSE" */
		static const char head[] = "Opening and ending tag mismatch: ";
		char open[128] = "", close[128] = "";
		long oline = 0;
		const char *p = strncmp(le->message, head, sizeof(head) - 1) == 0
		                    ? le->message + sizeof(head) - 1
		                    : NULL;
		const char *sp = p ? strstr(p, " line ") : NULL;
		const char *and = sp ? strstr(sp, " and ") : NULL;
		if (sp && and&&(size_t)(sp - p) < sizeof(open) && strlen(and+5) < sizeof(close)) {
			memcpy(open, p, (size_t)(sp - p));
			open[sp - p] = '\0';
			oline = strtol(sp + 6, NULL, 10);
			snprintf(close, sizeof(close), "%s", and+5);
		}
		if (*open && *close && oline > 0) {
			dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
			             "</%s> closes <%s>, which was opened on line %d and is still "
			             "open; close <%s> first (or write it as <%s .../>)",
			             close, open, (int)oline, open, open);
			break;
		}
		dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
		             "not well-formed XML: %s; fix the markup", m);
		break;
	}
	case XML_ERR_UNDECLARED_ENTITY:
		dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
		             "%s; only the XML entities &lt; &gt; &amp; &quot; &apos; and "
		             "character references like &#169; may be used",
		             m);
		break;
	case XML_ERR_DOCUMENT_END:
		dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
		             "content after the end of the root element; a file holds "
		             "exactly one root element, remove what follows it");
		break;
	default:
		if (strstr(le->message, "Excessive depth"))
			dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
			             "elements are nested more than %u levels deep; a %s needs "
			             "only a few levels, so this is not a %s file",
			             dk_xml_max_depth(), what, what);
		else
			dk_diags_add(d, file, le->line, DK_DIAG_ERROR,
			             "not well-formed XML: %s; fix the markup", m);
	}
	free(m);
}

/* ---- the schema explainer ---------------------------------------------- */

/* What each element allows, for messages only: RelaxNG decides validity. */
typedef struct {
	const char *ns;       /* DK_FLOW_NS or DK_ORG_NS */
	const char *name;     /* element */
	const char *attrs;    /* allowed attributes, space-separated */
	const char *required; /* required attributes */
	const char *children; /* allowed child elements; NULL: none */
	int text;             /* text content allowed */
} elem_rule;

static const elem_rule rules[] = {
    {DK_FLOW_NS, "flow", "id version timezone", "id version",
     "title role var evidence state parallel", 0},
    {DK_FLOW_NS, "title", "", "", NULL, 1},
    {DK_FLOW_NS, "role", "id title", "id", NULL, 0},
    {DK_FLOW_NS, "var", "name type required default", "name type", NULL, 0},
    {DK_FLOW_NS, "evidence", "id title types max-size multiple due", "id", NULL, 0},
    {DK_FLOW_NS, "state", "id title initial final assign quorum freeze", "id",
     "transition deadline", 0},
    {DK_FLOW_NS, "transition", "id to role comment on", "to", "guard requires set", 0},
    {DK_FLOW_NS, "guard", "", "", NULL, 1},
    {DK_FLOW_NS, "requires", "evidence", "evidence", NULL, 0},
    {DK_FLOW_NS, "set", "var value", "var value", NULL, 0},
    {DK_FLOW_NS, "deadline", "after at", "", "remind escalate fire", 0},
    {DK_FLOW_NS, "remind", "every", "every", NULL, 0},
    {DK_FLOW_NS, "escalate", "to", "to", NULL, 0},
    {DK_FLOW_NS, "fire", "transition", "transition", NULL, 0},
    {DK_FLOW_NS, "parallel", "id title initial assign", "id", "region transition deadline", 0},
    {DK_FLOW_NS, "region", "id title", "id", "state", 0},
    {DK_ORG_NS, "org", "timezone", "", "dept user holiday", 0},
    {DK_ORG_NS, "dept", "id name head division-leader", "id", NULL, 0},
    {DK_ORG_NS, "user", "id name email dept roles", "id", NULL, 0},
    {DK_ORG_NS, "holiday", "date name", "date", NULL, 0},
    {NULL, NULL, NULL, NULL, NULL, 0},
};

typedef struct {
	const char *attr;
	const char *values; /* allowed values, space-separated */
} enum_rule;

static const enum_rule enums[] = {
    {"initial", "true false"},
    {"final", "true false"},
    {"required", "true false"},
    {"multiple", "true false"},
    {"comment", "required optional"},
    {"on", "done"},
    {"type", "string number boolean date"},
    {NULL, NULL},
};

/* Attributes whose value is a name (NCName): ids and references. */
static const char *const name_attrs[] = {
    "flow@id",
    "role@id",
    "var@name",
    "evidence@id",
    "state@id",
    "transition@id",
    "transition@to",
    "transition@role",
    "requires@evidence",
    "set@var",
    "fire@transition",
    "parallel@id",
    "region@id",
    "dept@id",
    "dept@head",
    "dept@division-leader",
    "user@id",
    "user@dept",
    NULL,
};

static int word_in(const char *list, const char *w)
{
	size_t n = strlen(w);
	const char *p = list;
	while (p && *p) {
		while (*p == ' ')
			p++;
		const char *s = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - s) == n && n > 0 && memcmp(s, w, n) == 0)
			return 1;
	}
	return 0;
}

/* "a b c" as "a, b, c" */
static void put_list(dk_buf *b, const char *list)
{
	int first = 1;
	const char *p = list;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *s = p;
		while (*p && *p != ' ')
			p++;
		if (p > s) {
			if (!first)
				dk_buf_puts(b, ", ");
			dk_buf_put(b, s, (size_t)(p - s));
			first = 0;
		}
	}
}

static int edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[64];
	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int prev = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cur = row[j];
			int best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

/* The word of list closest to w, when close enough to be a typo. */
static int closest(char *out, size_t outlen, const char *list, const char *w)
{
	int best = 3;
	const char *p = list;
	out[0] = '\0';
	while (p && *p) {
		while (*p == ' ')
			p++;
		const char *s = p;
		while (*p && *p != ' ')
			p++;
		size_t n = (size_t)(p - s);
		if (n == 0 || n >= outlen)
			continue;
		char word[64];
		if (n >= sizeof(word))
			continue;
		memcpy(word, s, n);
		word[n] = '\0';
		int dist = edit_distance(word, w);
		if (dist < best) {
			best = dist;
			memcpy(out, word, n + 1);
		}
	}
	return out[0] != '\0';
}

static const elem_rule *find_rule(const char *ns, const char *name)
{
	for (const elem_rule *r = rules; r->name; r++)
		if (strcmp(r->ns, ns) == 0 && strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

static const char *node_ns(const xmlNode *n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

/* Checks one attribute value against the enums and name rules. */
static void explain_value(const char *file, const xmlNode *n, const char *attr, const char *value,
                          dk_diags *d)
{
	const char *el = (const char *)n->name;
	char key[128];
	int line = dk_xml_line(n);

	for (const enum_rule *e = enums; e->attr; e++) {
		if (strcmp(e->attr, attr) != 0)
			continue;
		if (strcmp(attr, "type") == 0 && strcmp(el, "var") != 0)
			continue;
		if (!word_in(e->values, value) || strchr(value, ' ')) {
			dk_buf b = DK_BUF_INIT;
			put_list(&b, e->values);
			dk_diags_add(d, file, line, DK_DIAG_ERROR,
			             "<%s> %s=\"%s\" is not allowed; use one of: %s", el, attr,
			             value, dk_buf_cstr(&b));
			dk_buf_free(&b);
		}
		return;
	}
	snprintf(key, sizeof(key), "%s@%s", el, attr);
	for (const char *const *k = name_attrs; *k; k++)
		if (strcmp(*k, key) == 0) {
			if (xmlValidateNCName((const xmlChar *)value, 0) != 0)
				dk_diags_add(
				    d, file, line, DK_DIAG_ERROR,
				    "<%s> %s=\"%s\" is not a valid name; use letters, digits, "
				    "'-', '_' and '.', starting with a letter or '_'",
				    el, attr, value);
			return;
		}
	if (strcmp(key, "flow@version") == 0) {
		const char *p = value;
		int ok = *p >= '1' && *p <= '9';
		while (ok && *++p)
			ok = *p >= '0' && *p <= '9';
		if (!ok)
			dk_diags_add(d, file, line, DK_DIAG_ERROR,
			             "<flow> version=\"%s\" must be a whole number from 1 up, "
			             "e.g. version=\"1\"",
			             value);
	}
}

/* libxml2 gives a text node the line where it ends; the designer wants
 * the line where its first non-blank character is. */
static int text_line(const xmlNode *c, int fallback)
{
	int line = dk_xml_line(c);
	const xmlChar *t = c->content;
	if (line <= 0 || !t)
		return fallback;
	while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
		t++;
	for (; *t; t++)
		if (*t == '\n')
			line--;
	return line > 0 ? line : fallback;
}

static void explain_node(const char *file, const char *ns, const xmlNode *n, dk_diags *d)
{
	const char *el = (const char *)n->name;
	const elem_rule *r = find_rule(ns, el);
	int line = dk_xml_line(n);

	if (!r)
		return; /* reported by its parent, which does not allow it */
	/* attributes */
	for (const xmlAttr *a = n->properties; a; a = a->next) {
		const char *an = (const char *)a->name;
		xmlChar *v = xmlNodeGetContent((const xmlNode *)a);
		if (a->ns) {
			dk_diags_add(d, file, line, DK_DIAG_ERROR,
			             "attribute '%s:%s' is not allowed on <%s>; remove it",
			             a->ns->prefix ? (const char *)a->ns->prefix : "", an, el);
		} else if (!word_in(r->attrs, an)) {
			dk_buf b = DK_BUF_INIT;
			char guess[64];
			if (closest(guess, sizeof(guess), r->attrs, an))
				dk_buf_printf(&b, "did you mean '%s'?", guess);
			else if (*r->attrs) {
				dk_buf_puts(&b, "allowed: ");
				put_list(&b, r->attrs);
			} else {
				dk_buf_printf(&b, "<%s> takes no attributes", el);
			}
			dk_diags_add(d, file, line, DK_DIAG_ERROR,
			             "unknown attribute '%s' on <%s>; %s", an, el, dk_buf_cstr(&b));
			dk_buf_free(&b);
		} else {
			explain_value(file, n, an, v ? (const char *)v : "", d);
		}
		dk_xml_free(v);
	}
	const char *p = r->required;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *s = p;
		while (*p && *p != ' ')
			p++;
		char attr[64];
		size_t len = (size_t)(p - s);
		if (len == 0 || len >= sizeof(attr))
			continue;
		memcpy(attr, s, len);
		attr[len] = '\0';
		if (!xmlHasNsProp(n, (const xmlChar *)attr, NULL))
			dk_diags_add(d, file, line, DK_DIAG_ERROR,
			             "<%s> is missing the attribute '%s'; add %s=\"...\"", el, attr,
			             attr);
	}
	if (strcmp(el, "deadline") == 0) {
		int after = xmlHasNsProp(n, (const xmlChar *)"after", NULL) != NULL;
		int at = xmlHasNsProp(n, (const xmlChar *)"at", NULL) != NULL;
		if (after == at)
			dk_diags_add(
			    d, file, line, DK_DIAG_ERROR,
			    "<deadline> needs exactly one of after=\"DURATION\" (e.g. P3D) "
			    "or at=\"XPATH DATE\"");
	}
	/* children */
	int nelem = 0, ntitle = 0;
	for (const xmlNode *c = n->children; c; c = c->next) {
		if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
			const xmlChar *t = c->content;
			int blank = 1;
			for (; t && *t; t++)
				if (*t != ' ' && *t != '\t' && *t != '\n' && *t != '\r')
					blank = 0;
			if (!blank && !r->text)
				dk_diags_add(
				    d, file, text_line(c, line), DK_DIAG_ERROR,
				    "text is not allowed inside <%s>; put expressions in <guard> "
				    "or in attributes, and notes in <!-- comments -->",
				    el);
			continue;
		}
		if (c->type == XML_ENTITY_REF_NODE) {
			dk_diags_add(d, file, line, DK_DIAG_ERROR,
			             "entity reference &%s; is not allowed; write the text itself",
			             (const char *)c->name);
			continue;
		}
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *cn = (const char *)c->name;
		int cline = dk_xml_line(c);
		nelem++;
		if (strcmp(node_ns(c), ns) != 0) {
			if (strcmp(node_ns(c), "http://www.w3.org/2001/XInclude") == 0)
				dk_diags_add(
				    d, file, cline, DK_DIAG_ERROR,
				    "XInclude (<%s%s%s>) is not supported; put everything in "
				    "one file",
				    c->ns->prefix ? (const char *)c->ns->prefix : "",
				    c->ns->prefix ? ":" : "", cn);
			else if (*node_ns(c))
				dk_diags_add(
				    d, file, cline, DK_DIAG_ERROR,
				    "<%s> is in namespace '%s', which docket does not know; "
				    "remove it or use an element of %s",
				    cn, node_ns(c), ns);
			else
				dk_diags_add(
				    d, file, cline, DK_DIAG_ERROR,
				    "<%s> has no namespace; an inner xmlns=\"\" takes it out of "
				    "%s, remove that",
				    cn, ns);
			continue;
		}
		if (!r->children || !word_in(r->children, cn)) {
			dk_buf b = DK_BUF_INIT;
			char guess[64];
			if (strcmp(el, "region") == 0 && strcmp(cn, "parallel") == 0)
				dk_buf_puts(&b,
				            "regions hold simple states only, a parallel cannot "
				            "be nested");
			else if (r->children && closest(guess, sizeof(guess), r->children, cn))
				dk_buf_printf(&b, "did you mean <%s>?", guess);
			else if (r->children) {
				dk_buf_printf(&b, "<%s> may contain: ", el);
				put_list(&b, r->children);
			} else {
				dk_buf_printf(&b, "<%s> holds no elements", el);
			}
			dk_diags_add(d, file, cline, DK_DIAG_ERROR,
			             "<%s> is not allowed inside <%s>; %s", cn, el,
			             dk_buf_cstr(&b));
			dk_buf_free(&b);
			continue;
		}
		if (strcmp(cn, "title") == 0 && strcmp(el, "flow") == 0) {
			ntitle++;
			if (ntitle > 1 || nelem > 1)
				dk_diags_add(
				    d, file, cline, DK_DIAG_ERROR,
				    "<title> must come first in <flow>, and only once; move "
				    "it up or remove the extra one");
		}
	}
	if (strcmp(el, "region") == 0 && nelem == 0)
		dk_diags_add(d, file, line, DK_DIAG_ERROR,
		             "<region> has no states; add <state> elements to it");
}

static void explain_tree(const char *file, const char *ns, const xmlNode *n, dk_diags *d)
{
	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (strcmp(node_ns(n), ns) == 0)
			explain_node(file, ns, n, d);
		explain_tree(file, ns, n->children, d);
	}
}

/* ---- start lines ------------------------------------------------------- */

/* libxml2 records an element's line when its start tag has been read, so
 * a start tag spread over several lines gets its last line. Designers
 * look for the line where the tag opens. One forward pass finds the line
 * of every start tag ('<' followed by a name, outside comments, CDATA and
 * processing instructions: '<' cannot occur unescaped anywhere else); the
 * document has no entities or inclusions, so start tags and elements in
 * document order are the same list. */
typedef struct {
	int *lines;
	size_t count, next;
} tag_lines;

static void scan_tag_lines(tag_lines *tl, const char *b, size_t len)
{
	int line = 1;
	size_t cap = 64;
	tl->lines = dk_malloc(cap * sizeof(*tl->lines));
	tl->count = tl->next = 0;
	for (size_t i = 0; i < len; i++) {
		const char *end = NULL;
		if (b[i] == '\n') {
			line++;
			continue;
		}
		if (b[i] != '<' || i + 1 >= len)
			continue;
		if (len - i >= 4 && memcmp(b + i, "<!--", 4) == 0)
			end = "-->";
		else if (len - i >= 9 && memcmp(b + i, "<![CDATA[", 9) == 0)
			end = "]]>";
		else if (b[i + 1] == '?')
			end = "?>";
		else if (b[i + 1] == '!')
			end = ">";
		if (end) {
			size_t n = strlen(end);
			for (i++; i < len && !(i + n <= len && memcmp(b + i, end, n) == 0); i++)
				line += b[i] == '\n';
			i += n - 1;
			continue;
		}
		if (b[i + 1] == '/')
			continue;
		if (tl->count == cap) {
			cap *= 2;
			tl->lines = dk_realloc(tl->lines, cap * sizeof(*tl->lines));
		}
		tl->lines[tl->count++] = line;
	}
}

static void fix_start_lines(tag_lines *tl, xmlNodePtr n)
{
	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (tl->next < tl->count) {
			int line = tl->lines[tl->next++];
			/* only ever earlier, and only where libxml2's field can hold it */
			if (line > 0 && line < 65535 && line <= dk_xml_line(n))
				n->line = (unsigned short)line;
		}
		fix_start_lines(tl, n->children);
	}
}

static size_t count_elements(const xmlNode *n)
{
	size_t k = 0;
	for (; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE)
			k += 1 + count_elements(n->children);
	return k;
}

/* ---- schemas ----------------------------------------------------------- */

static pthread_mutex_t schema_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const char *name;
	xmlRelaxNGPtr schema;
} schemas[4];

/* The compiled schema, parsed once from the embedded copy and kept for the
 * life of the process (a compiled schema is only read while validating). */
static xmlRelaxNGPtr get_schema(const char *name)
{
	xmlRelaxNGPtr s = NULL;
	pthread_mutex_lock(&schema_lock);
	for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
		if (schemas[i].name && strcmp(schemas[i].name, name) == 0) {
			s = schemas[i].schema;
			goto done;
		}
		if (!schemas[i].name) {
			size_t len = 0;
			const char *bytes = dk_resource(name, &len);
			if (!bytes)
				goto done;
			xmlRelaxNGParserCtxtPtr pc = xmlRelaxNGNewMemParserCtxt(bytes, (int)len);
			if (!pc)
				goto done;
			s = xmlRelaxNGParse(pc);
			xmlRelaxNGFreeParserCtxt(pc);
			if (s) {
				schemas[i].name = name;
				schemas[i].schema = s;
			}
			goto done;
		}
	}
done:
	pthread_mutex_unlock(&schema_lock);
	return s;
}

/* ---- time zones -------------------------------------------------------- */

void dk_check_timezone(const char *file, int line, const char *tz, dk_diags *d)
{
	struct stat sb;
	char path[512];
	int ok = tz && *tz && *tz != '/' && strlen(tz) < 200;
	for (const char *p = tz; ok && *p; p++) {
		int c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '+' || c == '/'))
			ok = 0;
		if (c == '/' && (p[1] == '/' || p[1] == '\0'))
			ok = 0;
	}
	if (!ok) {
		dk_diags_add(d, file, line, DK_DIAG_ERROR,
		             "timezone '%s' is not a time zone name; write an IANA name such as "
		             "Asia/Shanghai, Europe/Paris or UTC",
		             tz ? tz : "");
		return;
	}
	/* Only when the system has a zone database to ask. */
	if (stat("/usr/share/zoneinfo", &sb) != 0 || !S_ISDIR(sb.st_mode))
		return;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
		dk_diags_add(d, file, line, DK_DIAG_WARNING,
		             "timezone '%s' is not in this system's time zone database; check the "
		             "spelling (e.g. Asia/Shanghai) or install tzdata",
		             tz);
}

/* ---- the reader -------------------------------------------------------- */

int dk_xml_load(xmlDocPtr *out, const char *file, const char *bytes, size_t len, const char *root,
                const char *ns, const char *schema, const char *what, dk_diags *d)
{
	lib_errors errs = {0};
	xmlParserCtxtPtr ctxt = NULL;
	xmlDocPtr doc = NULL;
	xmlRelaxNGValidCtxtPtr vc = NULL;
	char example[160];
	int rc = DK_EINVALID;

	*out = NULL;
	snprintf(example, sizeof(example), "<%s xmlns=\"%s\">", root, ns);
	if (len == 0) {
		dk_diags_add(d, file, 0, DK_DIAG_ERROR,
		             "the file is empty; a %s file starts with %s", what, example);
		return DK_EINVALID;
	}
	if (len > (size_t)(DK_FLOW_MAX_BYTES)) {
		dk_diags_add(d, file, 0, DK_DIAG_ERROR,
		             "the file is larger than the limit of %d bytes (%d MB); a %s this "
		             "big is a mistake, split it or remove what is not needed",
		             DK_FLOW_MAX_BYTES, DK_FLOW_MAX_BYTES / (1024 * 1024), what);
		return DK_EINVALID;
	}
	capture_begin(&errs);
	ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		capture_end();
		dk_diags_add(d, file, 0, DK_DIAG_ERROR, "out of memory while reading the file");
		return DK_EINVALID;
	}
	ctxt->_private = &errs;
	ctxt->sax->internalSubset = on_doctype;
	doc = xmlCtxtReadMemory(ctxt, bytes, (int)len, file, NULL,
	                        XML_PARSE_NONET | XML_PARSE_BIG_LINES | XML_PARSE_NOCDATA);
	if (errs.doctype_line > 0) {
		if (contains(bytes, len, "<!ENTITY"))
			dk_diags_add(d, file, errs.doctype_line, DK_DIAG_ERROR,
			             "entity declarations are not allowed in %s files; remove the "
			             "DOCTYPE",
			             what);
		else
			dk_diags_add(d, file, errs.doctype_line, DK_DIAG_ERROR,
			             "a DOCTYPE is not allowed in %s files (docket checks them "
			             "against its own schema); remove it",
			             what);
		goto cleanup;
	}
	if (!doc || errs.count > 0) {
		if (errs.count > 0)
			report_parse_error(file, &errs.items[0], what, example, d);
		else
			dk_diags_add(d, file, 0, DK_DIAG_ERROR,
			             "not well-formed XML; fix the markup");
		goto cleanup;
	}
	xmlNodePtr top = xmlDocGetRootElement(doc);
	if (!top) {
		dk_diags_add(d, file, 0, DK_DIAG_ERROR,
		             "the file holds no XML element; a %s file starts with %s", what,
		             example);
		goto cleanup;
	}
	if (strcmp((const char *)top->name, root) != 0) {
		dk_diags_add(d, file, dk_xml_line(top), DK_DIAG_ERROR,
		             "the root element is <%s>, but a %s file starts with %s",
		             (const char *)top->name, what, example);
		goto cleanup;
	}
	if (strcmp(node_ns(top), ns) != 0) {
		if (*node_ns(top))
			dk_diags_add(d, file, dk_xml_line(top), DK_DIAG_ERROR,
			             "<%s> is in namespace '%s'; a %s file uses %s", root,
			             node_ns(top), what, example);
		else
			dk_diags_add(d, file, dk_xml_line(top), DK_DIAG_ERROR,
			             "<%s> has no namespace; write %s", root, example);
		goto cleanup;
	}
	tag_lines tl;
	scan_tag_lines(&tl, bytes, len);
	if (tl.count == count_elements(top))
		fix_start_lines(&tl, top);
	free(tl.lines);
	if (!schema) {
		*out = doc;
		doc = NULL;
		rc = 0;
		goto cleanup;
	}
	xmlRelaxNGPtr rng = get_schema(schema);
	if (!rng) {
		dk_diags_add(d, file, 0, DK_DIAG_ERROR,
		             "internal error: the schema %s is missing or does not compile; "
		             "rebuild docket",
		             schema);
		goto cleanup;
	}
	errors_free(&errs);
	vc = xmlRelaxNGNewValidCtxt(rng);
	if (!vc) {
		dk_diags_add(d, file, 0, DK_DIAG_ERROR, "out of memory while checking the file");
		goto cleanup;
	}
	xmlRelaxNGSetValidStructuredErrors(vc, on_error, &errs);
	int v = xmlRelaxNGValidateDoc(vc, doc);
	if (v != 0) {
		int before = d ? d->errors : 0;
		explain_tree(file, ns, top, d);
		if (!d || d->errors == before) {
			/* Nothing the table can explain: say what the schema said. */
			for (size_t i = 0; i < errs.count; i++) {
				char *m = dk_strdup(errs.items[i].message);
				lower_first(m);
				dk_diags_add(d, file, errs.items[i].line, DK_DIAG_ERROR,
				             "does not follow the %s schema: %s", what, m);
				free(m);
			}
			if (errs.count == 0)
				dk_diags_add(d, file, 0, DK_DIAG_ERROR,
				             "does not follow the %s schema", what);
		}
		goto cleanup;
	}
	*out = doc;
	doc = NULL;
	rc = 0;
cleanup:
	capture_end();
	if (vc)
		xmlRelaxNGFreeValidCtxt(vc);
	if (doc)
		xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	errors_free(&errs);
	return rc;
}

int dk_xml_read(char **bytes, size_t *len, const char *path, const char *what, dk_diags *d)
{
	struct stat sb;
	int rc;

	*bytes = NULL;
	*len = 0;
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    sb.st_size > (off_t)(DK_FLOW_MAX_BYTES)) {
		dk_diags_add(d, path, 0, DK_DIAG_ERROR,
		             "the file is larger than the limit of %d bytes (%d MB); a %s this "
		             "big is a mistake, split it or remove what is not needed",
		             DK_FLOW_MAX_BYTES, DK_FLOW_MAX_BYTES / (1024 * 1024), what);
		return DK_EINVALID;
	}
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		dk_diags_add(d, path, 0, DK_DIAG_ERROR, "is a directory; name a %s file", what);
		return DK_EINVALID;
	}
	rc = dk_read_file(bytes, len, path, DK_FLOW_MAX_BYTES + 1);
	if (rc == DK_ENOTFOUND) {
		dk_diags_add(d, path, 0, DK_DIAG_ERROR, "no such file; check the path");
		return rc;
	}
	if (rc < 0) {
		const char *m = dk_error_last();
		size_t n = strlen(path);
		/* dk_read_file's message starts with the path, which the diag has */
		if (strncmp(m, path, n) == 0 && m[n] == ':' && m[n + 1] == ' ')
			m += n + 2;
		dk_diags_add(d, path, 0, DK_DIAG_ERROR, "%s", m);
		return DK_EINVALID;
	}
	return 0;
}

/* Skips the prolog (declaration, comments, processing instructions,
 * DOCTYPE) lexically and looks for the org namespace in the root's start
 * tag; only routes a file to a loader, which then checks it properly. */
dk_doc_kind dk_doc_detect(const char *bytes, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (bytes[i] != '<') {
			i++;
			continue;
		}
		if (i + 1 < len && (bytes[i + 1] == '?' || bytes[i + 1] == '!')) {
			const char *end =
			    i + 4 <= len && memcmp(bytes + i, "<!--", 4) == 0 ? "-->" : ">";
			size_t n = strlen(end);
			i += 2;
			while (i + n <= len && memcmp(bytes + i, end, n) != 0)
				i++;
			i += n;
			continue;
		}
		size_t j = i;
		while (j < len && bytes[j] != '>')
			j++;
		if (contains(bytes + i, j - i, DK_ORG_NS))
			return DK_DOC_ORG;
		return DK_DOC_FLOW;
	}
	return DK_DOC_FLOW;
}

/* ---- XPath ------------------------------------------------------------- */

dk_xpath *dk_xpath_compile(const char *file, int line, const char *what, const char *text,
                           dk_diags *d)
{
	lib_errors errs = {0};
	xmlXPathCompExprPtr comp;
	dk_xpath *x;

	/* libxml2 compiles XPath recursively: a long or deeply bracketed
	 * expression overflows the stack. Real guards are a line or two. */
	size_t tlen = strlen(text);
	int depth = 0, maxdepth = 0;
	for (const char *p = text; *p; p++) {
		if (*p == '\'' || *p == '"') {
			const char *q = strchr(p + 1, *p);
			if (!q)
				break;
			p = q;
		} else if (*p == '(' || *p == '[') {
			if (++depth > maxdepth)
				maxdepth = depth;
		} else if (*p == ')' || *p == ']') {
			depth--;
		}
	}
	if (tlen > DK_XPATH_MAX_LEN) {
		dk_diags_add(d, file, line, DK_DIAG_ERROR,
		             "%s is %zu characters long, more than the limit of %d; split the "
		             "computation over several <set>s",
		             what, tlen, DK_XPATH_MAX_LEN);
		return NULL;
	}
	if (maxdepth > DK_XPATH_MAX_DEPTH) {
		dk_diags_add(d, file, line, DK_DIAG_ERROR,
		             "%s nests brackets %d deep, more than the limit of %d; simplify it",
		             what, maxdepth, DK_XPATH_MAX_DEPTH);
		return NULL;
	}
	capture_begin(&errs);
	comp = xmlXPathCompile((const xmlChar *)text);
	capture_end();
	if (!comp) {
		if (errs.count > 0) {
			char *m = dk_strdup(errs.items[0].message);
			lower_first(m);
			dk_diags_add(d, file, line, DK_DIAG_ERROR,
			             "%s is not valid XPath (%s at character %d of '%s'); check "
			             "brackets, quotes and operators",
			             what, m, errs.items[0].int1 + 1, text);
			free(m);
		} else {
			dk_diags_add(d, file, line, DK_DIAG_ERROR,
			             "%s is not valid XPath ('%s'); check brackets, quotes and "
			             "operators",
			             what, text);
		}
		errors_free(&errs);
		return NULL;
	}
	errors_free(&errs);
	x = dk_calloc(1, sizeof(*x));
	x->text = dk_strdup(text);
	x->comp = comp;
	x->line = line;
	x->simple = dk_xsimple_parse(text);
	return x;
}

/* ---- the simple form --------------------------------------------------- */

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static int name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* One operand at p; returns what follows it, or NULL when p holds none
 * that the simple form takes (a prefixed or non-ASCII name, a fraction, a
 * number of more than 9 digits, a name or number running into a letter). */
static const char *operand(dk_xoperand *o, const char *p)
{
	static const struct {
		const char *call; /* up to the variable */
		dk_xfn fn;
	} fns[] = {{"dk:head-of($", DK_XFN_HEAD_OF},
	           {"dk:dept-of($", DK_XFN_DEPT_OF},
	           {"dk:division-leader-of($", DK_XFN_DIVISION_LEADER_OF},
	           {"dk:name-of($", DK_XFN_NAME_OF}};
	const char *s;
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		size_t n = strlen(fns[i].call);
		if (strncmp(p, fns[i].call, n) != 0)
			continue;
		/* dk:fn($name) exactly, no spaces inside */
		if (!(p = operand(o, p + n - 1)) || !o->var || *p != ')')
			return NULL;
		o->fn = fns[i].fn;
		return p + 1;
	}
	if (*p == '$') {
		s = ++p;
		if (!name_start(*p))
			return NULL;
		while (name_char(*p))
			p++;
		if (*p == ':' || (unsigned char)*p >= 0x80)
			return NULL;
		o->var = dk_strndup(s, (size_t)(p - s));
		return p;
	}
	if (*p < '0' || *p > '9')
		return NULL;
	o->number = 0;
	for (s = p; *p >= '0' && *p <= '9'; p++)
		o->number = o->number * 10 + (*p - '0');
	if (p - s > 9 || *p == '.' || name_char(*p) || (unsigned char)*p >= 0x80)
		return NULL;
	return p;
}

dk_xsimple *dk_xsimple_parse(const char *text)
{
	static const struct {
		const char *tok;
		dk_xop op;
	} ops[] = {{"<=", DK_XOP_LE}, {">=", DK_XOP_GE}, {"!=", DK_XOP_NE},
	           {"<", DK_XOP_LT},  {">", DK_XOP_GT},  {"=", DK_XOP_EQ},
	           {"+", DK_XOP_ADD}, {"-", DK_XOP_SUB}, {"*", DK_XOP_MUL}};
	dk_xsimple *x = dk_calloc(1, sizeof(*x));
	const char *p = text ? skip_space(text) : "";
	size_t i;
	if (!(p = operand(&x->a, p)))
		goto no;
	p = skip_space(p);
	if (*p) {
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (strncmp(p, ops[i].tok, strlen(ops[i].tok)) == 0)
				break;
		if (i == sizeof(ops) / sizeof(ops[0]))
			goto no;
		x->op = ops[i].op;
		p = skip_space(p + strlen(ops[i].tok));
		if (!(p = operand(&x->b, p)))
			goto no;
		p = skip_space(p);
	}
	if (*p)
		goto no;
	return x;
no:
	dk_xsimple_free(x);
	return NULL;
}

void dk_xsimple_free(dk_xsimple *x)
{
	if (!x)
		return;
	free(x->a.var);
	free(x->b.var);
	free(x);
}

xmlXPathCompExprPtr dk_xpath_comp(const dk_xpath *x)
{
	/* The model is shared and otherwise immutable: the one field filled
	 * late is published atomically, and a thread that lost the race
	 * frees its own copy. */
	xmlXPathCompExprPtr *slot = (xmlXPathCompExprPtr *)&x->comp;
	xmlXPathCompExprPtr c = __atomic_load_n(slot, __ATOMIC_ACQUIRE), expected = NULL;

	if (c || !x->text)
		return c;
	lib_errors errs = {0};
	capture_begin(&errs);
	c = xmlXPathCompile((const xmlChar *)x->text);
	capture_end();
	errors_free(&errs);
	if (!c)
		return NULL;
	if (!__atomic_compare_exchange_n(slot, &expected, c, 0, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_ACQUIRE)) {
		xmlXPathFreeCompExpr(c);
		c = expected;
	}
	return c;
}

void dk_xpath_free(dk_xpath *x)
{
	if (!x)
		return;
	free(x->text);
	if (x->comp)
		xmlXPathFreeCompExpr(x->comp);
	dk_xsimple_free(x->simple);
	free(x);
}
