/*
 * graph.c - a flow as a diagram: Graphviz DOT or Mermaid stateDiagram-v2.
 *
 * Both show every state with its title, the start, the final states, each
 * transition labelled with its id (and [role] when narrowed), parallels as
 * boxes holding their regions, and the states named in highlight filled.
 * Ids may hold '-' and '.', and titles any UTF-8: DOT gets every id and
 * label double-quoted with '"' and '\' escaped; Mermaid gets ids rewritten
 * to its identifier alphabet (one-to-one) and titles as quoted labels.
 */
#include "definitions/flow.h"

#include "util/error.h"

#include <string.h>

#define HIGHLIGHT_FILL "#ffe08a"

static int highlighted(const char *const *hl, const char *id)
{
	for (size_t i = 0; hl && hl[i]; i++)
		if (strcmp(hl[i], id) == 0)
			return 1;
	return 0;
}

/* ---- DOT --------------------------------------------------------------- */

static void dot_str(dk_buf *b, const char *s)
{
	dk_buf_putc(b, '"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			dk_buf_putc(b, '\\');
		if (*s == '\n' || *s == '\r') {
			dk_buf_puts(b, "\\n");
			continue;
		}
		dk_buf_putc(b, *s);
	}
	dk_buf_putc(b, '"');
}

static void dot_state(dk_buf *b, const dk_state *st, const char *const *hl, const char *indent)
{
	dk_buf_puts(b, indent);
	dot_str(b, st->id);
	dk_buf_puts(b, " [label=");
	if (st->title) {
		dk_buf label = DK_BUF_INIT;
		dk_buf_printf(&label, "%s\n(%s)", st->title, st->id);
		dot_str(b, dk_buf_cstr(&label));
		dk_buf_free(&label);
	} else {
		dot_str(b, st->id);
	}
	if (st->kind == DK_STATE_PARALLEL)
		dk_buf_puts(b, ", shape=box, style=\"bold");
	else if (st->final)
		dk_buf_puts(b, ", shape=doublecircle, style=\"solid");
	else
		dk_buf_puts(b, ", style=\"rounded");
	if (highlighted(hl, st->id))
		dk_buf_printf(b, ",filled\", fillcolor=\"%s\"", HIGHLIGHT_FILL);
	else
		dk_buf_puts(b, "\"");
	dk_buf_puts(b, "];\n");
}

static void dot_edges(dk_buf *b, const dk_state *st, const char *indent)
{
	for (size_t i = 0; i < st->ntransitions; i++) {
		const dk_transition *t = &st->transitions[i];
		dk_buf label = DK_BUF_INIT;
		dk_buf_puts(&label, t->id);
		if (t->role)
			dk_buf_printf(&label, " [%s]", t->role);
		dk_buf_puts(b, indent);
		dot_str(b, st->id);
		dk_buf_puts(b, " -> ");
		dot_str(b, t->to);
		dk_buf_puts(b, " [label=");
		dot_str(b, dk_buf_cstr(&label));
		if (t->on_done)
			dk_buf_puts(b, ", style=bold");
		dk_buf_puts(b, "];\n");
		dk_buf_free(&label);
	}
}

static void dot_start(dk_buf *b, const char *name, const char *target, const char *indent)
{
	dk_buf_puts(b, indent);
	dot_str(b, name);
	dk_buf_puts(b, " [shape=point, width=0.15, label=\"\"];\n");
	dk_buf_puts(b, indent);
	dot_str(b, name);
	dk_buf_puts(b, " -> ");
	dot_str(b, target);
	dk_buf_puts(b, ";\n");
}

