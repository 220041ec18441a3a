/* test_archive.c - the git evidence archive: uploads, names, notes, history,
 * concurrency, stale locks, packing, push, and plain git reading it all. */
#include "store/archive.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>
#include <git2.h>
#include <git2/sys/mempack.h>

#include "tests/unit/archive_fixture.h"

static int journal_intents(const char *home);

static int setup(void **state)
{
	return fixture_setup(state, "archive");
}

static char *write_temp(fixture *f, const char *name, const void *data, size_t len)
{
	static char path[600];
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	if (len)
		assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
	return path;
}

static dk_archive_put_opts opts_for(const char *instance, const char *kind, const char *name)
{
	dk_archive_put_opts o = DK_ARCHIVE_PUT_OPTS_INIT;
	o.instance = instance;
	o.flow = "monthly-plan@1";
	o.state = "draft";
	o.kind = kind;
	o.name = name;
	o.event = "ev-1";
	o.actor = "li";
	o.author_name = "李明";
	o.author_email = "li@example.com";
	o.time = T0;
	return o;
}

static int to_buf(const void *data, size_t len, void *payload)
{
	dk_buf_put(payload, data, len);
	return 0;
}

/* Runs a shell command, returns its stdout (caller frees) and status. */
static char *run(int *status, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	dk_buf out = DK_BUF_INIT;
	char chunk[4096];
	size_t n;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
		dk_buf_put(&out, chunk, n);
	int st = pclose(p);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	dk_buf_puts(&out, "");
	return dk_buf_detach(&out);
}

static size_t count_loose(fixture *f)
{
	int st;
	char *s = run(
	    &st,
	    "find '%s/archive.git/objects' -type f -path '*/objects/[0-9a-f][0-9a-f]/*' | wc -l",
	    f->home);
	size_t n = strtoul(s, NULL, 10);
	free(s);
	return n;
}

/* Turns every pack of the archive into loose objects (plain git's
 * unpack-objects, the pack moved away first so that it writes them all),
 * for tests that tamper with one object's file; reopens f->a. */
static void explode(fixture *f)
{
	int st;
	free(run(
	    &st,
	    "cd '%s/archive.git' && for p in objects/pack/*.pack; do [ -f \"$p\" ] || continue; "
	    "mv \"$p\" ../exploding.pack && rm -f \"${p%%.pack}.idx\" && "
	    "git --git-dir=. unpack-objects -q < ../exploding.pack && rm -f ../exploding.pack; "
	    "done",
	    f->home));
	assert_int_equal(st, 0);
	/* a fresh handle: the old one still maps the packs moved away */
	dk_archive_free(f->a);
	f->a = NULL;
	assert_int_equal(dk_archive_open(&f->a, f->home), 0);
}

/* ---- names ------------------------------------------------------------------ */

static void names_hostile_refused(void **state)
{
	static const char *bad[] = {
	    "",
	    ".",
	    "..",
	    "../etc/passwd",
	    "/etc/passwd",
	    "a/b.pdf",
	    "a\\b.pdf",
	    "C:\\x.pdf",
	    ".git",
	    ".GIT",
	    "Git~1",
	    "tab\there.pdf",
	    "nl\nx.pdf",
	    "del\x7f.pdf",
	    "c1\xc2\x85.pdf",
	    " lead.pdf",
	    "trail.pdf ",
	    "dot.",
	    "bad\xff.pdf",
	    "overlong\xc0\xaf.pdf",
	    "surrogate\xed\xa0\x80.pdf",
	    "report\xe2\x80\xae"
	    "fdp.exe",
	};
	char *out = NULL;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (dk_archive_safe_name(&out, bad[i]) != DK_EINVALID)
			fail_msg("name #%zu '%s' was accepted", i, bad[i]);
		assert_null(out);
		assert_true(strlen(dk_error_last()) > 10);
	}
	char longname[300];
	memset(longname, 'a', 256);
	strcpy(longname + 256, ".pdf");
	assert_int_equal(dk_archive_safe_name(NULL, longname), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "--name"));
}

static void names_unicode_kept(void **state)
{
	static const char *good[] = {"月度工作计划.pdf", "отчёт 2026.xlsx",       ".env",
	                             "a..b.pdf",         "Ωmega (final) #2.docx", "x"};
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *out = NULL;
		assert_int_equal(dk_archive_safe_name(&out, good[i]), 0);
		assert_string_equal(out, good[i]);
		free(out);
	}
	/* 255 bytes of three-byte characters plus nothing more is fine */
	char name[256] = "";
	for (int i = 0; i < 85; i++)
		strcat(name, "计");
	assert_int_equal(strlen(name), 255);
	assert_int_equal(dk_archive_safe_name(NULL, name), 0);
}

static void instance_ids(void **state)
{
	(void)state;
	assert_int_equal(dk_archive_check_instance("i-42"), 0);
	assert_int_equal(dk_archive_check_instance("a/b"), DK_EINVALID);
	assert_int_equal(dk_archive_check_instance("x.lock"), DK_EINVALID);
	assert_int_equal(dk_archive_check_instance("a..b"), DK_EINVALID);
	assert_int_equal(dk_archive_check_instance(""), DK_EINVALID);
	assert_int_equal(dk_archive_check_instance("-x"), DK_EINVALID);
	char k1[37], k2[37];
	dk_archive_event_key(k1);
	dk_archive_event_key(k2);
	assert_int_equal(strlen(k1), 36);
	assert_string_not_equal(k1, k2);
}

/* ---- uploads ---------------------------------------------------------------- */

static void put_small_round_trip(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r0, r1, r2;
	dk_archive_put_opts o;
	dk_buf got = DK_BUF_INIT;
	char sha[65];

	o = opts_for("i-1", "plan", "empty.pdf");
	assert_int_equal(dk_archive_put_file(&r0, f->a, &o, write_temp(f, "e", "", 0)), 0);
	assert_int_equal(r0.size, 0);
	assert_string_equal(r0.sha256,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_string_equal(r0.blob, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
	assert_string_equal(r0.parent, "");

	o = opts_for("i-1", "plan", "one.pdf");
	assert_int_equal(dk_archive_put_file(&r1, f->a, &o, write_temp(f, "o", "x", 1)), 0);
	assert_int_equal(r1.size, 1);
	assert_string_equal(r1.parent, r0.commit);
	dk_sha256_hex(sha, "x", 1);
	assert_string_equal(r1.sha256, sha);

	const char *zh = "二〇二六年十一月 工作计划：销售公司";
	o = opts_for("i-1", "plan", "月度工作计划.pdf");
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, write_temp(f, "zh", zh, strlen(zh))),
	                 0);
	assert_string_equal(r2.parent, r1.commit);

	/* every file is in the tip's tree, byte-exact */
	assert_int_equal(dk_archive_get(f->a, "i-1", NULL, "draft/plan/empty.pdf", to_buf, &got),
	                 0);
	assert_int_equal(got.len, 0);
	assert_int_equal(dk_archive_get(f->a, "i-1", NULL, "draft/plan/one.pdf", to_buf, &got), 0);
	assert_int_equal(got.len, 1);
	assert_memory_equal(got.ptr, "x", 1);
	dk_buf_clear(&got);
	assert_int_equal(
	    dk_archive_get(f->a, "i-1", NULL, "draft/plan/月度工作计划.pdf", to_buf, &got), 0);
	assert_int_equal(got.len, strlen(zh));
	assert_memory_equal(got.ptr, zh, strlen(zh));
	/* an older commit does not have the later file */
	dk_buf_clear(&got);
	assert_int_equal(dk_archive_get(f->a, "i-1", r0.commit, "draft/plan/one.pdf", to_buf, &got),
	                 DK_ENOTFOUND);
	assert_int_equal(dk_archive_get(f->a, "i-2", NULL, "draft/plan/one.pdf", to_buf, &got),
	                 DK_ENOTFOUND);
	/* by blob id, with its SHA-256 */
	int64_t size;
	assert_int_equal(dk_archive_get_blob(f->a, r1.blob, NULL, NULL, sha, &size), 0);
	assert_string_equal(sha, r1.sha256);
	assert_int_equal(size, 1);
	dk_buf_free(&got);
}

/* Two handles take turns on one instance: each keeps the commits and trees
 * of its own last upload in memory (archive_pack.c, recent), and must
 * still build on the tip the other one moved the ref to. */
static void handles_take_turns(void **state)
{
	fixture *f = *state;
	dk_archive *b = NULL;
	dk_archive_put_result r[4];
	dk_archive_put_opts o;
	dk_buf got = DK_BUF_INIT;
	char name[32], file[32];

	assert_int_equal(dk_archive_open(&b, f->home), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "week-%d.pdf", i);
		snprintf(file, sizeof(file), "w%d", i);
		o = opts_for("i-1", "plan", name);
		assert_int_equal(
		    dk_archive_put_file(&r[i], i % 2 ? b : f->a, &o, write_temp(f, file, name, 10)),
		    0);
		assert_string_equal(r[i].parent, i ? r[i - 1].commit : "");
	}
	for (int i = 0; i < 4; i++) {
		char path[64];
		snprintf(path, sizeof(path), "draft/plan/week-%d.pdf", i);
		dk_buf_clear(&got);
		assert_int_equal(dk_archive_get(b, "i-1", NULL, path, to_buf, &got), 0);
		assert_int_equal(got.len, 10);
		assert_memory_equal(got.ptr, path + strlen("draft/plan/"), 10);
	}
	dk_buf_free(&got);
	dk_archive_free(b);
}

static void put_same_name_replaces_path_keeps_history(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2;
	dk_archive_put_opts o = opts_for("i-1", "plan", "plan.pdf");
	dk_buf got = DK_BUF_INIT;
	assert_int_equal(dk_archive_put_file(&r1, f->a, &o, write_temp(f, "a", "v1", 2)), 0);
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, write_temp(f, "a", "v2!", 3)), 0);
	assert_int_equal(dk_archive_get(f->a, "i-1", NULL, "draft/plan/plan.pdf", to_buf, &got), 0);
	assert_int_equal(got.len, 3);
	dk_buf_clear(&got);
	assert_int_equal(
	    dk_archive_get(f->a, "i-1", r1.commit, "draft/plan/plan.pdf", to_buf, &got), 0);
	assert_int_equal(got.len, 2);
	assert_memory_equal(got.ptr, "v1", 2);
	dk_buf_free(&got);
}

/* Deterministic bytes that do not compress (so the object is as big as the
 * file), written 64 KiB at a time. */
static void write_big(const char *path, size_t size, char sha_out[65])
{
	FILE *fp = fopen(path, "wb");
	unsigned char buf[65536];
	uint64_t x = 88172645463325252ull;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[32];
	unsigned int dl;
	assert_non_null(fp);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (unsigned char)x;
		}
		assert_int_equal(fwrite(buf, 1, n, fp), n);
		EVP_DigestUpdate(md, buf, n);
		done += n;
	}
	fclose(fp);
	EVP_DigestFinal_ex(md, d, &dl);
	for (int i = 0; i < 32; i++)
		snprintf(sha_out + 2 * i, 3, "%02x", d[i]);
	EVP_MD_CTX_free(md);
}

typedef struct {
	EVP_MD_CTX *md;
	size_t len, calls, max_chunk;
} hash_sink;

static int to_hash(const void *data, size_t len, void *payload)
{
	hash_sink *h = payload;
	EVP_DigestUpdate(h->md, data, len);
	h->len += len;
	h->calls++;
	if (len > h->max_chunk)
		h->max_chunk = len;
	return 0;
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* 50 MB in and out. The put must not hold the file whole: peak RSS may
 * not grow by anything near 50 MB while it runs (the file is only ever
 * read in 64 KiB chunks; the get streams it back in chunks as well). */
static void put_50mb_streamed(void **state)
{
	fixture *f = *state;
	const size_t size = 50u * 1000 * 1000;
	char path[600], want[65], got_hex[65];
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-big", "scan", "大文件.bin");
	hash_sink h = {EVP_MD_CTX_new(), 0, 0, 0};
	unsigned char d[32];
	unsigned int dl;

	snprintf(path, sizeof(path), "%s/big", f->dir);
	write_big(path, size, want);
	long before = maxrss_kb();
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, path), 0);
	long grew_mb = (maxrss_kb() - before) / 1024;
	print_message("# 50 MB put: peak RSS grew by %ld MB\n", grew_mb);
	assert_true(grew_mb < 25);
	assert_int_equal(r.size, (int64_t)size);
	assert_string_equal(r.sha256, want);

	EVP_DigestInit_ex(h.md, EVP_sha256(), NULL);
	assert_int_equal(dk_archive_get(f->a, "i-big", NULL, "draft/scan/大文件.bin", to_hash, &h),
	                 0);
	EVP_DigestFinal_ex(h.md, d, &dl);
	for (int i = 0; i < 32; i++)
		snprintf(got_hex + 2 * i, 3, "%02x", d[i]);
	assert_int_equal(h.len, size);
	assert_string_equal(got_hex, want);
	assert_true(h.calls > 700); /* streamed in chunks, not one piece */
	assert_true(h.max_chunk <= 65536);
	/* gc keeps such a blob loose, so it still streams afterwards */
	dk_archive_gc_result g;
	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_int_equal(g.kept_loose, 1);
	h.len = h.calls = h.max_chunk = 0;
	EVP_DigestInit_ex(h.md, EVP_sha256(), NULL);
	assert_int_equal(dk_archive_get_blob(f->a, r.blob, to_hash, &h, got_hex, NULL), 0);
	assert_string_equal(got_hex, want);
	assert_true(h.max_chunk <= 65536);
	EVP_MD_CTX_free(h.md);
}

/* A small upload is one pack: its blob in stored blocks when it does not
 * compress (no deflate time spent on it), deflated when it does; plain git
 * reads both back byte for byte. */
