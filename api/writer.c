/*
 * writer.c - group commit for `docket serve`: the write commands of every
 * request thread (start, act, recall) go through one queue to one writer
 * thread, which makes a whole batch of them durable with one commit.
 *
 * The writer takes every command queued (at most MAX_BATCH), opens one
 * transaction (BEGIN IMMEDIATE) and runs each command inside a savepoint
 * of its own: a command that is refused or fails rolls back to its
 * savepoint only and gets its own answer, the others stay. The answer kept
 * for an Idempotency-Key is written in the same savepoint as its command,
 * so a retry finds either both or neither. Then one COMMIT (one fsync) for
 * the batch, and only then does any request of the batch get its answer:
 * nothing is acknowledged before it is on disk. When the commit fails,
 * every command of the batch that would have succeeded is answered with
 * the failure instead (none of it remains).
 *
 * The archive notes of the batch's state changes are not on its path: the
 * writer answers right after the COMMIT and wakes a second thread, the
 * note writer, which catches the archive up with the audit trail
 * (dk_runner_notes_catch_up: every note after the mark, in commit order,
 * one batch of the archive per chunk, two flushes for all of its notes).
 * It runs once at start, after each wake-up (wake-ups that come while it
 * works fold into one more round) and once more at stop, so the notes
 * follow the commits by about one round, whatever the load. It is also
 * the one that packs the archive when its loose objects pass the
 * threshold: request threads never do (dk_runner_defer_gc), so an
 * upload's answer does not wait for a pack; each upload wakes it for that.
 *
 * While the writer commits one batch, requests keep arriving and queue up:
 * the busier the server, the bigger the batches, and the fsync is paid
 * once per batch instead of once per request. An idle server commits each
 * command at once (a batch of one): no request waits for company. A
 * request thread does not wait with its command: the connection is
 * suspended while it is queued and resumed when its batch is answered, so
 * the batches are as big as the number of connections writing, not the
 * number of request threads (which was 4, and so were the batches).
 *
 * Request threads keep doing everything else (parsing, tokens, the seeing
 * rules, reads), in parallel; the writer only decides and writes.
 */
#include "api/api_int.h"

#include "util/error.h"
#include "util/time.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Commands per transaction at most: bounds how long the write lock is held
 * and how long the first request of a batch waits for the last. */
#define MAX_BATCH 256

/* How many nice levels the note writer runs below the writer. Under load
 * both threads are runnable all the time and, on a small machine, share
 * the cores with the request threads: at an equal share the note writer
 * (loose objects, inode creation, zlib) took as much CPU as the writer,
 * which then spent half of its time waiting on the run queue while the
 * acts it holds waited for their commit. Ten levels below, the scheduler
 * gives it about a tenth of the writer's share while both want a core,
 * and all of an idle one: the notes lag more under load and catch up as
 * soon as it eases (they are derived; the audit trail they follow is
 * already durable). */
#define NOTES_NICE 10

typedef struct dk_api_job {
	dk_req *rq;
	dk_write_fn fn;
	void *arg;
	struct dk_api_job *next;
} job;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work; /* the writer waits for commands */
	job *head, *tail;
	int running, stop;
	pthread_t thread;
	dk_runner *runner;
	/* the note writer: woken when a batch committed (and after uploads,
	 * gc_due, to pack the archive); thread and runner (own archive) */
	pthread_cond_t notes_work;
	int notes_due, gc_due, notes_stop;
	pthread_t notes_thread;
	dk_runner *notes_runner;
	/* for the line at stop: how well the batching went */
	unsigned long commands, commits, biggest, note_rounds, notes_written;
} wr = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .work = PTHREAD_COND_INITIALIZER,
        .notes_work = PTHREAD_COND_INITIALIZER};

/* The request as the Idempotency-Key answer records it. */
static void request_text(char *out, size_t len, const dk_req *rq)
{
	snprintf(out, len, "%s %s", rq->method, rq->path);
}

static char *answer_body(const dk_req *rq)
{
	return rq->json ? json_dumps(rq->json, JSON_COMPACT)
	                : dk_strndup(rq->raw ? rq->raw : "", rq->raw_len);
}

