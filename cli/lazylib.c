/*
 * lazylib.c - libcurl, libmicrohttpd, libgit2, libxml2 and libcrypto,
 * loaded by the docket command only when a command first calls them.
 *
 * Linked as shared libraries, the two brought in 40 of the binary's 49:
 * libcurl pulls nghttp2, rtmp, ssh2, psl, idn2, LDAP, Kerberos, GnuTLS,
 * brotli, zstd..., and the dynamic loader mapped and relocated them all
 * before main, for every command. That was most of a `docket tick` or a
 * `docket act`, neither of which sends or serves HTTP. libgit2 brought 13
 * more (mbedTLS, libssh2, Kerberos, PCRE2, http-parser...) to every command,
 * though only those that read or write the evidence archive use it.
 * libxml2 (with ICU's libicuuc and libicudata, libstdc++, libz, liblzma)
 * and libcrypto were then most of what remained: about 3.5 ms of loading
 * for commands that parse no flow and hash nothing (tick with nothing due,
 * list, inbox, log, help).
 *
 * So the docket binary does not link them. It defines instead each curl_,
 * MHD_, git_, xml and OpenSSL function that libdocket.a calls, with the
 * headers' own prototypes: a definition in the executable is what the
 * library's objects bind to. Each one dlopens its library on the first call
 * (once, under pthread_once), looks its symbol up once, and calls it. Only
 * the command binary carries this; libdocket.a and the tests and benchmarks
 * linked with it still link the libraries as usual, so the library's
 * behaviour is the same either way. libxml2's variables (xmlFree,
 * xmlParserMaxDepth) cannot be imported so: libdocket.a reads them through
 * util/xmlvar.h's functions, which this file defines too.
 *
 * Commands that always need a library (serve, dispatch, hooks add and
 * rotate; attach, archive; check, graph, deploy, org load, start, act,
 * recall, delegate; token create) ask for it up front with dk_cli_need,
 * which fails with a message naming the library and the package to install.
 * A call that needs a library no command asked for (a webhook URL checked
 * while an act queues a delivery, the archive notes a tick's catch-up
 * writes, what `evidence` and `verify` read, the flow `show` loads, the
 * timers a tick fires) loads it then; if it cannot, the process prints the
 * same message and exits with status 1 before the call, so nothing
 * half-done is committed.
 *
 * The libgit2, libxml2 and libcrypto wrappers are generated from their
 * headers by tools/gen_lazy.py (the lists below are its output); a
 * prototype that changes is a compile error here, never a wrong call, and a
 * function that libdocket.a starts to call is a link error until the list
 * is made again:
 *   python3 tools/gen_lazy.py LIB_GIT git2.h git2/sys/commit.h
 *     git2/sys/odb_backend.h -- NAMES
 *   python3 tools/gen_lazy.py LIB_XML libxml/parser.h libxml/tree.h
 *     libxml/relaxng.h libxml/xpath.h libxml/xpathInternals.h
 *     libxml/xmlerror.h -- NAMES
 *   python3 tools/gen_lazy.py LIB_CRYPTO openssl/evp.h openssl/hmac.h
 *     openssl/sha.h openssl/rand.h openssl/crypto.h openssl/params.h -- NAMES
 * NAMES being the library's symbols that `nm -u build/release/libdocket.a`
 * lists (less git_libgit2_opts, and less the two variables above).
 *
 * libgit2 loaded with RTLD_LOCAL still resolves mbedtls_x509_crt_parse_file
 * in the executable first (cli/git_tls.c): the Makefile exports it.
 *
 * The sonames come from the build (the -dev packages' links, see the
 * Makefile); DOCKET_LIBCURL, DOCKET_LIBMICROHTTPD, DOCKET_LIBGIT2,
 * DOCKET_LIBXML2 and DOCKET_LIBCRYPTO name another file (the tests use them
 * to see what a missing library does).
 */
#define CURL_DISABLE_TYPECHECK
#define OPENSSL_SUPPRESS_DEPRECATED
#include "cli/cli.h"

#include "util/error.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <git2.h>
#include <git2/sys/commit.h>
#include <git2/sys/odb_backend.h>
#include <libxml/parser.h>
#include <libxml/relaxng.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* curl.h wraps these three in same-named macros; the definitions below are
 * the functions themselves. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt

/* The Makefile reads both from the -dev links; these are Debian 12's. */
#ifndef DK_LIBCURL_SONAME
#define DK_LIBCURL_SONAME "libcurl.so.4"
#endif
#ifndef DK_LIBMHD_SONAME
#define DK_LIBMHD_SONAME "libmicrohttpd.so.12"
#endif
#ifndef DK_LIBGIT2_SONAME
#define DK_LIBGIT2_SONAME "libgit2.so.1.5"
#endif
#ifndef DK_LIBXML2_SONAME
#define DK_LIBXML2_SONAME "libxml2.so.2"
#endif
#ifndef DK_LIBCRYPTO_SONAME
#define DK_LIBCRYPTO_SONAME "libcrypto.so.3"
#endif

enum { LIB_CURL, LIB_MHD, LIB_GIT, LIB_XML, LIB_CRYPTO };

