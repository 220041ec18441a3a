/*
 * archive_pack.c - many small objects written into the archive as one pack
 * instead of one loose file each.
 *
 * A loose object costs a temporary file, a rename and often a fan-out
 * directory: file system work (inodes, directory entries, the journal)
 * that dominated the notes' catch-up, about 1 ms a note, and every loose
 * file stayed until gc packed it. A pack holds any number of objects in
 * two files, written sequentially. Uploads use it too: an upload's blob
 * (under 1 MB), trees and commit are one pack. The pack is written by
 * dk_archive__pack_begin/_put/_finish, which gc's merges (archive_merge.c)
 * use too, copying the entries of the packs they merge as they are.
 *
 * The objects are first made in memory: the archive's "pack view" is a
 * second git_repository over an odb with one backend of ours (held_backend
 * below: every write is held in memory, reads fall through to the
 * archive's odb, so the view's commits can name trees and parents that
 * are on disk). A writer builds commits and trees through the view with
 * libgit2's usual calls, and dk_archive__pack_write (or, for uploads, the
 * group's round, write_round) writes what it holds with this file's pack
 * writer (dk_archive__pack_begin, _put, _finish: gitformat-pack(5)
 * version 2, the index made from what each entry recorded): the pack and
 * its index under temporary names, renamed into place, the pack first.
 * Like a loose object, the new pack is durable only after the next barrier
 * (dk_archive__barrier; with DOCKET_ARCHIVE_SYNC=file the writer fsyncs
 * both files and the directory itself), so a writer still moves no ref
 * before it; or, for
 * uploads, once the same bytes are flushed in the ref journal, which puts
 * the files back after a power loss (write_round, archive_refs.c).
 *
 * Crash safety: objects in memory are lost with the process, and are not
 * yet named by any ref; a pack written but not flushed may be lost or
 * truncated, and no ref names its objects before the barrier (or before
 * the journal's record that holds the pack is flushed). What a crash
 * leaves in objects/pack (a temporary pack, an index whose pack never got
 * its name) is cleaned by gc once it is old (archive_gc.c). A small pack
 * and its index are written into files of packs gc merged away when some
 * are free (archive_spare.c, which says why that is as safe); what a crash
 * leaves of those is in docket-spare/, swept by gc.
 *
 * gc merges the packs this makes (the geometric rule of archive_gc.c), and
 * dk_archive_gc_past runs it once there are more than DK_ARCHIVE_AUTO_PACKS.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <git2/sys/odb_backend.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* One object held for the next pack. */
typedef struct {
	git_oid id;
	git_object_t type;
	size_t len;
	unsigned char *data;
} held;

/* Objects in memory, found by an open-addressing table of indexes into v
 * (slot value i + 1; 0 is empty). */
typedef struct {
	held *v;
	size_t n, cap;
	size_t *slot;
	size_t nslots; /* a power of two, at least twice n */
	size_t bytes;  /* of data, all objects together */
} held_table;

/* The view's one odb backend: writes are held in memory (now) until they
 * are written as a pack; reads look there, then among the commits and
 * trees of the last packs this handle wrote (recent), then fall through to
 * the archive's odb.
 *
 * Why recent: an upload starts from its instance's tip, the commit and
 * trees the previous upload wrote, usually through this same handle (a
 * serve thread, or a client uploading a batch). Read back from disk they
 * cost a miss in every pack libgit2 knew, a rescan of objects/pack to find
 * the new one, opening and mapping it and inflating the trees: about a
 * tenth of a small upload. Objects are named by their content, so a copy
 * kept in memory is the object whoever moved the ref since. Only objects
 * whose pack was written are kept (dk_archive__pack_keep), never blobs
 * (an upload does not read its parent's files), and only up to
 * RECENT_MAX bytes: past that the table starts again empty. Whether to
 * write an object again is answered by written (the ids of every object
 * this handle's packs hold, up to WRITTEN_MAX) and the disk, see
 * held_freshen. */
typedef struct {
	git_odb_backend parent;
	git_odb *archive; /* a reference on the archive's odb */
	held_table now;
	held_table recent;
	held_table written; /* ids only (no data): see held_freshen */
	int own;            /* writing docket's own trees and commits: see held_freshen */
} held_backend;

#define RECENT_MAX  ((size_t)4 * 1024 * 1024)
#define WRITTEN_MAX ((size_t)64 * 1024) /* ids */

struct dk_archive_pack_view {
	git_repository *repo; /* over odb: no refs, no working directory */
	git_odb *odb;
	held_backend *be; /* owned by odb */
	/* The deflate streams of the packs this handle writes, started on
	 * first use and reset per object. Started per pack they cost more
	 * than an upload's deflating: each deflateInit allocates about
	 * 300 KiB (window, hash chains), which malloc maps and deflateEnd
	 * unmaps, so every pack paid for two mmaps, two munmaps and some
	 * hundred page faults. */
	z_stream z, stored;
	int zready;
};

static size_t slot_of(const held_table *t, const git_oid *id)
{
	size_t h;
	memcpy(&h, id->id, sizeof(h)); /* object ids are uniform already */
	return h & (t->nslots - 1);
}

static const held *find(const held_table *t, const git_oid *id)
{
	if (t->nslots == 0)
		return NULL;
	for (size_t s = slot_of(t, id);; s = (s + 1) & (t->nslots - 1)) {
		size_t i = t->slot[s];
		if (i == 0)
			return NULL;
		if (git_oid_equal(&t->v[i - 1].id, id))
			return &t->v[i - 1];
	}
}

