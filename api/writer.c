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
 * the failure instead (none of it remains). The archive notes follow the
 * commit, command by command, as they follow a lone command's commit.
 *
 * While the writer commits one batch, requests keep arriving and queue up:
 * the busier the server, the bigger the batches, and the fsync is paid
 * once per batch instead of once per request. An idle server commits each
 * command at once (a batch of one): no request waits for company.
 *
 * Request threads keep doing everything else (parsing, tokens, the seeing
 * rules, reads), in parallel; the writer only decides and writes.
 */
#include "api/api_int.h"

#include "util/error.h"
#include "util/time.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Commands per transaction at most: bounds how long the write lock is held
 * and how long the first request of a batch waits for the last. */
#define MAX_BATCH 256

typedef struct job {
	dk_req *rq;
	dk_write_fn fn;
	void *arg;
	size_t notes_from; /* the runner's pending notes when it began */
	dk_notes *notes;   /* its archive notes, once committed */
	int done;
	struct job *next;
} job;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t work; /* the writer waits for commands */
	pthread_cond_t done; /* request threads wait for their batch */
	job *head, *tail;
	int running, stop;
	pthread_t thread;
	dk_runner *runner;
	/* for the line at stop: how well the batching went */
	unsigned long commands, commits, biggest;
} wr = {.lock = PTHREAD_MUTEX_INITIALIZER,
        .work = PTHREAD_COND_INITIALIZER,
        .done = PTHREAD_COND_INITIALIZER};

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

static void run_batch(dk_runner *r, job *batch)
{
	int error, lost = 0;

	if ((error = dk_runner_batch_begin(r)) < 0) {
		fail_batch(batch, error);
		return;
	}
	for (job *j = batch; j && !lost; j = j->next) {
		j->notes_from = dk_runner_notes_pending(r);
		if (run_one(r, j) < 0)
			lost = 1;
	}
	if (lost) {
		error = dk_error_code() ? dk_error_code() : DK_EINTERNAL;
		dk_runner_batch_abort(r);
		fail_batch(batch, error);
		return;
	}
	if ((error = dk_runner_batch_commit(r)) < 0) {
		fail_batch(batch, error);
		return;
	}
	/* Each request thread writes its own command's notes: the git
	 * writes (fsynced files) then run in parallel, off the writer. Taken
	 * from the last command back, as dk_runner_notes_take wants. */
	job *rev = NULL;
	for (job *j = batch, *next; j; j = next) {
		next = j->next;
		j->next = rev;
		rev = j;
	}
	for (job *j = rev; j; j = j->next)
		j->notes = dk_runner_notes_take(r, j->notes_from);
	/* ...and back in order for the caller (batch heads it again). */
	job *fwd = NULL;
	for (job *j = rev, *next; j; j = next) {
		next = j->next;
		j->next = fwd;
		fwd = j;
	}
	assert(fwd == batch);
}

static void *writer_main(void *arg)
{
	pthread_setname_np(pthread_self(), "docket-writer");
	for (;;) {
		job *batch, *last;
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

		run_batch(wr.runner, batch);

		pthread_mutex_lock(&wr.lock);
		for (job *j = batch; j; j = j->next)
			j->done = 1;
		pthread_cond_broadcast(&wr.done);
		pthread_mutex_unlock(&wr.lock);
	}
	return arg;
}

int dk_writer_start(const dk_serve_opts *opts)
{
	int error;

	wr.stop = 0;
	wr.head = wr.tail = NULL;
	wr.commands = wr.commits = wr.biggest = 0;
	if ((error = dk_runner_open(&wr.runner, opts->home)) < 0)
		return error;
	if (pthread_create(&wr.thread, NULL, writer_main, NULL) != 0) {
		dk_runner_free(wr.runner);
		wr.runner = NULL;
		return dk_error_set(DK_EINTERNAL, "cannot start the writer thread");
	}
	wr.running = 1;
	return 0;
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
	wr.running = 0;
	if (wr.commits)
		fprintf(stderr,
		        "docket serve: %lu writes in %lu commits (%.1f a commit, at most %lu)\n",
		        wr.commands, wr.commits, (double)wr.commands / (double)wr.commits,
		        wr.biggest);
	dk_runner_free(wr.runner);
	wr.runner = NULL;
}

int dk_api_write(dk_req *rq, dk_write_fn fn, void *arg)
{
	job j = {rq, fn, arg, 0, NULL, 0, NULL};

	/* No writer (a server being stopped, or a caller outside serve): the
	 * command runs here in a transaction of its own. */
	pthread_mutex_lock(&wr.lock);
	if (!wr.running || wr.stop) {
		pthread_mutex_unlock(&wr.lock);
		return fn(rq, rq->ctx->runner, arg);
	}
	if (wr.tail)
		wr.tail->next = &j;
	else
		wr.head = &j;
	wr.tail = &j;
	pthread_cond_signal(&wr.work);
	while (!j.done)
		pthread_cond_wait(&wr.done, &wr.lock);
	pthread_mutex_unlock(&wr.lock);
	/* Committed: the notes follow, before the answer, as for a lone
	 * command. */
	dk_runner_notes_write(rq->ctx->runner, j.notes);
	return 0;
}