typedef struct {
	const char *what;   /* "libcurl" */
	const char *soname; /* what dlopen is given by default */
	const char *env;    /* the variable naming another file */
	const char *pkg;    /* the Debian package that ships it */
	void *handle;
	char why[512]; /* dlerror's message when the load failed */
} lazylib;

static lazylib libs[] = {
    {"libcurl", DK_LIBCURL_SONAME, "DOCKET_LIBCURL", "libcurl4", NULL, ""},
    {"libmicrohttpd", DK_LIBMHD_SONAME, "DOCKET_LIBMICROHTTPD", "libmicrohttpd12", NULL, ""},
    {"libgit2", DK_LIBGIT2_SONAME, "DOCKET_LIBGIT2", "libgit2-1.5", NULL, ""},
    {"libxml2", DK_LIBXML2_SONAME, "DOCKET_LIBXML2", "libxml2", NULL, ""},
    {"libcrypto", DK_LIBCRYPTO_SONAME, "DOCKET_LIBCRYPTO", "libssl3", NULL, ""},
};
static pthread_once_t once[] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT,
                                PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

static void load(lazylib *l)
{
	const char *file = getenv(l->env);
	if (!file || !*file)
		file = l->soname;
	/* RTLD_LOCAL: the symbols reach docket through dlsym only, never
	 * through the global scope where they would meet the shim's. */
	l->handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!l->handle) {
		const char *e = dlerror();
		snprintf(l->why, sizeof(l->why), "%s", e ? e : file);
	}
}
static void load_curl(void)
{
	load(&libs[LIB_CURL]);
}
static void load_mhd(void)
{
	load(&libs[LIB_MHD]);
}
static void load_git(void)
{
	load(&libs[LIB_GIT]);
}
static void load_xml(void)
{
	load(&libs[LIB_XML]);
}
static void load_crypto(void)
{
	load(&libs[LIB_CRYPTO]);
}

static lazylib *loaded(int lib)
{
	static void (*const loaders[])(void) = {load_curl, load_mhd, load_git, load_xml,
	                                        load_crypto};
	pthread_once(&once[lib], loaders[lib]);
	return &libs[lib];
}

static int need(int lib, const char *cmd)
{
	lazylib *l = loaded(lib);
	if (l->handle)
		return 0;
	const char *env = getenv(l->env);
	return dk_error_set(DK_EINTERNAL,
	                    "%s could not be loaded (%s), and %s%s%s needs it: install the "
	                    "Debian package %s (tools/deps.sh)%s%s",
	                    l->what, l->why, cmd ? "`docket " : "this command", cmd ? cmd : "",
	                    cmd ? "`" : "", l->pkg, env && *env ? " or correct " : "",
	                    env && *env ? l->env : "");
}

int dk_cli_need(unsigned what, const char *cmd)
{
	int error = 0;
	if ((what & DK_NEED_CURL) && (error = need(LIB_CURL, cmd)) < 0)
		return error;
	if ((what & DK_NEED_MHD) && (error = need(LIB_MHD, cmd)) < 0)
		return error;
	if ((what & DK_NEED_GIT) && (error = need(LIB_GIT, cmd)) < 0)
		return error;
	if ((what & DK_NEED_XML) && (error = need(LIB_XML, cmd)) < 0)
		return error;
	if ((what & DK_NEED_CRYPTO) && (error = need(LIB_CRYPTO, cmd)) < 0)
		return error;
	return 0;
}

/* The address of name in lib, looked up once into *slot. A library or a
 * symbol that is not there ends the process: see the head comment. */
static void *sym(int lib, const char *name, void **slot)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (p)
		return p;
	if (need(lib, NULL) < 0) {
		fprintf(stderr, "docket: %s\n", dk_error_last());
		exit(1);
	}
	p = dlsym(libs[lib].handle, name);
	if (!p) {
		fprintf(stderr,
		        "docket: %s has no %s: %s; docket was built against another version\n",
		        libs[lib].what, name, dlerror());
		exit(1);
	}
	__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	return p;
}

/* FN defines a function returning a value, FNV one returning nothing:
 * library, return type, name, parameters, the arguments passed on. The
 * parameter and argument lists are parenthesised already, and the setopt
 * branches differ in the type read only: clang-tidy sees neither. */