static void index_all(held_table *t)
{
	memset(t->slot, 0, t->nslots * sizeof(*t->slot));
	for (size_t i = 0; i < t->n; i++) {
		size_t s = slot_of(t, &t->v[i].id);
		while (t->slot[s])
			s = (s + 1) & (t->nslots - 1);
		t->slot[s] = i + 1;
	}
}

/* Adds the object to t, unless t has it, with data as its bytes: taken
 * (t frees them) when take, else copied; with data NULL, its id and type
 * only. 1 when added, 0 when t had it. */
static int table_put(held_table *t, const git_oid *id, void *data, size_t len, git_object_t type,
                     int take)
{
	held *o;

	if (find(t, id))
		return 0;
	if (!t->v || t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 256;
		t->v = dk_realloc(t->v, t->cap * sizeof(*t->v));
	}
	o = &t->v[t->n++];
	git_oid_cpy(&o->id, id);
	o->type = type;
	o->len = data ? len : 0;
	o->data = NULL;
	if (data && take) {
		o->data = data;
		t->bytes += len;
	} else if (data) {
		o->data = dk_malloc(len ? len : 1);
		memcpy(o->data, data, len);
		t->bytes += len;
	}
	if (2 * t->n > t->nslots) {
		t->nslots = t->nslots ? 2 * t->nslots : 1024;
		t->slot = dk_realloc(t->slot, t->nslots * sizeof(*t->slot));
		index_all(t);
	} else {
		size_t s = slot_of(t, id);
		while (t->slot[s])
			s = (s + 1) & (t->nslots - 1);
		t->slot[s] = t->n;
	}
	return 1;
}

/* Adds a copy of the object to t, unless t has it; with data NULL, its id
 * and type only. */
static void table_add(held_table *t, const git_oid *id, const void *data, size_t len,
                      git_object_t type)
{
	table_put(t, id, (void *)(uintptr_t)data, len, type, 0);
}

static void table_reset(held_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].data);
	t->n = 0;
	t->bytes = 0;
	if (t->nslots)
		memset(t->slot, 0, t->nslots * sizeof(*t->slot));
}

static void table_free(held_table *t)
{
	table_reset(t);
	free(t->v);
	free(t->slot);
}

/* A held object, or a recent one. */
static const held *find_any(const held_backend *b, const git_oid *id)
{
	const held *o = find(&b->now, id);
	return o ? o : find(&b->recent, id);
}

int dk_archive__pack_peek(const dk_archive *a, const git_oid *id, const void **data, size_t *len,
                          git_object_t *type)
{
	const held *o = a->pack ? find_any(a->pack->be, id) : NULL;

	if (!o)
		return 0;
	*data = o->data;
	*len = o->len;
	*type = o->type;
	return 1;
}

static int held_write(git_odb_backend *backend, const git_oid *id, const void *data, size_t len,
                      git_object_t type)
{
	table_add(&((held_backend *)backend)->now, id, data, len, type);
	return 0;
}

static int held_read(void **out, size_t *len, git_object_t *type, git_odb_backend *backend,
                     const git_oid *id)
{
	held_backend *b = (held_backend *)backend;
	const held *o = find_any(b, id);
	git_odb_object *obj = NULL;
	const void *data;

	if (!o) {
		if (git_odb_read(&obj, b->archive, id) < 0)
			return GIT_ENOTFOUND;
		*len = git_odb_object_size(obj);
		*type = git_odb_object_type(obj);
		data = git_odb_object_data(obj);
	} else {
		*len = o->len;
		*type = o->type;
		data = o->data;
	}
	*out = git_odb_backend_data_alloc(backend, *len ? *len : 1);
	if (*out)
		memcpy(*out, data, *len);
	git_odb_object_free(obj);
	return *out ? 0 : -1;
}

static int held_read_header(size_t *len, git_object_t *type, git_odb_backend *backend,
                            const git_oid *id)
{
	held_backend *b = (held_backend *)backend;
	const held *o = find_any(b, id);

	if (o) {
		*len = o->len;
		*type = o->type;
		return 0;
	}
	return git_odb_read_header(len, type, b->archive, id) < 0 ? GIT_ENOTFOUND : 0;
}

static int held_exists(git_odb_backend *backend, const git_oid *id)
{
	held_backend *b = (held_backend *)backend;
	return find_any(b, id) || git_odb_exists(b->archive, id);
}

/* Asked before every write whether the object is there already: held,
 * written by this handle into a pack before (written: the packs this
 * handle writes are not in its odb's list of packs until a miss rescans
 * objects/pack), or in the archive as far as the handle has seen it (no
 * rescan on a miss, which is every new object; one the handle has not seen
 * yet is written again, a harmless duplicate). An object the
 * archive has is not written again: a file uploaded twice (under another
 * name, to another instance) is one blob, as git stores it. It used to be
 * written into each upload's pack, so the small packs were mostly copies
 * of blobs already on disk; gc's merges dropped the copies, each merged
 * pack came out far smaller than the packs it replaced, the geometric
 * progression of archive_gc.c never held, and the biggest pack (the whole
 * archive) was rewritten every few hundred uploads: an upload at 10,000
 * archived files cost 1.4 times one at the first thousand.
 *
 * Not writing it is as durable as writing it: the object was on the file
 * system before this write began, so the flush that makes this write's
 * pack durable (a syncfs of the whole file system after it, or in the
 * per-file mode the fsync its writer made before its rename, and the
 * fsync of objects/pack after ours) covers it too; gc removes a loose
 * object or a merged pack only once another durable copy is in place.
 *
 * Only files are worth that question. The trees and the commit an upload
 * makes (dk_archive__pack_own on) are new but for the rare tree that is
 * the same as one on disk (the same files under the same names), and the
 * disk's answer cost a stat of a loose path and a search of every pack's
 * index for each: some 10 us an object, four of them an upload. So for
 * them only memory is asked; a copy already on disk is written again into
 * the upload's pack, and gc's next merge keeps one of the two. */
