/*
 * pool.c - the blocks a snapshot or a result lives in, and a thread's
 * scratch buffer.

A snapshot made by the engine, and every result, lives in blocks it owns:
the struct, every array and every string are carved out of them, so a copy
is one allocation and freeing it is one free per block instead of one per
string (copying and freeing snapshots, and the strings of events, tasks and
timers, were most of what a transition cost). Nothing is freed piecemeal:
what a command replaces stays in the block until its owner is freed. An
array that grows is copied to fresh space.

Each thread keeps the last few blocks it freed, up to SPARE_MAX bytes each,
for the next ones it makes: a command frees its input's copy and its last
result and makes the next ones, and a block of a few kilobytes costs malloc
a search of its bins every time. They are freed at thread exit, like the
XPath context. */
#include "engine/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Under AddressSanitizer blocks are never kept, so that a use after free
 * of anything carved from them is caught. */
#define SPARE_MAX ((size_t)64 * 1024)
#define SPARE_N   4
#ifdef __SANITIZE_ADDRESS__
#define KEEP_SPARES 0
#else
#define KEEP_SPARES 1
#endif

typedef struct {
	dk_pool_block *spare[SPARE_N];
	dk_buf scratch;
	int scratch_out; /* lent to a writer */
} pool_tls;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_ok;
static __thread pool_tls *tls;

static void tls_free(void *p)
{
	pool_tls *t = p;
	for (size_t i = 0; i < SPARE_N; i++)
		free(t->spare[i]);
	dk_buf_free(&t->scratch);
	free(t);
}

static void tls_key_init(void)
{
	tls_ok = pthread_key_create(&tls_key, tls_free) == 0;
}

/* The thread's spares and scratch, or NULL when they cannot be kept. */
static pool_tls *my_tls(void)
{
	if (tls)
		return tls;
	pthread_once(&tls_once, tls_key_init);
	if (!tls_ok)
		return NULL;
	pool_tls *t = dk_calloc(1, sizeof(*t));
	if (pthread_setspecific(tls_key, t) != 0) {
		free(t);
		return NULL;
	}
	tls = t;
	return t;
}

dk_pool_block *dk__pool_block_new(size_t cap, dk_pool_block *next)
{
	pool_tls *t = KEEP_SPARES ? my_tls() : NULL;
	dk_pool_block *b;
	if (t) {
		/* the smallest spare that fits */
		size_t best = SPARE_N;
		for (size_t i = 0; i < SPARE_N; i++)
			if (t->spare[i] && t->spare[i]->cap >= cap &&
			    (best == SPARE_N || t->spare[i]->cap < t->spare[best]->cap))
				best = i;
		if (best < SPARE_N) {
			b = t->spare[best];
			t->spare[best] = NULL;
			b->next = next;
			b->used = 0;
			b->packed = 0;
			return b;
		}
	}
	/* whole powers of two, so that the next, slightly larger copy of the
	 * same instance still fits the block the last one left */
	size_t round = 2048;
	while (round < cap && round < SPARE_MAX)
		round *= 2;
	if (round > cap)
		cap = round;
	b = dk_malloc(sizeof(*b) + cap);
	b->next = next;
	b->used = 0;
	b->packed = 0;
	b->cap = cap;
	return b;
}

/* Keeps b as a spare (in an empty slot, else in place of a smaller one)
 * or frees it. */
static void block_free(dk_pool_block *b)
{
	pool_tls *t = KEEP_SPARES && b->cap <= SPARE_MAX ? my_tls() : NULL;
	if (t) {
		size_t slot = SPARE_N;
		for (size_t i = 0; i < SPARE_N && slot == SPARE_N; i++)
			if (!t->spare[i])
				slot = i;
		for (size_t i = 0; i < SPARE_N && slot == SPARE_N; i++)
			if (t->spare[i]->cap < b->cap)
				slot = i;
		if (slot < SPARE_N) {
			free(t->spare[slot]);
			t->spare[slot] = b;
			return;
		}
	}
	free(b);
}

void dk__pool_free(dk_pool_block *head)
{
	while (head) {
		dk_pool_block *next = head->next;
		block_free(head);
		head = next;
	}
}

void *dk__pool_take_new(dk_pool_block **head, size_t n)
{
	dk_pool_block *b;
	void *p;
	n = DK_POOL_ALIGN(n ? n : 1);
	b = dk__pool_block_new(n > DK_POOL_SLACK ? n + DK_POOL_SLACK : 2 * DK_POOL_SLACK, *head);
	*head = b;
	p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

char *dk__pool_strdup(dk_pool_block **head, const char *s)
{
	size_t n;
	char *p;
	if (!s)
		return NULL;
	n = strlen(s) + 1;
	p = dk__pool_take(head, n);
	memcpy(p, s, n);
	return p;
}

size_t dk__pool_used(const dk_pool_block *head)
{
	size_t n = 0;
	for (const dk_pool_block *b = head; b; b = b->next)
		n += b->used;
	return n;
}

void dk__pool_append(dk_pool_block **head, dk_pool_block *other)
{
	dk_pool_block **at = head;
	while (*at)
		at = &(*at)->next;
	*at = other;
}

void dk__scratch_take(dk_buf *out)
{
	pool_tls *t = my_tls();
	dk_buf empty = DK_BUF_INIT;
	if (t && !t->scratch_out) {
		*out = t->scratch;
		out->len = 0;
		if (out->ptr)
			out->ptr[0] = '\0';
		t->scratch = empty;
		t->scratch_out = 1;
		return;
	}
	*out = empty; /* a writer inside a writer: a buffer of its own */
}

void dk__scratch_give(dk_buf *b)
{
	pool_tls *t = tls;
	dk_buf empty = DK_BUF_INIT;
	if (t && t->scratch_out && b->cap <= SPARE_MAX) {
		t->scratch = *b;
		t->scratch_out = 0;
	} else {
		dk_buf_free(b);
	}
	*b = empty;
}