/* Keeps rq's answer for its Idempotency-Key inside the open transaction. */
static int keep_answer(dk_runner *r, dk_req *rq)
{
	char what[512];
	char *body = answer_body(rq);
	int64_t now = 0;
	int error;

	request_text(what, sizeof(what), rq);
	if ((error = dk_time_now(&now)) == 0)
		error = dk_store_idempotency_put(dk_runner_store(r), rq->user, rq->idem_key, what,
		                                 (int)rq->status, body, now);
	free(body);
	return error;
}

/* Runs one command in its savepoint. Returns 0, or -1 when the database
 * gave up the whole transaction (then nothing of the batch remains). */
static int run_one(dk_runner *r, job *j)
{
	dk_req *rq = j->rq;
	int error;

	if ((error = dk_runner_savepoint(r)) < 0) {
		dk_api_fail(rq, error);
		return -1;
	}
	/* A repeat of a key another request of this batch (or one just
	 * before) used gets that first answer, not a second act. */
	if (rq->idem_key && dk_api_idem_replay(rq, dk_runner_store(r), rq->idem_key)) {
		rq->kept = 1;
		return dk_runner_release(r) < 0 ? -1 : 0;
	}
	dk_error_clear();
	if ((error = j->fn(rq, r, j->arg)) < 0)
		dk_api_fail(rq, error);
	if (rq->status >= 400 || rq->status == 0) {
		/* Refused: nothing of it stays, but the refusal is the answer
		 * a retry with the same key gets (server errors are not kept:
		 * a retry should run again). */
		if (dk_runner_rollback_to(r) < 0)
			return -1;
		if (rq->idem_key && rq->status < 500 && rq->status != 0) {
			if (dk_runner_savepoint(r) < 0)
				return -1;
			if (keep_answer(r, rq) < 0) {
				if (dk_runner_rollback_to(r) < 0)
					return -1;
			} else if (dk_runner_release(r) < 0) {
				return -1;
			}
		}
		rq->kept = 1;
		return 0;
	}
	if (rq->idem_key && (error = keep_answer(r, rq)) < 0) {
		dk_api_fail(rq, error);
		rq->kept = 1;
		return dk_runner_rollback_to(r) < 0 ? -1 : 0;
	}
	rq->kept = 1;
	if ((error = dk_runner_release(r)) < 0) {
		dk_api_fail(rq, error);
		return dk_runner_rollback_to(r) < 0 ? -1 : 0;
	}
	return 0;
}

/* Every command of the batch that thought it succeeded is told the batch
 * failed: none of it was kept. Refusals stay true (they changed nothing). */
static void fail_batch(job *batch, int error)
{
	char msg[2048];

	snprintf(msg, sizeof(msg), "%s", dk_error_last());
	for (job *j = batch; j; j = j->next) {
		/* Nothing of it was kept, so no answer is kept for its key
		 * either: a retry runs again. */
		j->rq->kept = 1;
		if (j->rq->status >= 400)
			continue;
		dk_error_set(error, "%s", msg);
		dk_api_fail(j->rq, error);
	}
}

/* Runs the batch and commits it. Returns 1 when it committed a change. */
static int run_batch(dk_runner *r, job *batch)
{
	int error, lost = 0;

	if ((error = dk_runner_batch_begin(r)) < 0) {
		fail_batch(batch, error);
		return 0;
	}
	for (job *j = batch; j && !lost; j = j->next)
		if (run_one(r, j) < 0)
			lost = 1;
	if (lost) {
		error = dk_error_code() ? dk_error_code() : DK_EINTERNAL;
		dk_runner_batch_abort(r);
		fail_batch(batch, error);
		return 0;
	}
	if ((error = dk_runner_batch_commit(r)) < 0) {
		fail_batch(batch, error);
		return 0;
	}
	return 1;
}

/* Tells the request threads of batch that their answers are final: each
 * connection is resumed, and libmicrohttpd calls the server back on it to
 * send the answer. A job is the request's from then on: not touched after
 * its resume. Called without wr.lock. */
static void answer(job *batch)
{
	for (job *j = batch, *next; j; j = next) {
		next = j->next;
		MHD_resume_connection(j->rq->conn);
	}
}