static void dot_graph(dk_buf *out, const dk_flow *f, const char *const *hl)
{
	dk_buf_puts(out, "digraph ");
	dot_str(out, f->id);
	dk_buf_puts(out, " {\n\trankdir=LR;\n\tcompound=true;\n\tlabel=");
	dot_str(out, f->title);
	dk_buf_puts(out, ";\n\tlabelloc=t;\n");
	dk_buf_puts(out, "\tnode [shape=box, fontname=\"sans-serif\"];\n"
	                 "\tedge [fontname=\"sans-serif\", fontsize=10];\n");
	if (f->initial)
		dot_start(out, "__start", f->initial->id, "\t");
	for (size_t i = 0; i < f->nstates; i++) {
		const dk_state *st = &f->states[i];
		if (st->region)
			continue;
		if (st->kind != DK_STATE_PARALLEL) {
			dot_state(out, st, hl, "\t");
			continue;
		}
		dk_buf name = DK_BUF_INIT;
		dk_buf_printf(&name, "cluster_%s", st->id);
		dk_buf_puts(out, "\tsubgraph ");
		dot_str(out, dk_buf_cstr(&name));
		dk_buf_puts(out, " {\n\t\tlabel=");
		dot_str(out, st->title ? st->title : st->id);
		dk_buf_puts(out, ";\n\t\tstyle=dashed;\n");
		dot_state(out, st, hl, "\t\t");
		for (size_t r = 0; r < st->nregions; r++) {
			const dk_region *rg = st->regions[r];
			dk_buf_clear(&name);
			dk_buf_printf(&name, "cluster_%s_%s", st->id, rg->id);
			dk_buf_puts(out, "\t\tsubgraph ");
			dot_str(out, dk_buf_cstr(&name));
			dk_buf_puts(out, " {\n\t\t\tlabel=");
			dot_str(out, rg->id);
			dk_buf_puts(out, ";\n\t\t\tstyle=rounded;\n");
			for (size_t k = 0; k < rg->nstates; k++)
				dot_state(out, rg->states[k], hl, "\t\t\t");
			if (rg->initial) {
				dk_buf_clear(&name);
				dk_buf_printf(&name, "__start_%s", rg->id);
				dk_buf_puts(out, "\t\t\t");
				dot_str(out, dk_buf_cstr(&name));
				dk_buf_puts(out, " [shape=point, width=0.1, label=\"\"];\n");
			}
			dk_buf_puts(out, "\t\t}\n");
		}
		dk_buf_puts(out, "\t}\n");
		/* The parallel's box starts its regions. */
		for (size_t r = 0; r < st->nregions; r++) {
			const dk_region *rg = st->regions[r];
			if (!rg->initial)
				continue;
			dk_buf_clear(&name);
			dk_buf_printf(&name, "__start_%s", rg->id);
			dk_buf_puts(out, "\t");
			dot_str(out, st->id);
			dk_buf_puts(out, " -> ");
			dot_str(out, dk_buf_cstr(&name));
			dk_buf_puts(out, " [style=dotted, arrowhead=none];\n\t");
			dot_str(out, dk_buf_cstr(&name));
			dk_buf_puts(out, " -> ");
			dot_str(out, rg->initial->id);
			dk_buf_puts(out, ";\n");
		}
		dk_buf_free(&name);
	}
	for (size_t i = 0; i < f->nstates; i++)
		dot_edges(out, &f->states[i], "\t");
	dk_buf_puts(out, "}\n");
}

/* ---- Mermaid ----------------------------------------------------------- */

/* Mermaid state ids are [A-Za-z0-9_]. Letters and digits stay; '-' becomes
 * '_' when a letter or digit other than 0, h, x follows (the common case,
 * "in-progress" -> in_progress); otherwise "_h". '_' becomes "__", '.'
 * "_0", any other byte "_xHH". Every escape starts with '_' and is told
 * apart by the next character, so distinct ids stay distinct. */
static int mm_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static void mm_id(dk_buf *b, const char *id)
{
	static const char *const keywords[] = {"end",      "state", "note",  "direction", "class",
	                                       "classDef", "click", "style", "as",        NULL};
	for (size_t i = 0; keywords[i]; i++)
		if (strcmp(keywords[i], id) == 0) {
			dk_buf_puts(b, "_k");
			break;
		}
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		if (mm_alnum(*p))
			dk_buf_putc(b, (char)*p);
		else if (*p == '_')
			dk_buf_puts(b, "__");
		else if (*p == '-' && mm_alnum(p[1]) && p[1] != '0' && p[1] != 'h' && p[1] != 'x')
			dk_buf_putc(b, '_');
		else if (*p == '-')
			dk_buf_puts(b, "_h");
		else if (*p == '.')
			dk_buf_puts(b, "_0");
		else
			dk_buf_printf(b, "_x%02X", *p);
	}
}

/* Text shown by Mermaid: no quotes, no line breaks, no ';' (a statement
 * separator), no '#' (starts an entity code). */
