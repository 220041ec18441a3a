/*
 * archive_merge.c - gc's merge of packs: every entry of the packs merged
 * copied into the new pack as its bytes are, not read and written again.
 *
 * A pack entry is a header (type, inflated size) and a zlib stream; the
 * pack's index (gitformat-pack(5), version 2) gives each object's offset
 * and the CRC32 of its entry's bytes. An entry ends where the next one in
 * the pack begins (the last one at the pack's checksum), so an entry can
 * be taken from one pack and put in another without inflating it: what a
 * merge costs is reading and writing the bytes, a CRC32 and the new pack's
 * SHA-1. Merges used to read every object through libgit2 (inflate, the
 * object's SHA-1), hold them all in memory and deflate them again, a
 * quarter of a small upload's CPU; merges of more than 32 MiB went through
 * git_packbuilder and its delta search instead (17.7 s in one upload at
 * 100,000 archived files).
 *
 * libgit2 has no public call that hands out an entry's raw bytes, so the
 * index and the entry headers are read here and checked before anything
 * is copied: the index's magic, version, sizes and its own SHA-1; the
 * pack's header, its object count and its checksum against the one the
 * index names; every offset inside the pack; and each entry's CRC32
 * against the index as it is copied. A damaged pack fails the merge: the
 * new pack is removed, the old ones are kept, and the message names the
 * pack and the object. So does a pack whose index is version 1 (no
 * CRC32s), the message saying how to write it again. Nothing guarantees
 * the bytes inflate to the object named (git's own pack reuse trusts the
 * same CRC32); gc then opens the new index with libgit2 and checks it
 * holds every object before any old pack goes (archive_gc.c).
 *
 * An object in several of the packs is written once, from the first pack
 * that has it. Deltas (from a git_packbuilder pack or a plain git repack
 * of the archive) are copied when their base is copied from the same
 * pack: a REF_DELTA as it is, an OFS_DELTA with its base's distance in
 * the new pack. Any other delta is written whole (read through libgit2,
 * deflated again), so the new pack's deltas are some of one pack's own,
 * with no cycle between them.
 *
 * Memory: one pack at a time is read in (up to 1 MiB) or mapped (bigger);
 * the new pack streams out through the writer's 1 MiB buffer; what grows
 * with the objects merged is the indexes (28 bytes an object, mapped when
 * big) and about 60 bytes each (where each one is, and its entry in the
 * new index).
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define PACK_OFS_DELTA 6
#define PACK_REF_DELTA 7

/* One pack being merged. */
typedef struct {
	const char *name;
	const unsigned char *idx, *pack; /* read or mapped (load); pack while copied */
	size_t idx_len, pack_len;
	int idx_mapped, pack_mapped;
	uint32_t n;
	const unsigned char *ids, *crcs; /* in the index, by position */
	uint64_t *off;                   /* off[j]: where the entry of position j starts */
	uint32_t *by_off;                /* positions in the order of their offsets */
	unsigned char *keep;             /* keep[j]: written from this pack */
	uint64_t *new_off;               /* new_off[j]: where it went, once written */
} source;

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Files up to this size are read into memory, bigger ones mapped: a
 * merge of small packs (every upload writes one) mostly reads files of a
 * few KiB, for which mmap(2) and munmap(2) cost more than read(2) (with
 * every file mapped, merges took 8.4% of `archive_uploads uploads 1000`'s
 * samples under perf; read, 7.1%). */
#define READ_MAX ((size_t)1024 * 1024)

/* The bytes of the file at path into *out (read or mapped: *mapped),
 * its size into *len; freed with unload. */