static void *writer_main(void *arg)
{
	pthread_setname_np(pthread_self(), "docket-writer");
	for (;;) {
		job *batch, *last;
		int committed;
		size_t n = 1;

		pthread_mutex_lock(&wr.lock);
		while (!wr.head && !wr.stop)
			pthread_cond_wait(&wr.work, &wr.lock);
		if (!wr.head) {
			pthread_mutex_unlock(&wr.lock);
			break;
		}
		batch = last = wr.head;
		while (last->next && n < MAX_BATCH) {
			last = last->next;
			n++;
		}
		wr.commands += n;
		wr.commits++;
		if (n > wr.biggest)
			wr.biggest = n;
		wr.head = last->next;
		if (!wr.head)
			wr.tail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&wr.lock);

		committed = run_batch(wr.runner, batch);
		answer(batch);

		pthread_mutex_lock(&wr.lock);
		if (committed) {
			wr.notes_due = 1;
			pthread_cond_signal(&wr.notes_work);
		}
		pthread_mutex_unlock(&wr.lock);
	}
	return arg;
}

/* Linux keeps the nice value per thread: this lowers the calling thread
 * only, NOTES_NICE below the process's (a server started niced keeps its
 * order). Raising one's nice value needs no privilege; if it fails all the
 * same, the notes run at the writer's priority, as before. */
static void lower_priority(void)
{
	id_t self = (id_t)gettid();
	int now;

	errno = 0;
	now = getpriority(PRIO_PROCESS, self);
	if (now == -1 && errno != 0)
		return;
	(void)setpriority(PRIO_PROCESS, self, now + NOTES_NICE > 19 ? 19 : now + NOTES_NICE);
}

/* The note writer: catches the archive up once at start, after every
 * wake-up, and once more when told to stop. */
static void *notes_main(void *arg)
{
	pthread_setname_np(pthread_self(), "docket-notes");
	lower_priority();
	for (;;) {
		dk_notes_sync sync;
		int last, gc, packed = 0;

		pthread_mutex_lock(&wr.lock);
		while (!wr.notes_due && !wr.notes_stop)
			pthread_cond_wait(&wr.notes_work, &wr.lock);
		last = !wr.notes_due && wr.notes_stop;
		gc = wr.gc_due;
		wr.notes_due = wr.gc_due = 0;
		pthread_mutex_unlock(&wr.lock);

		if (dk_runner_notes_catch_up(wr.notes_runner, &sync) < 0) {
			fprintf(stderr,
			        "docket serve: warning: the archive notes could not catch up (%s); "
			        "they wait for the next round or 'docket archive sync'\n",
			        dk_error_last());
			dk_error_clear();
		}
		/* After the round, outside the notes' lock (an upload waiting for
		 * it does not wait for a pack too): request threads and the
		 * catch-up leave packing to this. */
		if ((gc || sync.written) && dk_runner_archive_gc(wr.notes_runner, &packed) < 0) {
			fprintf(stderr,
			        "docket serve: warning: the archive could not be packed (%s)\n",
			        dk_error_last());
			dk_error_clear();
		} else if (packed) {
			fprintf(stderr, "docket serve: packed the archive's loose objects\n");
		}
		pthread_mutex_lock(&wr.lock);
		wr.note_rounds += sync.rounds;
		wr.notes_written += sync.written;
		pthread_mutex_unlock(&wr.lock);
		if (last)
			break;
	}
	return arg;
}

