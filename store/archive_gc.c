/*
 * archive_gc.c - keeping the evidence archive fast and copied: packing
 * loose objects (git_packbuilder) and pushing every refs/docket/ ref to a remote.
 *
 * Every upload writes one small pack (blob, two or three trees, commit;
 * a blob of 1 MB or more stays a loose object, streamed), and the notes'
 * catch-up one pack a round (archive_pack.c); plain git writes loose
 * objects. Past a few thousand, directories of loose files slow
 * every lookup, and so do many packs, so gc packs the loose objects (and
 * runs once the packs pass DK_ARCHIVE_AUTO_PACKS, to merge them): write a
 * pack and its index, flush them to disk
 * (dk_archive__barrier: syncfs, or libgit2's indexer fsyncing each file in
 * the per-file mode), then open that index on its own and remove each
 * loose file only after checking the index holds its object. Objects that arrive while gc runs
 * stay loose for next time. A reader holding an older list of packs finds
 * a removed loose object through libgit2's refresh-on-miss.
 *
 * Big blobs (> DK_ARCHIVE_GC_BIG_BLOB) stay loose: packed objects cannot be
 * streamed, and packing would hold them in memory.
 *
 * Each gc adds one pack, and so does each upload; lookups cost grows with
 * the number of packs, so
 * packs are merged, and the old ones deleted only once the merged one is
 * in place (their small files pooled, not freed, for the next packs to be
 * written into: archive_spare.c). Merging used to wait for more than 16 packs and then rewrite
 * all of them: every 16th gc rewrote the whole archive inside the put that
 * triggered it (at 100,000 uploads, half a million objects: about a
 * minute, so the upload cost grew with the archive). Now the packs are
 * kept in a geometric progression, as git's repack --geometric=2 does:
 * sorted by size, each pack kept must be at least twice all smaller ones
 * together, and the smallest ones that break that are merged. That is a
 * binary counter: a few packs (log2 of the archive over one gc's pack),
 * each object rewritten about that many times in its life, and the rare
 * merges of the biggest packs come at doublings of the archive. A merge
 * copies the entries of the packs as their bytes are, whatever its size
 * (archive_merge.c: no inflate, no deflate, no delta search; memory
 * bounded), so it costs about what reading and writing the bytes does.
 *
 * One gc at a time: gc holds flock(2) on ARCHIVE/docket-gc.lock. Without
 * it, every writer that crossed the threshold at once packed the same
 * loose objects at the same time: under `docket serve --threads 64` all
 * request threads writing notes started a packbuilder each and the acts
 * stalled for minutes on two cores. The automatic gc skips when another
 * holds the lock (that one is packing the same objects); `docket archive
 * gc` waits for it. The kernel drops the lock with its holder, so a crash
 * leaves nothing stale.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <git2/sys/odb_backend.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Temporary files libgit2 left behind (a crash mid-write) older than this
 * are removed by gc; live ones are rewritten continuously, so they are
 * always younger. */
#define STALE_TEMP_SECONDS 3600

typedef struct {
	git_oid *ids;
	size_t n, cap;
} oid_list;

static void oid_push(oid_list *l, const git_oid *id)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->ids = dk_realloc(l->ids, l->cap * sizeof(*l->ids));
	}
	git_oid_cpy(&l->ids[l->n++], id);
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