static int load(const unsigned char **out, size_t *len, int *mapped, const char *path)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;

	*out = NULL;
	*len = 0;
	*mapped = 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		e = errno;
		goto fail;
	}
	if (st.st_size == 0) {
		close(fd);
		dk_error_set(DK_EINTERNAL,
		             "archive: %s is empty; no pack was merged and every pack is kept; "
		             "'docket verify' tells which uploads it held",
		             path);
		return DK_EINTERNAL;
	}
	if ((size_t)st.st_size > READ_MAX) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			e = errno;
			goto fail;
		}
		(void)madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
		*out = p;
		*mapped = 1;
	} else {
		buf = dk_malloc((size_t)st.st_size);
		while (got < (size_t)st.st_size) {
			ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				e = r < 0 ? errno : EIO; /* shorter than fstat said */
				free(buf);
				goto fail;
			}
			got += (size_t)r;
		}
		*out = buf;
	}
	*len = (size_t)st.st_size;
	close(fd);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	dk_error_set(DK_EINTERNAL,
	             "archive: cannot read %s: %s; no pack was merged and every pack is kept; "
	             "check the file's permissions and the disk",
	             path, strerror(e));
	return DK_EINTERNAL; /* negative: *out stays NULL only on failure */
}

static void unload(const unsigned char **p, size_t len, int mapped)
{
	if (*p && mapped)
		munmap((void *)(uintptr_t)*p, len);
	else
		free((void *)(uintptr_t)*p);
	*p = NULL;
}

static int damaged(const source *s, const char *what)
{
	return dk_error_set(DK_EINTERNAL,
	                    "archive: %s is damaged (%s); no pack was merged and the old "
	                    "ones are kept; 'docket verify' tells what it holds",
	                    s->name, what);
}

typedef struct {
	uint64_t off;
	uint32_t pos;
} placed;

static int by_offset(const void *x, const void *y)
{
	uint64_t p = ((const placed *)x)->off, q = ((const placed *)y)->off;
	return p < q ? -1 : p > q;
}

/* Reads (or maps) the index of s->name, checks it (format, order, its
 * checksum, every offset inside the pack, whose size is taken here), and
 * sorts its entries by offset. The pack itself is read by open_pack_of. */
