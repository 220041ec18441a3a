/* buf.c - growable byte buffer and aborting allocators. */
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(void)
{
	fputs("docket: out of memory\n", stderr);
	abort();
}

void *dk_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *dk_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *dk_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *dk_strdup(const char *s)
{
	return s ? dk_strndup(s, strlen(s)) : NULL;
}

char *dk_strndup(const char *s, size_t n)
{
	char *p = dk_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void dk_buf_grow(dk_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->ptr = dk_realloc(b->ptr, cap);
	b->cap = cap;
}

void dk_buf_put(dk_buf *b, const void *data, size_t len)
{
	dk_buf_grow(b, len);
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
}

void dk_buf_puts(dk_buf *b, const char *s)
{
	dk_buf_put(b, s, strlen(s));
}

void dk_buf_putc(dk_buf *b, char c)
{
	dk_buf_put(b, &c, 1);
}

void dk_buf_vprintf(dk_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	dk_buf_grow(b, (size_t)n);
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void dk_buf_printf(dk_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dk_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void dk_buf_clear(dk_buf *b)
{
	b->len = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

char *dk_buf_detach(dk_buf *b)
{
	char *p = b->ptr ? b->ptr : dk_strdup("");
	b->ptr = NULL;
	b->len = b->cap = 0;
	return p;
}

void dk_buf_free(dk_buf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}

const char *dk_buf_cstr(const dk_buf *b)
{
	return b->ptr ? b->ptr : "";
}
