/*
 * internal.h - what the files of definitions/ share and nobody else sees:
 * the safe XML reader, small DOM helpers, and the checks run on a model.
 */
#ifndef DK_DEFINITIONS_INTERNAL_H
#define DK_DEFINITIONS_INTERNAL_H

#include "definitions/flow.h"
#include "util/xmlvar.h"

#include <libxml/tree.h>

/* Parses untrusted bytes (no network, no external entities, no DTD, no
 * entity expansion, at most DK_FLOW_MAX_BYTES), checks that the root is
 * <root xmlns=ns>, and validates it against the embedded RelaxNG schema
 * (e.g. "definitions/flow.rng"; NULL skips the validation, for bytes
 * that passed it before). Every problem becomes a diag; returns 0 and
 * *out (the caller frees it with xmlFreeDoc) or DK_EINVALID. what names the
 * kind of file in messages ("flow", "org directory"). */
int dk_xml_load(xmlDocPtr *out, const char *file, const char *bytes, size_t len, const char *root,
                const char *ns, const char *schema, const char *what, dk_diags *d);

/* Reads a file for dk_xml_load: at most DK_FLOW_MAX_BYTES (one more, so
 * the loader can say it is too big, without reading a huge file whole).
 * Returns 0 and *bytes (free()), or DK_ENOTFOUND / DK_EINVALID with a diag. */
int dk_xml_read(char **bytes, size_t *len, const char *path, const char *what, dk_diags *d);

int dk_xml_line(const xmlNode *n);
/* The attribute's value, a copy (free()), or NULL when absent. */
char *dk_xml_attr(const xmlNode *n, const char *name);
/* 1 when n is an element named name in the document's namespace. */
int dk_xml_is(const xmlNode *n, const char *name);

/* Compiles text into a dk_xpath, or adds a diag (at line, naming what) and
 * returns NULL. Checks nothing else. */
dk_xpath *dk_xpath_compile(const char *file, int line, const char *what, const char *text,
                           dk_diags *d);
void dk_xpath_free(dk_xpath *x);

/* Runs every check of meaning on a freshly built flow (references,
 * reachability, expressions); adds errors and warnings to d. */
void dk_flow_check(dk_flow *flow, dk_diags *d);

/* Checks a time zone name for a flow or org file and adds a diag when it
 * is not an IANA name ("Asia/Shanghai", "UTC"): an error when malformed,
 * a warning when this system's zone database does not have it. */
void dk_check_timezone(const char *file, int line, const char *tz, dk_diags *d);

/* A space-separated list split into a NULL-terminated array of copies;
 * *n gets the count. */
char **dk_split_words(const char *s, size_t *n);
void dk_strv_free(char **v, size_t n);

/* Ends a load: d is what the caller passed (may be NULL), local the
 * loader's own list used when d is NULL, in which case the first error
 * becomes dk_error_last() and local is freed. Returns 0 or DK_EINVALID. */
int dk_diags_finish(dk_diags *d, dk_diags *local, int failed);

#endif