static int open_source(source *s, const char *pack_dir)
{
	dk_buf p = DK_BUF_INIT;
	unsigned char sum[20];
	const unsigned char *offs, *large;
	placed *order = NULL;
	struct stat st;
	size_t base, nlarge;
	int error = 0;

	dk_buf_printf(&p, "%s/%s.idx", pack_dir, s->name);
	if ((error = load(&s->idx, &s->idx_len, &s->idx_mapped, p.ptr)) < 0)
		goto cleanup;
	dk_buf_clear(&p);
	dk_buf_printf(&p, "%s/%s.pack", pack_dir, s->name);
	if (stat(p.ptr, &st) < 0) {
		error = dk_error_set(DK_EINTERNAL, "archive: cannot read %s: %s", p.ptr,
		                     strerror(errno));
		goto cleanup;
	}
	s->pack_len = (size_t)st.st_size;

	if (s->idx_len >= 1024 + 40 && memcmp(s->idx, "\377tOc", 4) != 0 &&
	    (s->idx_len - 1024 - 20 - 20) % 24 == 0) {
		/* version 1 (no magic; git writes it only when told to with
		 * pack.indexVersion=1): readable, but without CRC32s to check
		 * the copies against */
		error = dk_error_set(DK_EINTERNAL,
		                     "archive: %s has a version 1 index, which gc does not merge; "
		                     "write it again with 'git index-pack %s/%s.pack' (no pack was "
		                     "merged and the old ones are kept)",
		                     s->name, pack_dir, s->name);
		goto cleanup;
	}
	if (s->idx_len < 8 + 1024 + 40 || memcmp(s->idx, "\377tOc", 4) != 0 ||
	    be32(s->idx + 4) != 2) {
		error = damaged(s, "its index is not a version 2 pack index");
		goto cleanup;
	}
	for (size_t k = 1; k < 256; k++)
		if (be32(s->idx + 8 + 4 * k) < be32(s->idx + 8 + 4 * (k - 1))) {
			error = damaged(s, "its index's fan-out table is not in order");
			goto cleanup;
		}
	s->n = be32(s->idx + 8 + 1020);
	base = 8 + 1024 + (size_t)s->n * 28;
	if (s->idx_len < base + 40 || (s->idx_len - base - 40) % 8 != 0) {
		error = damaged(s, "its index has the wrong size");
		goto cleanup;
	}
	if (dk_archive__sha1(sum, s->idx, s->idx_len - 20) < 0) {
		error = dk_error_set(DK_EINTERNAL, "archive: cannot hash a pack index (SHA-1)");
		goto cleanup;
	}
	if (memcmp(sum, s->idx + s->idx_len - 20, 20) != 0) {
		error = damaged(s, "its index does not match its checksum");
		goto cleanup;
	}
	if (s->pack_len < 12 + 20) {
		error = damaged(s, "the pack does not match its index");
		goto cleanup;
	}
	s->ids = s->idx + 8 + 1024;
	s->crcs = s->ids + (size_t)s->n * 20;
	offs = s->crcs + (size_t)s->n * 4;
	large = offs + (size_t)s->n * 4;
	nlarge = (s->idx_len - base - 40) / 8;
	s->off = dk_calloc(s->n ? s->n : 1, sizeof(*s->off));
	s->by_off = dk_calloc(s->n ? s->n : 1, sizeof(*s->by_off));
	s->keep = dk_calloc(s->n ? s->n : 1, 1);
	s->new_off = dk_calloc(s->n ? s->n : 1, sizeof(*s->new_off));
	order = dk_calloc(s->n ? s->n : 1, sizeof(*order));
	for (uint32_t j = 0; j < s->n; j++) {
		uint32_t o = be32(offs + 4 * (size_t)j);
		if (j > 0 &&
		    memcmp(s->ids + 20 * (size_t)(j - 1), s->ids + 20 * (size_t)j, 20) >= 0) {
			error = damaged(s, "its index's ids are not in order");
			goto cleanup;
		}
		if (o & 0x80000000u) {
			size_t k = o & 0x7fffffffu;
			if (k >= nlarge) {
				error = damaged(s, "its index names an offset it lacks");
				goto cleanup;
			}
			s->off[j] = (uint64_t)be32(large + 8 * k) << 32 | be32(large + 8 * k + 4);
		} else {
			s->off[j] = o;
		}
		if (s->off[j] < 12 || s->off[j] >= s->pack_len - 20) {
			error = damaged(s, "its index names an offset outside the pack");
			goto cleanup;
		}
		order[j].off = s->off[j];
		order[j].pos = j;
	}
	qsort(order, s->n, sizeof(*order), by_offset);
	for (uint32_t k = 0; k < s->n; k++) {
		if (k > 0 && order[k].off == order[k - 1].off) {
			error = damaged(s, "its index names one offset twice");
			goto cleanup;
		}
		s->by_off[k] = order[k].pos;
	}
cleanup:
	free(order);
	dk_buf_free(&p);
	return error;
}

/* Reads (or maps) s's pack, for its entries to be copied, and checks it is
 * the one its index describes: its size, header, object count and
 * checksum. */
static int open_pack_of(source *s, const char *pack_dir)
{
	dk_buf p = DK_BUF_INIT;
	size_t want = s->pack_len;
	int error;

	dk_buf_printf(&p, "%s/%s.pack", pack_dir, s->name);
	error = load(&s->pack, &s->pack_len, &s->pack_mapped, p.ptr);
	dk_buf_free(&p);
	if (error < 0)
		return error;
	if (s->pack_len != want || memcmp(s->pack, "PACK", 4) != 0 ||
	    (be32(s->pack + 4) != 2 && be32(s->pack + 4) != 3) || be32(s->pack + 8) != s->n ||
	    memcmp(s->pack + s->pack_len - 20, s->idx + s->idx_len - 40, 20) != 0)
		return damaged(s, "the pack does not match its index");
	return 0;
}

static void close_source(source *s)
{
	unload(&s->idx, s->idx_len, s->idx_mapped);
	unload(&s->pack, s->pack_len, s->pack_mapped);
	free(s->off);
	free(s->by_off);
	free(s->keep);
	free(s->new_off);
}