static void put_small_stored_or_deflated(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2;
	dk_archive_put_opts o = opts_for("i-small", "scan", "noise.pdf");
	char noise[600], text[600], want[65], *s;
	int status;

	snprintf(noise, sizeof(noise), "%s/noise", f->dir);
	write_big(noise, 64 * 1024, want);
	assert_int_equal(dk_archive_put_file(&r1, f->a, &o, noise), 0);
	assert_string_equal(r1.sha256, want);
	static char a[64 * 1024];
	memset(a, 'a', sizeof(a));
	/* a long name that deflate would shrink, so that its tree would be
	 * smaller in the pack were it deflated */
	char name[256] = "";
	for (int k = 0; k < 60; k++)
		strcat(name, "text");
	strcat(name, ".pdf");
	o.name = name;
	snprintf(text, sizeof(text), "%s", write_temp(f, "text", a, sizeof(a)));
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, text), 0);
	/* the packs: one of about 64 KiB (the noise, stored), one small (the
	 * text, deflated) */
	s = run(&status,
	        "ls -S '%s/archive.git/objects/pack/' | grep '\\.pack$' | "
	        "while read p; do stat -c %%s '%s/archive.git/objects/pack/'$p; done",
	        f->home, f->home);
	assert_int_equal(status, 0);
	long big = strtol(s, NULL, 10), small = strtol(strchr(s, '\n') + 1, NULL, 10);
	free(s);
	assert_true(big > 64 * 1024 && big < 64 * 1024 + 2048);
	assert_true(small < 4096);
	s = run(&status,
	        "git --git-dir='%s/archive.git' cat-file blob %s | cmp - '%s' && "
	        "git --git-dir='%s/archive.git' cat-file blob %s | cmp - '%s' && echo same",
	        f->home, r1.blob, noise, f->home, r2.blob, text);
	assert_string_equal(s, "same\n");
	free(s);
	/* trees in stored blocks: in git verify-pack -v's lines (id type size
	 * size-in-pack offset), no tree takes fewer bytes in the pack than
	 * its size, and every commit fewer (its message deflated) */
	s = run(&status,
	        "for i in '%s'/archive.git/objects/pack/*.idx; do "
	        "git --git-dir='%s/archive.git' verify-pack -v \"$i\"; done | "
	        "awk '$2 == \"tree\" { t++; if ($4 < $3) bad++ } "
	        "$2 == \"commit\" { c++; if ($4 >= $3) bad++ } "
	        "END { print t + 0, c + 0, bad + 0 }'",
	        f->home, f->home);
	assert_int_equal(status, 0);
	/* 3 trees an upload (a first upload writes no empty tree to start
	 * from: its trees are new one-entry trees, archive_tree.c) */
	assert_string_equal(s, "6 2 0\n");
	free(s);
	free(run(&status, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(status, 0);
}

/* Big files take one of two ways into a loose object: one that does not
 * compress in stored deflate blocks (archive_raw.c), one that does
 * deflated by libgit2. Both must read back byte-exact through docket and
 * through a plain git (cat-file, fsck), the first at its own size, the
 * second much smaller, and a stored one already there must not be
 * written twice. */
static void put_big_stored_or_deflated(void **state)
{
	fixture *f = *state;
	const size_t size = 3u * 1024 * 1024 + 17;
	char path[600], want[65], blob_path[900], *s;
	dk_archive_put_result r, r2;
	dk_archive_put_opts o = opts_for("i-raw", "scan", "scan.pdf");
	struct stat st;
	int status;

	snprintf(path, sizeof(path), "%s/random", f->dir);
	write_big(path, size, want);
	o.event = "ev-raw-1";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, path), 0);
	assert_string_equal(r.sha256, want);
	snprintf(blob_path, sizeof(blob_path), "%s/archive.git/objects/%.2s/%s", f->home, r.blob,
	         r.blob + 2);
	assert_int_equal(stat(blob_path, &st), 0);
	/* stored blocks: the bytes, the header and 5 bytes per 64 KiB */
	assert_true(st.st_size > (off_t)size && st.st_size < (off_t)size + 1024);
	assert_int_equal(st.st_mode & 0777, 0444);
	s = run(&status,
	        "git --git-dir='%s/archive.git' cat-file blob %s | cmp - '%s' && echo same",
	        f->home, r.blob, path);
	assert_int_equal(status, 0);
	assert_string_equal(s, "same\n");
	free(s);
	s = run(&status, "git --git-dir='%s/archive.git' hash-object '%s'", f->home, path);
	assert_int_equal(status, 0);
	assert_memory_equal(s, r.blob, 40);
	free(s);

	/* the same bytes again under another name: the object is not rewritten */
	o.name = "again.pdf";
	o.event = "ev-raw-2";
	ino_t before = st.st_ino;
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, path), 0);
	assert_string_equal(r2.blob, r.blob);
	assert_int_equal(stat(blob_path, &st), 0);
	assert_int_equal(st.st_ino, before);

	/* text compresses: deflated, as git would */
	FILE *fp;
	snprintf(path, sizeof(path), "%s/text", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 100000; i++)
		fprintf(fp, "row %d,plan,li,2026-11-%02d,%d\n", i, i % 28 + 1, i * 7);
	fclose(fp);
	o.name = "rows.csv";
	o.event = "ev-raw-3";
	o.ntypes = 0;
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, path), 0);
	snprintf(blob_path, sizeof(blob_path), "%s/archive.git/objects/%.2s/%s", f->home, r.blob,
	         r.blob + 2);
	assert_int_equal(stat(blob_path, &st), 0);
	assert_true(st.st_size < (off_t)r.size / 2);
	s = run(&status,
	        "git --git-dir='%s/archive.git' cat-file blob %s | cmp - '%s' && echo same",
	        f->home, r.blob, path);
	assert_int_equal(status, 0);
	assert_string_equal(s, "same\n");
	free(s);
	s = run(&status, "git --git-dir='%s/archive.git' fsck --full --no-dangling 2>&1", f->home);
	assert_int_equal(status, 0);
	free(s);
	s = run(&status, "ls '%s/archive.git/objects' | grep -c tmp_object", f->home);
	assert_string_equal(s, "0\n");
	free(s);
}

static void put_from_pipe(void **state)
{
	fixture *f = *state;
	int p[2];
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-pipe", "plan", "piped.pdf");
	char sha[65];
	dk_buf got = DK_BUF_INIT;
	const char *text = "bytes through a pipe, size unknown up front\n";
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], text, strlen(text)), (ssize_t)strlen(text));
	close(p[1]);
	assert_int_equal(dk_archive_put(&r, f->a, &o, p[0]), 0);
	close(p[0]);
	dk_sha256_hex(sha, text, strlen(text));
	assert_string_equal(r.sha256, sha);
	assert_int_equal(dk_archive_get(f->a, "i-pipe", NULL, "draft/plan/piped.pdf", to_buf, &got),
	                 0);
	assert_string_equal(dk_buf_cstr(&got), text);
	dk_buf_free(&got);
}

static void put_oversize_leaves_nothing(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-1", "plan", "plan.pdf");
	char tip[41], tip2[41];
	char *big = calloc(1, 2000);
	int p[2];

	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "s", "ok", 2)), 0);
	assert_int_equal(dk_archive_tip(tip, f->a, "i-1"), 0);
	size_t loose = count_loose(f);

	o.max_size = 1024;
	o.name = "big.pdf";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "b", big, 2000)),
	                 DK_EINVALID);
	assert_string_equal(dk_error_last(), "file is 2 KB; evidence 'plan' accepts at most 1 KB");
	/* through a pipe the size is found while streaming */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], big, 2000), 2000);
	close(p[1]);
	assert_int_equal(dk_archive_put(&r, f->a, &o, p[0]), DK_EINVALID);
	close(p[0]);
	assert_non_null(strstr(dk_error_last(), "accepts at most 1 KB"));
	/* a new ref is not created either */
	o.instance = "i-new";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "b", big, 2000)),
	                 DK_EINVALID);
	assert_int_equal(dk_archive_tip(tip2, f->a, "i-new"), DK_ENOTFOUND);

	assert_int_equal(dk_archive_tip(tip2, f->a, "i-1"), 0);
	assert_string_equal(tip, tip2);
	assert_int_equal(count_loose(f), loose);
	int st;
	char *tmp = run(&st, "ls '%s/archive.git/objects' | grep -c -e tmp_ -e streamed", f->home);
	assert_int_equal(atoi(tmp), 0);
	free(tmp);

	/* the 25.3 MB message of the issue, without writing 25 MB */
	o.max_size = 20 * 1024 * 1024;
	assert_int_equal(dk_archive_put_check(&o, (int64_t)(25.3 * 1024 * 1024)), DK_EINVALID);
	assert_string_equal(dk_error_last(),
	                    "file is 25.3 MB; evidence 'plan' accepts at most 20 MB");
	/* one byte over does not read "20 MB > 20 MB" */
	assert_int_equal(dk_archive_put_check(&o, 20 * 1024 * 1024 + 1), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "20971521 bytes"));
	free(big);
}

static void put_types_checked(void **state)
{
	fixture *f = *state;
	static const char *const types[] = {"pdf", "docx", "xlsx"};
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-1", "plan", "virus.exe");
	o.types = types;
	o.ntypes = 3;
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "t", "MZ", 2)),
	                 DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "accepts only pdf, docx, xlsx"));
	o.name = "README";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "t", "MZ", 2)),
	                 DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "no extension"));
	assert_int_equal(dk_archive_tip(r.commit, f->a, "i-1"), DK_ENOTFOUND);
	o.name = "Plan.PDF";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "t", "%PDF", 4)), 0);
	/* hostile names and bad opts never reach the object database */
	o.name = "../../x.pdf";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "t", "%PDF", 4)),
	                 DK_EINVALID);
	o.name = "ok.pdf";
	o.state = "..";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "t", "%PDF", 4)),
	                 DK_EINVALID);
	o.state = "draft";
	o.flow = "evil\nDocket-Sha256: forged";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "t", "%PDF", 4)),
	                 DK_EINVALID);
	o.flow = "monthly-plan@1";
	o.instance = "../../HEAD";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "t", "%PDF", 4)),
	                 DK_EINVALID);
	o.instance = "i-1";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, "/nonexistent/file.pdf"), DK_ENOTFOUND);
}

/* ---- history ------------------------------------------------------------------ */

typedef struct {
	int n;
	dk_archive_entry_type types[16];
	char commits[16][41];
	char events[16][64];
	char damage[16][200];
	char paths[16][200];
	char actual[16][65];
} walk_log;

static int log_entry(const dk_archive_entry *e, void *payload)
{
	walk_log *l = payload;
	assert_true(l->n < 16);
	l->types[l->n] = e->type;
	snprintf(l->commits[l->n], 41, "%s", e->commit);
	snprintf(l->events[l->n], 64, "%s", e->event);
	snprintf(l->damage[l->n], 200, "%s", e->damage);
	snprintf(l->paths[l->n], 200, "%s", e->path);
	snprintf(l->actual[l->n], 65, "%s", e->actual_sha256);
	if (e->type == DK_ARCHIVE_ATTACH) {
		assert_string_equal(e->instance, "i-1");
		assert_string_equal(e->flow, "monthly-plan@1");
		assert_string_equal(e->actor, "li");
		assert_string_equal(e->author_name, "李明");
		assert_string_equal(e->author_email, "li@example.com");
		assert_int_equal(e->time, T0);
		assert_int_equal(strlen(e->sha256), 64);
	}
	l->n++;
	return 0;
}

static void note_and_walk(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-1", "plan", "plan.pdf");
	dk_archive_note_opts n = DK_ARCHIVE_NOTE_OPTS_INIT;
	char c1[41], c2[41];
	walk_log l;

	n.instance = "i-1";
	n.flow = "monthly-plan@1";
	n.state = "draft";
	n.transition = "start";
	n.event = "ev-start";
	n.actor = "li";
	n.time = T0;
	assert_int_equal(dk_archive_note(c1, f->a, &n), 0);
	o.event = "ev-up";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "p", "%PDF-1.7", 8)), 0);
	assert_string_equal(r.parent, c1);
	n.from_state = "draft";
	n.state = "review";
	n.transition = "submit";
	n.event = "ev-submit";
	n.comment = "please look\n---\nat section 2";
	n.author_name = "Li <evil>";
	assert_int_equal(dk_archive_note(c2, f->a, &n), 0);

	memset(&l, 0, sizeof(l));
	assert_int_equal(dk_archive_walk(f->a, "i-1", DK_ARCHIVE_WALK_HASH, log_entry, &l), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.types[0], DK_ARCHIVE_NOTE);
	assert_int_equal(l.types[1], DK_ARCHIVE_ATTACH);
	assert_int_equal(l.types[2], DK_ARCHIVE_NOTE);
	assert_string_equal(l.commits[0], c1);
	assert_string_equal(l.commits[1], r.commit);
	assert_string_equal(l.commits[2], c2);
	assert_string_equal(l.events[2], "ev-submit"); /* trailers survived the "---" */
	assert_string_equal(l.paths[1], "draft/plan/plan.pdf");
	assert_string_equal(l.actual[1], r.sha256);
	assert_string_equal(l.damage[1], "");
	assert_int_equal(dk_archive_reachable(f->a, "i-1", c1), 1);
	assert_int_equal(dk_archive_reachable(f->a, "i-1", r.blob), 0);

	/* the note keeps the tree: the file is still there at the tip */
	dk_buf got = DK_BUF_INIT;
	assert_int_equal(dk_archive_get(f->a, "i-1", NULL, "draft/plan/plan.pdf", to_buf, &got), 0);
	assert_int_equal(got.len, 8);
	dk_buf_free(&got);
}

static int known_events(const dk_archive_entry *e, void *payload)
{
	(void)payload;
	return strcmp(e->event, "ev-lost") != 0;
}

static int count_instance(const char *instance, void *payload)
{
	dk_buf *b = payload;
	dk_buf_printf(b, "%s;", instance);
	return 0;
}

static void verify_finds_unrecorded_and_altered(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2;
	dk_archive_put_opts o = opts_for("i-1", "plan", "a.pdf");
	walk_log l;
	char src[700], dst[700];

	o.event = "ev-ok";
	assert_int_equal(dk_archive_put_file(&r1, f->a, &o, write_temp(f, "a", "AAAA", 4)), 0);
	o.event = "ev-lost";
	o.name = "b.pdf";
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, write_temp(f, "b", "BBBB", 4)), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(dk_archive_unrecorded(f->a, "i-1", 0, known_events, log_entry, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.commits[0], r2.commit);
	assert_string_equal(l.paths[0], "draft/plan/b.pdf");

	dk_buf names = DK_BUF_INIT;
	o.instance = "i-0";
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, write_temp(f, "b", "BBBB", 4)), 0);
	assert_int_equal(dk_archive_instances(f->a, count_instance, &names), 0);
	assert_string_equal(dk_buf_cstr(&names), "i-0;i-1;");
	dk_buf_free(&names);

	/* swap a.pdf's object file for b.pdf's: same size, other bytes (the
	 * uploads wrote packs: made loose first) */
	explode(f);
	snprintf(src, sizeof(src), "%s/archive.git/objects/%.2s/%s", f->home, r2.blob, r2.blob + 2);
	snprintf(dst, sizeof(dst), "%s/archive.git/objects/%.2s/%s", f->home, r1.blob, r1.blob + 2);
	chmod(dst, 0644);
	int st;
	free(run(&st, "cp '%s' '%s'", src, dst));
	assert_int_equal(st, 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(dk_archive_walk(f->a, "i-1", DK_ARCHIVE_WALK_HASH, log_entry, &l), 0);
	assert_non_null(strstr(l.damage[0], "altered"));
	assert_string_equal(l.damage[1], "");
	dk_buf got = DK_BUF_INIT;
	assert_int_equal(dk_archive_get(f->a, "i-1", NULL, "draft/plan/a.pdf", to_buf, &got),
	                 DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "damaged"));
	/* a missing object */
	unlink(dst);
	memset(&l, 0, sizeof(l));
	assert_int_equal(dk_archive_walk(f->a, "i-1", DK_ARCHIVE_WALK_HASH, log_entry, &l), 0);
	assert_non_null(strstr(l.damage[0], "missing"));
	assert_int_equal(dk_archive_get_blob(f->a, r1.blob, NULL, NULL, NULL, NULL), DK_ENOTFOUND);
	dk_buf_free(&got);
}

/* ---- concurrency and locks ---------------------------------------------------- */

typedef struct {
	const char *home;
	const char *dir;
	int id, n, failures, retries;
} worker;

static void *put_many(void *arg)
{
	worker *w = arg;
	dk_archive *a = NULL;
	if (dk_archive_open(&a, w->home) < 0) {
		w->failures = w->n;
		return NULL;
	}
	for (int i = 0; i < w->n; i++) {
		char name[64], path[600], data[64];
		dk_archive_put_result r;
		dk_archive_put_opts o = opts_for("i-shared", "report", name);
		snprintf(name, sizeof(name), "w%d-%d.pdf", w->id, i);
		snprintf(path, sizeof(path), "%s/%s", w->dir, name);
		snprintf(data, sizeof(data), "worker %d upload %d", w->id, i);
		FILE *fp = fopen(path, "wb");
		fputs(data, fp);
		fclose(fp);
		if (dk_archive_put_file(&r, a, &o, path) < 0)
			w->failures++;
		w->retries += r.retries;
	}
	dk_archive_free(a);
	return NULL;
}

static int count_entries(const dk_archive_entry *e, void *payload)
{
	(void)e;
	(*(int *)payload)++;
	return 0;
}

static void concurrent_puts_lose_nothing(void **state)
{
	fixture *f = *state;
	pthread_t t[2];
	worker w[2] = {{f->home, f->dir, 0, 40, 0, 0}, {f->home, f->dir, 1, 40, 0, 0}};
	int n = 0, st;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, put_many, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(w[0].failures + w[1].failures, 0);
	print_message("# 2 x 40 concurrent puts: %d compare-and-swap retries\n",
	              w[0].retries + w[1].retries);
	assert_int_equal(dk_archive_walk(f->a, "i-shared", 0, count_entries, &n), 0);
	assert_int_equal(n, 80);
	/* and the tip's tree holds all 80 files */
	char *s = run(&st,
	              "git --git-dir='%s/archive.git' ls-tree -r refs/docket/instances/i-shared "
	              "| wc -l",
	              f->home);
	assert_int_equal(st, 0);
	assert_int_equal(atoi(s), 80);
	free(s);
}

/* Uploads of several threads at once, each on its own instance: the ones
 * waiting for a flush at the same time are written as one pack and share
 * it (archive_pack.c), and each still lands on its own ref in order. */
#define AT_ONCE_THREADS 8
#define AT_ONCE_EACH    12
typedef struct {
	const char *home, *dir;
	pthread_barrier_t *go;
	int id, failures;
} at_once_worker;

