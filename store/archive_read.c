/*
 * archive_read.c - reading the evidence archive back: streaming blobs out
 * byte-exact, and walking an instance's history for `docket verify`.
 *
 * A blob read here is checked twice over: its git id is recomputed from the
 * bytes as they stream (git ids are SHA-1 of "blob SIZE\0" + bytes), so a
 * damaged or swapped object file is reported rather than served, and its
 * SHA-256 is computed in the same pass for comparison with the
 * Docket-Sha256 trailer and the database.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int dk_archive_write_fd(const void *data, size_t len, void *payload)
{
	if (dk_write_all(*(int *)payload, data, len) < 0)
		return dk_error_set(DK_EINVALID, "cannot write the file out: %s", strerror(errno));
	return 0;
}

int dk_archive_tip(char out[DK_ARCHIVE_OID_HEXSZ + 1], dk_archive *a, const char *instance)
{
	git_oid tip;
	int error = dk_archive__tip(&tip, a, instance);
	out[0] = '\0';
	if (error == DK_ENOTFOUND)
		return dk_error_set(DK_ENOTFOUND, "instance '%s' has nothing in the archive",
		                    instance);
	if (error < 0)
		return error;
	git_oid_tostr(out, DK_ARCHIVE_OID_HEXSZ + 1, &tip);
	return 0;
}

/* ---- blobs ------------------------------------------------------------------ */

typedef struct {
	EVP_MD_CTX *sha1, *sha256;
} hashes;

static int hashes_start(hashes *h, size_t size)
{
	char hdr[64];
	int n = snprintf(hdr, sizeof(hdr), "blob %zu", size);
	h->sha1 = EVP_MD_CTX_new();
	h->sha256 = EVP_MD_CTX_new();
	if (!h->sha1 || !h->sha256 || !EVP_DigestInit_ex(h->sha1, EVP_sha1(), NULL) ||
	    !EVP_DigestInit_ex(h->sha256, EVP_sha256(), NULL))
		return dk_error_set(DK_EINTERNAL, "archive: cannot start hashing");
	EVP_DigestUpdate(h->sha1, hdr, (size_t)n + 1); /* with its NUL */
	return 0;
}

static void hashes_free(hashes *h)
{
	EVP_MD_CTX_free(h->sha1);
	EVP_MD_CTX_free(h->sha256);
}

/* Finishes both; returns DK_EINVALID when the git id does not match. */
static int hashes_finish(hashes *h, const git_oid *id, char sha256_out[65])
{
	unsigned char md1[EVP_MAX_MD_SIZE], md2[EVP_MAX_MD_SIZE];
	unsigned int l1 = 0, l2 = 0;
	char hex[DK_ARCHIVE_OID_HEXSZ + 1];
	EVP_DigestFinal_ex(h->sha1, md1, &l1);
	EVP_DigestFinal_ex(h->sha256, md2, &l2);
	if (sha256_out) {
		dk_archive__hex(sha256_out, md2, 32);
	}
	if (l1 != GIT_OID_RAWSZ || memcmp(md1, id->id, GIT_OID_RAWSZ) != 0) {
		git_oid_tostr(hex, sizeof(hex), id);
		return dk_error_set(DK_EINVALID,
		                    "archive: blob %s is damaged: its bytes no longer match its "
		                    "id; restore the archive from a copy (docket archive push)",
		                    hex);
	}
	return 0;
}

static int pass(hashes *h, const char *data, size_t len, dk_archive_write_fn fn, void *payload)
{
	EVP_DigestUpdate(h->sha1, data, len);
	EVP_DigestUpdate(h->sha256, data, len);
	return fn ? fn(data, len, payload) : 0;
}

