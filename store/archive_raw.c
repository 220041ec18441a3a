/*
 * archive_raw.c - big files that do not compress, written as loose objects
 * whose zlib stream holds deflate's stored blocks.
 *
 * A loose object is "blob SIZE\0" and the bytes, as one zlib stream.
 * libgit2 deflates it at level 1 (git's core.looseCompression too), and
 * deflate is most of the cost of storing a big file: about 40 MB/s on this
 * project's machines, against memory speed for the rest. For content that
 * does not compress (PDF, office files, JPEG and ZIP are all compressed
 * already) level 1 spends that time to emit stored blocks anyway, since a
 * coded block of random bytes is bigger than the bytes. So a file that
 * samples as incompressible (dk_archive__incompressible) is written here as
 * stored blocks straight away: the same bytes on disk to within 5 per 64
 * KiB block, a valid zlib stream that git and libgit2 read like any other,
 * at memory speed. libgit2 still hashes the object (SHA-1 with collision
 * detection, in git_odb_stream_write) and names it; this file only lays the
 * bytes out.
 *
 * libgit2 cannot do this itself: its loose backend passes the level to its
 * file buffer, which takes level 0 to mean "do not deflate at all" and
 * would write bytes no git can read. So this is a write-only odb backend of
 * our own (git2/sys/odb_backend.h), in an odb of its own, used for nothing
 * but such blobs. Its objects land in objects/XX/ as any loose object,
 * through a temporary file renamed into place, fsynced in
 * DOCKET_ARCHIVE_SYNC=file mode and made durable by the put's barrier
 * otherwise, exactly as libgit2's own.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <git2/sys/odb_backend.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK_MAX  65535u /* a stored block's LEN is 16 bits */
#define BLOCK_HEAD 5u     /* BFINAL/BTYPE byte, LEN, NLEN */
#define OUT_BLOCKS 16u    /* blocks gathered per write(2) */
#define ADLER_MOD  65521u
#define ADLER_NMAX 5552u /* bytes before s2 could overflow */
#define SAMPLE     ((size_t)32 * 1024)
#define SAMPLES    8
/* Bits of entropy per byte above which a sample counts as incompressible:
 * deflate's own output and JPEG measure 7.98 to 8.0 on 32 KiB; text,
 * XML, CSV and uncompressed images 4 to 7.5. */
#define ENTROPY_MIN 7.9

typedef struct {
	git_odb_backend parent;
	dk_archive *a;
} raw_backend;

typedef struct {
	git_odb_stream parent;
	int fd;
	dk_buf tmp;         /* the temporary file's path */
	unsigned char *out; /* whole blocks waiting for write(2) */
	size_t out_len;     /* bytes in out, the open block's included */
	size_t blk;         /* offset in out of the open block's header */
	size_t blk_len;     /* bytes in the open block */
	uint32_t s1, s2;    /* Adler-32 of everything so far */
	size_t since_mod;   /* bytes since s1 and s2 were reduced */
} raw_stream;

#define OUT_CAP ((size_t)OUT_BLOCKS * (BLOCK_HEAD + BLOCK_MAX) + 2 + 4)