static void *upload_own_instance(void *arg)
{
	at_once_worker *w = arg;
	dk_archive *a = NULL;
	char inst[32], prev[DK_ARCHIVE_OID_HEXSZ + 1] = "";

	if (dk_archive_open(&a, w->home) < 0) {
		w->failures = AT_ONCE_EACH;
		pthread_barrier_wait(w->go);
		return NULL;
	}
	dk_archive_set_auto_gc(a, 0); /* count the packs the uploads wrote */
	snprintf(inst, sizeof(inst), "i-at-once-%d", w->id);
	pthread_barrier_wait(w->go);
	for (int i = 0; i < AT_ONCE_EACH; i++) {
		char name[64], path[600], data[64];
		dk_archive_put_result r;
		dk_archive_put_opts o = opts_for(inst, "report", name);
		snprintf(name, sizeof(name), "r%d.pdf", i);
		snprintf(path, sizeof(path), "%s/at-once-%d-%d", w->dir, w->id, i);
		snprintf(data, sizeof(data), "thread %d upload %d", w->id, i);
		FILE *fp = fopen(path, "wb");
		fputs(data, fp);
		fclose(fp);
		if (dk_archive_put_file(&r, a, &o, path) < 0 || strcmp(r.parent, prev) != 0)
			w->failures++;
		memcpy(prev, r.commit, sizeof(prev));
	}
	dk_archive_free(a);
	return NULL;
}

static void uploads_at_once_share_a_pack(void **state)
{
	fixture *f = *state;
	pthread_t t[AT_ONCE_THREADS];
	at_once_worker w[AT_ONCE_THREADS];
	pthread_barrier_t go;
	int st, failures = 0;

	pthread_barrier_init(&go, NULL, AT_ONCE_THREADS);
	for (int i = 0; i < AT_ONCE_THREADS; i++) {
		w[i] = (at_once_worker){f->home, f->dir, &go, i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, upload_own_instance, &w[i]), 0);
	}
	for (int i = 0; i < AT_ONCE_THREADS; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(failures, 0);
	for (int i = 0; i < AT_ONCE_THREADS; i++) {
		char inst[32];
		int n = 0;
		snprintf(inst, sizeof(inst), "i-at-once-%d", i);
		assert_int_equal(
		    dk_archive_walk(f->a, inst, DK_ARCHIVE_WALK_HASH, count_entries, &n), 0);
		assert_int_equal(n, AT_ONCE_EACH);
	}
	char *s = run(&st, "ls '%s/archive.git/objects/pack' | grep -c '\\.pack$'", f->home);
	int packs = atoi(s);
	free(s);
	print_message("# %d uploads from %d threads at once: %d packs\n",
	              AT_ONCE_THREADS * AT_ONCE_EACH, AT_ONCE_THREADS, packs);
	assert_true(packs >= 1);
	assert_true(packs < AT_ONCE_THREADS * AT_ONCE_EACH);
	/* every move's intent is in the journal, each once */
	if (access("/proc/sys/kernel/random/boot_id", R_OK) == 0)
		assert_int_equal(journal_intents(f->home), AT_ONCE_THREADS * AT_ONCE_EACH);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(st, 0);
}

/* Four writers making the same new ref at once, round after round: the
 * first commit of an instance must not be overwritten by the second
 * writer's (libgit2 checks "does not exist" before its lock unless the
 * create is a compare-and-swap against the zero id). */
#define FIRST_ROUNDS  64
#define FIRST_WRITERS 4
typedef struct {
	const char *home;
	pthread_barrier_t *go;
	int id, failures;
} first_worker;

static void *first_notes(void *arg)
{
	first_worker *w = arg;
	dk_archive *a = NULL;
	if (dk_archive_open(&a, w->home) < 0) {
		w->failures = FIRST_ROUNDS;
		return NULL;
	}
	for (int k = 0; k < FIRST_ROUNDS; k++) {
		char inst[32], ev[48];
		snprintf(inst, sizeof inst, "race-%d", k);
		snprintf(ev, sizeof ev, "%s:%d", inst, w->id);
		dk_archive_note_opts n = DK_ARCHIVE_NOTE_OPTS_INIT;
		n.instance = inst;
		n.flow = "monthly-plan@1";
		n.state = "review";
		n.transition = "approve";
		n.event = ev;
		n.actor = "li";
		n.time = T0;
		pthread_barrier_wait(w->go);
		if (dk_archive_note(NULL, a, &n) < 0)
			w->failures++;
	}
	dk_archive_free(a);
	return NULL;
}

static void concurrent_first_commits_lose_nothing(void **state)
{
	fixture *f = *state;
	pthread_barrier_t go;
	pthread_t t[FIRST_WRITERS];
	first_worker w[FIRST_WRITERS];
	assert_int_equal(pthread_barrier_init(&go, NULL, FIRST_WRITERS), 0);
	for (int i = 0; i < FIRST_WRITERS; i++) {
		w[i] = (first_worker){f->home, &go, i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, first_notes, &w[i]), 0);
	}
	for (int i = 0; i < FIRST_WRITERS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < FIRST_WRITERS; i++)
		assert_int_equal(w[i].failures, 0);
	for (int k = 0; k < FIRST_ROUNDS; k++) {
		char inst[32];
		int n = 0;
		snprintf(inst, sizeof inst, "race-%d", k);
		assert_int_equal(dk_archive_walk(f->a, inst, 0, count_entries, &n), 0);
		if (n != FIRST_WRITERS)
			print_message("# %s holds %d of its %d commits\n", inst, n, FIRST_WRITERS);
		assert_int_equal(n, FIRST_WRITERS);
	}
}

/* ---- notes in batches ------------------------------------------------------ */

typedef struct {
	int errors[16];
	char commits[16][41];
	char why[16][300];
	int calls;
} batch_log;

static void batch_done(size_t i, int error, const char *text, void *payload)
{
	batch_log *b = payload;
	assert_true(i < 16);
	assert_int_equal((int)i, b->calls); /* in order, each once */
	b->calls++;
	b->errors[i] = error;
	snprintf(error ? b->why[i] : b->commits[i], error ? 300 : 41, "%s", text);
}

static dk_archive_note_opts note_for(const char *instance, const char *transition,
                                     const char *event)
{
	dk_archive_note_opts n = DK_ARCHIVE_NOTE_OPTS_INIT;
	n.instance = instance;
	n.flow = "monthly-plan@1";
	n.state = "review";
	n.transition = transition;
	n.event = event;
	n.actor = "li";
	n.time = T0;
	return n;
}

/* The parents of commit (hex) as "P1 P2..." ("" for a root). */
static char *parents_of(fixture *f, const char *commit)
{
	int st;
	char *s =
	    run(&st, "git --git-dir='%s/archive.git' log -1 --format=%%P %s", f->home, commit);
	assert_int_equal(st, 0);
	s[strcspn(s, "\n")] = '\0';
	return s;
}

static void notes_batch_chains_per_instance(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-1", "plan", "plan.pdf");
	dk_archive_note_opts n[5];
	batch_log b;
	walk_log la, lb;
	char *p;

	o.event = "ev-up";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "p", "%PDF-1.7", 8)), 0);
	/* interleaved: a1 b1 a2 b2 a3; i-1 has a tip, i-b is new */
	n[0] = note_for("i-1", "submit", "a1");
	n[1] = note_for("i-b", "start", "b1");
	n[2] = note_for("i-1", "return", "a2");
	n[3] = note_for("i-b", "submit", "b2");
	n[4] = note_for("i-1", "submit", "a3");
	n[2].comment = "redo week 2";
	memset(&b, 0, sizeof(b));
	assert_int_equal(dk_archive_notes(f->a, n, 5, batch_done, &b), 0);
	assert_int_equal(b.calls, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(b.errors[i], 0);

	/* each instance's notes in order, chained on its own tip */
	memset(&la, 0, sizeof(la));
	memset(&lb, 0, sizeof(lb));
	assert_int_equal(dk_archive_walk(f->a, "i-1", 0, log_entry, &la), 0);
	assert_int_equal(dk_archive_walk(f->a, "i-b", 0, log_entry, &lb), 0);
	assert_int_equal(la.n, 4);
	assert_int_equal(lb.n, 2);
	assert_string_equal(la.commits[0], r.commit);
	assert_string_equal(la.commits[1], b.commits[0]);
	assert_string_equal(la.commits[2], b.commits[2]);
	assert_string_equal(la.commits[3], b.commits[4]);
	assert_string_equal(la.events[3], "a3");
	assert_string_equal(lb.commits[0], b.commits[1]);
	assert_string_equal(lb.commits[1], b.commits[3]);
	p = parents_of(f, b.commits[0]);
	assert_string_equal(p, r.commit);
	free(p);
	p = parents_of(f, b.commits[1]);
	assert_string_equal(p, ""); /* the first commit of a new ref */
	free(p);
	p = parents_of(f, b.commits[4]);
	assert_string_equal(p, b.commits[2]);
	free(p);
	char tip[41];
	assert_int_equal(dk_archive_tip(tip, f->a, "i-1"), 0);
	assert_string_equal(tip, b.commits[4]);
	/* the file uploaded before is still at the tip */
	dk_buf got = DK_BUF_INIT;
	assert_int_equal(dk_archive_get(f->a, "i-1", NULL, "draft/plan/plan.pdf", to_buf, &got), 0);
	assert_int_equal(got.len, 8);
	dk_buf_free(&got);
	/* an empty batch is nothing */
	assert_int_equal(dk_archive_notes(f->a, n, 0, batch_done, &b), 0);
}

static void notes_batch_refusal_stops_its_instance_only(void **state)
{
	fixture *f = *state;
	dk_archive_note_opts n[5];
	batch_log b;
	walk_log la, lb;

	n[0] = note_for("i-a", "submit", "a1");
	n[1] = note_for("i-b", "start", "b1");
	n[2] = note_for("i-a", "return", "a2");
	n[2].actor = "li\nDocket-Actor: wei"; /* refused: a forged trailer */
	n[3] = note_for("i-a", "submit", "a3");
	n[4] = note_for("i-b", "submit", "b2");
	memset(&b, 0, sizeof(b));
	assert_int_equal(dk_archive_notes(f->a, n, 5, batch_done, &b), DK_EINVALID);
	assert_int_equal(b.errors[0], 0);
	assert_int_equal(b.errors[1], 0);
	assert_int_equal(b.errors[2], DK_EINVALID);
	assert_non_null(strstr(b.why[2], "control character"));
	assert_true(b.errors[3] < 0);
	assert_non_null(strstr(b.why[3], "an earlier note of its instance failed"));
	assert_int_equal(b.errors[4], 0);
	memset(&la, 0, sizeof(la));
	memset(&lb, 0, sizeof(lb));
	assert_int_equal(dk_archive_walk(f->a, "i-a", 0, log_entry, &la), 0);
	assert_int_equal(dk_archive_walk(f->a, "i-b", 0, log_entry, &lb), 0);
	assert_int_equal(la.n, 1); /* a1 only: no gap reads as history */
	assert_string_equal(la.events[0], "a1");
	assert_int_equal(lb.n, 2);
	/* one bad instance id fails its note alone */
	n[0] = note_for("../x", "submit", "x1");
	n[1] = note_for("i-b", "approve", "b3");
	memset(&b, 0, sizeof(b));
	assert_int_equal(dk_archive_notes(f->a, n, 2, batch_done, &b), DK_EINVALID);
	assert_int_equal(b.errors[1], 0);
	/* and the single form reports its own error */
	n[0] = note_for("i-b", "", "b4");
	assert_int_equal(dk_archive_note(NULL, f->a, &n[0]), DK_EINVALID);
	assert_non_null(strstr(dk_error_last(), "transition is missing"));
}

typedef struct {
	const char *home;
	int id, rounds, failures;
} note_worker;

/* Writes rounds batches of 3 notes (i-x, i-y, i-x) from its own handle. */
static void *note_many(void *arg)
{
	note_worker *w = arg;
	dk_archive *a = NULL;
	if (dk_archive_open(&a, w->home) < 0) {
		w->failures = w->rounds;
		return NULL;
	}
	for (int i = 0; i < w->rounds; i++) {
		char e[3][32];
		dk_archive_note_opts n[3];
		snprintf(e[0], sizeof(e[0]), "w%d-%d-x1", w->id, i);
		snprintf(e[1], sizeof(e[1]), "w%d-%d-y", w->id, i);
		snprintf(e[2], sizeof(e[2]), "w%d-%d-x2", w->id, i);
		n[0] = note_for("i-x", "ping", e[0]);
		n[1] = note_for("i-y", "ping", e[1]);
		n[2] = note_for("i-x", "ping", e[2]);
		if (dk_archive_notes(a, n, 3, NULL, NULL) < 0)
			w->failures++;
	}
	dk_archive_free(a);
	return NULL;
}

typedef struct {
	int n;
	char last[2][64]; /* per worker: the last event seen */
	int out_of_order;
} order_check;

/* Each worker's notes of one instance must appear in the order written. */
static int check_order(const dk_archive_entry *e, void *payload)
{
	order_check *c = payload;
	int w = e->event[1] - '0';
	c->n++;
	if (w < 0 || w > 1)
		return 0;
	int round = atoi(e->event + 3);
	int lround = c->last[w][0] ? atoi(c->last[w] + 3) : -1;
	const char *tail = strrchr(e->event, '-');
	const char *ltail = c->last[w][0] ? strrchr(c->last[w], '-') : NULL;
	if (round < lround || (round == lround && ltail && strcmp(tail, ltail) <= 0))
		c->out_of_order++;
	snprintf(c->last[w], sizeof(c->last[w]), "%s", e->event);
	return 0;
}

static void notes_batch_concurrent_lose_nothing(void **state)
{
	fixture *f = *state;
	pthread_t t[2];
	note_worker w[2] = {{f->home, 0, 25, 0}, {f->home, 1, 25, 0}};
	order_check cx, cy;

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, note_many, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(w[0].failures + w[1].failures, 0);
	memset(&cx, 0, sizeof(cx));
	memset(&cy, 0, sizeof(cy));
	assert_int_equal(dk_archive_walk(f->a, "i-x", 0, check_order, &cx), 0);
	assert_int_equal(dk_archive_walk(f->a, "i-y", 0, check_order, &cy), 0);
	assert_int_equal(cx.n, 2 * 25 * 2);
	assert_int_equal(cy.n, 2 * 25);
	assert_int_equal(cx.out_of_order + cy.out_of_order, 0);
}

/* Files in objects/pack whose names end in ext. */
static int packs_named(fixture *f, const char *ext)
{
	int st, n;
	char *s = run(&st, "ls '%s/archive.git/objects/pack' | grep -c '%s$'", f->home, ext);
	n = atoi(s);
	free(s);
	return n;
}

/* A batch of notes is one pack, not a loose file per commit: no loose
 * object appears, the pack and its index are ones git checks and reads,
 * and libgit2 reads the notes back from it. */
static void notes_batch_writes_one_pack(void **state)
{
	fixture *f = *state;
	dk_archive_note_opts n[40];
	char ev[40][16], inst[4][8];
	walk_log l;
	int st;

	for (int i = 0; i < 40; i++) {
		snprintf(inst[i % 4], sizeof(inst[0]), "i-p%d", i % 4);
		snprintf(ev[i], sizeof(ev[0]), "p%d", i);
		n[i] = note_for(inst[i % 4], "ping", ev[i]);
		if (i % 3 == 0)
			n[i].comment = "a comment\nover two lines";
	}
	assert_int_equal(dk_archive_notes(f->a, n, 40, NULL, NULL), 0);
	assert_int_equal(count_loose(f), 0);
	assert_int_equal(packs_named(f, ".pack"), 1);
	assert_int_equal(packs_named(f, ".idx"), 1);
	assert_int_equal(packs_named(f, "tmp_pack_dk_.*"), 0);
	/* 40 commits and the empty tree of the new refs */
	char *s =
	    run(&st,
	        "git --git-dir='%s/archive.git' verify-pack -v "
	        "'%s'/archive.git/objects/pack/*.idx | grep -cE '^[0-9a-f]{40} (commit|tree)'",
	        f->home, f->home);
	assert_int_equal(st, 0);
	assert_int_equal(atoi(s), 41);
	free(s);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(st, 0);
	for (int k = 0; k < 4; k++) {
		memset(&l, 0, sizeof(l));
		assert_int_equal(dk_archive_walk(f->a, inst[k], 0, log_entry, &l), 0);
		assert_int_equal(l.n, 10);
		for (int j = 0; j < 10; j++)
			assert_string_equal(l.events[j], ev[4 * j + k]);
	}
	/* a later batch on the same refs: one more pack, still no loose file */
	assert_int_equal(dk_archive_notes(f->a, n, 4, NULL, NULL), 0);
	assert_int_equal(count_loose(f), 0);
	assert_int_equal(packs_named(f, ".pack"), 2);
	memset(&l, 0, sizeof(l));
	assert_int_equal(dk_archive_walk(f->a, "i-p0", 0, log_entry, &l), 0);
	assert_int_equal(l.n, 11);
	/* plain git sees the same history */
	s = run(&st, "git --git-dir='%s/archive.git' rev-list --count refs/docket/instances/i-p3",
	        f->home);
	assert_int_equal(atoi(s), 11);
	free(s);
}

