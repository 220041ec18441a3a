/*
 * buf.h - a growable, always NUL-terminated byte buffer.
 *
 * A dk_buf starts as DK_BUF_INIT and owns its bytes; dk_buf_free releases
 * them. Appends that cannot allocate abort the process: docket treats
 * out-of-memory as fatal, like git's strbuf.
 */
#ifndef DK_UTIL_BUF_H
#define DK_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
	char *ptr;
	size_t len;
	size_t cap;
} dk_buf;

#define DK_BUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void dk_buf_grow(dk_buf *b, size_t extra);
void dk_buf_put(dk_buf *b, const void *data, size_t len);
void dk_buf_puts(dk_buf *b, const char *s);
void dk_buf_putc(dk_buf *b, char c);
void dk_buf_printf(dk_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dk_buf_vprintf(dk_buf *b, const char *fmt, va_list ap);
void dk_buf_clear(dk_buf *b);
/* Hands the bytes to the caller (free with free()); the buffer is reset. */
char *dk_buf_detach(dk_buf *b);
void dk_buf_free(dk_buf *b);
/* The contents as a C string; "" for an empty buffer. Lent. */
const char *dk_buf_cstr(const dk_buf *b);

/* Allocation helpers that abort on failure. */
void *dk_malloc(size_t n);
void *dk_calloc(size_t n, size_t size);
void *dk_realloc(void *p, size_t n);
char *dk_strdup(const char *s);
char *dk_strndup(const char *s, size_t n);

#endif