static int held_freshen(git_odb_backend *backend, const git_oid *id)
{
	held_backend *b = (held_backend *)backend;

	if (find(&b->now, id) || find(&b->written, id) ||
	    (!b->own && git_odb_exists_ext(b->archive, id, GIT_ODB_LOOKUP_NO_REFRESH) == 1))
		return 0;
	return GIT_ENOTFOUND;
}

void dk_archive__pack_own(dk_archive *a, int on)
{
	if (a->pack)
		a->pack->be->own = on;
}

static void held_free(git_odb_backend *backend)
{
	held_backend *b = (held_backend *)backend;
	table_free(&b->now);
	table_free(&b->recent);
	table_free(&b->written);
	git_odb_free(b->archive);
	free(b);
}

/* a's pack view, made on first use; NULL when it cannot be made (the
 * message in dk_error_last()). */
static struct dk_archive_pack_view *view(dk_archive *a)
{
	struct dk_archive_pack_view *v;
	held_backend *b;

	if (a->pack)
		return a->pack;
	v = dk_calloc(1, sizeof(*v));
	b = dk_calloc(1, sizeof(*b));
	if (git_odb_init_backend(&b->parent, GIT_ODB_BACKEND_VERSION) < 0 ||
	    git_repository_odb(&b->archive, a->repo) < 0) {
		free(b);
		b = NULL;
		goto fail;
	}
	b->parent.read = held_read;
	b->parent.read_header = held_read_header;
	b->parent.write = held_write;
	b->parent.exists = held_exists;
	b->parent.freshen = held_freshen;
	b->parent.free = held_free;
	if (git_odb_new(&v->odb) < 0 || git_odb_add_backend(v->odb, &b->parent, 1) < 0)
		goto fail;
	v->be = b;
	b = NULL; /* the odb's now */
	if (git_repository_wrap_odb(&v->repo, v->odb) < 0)
		goto fail;
	a->pack = v;
	return v;
fail:
	dk_archive__git_error(DK_EINTERNAL, "cannot start a pack");
	if (b)
		held_free(&b->parent);
	git_repository_free(v->repo);
	git_odb_free(v->odb);
	free(v);
	return NULL;
}

int dk_archive__pack_repo(git_repository **out, dk_archive *a)
{
	struct dk_archive_pack_view *v = view(a);

	*out = v ? v->repo : NULL;
	return v ? 0 : DK_EINTERNAL;
}

size_t dk_archive__pack_count(const dk_archive *a)
{
	return a->pack ? a->pack->be->now.n : 0;
}

void dk_archive__pack_discard(dk_archive *a)
{
	if (a->pack)
		table_reset(&a->pack->be->now);
}

void dk_archive__pack_keep(dk_archive *a)
{
	held_backend *b = a->pack ? a->pack->be : NULL;

	if (!b)
		return;
	for (size_t i = 0; i < b->now.n; i++) {
		const held *o = &b->now.v[i];
		if (b->written.n >= WRITTEN_MAX)
			table_reset(&b->written);
		table_add(&b->written, &o->id, NULL, 0, o->type);
		if (o->type == GIT_OBJECT_BLOB)
			continue;
		if (b->recent.bytes + o->len > RECENT_MAX)
			table_reset(&b->recent);
		/* its bytes move from now to recent rather than being copied */
		if (o->len <= RECENT_MAX &&
		    table_put(&b->recent, &o->id, o->data, o->len, o->type, 1))
			b->now.v[i].data = NULL;
	}
	table_reset(&b->now);
}

/* ---- the pack and its index (gitformat-pack(5), version 2) ---- */

static void put_be32(dk_buf *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 8), (unsigned char)v};
	dk_buf_put(b, x, 4);
}

/* An entry's header: its type and inflated size, 4 bits then 7 a byte. */
static void put_entry_header(dk_buf *b, git_object_t type, size_t len)
{
	unsigned char h[16];
	size_t n = 0;
	unsigned char c = (unsigned char)(((unsigned)type << 4) | (len & 0x0f));

	for (len >>= 4; len; len >>= 7) {
		h[n++] = c | 0x80;
		c = (unsigned char)(len & 0x7f);
	}
	h[n++] = c;
	dk_buf_put(b, h, n);
}

/* Appends data deflated as one zlib stream; z is reset first. */
static int put_deflated(dk_buf *b, z_stream *z, const unsigned char *data, size_t len)
{
	uLong bound = deflateBound(z, (uLong)len);

	if (deflateReset(z) != Z_OK)
		return dk_error_set(DK_EINTERNAL, "archive: cannot deflate an object of a pack");
	dk_buf_grow(b, bound + 1);
	z->next_in = (Bytef *)(uintptr_t)data;
	z->avail_in = (uInt)len;
	z->next_out = (Bytef *)b->ptr + b->len;
	z->avail_out = (uInt)bound;
	if (deflate(z, Z_FINISH) != Z_STREAM_END)
		return dk_error_set(DK_EINTERNAL, "archive: cannot deflate an object of a pack");
	b->len += bound - z->avail_out;
	b->ptr[b->len] = '\0';
	return 0;
}

int dk_archive__sha1(unsigned char out[20], const void *data, size_t len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha1(), NULL) && EVP_DigestUpdate(md, data, len) &&
	         EVP_DigestFinal_ex(md, out, &n) && n == 20;

	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* Where each object went in the pack, for its index. */