/* One pack a batch, and automatic packing merges them past
 * DK_ARCHIVE_AUTO_PACKS: the archive's files stay few however many batches
 * come, and every note stays readable. */
static void notes_packs_stay_bounded(void **state)
{
	fixture *f = *state;
	int most = 0, rounds = 3 * DK_ARCHIVE_AUTO_PACKS, seen = 0;
	int st;

	for (int i = 0; i < rounds; i++) {
		char ev[16];
		dk_archive_note_opts n;
		snprintf(ev, sizeof(ev), "b%d", i);
		n = note_for(i % 2 ? "i-odd" : "i-even", "ping", ev);
		assert_int_equal(dk_archive_notes(f->a, &n, 1, NULL, NULL), 0);
		int packs = packs_named(f, ".pack");
		assert_int_equal(packs_named(f, ".idx"), packs);
		if (packs > most)
			most = packs;
	}
	print_message("# %d batches of one note: at most %d packs\n", rounds, most);
	assert_true(most <= DK_ARCHIVE_AUTO_PACKS + 1);
	assert_int_equal(count_loose(f), 0);
	assert_int_equal(dk_archive_walk(f->a, "i-even", 0, count_entries, &seen), 0);
	assert_int_equal(seen, rounds / 2);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(st, 0);
}

/* What a crash leaves in objects/pack (a temporary pack, an index whose
 * pack never got its name) is removed by gc once stale, and never read as
 * a pack; fresh ones are left to the writer still at work. */
static void gc_removes_stale_pack_leftovers(void **state)
{
	fixture *f = *state;
	dk_archive_note_opts n = note_for("i-1", "submit", "e1");
	dk_archive_gc_result g;
	char dir[400], p[600];
	static const char *old[] = {"tmp_pack_dk_AbC123", "pack_git2_0123456789abcdef",
	                            "pack-0000000000000000000000000000000000000001.idx"};
	struct timeval tv[2];

	assert_int_equal(dk_archive_notes(f->a, &n, 1, NULL, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/archive.git/objects/pack", f->home);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, old[i]);
		assert_int_equal(rename(write_temp(f, "x", "junk", 4), p), 0);
		memset(tv, 0, sizeof(tv));
		tv[0].tv_sec = tv[1].tv_sec = time(NULL) - 7200;
		assert_int_equal(utimes(p, tv), 0);
	}
	snprintf(p, sizeof(p), "%s/tmp_pack_dk_fresh1", dir);
	assert_int_equal(rename(write_temp(f, "x", "junk", 4), p), 0);
	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_int_equal(g.packs, 1);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, old[i]);
		assert_int_equal(access(p, F_OK), -1);
	}
	snprintf(p, sizeof(p), "%s/tmp_pack_dk_fresh1", dir);
	assert_int_equal(access(p, F_OK), 0);
	char tip[41];
	assert_int_equal(dk_archive_tip(tip, f->a, "i-1"), 0);
}

/* DOCKET_ARCHIVE_SYNC picks how writes reach the disk; both modes write the
 * same archive, and anything else is refused before anything is opened. */
static void sync_modes(void **state)
{
	fixture *f = *state;
	dk_archive *a = NULL;
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-1", "plan", "plan.pdf");
	char home2[400];

	setenv("DOCKET_ARCHIVE_SYNC", "fsync-everything", 1);
	snprintf(home2, sizeof(home2), "%s/other", f->dir);
	assert_int_equal(dk_archive_open(&a, home2), DK_EUSAGE);
	assert_non_null(strstr(dk_error_last(), "DOCKET_ARCHIVE_SYNC"));
	assert_int_equal(access(home2, F_OK), -1);
	setenv("DOCKET_ARCHIVE_SYNC", "file", 1);
	assert_int_equal(dk_archive_open(&a, home2), 0);
	o.event = "ev-1";
	assert_int_equal(dk_archive_put_file(&r, a, &o, write_temp(f, "p", "%PDF-1.7", 8)), 0);
	/* a big incompressible one takes archive_raw.c's way, fsynced too */
	char big[600], want[65];
	snprintf(big, sizeof(big), "%s/big-file-mode", f->dir);
	write_big(big, 2u * 1024 * 1024, want);
	o.name = "scan.pdf";
	o.event = "ev-1b";
	assert_int_equal(dk_archive_put_file(&r, a, &o, big), 0);
	assert_string_equal(r.sha256, want);
	int status;
	char *out = run(&status,
	                "git --git-dir='%s/archive.git' cat-file blob %s | cmp - '%s' && echo same",
	                home2, r.blob, big);
	assert_string_equal(out, "same\n");
	free(out);
	dk_archive_note_opts n = note_for("i-1", "submit", "ev-2");
	assert_int_equal(dk_archive_note(NULL, a, &n), 0);
	assert_int_equal(dk_archive_gc(NULL, a), 0);
	dk_archive_free(a);
	setenv("DOCKET_ARCHIVE_SYNC", "syncfs", 1);
	assert_int_equal(dk_archive_open(&a, home2), 0);
	n = note_for("i-1", "approve", "ev-3");
	assert_int_equal(dk_archive_note(NULL, a, &n), 0);
	int count = 0;
	assert_int_equal(dk_archive_walk(a, "i-1", DK_ARCHIVE_WALK_HASH, count_entries, &count), 0);
	assert_int_equal(count, 4);
	dk_archive_free(a);
	unsetenv("DOCKET_ARCHIVE_SYNC");
}

static void make_lock(const char *path, time_t age)
{
	FILE *fp = fopen(path, "w");
	struct timespec ts[2];
	assert_non_null(fp);
	fputs("0000000000000000000000000000000000000000\n", fp);
	fclose(fp);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= age;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

typedef struct {
	const char *lock;
	int unlinked; /* 0: the lock was still ours to remove */
} holder;

/* A live writer: holds the lock a while, then releases it. */
static void *remove_later(void *arg)
{
	holder *h = arg;
	struct timespec ts = {0, 300 * 1000000L};
	nanosleep(&ts, NULL);
	h->unlinked = unlink(h->lock);
	return NULL;
}

static void stale_lock_recovered(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-1", "plan", "a.pdf");
	char lock[700];
	struct stat st;
	pthread_t t;

	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "a", "1", 1)), 0);
	snprintf(lock, sizeof(lock), "%s/archive.git/refs/docket/instances/i-1.lock", f->home);
	/* left by a crash two minutes ago: removed, and the put goes through */
	make_lock(lock, 120);
	o.name = "b.pdf";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "b", "2", 1)), 0);
	assert_true(r.retries >= 1);
	assert_int_not_equal(stat(lock, &st), 0);
	/* held by a live writer: waited for, never taken away from it (how
	 * long the put waited depends on the machine's load, so only the
	 * property is checked: the holder still owned its lock) */
	holder h = {lock, -1};
	make_lock(lock, 0);
	assert_int_equal(pthread_create(&t, NULL, remove_later, &h), 0);
	o.name = "c.pdf";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "c", "3", 1)), 0);
	pthread_join(t, NULL);
	assert_int_equal(h.unlinked, 0);
	/* a new instance's ref is recovered the same way */
	snprintf(lock, sizeof(lock), "%s/archive.git/refs/docket/instances/i-9.lock", f->home);
	make_lock(lock, 3600);
	o.instance = "i-9";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "c", "3", 1)), 0);
	int n = 0;
	assert_int_equal(dk_archive_walk(f->a, "i-1", 0, count_entries, &n), 0);
	assert_int_equal(n, 3);
}

/* ---- packing and push ------------------------------------------------------------ */

static int by_off(const void *x, const void *y)
{
	off_t p = *(const off_t *)x, q = *(const off_t *)y;
	return p < q ? -1 : p > q;
}

/* Packs stay few and in a geometric progression (each at least twice all
 * smaller ones together) however many gcs run: no gc rewrites the whole
 * archive but at its doublings, and every upload still reads back. */
static void gc_packs_stay_geometric(void **state)
{
	fixture *f = *state;
	dk_archive_gc_result g;
	char name[32], data[64], dir[400];
	int k = 0;

	snprintf(dir, sizeof(dir), "%s/archive.git/objects/pack", f->home);
	for (int round = 0; round < 24; round++) {
		off_t sizes[64] = {0};
		size_t n = 0;
		long long below = 0;
		for (int i = 0; i < 4; i++, k++) {
			dk_archive_put_result r;
			dk_archive_put_opts o = opts_for("i-geo", "report", name);
			snprintf(name, sizeof(name), "g%d.pdf", k);
			snprintf(data, sizeof(data), "geometric report %d", k);
			assert_int_equal(dk_archive_put_file(
			                     &r, f->a, &o, write_temp(f, "g", data, strlen(data))),
			                 0);
		}
		assert_int_equal(dk_archive_gc(&g, f->a), 0);
		DIR *d = opendir(dir);
		assert_non_null(d);
		for (struct dirent *e; (e = readdir(d));) {
			size_t l = strlen(e->d_name);
			struct stat st;
			char p[700];
			if (l < 5 || strcmp(e->d_name + l - 5, ".pack"))
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			assert_int_equal(stat(p, &st), 0);
			assert_true(n < 64);
			sizes[n++] = st.st_size;
		}
		closedir(d);
		assert_int_equal(g.packs, n);
		qsort(sizes, n, sizeof(sizes[0]), by_off);
		for (size_t i = 0; i < n; i++) {
			assert_true((long long)sizes[i] >= 2 * below);
			below += sizes[i];
		}
		/* 24 gcs of about equal packs: a binary counter, at most 5 */
		assert_true(n <= 5);
	}
	for (int i = 0; i < k; i++) {
		dk_buf got = DK_BUF_INIT;
		char path[64];
		snprintf(path, sizeof(path), "draft/report/g%d.pdf", i);
		snprintf(data, sizeof(data), "geometric report %d", i);
		assert_int_equal(dk_archive_get(f->a, "i-geo", NULL, path, to_buf, &got), 0);
		assert_int_equal(got.len, strlen(data));
		assert_memory_equal(got.ptr, data, got.len);
		dk_buf_free(&got);
	}
}

/* Reads the ref of instance into out (40 hex and a NUL), "" when missing. */
static void ref_of(fixture *f, const char *instance, char out[DK_ARCHIVE_OID_HEXSZ + 1])
{
	if (dk_archive_tip(out, f->a, instance) < 0)
		out[0] = '\0';
}

/* Writes text as the loose ref file of instance (a power loss that kept
 * an older value, or a torn one). */
static void set_ref_file(fixture *f, const char *instance, const char *text)
{
	char path[700];
	FILE *fp;
	snprintf(path, sizeof(path), "%s/archive.git/refs/docket/instances/%s", f->home, instance);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Rewrites the boot id on the journal's first line ("docket-journal 2
 * boot ID salt ..."), in place: the machine restarted since the journal
 * was written. */
static void other_boot(fixture *f)
{
	int st;
	free(run(&st,
	         "printf 00000000-0000-0000-0000-000000000000 | dd of='%s/archive.git/"
	         "docket-refs.journal' bs=1 seek=22 conv=notrunc 2>/dev/null",
	         f->home));
	assert_int_equal(st, 0);
}

/* The live records of the journal (archive_refs.c): of its salt, not
 * retired (sequence number at or past the first line's tail), in the
 * order of their sequence numbers: where each starts and its parts'
 * lengths. */
typedef struct {
	long off;
	unsigned long long seq;
	unsigned plen, ilen, tlen;
} jrec;

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned long long le64(const unsigned char *p)
{
	unsigned long long v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int by_seq(const void *x, const void *y)
{
	const jrec *p = x, *q = y;
	return p->seq < q->seq ? -1 : p->seq > q->seq;
}

/* Reads the journal of home into *data (caller frees) and its live
 * records into out (at most max); returns how many. */
static size_t journal_records(const char *home, unsigned char **data, jrec *out, size_t max)
{
	char path[600];
	unsigned long long salt = 0, tail = 0, size = 0;
	struct stat st;
	size_t n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/archive.git/docket-refs.journal", home);
	assert_int_equal(stat(path, &st), 0);
	*data = malloc((size_t)st.st_size + 1);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(*data, 1, (size_t)st.st_size, fp), (size_t)st.st_size);
	fclose(fp);
	(*data)[st.st_size] = 0;
	assert_int_equal(sscanf((char *)*data,
	                        "docket-journal 2 boot %*s salt %llx tail %llu size %llu", &salt,
	                        &tail, &size),
	                 3);
	for (long at = 4096; at + 64 <= (long)size;) {
		const unsigned char *p = *data + at;
		unsigned char h[64];
		uint32_t crc;
		if (memcmp(p, "dkjrec2\n", 8) != 0 || le64(p + 8) != salt) {
			at += 64;
			continue;
		}
		jrec r = {at, le64(p + 16), le32(p + 24), le32(p + 28), le32(p + 32)};
		if (at + 64 + (long)(r.plen + r.ilen + r.tlen) > (long)size) {
			at += 64;
			continue;
		}
		memcpy(h, p, 64);
		memset(h + 36, 0, 4);
		crc = (uint32_t)crc32(crc32(0L, h, 64), p + 64, r.plen + r.ilen + r.tlen);
		if (crc != le32(p + 36)) {
			at += 64;
			continue;
		}
		if (r.seq >= tail && 4096 + r.seq % (size - 4096) == (unsigned long long)at) {
			if (n < max)
				out[n] = r;
			n++;
		}
		at += (64 + (long)(r.plen + r.ilen + r.tlen) + 63) / 64 * 64;
	}
	if (n > 1 && max > 1)
		qsort(out, n < max ? n : max, sizeof(*out), by_seq);
	return n;
}

/* "HOME/archive.git/objects/pack/pack-HEX" of record r (its pack's
 * trailer) into out. */
static void record_pack(const char *home, const unsigned char *data, const jrec *r, char *out,
                        size_t len)
{
	const unsigned char *sum = data + r->off + 64 + r->plen - 20;
	int k = snprintf(out, len, "%s/archive.git/objects/pack/pack-", home);
	for (int i = 0; i < 20; i++)
		k += snprintf(out + k, len - (size_t)k, "%02x", sum[i]);
}

/* Counts the intent lines of the journal's records. */
static int journal_intents(const char *home)
{
	unsigned char *data = NULL;
	jrec r[512];
	size_t n = journal_records(home, &data, r, 512);
	int lines = 0;
	assert_true(n <= 512);
	for (size_t i = 0; i < n; i++) {
		const unsigned char *t = data + r[i].off + 64 + r[i].plen + r[i].ilen;
		for (unsigned k = 0; k < r[i].tlen; k++)
			lines += t[k] == '\n';
	}
	free(data);
	return lines;
}

static void reopen(fixture *f)
{
	dk_archive_free(f->a);
	f->a = NULL;
	assert_int_equal(dk_archive_open(&f->a, f->home), 0);
}

/* A file the archive holds already is not written again: uploaded a second
 * time (under another name, to another instance) its upload's pack holds
 * the new trees and commit only. When each upload's pack carried a copy,
 * gc's merges shrank them away, the packs' geometric progression broke and
 * the whole archive was rewritten every few hundred uploads. */
static void put_same_content_stored_once(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2, r3;
	dk_archive_put_opts o = opts_for("i-same", "scan", "first.pdf");
	char noise[600], want[65], *s;
	long sizes[8] = {0};
	size_t n = 0;
	int status;

	snprintf(noise, sizeof(noise), "%s/noise", f->dir);
	write_big(noise, 64 * 1024, want);
	assert_int_equal(dk_archive_put_file(&r1, f->a, &o, noise), 0);
	/* the same handle: it knows the ids its packs hold (archive_pack.c) */
	o.name = "again.pdf";
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, noise), 0);
	/* another instance, through a handle opened afterwards */
	reopen(f);
	o = opts_for("i-other", "scan", "copy.pdf");
	assert_int_equal(dk_archive_put_file(&r3, f->a, &o, noise), 0);
	assert_string_equal(r2.blob, r1.blob);
	assert_string_equal(r3.blob, r1.blob);
	assert_string_equal(r1.sha256, want);
	/* three packs: one of about 64 KiB (the blob, stored), two small */
	s = run(&status,
	        "for p in '%s'/archive.git/objects/pack/*.pack; do stat -c %%s \"$p\"; done | "
	        "sort -n",
	        f->home);
	assert_int_equal(status, 0);
	for (char *p = s; *p && n < 8; p = strchr(p, '\n') + 1)
		sizes[n++] = strtol(p, NULL, 10);
	free(s);
	assert_int_equal(n, 3);
	assert_true(sizes[0] < 4096 && sizes[1] < 4096);
	assert_true(sizes[2] > 64 * 1024);
	for (int i = 0; i < 3; i++) {
		const dk_archive_put_result *r = i == 0 ? &r1 : i == 1 ? &r2 : &r3;
		const char *path = i == 0   ? "draft/scan/first.pdf"
		                   : i == 1 ? "draft/scan/again.pdf"
		                            : "draft/scan/copy.pdf";
		dk_buf got = DK_BUF_INIT;
		assert_int_equal(dk_archive_get(f->a, i == 2 ? "i-other" : "i-same", r->commit,
		                                path, to_buf, &got),
		                 0);
		assert_int_equal(got.len, 64 * 1024);
		dk_buf_free(&got);
	}
	free(run(&status, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(status, 0);
}

/* An upload returns once its objects and the intent of its ref's move are
 * flushed; the move itself may be lost with the power. After a restart
 * the refs are put forward from the journal before anything reads them. */
static void refs_recovered_after_restart(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2, r3, r4;
	dk_archive_put_opts o = opts_for("i-1", "plan", "a.pdf");
	char tip[DK_ARCHIVE_OID_HEXSZ + 1], line[700];
	int st;

	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0)
		skip();
	assert_int_equal(dk_archive_put_file(&r1, f->a, &o, write_temp(f, "a", "A1", 2)), 0);
	o.name = "b.pdf";
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, write_temp(f, "b", "B2", 2)), 0);
	o.instance = "i-2";
	assert_int_equal(dk_archive_put_file(&r3, f->a, &o, write_temp(f, "c", "C3", 2)), 0);
	o.instance = "i-3";
	assert_int_equal(dk_archive_put_file(&r4, f->a, &o, write_temp(f, "d", "D4", 2)), 0);
	dk_archive_free(f->a);
	f->a = NULL;

	/* Same boot: the journal is not consulted; a ref moved back is
	 * verify's business (it reports the files after it missing). */
	snprintf(line, sizeof(line), "%s\n", r1.commit);
	set_ref_file(f, "i-1", line);
	reopen(f);
	ref_of(f, "i-1", tip);
	assert_string_equal(tip, r1.commit);
	dk_archive_free(f->a);
	f->a = NULL;

	/* A restart lost the moves: i-1 back one upload, i-2's new ref
	 * gone, i-3's ref a zero-length file. */
	set_ref_file(f, "i-1", line);
	snprintf(line, sizeof(line), "%s/archive.git/refs/docket/instances/i-2", f->home);
	assert_int_equal(unlink(line), 0);
	set_ref_file(f, "i-3", "");
	assert_int_equal(journal_intents(f->home), 4);
	other_boot(f);
	assert_int_equal(dk_archive_open(&f->a, f->home), 0);
	ref_of(f, "i-1", tip);
	assert_string_equal(tip, r2.commit);
	ref_of(f, "i-2", tip);
	assert_string_equal(tip, r3.commit);
	ref_of(f, "i-3", tip);
	assert_string_equal(tip, r4.commit);
	/* the journal starts again under this boot (a new salt), its
	 * records done with */
	assert_int_equal(journal_intents(f->home), 0);

	/* A ref further on than its last intent (a note after the upload,
	 * flushed before it returned) is kept as it is. */
	o.instance = "i-1";
	o.name = "e.pdf";
	assert_int_equal(dk_archive_put_file(&r1, f->a, &o, write_temp(f, "e", "E5", 2)), 0);
	dk_archive_note_opts n = note_for("i-1", "submit", "ev-n");
	char note[DK_ARCHIVE_OID_HEXSZ + 1];
	assert_int_equal(dk_archive_note(note, f->a, &n), 0);
	other_boot(f);
	reopen(f);
	ref_of(f, "i-1", tip);
	assert_string_equal(tip, note);
	int count = 0;
	assert_int_equal(dk_archive_walk(f->a, "i-1", DK_ARCHIVE_WALK_HASH, count_entries, &count),
	                 0);
	assert_int_equal(count, 4);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(st, 0);
}

