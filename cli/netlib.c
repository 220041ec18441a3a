/*
 * netlib.c - libcurl and libmicrohttpd, loaded by the docket command only
 * when a command first calls them.
 *
 * Linked as shared libraries, the two brought in 40 of the binary's 49:
 * libcurl pulls nghttp2, rtmp, ssh2, psl, idn2, LDAP, Kerberos, GnuTLS,
 * brotli, zstd..., and the dynamic loader mapped and relocated them all
 * before main, for every command. That was most of a `docket tick` or a
 * `docket act`, neither of which sends or serves HTTP.
 *
 * So the docket binary does not link them. It defines instead each curl_
 * and MHD_ function that libdocket.a calls, with the headers' own
 * prototypes: a definition in the executable is what the library's objects
 * bind to. Each one dlopens its library on the first call (once, under
 * pthread_once), looks its symbol up once, and calls it. Only the command
 * binary carries this; libdocket.a and the tests and benchmarks linked with
 * it still link both libraries as usual, so the library's behaviour is the
 * same either way.
 *
 * Commands that always need a library (serve, dispatch, hooks) ask for it
 * up front with dk_cli_need, which fails with a message naming the library
 * and the package to install. A call that needs a library no command asked
 * for (a webhook URL checked while an act queues a delivery) loads it then;
 * if it cannot, the process prints the same message and exits with status 1
 * before the call, so nothing half-done is committed.
 *
 * The sonames come from the build (the -dev packages' links, see the
 * Makefile); DOCKET_LIBCURL and DOCKET_LIBMICROHTTPD name another file
 * (the tests use them to see what a missing library does).
 */
#define CURL_DISABLE_TYPECHECK
#include "cli/cli.h"

#include "util/error.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <microhttpd.h>
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

enum { LIB_CURL, LIB_MHD };

typedef struct {
	const char *what;   /* "libcurl" */
	const char *soname; /* what dlopen is given by default */
	const char *env;    /* the variable naming another file */
	const char *pkg;    /* the Debian package that ships it */
	void *handle;
	char why[512]; /* dlerror's message when the load failed */
} netlib;

static netlib libs[] = {
    {"libcurl", DK_LIBCURL_SONAME, "DOCKET_LIBCURL", "libcurl4", NULL, ""},
    {"libmicrohttpd", DK_LIBMHD_SONAME, "DOCKET_LIBMICROHTTPD", "libmicrohttpd12", NULL, ""},
};
static pthread_once_t once[] = {PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT};

static void load(netlib *l)
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

static netlib *loaded(int lib)
{
	pthread_once(&once[lib], lib == LIB_CURL ? load_curl : load_mhd);
	return &libs[lib];
}

static int need(int lib, const char *cmd)
{
	netlib *l = loaded(lib);
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

/* NOLINTEND(bugprone-macro-parentheses, bugprone-branch-clone) */

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
