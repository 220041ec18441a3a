/*
 * archive_uploads.c - docket's side of the evidence benchmark: uploads
 * through store/archive.h (libgit2, every upload flushed to disk), the
 * peer of the git command line doing the same plumbing in bench/run.sh.
 *
 * Usage: archive_uploads HOME uploads N [T]
 *                                          4 KiB files: T threads (1 if not
 *                                          given), each with its own archive
 *                                          handle, uploading N/T of them one
 *                                          after the other on an instance of
 *                                          its own: prints uploads/s. Packing
 *                                          runs beside them on a thread of
 *                                          its own, as serve runs it (the
 *                                          request threads defer it to the
 *                                          writer, api/writer.c), and the
 *                                          clock stops when it has finished
 *                                          what the uploads left it
 *        archive_uploads HOME big FILE    one file: prints MB/s
 *        archive_uploads HOME growth N    N 4 KiB files over N/10 instances
 *                                          (10 each, as evidence is spread
 *                                          in life): prints the cost of the
 *                                          last 1,000 uploads over the cost
 *                                          of the first 1,000
 *
 * HOME must not exist yet. The files to upload are written before the
 * clock starts, as the git peer's are; every upload is checked to have
 * moved the ref onto the previous one.
 */
#include "store/archive.h"
#include "util/error.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void opts_for(dk_archive_put_opts *o, const char *name, char event[37])
{
	static const char *const types[] = {"pdf", "docx", "xlsx", "bin"};
	dk_archive_event_key(event);
	o->instance = "bench-1";
	o->flow = "bench-plan@1";
	o->state = "draft";
	o->kind = "plan";
	o->name = name;
	o->event = event;
	o->actor = "li";
	o->author_name = "李明";
	o->author_email = "li@example.com";
	o->time = 1795000000;
	o->types = types;
	o->ntypes = sizeof types / sizeof types[0];
}

/* Writes n files of 4 KiB of random bytes into dir, named plan-I.pdf. */
static int make_files(const char *dir, long n)
{
	char path[4096], block[4096];
	long i;
	size_t j;
	FILE *f;

	srand(42);
	for (i = 0; i < n; i++) {
		for (j = 0; j < sizeof block; j++)
			block[j] = (char)(rand() & 0xff);
		snprintf(path, sizeof path, "%.3000s/plan-%ld.pdf", dir, i);
		f = fopen(path, "wb");
		if (f == NULL || fwrite(block, 1, sizeof block, f) != sizeof block) {
			perror(path);
			if (f)
				fclose(f);
			return -1;
		}
		fclose(f);
	}
	return 0;
}

/* The packing thread: automatic gc (dk_archive_gc_past) on a handle of
 * its own until told to stop, then once more. */
typedef struct {
	const char *home;
	int stop; /* read and written with __atomic */
	int rc;
} packer;

static void *pack_thread(void *arg)
{
	packer *p = arg;
	dk_archive *a = NULL;
	int ran = 0;

	p->rc = 1;
	if (dk_archive_open(&a, p->home) < 0) {
		fprintf(stderr, "archive_uploads: %s\n", dk_error_last());
		return NULL;
	}
	for (;;) {
		int last = __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);
		if (dk_archive_gc_past(&ran, a, DK_ARCHIVE_AUTO_GC) < 0) {
			fprintf(stderr, "archive_uploads: gc: %s\n", dk_error_last());
			dk_archive_free(a);
			return NULL;
		}
		if (last && !ran)
			break;
		if (!ran)
			usleep(4000);
	}
	dk_archive_free(a);
	p->rc = 0;
	return NULL;
}

typedef struct {
	const char *home, *dir;
	long from, n, step; /* files from, from + step, ... : n of them */
	char instance[32];
	pthread_barrier_t *start;
	int rc;
} uploader;

/* One thread's uploads, on its own handle and instance; each must build on
 * the one before it. */