/* A ref recovery cannot write (a directory stands where its file goes)
 * fails the open with what to do, and the journal keeps the intent: once
 * the way is clear, the next open puts the ref forward. Before, the
 * failure was passed over and the journal started again without it. */
static void refs_recovery_kept_when_it_cannot_write(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1;
	dk_archive_put_opts o = opts_for("i-1", "plan", "a.pdf");
	char tip[DK_ARCHIVE_OID_HEXSZ + 1], ref[700], in[720];

	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0)
		skip();
	assert_int_equal(dk_archive_put_file(&r1, f->a, &o, write_temp(f, "a", "A1", 2)), 0);
	dk_archive_free(f->a);
	f->a = NULL;
	snprintf(ref, sizeof(ref), "%s/archive.git/refs/docket/instances/i-1", f->home);
	snprintf(in, sizeof(in), "%s/x", ref);
	assert_int_equal(unlink(ref), 0);
	assert_int_equal(mkdir(ref, 0755), 0);
	assert_int_equal(close(open(in, O_CREAT | O_WRONLY, 0644)), 0);
	other_boot(f);
	assert_true(dk_archive_open(&f->a, f->home) < 0);
	assert_null(f->a);
	assert_non_null(strstr(dk_error_last(), "cannot put refs/docket/instances/i-1 back onto"));
	assert_non_null(strstr(dk_error_last(), "then run the command again"));
	assert_int_equal(journal_intents(f->home), 1);
	assert_int_equal(unlink(in), 0);
	assert_int_equal(rmdir(ref), 0);
	assert_int_equal(dk_archive_open(&f->a, f->home), 0);
	ref_of(f, "i-1", tip);
	assert_string_equal(tip, r1.commit);
}

/* ---- the journal's records (archive_refs.c) ---- */

static void put_text(fixture *f, dk_archive *a, const char *instance, const char *name,
                     const char *data, dk_archive_put_result *r)
{
	dk_archive_put_opts o = opts_for(instance, "plan", name);
	assert_int_equal(dk_archive_put_file(r, a, &o, write_temp(f, name, data, strlen(data))), 0);
}

/* Removes (gone = 1) or halves the file base.ext, as a power loss may
 * leave a file written but not flushed. */
static void lose(const char *base, const char *ext, int gone)
{
	char p[800];
	struct stat st;
	snprintf(p, sizeof(p), "%s.%s", base, ext);
	if (gone) {
		assert_int_equal(unlink(p), 0);
		return;
	}
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(truncate(p, st.st_size / 2), 0);
}

static void unlink_ref(const char *home, const char *instance)
{
	char p[700];
	snprintf(p, sizeof(p), "%s/archive.git/refs/docket/instances/%s", home, instance);
	assert_int_equal(unlink(p), 0);
}

static void expect_file(dk_archive *a, const char *instance, const char *path, const char *want)
{
	dk_buf got = DK_BUF_INIT;
	assert_int_equal(dk_archive_get(a, instance, NULL, path, to_buf, &got), 0);
	assert_int_equal(got.len, strlen(want));
	assert_memory_equal(got.ptr, want, got.len);
	dk_buf_free(&got);
}

static void fsck_full(const char *home)
{
	int st;
	char *s = run(&st, "git --git-dir='%s/archive.git' fsck --full --strict 2>&1", home);
	if (st != 0)
		print_message("%s", s);
	free(s);
	assert_int_equal(st, 0);
}

/* An upload is durable once its round's record (its pack, the pack's
 * index, its intent) is flushed in the journal: the pack files and the
 * ref are not flushed. A power loss that takes them all (files gone or
 * short, refs gone, behind or empty) loses no acknowledged upload: the
 * next open writes the packs again from the records and puts the refs
 * forward. A big file's loose blob went the syncfs way and stays. */
static void journal_puts_back_packs_and_refs(void **state)
{
	fixture *f = *state;
	dk_archive_put_result ra, rb, rc, rd, re;
	dk_archive_put_opts o = opts_for("i-4", "scan", "big.pdf");
	char tip[DK_ARCHIVE_OID_HEXSZ + 1], big[600], want[65], line[64];
	unsigned char *data = NULL;
	jrec r[8];
	size_t n;

	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0)
		skip();
	put_text(f, f->a, "i-1", "a.pdf", "first of i-1", &ra);
	put_text(f, f->a, "i-1", "b.pdf", "second of i-1", &rb);
	put_text(f, f->a, "i-2", "c.pdf", "only of i-2", &rc);
	put_text(f, f->a, "i-3", "d.pdf", "only of i-3", &rd);
	snprintf(big, sizeof(big), "%s/big-journal", f->dir);
	write_big(big, 2u * 1024 * 1024, want);
	assert_int_equal(dk_archive_put_file(&re, f->a, &o, big), 0);
	dk_archive_free(f->a);
	f->a = NULL;

	n = journal_records(f->home, &data, r, 8);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		char base[700];
		record_pack(f->home, data, &r[i], base, sizeof(base));
		lose(base, "pack", i % 2);
		lose(base, "idx", !(i % 2));
	}
	free(data);
	snprintf(line, sizeof(line), "%s\n", ra.commit);
	set_ref_file(f, "i-1", line);
	unlink_ref(f->home, "i-2");
	set_ref_file(f, "i-3", "");
	unlink_ref(f->home, "i-4");
	other_boot(f);
	assert_int_equal(dk_archive_open(&f->a, f->home), 0);
	ref_of(f, "i-1", tip);
	assert_string_equal(tip, rb.commit);
	ref_of(f, "i-2", tip);
	assert_string_equal(tip, rc.commit);
	ref_of(f, "i-3", tip);
	assert_string_equal(tip, rd.commit);
	ref_of(f, "i-4", tip);
	assert_string_equal(tip, re.commit);
	expect_file(f->a, "i-1", "draft/plan/a.pdf", "first of i-1");
	expect_file(f->a, "i-1", "draft/plan/b.pdf", "second of i-1");
	expect_file(f->a, "i-2", "draft/plan/c.pdf", "only of i-2");
	expect_file(f->a, "i-3", "draft/plan/d.pdf", "only of i-3");
	/* recovered, flushed, and the journal started again (a new salt) */
	assert_int_equal(journal_intents(f->home), 0);
	fsck_full(f->home);
}

/* Recovery looks at every aligned offset: a record whose writer reserved
 * its place and died before writing it (garbage there) hides none after
 * it. A torn record (its checksum does not match: its flush never
 * completed, so none of its uploads was acknowledged and no ref moved
 * onto it) is passed over, and its ref stays where the record before it
 * put it. */
static void journal_hole_and_torn_record(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2, r3a, r3b;
	char tip[DK_ARCHIVE_OID_HEXSZ + 1], base[700], jpath[600];
	unsigned char *data = NULL, junk[4096];
	jrec r[8];
	size_t n;
	int fd;

	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0)
		skip();
	put_text(f, f->a, "i-1", "one.pdf", "one", &r1);
	put_text(f, f->a, "i-2", "two.pdf", "two", &r2);
	put_text(f, f->a, "i-3", "three.pdf", "three, first", &r3a);
	put_text(f, f->a, "i-3", "three.pdf", "three, second", &r3b);
	dk_archive_free(f->a);
	f->a = NULL;
	n = journal_records(f->home, &data, r, 8);
	assert_int_equal(n, 4);
	snprintf(jpath, sizeof(jpath), "%s/archive.git/docket-refs.journal", f->home);
	fd = open(jpath, O_WRONLY);
	assert_true(fd >= 0);

	/* the first record never written: garbage, its pack and ref never
	 * made */
	memset(junk, 0xa5, sizeof(junk));
	assert_true(64 + r[0].plen + r[0].ilen + r[0].tlen <= sizeof(junk));
	assert_int_equal(pwrite(fd, junk, 64 + r[0].plen + r[0].ilen + r[0].tlen, r[0].off),
	                 (ssize_t)(64 + r[0].plen + r[0].ilen + r[0].tlen));
	record_pack(f->home, data, &r[0], base, sizeof(base));
	lose(base, "pack", 1);
	lose(base, "idx", 1);
	unlink_ref(f->home, "i-1");
	/* the second, after the hole: all it made lost */
	record_pack(f->home, data, &r[1], base, sizeof(base));
	lose(base, "pack", 1);
	lose(base, "idx", 1);
	unlink_ref(f->home, "i-2");
	/* the fourth torn (one byte of its pack), its pack never on disk;
	 * the third's pack lost and i-3's ref too */
	assert_int_equal(pwrite(fd, "X", 1, r[3].off + 64 + r[3].plen / 2), 1);
	record_pack(f->home, data, &r[3], base, sizeof(base));
	lose(base, "pack", 1);
	lose(base, "idx", 1);
	record_pack(f->home, data, &r[2], base, sizeof(base));
	lose(base, "pack", 1);
	lose(base, "idx", 0);
	unlink_ref(f->home, "i-3");
	close(fd);

	other_boot(f);
	assert_int_equal(dk_archive_open(&f->a, f->home), 0);
	ref_of(f, "i-1", tip);
	assert_string_equal(tip, "");
	ref_of(f, "i-2", tip);
	assert_string_equal(tip, r2.commit);
	ref_of(f, "i-3", tip);
	assert_string_equal(tip, r3a.commit);
	expect_file(f->a, "i-2", "draft/plan/two.pdf", "two");
	expect_file(f->a, "i-3", "draft/plan/three.pdf", "three, first");
	/* the torn record's pack was not made from it */
	record_pack(f->home, data, &r[3], base, sizeof(base));
	strcat(base, ".pack");
	assert_int_equal(access(base, F_OK), -1);
	free(data);
	fsck_full(f->home);
}

/* An upload moves its ref by exchanging the ref's file with a spare
 * (archive_refmove.c), whose new content the journal's flush does not
 * cover: after a power loss the ref's file may name the commit the spare
 * held before, another instance's. Recovery puts it back from the
 * journal's intent, where it left a ref diverged otherwise. */
static void journal_ref_with_spare_content_put_right(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2, r3;
	char tip[DK_ARCHIVE_OID_HEXSZ + 1], line[64];

	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0)
		skip();
	put_text(f, f->a, "i-1", "a.pdf", "i-1 first", &r1);
	put_text(f, f->a, "i-1", "b.pdf", "i-1 second", &r2);
	put_text(f, f->a, "i-2", "c.pdf", "i-2 only", &r3);
	dk_archive_free(f->a);
	f->a = NULL;
	snprintf(line, sizeof(line), "%s\n", r3.commit);
	set_ref_file(f, "i-1", line);
	other_boot(f);
	assert_int_equal(dk_archive_open(&f->a, f->home), 0);
	ref_of(f, "i-1", tip);
	assert_string_equal(tip, r2.commit);
	ref_of(f, "i-2", tip);
	assert_string_equal(tip, r3.commit);
	expect_file(f->a, "i-1", "draft/plan/b.pdf", "i-1 second");
	fsck_full(f->home);
}

/* A home last written by an older docket has the text journal (a boot
 * line, then one intent a line): when it is another boot's, its intents
 * put the refs forward, and the journal is made anew in the record
 * format. */
static void journal_text_of_older_docket_recovered(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2;
	char tip[DK_ARCHIVE_OID_HEXSZ + 1], path[600], line[64];
	unsigned char *data = NULL;
	jrec r[1];
	FILE *fp;

	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0)
		skip();
	put_text(f, f->a, "i-1", "a.pdf", "first", &r1);
	put_text(f, f->a, "i-1", "b.pdf", "second", &r2);
	dk_archive_free(f->a);
	f->a = NULL;
	snprintf(path, sizeof(path), "%s/archive.git/docket-refs.journal", f->home);
	assert_int_equal(unlink(path), 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fprintf(fp,
	        "docket-refs 1 boot 00000000-0000-0000-0000-000000000000\n"
	        "refs/docket/instances/i-1 0000000000000000000000000000000000000000 %s\n"
	        "refs/docket/instances/i-1 %s %s\n"
	        "refs/docket/instances/i-1 %s 11111",
	        r1.commit, r1.commit, r2.commit, r2.commit);
	fclose(fp);
	snprintf(line, sizeof(line), "%s\n", r1.commit);
	set_ref_file(f, "i-1", line);
	assert_int_equal(dk_archive_open(&f->a, f->home), 0);
	ref_of(f, "i-1", tip);
	assert_string_equal(tip, r2.commit);
	/* made anew: the record format, no live record */
	assert_int_equal(journal_records(f->home, &data, r, 1), 0);
	free(data);
	/* and uploads go on through it */
	put_text(f, f->a, "i-1", "c.pdf", "third", &r1);
	assert_int_equal(journal_intents(f->home), 1);
}

