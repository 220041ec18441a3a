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
 * samples as incompressible (dk_archive__incompressible) is written here
 * through zlib's deflate at Z_NO_COMPRESSION, which lays it out in stored
 * blocks at memory speed: the same bytes on disk to within 5 per 64 KiB
 * block, a zlib stream that git and libgit2 read like any other. libgit2 still hashes the object
 * (SHA-1 with collision detection, in git_odb_stream_write) and names it; this file only lays the
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
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <git2/sys/odb_backend.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define OUT_CAP ((size_t)1024 * 1024) /* zlib output gathered per write(2) */
#define SAMPLE  ((size_t)32 * 1024)
#define SAMPLES 8
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
	z_stream z;         /* deflate at Z_NO_COMPRESSION: stored blocks */
	int z_open;         /* z was initialised */
	unsigned char *out; /* zlib's output waiting for write(2) */
} raw_stream;

static int raw_error(const char *what, const char *path)
{
	dk_buf b = DK_BUF_INIT;
	dk_buf_printf(&b, "%s %s: %s", what, path, strerror(errno));
	git_error_set_str(GIT_ERROR_OS, b.ptr);
	dk_buf_free(&b);
	return -1;
}

/* Writes out zlib's full output buffer and hands it back empty. */
static int flush_out(raw_stream *s)
{
	if (dk_write_all(s->fd, s->out, OUT_CAP - s->z.avail_out) < 0)
		return raw_error("cannot write", s->tmp.ptr);
	s->z.next_out = s->out;
	s->z.avail_out = (uInt)OUT_CAP;
	return 0;
}

/* Feeds p[0..len) to zlib, and with finish ends the stream (the last
 * stored block and the Adler-32), writing out whatever it gives back a
 * full buffer at a time. */
static int raw_deflate(raw_stream *s, const unsigned char *p, size_t len, int finish)
{
	for (;;) {
		uInt chunk = len > (size_t)UINT_MAX ? UINT_MAX : (uInt)len;
		int end = finish && chunk == len, rc;

		s->z.next_in = (Bytef *)(uintptr_t)p;
		s->z.avail_in = chunk;
		do {
			if (s->z.avail_out == 0 && flush_out(s) < 0)
				return -1;
			rc = deflate(&s->z, end ? Z_FINISH : Z_NO_FLUSH);
			if (rc == Z_STREAM_ERROR) {
				git_error_set_str(GIT_ERROR_ZLIB,
				                  "cannot lay out the object's bytes");
				return -1;
			}
		} while (end ? rc != Z_STREAM_END : s->z.avail_in > 0 || s->z.avail_out == 0);
		p += chunk;
		len -= chunk;
		if (len == 0)
			return 0;
	}
}

static int raw_write(git_odb_stream *stream, const char *data, size_t len)
{
	return raw_deflate((raw_stream *)stream, (const unsigned char *)data, len, 0);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;
	if (fd < 0)
		return raw_error("cannot open", path);
	rc = fsync(fd);
	close(fd);
	return rc < 0 ? raw_error("cannot flush", path) : 0;
}

static int raw_finalize(git_odb_stream *stream, const git_oid *oid)
{
	raw_stream *s = (raw_stream *)stream;
	raw_backend *be = (raw_backend *)stream->backend;
	dk_archive *a = be->a;
	char hex[GIT_OID_HEXSZ + 1];
	dk_buf objects = DK_BUF_INIT, dir = DK_BUF_INIT, path = DK_BUF_INIT;
	git_odb *odb = NULL;
	int error = -1, fd = s->fd, made_dir = 0;

	if (raw_deflate(s, NULL, 0, 1) < 0 || flush_out(s) < 0)
		goto done;
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
	dk_buf_printf(&objects, "%s/objects", a->path);
	dk_buf_printf(&dir, "%s/%.2s", objects.ptr, hex);
	dk_buf_printf(&path, "%s/%s", dir.ptr, hex + 2);
	if (mkdir(dir.ptr, 0777) == 0) {
		made_dir = 1;
	} else if (errno != EEXIST) {
		raw_error("cannot create", dir.ptr);
		goto done;
	}
	if (rename(s->tmp.ptr, path.ptr) < 0) {
		raw_error("cannot rename the object into", path.ptr);
		goto done;
	}
	dk_buf_clear(&s->tmp);
	/* Per-file mode: the name in its fan-out directory, and a new
	 * fan-out directory's name in objects/, on disk too. */
	if (a->per_file && !a->no_flush &&
	    (fsync_dir(dir.ptr) < 0 || (made_dir && fsync_dir(objects.ptr) < 0)))
		goto done;
	error = 0;
done:
	git_odb_free(odb);
	dk_buf_free(&objects);
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
	if (s->z_open)
		deflateEnd(&s->z);
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
	s->z.next_out = s->out;
	s->z.avail_out = (uInt)OUT_CAP;
	if (deflateInit(&s->z, Z_NO_COMPRESSION) != Z_OK) {
		git_error_set_str(GIT_ERROR_ZLIB, "cannot start zlib");
		raw_stream_free(&s->parent);
		return -1;
	}
	s->z_open = 1;
	n = snprintf(head, sizeof(head), "blob %llu", (unsigned long long)size);
	if (raw_deflate(s, (const unsigned char *)head, (size_t)n + 1, 0) < 0) { /* with its NUL */
		raw_stream_free(&s->parent);
		return -1;
	}
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

int dk_archive__incompressible_buf(const void *data, size_t len)
{
	return len >= DK_ARCHIVE_STORED_MIN && entropy(data, len) >= ENTROPY_MIN;
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