int dk_writer_start(const dk_serve_opts *opts)
{
	sigset_t sigs, old;
	int error, started;

	wr.stop = wr.notes_stop = 0;
	wr.head = wr.tail = NULL;
	wr.notes_due = 1; /* what a previous run left waiting */
	wr.commands = wr.commits = wr.biggest = wr.note_rounds = wr.notes_written = 0;
	if ((error = dk_runner_open(&wr.runner, opts->home)) < 0)
		return error;
	if ((error = dk_runner_open(&wr.notes_runner, opts->home)) < 0) {
		dk_runner_free(wr.runner);
		wr.runner = NULL;
		return error;
	}
	dk_runner_defer_gc(wr.notes_runner); /* packs after its rounds */
	/* Neither thread may take the signals dk_serve waits for (it blocks
	 * them only after this): a SIGTERM delivered to one of them would end
	 * the process at once, unanswered and without the last catch-up. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	started = pthread_create(&wr.notes_thread, NULL, notes_main, NULL) == 0;
	if (started && pthread_create(&wr.thread, NULL, writer_main, NULL) != 0) {
		error = dk_error_set(DK_EINTERNAL, "cannot start the writer thread");
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_mutex_lock(&wr.lock);
		wr.notes_stop = 1;
		pthread_cond_signal(&wr.notes_work);
		pthread_mutex_unlock(&wr.lock);
		pthread_join(wr.notes_thread, NULL);
		goto fail;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!started) {
		error = dk_error_set(DK_EINTERNAL, "cannot start the note writer thread");
		goto fail;
	}
	wr.running = 1;
	return 0;
fail:
	dk_runner_free(wr.notes_runner);
	dk_runner_free(wr.runner);
	wr.notes_runner = wr.runner = NULL;
	return error;
}

void dk_writer_stop(void)
{
	if (!wr.running)
		return;
	pthread_mutex_lock(&wr.lock);
	wr.stop = 1;
	pthread_cond_signal(&wr.work);
	pthread_mutex_unlock(&wr.lock);
	pthread_join(wr.thread, NULL);
	/* the writer is done: the note writer catches up once more */
	pthread_mutex_lock(&wr.lock);
	wr.notes_stop = 1;
	pthread_cond_signal(&wr.notes_work);
	pthread_mutex_unlock(&wr.lock);
	pthread_join(wr.notes_thread, NULL);
	wr.running = 0;
	if (wr.commits)
		fprintf(stderr,
		        "docket serve: %lu writes in %lu commits (%.1f a commit, at most %lu), "
		        "%lu archive notes in %lu rounds\n",
		        wr.commands, wr.commits, (double)wr.commands / (double)wr.commits,
		        wr.biggest, wr.notes_written, wr.note_rounds);
	dk_runner_free(wr.notes_runner);
	dk_runner_free(wr.runner);
	wr.notes_runner = wr.runner = NULL;
}

void dk_writer_notes_wake(void)
{
	pthread_mutex_lock(&wr.lock);
	wr.notes_due = 1;
	pthread_cond_signal(&wr.notes_work);
	pthread_mutex_unlock(&wr.lock);
}

void dk_writer_gc_wake(void)
{
	pthread_mutex_lock(&wr.lock);
	wr.notes_due = wr.gc_due = 1;
	pthread_cond_signal(&wr.notes_work);
	pthread_mutex_unlock(&wr.lock);
}

void dk_api_write(dk_req *rq, dk_write_fn fn, void *arg, dk_after_fn after, void *state)
{
	job *j;
	int error;

	rq->after = after;
	rq->after_state = state;
	/* No writer (a server being stopped, or a caller outside serve): the
	 * command runs here in a transaction of its own. */
	pthread_mutex_lock(&wr.lock);
	if (!wr.running || wr.stop || !rq->conn) {
		pthread_mutex_unlock(&wr.lock);
		dk_error_clear();
		if ((error = fn(rq, rq->ctx->runner, arg)) < 0)
			dk_api_fail(rq, error);
		dk_api_write_finish(rq);
		return;
	}
	j = dk_calloc(1, sizeof(*j));
	j->rq = rq;
	j->fn = fn;
	j->arg = arg;
	rq->job = j;
	/* Suspended before it is queued: the writer may resume it as soon as
	 * it can see it, and a resume must find the connection suspended. */
	MHD_suspend_connection(rq->conn);
	if (wr.tail)
		wr.tail->next = j;
	else
		wr.head = j;
	wr.tail = j;
	pthread_cond_signal(&wr.work);
	pthread_mutex_unlock(&wr.lock);
}

void dk_api_write_finish(dk_req *rq)
{
	dk_after_fn after = rq->after;

	free(rq->job);
	rq->job = NULL;
	rq->after = NULL;
	if (after)
		after(rq, rq->after_state);
	rq->after_state = NULL;
}