/* The journal's tail (first line): the records below it are retired,
 * and it moves at each rotation. */
static unsigned long long journal_tail(const char *home)
{
	unsigned long long salt = 0, tail = 0;
	unsigned char *data = NULL;
	jrec r[1] = {{0, 0, 0, 0, 0}};
	journal_records(home, &data, r, 0);
	assert_int_equal(
	    sscanf((char *)data, "docket-journal 2 boot %*s salt %llx tail %llu", &salt, &tail), 2);
	free(data);
	return tail;
}

/* A journal whose first line no longer reads back (torn, overwritten):
 * the rotations that come due write it again from what the process
 * knows, and no upload fails for it; a rotation used to fail every upload
 * of a long-running process from then on. */
static void journal_head_damaged_uploads_go_on(void **state)
{
	fixture *f = *state;
	char home2[400], path[700], name[32];
	dk_archive *a = NULL;
	dk_archive_put_result r;
	int fd;

	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0)
		skip();
	snprintf(home2, sizeof(home2), "%s/torn", f->dir);
	setenv("DOCKET_TEST_JOURNAL_BYTES", "65536", 1);
	assert_int_equal(dk_archive_open(&a, home2), 0);
	unsetenv("DOCKET_TEST_JOURNAL_BYTES");
	snprintf(path, sizeof(path), "%s/archive.git/docket-refs.journal", home2);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "torn-line", 9, 0), 9);
	close(fd);
	for (int i = 0; i < 60; i++) {
		dk_archive_put_opts o = opts_for("i-torn", "plan", name);
		snprintf(name, sizeof(name), "p%d.pdf", i);
		assert_int_equal(
		    dk_archive_put_file(&r, a, &o, write_temp(f, "t", name, strlen(name))), 0);
	}
	/* rotated past the damage: the line reads back, the tail moved */
	assert_true(journal_tail(home2) > 0);
	dk_archive_free(a);
	assert_int_equal(dk_archive_open(&a, home2), 0);
	dk_archive_free(a);
}

/* Uploads far past the journal's size from several threads (a journal
 * of 64 KiB rotates about every 15 small uploads): none lost, every
 * rotation flushed what the records held before it forgot them, and a
 * restart after the last one still puts back what its records hold. */
static void journal_rotates_under_load(void **state)
{
	fixture *f = *state;
	pthread_t t[4];
	worker w[4];
	char home2[400], base[700];
	unsigned char *data = NULL;
	jrec r[64];
	size_t n;
	dk_archive *a = NULL;
	struct stat st;
	int count = 0, failures = 0;

	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0)
		skip();
	snprintf(home2, sizeof(home2), "%s/small", f->dir);
	setenv("DOCKET_TEST_JOURNAL_BYTES", "65536", 1);
	assert_int_equal(dk_archive_open(&a, home2), 0);
	unsetenv("DOCKET_TEST_JOURNAL_BYTES");
	snprintf(base, sizeof(base), "%s/archive.git/docket-refs.journal", home2);
	assert_int_equal(stat(base, &st), 0);
	assert_int_equal(st.st_size, 65536);
	assert_int_equal(journal_tail(home2), 0);
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){home2, f->dir, i, 30, 0, 0};
		assert_int_equal(pthread_create(&t[i], NULL, put_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		failures += w[i].failures;
	}
	assert_int_equal(failures, 0);
	/* rotated: the tail moved on, past the ring's size (it wrapped) */
	print_message("# 120 uploads through a 64 KiB journal: tail at %llu\n",
	              journal_tail(home2));
	assert_true(journal_tail(home2) > 65536);
	assert_int_equal(stat(base, &st), 0);
	assert_int_equal(st.st_size, 65536);
	assert_int_equal(dk_archive_walk(a, "i-shared", 0, count_entries, &count), 0);
	assert_int_equal(count, 120);
	dk_archive_free(a);
	a = NULL;

	/* a restart now: what the records since the last rotation made is
	 * lost, the ref too */
	n = journal_records(home2, &data, r, 64);
	assert_true(n > 0 && n < 64);
	for (size_t i = 0; i < n; i++) {
		record_pack(home2, data, &r[i], base, sizeof(base));
		lose(base, "pack", 1);
		lose(base, "idx", 1);
	}
	free(data);
	unlink_ref(home2, "i-shared");
	{
		int rc;
		free(run(&rc,
		         "printf 00000000-0000-0000-0000-000000000000 | dd of='%s/archive.git/"
		         "docket-refs.journal' bs=1 seek=22 conv=notrunc 2>/dev/null",
		         home2));
		assert_int_equal(rc, 0);
	}
	assert_int_equal(dk_archive_open(&a, home2), 0);
	count = 0;
	assert_int_equal(
	    dk_archive_walk(a, "i-shared", DK_ARCHIVE_WALK_HASH, count_entries, &count), 0);
	assert_int_equal(count, 120);
	dk_archive_free(a);
	fsck_full(home2);
}

static void gc_then_get(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r[30];
	dk_archive_gc_result g;
	dk_buf got = DK_BUF_INIT;
	char name[32], data[32];
	for (int i = 0; i < 30; i++) {
		dk_archive_put_opts o = opts_for("i-1", "report", name);
		snprintf(name, sizeof(name), "r%d.pdf", i);
		snprintf(data, sizeof(data), "report number %d", i);
		assert_int_equal(
		    dk_archive_put_file(&r[i], f->a, &o, write_temp(f, "r", data, strlen(data))),
		    0);
	}
	/* each upload wrote one pack, no loose object */
	assert_int_equal(count_loose(f), 0);
	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_int_equal(g.packs, 1);
	/* and loose objects (as plain git or an older docket left them) are
	 * packed too */
	explode(f);
	assert_true(count_loose(f) >= 90);
	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_true(g.packed >= 90);
	assert_int_equal(g.removed, g.packed);
	assert_int_equal(g.packs, 1);
	assert_int_equal(count_loose(f), 0);
	for (int i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "draft/report/r%d.pdf", i);
		snprintf(data, sizeof(data), "report number %d", i);
		dk_buf_clear(&got);
		assert_int_equal(dk_archive_get(f->a, "i-1", NULL, name, to_buf, &got), 0);
		assert_string_equal(dk_buf_cstr(&got), data);
	}
	/* history and hashes survive packing; a second gc has nothing to do */
	int n = 0;
	assert_int_equal(dk_archive_walk(f->a, "i-1", DK_ARCHIVE_WALK_HASH, count_entries, &n), 0);
	assert_int_equal(n, 30);
	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_int_equal(g.packed, 0);
	/* plain git agrees the repository is sound */
	int st;
	free(run(&st, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(st, 0);
	dk_buf_free(&got);
}

/* ---- gc's merge copies pack entries as they are ---------------------------------- */

/* Every object of the archive, read through libgit2 (git_odb_read): id,
 * type and content. */
typedef struct {
	git_oid id;
	git_object_t type;
	size_t len;
	unsigned char *data;
} stored_object;

typedef struct {
	git_odb *odb;
	stored_object *v;
	size_t n, cap;
} object_list;

static int read_one(const git_oid *id, void *payload)
{
	object_list *l = payload;
	git_odb_object *obj = NULL;

	for (size_t i = 0; i < l->n; i++)
		if (git_oid_equal(&l->v[i].id, id))
			return 0; /* in two packs */
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	assert_int_equal(git_odb_read(&obj, l->odb, id), 0);
	git_oid_cpy(&l->v[l->n].id, id);
	l->v[l->n].type = git_odb_object_type(obj);
	l->v[l->n].len = git_odb_object_size(obj);
	l->v[l->n].data = malloc(l->v[l->n].len + 1);
	memcpy(l->v[l->n].data, git_odb_object_data(obj), l->v[l->n].len);
	l->n++;
	git_odb_object_free(obj);
	return 0;
}

/* Reads every object of f's archive through a repository opened afresh. */
static void read_all(object_list *out, fixture *f)
{
	git_repository *repo = NULL;
	char path[400];

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/archive.git", f->home);
	assert_int_equal(git_repository_open_bare(&repo, path), 0);
	assert_int_equal(git_repository_odb(&out->odb, repo), 0);
	assert_int_equal(git_odb_foreach(out->odb, read_one, out), 0);
	git_odb_free(out->odb);
	out->odb = NULL;
	git_repository_free(repo);
}

static void free_objects(object_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].data);
	free(l->v);
}

/* The same objects, each with the same type and bytes. */
static void assert_same_objects(const object_list *before, const object_list *after)
{
	assert_int_equal(after->n, before->n);
	for (size_t i = 0; i < before->n; i++) {
		size_t k = 0;
		while (k < after->n && !git_oid_equal(&after->v[k].id, &before->v[i].id))
			k++;
		assert_true(k < after->n);
		assert_int_equal(after->v[k].type, before->v[i].type);
		assert_int_equal(after->v[k].len, before->v[i].len);
		assert_memory_equal(after->v[k].data, before->v[i].data, before->v[i].len);
	}
}

/* Uploads count text files of about 6 KiB that differ in one line (so
 * that git finds deltas between them) to instance, auto gc off. */
static void put_similar(fixture *f, const char *instance, int from, int count)
{
	for (int i = from; i < from + count; i++) {
		dk_archive_put_result r;
		dk_archive_put_opts o = opts_for(instance, "report", "plan.txt");
		dk_buf text = DK_BUF_INIT;
		for (int line = 0; line < 150; line++)
			dk_buf_printf(&text,
			              "line %d of the monthly plan, the same in every version\n",
			              line);
		dk_buf_printf(&text, "version %d\n", i);
		assert_int_equal(
		    dk_archive_put_file(&r, f->a, &o, write_temp(f, "similar", text.ptr, text.len)),
		    0);
		dk_buf_free(&text);
	}
}

/* Lines of `git verify-pack -v` over every pack that name a delta. */
static int deltas_in_packs(fixture *f)
{
	int st;
	char *s = run(&st,
	              "for i in '%s'/archive.git/objects/pack/*.idx; do "
	              "git verify-pack -v \"$i\" || exit 1; done | "
	              "grep -cE '^[0-9a-f]{40} [a-z]+ +[0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9a-f]{40}$'",
	              f->home);
	int n = atoi(s);
	free(s);
	return n;
}

/* More than DK_ARCHIVE_AUTO_PACKS uploads, a pack that plain git made with
 * deltas (git repack -adf) and a copy of an upload's pack beside it (its
 * objects in two packs: the oldest upload's, or the newest's, which git
 * makes the base of the others' deltas) are merged into one pack by
 * copying their entries: every object reads back the same through
 * libgit2, git's fsck and verify-pack accept the merged pack, and plain
 * git log and show read it. The repack's deltas are kept when their base
 * comes from the same pack; those whose base came from the copy are
 * written whole. ref_deltas: git names the bases by id (REF_DELTA), not
 * by offset (OFS_DELTA). */
static void merge_with_repacked(void **state, int newest, int ref_deltas)
{
	fixture *f = *state;
	dk_archive_gc_result g;
	object_list before, after;
	char dir[400];
	int st;

	dk_archive_set_auto_gc(f->a, 0);
	snprintf(dir, sizeof(dir), "%s/archive.git/objects/pack", f->home);
	put_similar(f, "i-delta", 0, 12);
	/* the pack of the oldest (or newest) upload kept aside, then plain git
	 * packs it all with deltas */
	free(run(&st,
	         "cd '%s' && c=$(git --git-dir=../.. rev-list %s refs/docket/instances/i-delta | "
	         "head -1) && for i in *.idx; do git show-index < \"$i\" | grep -q \"$c\" && "
	         "p=\"${i%%.idx}\"; done; cp \"$p.pack\" ../kept.pack && cp \"$p.idx\" "
	         "../kept.idx && echo \"$p\" > ../kept.name && "
	         "git --git-dir=../.. -c repack.useDeltaBaseOffset=%s repack -adfq --window=50 "
	         "--depth=50",
	         dir, newest ? "" : "--reverse", ref_deltas ? "false" : "true"));
	assert_int_equal(st, 0);
	assert_true(deltas_in_packs(f) > 0);
	free(run(&st,
	         "cd '%s' && n=$(cat ../kept.name) && mv ../kept.pack \"$n.pack\" && "
	         "mv ../kept.idx \"$n.idx\" && rm ../kept.name && ls *.pack | wc -l",
	         dir));
	assert_int_equal(st, 0);
	reopen(f);
	dk_archive_set_auto_gc(f->a, 0);
	put_similar(f, "i-delta", 12, 4);
	for (int i = 0; i < DK_ARCHIVE_AUTO_PACKS; i++) {
		dk_archive_put_result r;
		char name[32], data[64];
		dk_archive_put_opts o = opts_for("i-many", "report", name);
		snprintf(name, sizeof(name), "m%d.pdf", i);
		snprintf(data, sizeof(data), "merged report %d", i);
		assert_int_equal(
		    dk_archive_put_file(&r, f->a, &o, write_temp(f, "m", data, strlen(data))), 0);
	}
	char *s = run(&st, "ls '%s' | grep -c '\\.pack$'", dir);
	assert_true(atoi(s) > DK_ARCHIVE_AUTO_PACKS);
	free(s);
	read_all(&before, f);

	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_int_equal(g.packs, 1);
	/* the merged pack and its index, nothing else (no temporary file, no
	 * bitmap or reverse index of a pack that is gone) */
	s = run(&st, "ls '%s' | wc -l", dir);
	assert_int_equal(atoi(s), 2);
	free(s);
	s = run(&st, "ls '%s' | grep -c '\\.pack$'", dir);
	assert_int_equal(atoi(s), 1);
	free(s);
	read_all(&after, f);
	assert_same_objects(&before, &after);
	print_message("# %zu objects merged into one pack, %d of them deltas\n", after.n,
	              deltas_in_packs(f));
	if (!newest)
		assert_true(deltas_in_packs(f) > 0);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --full --strict 2>&1", f->home));
	assert_int_equal(st, 0);
	free(run(&st, "git verify-pack -v '%s'/*.idx >/dev/null 2>&1", dir));
	assert_int_equal(st, 0);
	s = run(&st,
	        "git --git-dir='%s/archive.git' log --format=%%s refs/docket/instances/i-delta | "
	        "wc -l",
	        f->home);
	assert_int_equal(st, 0);
	assert_int_equal(atoi(s), 16);
	free(s);
	s = run(&st,
	        "git --git-dir='%s/archive.git' show refs/docket/instances/i-delta~9:draft/report/"
	        "plan.txt | tail -1",
	        f->home);
	assert_int_equal(st, 0);
	assert_string_equal(s, "version 6\n");
	free(s);
	for (int i = 0; i < DK_ARCHIVE_AUTO_PACKS; i++) {
		dk_buf got = DK_BUF_INIT;
		char path[64], data[64];
		snprintf(path, sizeof(path), "draft/report/m%d.pdf", i);
		snprintf(data, sizeof(data), "merged report %d", i);
		assert_int_equal(dk_archive_get(f->a, "i-many", NULL, path, to_buf, &got), 0);
		assert_string_equal(dk_buf_cstr(&got), data);
		dk_buf_free(&got);
	}
	free_objects(&before);
	free_objects(&after);
}

static void gc_merge_copies_entries(void **state)
{
	merge_with_repacked(state, 0, 0);
}

static void gc_merge_copies_ref_deltas(void **state)
{
	merge_with_repacked(state, 0, 1);
}

static void gc_merge_writes_deltas_whole_without_their_base(void **state)
{
	merge_with_repacked(state, 1, 0);
}

/* Packs bigger than the merge reads into memory (1 MiB) are mapped
 * instead: two uploads of 1.5 MB and 1.6 MB, each packed by a gc, and the
 * second gc merges the two packs; both files and every object read back
 * the same. */