typedef struct {
	git_oid id;
	uint64_t offset;
	uint32_t crc;
} entry;

static int by_id(const void *x, const void *y)
{
	return memcmp(((const entry *)x)->id.id, ((const entry *)y)->id.id, GIT_OID_RAWSZ);
}

/* The index of the pack whose entries are e[0..n) and whose checksum is
 * sum into idx; sorts e by id. */
static int put_index(dk_buf *idx, entry *e, size_t n, const unsigned char sum[20])
{
	uint32_t fanout[256] = {0}, large = 0;
	unsigned char isum[20];

	qsort(e, n, sizeof(*e), by_id);
	dk_buf_put(idx, "\377tOc", 4);
	put_be32(idx, 2);
	for (size_t i = 0; i < n; i++)
		fanout[e[i].id.id[0]]++;
	for (uint32_t k = 0, total = 0; k < 256; k++) {
		total += fanout[k];
		put_be32(idx, total);
	}
	for (size_t i = 0; i < n; i++)
		dk_buf_put(idx, e[i].id.id, GIT_OID_RAWSZ);
	for (size_t i = 0; i < n; i++)
		put_be32(idx, e[i].crc);
	for (size_t i = 0; i < n; i++)
		put_be32(idx,
		         e[i].offset < 0x80000000u ? (uint32_t)e[i].offset : 0x80000000u | large++);
	for (size_t i = 0; i < n; i++)
		if (e[i].offset >= 0x80000000u) {
			put_be32(idx, (uint32_t)(e[i].offset >> 32));
			put_be32(idx, (uint32_t)e[i].offset);
		}
	dk_buf_put(idx, sum, 20);
	if (dk_archive__sha1(isum, idx->ptr, idx->len) < 0)
		return dk_error_set(DK_EINTERNAL, "archive: cannot hash a pack (SHA-1)");
	dk_buf_put(idx, isum, 20);
	return 0;
}

/* fsync(2) of a directory, for the per-file mode: the new names in it. */
static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = 0;

	if (fd < 0 || fsync(fd) < 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	if (e)
		return dk_error_set(DK_EINTERNAL, "archive: cannot flush %s: %s", path,
		                    strerror(e));
	return 0;
}

/* Bytes of a pack held in memory before they are written: an upload's
 * pack is one write at the end, a merge of any size streams through this
 * much memory. */
#define OUT_BUF ((size_t)1024 * 1024)

/* A pack being written (dk_archive__pack_begin): its entries are held in
 * memory, and go to a temporary file in objects/pack as they come once
 * they pass OUT_BUF, hashed as they are written; the index is made at the
 * end from what each entry recorded. A pack that never passed OUT_BUF (an
 * upload's, most merges') is written at the end, size known, into a file
 * of a merged pack when one is free (archive_spare.c), as its index is. */
struct dk_archive_pack_out {
	dk_archive *a;
	dk_buf dir;     /* objects/pack */
	dk_buf tmp;     /* the pack's file's path; empty before it is made, once renamed or gone */
	int fd;         /* open on tmp, or -1 (not made yet, or written and closed) */
	dk_buf buf;     /* the pack's bytes not written yet */
	uint64_t off;   /* the pack's length so far, written or held */
	EVP_MD_CTX *md; /* SHA-1 of the bytes written so far */
	entry *e;
	size_t n, cap;
	uint32_t count; /* the entries the pack's header announced */
	int flush;      /* the per-file mode: fsync the files and the directory */
};

/* Makes the temporary file of a pack too big to hold in memory. */
static int out_open(dk_archive_pack_out *w)
{
	if (w->fd >= 0)
		return 0;
	dk_buf_clear(&w->tmp);
	dk_buf_printf(&w->tmp, "%s/tmp_pack_dk_XXXXXX", w->dir.ptr);
	w->fd = mkostemp(w->tmp.ptr, O_CLOEXEC);
	if (w->fd < 0) {
		int error = dk_error_set(DK_EINTERNAL, "archive: cannot create %s: %s", w->tmp.ptr,
		                         strerror(errno));
		dk_buf_clear(&w->tmp);
		return error;
	}
	/* Packs are read-only, as git makes them. */
	(void)fchmod(w->fd, 0444);
	return 0;
}

/* Hashes and writes the bytes held. */
static int out_spill(dk_archive_pack_out *w)
{
	int error;

	if (!w->buf.len)
		return 0;
	if ((error = out_open(w)) < 0)
		return error;
	if (!EVP_DigestUpdate(w->md, w->buf.ptr, w->buf.len))
		return dk_error_set(DK_EINTERNAL, "archive: cannot hash a pack (SHA-1)");
	if (dk_write_all(w->fd, w->buf.ptr, w->buf.len) < 0)
		return dk_error_set(DK_EINTERNAL, "archive: cannot write %s: %s", w->tmp.ptr,
		                    strerror(errno));
	dk_buf_clear(&w->buf);
	return 0;
}

/* Appends len bytes to the pack: held, or written at once when big. */
static int out_put(dk_archive_pack_out *w, const void *p, size_t len)
{
	int error;

	if (w->buf.len + len > OUT_BUF && (error = out_spill(w)) < 0)
		return error;
	w->off += len;
	if (len < OUT_BUF) {
		dk_buf_put(&w->buf, p, len);
		return 0;
	}
	if ((error = out_open(w)) < 0)
		return error;
	if (!EVP_DigestUpdate(w->md, p, len))
		return dk_error_set(DK_EINTERNAL, "archive: cannot hash a pack (SHA-1)");
	if (dk_write_all(w->fd, p, len) < 0)
		return dk_error_set(DK_EINTERNAL, "archive: cannot write %s: %s", w->tmp.ptr,
		                    strerror(errno));
	return 0;
}