static int raw_error(const char *what, const char *path)
{
	dk_buf b = DK_BUF_INIT;
	dk_buf_printf(&b, "%s %s: %s", what, path, strerror(errno));
	git_error_set_str(GIT_ERROR_OS, b.ptr);
	dk_buf_free(&b);
	return -1;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Fills in the open block's header; last marks the stream's final block. */
static void close_block(raw_stream *s, int last)
{
	unsigned char *h = s->out + s->blk;
	uint16_t len = (uint16_t)s->blk_len, nlen = (uint16_t)~len;
	h[0] = last ? 1 : 0; /* BFINAL, BTYPE 00: stored; the rest of the byte is padding */
	h[1] = (unsigned char)(len & 0xff);
	h[2] = (unsigned char)(len >> 8);
	h[3] = (unsigned char)(nlen & 0xff);
	h[4] = (unsigned char)(nlen >> 8);
}

/* Opens a new block, writing out the finished ones when they fill out. */
static int open_block(raw_stream *s)
{
	if (OUT_CAP - s->out_len < BLOCK_HEAD + BLOCK_MAX + 4) {
		if (write_all(s->fd, s->out, s->out_len) < 0)
			return raw_error("cannot write", s->tmp.ptr);
		s->out_len = 0;
	}
	s->blk = s->out_len;
	s->out_len += BLOCK_HEAD;
	s->blk_len = 0;
	return 0;
}

static void adler(raw_stream *s, const unsigned char *p, size_t n)
{
	uint32_t s1 = s->s1, s2 = s->s2;
	while (n) {
		size_t k = ADLER_NMAX - s->since_mod;
		if (k > n)
			k = n;
		n -= k;
		s->since_mod += k;
		while (k--) {
			s1 += *p++;
			s2 += s1;
		}
		if (s->since_mod == ADLER_NMAX) {
			s1 %= ADLER_MOD;
			s2 %= ADLER_MOD;
			s->since_mod = 0;
		}
	}
	s->s1 = s1;
	s->s2 = s2;
}

static int raw_write(git_odb_stream *stream, const char *data, size_t len)
{
	raw_stream *s = (raw_stream *)stream;
	const unsigned char *p = (const unsigned char *)data;

	adler(s, p, len);
	while (len) {
		size_t n;
		if (s->blk_len == BLOCK_MAX) {
			close_block(s, 0);
			if (open_block(s) < 0)
				return -1;
		}
		n = BLOCK_MAX - s->blk_len;
		if (n > len)
			n = len;
		memcpy(s->out + s->out_len, p, n);
		s->out_len += n;
		s->blk_len += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int raw_finalize(git_odb_stream *stream, const git_oid *oid)
{
	raw_stream *s = (raw_stream *)stream;
	raw_backend *be = (raw_backend *)stream->backend;
	dk_archive *a = be->a;
	char hex[GIT_OID_HEXSZ + 1];
	dk_buf dir = DK_BUF_INIT, path = DK_BUF_INIT;
	git_odb *odb = NULL;
	uint32_t s1 = s->s1 % ADLER_MOD, s2 = s->s2 % ADLER_MOD;
	unsigned char *t;
	int error = -1, fd = s->fd;

	close_block(s, 1);
	t = s->out + s->out_len; /* Adler-32, big-endian */
	t[0] = (unsigned char)(s2 >> 8);
	t[1] = (unsigned char)(s2 & 0xff);
	t[2] = (unsigned char)(s1 >> 8);
	t[3] = (unsigned char)(s1 & 0xff);
	s->out_len += 4;
	if (write_all(fd, s->out, s->out_len) < 0) {
		raw_error("cannot write", s->tmp.ptr);
		goto done;
	}
	if (a->per_file && !a->no_flush && fsync(fd) < 0) {
		raw_error("cannot flush", s->tmp.ptr);
		goto done;
	}
	s->fd = -1;
	if (close(fd) < 0) {
		raw_error("cannot close", s->tmp.ptr);
		goto done;
	}
	/* Already stored (loose or packed): content-addressed, so nothing to
	 * add. */
	if (git_repository_odb(&odb, a->repo) == 0 && git_odb_exists(odb, oid)) {
		error = 0;
		goto done;
	}
	git_oid_tostr(hex, sizeof(hex), oid);
	dk_buf_printf(&dir, "%s/objects/%.2s", a->path, hex);
	dk_buf_printf(&path, "%s/%s", dir.ptr, hex + 2);
	if (mkdir(dir.ptr, 0777) < 0 && errno != EEXIST) {
		raw_error("cannot create", dir.ptr);
		goto done;
	}
	if (rename(s->tmp.ptr, path.ptr) < 0) {
		raw_error("cannot rename the object into", path.ptr);
		goto done;
	}
	dk_buf_clear(&s->tmp);
	if (a->per_file && !a->no_flush) {
		int dfd = open(dir.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) < 0) {
			raw_error("cannot flush", dir.ptr);
			if (dfd >= 0)
				close(dfd);
			goto done;
		}
		close(dfd);
	}
	error = 0;
done:
	git_odb_free(odb);
	dk_buf_free(&dir);
	dk_buf_free(&path);
	return error;
}

static void raw_stream_free(git_odb_stream *stream)
{
	raw_stream *s = (raw_stream *)stream;
	if (s->fd >= 0)
		close(s->fd);
	if (s->tmp.len)
		unlink(s->tmp.ptr);
	dk_buf_free(&s->tmp);
	free(s->out);
	free(s);
}

static int raw_writestream(git_odb_stream **out, git_odb_backend *backend, git_object_size_t size,
                           git_object_t type)
{
	raw_backend *be = (raw_backend *)backend;
	raw_stream *s;
	char head[64];
	int n;

	*out = NULL;
	if (type != GIT_OBJECT_BLOB) {
		git_error_set_str(GIT_ERROR_ODB, "docket's stored-block writer takes blobs only");
		return -1;
	}
	s = dk_calloc(1, sizeof(*s));
	s->parent.backend = backend;
	s->parent.mode = GIT_STREAM_WRONLY;
	s->parent.write = raw_write;
	s->parent.finalize_write = raw_finalize;
	s->parent.free = raw_stream_free;
	s->s1 = 1;
	dk_buf_printf(&s->tmp, "%s/objects/tmp_object_dk_XXXXXX", be->a->path);
	s->fd = mkostemp(s->tmp.ptr, O_CLOEXEC);
	if (s->fd < 0) {
		raw_error("cannot create", s->tmp.ptr);
		dk_buf_clear(&s->tmp);
		raw_stream_free(&s->parent);
		return -1;
	}
	/* Loose objects are read-only, as git and libgit2 make them. */
	(void)fchmod(s->fd, 0444);
	s->out = dk_malloc(OUT_CAP);
	s->out[0] = 0x78; /* zlib: deflate, 32 KiB window */
	s->out[1] = 0x01; /* FLEVEL 0 (fastest), no dictionary, check bits */
	s->out_len = 2;
	s->blk = s->out_len;
	s->out_len += BLOCK_HEAD;
	n = snprintf(head, sizeof(head), "blob %llu", (unsigned long long)size);
	raw_write(&s->parent, head, (size_t)n + 1); /* with its NUL; fits the first block */
	*out = &s->parent;
	return 0;
}

static void raw_free(git_odb_backend *backend)
{
	free(backend);
}

int dk_archive__raw_odb(git_odb **out, dk_archive *a)
{
	raw_backend *be;

	if (a->raw_odb) {
		*out = a->raw_odb;
		return 0;
	}
	be = dk_calloc(1, sizeof(*be));
	if (git_odb_init_backend(&be->parent, GIT_ODB_BACKEND_VERSION) < 0) {
		free(be);
		return dk_archive__git_error(DK_EINTERNAL, "cannot start the blob writer");
	}
	be->a = a;
	be->parent.writestream = raw_writestream;
	be->parent.free = raw_free;
	if (git_odb_new(&a->raw_odb) < 0) {
		free(be);
		return dk_archive__git_error(DK_EINTERNAL, "cannot start the blob writer");
	}
	if (git_odb_add_backend(a->raw_odb, &be->parent, 1) < 0) {
		free(be);
		git_odb_free(a->raw_odb);
		a->raw_odb = NULL;
		return dk_archive__git_error(DK_EINTERNAL, "cannot start the blob writer");
	}
	*out = a->raw_odb;
	return 0;
}

/* Shannon entropy of p[0..n), in bits per byte. */
static double entropy(const unsigned char *p, size_t n)
{
	size_t count[256] = {0};
	double h = 0;
	for (size_t i = 0; i < n; i++)
		count[p[i]]++;
	for (int c = 0; c < 256; c++) {
		if (count[c]) {
			double q = (double)count[c] / (double)n;
			h -= q * log2(q);
		}
	}
	return h;
}

int dk_archive__incompressible(int fd, int64_t size)
{
	unsigned char *buf;
	int yes = 1;

	if (size < DK_ARCHIVE_RAW_MIN)
		return 0;
	buf = dk_malloc(SAMPLE);
	for (int i = 0; i < SAMPLES && yes; i++) {
		off_t at = (off_t)((size - (int64_t)SAMPLE) / (SAMPLES - 1) * i);
		ssize_t n = pread(fd, buf, SAMPLE, at);
		yes = n == (ssize_t)SAMPLE && entropy(buf, SAMPLE) >= ENTROPY_MIN;
	}
	free(buf);
	return yes;
}
