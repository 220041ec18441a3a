/*
 * archive_tree.c - an upload's new trees, spliced from the bytes of the old
 * ones.
 *
 * An upload sets one path, STATE/KIND/NAME, so it rewrites three trees:
 * the root, the state's and the kind's, each with one entry added or
 * replaced. libgit2's git_tree_create_updated parses each old tree into
 * entries, fills a treebuilder's hash map with them, sorts them and prints
 * them again: about 100 us of an upload once a kind holds 200 files, a
 * tenth of the upload. Here each new tree is the old tree's bytes with the
 * one entry spliced in: the bytes before it, the entry, the bytes after.
 *
 * A raw tree is a run of entries "MODE SP NAME NUL ID" (ID 20 bytes, MODE
 * in octal without leading zeros as git writes it: "40000" a tree,
 * "100644" a file), sorted in git's order: names compared as bytes, a
 * tree's name as if it ended in '/' (so the file "a.pdf" sorts before the
 * tree "a" and the file "a0" after it). Each old tree is scanned once,
 * checked as it goes (every entry well formed, each after the one before
 * it in that order: what git fsck asks), and the new entry goes before the
 * first entry that sorts after it, or in the place of the entry of the
 * same name. The result is byte for byte what git_tree_create_updated
 * writes for the same update (tests/unit/test_archive.c checks it against
 * libgit2 on random uploads), including its refusals: an entry of the same
 * name but another type (a file where a state's or kind's directory
 * belongs, a directory where the file goes, possible only in an archive
 * written by hand) is refused rather than replaced, and so are names git
 * refuses in a tree (".git" and its spellings). Untouched entries keep
 * their bytes, as libgit2 keeps their modes.
 *
 * The old trees are read from the pack view (archive_pack.c), which holds
 * the trees of this handle's last uploads in memory, or else through its
 * odb, and the new ones written into it, so they go into the upload's
 * pack.
 */
#include "store/archive_priv.h"

#include "util/buf.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAWSZ 20 /* a SHA-1 id's bytes */

/* One entry of a raw tree. */
typedef struct {
	size_t start, end; /* its bytes, [start, end) */
	const char *name;
	size_t namelen;
	unsigned int mode;
	const unsigned char *id;
} entry;

/* git_object_t of an entry's mode, as libgit2's git_tree_entry_type. */
static git_object_t type_of(unsigned int mode)
{
	if ((mode & 0170000) == 0160000)
		return GIT_OBJECT_COMMIT;
	if ((mode & 0170000) == 0040000)
		return GIT_OBJECT_TREE;
	return GIT_OBJECT_BLOB;
}

/* What a tree entry of that type is, in words. */
static const char *what(git_object_t type)
{
	return type == GIT_OBJECT_TREE     ? "directory"
	       : type == GIT_OBJECT_COMMIT ? "submodule"
	                                   : "file";
}

/* git's order of tree entries (libgit2's git_fs_path_cmp): the names as
 * bytes, a directory's as if it ended in '/'. */
static int order(const char *a, size_t alen, int adir, const char *b, size_t blen, int bdir)
{
	size_t n = alen < blen ? alen : blen;
	int c = memcmp(a, b, n);
	unsigned int ca, cb;

	if (c)
		return c;
	ca = alen > n ? (unsigned char)a[n] : adir ? '/' : 0;
	cb = blen > n ? (unsigned char)b[n] : bdir ? '/' : 0;
	return ca < cb ? -1 : ca > cb;
}

/* Parses the entry at data[off] (off < len) into e: 0, or -1 when it is
 * not well formed. */
static int parse_entry(entry *e, const unsigned char *data, size_t len, size_t off)
{
	const unsigned char *p = data + off, *end = data + len, *nul;
	unsigned int mode = 0;
	size_t digits = 0;

	while (p < end && *p >= '0' && *p <= '7' && digits < 7) {
		mode = mode * 8 + (unsigned int)(*p++ - '0');
		digits++;
	}
	if (digits == 0 || p >= end || *p++ != ' ')
		return -1;
	nul = memchr(p, 0, (size_t)(end - p));
	if (!nul || nul == p || (size_t)(end - nul - 1) < RAWSZ)
		return -1;
	e->start = off;
	e->mode = mode;
	e->name = (const char *)p;
	e->namelen = (size_t)(nul - p);
	e->id = nul + 1;
	e->end = (size_t)(nul + 1 + RAWSZ - data);
	return 0;
}