/* Records the entry of id starting at the pack's current end. */
static entry *out_entry(dk_archive_pack_out *w, const git_oid *id)
{
	entry *e;

	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->e = dk_realloc(w->e, w->cap * sizeof(*w->e));
	}
	e = &w->e[w->n++];
	git_oid_cpy(&e->id, id);
	e->offset = w->off;
	e->crc = 0;
	return e;
}

void dk_archive__pack_abort(dk_archive_pack_out *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp.len)
		unlink(w->tmp.ptr);
	EVP_MD_CTX_free(w->md);
	dk_buf_free(&w->dir);
	dk_buf_free(&w->tmp);
	dk_buf_free(&w->buf);
	free(w->e);
	free(w);
}

int dk_archive__pack_begin(dk_archive_pack_out **out, dk_archive *a, uint32_t count)
{
	dk_archive_pack_out *w = dk_calloc(1, sizeof(*w));
	int error = 0;

	*out = NULL;
	w->a = a;
	w->fd = -1;
	w->count = count;
	w->flush = a->per_file && !a->no_flush;
	dk_buf_printf(&w->dir, "%s/objects/pack", a->path);
	if (mkdir(w->dir.ptr, 0777) < 0 && errno != EEXIST) {
		error = dk_error_set(DK_EINTERNAL, "archive: cannot create %s: %s", w->dir.ptr,
		                     strerror(errno));
		goto fail;
	}
	w->md = EVP_MD_CTX_new();
	if (!w->md || !EVP_DigestInit_ex(w->md, EVP_sha1(), NULL)) {
		error = dk_error_set(DK_EINTERNAL, "archive: cannot hash a pack (SHA-1)");
		goto fail;
	}
	/* no file yet: out_open makes one for a big pack, finish one for
	 * a pack held whole */
	dk_buf_put(&w->buf, "PACK", 4);
	put_be32(&w->buf, 2);
	put_be32(&w->buf, count);
	w->off = w->buf.len;
	*out = w;
	return 0;
fail:
	dk_archive__pack_abort(w);
	return error;
}

uint64_t dk_archive__pack_offset(const dk_archive_pack_out *w)
{
	return w->off;
}

int dk_archive__pack_put(dk_archive_pack_out *w, const git_oid *id, git_object_t type,
                         const void *data, size_t len)
{
	struct dk_archive_pack_view *v = view(w->a);
	size_t at = w->buf.len;
	entry *e;
	int error;

	if (!v)
		return DK_EINTERNAL;
	/* Blobs that do not compress (most PDFs, scans, office files) go in
	 * stored blocks: the same bytes on disk, none of deflate's time (on
	 * 4 KiB uploads deflate was half the CPU of an upload). So do trees:
	 * each entry's 20-byte id does not compress, and the names little (a
	 * tree of 200 uploads, 7.9 KB, deflates to 4.9 KB in 61 us at level 1,
	 * stored in 4 us): an upload writes a new tree for each level of its
	 * path, so an instance's kind tree is deflated again at every upload
	 * while it grows, for a saving of a few KB, the size of one scan.
	 * git gc, should anyone run it, compresses them again. */
	if (!v->zready) {
		memset(&v->z, 0, sizeof(v->z));
		memset(&v->stored, 0, sizeof(v->stored));
		if (deflateInit(&v->z, Z_BEST_SPEED) != Z_OK)
			return dk_error_set(DK_EINTERNAL, "archive: cannot start zlib for a pack");
		if (deflateInit(&v->stored, Z_NO_COMPRESSION) != Z_OK) {
			deflateEnd(&v->z);
			return dk_error_set(DK_EINTERNAL, "archive: cannot start zlib for a pack");
		}
		v->zready = 1;
	}
	e = out_entry(w, id);
	put_entry_header(&w->buf, type, len);
	if ((error =
	         put_deflated(&w->buf,
	                      type == GIT_OBJECT_TREE || (type == GIT_OBJECT_BLOB &&
	                                                  dk_archive__incompressible_buf(data, len))
	                          ? &v->stored
	                          : &v->z,
	                      data, len)) < 0)
		return error;
	e->crc = (uint32_t)crc32(0L, (const Bytef *)w->buf.ptr + at, (uInt)(w->buf.len - at));
	w->off += w->buf.len - at;
	return w->buf.len >= OUT_BUF ? out_spill(w) : 0;
}

int dk_archive__pack_put_raw(dk_archive_pack_out *w, const git_oid *id, const void *head,
                             size_t head_len, const void *body, size_t body_len,
                             const uint32_t *crc)
{
	entry *e = out_entry(w, id);
	int error;

	if (crc) {
		e->crc = *crc;
	} else {
		uLong c = crc32(0L, (const Bytef *)head, (uInt)head_len);
		/* crc32's length is a uInt: big entries in steps */
		for (size_t at = 0; at < body_len; at += 1u << 30) {
			size_t step = body_len - at < (1u << 30) ? body_len - at : (1u << 30);
			c = crc32(c, (const Bytef *)body + at, (uInt)step);
		}
		e->crc = (uint32_t)c;
	}
	if ((head_len && (error = out_put(w, head, head_len)) < 0) ||
	    (error = out_put(w, body, body_len)) < 0)
		return error;
	return 0;
}

/* Renames the temporary pack and index (tmp_pack and tmp_idx, each
 * cleared once renamed) into dir as pack-HEX.pack and .idx, the pack
 * first: readers find packs by their index, so an index never names a
 * pack that is not there. Then flushes dir's entries when flush. */