static void mm_text(dk_buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '"')
			dk_buf_puts(b, "#quot;");
		else if (*s == '#')
			dk_buf_puts(b, "#35;");
		else if (*s == ';')
			dk_buf_puts(b, "#59;");
		else if (*s == '\n' || *s == '\r' || *s == '\t')
			dk_buf_putc(b, ' ');
		else
			dk_buf_putc(b, *s);
	}
}

static void mm_decl(dk_buf *b, const dk_state *st, const char *indent)
{
	dk_buf_printf(b, "%sstate \"", indent);
	if (st->title) {
		mm_text(b, st->title);
		dk_buf_puts(b, " (");
		mm_text(b, st->id);
		dk_buf_puts(b, ")");
	} else {
		mm_text(b, st->id);
	}
	dk_buf_puts(b, "\" as ");
	mm_id(b, st->id);
	dk_buf_putc(b, '\n');
}

static void mm_edges(dk_buf *b, const dk_state *st, const char *indent)
{
	for (size_t i = 0; i < st->ntransitions; i++) {
		const dk_transition *t = &st->transitions[i];
		dk_buf_puts(b, indent);
		mm_id(b, st->id);
		dk_buf_puts(b, " --> ");
		mm_id(b, t->to);
		dk_buf_puts(b, " : ");
		mm_text(b, t->id);
		if (t->role) {
			dk_buf_puts(b, " [");
			mm_text(b, t->role);
			dk_buf_puts(b, "]");
		}
		dk_buf_putc(b, '\n');
	}
	if (st->final) {
		dk_buf_puts(b, indent);
		mm_id(b, st->id);
		dk_buf_puts(b, " --> [*]\n");
	}
}

static void mm_graph(dk_buf *out, const dk_flow *f, const char *const *hl)
{
	int any_hl = 0;
	dk_buf_puts(out, "---\ntitle: \"");
	for (const char *p = f->title; p && *p; p++) {
		if (*p == '"' || *p == '\\')
			dk_buf_putc(out, '\\');
		dk_buf_putc(out, (*p == '\n' || *p == '\r') ? ' ' : *p);
	}
	dk_buf_puts(out, "\"\n---\nstateDiagram-v2\n");
	for (size_t i = 0; i < f->nstates; i++) {
		const dk_state *st = &f->states[i];
		if (!st->region)
			mm_decl(out, st, "    ");
	}
	if (f->initial) {
		dk_buf_puts(out, "    [*] --> ");
		mm_id(out, f->initial->id);
		dk_buf_putc(out, '\n');
	}
	for (size_t i = 0; i < f->nstates; i++) {
		const dk_state *st = &f->states[i];
		if (st->region)
			continue;
		if (st->kind == DK_STATE_PARALLEL) {
			dk_buf_puts(out, "    state ");
			mm_id(out, st->id);
			dk_buf_puts(out, " {\n");
			for (size_t r = 0; r < st->nregions; r++) {
				const dk_region *rg = st->regions[r];
				if (r > 0)
					dk_buf_puts(out, "        --\n");
				for (size_t k = 0; k < rg->nstates; k++)
					mm_decl(out, rg->states[k], "        ");
				if (rg->initial) {
					dk_buf_puts(out, "        [*] --> ");
					mm_id(out, rg->initial->id);
					dk_buf_putc(out, '\n');
				}
				for (size_t k = 0; k < rg->nstates; k++)
					mm_edges(out, rg->states[k], "        ");
			}
			dk_buf_puts(out, "    }\n");
		}
		mm_edges(out, st, "    ");
	}
	for (size_t i = 0; i < f->nstates; i++)
		if (highlighted(hl, f->states[i].id)) {
			if (!any_hl)
				dk_buf_printf(out, "    classDef current fill:%s,stroke:#b58900\n",
				              HIGHLIGHT_FILL);
			any_hl = 1;
			dk_buf_puts(out, "    class ");
			mm_id(out, f->states[i].id);
			dk_buf_puts(out, " current\n");
		}
}

int dk_flow_graph(dk_buf *out, const dk_flow *flow, const char *format,
                  const char *const *highlight)
{
	if (!format || strcmp(format, "dot") == 0)
		dot_graph(out, flow, highlight);
	else if (strcmp(format, "mermaid") == 0)
		mm_graph(out, flow, highlight);
	else
		return dk_error_set(DK_EUSAGE, "unknown diagram format '%s'; use dot or mermaid",
		                    format);
	return 0;
}