/* NOLINTBEGIN(bugprone-macro-parentheses, bugprone-branch-clone) */
#define FN(lib, ret, name, params, args)                                                           \
	ret name params                                                                            \
	{                                                                                          \
		static void *slot;                                                                 \
		return ((ret(*) params)sym(lib, #name, &slot))args;                                \
	}
#define FNV(lib, name, params, args)                                                               \
	void name params                                                                           \
	{                                                                                          \
		static void *slot;                                                                 \
		((void(*) params)sym(lib, #name, &slot)) args;                                     \
	}

/* ---- libcurl ---- */

FN(LIB_CURL, CURLcode, curl_global_init, (long flags), (flags))
FNV(LIB_CURL, curl_global_cleanup, (void), ())
FN(LIB_CURL, CURL *, curl_easy_init, (void), ())
FNV(LIB_CURL, curl_easy_cleanup, (CURL * h), (h))
FNV(LIB_CURL, curl_easy_reset, (CURL * h), (h))
FN(LIB_CURL, const char *, curl_easy_strerror, (CURLcode c), (c))
FN(LIB_CURL, char *, curl_easy_unescape, (CURL * h, const char *s, int len, int *outlen),
   (h, s, len, outlen))
FNV(LIB_CURL, curl_free, (void *p), (p))
FN(LIB_CURL, struct curl_slist *, curl_slist_append, (struct curl_slist * l, const char *s), (l, s))
FNV(LIB_CURL, curl_slist_free_all, (struct curl_slist * l), (l))
FN(LIB_CURL, time_t, curl_getdate, (const char *p, const time_t *unused), (p, unused))
FN(LIB_CURL, CURLU *, curl_url, (void), ())
FNV(LIB_CURL, curl_url_cleanup, (CURLU * u), (u))
FN(LIB_CURL, CURLUcode, curl_url_get, (CURLU * u, CURLUPart what, char **part, unsigned flags),
   (u, what, part, flags))
FN(LIB_CURL, CURLUcode, curl_url_set, (CURLU * u, CURLUPart what, const char *part, unsigned flags),
   (u, what, part, flags))
FN(LIB_CURL, const char *, curl_url_strerror, (CURLUcode c), (c))
FN(LIB_CURL, CURLM *, curl_multi_init, (void), ())
FN(LIB_CURL, CURLMcode, curl_multi_cleanup, (CURLM * m), (m))
FN(LIB_CURL, CURLMcode, curl_multi_add_handle, (CURLM * m, CURL *h), (m, h))
FN(LIB_CURL, CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL *h), (m, h))
FN(LIB_CURL, CURLMcode, curl_multi_perform, (CURLM * m, int *running), (m, running))
FN(LIB_CURL, CURLMcode, curl_multi_poll,
   (CURLM * m, struct curl_waitfd extra[], unsigned n, int timeout_ms, int *ret),
   (m, extra, n, timeout_ms, ret))
FN(LIB_CURL, CURLMcode, curl_multi_wakeup, (CURLM * m), (m))
FN(LIB_CURL, CURLMsg *, curl_multi_info_read, (CURLM * m, int *left), (m, left))

/* The variadic three take one argument after the option, whose type the
 * option's number tells (CURLOPTTYPE_*): libcurl reads it the same way. */
typedef void (*any_fn)(void);

#define SETOPT(lib, ret, name, handle_t, opt_t)                                                    \
	ret name(handle_t h, opt_t opt, ...)                                                       \
	{                                                                                          \
		static void *slot;                                                                 \
		ret (*f)(handle_t, opt_t, ...) =                                                   \
		    (ret(*)(handle_t, opt_t, ...))sym(lib, #name, &slot);                          \
		va_list ap;                                                                        \
		ret r;                                                                             \
		va_start(ap, opt);                                                                 \
		if (opt < CURLOPTTYPE_OBJECTPOINT)                                                 \
			r = f(h, opt, va_arg(ap, long));                                           \
		else if (opt < CURLOPTTYPE_FUNCTIONPOINT)                                          \
			r = f(h, opt, va_arg(ap, void *));                                         \
		else if (opt < CURLOPTTYPE_OFF_T)                                                  \
			r = f(h, opt, va_arg(ap, any_fn));                                         \
		else if (opt < CURLOPTTYPE_BLOB)                                                   \
			r = f(h, opt, va_arg(ap, curl_off_t));                                     \
		else                                                                               \
			r = f(h, opt, va_arg(ap, void *));                                         \
		va_end(ap);                                                                        \
		return r;                                                                          \
	}
SETOPT(LIB_CURL, CURLcode, curl_easy_setopt, CURL *, CURLoption)
SETOPT(LIB_CURL, CURLMcode, curl_multi_setopt, CURLM *, CURLMoption)

/* ---- libgit2 (tools/gen_lazy.py) ---- */

FN(LIB_GIT, int, git_blob_create_from_stream,
   (git_writestream * *out, git_repository *repo, const char *hintpath), (out, repo, hintpath))
FN(LIB_GIT, int, git_blob_create_from_stream_commit, (git_oid * out, git_writestream *stream),
   (out, stream))
FN(LIB_GIT, const git_signature *, git_commit_author, (const git_commit *commit), (commit))
FN(LIB_GIT, int, git_commit_create,
   (git_oid * id, git_repository *repo, const char *update_ref, const git_signature *author,
    const git_signature *committer, const char *message_encoding, const char *message,
    const git_tree *tree, size_t parent_count, const git_commit *parents[]),
   (id, repo, update_ref, author, committer, message_encoding, message, tree, parent_count,
    parents))
FN(LIB_GIT, int, git_blob_create_from_buffer,
   (git_oid * id, git_repository *repo, const void *buffer, size_t len), (id, repo, buffer, len))
FN(LIB_GIT, int, git_commit_create_from_ids,
   (git_oid * id, git_repository *repo, const char *update_ref, const git_signature *author,
    const git_signature *committer, const char *message_encoding, const char *message,
    const git_oid *tree, size_t parent_count, const git_oid *parents[]),
   (id, repo, update_ref, author, committer, message_encoding, message, tree, parent_count,
    parents))
FNV(LIB_GIT, git_commit_free, (git_commit * commit), (commit))
FN(LIB_GIT, const git_oid *, git_commit_id, (const git_commit *commit), (commit))
FN(LIB_GIT, int, git_commit_lookup, (git_commit * *commit, git_repository *repo, const git_oid *id),
   (commit, repo, id))
FN(LIB_GIT, const char *, git_commit_message, (const git_commit *commit), (commit))
FN(LIB_GIT, unsigned int, git_commit_parentcount, (const git_commit *commit), (commit))
FN(LIB_GIT, int, git_commit_parent, (git_commit * *out, const git_commit *commit, unsigned int n),
   (out, commit, n))
FN(LIB_GIT, int, git_commit_tree, (git_tree * *tree_out, const git_commit *commit),
   (tree_out, commit))
FN(LIB_GIT, const git_oid *, git_commit_tree_id, (const git_commit *commit), (commit))
FNV(LIB_GIT, git_config_free, (git_config * cfg), (cfg))
FN(LIB_GIT, int, git_config_get_bool, (int *out, const git_config *cfg, const char *name),
   (out, cfg, name))
FN(LIB_GIT, int, git_config_set_bool, (git_config * cfg, const char *name, int value),
   (cfg, name, value))
FN(LIB_GIT, int, git_config_set_int32, (git_config * cfg, const char *name, int32_t value),
   (cfg, name, value))
FNV(LIB_GIT, git_error_clear, (void), ())
FN(LIB_GIT, const git_error *, git_error_last, (void), ())
FN(LIB_GIT, int, git_error_set_str, (int error_class, const char *string), (error_class, string))
FN(LIB_GIT, int, git_graph_descendant_of,
   (git_repository * repo, const git_oid *commit, const git_oid *ancestor),
   (repo, commit, ancestor))
FN(LIB_GIT, int, git_libgit2_init, (void), ())
FN(LIB_GIT, int, git_libgit2_shutdown, (void), ())
FNV(LIB_GIT, git_message_trailer_array_free, (git_message_trailer_array * arr), (arr))
FN(LIB_GIT, int, git_message_trailers, (git_message_trailer_array * arr, const char *message),
   (arr, message))
FN(LIB_GIT, int, git_odb_add_backend, (git_odb * odb, git_odb_backend *backend, int priority),
   (odb, backend, priority))
FN(LIB_GIT, void *, git_odb_backend_data_alloc, (git_odb_backend * backend, size_t len),
   (backend, len))
FN(LIB_GIT, int, git_odb_backend_one_pack, (git_odb_backend * *out, const char *index_file),
   (out, index_file))
FN(LIB_GIT, int, git_odb_exists, (git_odb * db, const git_oid *id), (db, id))
FN(LIB_GIT, int, git_odb_exists_ext, (git_odb * db, const git_oid *id, unsigned int flags),
   (db, id, flags))
FNV(LIB_GIT, git_odb_free, (git_odb * db), (db))
FN(LIB_GIT, int, git_odb_init_backend, (git_odb_backend * backend, unsigned int version),
   (backend, version))
FN(LIB_GIT, int, git_odb_new, (git_odb * *out), (out))
FN(LIB_GIT, const void *, git_odb_object_data, (git_odb_object * object), (object))
FNV(LIB_GIT, git_odb_object_free, (git_odb_object * object), (object))
FN(LIB_GIT, size_t, git_odb_object_size, (git_odb_object * object), (object))
FN(LIB_GIT, git_object_t, git_odb_object_type, (git_odb_object * object), (object))
FN(LIB_GIT, int, git_odb_open_rstream,
   (git_odb_stream * *out, size_t *len, git_object_t *type, git_odb *db, const git_oid *oid),
   (out, len, type, db, oid))
FN(LIB_GIT, int, git_odb_open_wstream,
   (git_odb_stream * *out, git_odb *db, git_object_size_t size, git_object_t type),
   (out, db, size, type))
FN(LIB_GIT, int, git_odb_read, (git_odb_object * *out, git_odb *db, const git_oid *id),
   (out, db, id))
FN(LIB_GIT, int, git_odb_read_header,
   (size_t * len_out, git_object_t *type_out, git_odb *db, const git_oid *id),
   (len_out, type_out, db, id))
FN(LIB_GIT, int, git_odb_refresh, (struct git_odb * db), (db))
FN(LIB_GIT, int, git_odb_stream_finalize_write, (git_oid * out, git_odb_stream *stream),
   (out, stream))
FNV(LIB_GIT, git_odb_stream_free, (git_odb_stream * stream), (stream))
FN(LIB_GIT, int, git_odb_stream_read, (git_odb_stream * stream, char *buffer, size_t len),
   (stream, buffer, len))
FN(LIB_GIT, int, git_odb_stream_write, (git_odb_stream * stream, const char *buffer, size_t len),
   (stream, buffer, len))
FN(LIB_GIT, int, git_odb_write,
   (git_oid * out, git_odb *odb, const void *data, size_t len, git_object_t type),
   (out, odb, data, len, type))
FN(LIB_GIT, int, git_oid_cpy, (git_oid * out, const git_oid *src), (out, src))
FN(LIB_GIT, int, git_oid_equal, (const git_oid *a, const git_oid *b), (a, b))
FN(LIB_GIT, int, git_oid_fromstr, (git_oid * out, const char *str), (out, str))
FN(LIB_GIT, char *, git_oid_tostr, (char *out, size_t n, const git_oid *id), (out, n, id))
FNV(LIB_GIT, git_packbuilder_free, (git_packbuilder * pb), (pb))
FN(LIB_GIT, int, git_packbuilder_insert,
   (git_packbuilder * pb, const git_oid *id, const char *name), (pb, id, name))
FN(LIB_GIT, const char *, git_packbuilder_name, (git_packbuilder * pb), (pb))
FN(LIB_GIT, int, git_packbuilder_new, (git_packbuilder * *out, git_repository *repo), (out, repo))
FN(LIB_GIT, int, git_packbuilder_write,
   (git_packbuilder * pb, const char *path, unsigned int mode, git_indexer_progress_cb progress_cb,
    void *progress_cb_payload),
   (pb, path, mode, progress_cb, progress_cb_payload))
FN(LIB_GIT, int, git_push_options_init, (git_push_options * opts, unsigned int version),
   (opts, version))
FN(LIB_GIT, int, git_reference_create,
   (git_reference * *out, git_repository *repo, const char *name, const git_oid *id, int force,
    const char *log_message),
   (out, repo, name, id, force, log_message))
FN(LIB_GIT, int, git_reference_create_matching,
   (git_reference * *out, git_repository *repo, const char *name, const git_oid *id, int force,
    const git_oid *current_id, const char *log_message),
   (out, repo, name, id, force, current_id, log_message))
FN(LIB_GIT, int, git_reference_foreach_glob,
   (git_repository * repo, const char *glob, git_reference_foreach_name_cb callback, void *payload),
   (repo, glob, callback, payload))
FNV(LIB_GIT, git_reference_free, (git_reference * ref), (ref))
FN(LIB_GIT, int, git_reference_name_is_valid, (int *valid, const char *refname), (valid, refname))
FN(LIB_GIT, int, git_reference_name_to_id, (git_oid * out, git_repository *repo, const char *name),
   (out, repo, name))
FN(LIB_GIT, int, git_remote_create_options_init,
   (git_remote_create_options * opts, unsigned int version), (opts, version))
FN(LIB_GIT, int, git_remote_create_with_opts,
   (git_remote * *out, const char *url, const git_remote_create_options *opts), (out, url, opts))
FNV(LIB_GIT, git_remote_free, (git_remote * remote), (remote))
FN(LIB_GIT, int, git_remote_push,
   (git_remote * remote, const git_strarray *refspecs, const git_push_options *opts),
   (remote, refspecs, opts))
FN(LIB_GIT, int, git_repository_config, (git_config * *out, git_repository *repo), (out, repo))
FNV(LIB_GIT, git_repository_free, (git_repository * repo), (repo))
FN(LIB_GIT, int, git_repository_init, (git_repository * *out, const char *path, unsigned is_bare),
   (out, path, is_bare))
FN(LIB_GIT, int, git_repository_odb, (git_odb * *out, git_repository *repo), (out, repo))
FN(LIB_GIT, int, git_repository_open_bare, (git_repository * *out, const char *bare_path),
   (out, bare_path))
FN(LIB_GIT, int, git_repository_wrap_odb, (git_repository * *out, git_odb *odb), (out, odb))
FNV(LIB_GIT, git_revwalk_free, (git_revwalk * walk), (walk))
FN(LIB_GIT, int, git_revwalk_new, (git_revwalk * *out, git_repository *repo), (out, repo))
FN(LIB_GIT, int, git_revwalk_next, (git_oid * out, git_revwalk *walk), (out, walk))
FN(LIB_GIT, int, git_revwalk_push, (git_revwalk * walk, const git_oid *id), (walk, id))
FN(LIB_GIT, int, git_revwalk_sorting, (git_revwalk * walk, unsigned int sort_mode),
   (walk, sort_mode))
FNV(LIB_GIT, git_signature_free, (git_signature * sig), (sig))
FN(LIB_GIT, int, git_signature_new,
   (git_signature * *out, const char *name, const char *email, git_time_t time, int offset),
   (out, name, email, time, offset))
FN(LIB_GIT, const git_tree_entry *, git_tree_entry_byname,
   (const git_tree *tree, const char *filename), (tree, filename))
FN(LIB_GIT, const git_tree_entry *, git_tree_entry_byindex, (const git_tree *tree, size_t idx),
   (tree, idx))
FN(LIB_GIT, int, git_tree_entry_bypath,
   (git_tree_entry * *out, const git_tree *root, const char *path), (out, root, path))
FNV(LIB_GIT, git_tree_entry_free, (git_tree_entry * entry), (entry))
FN(LIB_GIT, const git_oid *, git_tree_entry_id, (const git_tree_entry *entry), (entry))
FN(LIB_GIT, const char *, git_tree_entry_name, (const git_tree_entry *entry), (entry))
FN(LIB_GIT, git_object_t, git_tree_entry_type, (const git_tree_entry *entry), (entry))
FN(LIB_GIT, size_t, git_tree_entrycount, (const git_tree *tree), (tree))
FNV(LIB_GIT, git_tree_free, (git_tree * tree), (tree))
FN(LIB_GIT, int, git_tree_lookup, (git_tree * *out, git_repository *repo, const git_oid *id),
   (out, repo, id))
FNV(LIB_GIT, git_treebuilder_free, (git_treebuilder * bld), (bld))
FN(LIB_GIT, int, git_treebuilder_insert,
   (const git_tree_entry **out, git_treebuilder *bld, const char *filename, const git_oid *id,
    git_filemode_t filemode),
   (out, bld, filename, id, filemode))
FN(LIB_GIT, int, git_treebuilder_new,
   (git_treebuilder * *out, git_repository *repo, const git_tree *source), (out, repo, source))
FN(LIB_GIT, int, git_treebuilder_write, (git_oid * id, git_treebuilder *bld), (id, bld))

/* ---- libxml2 (tools/gen_lazy.py) ---- */

FN(LIB_XML, int, valuePush, (xmlXPathParserContextPtr ctxt, xmlXPathObjectPtr value), (ctxt, value))
FN(LIB_XML, xmlDocPtr, xmlCtxtReadMemory,
   (xmlParserCtxtPtr ctxt, const char *buffer, int size, const char *URL, const char *encoding,
    int options),
   (ctxt, buffer, size, URL, encoding, options))
FN(LIB_XML, xmlNodePtr, xmlDocGetRootElement, (const xmlDoc *doc), (doc))
FNV(LIB_XML, xmlFreeDoc, (xmlDocPtr cur), (cur))
FNV(LIB_XML, xmlFreeParserCtxt, (xmlParserCtxtPtr ctxt), (ctxt))
FN(LIB_XML, long, xmlGetLineNo, (const xmlNode *node), (node))
FN(LIB_XML, xmlChar *, xmlGetNoNsProp, (const xmlNode *node, const xmlChar *name), (node, name))
FN(LIB_XML, xmlAttrPtr, xmlHasNsProp,
   (const xmlNode *node, const xmlChar *name, const xmlChar *nameSpace), (node, name, nameSpace))
FNV(LIB_XML, xmlInitParser, (void), ())
FN(LIB_XML, xmlParserCtxtPtr, xmlNewParserCtxt, (void), ())
FN(LIB_XML, xmlChar *, xmlNodeGetContent, (const xmlNode *cur), (cur))
FNV(LIB_XML, xmlRelaxNGFreeParserCtxt, (xmlRelaxNGParserCtxtPtr ctxt), (ctxt))
FNV(LIB_XML, xmlRelaxNGFreeValidCtxt, (xmlRelaxNGValidCtxtPtr ctxt), (ctxt))
FN(LIB_XML, xmlRelaxNGParserCtxtPtr, xmlRelaxNGNewMemParserCtxt, (const char *buffer, int size),
   (buffer, size))
FN(LIB_XML, xmlRelaxNGValidCtxtPtr, xmlRelaxNGNewValidCtxt, (xmlRelaxNGPtr schema), (schema))
FN(LIB_XML, xmlRelaxNGPtr, xmlRelaxNGParse, (xmlRelaxNGParserCtxtPtr ctxt), (ctxt))
FNV(LIB_XML, xmlRelaxNGSetValidStructuredErrors,
    (xmlRelaxNGValidCtxtPtr ctxt, xmlStructuredErrorFunc serror, void *ctx), (ctxt, serror, ctx))
FN(LIB_XML, int, xmlRelaxNGValidateDoc, (xmlRelaxNGValidCtxtPtr ctxt, xmlDocPtr doc), (ctxt, doc))
FNV(LIB_XML, xmlSetExternalEntityLoader, (xmlExternalEntityLoader f), (f))
FNV(LIB_XML, xmlSetGenericErrorFunc, (void *ctx, xmlGenericErrorFunc handler), (ctx, handler))
FNV(LIB_XML, xmlSetStructuredErrorFunc, (void *ctx, xmlStructuredErrorFunc handler), (ctx, handler))
FNV(LIB_XML, xmlStopParser, (xmlParserCtxtPtr ctxt), (ctxt))
FN(LIB_XML, int, xmlValidateNCName, (const xmlChar *value, int space), (value, space))
FN(LIB_XML, xmlChar *, xmlXPathCastNodeToString, (xmlNodePtr node), (node))
FN(LIB_XML, int, xmlXPathCastNumberToBoolean, (double val), (val))
FN(LIB_XML, xmlChar *, xmlXPathCastNumberToString, (double val), (val))
FN(LIB_XML, double, xmlXPathCastStringToNumber, (const xmlChar *val), (val))
FN(LIB_XML, int, xmlXPathCastToBoolean, (xmlXPathObjectPtr val), (val))
FN(LIB_XML, double, xmlXPathCastToNumber, (xmlXPathObjectPtr val), (val))
FN(LIB_XML, xmlChar *, xmlXPathCastToString, (xmlXPathObjectPtr val), (val))
FN(LIB_XML, xmlXPathCompExprPtr, xmlXPathCompile, (const xmlChar *str), (str))
FN(LIB_XML, xmlXPathObjectPtr, xmlXPathCompiledEval,
   (xmlXPathCompExprPtr comp, xmlXPathContextPtr ctx), (comp, ctx))
FNV(LIB_XML, xmlXPathErr, (xmlXPathParserContextPtr ctxt, int error), (ctxt, error))
FNV(LIB_XML, xmlXPathFreeCompExpr, (xmlXPathCompExprPtr comp), (comp))
FNV(LIB_XML, xmlXPathFreeContext, (xmlXPathContextPtr ctxt), (ctxt))
FNV(LIB_XML, xmlXPathFreeObject, (xmlXPathObjectPtr obj), (obj))
FN(LIB_XML, xmlXPathObjectPtr, xmlXPathNewBoolean, (int val), (val))
FN(LIB_XML, xmlXPathContextPtr, xmlXPathNewContext, (xmlDocPtr doc), (doc))
FN(LIB_XML, xmlXPathObjectPtr, xmlXPathNewFloat, (double val), (val))
FN(LIB_XML, xmlXPathObjectPtr, xmlXPathNewString, (const xmlChar *val), (val))
FN(LIB_XML, double, xmlXPathPopNumber, (xmlXPathParserContextPtr ctxt), (ctxt))
FN(LIB_XML, xmlChar *, xmlXPathPopString, (xmlXPathParserContextPtr ctxt), (ctxt))
FNV(LIB_XML, xmlXPathRegisterFuncLookup,
    (xmlXPathContextPtr ctxt, xmlXPathFuncLookupFunc f, void *funcCtxt), (ctxt, f, funcCtxt))
FN(LIB_XML, int, xmlXPathRegisterNs,
   (xmlXPathContextPtr ctxt, const xmlChar *prefix, const xmlChar *ns_uri), (ctxt, prefix, ns_uri))
FNV(LIB_XML, xmlXPathRegisterVariableLookup,
    (xmlXPathContextPtr ctxt, xmlXPathVariableLookupFunc f, void *data), (ctxt, f, data))

/* ---- libcrypto (tools/gen_lazy.py) ---- */

FN(LIB_CRYPTO, int, CRYPTO_memcmp, (const void *in_a, const void *in_b, size_t len),
   (in_a, in_b, len))
FN(LIB_CRYPTO, int, EVP_DecodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n))
FN(LIB_CRYPTO, int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char *md, unsigned int *s),
   (ctx, md, s))
FN(LIB_CRYPTO, int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD *type, ENGINE *impl),
   (ctx, type, impl))
FN(LIB_CRYPTO, int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void *d, size_t cnt), (ctx, d, cnt))
FN(LIB_CRYPTO, int, EVP_EncodeBlock, (unsigned char *t, const unsigned char *f, int n), (t, f, n))
FNV(LIB_CRYPTO, EVP_MAC_CTX_free, (EVP_MAC_CTX * ctx), (ctx))
FN(LIB_CRYPTO, EVP_MAC_CTX *, EVP_MAC_CTX_new, (EVP_MAC * mac), (mac))
FN(LIB_CRYPTO, EVP_MAC *, EVP_MAC_fetch,
   (OSSL_LIB_CTX * libctx, const char *algorithm, const char *properties),
   (libctx, algorithm, properties))