static int rename_in(const char *dir, const char *hex, dk_buf *tmp_pack, dk_buf *tmp_idx, int flush)
{
	dk_buf path = DK_BUF_INIT;
	int error = 0;

	dk_buf_printf(&path, "%s/pack-%s.pack", dir, hex);
	if (rename(tmp_pack->ptr, path.ptr) < 0) {
		error = dk_error_set(DK_EINTERNAL, "archive: cannot rename a pack into %s: %s",
		                     path.ptr, strerror(errno));
		goto done;
	}
	dk_buf_clear(tmp_pack);
	dk_buf_clear(&path);
	dk_buf_printf(&path, "%s/pack-%s.idx", dir, hex);
	if (rename(tmp_idx->ptr, path.ptr) < 0) {
		error =
		    dk_error_set(DK_EINTERNAL, "archive: cannot rename a pack index into %s: %s",
		                 path.ptr, strerror(errno));
		goto done;
	}
	dk_buf_clear(tmp_idx);
	if (flush)
		error = fsync_dir(dir);
done:
	dk_buf_free(&path);
	return error;
}

int dk_archive__pack_finish(dk_archive_pack_out *w, char name_out[64])
{
	dk_buf idx = DK_BUF_INIT, tmp_idx = DK_BUF_INIT;
	unsigned char sum[20];
	unsigned int len = 0;
	char hex[41];
	int error = 0;

	if (name_out)
		name_out[0] = '\0';
	if (w->n != w->count) {
		error = dk_error_set(
		    DK_EINTERNAL, "archive: a pack announced %u objects and got %zu; not written",
		    (unsigned)w->count, w->n);
		goto cleanup;
	}
	if (w->fd < 0) {
		/* held whole: its size is known, a spare may take it */
		if (!EVP_DigestUpdate(w->md, w->buf.ptr, w->buf.len) ||
		    !EVP_DigestFinal_ex(w->md, sum, &len) || len != 20) {
			error = dk_error_set(DK_EINTERNAL, "archive: cannot hash a pack (SHA-1)");
			goto cleanup;
		}
		dk_buf_put(&w->buf, sum, 20);
		if ((error = dk_archive__spare_write(w->a, &w->tmp, w->dir.ptr, w->buf.ptr,
		                                     w->buf.len, w->flush)) < 0)
			goto cleanup;
	} else {
		if ((error = out_spill(w)) < 0)
			goto cleanup;
		if (!EVP_DigestFinal_ex(w->md, sum, &len) || len != 20) {
			error = dk_error_set(DK_EINTERNAL, "archive: cannot hash a pack (SHA-1)");
			goto cleanup;
		}
		if (dk_write_all(w->fd, sum, 20) < 0 || (w->flush && fsync(w->fd) < 0)) {
			error = dk_error_set(DK_EINTERNAL, "archive: cannot write %s: %s",
			                     w->tmp.ptr, strerror(errno));
			goto cleanup;
		}
		if (close(w->fd) < 0) {
			w->fd = -1;
			error = dk_error_set(DK_EINTERNAL, "archive: cannot write %s: %s",
			                     w->tmp.ptr, strerror(errno));
			goto cleanup;
		}
		w->fd = -1;
	}
	if ((error = put_index(&idx, w->e, w->n, sum)) < 0 ||
	    (error = dk_archive__spare_write(w->a, &tmp_idx, w->dir.ptr, idx.ptr, idx.len,
	                                     w->flush)) < 0)
		goto cleanup;
	dk_archive__hex(hex, sum, 20);
	if ((error = rename_in(w->dir.ptr, hex, &w->tmp, &tmp_idx, w->flush)) < 0)
		goto cleanup;
	if (name_out)
		snprintf(name_out, 64, "pack-%s", hex);
cleanup:
	if (tmp_idx.len)
		unlink(tmp_idx.ptr);
	dk_buf_free(&idx);
	dk_buf_free(&tmp_idx);
	dk_archive__pack_abort(w);
	return error;
}

/* Writes objects[0..n) (n > 0, ids unique) as one pack and its index. */
static int write_objects(dk_archive *a, const held *objects, size_t n, char name_out[64])
{
	dk_archive_pack_out *w = NULL;
	int error;

	if (name_out)
		name_out[0] = '\0';
	error = dk_archive__pack_begin(&w, a, (uint32_t)n);
	if (!w)
		return error; /* a writer only when it could start */
	for (size_t i = 0; i < n; i++)
		if ((error = dk_archive__pack_put(w, &objects[i].id, objects[i].type,
		                                  objects[i].data, objects[i].len)) < 0) {
			dk_archive__pack_abort(w);
			return error;
		}
	return dk_archive__pack_finish(w, name_out);
}

/* Writes pack and idx (sum: the pack's trailer, its name) into
 * objects/pack: each under a temporary name, then renamed into place, the
 * pack first; flushed there when flush. Recovery writes a pack back from
 * the ref journal with it (archive_refs.c). */