static void gc_merge_big_packs(void **state)
{
	fixture *f = *state;
	dk_archive_gc_result g;
	object_list before, after;
	char path[600], want[2][65];
	int st;

	for (int i = 0; i < 2; i++) {
		dk_archive_put_result r;
		dk_archive_put_opts o = opts_for("i-big", "scan", i ? "b.pdf" : "a.pdf");
		snprintf(path, sizeof(path), "%s/big%d", f->dir, i);
		write_big(path, (size_t)(1500 + 100 * i) * 1024, want[i]);
		assert_int_equal(dk_archive_put_file(&r, f->a, &o, path), 0);
		if (i == 1)
			read_all(&before, f);
		assert_int_equal(dk_archive_gc(&g, f->a), 0);
	}
	assert_int_equal(g.packs, 1);
	char *s = run(&st, "find '%s/archive.git/objects/pack' -name '*.pack' -size +2900k | wc -l",
	              f->home);
	assert_int_equal(atoi(s), 1);
	free(s);
	read_all(&after, f);
	assert_same_objects(&before, &after);
	for (int i = 0; i < 2; i++) {
		hash_sink h = {EVP_MD_CTX_new(), 0, 0, 0};
		unsigned char d[32];
		unsigned int dl;
		char got_hex[65];
		EVP_DigestInit_ex(h.md, EVP_sha256(), NULL);
		assert_int_equal(dk_archive_get(f->a, "i-big", NULL,
		                                i ? "draft/scan/b.pdf" : "draft/scan/a.pdf",
		                                to_hash, &h),
		                 0);
		EVP_DigestFinal_ex(h.md, d, &dl);
		EVP_MD_CTX_free(h.md);
		for (int k = 0; k < 32; k++)
			snprintf(got_hex + 2 * k, 3, "%02x", d[k]);
		assert_string_equal(got_hex, want[i]);
	}
	free(run(&st, "git --git-dir='%s/archive.git' fsck --full --strict 2>&1", f->home));
	assert_int_equal(st, 0);
	free_objects(&before);
	free_objects(&after);
}

/* A pack whose index is version 1 (git writes one when told to with
 * pack.indexVersion=1) has no CRC32s to check copies against: the merge
 * refuses it, says how to write the index again, keeps every pack, and
 * goes through once git index-pack has. */
static void gc_merge_refuses_index_v1(void **state)
{
	fixture *f = *state;
	dk_archive_gc_result g;
	char dir[400];
	int st;

	dk_archive_set_auto_gc(f->a, 0);
	snprintf(dir, sizeof(dir), "%s/archive.git/objects/pack", f->home);
	for (int i = 0; i < 34; i++) {
		dk_archive_put_result r;
		char name[32], data[64];
		dk_archive_put_opts o = opts_for("i-v1", "report", name);
		snprintf(name, sizeof(name), "v%d.pdf", i);
		snprintf(data, sizeof(data), "old index report %d", i);
		assert_int_equal(
		    dk_archive_put_file(&r, f->a, &o, write_temp(f, "v", data, strlen(data))), 0);
	}
	free(run(&st,
	         "cd '%s' && p=$(ls *.pack | head -1) && chmod u+w \"${p%%.pack}.idx\" && "
	         "git -c pack.indexVersion=1 index-pack \"$p\" >/dev/null && "
	         "head -c 4 \"${p%%.pack}.idx\" | od -An -tx1 | grep -q '00 00 00'",
	         dir));
	assert_int_equal(st, 0);
	assert_true(dk_archive_gc(&g, f->a) < 0);
	print_message("# %s\n", dk_error_last());
	assert_non_null(strstr(dk_error_last(), "has a version 1 index"));
	assert_non_null(strstr(dk_error_last(), "git index-pack"));
	char *s = run(&st, "ls '%s' | grep -c '\\.pack$'", dir);
	assert_int_equal(atoi(s), 34);
	free(s);
	free(run(&st,
	         "cd '%s' && for p in *.pack; do git index-pack \"$p\" >/dev/null || exit 1; done",
	         dir));
	assert_int_equal(st, 0);
	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_int_equal(g.packs, 1);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --full --strict 2>&1", f->home));
	assert_int_equal(st, 0);
}

/* A pack with one byte flipped inside an entry is not copied into a pack
 * that looks good: the merge fails saying which pack is damaged, nothing
 * new is left in objects/pack and every old pack is kept; once the byte is
 * back the merge goes through. */
static void gc_merge_refuses_damaged_pack(void **state)
{
	fixture *f = *state;
	dk_archive_gc_result g;
	char dir[400], victim[700];
	int st;

	dk_archive_set_auto_gc(f->a, 0);
	snprintf(dir, sizeof(dir), "%s/archive.git/objects/pack", f->home);
	for (int i = 0; i < 40; i++) {
		dk_archive_put_result r;
		char name[32], data[64];
		dk_archive_put_opts o = opts_for("i-crc", "report", name);
		snprintf(name, sizeof(name), "c%d.pdf", i);
		snprintf(data, sizeof(data), "checked report %d", i);
		assert_int_equal(
		    dk_archive_put_file(&r, f->a, &o, write_temp(f, "c", data, strlen(data))), 0);
	}
	char *s = run(&st, "cd '%s' && ls *.pack | head -1", dir);
	assert_int_equal(st, 0);
	s[strcspn(s, "\n")] = '\0';
	snprintf(victim, sizeof(victim), "%s/%s", dir, s);
	free(s);
	/* byte 20: inside the first entry (which starts at 12), past its header */
	assert_int_equal(chmod(victim, 0644), 0);
	int fd = open(victim, O_RDWR);
	unsigned char c;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, 20), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, 20), 1);

	assert_true(dk_archive_gc(&g, f->a) < 0);
	print_message("# %s\n", dk_error_last());
	assert_non_null(strstr(dk_error_last(), "is damaged"));
	assert_non_null(strstr(dk_error_last(), "does not match its CRC32"));
	assert_non_null(strstr(dk_error_last(), "the old ones are kept"));
	s = run(&st, "ls '%s' | grep -c '\\.pack$'", dir);
	assert_int_equal(atoi(s), 40);
	free(s);
	s = run(&st, "ls '%s' | grep -c tmp_pack_dk_", dir);
	assert_int_equal(atoi(s), 0);
	free(s);

	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, 20), 1);
	close(fd);
	assert_int_equal(dk_archive_gc(&g, f->a), 0);
	assert_int_equal(g.packs, 1);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --full --strict 2>&1", f->home));
	assert_int_equal(st, 0);
}

static void auto_gc_past_threshold(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r;
	char name[32];
	int ran = 0;
	/* 256 objects → one expected per fan-out directory */
	dk_archive_set_auto_gc(f->a, 256);
	for (int i = 0; i < 200; i++) {
		dk_archive_put_opts o = opts_for("i-1", "report", name);
		snprintf(name, sizeof(name), "n%d.pdf", i);
		assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "r", name, 4)), 0);
	}
	/* 200 puts wrote ~800 objects; auto-gc kept the loose count bounded */
	size_t loose = count_loose(f);
	print_message("# after 200 puts with auto-gc at 256: %zu loose objects\n", loose);
	assert_true(loose < 600);
	/* each put writes a pack; auto-gc merges them past
	 * DK_ARCHIVE_AUTO_PACKS */
	int st;
	char *s = run(&st, "ls '%s/archive.git/objects/pack' | grep -c '\\.pack$'", f->home);
	assert_true(atoi(s) >= 1);
	assert_true(atoi(s) <= DK_ARCHIVE_AUTO_PACKS + 1);
	free(s);
	/* the handle reopened its repository after its gcs and every
	 * DK_ARCHIVE_REOPEN_WRITES puts, keeping its pack view: every put
	 * built on the one before, and the archive is whole */
	s = run(&st,
	        "git --git-dir='%s/archive.git' rev-list --count refs/docket/instances/i-1 && "
	        "git --git-dir='%s/archive.git' fsck --strict >/dev/null 2>&1 && "
	        "git --git-dir='%s/archive.git' ls-tree -r refs/docket/instances/i-1 | wc -l",
	        f->home, f->home, f->home);
	assert_int_equal(st, 0);
	assert_string_equal(s, "200\n200\n");
	free(s);
	dk_archive_set_auto_gc(f->a, 0);
	assert_int_equal(dk_archive_maybe_gc(&ran, f->a), 0);
	assert_int_equal(ran, 0);
}

static void push_twice_idempotent(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r;
	dk_archive_put_opts o = opts_for("i-1", "plan", "a.pdf");
	char remote[600];
	size_t pushed = 0;
	int st;

	snprintf(remote, sizeof(remote), "%s/backup.git", f->dir);
	/* nothing archived yet: a no-op */
	assert_int_equal(dk_archive_push(&pushed, f->a, remote), 0);
	assert_int_equal(pushed, 0);
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "a", "A", 1)), 0);
	o.instance = "i-2";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "a", "B", 1)), 0);
	assert_int_equal(dk_archive_push(&pushed, f->a, remote), 0);
	assert_int_equal(pushed, 2);
	assert_int_equal(dk_archive_push(&pushed, f->a, remote), 0);
	assert_int_equal(pushed, 2);
	char *s = run(&st, "git --git-dir='%s' rev-parse refs/docket/instances/i-2", remote);
	assert_int_equal(st, 0);
	assert_memory_equal(s, r.commit, 40);
	free(s);
	/* one more upload, pushed again: the remote follows */
	o.name = "b.pdf";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "a", "C", 1)), 0);
	assert_int_equal(dk_archive_push(&pushed, f->a, remote), 0);
	s = run(&st, "git --git-dir='%s' rev-parse refs/docket/instances/i-2", remote);
	assert_memory_equal(s, r.commit, 40);
	free(s);
	/* a remote whose history differs is reported, not overwritten */
	free(run(&st,
	         "git --git-dir='%s' update-ref refs/docket/instances/i-2 "
	         "$(git --git-dir='%s' commit-tree -m other "
	         "4b825dc642cb6eb9a060e54bf8d69288fbee4904)",
	         remote, remote));
	assert_int_equal(st, 0);
	o.name = "c.pdf";
	assert_int_equal(dk_archive_put_file(&r, f->a, &o, write_temp(f, "a", "D", 1)), 0);
	int rc = dk_archive_push(&pushed, f->a, remote);
	print_message("# push to a diverged remote: %s\n", dk_error_last());
	assert_int_equal(rc, DK_ECONFLICT);
	s = run(&st, "git --git-dir='%s' log --format=%%s -1 refs/docket/instances/i-2", remote);
	assert_string_equal(s, "other\n");
	free(s);
}

/* ---- plain git reads what docket wrote ---------------------------------------------- */

static void plain_git_reads_archive(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2;
	dk_archive_put_opts o = opts_for("i-7", "plan", "月度计划.pdf");
	dk_archive_note_opts n = DK_ARCHIVE_NOTE_OPTS_INIT;
	const char *content = "%PDF-1.7 计划 content\n";
	char c[41], sha[65];
	int st;
	char *s;

	o.event = "ev-a";
	assert_int_equal(
	    dk_archive_put_file(&r1, f->a, &o, write_temp(f, "p", content, strlen(content))), 0);
	n.instance = "i-7";
	n.flow = "monthly-plan@1";
	n.from_state = "draft";
	n.state = "review";
	n.transition = "submit";
	n.event = "ev-b";
	n.actor = "li";
	n.author_name = "李明";
	n.time = T0 + 60;
	assert_int_equal(dk_archive_note(c, f->a, &n), 0);
	o.name = "second.pdf";
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, write_temp(f, "q", "2", 1)), 0);

	s = run(&st,
	        "git -c core.quotepath=off --git-dir='%s/archive.git' log "
	        "--format='%%H|%%an|%%ae|%%cn|%%ce|%%at|%%s' refs/docket/instances/i-7",
	        f->home);
	assert_int_equal(st, 0);
	dk_buf want = DK_BUF_INIT;
	dk_buf_printf(&want,
	              "%s|李明|li@example.com|docket|docket@docket.invalid|%d|attach "
	              "plan/second.pdf\n"
	              "%s|李明|li@docket.invalid|docket|docket@docket.invalid|%d|submit: draft "
	              "-> review\n"
	              "%s|李明|li@example.com|docket|docket@docket.invalid|%d|attach "
	              "plan/月度计划.pdf\n",
	              r2.commit, T0, c, T0 + 60, r1.commit, T0);
	assert_string_equal(s, want.ptr);
	free(s);
	dk_buf_free(&want);

	s = run(&st, "git --git-dir='%s/archive.git' log -1 --format='%%(trailers:only,unfold)' %s",
	        f->home, r1.commit);
	assert_int_equal(st, 0);
	dk_buf_printf(&want,
	              "Docket-Instance: i-7\nDocket-Flow: monthly-plan@1\nDocket-State: draft\n"
	              "Docket-Evidence: plan\nDocket-Name: 月度计划.pdf\nDocket-Sha256: %s\n"
	              "Docket-Size: %zu\nDocket-Actor: li\nDocket-Event: ev-a\n\n",
	              r1.sha256, strlen(content));
	assert_string_equal(s, want.ptr);
	free(s);
	dk_buf_free(&want);

	s = run(&st, "git --git-dir='%s/archive.git' log -1 --format='%%(trailers:only,unfold)' %s",
	        f->home, c);
	assert_string_equal(s, "Docket-Instance: i-7\nDocket-Flow: monthly-plan@1\n"
	                       "Docket-State: review\nDocket-Transition: submit\n"
	                       "Docket-Actor: li\nDocket-Event: ev-b\n\n");
	free(s);

	/* git show of the file gives the same bytes; the note changes no file */
	s = run(&st,
	        "git --git-dir='%s/archive.git' show 'refs/docket/instances/i-7:draft/plan/"
	        "月度计划.pdf'",
	        f->home);
	assert_int_equal(st, 0);
	assert_string_equal(s, content);
	free(s);
	dk_sha256_hex(sha, content, strlen(content));
	assert_string_equal(sha, r1.sha256);
	s = run(&st, "git --git-dir='%s/archive.git' show --format= --name-only %s | wc -l",
	        f->home, c);
	assert_int_equal(atoi(s), 0);
	free(s);
	s = run(&st, "git --git-dir='%s/archive.git' rev-list --parents -1 %s", f->home, r2.commit);
	dk_buf_printf(&want, "%s %s\n", r2.commit, c);
	assert_string_equal(s, want.ptr);
	dk_buf_free(&want);
	free(s);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(st, 0);
}

static void open_twice_first_time(void **state)
{
	fixture *f = *state;
	char home[400];
	dk_archive *a = NULL, *b = NULL;
	snprintf(home, sizeof(home), "%s/other", f->dir);
	assert_int_equal(dk_archive_open(&a, home), 0);
	assert_int_equal(dk_archive_open(&b, home), 0);
	assert_non_null(strstr(dk_archive_path(a), "/other/archive.git"));
	dk_archive_free(a);
	dk_archive_free(b);
	assert_int_equal(dk_archive_open(&a, "/proc/nope/home"), DK_EINVALID);
	assert_null(a);
}

/* ---- an upload's trees against libgit2's ------------------------------- */

/* The reference for the trees an upload writes: libgit2's
 * git_tree_create_updated on the same baseline, in a repository over the
 * archive whose writes stay in memory (a mempack backend in front), so
 * the archive gets nothing from it. */
typedef struct {
	git_repository *repo;
} reference;

static void reference_open(reference *r, const char *home)
{
	char path[600];
	git_odb *odb = NULL;
	git_odb_backend *mem = NULL;
	snprintf(path, sizeof(path), "%s/archive.git", home);
	assert_int_equal(git_repository_open_bare(&r->repo, path), 0);
	assert_int_equal(git_repository_odb(&odb, r->repo), 0);
	assert_int_equal(git_mempack_new(&mem), 0);
	assert_int_equal(git_odb_add_backend(odb, mem, 1000), 0);
	git_odb_free(odb);
}

/* The tree libgit2 makes of the instance's tip with state/kind/name set to
 * a blob of content (0, *want), or its refusal (< 0). *blob: the blob's id. */