FN(LIB_CRYPTO, int, EVP_MAC_final,
   (EVP_MAC_CTX * ctx, unsigned char *out, size_t *outl, size_t outsize), (ctx, out, outl, outsize))
FN(LIB_CRYPTO, int, EVP_MAC_init,
   (EVP_MAC_CTX * ctx, const unsigned char *key, size_t keylen, const OSSL_PARAM params[]),
   (ctx, key, keylen, params))
FN(LIB_CRYPTO, int, EVP_MAC_update, (EVP_MAC_CTX * ctx, const unsigned char *data, size_t datalen),
   (ctx, data, datalen))
FNV(LIB_CRYPTO, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
FN(LIB_CRYPTO, EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())
FN(LIB_CRYPTO, const EVP_MD *, EVP_sha1, (void), ())
FN(LIB_CRYPTO, const EVP_MD *, EVP_sha256, (void), ())
FN(LIB_CRYPTO, unsigned char *, HMAC,
   (const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *data, size_t data_len,
    unsigned char *md, unsigned int *md_len),
   (evp_md, key, key_len, data, data_len, md, md_len))
FNV(LIB_CRYPTO, OPENSSL_cleanse, (void *ptr, size_t len), (ptr, len))
FN(LIB_CRYPTO, OSSL_PARAM, OSSL_PARAM_construct_end, (void), ())
FN(LIB_CRYPTO, OSSL_PARAM, OSSL_PARAM_construct_utf8_string,
   (const char *key, char *buf, size_t bsize), (key, buf, bsize))
FN(LIB_CRYPTO, int, RAND_bytes, (unsigned char *buf, int num), (buf, num))
FN(LIB_CRYPTO, int, SHA256_Final, (unsigned char *md, SHA256_CTX *c), (md, c))
FN(LIB_CRYPTO, int, SHA256_Init, (SHA256_CTX * c), (c))
FN(LIB_CRYPTO, int, SHA256_Update, (SHA256_CTX * c, const void *data, size_t len), (c, data, len))

/* NOLINTEND(bugprone-macro-parentheses, bugprone-branch-clone) */

/* libxml2's two variables, read where libdocket.a asks util/xmlvar.h's
 * functions (these replace util/xmlvar.c): the executable imports no data
 * from a library it loads itself. A NULL was not allocated by libxml2 and
 * is no reason to load it. */
void dk_xml_free(void *p)
{
	static void *slot;
	if (p)
		(*(xmlFreeFunc *)sym(LIB_XML, "xmlFree", &slot))(p);
}

unsigned dk_xml_max_depth(void)
{
	static void *slot;
	return *(const unsigned *)sym(LIB_XML, "xmlParserMaxDepth", &slot);
}

/* The options docket sets take one int; any other is a docket bug, caught
 * by the tests, not a call with a guessed argument. */
int git_libgit2_opts(int option, ...)
{
	static void *slot;
	int (*f)(int, ...) = (int (*)(int, ...))sym(LIB_GIT, "git_libgit2_opts", &slot);
	va_list ap;
	int v;
	switch (option) {
	case GIT_OPT_ENABLE_CACHING:
	case GIT_OPT_ENABLE_STRICT_OBJECT_CREATION:
	case GIT_OPT_ENABLE_STRICT_SYMBOLIC_REF_CREATION:
	case GIT_OPT_ENABLE_OFS_DELTA:
	case GIT_OPT_ENABLE_FSYNC_GITDIR:
	case GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION:
	case GIT_OPT_ENABLE_UNSAVED_INDEX_SAFETY:
	case GIT_OPT_DISABLE_PACK_KEEP_FILE_CHECKS:
	case GIT_OPT_SET_OWNER_VALIDATION:
		va_start(ap, option);
		v = va_arg(ap, int);
		va_end(ap);
		return f(option, v);
	default:
		fprintf(stderr,
		        "docket: git_libgit2_opts option %d is not passed on by cli/lazylib.c\n",
		        option);
		exit(1);
	}
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	static void *slot;
	CURLcode (*f)(CURL *, CURLINFO, ...) =
	    (CURLcode(*)(CURL *, CURLINFO, ...))sym(LIB_CURL, "curl_easy_getinfo", &slot);
	va_list ap;
	va_start(ap, info);
	void *where = va_arg(ap, void *);
	va_end(ap);
	return f(h, info, where);
}

/* ---- libmicrohttpd ---- */

FN(LIB_MHD, struct MHD_Daemon *, MHD_start_daemon_va,
   (unsigned flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,
    MHD_AccessHandlerCallback dh, void *dh_cls, va_list ap),
   (flags, port, apc, apc_cls, dh, dh_cls, ap))
FNV(LIB_MHD, MHD_stop_daemon, (struct MHD_Daemon * d), (d))
FN(LIB_MHD, MHD_socket, MHD_quiesce_daemon, (struct MHD_Daemon * d), (d))
FN(LIB_MHD, enum MHD_Result, MHD_queue_response,
   (struct MHD_Connection * c, unsigned status, struct MHD_Response *r), (c, status, r))
FN(LIB_MHD, struct MHD_Response *, MHD_create_response_from_buffer,
   (size_t size, void *buf, enum MHD_ResponseMemoryMode mode), (size, buf, mode))
FN(LIB_MHD, struct MHD_Response *, MHD_create_response_from_fd, (size_t size, int fd), (size, fd))
FNV(LIB_MHD, MHD_destroy_response, (struct MHD_Response * r), (r))
FN(LIB_MHD, enum MHD_Result, MHD_add_response_header,
   (struct MHD_Response * r, const char *header, const char *content), (r, header, content))
FN(LIB_MHD, const char *, MHD_lookup_connection_value,
   (struct MHD_Connection * c, enum MHD_ValueKind kind, const char *key), (c, kind, key))
FN(LIB_MHD, struct MHD_PostProcessor *, MHD_create_post_processor,
   (struct MHD_Connection * c, size_t size, MHD_PostDataIterator iter, void *cls),
   (c, size, iter, cls))
FN(LIB_MHD, enum MHD_Result, MHD_post_process,
   (struct MHD_PostProcessor * pp, const char *data, size_t len), (pp, data, len))
FN(LIB_MHD, enum MHD_Result, MHD_destroy_post_processor, (struct MHD_PostProcessor * pp), (pp))
FNV(LIB_MHD, MHD_suspend_connection, (struct MHD_Connection * c), (c))
FNV(LIB_MHD, MHD_resume_connection, (struct MHD_Connection * c), (c))

/* The options list is passed on whole, as a va_list. */
struct MHD_Daemon *MHD_start_daemon(unsigned flags, uint16_t port, MHD_AcceptPolicyCallback apc,
                                    void *apc_cls, MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	va_list ap;
	va_start(ap, dh_cls);
	struct MHD_Daemon *d = MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* The info types docket asks for (the connection's fd, its socket context)
 * take no argument. */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
                                                        enum MHD_ConnectionInfoType type, ...)
{
	static void *slot;
	const union MHD_ConnectionInfo *(*f)(struct MHD_Connection *, enum MHD_ConnectionInfoType,
	                                     ...) =
	    (const union MHD_ConnectionInfo *(*)(struct MHD_Connection *,
	                                         enum MHD_ConnectionInfoType,
	                                         ...))sym(LIB_MHD, "MHD_get_connection_info",
	                                                  &slot);
	return f(c, type);
}
