/* diag.c - diagnostics: what the loader found, with file and line, printed
 * the way compilers do so editors can jump to them. */
#include "definitions/internal.h"

#include "util/buf.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Enough for every real mistake in a flow, few enough to read. */
#define DK_DIAGS_MAX_PER_FILE 100

void dk_diags_add(dk_diags *d, const char *file, int line, dk_diag_severity sev, const char *fmt,
                  ...)
{
	dk_buf b = DK_BUF_INIT;
	va_list ap;

	if (!d)
		return;
	/* A hostile or badly broken file could produce a message per element;
	 * past a limit, one line says there are more. */
	size_t same_file = 0;
	for (size_t i = 0; i < d->count; i++)
		same_file += strcmp(d->items[i].file, file ? file : "") == 0;
	if (same_file > DK_DIAGS_MAX_PER_FILE)
		return;
	if (same_file == DK_DIAGS_MAX_PER_FILE) {
		sev = DK_DIAG_ERROR;
		fmt = "more problems from here on are not shown; fix these first";
	}
	/* The same problem reached twice (e.g. by two passes) is said once. */
	va_start(ap, fmt);
	if (same_file == DK_DIAGS_MAX_PER_FILE)
		dk_buf_puts(&b, fmt);
	else
		dk_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < d->count; i++)
		if (d->items[i].line == line && d->items[i].severity == sev &&
		    strcmp(d->items[i].message, dk_buf_cstr(&b)) == 0 &&
		    strcmp(d->items[i].file, file ? file : "") == 0) {
			dk_buf_free(&b);
			return;
		}
	if (d->count == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 16;
		d->items = dk_realloc(d->items, d->cap * sizeof(*d->items));
	}
	dk_diag *g = &d->items[d->count++];
	g->file = dk_strdup(file ? file : "");
	g->line = line;
	g->severity = sev;
	g->message = dk_buf_detach(&b);
	if (!g->message)
		g->message = dk_strdup("");
	if (sev == DK_DIAG_ERROR)
		d->errors++;
	else
		d->warnings++;
}

/* Stable: insertion sort keeps the order of diags on the same line, which
 * is the order the checks found them in. Lists are short. */
void dk_diags_sort(dk_diags *d)
{
	for (size_t i = 1; i < d->count; i++) {
		dk_diag tmp = d->items[i];
		size_t j = i;
		while (j > 0 && (strcmp(d->items[j - 1].file, tmp.file) > 0 ||
		                 (strcmp(d->items[j - 1].file, tmp.file) == 0 &&
		                  d->items[j - 1].line > tmp.line))) {
			d->items[j] = d->items[j - 1];
			j--;
		}
		d->items[j] = tmp;
	}
}

void dk_diags_print(dk_diags *d, FILE *to)
{
	dk_diags_sort(d);
	for (size_t i = 0; i < d->count; i++) {
		const dk_diag *g = &d->items[i];
		const char *sev = g->severity == DK_DIAG_ERROR ? "error" : "warning";
		if (g->line > 0)
			fprintf(to, "%s:%d: %s: %s\n", g->file, g->line, sev, g->message);
		else
			fprintf(to, "%s: %s: %s\n", g->file, sev, g->message);
	}
}

void dk_diags_free(dk_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->count; i++) {
		free(d->items[i].file);
		free(d->items[i].message);
	}
	free(d->items);
	memset(d, 0, sizeof(*d));
}

int dk_diags_finish(dk_diags *d, dk_diags *local, int failed)
{
	int rc = failed ? DK_EINVALID : 0;
	if (!d || d == local) {
		if (failed) {
			dk_diags_sort(local);
			for (size_t i = 0; i < local->count; i++) {
				const dk_diag *g = &local->items[i];
				if (g->severity != DK_DIAG_ERROR)
					continue;
				if (g->line > 0)
					dk_error_set(DK_EINVALID, "%s:%d: %s", g->file, g->line,
					             g->message);
				else
					dk_error_set(DK_EINVALID, "%s: %s", g->file, g->message);
				break;
			}
		}
		dk_diags_free(local);
	} else if (failed) {
		dk_error_set(DK_EINVALID, "the file has errors; see the messages above");
	}
	return rc;
}