/* Where the entry name (a directory when dir) goes in the raw tree data:
 * [*at, *end) are the bytes it replaces (empty: it is inserted at *at);
 * *same points at the replaced entry's id (NULL when there is none).
 * DK_EINTERNAL when the tree is damaged or not in git's order,
 * DK_ECONFLICT when it holds the name as another type. */
static int locate(size_t *at, size_t *end, const unsigned char **same, const git_oid *tree,
                  const unsigned char *data, size_t len, const char *name, size_t namelen,
                  git_object_t type)
{
	int dir = type == GIT_OBJECT_TREE, placed = 0;
	entry e, prev = {0};
	char hex[GIT_OID_HEXSZ + 1];

	*at = *end = len;
	*same = NULL;
	for (size_t off = 0; off < len; off = e.end) {
		int c;
		if (parse_entry(&e, data, len, off) < 0) {
			git_oid_tostr(hex, sizeof(hex), tree);
			return dk_error_set(DK_EINTERNAL,
			                    "archive: tree %s is damaged at byte %zu; run git fsck "
			                    "on the archive",
			                    hex, off);
		}
		if (off > 0 && order(prev.name, prev.namelen, type_of(prev.mode) == GIT_OBJECT_TREE,
		                     e.name, e.namelen, type_of(e.mode) == GIT_OBJECT_TREE) >= 0) {
			git_oid_tostr(hex, sizeof(hex), tree);
			return dk_error_set(DK_EINTERNAL,
			                    "archive: tree %s is not in git's order at '%.*s' "
			                    "(written by hand?); git fsck --strict names it",
			                    hex, (int)e.namelen, e.name);
		}
		prev = e;
		if (e.namelen == namelen && memcmp(e.name, name, namelen) == 0) {
			if (type_of(e.mode) != type) {
				git_oid_tostr(hex, sizeof(hex), tree);
				return dk_error_set(
				    DK_ECONFLICT,
				    "archive: '%s' is a %s in tree %s where docket keeps a %s "
				    "(was the archive written by hand?); move it away with git "
				    "and try again",
				    name, what(type_of(e.mode)), hex, what(type));
			}
			*at = e.start;
			*end = e.end;
			*same = e.id;
			placed = 1;
			continue;
		}
		c = order(e.name, e.namelen, type_of(e.mode) == GIT_OBJECT_TREE, name, namelen,
		          dir);
		if (c > 0 && !placed) {
			*at = *end = e.start;
			placed = 1;
		}
	}
	return 0;
}

/* git refuses some names in a tree (".git" and what NTFS or HFS+ read as
 * it, "." and ".."); every one of them starts with '.', 'g', 'G' or (HFS+
 * ignores some invisible code points) the lead byte of U+200C-U+206F or
 * U+FEFF. Those few are put to libgit2's own check, through a tree builder
 * (whose insert checks the name as git_tree_create_updated does); the
 * rest pass without it. */
static int check_names(git_repository *repo, const char *const *names, size_t n,
                       const git_oid *blob)
{
	git_treebuilder *tb = NULL;
	int error = 0;

	for (size_t i = 0; i < n && error == 0; i++) {
		unsigned char c = (unsigned char)names[i][0];
		if (c != '.' && c != 'g' && c != 'G' && c != 0xe2 && c != 0xef)
			continue;
		if (!tb && git_treebuilder_new(&tb, repo, NULL) < 0)
			error = dk_archive__git_error(DK_EINTERNAL, "cannot check a name");
		else if (git_treebuilder_insert(NULL, tb, names[i], blob, GIT_FILEMODE_BLOB) < 0) {
			const git_error *e = git_error_last();
			error = dk_error_set(
			    DK_EINVALID,
			    "'%s' is a name git does not allow in a tree (%s); pick "
			    "another one with --name",
			    names[i], e && e->message ? e->message : "it reads as .git");
		}
	}
	git_treebuilder_free(tb);
	return error;
}