static void *upload_thread(void *arg)
{
	uploader *u = arg;
	char path[4096], name[64], event[37], prev[DK_ARCHIVE_OID_HEXSZ + 1] = "";
	dk_archive_put_result res;
	dk_archive *a = NULL;
	long i, k;

	u->rc = 1;
	if (dk_archive_open(&a, u->home) < 0) {
		fprintf(stderr, "archive_uploads: %s\n", dk_error_last());
		pthread_barrier_wait(u->start);
		return NULL;
	}
	dk_archive_set_auto_gc(a, 0); /* the packing thread's */
	pthread_barrier_wait(u->start);
	for (k = 0, i = u->from; k < u->n; k++, i += u->step) {
		dk_archive_put_opts o = {.version = DK_ARCHIVE_PUT_OPTS_VERSION};
		snprintf(name, sizeof name, "plan-%ld.pdf", i);
		snprintf(path, sizeof path, "%.3000s/%.60s", u->dir, name);
		opts_for(&o, name, event);
		o.instance = u->instance;
		if (dk_archive_put_file(&res, a, &o, path) < 0) {
			fprintf(stderr, "archive_uploads: upload %ld: %s\n", i, dk_error_last());
			goto done;
		}
		if (strcmp(res.parent, prev) != 0) {
			fprintf(stderr, "archive_uploads: upload %ld did not build on %s\n", i,
			        prev);
			goto done;
		}
		memcpy(prev, res.commit, sizeof prev);
	}
	u->rc = 0;
done:
	dk_archive_free(a);
	return NULL;
}

static int uploads(const char *home, long n, long nthreads)
{
	char dir[4096];
	uploader *u = calloc((size_t)nthreads, sizeof(*u));
	pthread_t *tid = calloc((size_t)nthreads, sizeof(*tid));
	pthread_barrier_t start;
	pthread_t ptid;
	packer pk = {.home = home, .stop = 0, .rc = 1};
	double t0, secs;
	int rc = 0;

	snprintf(dir, sizeof dir, "%.3000s.files", home);
	if (!u || !tid || mkdir(dir, 0755) != 0 || make_files(dir, n) < 0) {
		perror(dir);
		free(u);
		free(tid);
		return 1;
	}
	/* the main thread waits at the start line with them, then times */
	pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
	for (long t = 0; t < nthreads; t++) {
		u[t].home = home;
		u[t].dir = dir;
		u[t].from = t;
		u[t].step = nthreads;
		u[t].n = n / nthreads + (t < n % nthreads ? 1 : 0);
		u[t].start = &start;
		snprintf(u[t].instance, sizeof u[t].instance, "bench-%ld", t + 1);
		pthread_create(&tid[t], NULL, upload_thread, &u[t]);
	}
	pthread_barrier_wait(&start);
	t0 = now_s();
	pthread_create(&ptid, NULL, pack_thread, &pk);
	for (long t = 0; t < nthreads; t++) {
		pthread_join(tid[t], NULL);
		rc |= u[t].rc;
	}
	__atomic_store_n(&pk.stop, 1, __ATOMIC_RELEASE);
	pthread_join(ptid, NULL);
	secs = now_s() - t0;
	rc |= pk.rc;
	pthread_barrier_destroy(&start);
	free(u);
	free(tid);
	if (rc)
		return 1;
	printf("%.3f\n", (double)n / secs);
	return 0;
}

static int big(dk_archive *a, const char *file)
{
	char event[37];
	dk_archive_put_result res;
	dk_archive_put_opts o = {.version = DK_ARCHIVE_PUT_OPTS_VERSION};
	struct stat st;
	double t0, secs;

	if (stat(file, &st) != 0) {
		perror(file);
		return 1;
	}
	opts_for(&o, "big.bin", event);
	t0 = now_s();
	if (dk_archive_put_file(&res, a, &o, file) < 0) {
		fprintf(stderr, "archive_uploads: %s: %s\n", file, dk_error_last());
		return 1;
	}
	secs = now_s() - t0;
	if (res.size != (int64_t)st.st_size) {
		fprintf(stderr, "archive_uploads: stored %lld bytes of %lld\n", (long long)res.size,
		        (long long)st.st_size);
		return 1;
	}
	printf("%.3f\n", (double)st.st_size / (1024.0 * 1024.0) / secs);
	return 0;
}

/* Uploads files [from, to) of dir, file i to instance i / 10; returns the
 * seconds it took, or -1. */