int dk_archive__pack_files(dk_archive *a, const dk_buf *pack, const dk_buf *idx,
                           const unsigned char sum[20], int flush, char name_out[64])
{
	dk_buf dir = DK_BUF_INIT, tmp_pack = DK_BUF_INIT, tmp_idx = DK_BUF_INIT;
	char hex[41];
	int error = 0;

	if (name_out)
		name_out[0] = '\0';
	dk_archive__hex(hex, sum, 20);
	dk_buf_printf(&dir, "%s/objects/pack", a->path);
	if (mkdir(dir.ptr, 0777) < 0 && errno != EEXIST) {
		error = dk_error_set(DK_EINTERNAL, "archive: cannot create %s: %s", dir.ptr,
		                     strerror(errno));
		goto cleanup;
	}
	/* into spares of the pool when some are free, as any pack */
	error = dk_archive__spare_write(a, &tmp_pack, dir.ptr, pack->ptr, pack->len, flush);
	if (error < 0 ||
	    (error = dk_archive__spare_write(a, &tmp_idx, dir.ptr, idx->ptr, idx->len, flush)) < 0)
		goto cleanup;
	if ((error = rename_in(dir.ptr, hex, &tmp_pack, &tmp_idx, flush)) < 0)
		goto cleanup;
	if (name_out)
		snprintf(name_out, 64, "pack-%s", hex);
cleanup:
	if (tmp_pack.len)
		unlink(tmp_pack.ptr);
	if (tmp_idx.len)
		unlink(tmp_idx.ptr);
	dk_buf_free(&dir);
	dk_buf_free(&tmp_pack);
	dk_buf_free(&tmp_idx);
	return error;
}

/* Reads the file at path into b (cleared first). */
static int read_back(dk_buf *b, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), error = 0;
	char chunk[65536];

	dk_buf_clear(b);
	if (fd < 0)
		return dk_error_set(DK_EINTERNAL, "archive: cannot read %s back: %s", path,
		                    strerror(errno));
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			error = dk_error_set(DK_EINTERNAL, "archive: cannot read %s back: %s", path,
			                     strerror(errno));
			break;
		}
		if (r == 0)
			break;
		dk_buf_put(b, chunk, (size_t)r);
	}
	close(fd);
	return error;
}

/* Writes objects[0..n) (n > 0, ids unique) as one pack and its index, as
 * write_objects; the pack's and the index's bytes into pack and idx for
 * the caller (the journal's record of a round), read back from the files
 * just written (the page cache: what reaches the disk is what the record
 * holds). */
static int write_objects_kept(dk_archive *a, const held *objects, size_t n, dk_buf *pack,
                              dk_buf *idx)
{
	char name[64];
	dk_buf path = DK_BUF_INIT;
	int error;

	if ((error = write_objects(a, objects, n, name)) < 0)
		return error;
	dk_buf_printf(&path, "%s/objects/pack/%s.pack", a->path, name);
	if ((error = read_back(pack, path.ptr)) == 0) {
		dk_buf_clear(&path);
		dk_buf_printf(&path, "%s/objects/pack/%s.idx", a->path, name);
		error = read_back(idx, path.ptr);
	}
	dk_buf_free(&path);
	return error;
}

int dk_archive__pack_write(dk_archive *a, char name_out[64])
{
	struct dk_archive_pack_view *v = a->pack;
	int error = 0;

	if (name_out)
		name_out[0] = '\0';
	if (v && v->be->now.n > 0)
		error = write_objects(a, v->be->now.v, v->be->now.n, name_out);
	dk_archive__pack_discard(a);
	return error;
}

void dk_archive__pack_rebase(dk_archive *a, git_repository *repo)
{
	git_odb *odb = NULL;

	if (!a->pack)
		return;
	if (git_repository_odb(&odb, repo) < 0) {
		git_error_clear();
		dk_archive__pack_free(a); /* made again from the new one on use */
		return;
	}
	git_odb_free(a->pack->be->archive);
	a->pack->be->archive = odb;
}

void dk_archive__pack_free(dk_archive *a)
{
	struct dk_archive_pack_view *v = a->pack;

	if (!v)
		return;
	if (v->zready) {
		deflateEnd(&v->z);
		deflateEnd(&v->stored);
	}
	git_repository_free(v->repo);
	git_odb_free(v->odb);
	free(v);
	a->pack = NULL;
}

/* ---- uploads at once: one pack, one flush (group commit) ---- */

/*
 * Uploads of one process to one archive that wait for their flush at the
 * same time share it, and share a pack too. Each upload builds its objects
 * in its own handle's view, then queues them (with the line of the ref
 * journal that names its ref's move) in the archive's commit group. One
 * of the waiting uploads, the leader, takes everything queued, writes it
 * as one pack, writes that pack, its index and the intent lines as one
 * record of the ref journal, and flushes once (the journal's fdatasync;
 * syncfs when an upload of the round wrote a loose object or the record
 * does not fit); then every upload of that round moves its own ref and
 * returns. Uploads that arrive
 * while a round is being written queue for the next one, so under load a
 * round takes all that came during the last flush, and a lone upload pays
 * what it did alone: its pack and one flush. The pattern is api/writer.c's
 * for acts, and dk_archive__barrier's for flushes.
 *
 * Nothing changes for each upload's guarantees: its objects and its
 * intent are on disk before its ref moves (the round's flush covers them:
 * in the journal's record, or by syncfs), and its ref moves under its own
 * ref lock, by compare-and-swap.
 */
typedef struct batch {
	struct batch *next;
	const held *v; /* lent by the waiting upload's view */
	size_t n;
	const char *intent; /* its journal line, or NULL */
	int flush;          /* it needs the flush (not a benchmark's fill) */
	int loose;          /* it wrote a loose object: syncfs, not the journal's flush */
	int done, error;
	int kept; /* its round's record is in the journal */
	char *why;
} batch;

struct dk_archive_commits {
	struct dk_archive_commits *next;
	dev_t dev;
	ino_t ino;
	int per_file;
	unsigned int users;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	batch *head, **tail;
	int busy;
	unsigned long long rounds, batches; /* written so far (tests, benchmarks) */
};

static pthread_mutex_t commits_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dk_archive_commits *commit_groups;