/* Lists loose objects (objects/XX/38-hex) and removes stale temp files. */
static void list_loose(oid_list *out, const char *repo_path)
{
	dk_buf dir = DK_BUF_INIT, f = DK_BUF_INIT;
	time_t now = time(NULL);
	struct stat st;
	DIR *d;

	dk_buf_printf(&dir, "%s/objects", repo_path);
	d = opendir(dir.ptr);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (!strncmp(e->d_name, "tmp_object", 10) || !strncmp(e->d_name, "streamed", 8)) {
			dk_buf_clear(&f);
			dk_buf_printf(&f, "%s/%s", dir.ptr, e->d_name);
			if (stat(f.ptr, &st) == 0 && now - st.st_mtime > STALE_TEMP_SECONDS)
				unlink(f.ptr);
		}
	}
	if (d)
		closedir(d);
	for (int i = 0; i < 256; i++) {
		char sub[3];
		snprintf(sub, sizeof(sub), "%02x", i);
		dk_buf_clear(&f);
		dk_buf_printf(&f, "%s/%s", dir.ptr, sub);
		d = opendir(f.ptr);
		for (struct dirent *e; d && (e = readdir(d));) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid id;
			if (strlen(e->d_name) != GIT_OID_HEXSZ - 2 ||
			    !is_hex(e->d_name, GIT_OID_HEXSZ - 2))
				continue;
			memcpy(hex, sub, 2);
			memcpy(hex + 2, e->d_name, GIT_OID_HEXSZ - 2);
			hex[sizeof(hex) - 1] = '\0';
			if (git_oid_fromstr(&id, hex) == 0)
				oid_push(out, &id);
		}
		if (d)
			closedir(d);
	}
	dk_buf_free(&dir);
	dk_buf_free(&f);
}

/* Is the file at path older than STALE_TEMP_SECONDS? */
static int stale(const char *path, time_t now)
{
	struct stat st;
	return stat(path, &st) == 0 && now - st.st_mtime > STALE_TEMP_SECONDS;
}

/* Names (without extension) of the packs in objects/pack: those with an
 * index and a pack. What a crash left there is removed once stale:
 * temporary packs and indexes (docket's tmp_pack_dk_*, libgit2's
 * pack_git2_*), and an index whose pack never got its name (libgit2's
 * indexer renames the index first). */