/* ---- each object once: a set of (pack, position) keyed by id ---- */

typedef struct {
	uint64_t *slot; /* (pack + 1) << 32 | position; 0 is empty */
	size_t mask;
} id_set;

static const unsigned char *id_at(const source *src, uint64_t v)
{
	return src[(v >> 32) - 1].ids + 20 * (size_t)(uint32_t)v;
}

/* Adds the id at position j of pack s unless the set has it: 1 when added. */
static int id_add(id_set *set, const source *src, size_t s, uint32_t j)
{
	const unsigned char *id = src[s].ids + 20 * (size_t)j;
	size_t h;

	memcpy(&h, id, sizeof(h)); /* object ids are uniform already */
	for (h &= set->mask; set->slot[h]; h = (h + 1) & set->mask)
		if (!memcmp(id_at(src, set->slot[h]), id, 20))
			return 0;
	set->slot[h] = (uint64_t)(s + 1) << 32 | j;
	return 1;
}

/* Position of id in s's index, or -1. */
static long find_id(const source *s, const unsigned char *id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(s->ids + 20 * mid, id, 20);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Position of the entry at offset off in s, or -1. */
static long find_offset(const source *s, uint64_t off)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t o = s->off[s->by_off[mid]];
		if (o == off)
			return (long)s->by_off[mid];
		if (o < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* ---- copying one entry ---- */

/* Writes the object whole, read through libgit2 (a delta whose base is
 * not copied with it). */
static int put_whole(dk_archive_pack_out *w, git_odb *odb, const git_oid *id)
{
	git_odb_object *obj = NULL;
	int error;

	if (git_odb_read(&obj, odb, id) < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot read an object to merge");
	error = dk_archive__pack_put(w, id, git_odb_object_type(obj), git_odb_object_data(obj),
	                             git_odb_object_size(obj));
	git_odb_object_free(obj);
	return error;
}

/* An OFS_DELTA's distance to its base, as the format spells it (base 128,
 * most significant first, each continued byte one less) into b; its
 * length. */
static size_t ofs_encode(unsigned char b[16], uint64_t d)
{
	unsigned char t[16];
	size_t n = 0, len = 0;

	t[n++] = (unsigned char)(d & 0x7f);
	while (d >>= 7)
		t[n++] = (unsigned char)(0x80 | (--d & 0x7f));
	while (n)
		b[len++] = t[--n];
	return len;
}

/* Copies the entry at position j of s (end: where it ends) into w. */
static int copy_entry(dk_archive_pack_out *w, source *s, uint32_t j, uint64_t end, git_odb **odb,
                      dk_archive *a)
{
	const unsigned char *p = s->pack + s->off[j];
	size_t len = (size_t)(end - s->off[j]), h = 1, at;
	uint32_t want = be32(s->crcs + 4 * (size_t)j), got = 0;
	int type = (p[0] >> 4) & 7;
	git_oid id;
	long b = -1;

	memcpy(id.id, s->ids + 20 * (size_t)j, GIT_OID_RAWSZ);
	for (size_t i = 0; i < len; i += 1u << 30) {
		size_t step = len - i < (1u << 30) ? len - i : (1u << 30);
		got = (uint32_t)crc32(got, p + i, (uInt)step);
	}
	if (len == 0 || got != want) {
		char what[96], hex[GIT_OID_HEXSZ + 1];
		snprintf(what, sizeof(what), "the entry of %s does not match its CRC32",
		         git_oid_tostr(hex, sizeof(hex), &id));
		return damaged(s, what);
	}
	while (h < len && h < 16 && (p[h - 1] & 0x80))
		h++;
	if (h >= len || (p[h - 1] & 0x80) || type == 0 || type == 5)
		return damaged(s, "an entry's header is not one git writes");
	s->new_off[j] = dk_archive__pack_offset(w);
	if (type == PACK_REF_DELTA) {
		if (h + 20 < len)
			b = find_id(s, p + h);
		if (b < 0 || !s->keep[b])
			goto whole;
		return dk_archive__pack_put_raw(w, &id, NULL, 0, p, len, &want);
	}
	if (type == PACK_OFS_DELTA) {
		unsigned char enc[16], head[32];
		size_t head_len;
		uint64_t d;
		at = h;
		d = p[at] & 0x7f;
		while (at + 1 < len && (p[at] & 0x80) && d < ((uint64_t)1 << 56))
			d = ((d + 1) << 7) | (p[++at] & 0x7f);
		at++;
		if (at >= len || (p[at - 1] & 0x80) || d == 0 || d > s->off[j])
			return damaged(s, "an entry's delta base is not in the pack");
		b = find_offset(s, s->off[j] - d);
		/* its base comes first in the pack, so it is written already */
		if (b < 0 || !s->keep[b] || s->off[b] >= s->off[j])
			goto whole;
		/* the header as it was (type, size), the new distance */
		head_len = h + ofs_encode(enc, s->new_off[j] - s->new_off[b]);
		memcpy(head, p, h);
		memcpy(head + h, enc, head_len - h);
		return dk_archive__pack_put_raw(w, &id, head, head_len, p + at, len - at, NULL);
	}
	return dk_archive__pack_put_raw(w, &id, NULL, 0, p, len, &want);
whole:
	if (!*odb && git_repository_odb(odb, a->repo) < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot read the archive's objects");
	return put_whole(w, *odb, &id);
}

int dk_archive__merge_packs(dk_archive *a, char *const *names, size_t n, char name_out[64])
{
	source *src = dk_calloc(n ? n : 1, sizeof(*src));
	dk_buf dir = DK_BUF_INIT;
	id_set set = {NULL, 0};
	dk_archive_pack_out *w = NULL;
	git_odb *odb = NULL;
	size_t total = 0, nslots = 1024;
	uint64_t count = 0;
	int error = 0;

	name_out[0] = '\0';
	dk_buf_printf(&dir, "%s/objects/pack", a->path);
	for (size_t s = 0; s < n; s++) {
		src[s].name = names[s];
		if ((error = open_source(&src[s], dir.ptr)) < 0)
			goto cleanup;
		total += src[s].n;
	}
	while (nslots < 2 * total)
		nslots *= 2;
	set.slot = dk_calloc(nslots, sizeof(*set.slot));
	set.mask = nslots - 1;
	for (size_t s = 0; s < n; s++)
		for (uint32_t j = 0; j < src[s].n; j++)
			if ((src[s].keep[j] = (unsigned char)id_add(&set, src, s, j)))
				count++;
	if (count > UINT32_MAX) {
		error = dk_error_set(DK_EINTERNAL, "archive: too many objects for one pack");
		goto cleanup;
	}
	if ((error = dk_archive__pack_begin(&w, a, (uint32_t)count)) < 0)
		goto cleanup;
	/* one pack read (or mapped) at a time */
	for (size_t s = 0; s < n; s++) {
		if ((error = open_pack_of(&src[s], dir.ptr)) < 0)
			goto cleanup;
		for (uint32_t k = 0; k < src[s].n; k++) {
			uint32_t j = src[s].by_off[k];
			uint64_t end = k + 1 < src[s].n ? src[s].off[src[s].by_off[k + 1]]
			                                : src[s].pack_len - 20;
			if (src[s].keep[j] && (error = copy_entry(w, &src[s], j, end, &odb, a)) < 0)
				goto cleanup;
		}
		unload(&src[s].pack, src[s].pack_len, src[s].pack_mapped);
	}
	error = dk_archive__pack_finish(w, name_out);
	w = NULL;
cleanup:
	dk_archive__pack_abort(w);
	git_odb_free(odb);
	for (size_t s = 0; s < n; s++)
		close_source(&src[s]);
	free(src);
	free(set.slot);
	dk_buf_free(&dir);
	return error;
}