static int reference_put(git_oid *want, git_oid *blob, reference *r, const char *instance,
                         const char *state, const char *kind, const char *name, const char *content)
{
	char refname[300], path[1200];
	git_oid tip, empty_id;
	git_commit *c = NULL;
	git_tree *base = NULL;
	git_treebuilder *tb = NULL;
	git_tree_update upd;
	int rc;

	assert_int_equal(git_blob_create_from_buffer(blob, r->repo, content, strlen(content)), 0);
	snprintf(refname, sizeof(refname), "refs/docket/instances/%s", instance);
	if (git_reference_name_to_id(&tip, r->repo, refname) == 0) {
		assert_int_equal(git_commit_lookup(&c, r->repo, &tip), 0);
		assert_int_equal(git_commit_tree(&base, c), 0);
	} else {
		assert_int_equal(git_treebuilder_new(&tb, r->repo, NULL), 0);
		assert_int_equal(git_treebuilder_write(&empty_id, tb), 0);
		assert_int_equal(git_tree_lookup(&base, r->repo, &empty_id), 0);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", state, kind, name);
	memset(&upd, 0, sizeof(upd));
	upd.action = GIT_TREE_UPDATE_UPSERT;
	upd.id = *blob;
	upd.filemode = GIT_FILEMODE_BLOB;
	upd.path = path;
	rc = git_tree_create_updated(want, r->repo, base, 1, &upd);
	git_error_clear();
	git_treebuilder_free(tb);
	git_tree_free(base);
	git_commit_free(c);
	return rc;
}

/* The tree of commit hex, read through r. */
static void tree_of(git_oid *out, reference *r, const char *hex)
{
	git_oid id;
	git_commit *c = NULL;
	assert_int_equal(git_oid_fromstr(&id, hex), 0);
	assert_int_equal(git_commit_lookup(&c, r->repo, &id), 0);
	git_oid_cpy(out, git_commit_tree_id(c));
	git_commit_free(c);
}

/* Writes (to disk, through plain libgit2) a commit on the instance's ref
 * whose tree holds the given paths ("state/kind/name" files, "x" files at
 * the top, "s/x" files in a state): what a hand-written archive may hold
 * beside docket's own layout. */
static void hand_commit(const char *home, const char *instance, const char *const *paths, size_t n)
{
	char path[600], refname[300];
	git_repository *repo = NULL;
	git_index *idx = NULL;
	git_oid blob, tree, commit;
	git_tree *t = NULL;
	git_signature *sig = NULL;
	git_reference *ref = NULL;

	snprintf(path, sizeof(path), "%s/archive.git", home);
	assert_int_equal(git_repository_open_bare(&repo, path), 0);
	assert_int_equal(git_index_new(&idx), 0);
	for (size_t i = 0; i < n; i++) {
		git_index_entry e;
		assert_int_equal(
		    git_blob_create_from_buffer(&blob, repo, paths[i], strlen(paths[i])), 0);
		memset(&e, 0, sizeof(e));
		e.mode = GIT_FILEMODE_BLOB;
		e.id = blob;
		e.path = paths[i];
		assert_int_equal(git_index_add(idx, &e), 0);
	}
	assert_int_equal(git_index_write_tree_to(&tree, idx, repo), 0);
	assert_int_equal(git_tree_lookup(&t, repo, &tree), 0);
	assert_int_equal(git_signature_new(&sig, "hand", "hand@example.com", T0, 0), 0);
	assert_int_equal(
	    git_commit_create(&commit, repo, NULL, sig, sig, NULL, "by hand", t, 0, NULL), 0);
	snprintf(refname, sizeof(refname), "refs/docket/instances/%s", instance);
	assert_int_equal(git_reference_create(&ref, repo, refname, &commit, 1, NULL), 0);
	git_reference_free(ref);
	git_signature_free(sig);
	git_tree_free(t);
	git_index_free(idx);
	git_repository_free(repo);
}

static unsigned int rnd(unsigned int *seed, unsigned int n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 8) % n;
}

/* A name from pieces that sort around '/' ('-' '.' '0' are 0x2d-0x30) and
 * past ASCII, so neighbours differ in their last byte, in one byte
 * mid-name, or are prefixes of each other. */
static void random_name(char *out, size_t size, unsigned int *seed)
{
	static const char *const pieces[] = {"a", "b",  ".",  "-",    "0",
	                                     "~", "中", "文", ".pdf", "a b"};
	size_t len = 0, k = 1 + rnd(seed, 4);
	out[0] = '\0';
	for (size_t i = 0; i < k; i++) {
		const char *p = pieces[rnd(seed, sizeof(pieces) / sizeof(pieces[0]))];
		if (len + strlen(p) + 1 > size)
			break;
		memcpy(out + len, p, strlen(p) + 1);
		len += strlen(p);
	}
}

/*
 * For hundreds of random sequences of uploads (one instance each, from no
 * tree or from a hand-written one with files where docket keeps
 * directories), the tree of every upload is the one libgit2's
 * git_tree_create_updated makes of the same update on the same baseline,
 * and an upload is refused exactly when libgit2 refuses the update (a name
 * there as another type, a name git does not allow). git fsck --strict
 * accepts the archive at the end.
 */
static void put_trees_match_libgit2(void **state)
{
	static const char *const states[] = {"draft", "a", "a.b", "a-b", "a0", "审核", "draft.txt"};
	static const char *const kinds[] = {"plan", "plan.pdf", "plan-x", "plan0", "p", "附件"};
	static const char *const fixed[] = {"a",
	                                    "a.pdf",
	                                    "a-b",
	                                    "a0",
	                                    "a.",
	                                    "报告.pdf",
	                                    "报告",
	                                    "x1",
	                                    "x2",
	                                    ".git",
	                                    ".GIT",
	                                    ".git.",
	                                    "git~1",
	                                    ".gitx",
	                                    ".git:x",
	                                    "Git~1:y",
	                                    ".gIt::$INDEX_ALLOCATION",
	                                    "gitx",
	                                    "g",
	                                    "plan",
	                                    "draft"};
	static const char *const hand[] = {
	    "README",   "a",      "a.pdf",          "draft",       "draft.txt/x", "a/plan",
	    "a/readme", "a0/p/x", "draft/plan.pdf", "a.b/p/a.pdf", "审核/附件",   "a-b/plan/a/x"};
	fixture *f = *state;
	const char *env = getenv("DOCKET_TEST_SEED");
	const unsigned int seed0 =
	    env ? (unsigned int)strtoul(env, NULL, 10) : (unsigned int)time(NULL);
	unsigned int seed = seed0;
	int sequences = 300, uploads = 0, refused = 0, st;
	char content[64], inst[32], name[64];

	print_message("# random uploads, seed %u (DOCKET_TEST_SEED)\n", seed0);
	dk_archive_set_flush(f->a, 0);
	for (int s = 0; s < sequences; s++) {
		reference r;
		/* a long one now and then: a kind of 200 files */
		int steps = s % 100 == 7 ? 200 : 1 + (int)rnd(&seed, 12);
		snprintf(inst, sizeof(inst), "t-%d", s);
		if (rnd(&seed, 4) == 0) {
			const char *paths[6];
			size_t n = 1 + rnd(&seed, 5);
			for (size_t i = 0; i < n; i++)
				paths[i] = hand[rnd(&seed, sizeof(hand) / sizeof(hand[0]))];
			/* one path may not be both a file and a directory */
			for (size_t i = 0; i < n; i++)
				for (size_t j = 0; j < n; j++) {
					size_t li = strlen(paths[i]);
					if (i != j && !strncmp(paths[i], paths[j], li) &&
					    (paths[j][li] == '/' || paths[j][li] == '\0'))
						paths[j] = paths[i];
				}
			for (size_t i = 0; i < n; i++)
				for (size_t j = i + 1; j < n; j++)
					if (paths[j] == paths[i])
						paths[j--] = paths[--n];
			hand_commit(f->home, inst, paths, n);
		}
		reference_open(&r, f->home);
		for (int i = 0; i < steps; i++) {
			dk_archive_put_opts o;
			dk_archive_put_result res;
			git_oid want, got, blob;
			int rc_ref, rc;
			const char *kind = kinds[rnd(&seed, sizeof(kinds) / sizeof(kinds[0]))];
			if (steps == 200) {
				snprintf(name, sizeof(name), "f%03u.pdf", rnd(&seed, 400));
				kind = "plan";
			} else if (rnd(&seed, 3) == 0) {
				snprintf(name, sizeof(name), "%s",
				         fixed[rnd(&seed, sizeof(fixed) / sizeof(fixed[0]))]);
			} else {
				random_name(name, sizeof(name), &seed);
			}
			o = opts_for(inst, kind, name);
			o.state =
			    states[steps == 200 ? 0
			                        : rnd(&seed, sizeof(states) / sizeof(states[0]))];
			if (dk_archive_put_check(&o, -1) < 0)
				continue; /* docket refuses the name itself */
			snprintf(content, sizeof(content), "v %d %d %u", s, i, rnd(&seed, 3));
			rc_ref =
			    reference_put(&want, &blob, &r, inst, o.state, o.kind, o.name, content);
			rc = dk_archive_put_file(&res, f->a, &o,
			                         write_temp(f, "in", content, strlen(content)));
			if (rc_ref < 0) {
				if (rc == 0)
					fail_msg(
					    "seed %u: libgit2 refuses %s/%s/%s, docket wrote it",
					    seed0, o.state, o.kind, o.name);
				refused++;
				continue;
			}
			if (rc != 0)
				fail_msg("seed %u: %s/%s/%s refused: %s", seed0, o.state, o.kind,
				         o.name, dk_error_last());
			tree_of(&got, &r, res.commit);
			if (!git_oid_equal(&got, &want)) {
				char g[41], w[41];
				git_oid_tostr(g, sizeof(g), &got);
				git_oid_tostr(w, sizeof(w), &want);
				fail_msg("seed %u: %s step %d %s/%s/%s: tree %s, libgit2 %s", seed0,
				         inst, i, o.state, o.kind, o.name, g, w);
			}
			{
				char b[41];
				git_oid_tostr(b, sizeof(b), &blob);
				assert_string_equal(res.blob, b);
			}
			uploads++;
		}
		git_repository_free(r.repo);
	}
	print_message("# %d uploads matched libgit2's trees, %d refused by both\n", uploads,
	              refused);
	assert_true(uploads > 1000);
	assert_true(refused > 0);
	free(run(&st, "git --git-dir='%s/archive.git' fsck --strict 2>&1", f->home));
	assert_int_equal(st, 0);
}

/* The instance's tip, read from the archive by plain libgit2. */
static int tip_of(fixture *f, const char *instance, git_oid *out)
{
	char path[600], refname[300];
	git_repository *repo = NULL;
	int rc;
	snprintf(path, sizeof(path), "%s/archive.git", f->home);
	snprintf(refname, sizeof(refname), "refs/docket/instances/%s", instance);
	assert_int_equal(git_repository_open_bare(&repo, path), 0);
	rc = git_reference_name_to_id(out, repo, refname);
	git_repository_free(repo);
	return rc;
}

/* Uploading a name again keeps one entry, naming the new blob, among its
 * neighbours in git's order; a file where docket keeps a directory, or a
 * directory where the file goes (an archive written by hand), is refused
 * with a message saying so, and the ref stays. */
static void put_replaces_entry_refuses_other_type(void **state)
{
	fixture *f = *state;
	dk_archive_put_result r1, r2, r3;
	dk_archive_put_opts o = opts_for("i-1", "plan", "a.pdf");
	reference r;
	git_oid id, tip;
	git_commit *c = NULL;
	git_tree *root = NULL;
	git_object *kind = NULL;
	const char *names[] = {"a", "a.pdf", "a0"};
	const char *hand[] = {"draft/plan/x.pdf/inner", "review"};
	int rc;

	for (size_t i = 0; i < 3; i++) {
		o.name = names[i];
		assert_int_equal(
		    dk_archive_put_file(&r1, f->a, &o, write_temp(f, "in", names[i], 1)), 0);
	}
	o.name = "a.pdf";
	assert_int_equal(dk_archive_put_file(&r2, f->a, &o, write_temp(f, "in", "second", 6)), 0);
	reference_open(&r, f->home);
	assert_int_equal(git_oid_fromstr(&id, r2.commit), 0);
	assert_int_equal(git_commit_lookup(&c, r.repo, &id), 0);
	assert_int_equal(git_commit_tree(&root, c), 0);
	assert_int_equal(
	    git_object_lookup_bypath(&kind, (git_object *)root, "draft/plan", GIT_OBJECT_TREE), 0);
	assert_int_equal(git_tree_entrycount((git_tree *)kind), 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(
		    git_tree_entry_name(git_tree_entry_byindex((git_tree *)kind, i)), names[i]);
	assert_int_equal(git_oid_fromstr(&id, r2.blob), 0);
	assert_true(
	    git_oid_equal(git_tree_entry_id(git_tree_entry_byindex((git_tree *)kind, 1)), &id));
	git_object_free(kind);
	git_tree_free(root);
	git_commit_free(c);
	git_repository_free(r.repo);

	/* by hand: a directory named x.pdf, a file named review */
	hand_commit(f->home, "i-2", hand, 2);
	assert_int_equal(tip_of(f, "i-2", &tip), 0);
	o = opts_for("i-2", "plan", "x.pdf");
	rc = dk_archive_put_file(&r3, f->a, &o, write_temp(f, "in", "x", 1));
	assert_int_equal(rc, DK_ECONFLICT);
	assert_non_null(strstr(dk_error_last(), "'x.pdf' is a directory"));
	o = opts_for("i-2", "plan", "y.pdf");
	o.state = "review";
	rc = dk_archive_put_file(&r3, f->a, &o, write_temp(f, "in", "y", 1));
	assert_int_equal(rc, DK_ECONFLICT);
	assert_non_null(strstr(dk_error_last(), "'review' is a file"));
	assert_int_equal(tip_of(f, "i-2", &id), 0);
	assert_true(git_oid_equal(&id, &tip));
	/* beside them, uploads go on */
	o.state = "draft";
	assert_int_equal(dk_archive_put_file(&r3, f->a, &o, write_temp(f, "in", "y", 1)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(names_hostile_refused),
	    cmocka_unit_test(names_unicode_kept),
	    cmocka_unit_test(instance_ids),
	    cmocka_unit_test_setup_teardown(put_small_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_same_name_replaces_path_keeps_history, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(put_trees_match_libgit2, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_replaces_entry_refuses_other_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(handles_take_turns, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_50mb_streamed, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_big_stored_or_deflated, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_small_stored_or_deflated, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_same_content_stored_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_from_pipe, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_oversize_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(put_types_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(note_and_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(verify_finds_unrecorded_and_altered, setup, teardown),
	    cmocka_unit_test_setup_teardown(concurrent_puts_lose_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(concurrent_first_commits_lose_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(uploads_at_once_share_a_pack, setup, teardown),
	    cmocka_unit_test_setup_teardown(notes_batch_chains_per_instance, setup, teardown),
	    cmocka_unit_test_setup_teardown(notes_batch_refusal_stops_its_instance_only, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(notes_batch_concurrent_lose_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(notes_batch_writes_one_pack, setup, teardown),
	    cmocka_unit_test_setup_teardown(notes_packs_stay_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_removes_stale_pack_leftovers, setup, teardown),
	    cmocka_unit_test_setup_teardown(sync_modes, setup, teardown),
	    cmocka_unit_test_setup_teardown(stale_lock_recovered, setup, teardown),
	    cmocka_unit_test_setup_teardown(refs_recovered_after_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(refs_recovery_kept_when_it_cannot_write, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(journal_puts_back_packs_and_refs, setup, teardown),
	    cmocka_unit_test_setup_teardown(journal_hole_and_torn_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(journal_rotates_under_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(journal_head_damaged_uploads_go_on, setup, teardown),
	    cmocka_unit_test_setup_teardown(journal_ref_with_spare_content_put_right, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(journal_text_of_older_docket_recovered, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(gc_then_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_packs_stay_geometric, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_merge_copies_entries, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_merge_copies_ref_deltas, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_merge_writes_deltas_whole_without_their_base, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(gc_merge_big_packs, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_merge_refuses_index_v1, setup, teardown),
	    cmocka_unit_test_setup_teardown(gc_merge_refuses_damaged_pack, setup, teardown),
	    cmocka_unit_test_setup_teardown(auto_gc_past_threshold, setup, teardown),
	    cmocka_unit_test_setup_teardown(push_twice_idempotent, setup, teardown),
	    cmocka_unit_test_setup_teardown(plain_git_reads_archive, setup, teardown),
	    cmocka_unit_test_setup_teardown(open_twice_first_time, setup, teardown),
	};
	/* DOCKET_TEST_ONLY=NAME runs the tests whose names match (a glob). */
	if (getenv("DOCKET_TEST_ONLY"))
		cmocka_set_test_filter(getenv("DOCKET_TEST_ONLY"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