int dk_archive__tree_put(git_oid *out, dk_archive *a, const git_oid *root, const char *const *names,
                         size_t n, const git_oid *blob)
{
	git_repository *repo = NULL;
	git_odb *odb = NULL;
	git_odb_object *obj[DK_ARCHIVE_TREE_DEPTH] = {NULL};
	const unsigned char *old[DK_ARCHIVE_TREE_DEPTH] = {NULL};
	size_t oldlen[DK_ARCHIVE_TREE_DEPTH] = {0};
	size_t at[DK_ARCHIVE_TREE_DEPTH], end[DK_ARCHIVE_TREE_DEPTH];
	git_oid ids[DK_ARCHIVE_TREE_DEPTH], child;
	int found[DK_ARCHIVE_TREE_DEPTH] = {0};
	unsigned char *buf = NULL;
	size_t cap = 0;
	int error = 0;

	if (n == 0 || n > DK_ARCHIVE_TREE_DEPTH)
		return dk_error_set(DK_EINTERNAL, "archive: a path of %zu names", n);
	if ((error = dk_archive__pack_repo(&repo, a)) < 0 ||
	    (error = check_names(repo, names, n, blob)) < 0)
		return error;
	if (git_repository_odb(&odb, repo) < 0)
		return dk_archive__git_error(DK_EINTERNAL, "cannot read the trees");

	/* Down: each level's old tree (none below a name that is new) and
	 * where its entry goes. */
	for (size_t l = 0; l < n; l++) {
		const unsigned char *same = NULL;
		git_object_t type = l + 1 < n ? GIT_OBJECT_TREE : GIT_OBJECT_BLOB, otype;
		at[l] = end[l] = 0;
		if (l == 0 && root)
			git_oid_cpy(&ids[0], root);
		else if (l == 0 || !found[l - 1])
			continue; /* a new tree */
		/* The trees the last upload wrote are in memory (and were
		 * hashed as they were written: git_odb_read would hash them
		 * again); others come through the odb. */
		if (!dk_archive__pack_peek(a, &ids[l], (const void **)&old[l], &oldlen[l],
		                           &otype)) {
			if (git_odb_read(&obj[l], odb, &ids[l]) < 0) {
				error = dk_archive__git_error(DK_EINTERNAL, "cannot read a tree");
				goto cleanup;
			}
			old[l] = git_odb_object_data(obj[l]);
			oldlen[l] = git_odb_object_size(obj[l]);
			otype = git_odb_object_type(obj[l]);
		}
		if (otype != GIT_OBJECT_TREE) {
			char hex[GIT_OID_HEXSZ + 1];
			git_oid_tostr(hex, sizeof(hex), &ids[l]);
			error =
			    dk_error_set(DK_EINTERNAL,
			                 "archive: %s is named as a tree but is not one; run git "
			                 "fsck on the archive",
			                 hex);
			goto cleanup;
		}
		if ((error = locate(&at[l], &end[l], &same, &ids[l], old[l], oldlen[l], names[l],
		                    strlen(names[l]), type)) < 0)
			goto cleanup;
		found[l] = same != NULL;
		if (same && l + 1 < n)
			memcpy(ids[l + 1].id, same, RAWSZ);
	}

	/* Up: each new tree is its old bytes with the entry naming the level
	 * below (the blob at the bottom) spliced in. */
	git_oid_cpy(&child, blob);
	for (size_t l = n; l-- > 0;) {
		const char *mode = l + 1 < n ? "40000" : "100644";
		size_t mlen = strlen(mode), namelen = strlen(names[l]);
		size_t elen = mlen + 1 + namelen + 1 + RAWSZ;
		size_t len = oldlen[l] - (end[l] - at[l]) + elen;
		unsigned char *p;

		if (!buf || len > cap) {
			cap = len;
			buf = dk_realloc(buf, cap);
		}
		p = buf;
		if (at[l]) {
			memcpy(p, old[l], at[l]);
			p += at[l];
		}
		for (size_t i = 0; i < mlen; i++) /* the mode's digits, no NUL */
			*p++ = (unsigned char)mode[i];
		*p++ = ' ';
		memcpy(p, names[l], namelen);
		p += namelen;
		*p++ = '\0';
		memcpy(p, child.id, RAWSZ);
		p += RAWSZ;
		if (oldlen[l] > end[l])
			memcpy(p, old[l] + end[l], oldlen[l] - end[l]);
		if (git_odb_write(&child, odb, buf, len, GIT_OBJECT_TREE) < 0) {
			error = dk_archive__git_error(DK_EINTERNAL, "cannot write the tree");
			goto cleanup;
		}
	}
	git_oid_cpy(out, &child);
cleanup:
	for (size_t l = 0; l < n; l++)
		git_odb_object_free(obj[l]);
	git_odb_free(odb);
	free(buf);
	return error;
}