static int stream_oid(dk_archive *a, const git_oid *id, dk_archive_write_fn fn, void *payload,
                      char sha256_out[65], int64_t *size_out)
{
	git_odb *odb = NULL;
	git_odb_stream *rs = NULL;
	git_odb_object *obj = NULL;
	hashes h = {NULL, NULL};
	char hex[DK_ARCHIVE_OID_HEXSZ + 1];
	char *buf = NULL;
	size_t len = 0;
	git_object_t type = GIT_OBJECT_INVALID;
	int error = 0, rc;

	git_oid_tostr(hex, sizeof(hex), id);
	if (sha256_out)
		sha256_out[0] = '\0';
	if (size_out)
		*size_out = -1;
	if (git_repository_odb(&odb, a->repo) < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot open the object database");
	rc = git_odb_open_rstream(&rs, &len, &type, odb, id);
	if (rc == 0) {
		/* Loose: inflate 64 KiB at a time. */
		size_t got = 0;
		if (type != GIT_OBJECT_BLOB) {
			error = dk_error_set(DK_EINVALID, "archive: %s is not a file", hex);
			goto cleanup;
		}
		if ((error = hashes_start(&h, len)) < 0)
			goto cleanup;
		buf = dk_malloc(DK_ARCHIVE_CHUNK);
		while (got < len) {
			size_t want = len - got < DK_ARCHIVE_CHUNK ? len - got : DK_ARCHIVE_CHUNK;
			int n = git_odb_stream_read(rs, buf, want);
			if (n < 0) {
				error = dk_archive__git_error(DK_EINVALID, "blob is damaged");
				goto cleanup;
			}
			if (n == 0) {
				error = dk_error_set(
				    DK_EINVALID,
				    "archive: blob %s is damaged: it ends after %zu of "
				    "%zu bytes",
				    hex, got, len);
				goto cleanup;
			}
			if ((error = pass(&h, buf, (size_t)n, fn, payload)) < 0)
				goto cleanup;
			got += (size_t)n;
		}
	} else {
		/* Packed (packs have no streaming reads): read whole. dk_archive_gc
		 * keeps big blobs loose, so this is a small one. */
		rc = git_odb_read(&obj, odb, id);
		if (rc == GIT_ENOTFOUND) {
			error =
			    dk_error_set(DK_ENOTFOUND,
			                 "archive: blob %s is missing; restore the archive from a "
			                 "copy (docket archive push)",
			                 hex);
			goto cleanup;
		}
		if (rc < 0) {
			error = dk_archive__git_error(DK_EINVALID, "blob is damaged");
			goto cleanup;
		}
		if (git_odb_object_type(obj) != GIT_OBJECT_BLOB) {
			error = dk_error_set(DK_EINVALID, "archive: %s is not a file", hex);
			goto cleanup;
		}
		len = git_odb_object_size(obj);
		if ((error = hashes_start(&h, len)) < 0)
			goto cleanup;
		const char *data = git_odb_object_data(obj);
		for (size_t off = 0; off < len; off += DK_ARCHIVE_CHUNK) {
			size_t n = len - off < DK_ARCHIVE_CHUNK ? len - off : DK_ARCHIVE_CHUNK;
			if ((error = pass(&h, data + off, n, fn, payload)) < 0)
				goto cleanup;
		}
	}
	if ((error = hashes_finish(&h, id, sha256_out)) < 0)
		goto cleanup;
	if (size_out)
		*size_out = (int64_t)len;
cleanup:
	hashes_free(&h);
	free(buf);
	git_odb_object_free(obj);
	git_odb_stream_free(rs);
	git_odb_free(odb);
	return error;
}

int dk_archive_get_blob(dk_archive *a, const char *blob, dk_archive_write_fn fn, void *payload,
                        char sha256_out[65], int64_t *size_out)
{
	git_oid id;
	int error;
	if ((error = dk_archive__oid(&id, blob, "blob")) < 0)
		return error;
	return stream_oid(a, &id, fn, payload, sha256_out, size_out);
}

/* Resolves rev (NULL: the tip) of an instance into its commit. */
static int resolve_commit(git_commit **out, dk_archive *a, const char *instance, const char *rev)
{
	git_oid id;
	int error;
	*out = NULL;
	if (rev) {
		if ((error = dk_archive__oid(&id, rev, "commit")) < 0)
			return error;
	} else {
		error = dk_archive__tip(&id, a, instance);
		if (error == DK_ENOTFOUND)
			return dk_error_set(DK_ENOTFOUND,
			                    "instance '%s' has nothing in the archive", instance);
		if (error < 0)
			return error;
	}
	error = git_commit_lookup(out, a->repo, &id);
	if (error == GIT_ENOTFOUND)
		return dk_error_set(DK_ENOTFOUND, "archive: no commit %s",
		                    rev ? rev : "at the tip");
	if (error < 0)
		return dk_archive__git_error(DK_EINVALID, "cannot read the commit");
	return 0;
}

/* The blob at path in commit c: 0, DK_ENOTFOUND, or another error. */
static int blob_at(git_oid *out, git_commit *c, const char *path)
{
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	int error = 0, rc;
	if (git_commit_tree(&tree, c) < 0)
		return dk_archive__git_error(DK_EINVALID, "cannot read the commit's tree");
	rc = git_tree_entry_bypath(&e, tree, path);
	if (rc == GIT_ENOTFOUND || (rc == 0 && git_tree_entry_type(e) != GIT_OBJECT_BLOB))
		error = dk_error_set(DK_ENOTFOUND, "no file '%s' in the archive", path);
	else if (rc < 0)
		error = dk_archive__git_error(DK_EINVALID, "cannot read the tree");
	else
		git_oid_cpy(out, git_tree_entry_id(e));
	git_tree_entry_free(e);
	git_tree_free(tree);
	return error;
}

int dk_archive_get(dk_archive *a, const char *instance, const char *rev, const char *path,
                   dk_archive_write_fn fn, void *payload)
{
	git_commit *c = NULL;
	git_oid blob;
	int error;
	if ((error = dk_archive_check_instance(instance)) < 0)
		return error;
	if (!path || !*path)
		return dk_error_set(DK_EINVALID, "archive: no path given");
	if ((error = resolve_commit(&c, a, instance, rev)) < 0)
		goto cleanup;
	if ((error = blob_at(&blob, c, path)) < 0)
		goto cleanup;
	error = stream_oid(a, &blob, fn, payload, NULL, NULL);
cleanup:
	git_commit_free(c);
	return error;
}

/* ---- history ---------------------------------------------------------------- */

static const char *trailer(const git_message_trailer_array *t, const char *key)
{
	for (size_t i = 0; i < t->count; i++)
		if (!strcmp(t->trailers[i].key, key))
			return t->trailers[i].value;
	return "";
}

/* Builds the entry for commit c and calls fn. */
static int visit(dk_archive *a, git_commit *c, unsigned int flags, dk_archive_known_fn known,
                 dk_archive_entry_fn fn, void *payload)
{
	git_message_trailer_array t = {0};
	dk_archive_entry e;
	const git_signature *au = git_commit_author(c);
	char commit_hex[DK_ARCHIVE_OID_HEXSZ + 1], blob_hex[DK_ARCHIVE_OID_HEXSZ + 1] = "";
	char actual[65] = "";
	dk_buf path = DK_BUF_INIT, damage = DK_BUF_INIT;
	const char *size;
	int error = 0;

	memset(&e, 0, sizeof(e));
	git_oid_tostr(commit_hex, sizeof(commit_hex), git_commit_id(c));
	if (git_message_trailers(&t, git_commit_message(c)) < 0)
		return dk_archive__git_error(DK_EINVALID, "cannot read a commit message");
	e.commit = commit_hex;
	e.instance = trailer(&t, "Docket-Instance");
	e.flow = trailer(&t, "Docket-Flow");
	e.state = trailer(&t, "Docket-State");
	e.event = trailer(&t, "Docket-Event");
	e.actor = trailer(&t, "Docket-Actor");
	e.kind = trailer(&t, "Docket-Evidence");
	e.name = trailer(&t, "Docket-Name");
	e.sha256 = trailer(&t, "Docket-Sha256");
	e.transition = trailer(&t, "Docket-Transition");
	size = trailer(&t, "Docket-Size");
	e.size = *size ? strtoll(size, NULL, 10) : -1;
	e.time = (int64_t)au->when.time;
	e.author_name = au->name;
	e.author_email = au->email;
	e.path = e.blob = e.actual_sha256 = e.damage = "";
	e.actual_size = -1;
	if (!*e.instance)
		e.type = DK_ARCHIVE_OTHER;
	else if (*e.kind)
		e.type = DK_ARCHIVE_ATTACH;
	else
		e.type = DK_ARCHIVE_NOTE;

	if (e.type == DK_ARCHIVE_ATTACH) {
		git_oid blob;
		dk_buf_printf(&path, "%s/%s/%s", e.state, e.kind, e.name);
		e.path = path.ptr;
		int rc = blob_at(&blob, c, path.ptr);
		if (rc == 0) {
			git_oid_tostr(blob_hex, sizeof(blob_hex), &blob);
			e.blob = blob_hex;
		} else if (rc == DK_ENOTFOUND) {
			dk_buf_printf(&damage, "missing: %s is not in commit %.12s's tree", e.path,
			              commit_hex);
		} else {
			error = rc;
			goto cleanup;
		}
	}
	if (known) {
		/* only docket's own commits can be unrecorded */
		int k = e.type == DK_ARCHIVE_OTHER ? 1 : known(&e, payload);
		if (k < 0) {
			error = k;
			goto cleanup;
		}
		if (k > 0)
			goto cleanup; /* recorded: not reported */
	}
	if (e.type == DK_ARCHIVE_ATTACH) {
		git_oid blob;
		if ((flags & DK_ARCHIVE_WALK_HASH) && *e.blob &&
		    git_oid_fromstr(&blob, e.blob) == 0) {
			int rc = stream_oid(a, &blob, NULL, NULL, actual, &e.actual_size);
			if (rc == DK_ENOTFOUND) {
				dk_buf_printf(&damage, "missing: blob %s of %s is gone", blob_hex,
				              e.path);
				actual[0] = '\0';
			} else if (rc < 0) {
				dk_buf_printf(&damage, "altered: blob %s of %s is damaged",
				              blob_hex, e.path);
				actual[0] = '\0';
			} else if (strcmp(actual, e.sha256) != 0) {
				dk_buf_printf(&damage,
				              "altered: %s has SHA-256 %s, the commit recorded %s",
				              e.path, actual, *e.sha256 ? e.sha256 : "none");
			} else if (e.size >= 0 && e.actual_size != e.size) {
				dk_buf_printf(&damage,
				              "altered: %s is %lld bytes, the commit recorded %lld",
				              e.path, (long long)e.actual_size, (long long)e.size);
			}
			e.actual_sha256 = actual;
			dk_error_clear();
		}
	}
	e.damage = dk_buf_cstr(&damage);
	error = fn(&e, payload);
cleanup:
	git_message_trailer_array_free(&t);
	dk_buf_free(&path);
	dk_buf_free(&damage);
	return error;
}

static int walk(dk_archive *a, const char *instance, unsigned int flags, dk_archive_known_fn known,
                dk_archive_entry_fn fn, void *payload)
{
	git_revwalk *w = NULL;
	git_oid tip, id;
	int error, rc;

	error = dk_archive__tip(&tip, a, instance);
	if (error == DK_ENOTFOUND)
		return dk_error_set(DK_ENOTFOUND, "instance '%s' has nothing in the archive",
		                    instance);
	if (error < 0)
		return error;
	if (git_revwalk_new(&w, a->repo) < 0 ||
	    git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) < 0 ||
	    git_revwalk_push(w, &tip) < 0) {
		error = dk_archive__git_error(DK_EINVALID, "cannot walk the instance's history");
		goto cleanup;
	}
	while ((rc = git_revwalk_next(&id, w)) == 0) {
		git_commit *c = NULL;
		if (git_commit_lookup(&c, a->repo, &id) < 0) {
			error = dk_archive__git_error(DK_EINVALID, "cannot read a commit");
			goto cleanup;
		}
		error = visit(a, c, flags, known, fn, payload);
		git_commit_free(c);
		if (error < 0)
			goto cleanup;
	}
	if (rc != GIT_ITEROVER)
		error = dk_archive__git_error(DK_EINVALID, "cannot walk the instance's history");
cleanup:
	git_revwalk_free(w);
	return error;
}