static double upload_range(dk_archive *a, const char *dir, long from, long to)
{
	char path[4096], name[64], inst[32], event[37];
	dk_archive_put_result res;
	double t0 = now_s();
	long i;

	for (i = from; i < to; i++) {
		dk_archive_put_opts o = {.version = DK_ARCHIVE_PUT_OPTS_VERSION};
		snprintf(name, sizeof name, "plan-%ld.pdf", i);
		snprintf(path, sizeof path, "%.3000s/plan-%ld.pdf", dir, i % 1000);
		snprintf(inst, sizeof inst, "%ld", i / 10 + 1);
		opts_for(&o, name, event);
		o.instance = inst;
		if (dk_archive_put_file(&res, a, &o, path) < 0) {
			fprintf(stderr, "archive_uploads: upload %ld: %s\n", i, dk_error_last());
			return -1;
		}
	}
	return now_s() - t0;
}

/* The first 1,000 and the last 1,000 uploads are timed as docket makes
 * them (flushed to disk); the ones between only fill the archive, unflushed
 * so that 100,000 take minutes rather than an hour. Automatic packing
 * (dk_archive_maybe_gc) runs throughout, as it does in use; what the fill
 * left unwritten is written back (sync, untimed) before the last 1,000. The files are
 * 1,000 random ones (git stores each content once, so the same 1,000 bytes
 * under other names would add no blobs: each upload also differs by its
 * instance and name, which changes its trees and commit). */
static int growth(dk_archive *a, const char *home, long n)
{
	char dir[4096];
	double first, last, mid;

	if (n < 2000) {
		fprintf(stderr, "archive_uploads: growth needs at least 2000 uploads\n");
		return 2;
	}
	snprintf(dir, sizeof dir, "%.3000s.files", home);
	if (mkdir(dir, 0755) != 0 || make_files(dir, 1000) < 0) {
		perror(dir);
		return 1;
	}
	if ((first = upload_range(a, dir, 0, 1000)) < 0)
		return 1;
	dk_archive_set_flush(a, 0);
	mid = upload_range(a, dir, 1000, n - 1000);
	dk_archive_set_flush(a, 1);
	/* The fill left its objects and packs unwritten in the page cache;
	 * the first timed barrier would write all of them back and charge a
	 * fill's worth of I/O to the last 1,000. Written back here, untimed. */
	sync();
	if (mid < 0 || (last = upload_range(a, dir, n - 1000, n)) < 0)
		return 1;
	fprintf(stderr,
	        "archive_uploads: first 1,000: %.2f ms each; last 1,000 (at %ld): %.2f ms each; "
	        "%ld between unflushed: %.2f ms each\n",
	        first, n, last, n - 2000, mid * 1e3 / (double)(n - 2000));
	printf("%.3f\n", last / first);
	return 0;
}

int main(int argc, char **argv)
{
	dk_archive *a = NULL;
	int rc;

	if (argc == 5 && strcmp(argv[2], "uploads") == 0) {
		long n = strtol(argv[3], NULL, 10), t = strtol(argv[4], NULL, 10);
		return n > 0 && t > 0 && t <= n ? uploads(argv[1], n, t) : 2;
	}
	if (argc != 4 || (strcmp(argv[2], "uploads") != 0 && strcmp(argv[2], "big") != 0 &&
	                  strcmp(argv[2], "growth") != 0)) {
		fprintf(stderr, "usage: archive_uploads HOME uploads N [THREADS] | HOME big FILE | "
		                "HOME growth N\n");
		return 2;
	}
	if (strcmp(argv[2], "uploads") == 0) {
		long n = strtol(argv[3], NULL, 10);
		return n > 0 ? uploads(argv[1], n, 1) : 2;
	}
	if (dk_archive_open(&a, argv[1]) < 0) {
		fprintf(stderr, "archive_uploads: %s\n", dk_error_last());
		return 1;
	}
	if (strcmp(argv[2], "growth") == 0) {
		rc = growth(a, argv[1], strtol(argv[3], NULL, 10));
	} else {
		rc = big(a, argv[3]);
	}
	dk_archive_free(a);
	return rc;
}