static size_t list_packs(char ***out, const char *repo_path)
{
	dk_buf dir = DK_BUF_INIT, f = DK_BUF_INIT;
	char **names = NULL;
	size_t n = 0;
	time_t now = time(NULL);
	DIR *d;
	dk_buf_printf(&dir, "%s/objects/pack", repo_path);
	d = opendir(dir.ptr);
	for (struct dirent *e; d && (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		dk_buf_clear(&f);
		dk_buf_printf(&f, "%s/%s", dir.ptr, e->d_name);
		if (!strncmp(e->d_name, "tmp_pack_dk_", 12) ||
		    !strncmp(e->d_name, "pack_git2_", 10)) {
			if (stale(f.ptr, now))
				unlink(f.ptr);
			continue;
		}
		if (l > 4 && !strcmp(e->d_name + l - 4, ".idx") &&
		    !strncmp(e->d_name, "pack-", 5)) {
			struct stat st;
			dk_buf_clear(&f);
			dk_buf_printf(&f, "%s/%.*s.pack", dir.ptr, (int)(l - 4), e->d_name);
			if (stat(f.ptr, &st) < 0) {
				dk_buf_clear(&f);
				dk_buf_printf(&f, "%s/%s", dir.ptr, e->d_name);
				if (stale(f.ptr, now))
					unlink(f.ptr);
				continue;
			}
			names = dk_realloc(names, (n + 1) * sizeof(*names));
			names[n++] = dk_strndup(e->d_name, l - 4);
		}
	}
	if (d)
		closedir(d);
	dk_buf_free(&dir);
	dk_buf_free(&f);
	*out = names;
	return n;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int open_pack(git_odb_backend **out, const char *repo_path, const char *name)
{
	dk_buf idx = DK_BUF_INIT;
	int error = 0;
	dk_buf_printf(&idx, "%s/objects/pack/%s.idx", repo_path, name);
	if (git_odb_backend_one_pack(out, idx.ptr) < 0)
		error = dk_archive__git_error(DK_EINTERNAL, "cannot open the new pack");
	dk_buf_free(&idx);
	return error;
}

/* Writes the pack of pb; name gets "pack-HEX". */
static int write_pack(char name[64], git_packbuilder *pb)
{
	if (git_packbuilder_write(pb, NULL, 0, NULL, NULL) < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot write the pack");
	snprintf(name, 64, "pack-%s", git_packbuilder_name(pb));
	return 0;
}

static int add_object(const git_oid *id, void *payload)
{
	oid_push(payload, id);
	return 0;
}

typedef struct {
	char *name;
	off_t size;
} pack_size;

static int by_size(const void *x, const void *y)
{
	const pack_size *p = x, *q = y;
	return p->size < q->size ? -1 : p->size > q->size;
}

/* Merges the packs that break the geometric progression (see the top of
 * this file) into one, then retires them: their .idx and .pack to the
 * spare pool (archive_spare.c) or unlinked, the rest unlinked. */
static int merge_packs(dk_archive *a, dk_archive_gc_result *res)
{
	char **names = NULL, newname[64];
	size_t n = list_packs(&names, a->path), split = 0;
	pack_size *ps = dk_calloc(n ? n : 1, sizeof(*ps));
	char **merging = dk_calloc(n ? n : 1, sizeof(*merging));
	git_odb_backend *check = NULL;
	oid_list all = {NULL, 0, 0};
	long long below = 0;
	size_t pool, before;
	int error = 0;

	for (size_t i = 0; i < n; i++) {
		dk_buf p = DK_BUF_INIT;
		struct stat st;
		dk_buf_printf(&p, "%s/objects/pack/%s.pack", a->path, names[i]);
		ps[i].name = names[i];
		ps[i].size = stat(p.ptr, &st) == 0 ? st.st_size : 0;
		dk_buf_free(&p);
	}
	qsort(ps, n, sizeof(*ps), by_size);
	for (size_t i = 0; i < n; i++) {
		if ((long long)ps[i].size < 2 * below)
			split = i + 1;
		below += ps[i].size;
	}
	res->packs = n;
	if (split < 2)
		goto cleanup; /* the progression holds: nothing to merge */
	for (size_t i = 0; i < split; i++) {
		git_odb_backend *b = NULL;
		if ((error = open_pack(&b, a->path, ps[i].name)) < 0)
			goto cleanup;
		if (b->foreach (b, add_object, &all) < 0) {
			b->free(b);
			error = dk_archive__git_error(DK_EINTERNAL, "cannot list a pack");
			goto cleanup;
		}
		b->free(b);
	}
	for (size_t i = 0; i < split; i++)
		merging[i] = ps[i].name;
	/* Their entries copied as they are into one new pack (archive_merge.c). */
	if ((error = dk_archive__merge_packs(a, merging, split, newname)) < 0)
		goto cleanup;
	if ((error = dk_archive__barrier(a)) < 0)
		goto cleanup;
	if ((error = open_pack(&check, a->path, newname)) < 0)
		goto cleanup;
	for (size_t i = 0; i < all.n; i++)
		if (!check->exists(check, &all.ids[i])) {
			error = dk_error_set(
			    DK_EINTERNAL, "archive: the merged pack lacks an object; the old packs "
			                  "are kept");
			goto cleanup;
		}
	pool = before = dk_archive__spare_pool(a);
	for (size_t i = 0; i < split; i++) {
		/* what plain git writes beside a pack too (git repack -ad of a
		 * bare repository writes a bitmap) */
		static const char *exts[] = {".idx", ".pack", ".rev", ".bitmap", ".mtimes"};
		if (!strcmp(ps[i].name, newname))
			continue;
		/* .idx first: once it is gone no reader opens the pack. The
		 * .idx and the .pack go to the spare pool, for the next packs
		 * to be written into (archive_spare.c), or are unlinked. */
		for (size_t k = 0; k < sizeof(exts) / sizeof(exts[0]); k++) {
			dk_buf p = DK_BUF_INIT;
			dk_buf_printf(&p, "objects/pack/%s%s", ps[i].name, exts[k]);
			if (k < 2) {
				dk_archive__spare_retire(a, p.ptr, &pool);
			} else {
				unlinkat(a->dirfd, p.ptr, 0);
			}
			dk_buf_free(&p);
		}
	}
	if (pool > before)
		dk_archive__spare_publish(a);
	res->packs = n - split + 1;
	git_odb *odb = NULL;
	if (git_repository_odb(&odb, a->repo) == 0) {
		git_odb_refresh(odb);
		git_odb_free(odb);
	}
cleanup:
	if (check)
		check->free(check);
	free(all.ids);
	free(merging);
	free(ps);
	free_names(names, n);
	return error;
}

/* Takes the gc lock into *fd. Returns 0, 1 when wait is 0 and another
 * holds it, or an error. */
static int gc_lock(int *fd, const dk_archive *a, int wait)
{
	dk_buf p = DK_BUF_INIT;
	int rc;

	dk_buf_printf(&p, "%s/docket-gc.lock", a->path);
	*fd = open(p.ptr, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (*fd < 0) {
		int e = errno;
		rc = dk_error_set(DK_EINTERNAL, "archive: cannot open %s: %s", p.ptr, strerror(e));
		dk_buf_free(&p);
		return rc;
	}
	while ((rc = flock(*fd, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		int e = errno;
		close(*fd);
		*fd = -1;
		if (e == EWOULDBLOCK) {
			dk_buf_free(&p);
			return 1;
		}
		rc = dk_error_set(DK_EINTERNAL, "archive: cannot lock %s: %s", p.ptr, strerror(e));
		dk_buf_free(&p);
		return rc;
	}
	dk_buf_free(&p);
	return 0;
}

static int gc_locked(dk_archive_gc_result *out, dk_archive *a);

int dk_archive_gc(dk_archive_gc_result *out, dk_archive *a)
{
	int fd, error;

	if ((error = gc_lock(&fd, a, 1)) < 0)
		return error;
	error = gc_locked(out, a);
	dk_archive__spares_sweep(a);
	close(fd);
	return error;
}

/* dk_archive_gc with the gc lock held. */
static int gc_locked(dk_archive_gc_result *out, dk_archive *a)
{
	dk_archive_gc_result res;
	oid_list loose = {NULL, 0, 0}, packed = {NULL, 0, 0};
	git_packbuilder *pb = NULL;
	git_odb_backend *check = NULL;
	git_odb *odb = NULL;
	int error = 0;

	memset(&res, 0, sizeof(res));
	list_loose(&loose, a->path);
	if (git_repository_odb(&odb, a->repo) < 0 || git_packbuilder_new(&pb, a->repo) < 0) {
		error = dk_archive__git_error(DK_EINTERNAL, "cannot start packing");
		goto cleanup;
	}
	for (size_t i = 0; i < loose.n; i++) {
		size_t len;
		git_object_t type;
		if (git_odb_read_header(&len, &type, odb, &loose.ids[i]) < 0) {
			/* unreadable or removed meanwhile: leave it to verify */
			git_error_clear();
			continue;
		}
		if (type == GIT_OBJECT_BLOB && len > DK_ARCHIVE_GC_BIG_BLOB) {
			res.kept_loose++;
			continue;
		}
		if (git_packbuilder_insert(pb, &loose.ids[i], NULL) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot pack an object");
			goto cleanup;
		}
		oid_push(&packed, &loose.ids[i]);
	}
	if (packed.n > 0) {
		/* The pack and its index on disk before any loose copy goes. */
		if ((error = write_pack(res.pack, pb)) < 0 || (error = dk_archive__barrier(a)) < 0)
			goto cleanup;
		if ((error = open_pack(&check, a->path, res.pack)) < 0)
			goto cleanup;
		for (size_t i = 0; i < packed.n; i++) {
			char hex[GIT_OID_HEXSZ + 1];
			dk_buf p = DK_BUF_INIT;
			if (!check->exists(check, &packed.ids[i]))
				continue; /* not in the pack: keep the loose file */
			git_oid_tostr(hex, sizeof(hex), &packed.ids[i]);
			dk_buf_printf(&p, "%s/objects/%.2s/%s", a->path, hex, hex + 2);
			if (unlink(p.ptr) == 0)
				res.removed++;
			dk_buf_free(&p);
		}
		res.packed = packed.n;
		git_odb_refresh(odb);
	}
	if ((error = merge_packs(a, &res)) < 0)
		goto cleanup;
cleanup:
	if (check)
		check->free(check);
	git_packbuilder_free(pb);
	git_odb_free(odb);
	free(loose.ids);
	free(packed.ids);
	if (out)
		*out = res;
	return error;
}

/* Entries in one fan-out directory. */
static unsigned int loose_in(const char *dir)
{
	unsigned int count = 0;
	DIR *d = opendir(dir);

	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_name[0] != '.')
			count++;
	if (d)
		closedir(d);
	return count;
}

int dk_archive_maybe_gc(int *ran, dk_archive *a)
{
	if (ran)
		*ran = 0;
	return a->auto_gc ? dk_archive_gc_past(ran, a, a->auto_gc) : 0;
}

/* Indexes in objects/pack: the packs, near enough (a crash's leftovers
 * are few and gc removes them). */
static unsigned int packs_in(const char *dir)
{
	unsigned int count = 0;
	DIR *d = opendir(dir);

	for (struct dirent *e; d && (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l > 4 && !strcmp(e->d_name + l - 4, ".idx"))
			count++;
	}
	if (d)
		closedir(d);
	return count;
}

/* Is gc due: loose objects past limit (in objects/17) or packs past
 * DK_ARCHIVE_AUTO_PACKS? */
static int gc_due(const char *loose_dir, unsigned int limit, const char *pack_dir)
{
	return loose_in(loose_dir) > limit || packs_in(pack_dir) > DK_ARCHIVE_AUTO_PACKS;
}

int dk_archive_gc_past(int *ran, dk_archive *a, unsigned int loose_objects)
{
	dk_buf dir = DK_BUF_INIT, packs = DK_BUF_INIT;
	unsigned int limit;
	int error = 0;

	if (ran)
		*ran = 0;
	/* git's estimate: objects spread evenly over the 256 fan-out
	 * directories, so one of them holds about 1/256 of the loose ones.
	 * Reading one small directory keeps this cheap enough to run after
	 * every put. Packs are counted too: the notes' catch-up writes one
	 * per round (archive_pack.c) and gc merges them. */
	limit = (loose_objects + 255) / 256;
	dk_buf_printf(&dir, "%s/objects/17", a->path);
	dk_buf_printf(&packs, "%s/objects/pack", a->path);
	if (gc_due(dir.ptr, limit, packs.ptr)) {
		int fd, busy = gc_lock(&fd, a, 0);
		if (busy < 0) {
			error = busy;
		} else if (busy == 0) {
			/* Counted again under the lock: a gc that just
			 * finished has packed them already. */
			if (gc_due(dir.ptr, limit, packs.ptr)) {
				error = gc_locked(NULL, a);
				if (error == 0 && ran)
					*ran = 1;
			}
			close(fd);
		}
	}
	dk_buf_free(&dir);
	dk_buf_free(&packs);
	return error;
}

/* ---- push ------------------------------------------------------------------ */

typedef struct {
	dk_buf rejected;
} push_state;

static int on_update(const char *refname, const char *status, void *data)
{
	push_state *ps = data;
	if (status)
		dk_buf_printf(&ps->rejected, "%s%s (%s)", ps->rejected.len ? ", " : "", refname,
		              status);
	return 0;
}

typedef struct {
	char **specs;
	size_t n;
} spec_list;

static int collect_spec(const char *refname, void *payload)
{
	spec_list *l = payload;
	dk_buf b = DK_BUF_INIT;
	l->specs = dk_realloc(l->specs, (l->n + 1) * sizeof(*l->specs));
	dk_buf_printf(&b, "%s:%s", refname, refname);
	l->specs[l->n++] = dk_buf_detach(&b);
	return 0;
}

/* A remote without "://" and not "host:path" scp syntax is a local path. */
static int is_local_path(const char *remote)
{
	const char *colon = strchr(remote, ':');
	const char *slash = strchr(remote, '/');
	if (strstr(remote, "://"))
		return !strncmp(remote, "file://", 7);
	return !colon || (slash && slash < colon);
}

int dk_archive_push(size_t *pushed, dk_archive *a, const char *remote_url)
{
	git_remote *remote = NULL;
	git_repository *created = NULL;
	git_push_options opts;
	git_remote_create_options ropts;
	spec_list specs = {NULL, 0};
	push_state ps = {DK_BUF_INIT};
	git_strarray arr;
	int error = 0, rc;

	if (pushed)
		*pushed = 0;
	if (!remote_url || !*remote_url)
		return dk_error_set(DK_EUSAGE, "archive push: name a remote (a URL or a path)");
	if (is_local_path(remote_url) && strncmp(remote_url, "file://", 7) != 0 &&
	    access(remote_url, F_OK) != 0) {
		/* A backup location that does not exist yet: make it a bare
		 * repository, which is what a push target must be. */
		if (git_repository_init(&created, remote_url, 1) < 0)
			return dk_archive__git_error(DK_EINVALID, "cannot create the remote");
		git_repository_free(created);
	}
	if (git_reference_foreach_glob(a->repo, "refs/docket/*", collect_spec, &specs) < 0) {
		error = dk_archive__git_error(DK_EINTERNAL, "cannot list the refs");
		goto cleanup;
	}
	if (specs.n == 0)
		goto cleanup; /* nothing archived yet: nothing to copy */
	/* Anonymous remote without url.*.insteadOf rewriting: the archive's
	 * config has none, and skipping it avoids libgit2 1.5's leak of regex
	 * match data on every config entry that does not match. */
	git_remote_create_options_init(&ropts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ropts.repository = a->repo;
	ropts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	if (git_remote_create_with_opts(&remote, remote_url, &ropts) < 0) {
		error = dk_archive__git_error(DK_EINVALID, "cannot use the remote");
		goto cleanup;
	}
	git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	opts.callbacks.push_update_reference = on_update;
	opts.callbacks.payload = &ps;
	arr.strings = specs.specs;
	arr.count = specs.n;
	rc = git_remote_push(remote, &arr, &opts);
	if (rc == GIT_ENONFASTFORWARD) {
		error = dk_archive__git_error(DK_ECONFLICT,
		                              "push refused, nothing was overwritten; the remote's "
		                              "history differs from this archive's; compare them "
		                              "before pushing again");
		goto cleanup;
	}
	if (rc < 0) {
		error = dk_archive__git_error(DK_EINVALID, "push failed");
		goto cleanup;
	}
	if (ps.rejected.len) {
		error = dk_error_set(DK_ECONFLICT,
		                     "archive push: the remote refused %s; its history differs "
		                     "from this archive's, so nothing was overwritten; compare "
		                     "them with 'docket verify'",
		                     ps.rejected.ptr);
		goto cleanup;
	}
	/* A local copy is only a copy once it is on disk (a remote across
	 * the network answers for its own disk). */
	if (is_local_path(remote_url) && !a->per_file &&
	    (error = dk_archive__flush_path(
	         strncmp(remote_url, "file://", 7) ? remote_url : remote_url + 7)) < 0)
		goto cleanup;
	if (pushed)
		*pushed = specs.n;
cleanup:
	git_remote_free(remote);
	for (size_t i = 0; i < specs.n; i++)
		free(specs.specs[i]);
	free(specs.specs);
	dk_buf_free(&ps.rejected);
	return error;
}