int dk_archive_noted_seq(int64_t *seq, dk_archive *a, const char *instance)
{
	git_revwalk *w = NULL;
	git_oid tip, id;
	char prefix[DK_ARCHIVE_REFNAME_MAX + 2];
	size_t plen;
	int error, rc;

	*seq = 0;
	error = dk_archive__tip(&tip, a, instance);
	if (error == DK_ENOTFOUND)
		return 0;
	if (error < 0)
		return error;
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s:", instance);
	/* newest first: the first note met is the last one written */
	if (git_revwalk_new(&w, a->repo) < 0 || git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL) < 0 ||
	    git_revwalk_push(w, &tip) < 0) {
		error = dk_archive__git_error(DK_EINVALID, "cannot walk the instance's history");
		goto cleanup;
	}
	while ((rc = git_revwalk_next(&id, w)) == 0) {
		git_message_trailer_array t = {0};
		git_commit *c = NULL;
		const char *key;
		if (git_commit_lookup(&c, a->repo, &id) < 0) {
			error = dk_archive__git_error(DK_EINVALID, "cannot read a commit");
			goto cleanup;
		}
		if (git_message_trailers(&t, git_commit_message(c)) < 0) {
			git_commit_free(c);
			error = dk_archive__git_error(DK_EINVALID, "cannot read a commit message");
			goto cleanup;
		}
		key = trailer(&t, "Docket-Event");
		if (!strncmp(key, prefix, plen)) {
			char *end = NULL;
			long long v = strtoll(key + plen, &end, 10);
			if (end && !*end && v > 0)
				*seq = v;
		}
		git_message_trailer_array_free(&t);
		git_commit_free(c);
		if (*seq)
			goto cleanup;
	}
	if (rc != GIT_ITEROVER)
		error = dk_archive__git_error(DK_EINVALID, "cannot walk the instance's history");