int dk_archive__commits_join(dk_archive *a)
{
	struct stat st;
	struct dk_archive_commits *g;

	if (fstat(a->dirfd, &st) < 0)
		return dk_error_set(DK_EINTERNAL, "archive: cannot stat %s: %s", a->path,
		                    strerror(errno));
	pthread_mutex_lock(&commits_mu);
	for (g = commit_groups;
	     g && !(g->dev == st.st_dev && g->ino == st.st_ino && g->per_file == a->per_file);
	     g = g->next)
		;
	if (!g) {
		g = dk_calloc(1, sizeof(*g));
		g->dev = st.st_dev;
		g->ino = st.st_ino;
		g->per_file = a->per_file;
		pthread_mutex_init(&g->mu, NULL);
		pthread_cond_init(&g->cv, NULL);
		g->tail = &g->head;
		g->next = commit_groups;
		commit_groups = g;
	}
	g->users++;
	a->commits = g;
	pthread_mutex_unlock(&commits_mu);
	return 0;
}

void dk_archive__commits_leave(dk_archive *a)
{
	struct dk_archive_commits *g = a->commits, **p;

	if (!g)
		return;
	pthread_mutex_lock(&commits_mu);
	if (--g->users == 0) {
		for (p = &commit_groups; *p != g; p = &(*p)->next)
			;
		*p = g->next;
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g);
	}
	pthread_mutex_unlock(&commits_mu);
	a->commits = NULL;
}

void dk_archive__commits_stats(const dk_archive *a, unsigned long long *rounds,
                               unsigned long long *batches)
{
	struct dk_archive_commits *g = a->commits;

	pthread_mutex_lock(&g->mu);
	*rounds = g->rounds;
	*batches = g->batches;
	pthread_mutex_unlock(&g->mu);
}

static int by_held_id(const void *x, const void *y)
{
	return memcmp(((const held *)x)->id.id, ((const held *)y)->id.id, GIT_OID_RAWSZ);
}

/* The leader's round: every object of list as one pack (each id once),
 * its record in the ref journal (the pack's and its index's bytes and
 * every upload's intent), one flush: the journal's fdatasync, or syncfs
 * when an upload of the round wrote a loose object (a big blob) or the
 * record does not fit in the journal. *kept: 1 when the record is in the
 * journal (the moves need no flush of their own), 0 when the moves must
 * be flushed after they are made (no journal, or it was full). */
static int write_round(dk_archive *a, batch *list, int *kept)
{
	dk_buf pack = DK_BUF_INIT, idx = DK_BUF_INIT, intents = DK_BUF_INIT;
	size_t total = 0, k = 0;
	held *all;
	int error = 0, flush = 0, loose = 0;

	*kept = 0;
	for (batch *b = list; b; b = b->next) {
		total += b->n;
		flush |= b->flush;
		loose |= b->loose;
		if (b->intent)
			dk_buf_put(&intents, b->intent, strlen(b->intent));
	}
	all = dk_calloc(total ? total : 1, sizeof(*all));
	for (batch *b = list; b; b = b->next)
		for (size_t i = 0; i < b->n; i++)
			all[k++] = b->v[i]; /* shallow: the data stays the uploader's */
	qsort(all, k, sizeof(*all), by_held_id);
	total = k;
	k = 0;
	for (size_t i = 0; i < total; i++)
		if (k == 0 || !git_oid_equal(&all[k - 1].id, &all[i].id))
			all[k++] = all[i];
	if (k)
		error = write_objects_kept(a, all, k, &pack, &idx);
	free(all);
	/* The record is written by whoever leads; every upload of the round
	 * holds the journal's shared lock (dk_archive__intent), so no
	 * rotation runs between its reservation and its flush. */
	if (!error && flush && intents.len) {
		int rc = dk_archive__journal_put(a, &pack, &idx, &intents, !loose);
		if (rc < 0)
			error = rc;
		else
			*kept = rc;
	}
	if (!error && flush && (!*kept || loose))
		error = dk_archive__flush(a);
	dk_buf_free(&pack);
	dk_buf_free(&idx);
	dk_buf_free(&intents);
	return error;
}

int dk_archive__pack_commit(dk_archive *a, const char *intent, int *kept)
{
	struct dk_archive_commits *g = a->commits;
	batch me;
	int error;

	memset(&me, 0, sizeof(me));
	me.v = a->pack ? a->pack->be->now.v : NULL;
	me.n = a->pack ? a->pack->be->now.n : 0;
	me.intent = intent;
	me.flush = !a->per_file && !a->no_flush;
	me.loose = a->loose;
	a->loose = 0;
	pthread_mutex_lock(&g->mu);
	*g->tail = &me;
	g->tail = &me.next;
	while (!me.done) {
		batch *list;
		int round_kept;
		if (g->busy) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		/* the leader of this round: everything queued so far */
		g->busy = 1;
		list = g->head;
		g->head = NULL;
		g->tail = &g->head;
		pthread_mutex_unlock(&g->mu);
		error = write_round(a, list, &round_kept);
		pthread_mutex_lock(&g->mu);
		g->rounds++;
		for (batch *b = list, *next; b; b = next) {
			next = b->next;
			g->batches++;
			b->error = error;
			b->kept = round_kept;
			if (error)
				b->why = dk_strdup(dk_error_last());
			b->done = 1;
		}
		g->busy = 0;
		pthread_cond_broadcast(&g->cv);
	}
	pthread_mutex_unlock(&g->mu);
	if (me.error)
		dk_archive__pack_discard(a);
	else
		dk_archive__pack_keep(a);
	if (kept)
		*kept = me.kept;
	if (me.error) {
		if (me.loose)
			a->loose = 1; /* still to be flushed by the next try */
		dk_error_set(me.error, "%s", me.why);
		free(me.why);
	}
	return me.error;
}