cleanup:
	git_revwalk_free(w);
	return error;
}

int dk_archive_walk(dk_archive *a, const char *instance, unsigned int flags, dk_archive_entry_fn fn,
                    void *payload)
{
	return walk(a, instance, flags, NULL, fn, payload);
}

int dk_archive_unrecorded(dk_archive *a, const char *instance, unsigned int flags,
                          dk_archive_known_fn known, dk_archive_entry_fn fn, void *payload)
{
	return walk(a, instance, flags, known, fn, payload);
}

int dk_archive_reachable(dk_archive *a, const char *instance, const char *commit)
{
	git_oid tip, id;
	int error;
	if ((error = dk_archive__oid(&id, commit, "commit")) < 0)
		return error;
	error = dk_archive__tip(&tip, a, instance);
	if (error == DK_ENOTFOUND)
		return 0;
	if (error < 0)
		return error;
	if (git_oid_equal(&tip, &id))
		return 1;
	error = git_graph_descendant_of(a->repo, &tip, &id);
	if (error < 0) {
		/* An object the walk needs is gone: not reachable, and verify
		 * reports the commit as missing. */
		dk_error_clear();
		return 0;
	}
	return error;
}

typedef struct {
	char **names;
	size_t n, cap;
} name_list;

static int collect_ref(const char *refname, void *payload)
{
	name_list *l = payload;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->names = dk_realloc(l->names, l->cap * sizeof(*l->names));
	}
	l->names[l->n++] = dk_strdup(refname + strlen(DK_ARCHIVE_REF_PREFIX));
	return 0;
}

static int cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

int dk_archive_instances(dk_archive *a, int (*fn)(const char *instance, void *payload),
                         void *payload)
{
	name_list l = {NULL, 0, 0};
	int error = 0;
	if (git_reference_foreach_glob(a->repo, DK_ARCHIVE_REF_PREFIX "*", collect_ref, &l) < 0) {
		error = dk_archive__git_error(DK_EINVALID, "cannot list the instances");
		goto cleanup;
	}
	if (l.n)
		qsort(l.names, l.n, sizeof(*l.names), cmp_names);
	for (size_t i = 0; i < l.n && error == 0; i++)
		error = fn(l.names[i], payload);
cleanup:
	for (size_t i = 0; i < l.n; i++)
		free(l.names[i]);
	free(l.names);
	return error;
}
