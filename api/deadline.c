/*
 * deadline.c - a deadline for each request to arrive whole, because
 * libmicrohttpd's connection timeout is an idle timeout: a client that
 * sends one header line a second (a "slowloris") is never idle and would
 * hold its connection, and a slot of --max-connections, forever.
 *
 * Every connection is tracked from the moment it is accepted (MHD's
 * connection notifications) and armed with a deadline of --timeout
 * seconds for its request line and headers. It is disarmed once they are
 * in: a body is bounded by --max-body or --max-upload and cut by the idle
 * timeout if it stalls, while a large one on a slow line may take its
 * time. It is armed again when the answer has been sent, for the next
 * request on a kept-alive connection. A watchdog thread shuts down the
 * socket of any armed connection past its deadline; libmicrohttpd then
 * reads the end of the stream and closes the connection itself.
 *
 * Sockets are only touched under the list's lock, and a connection leaves
 * the list (MHD_CONNECTION_NOTIFY_CLOSED) before libmicrohttpd closes its
 * socket, so the watchdog never shuts down a socket number reused by a
 * newer connection.
 */
#include "api/api_int.h"

#include "util/buf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

typedef struct tracked {
	struct MHD_Connection *conn;
	int fd;
	int armed;
	time_t deadline;
	struct tracked *prev, *next;
} tracked;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int running, stop;
	unsigned timeout_s;
	tracked *head;
} dl;

static time_t mono_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

void dk_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
	tracked *t = *socket_context;

	pthread_mutex_lock(&dl.lock);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED && !t) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		t = dk_calloc(1, sizeof(*t));
		t->conn = c;
		t->fd = ci ? (int)ci->connect_fd : -1;
		t->armed = t->fd >= 0;
		t->deadline = mono_now() + (time_t)dl.timeout_s;
		t->next = dl.head;
		if (dl.head)
			dl.head->prev = t;
		dl.head = t;
		*socket_context = t;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && t) {
		if (t->prev)
			t->prev->next = t->next;
		else
			dl.head = t->next;
		if (t->next)
			t->next->prev = t->prev;
		free(t);
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&dl.lock);
}

static void set_armed(struct MHD_Connection *c, int armed)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	tracked *t = ci ? ci->socket_context : NULL;

	if (!t)
		return;
	pthread_mutex_lock(&dl.lock);
	t->armed = armed && t->fd >= 0;
	if (armed)
		t->deadline = mono_now() + (time_t)dl.timeout_s;
	pthread_mutex_unlock(&dl.lock);
}

void dk_deadline_arm(struct MHD_Connection *c)
{
	set_armed(c, 1);
}

void dk_deadline_disarm(struct MHD_Connection *c)
{
	set_armed(c, 0);
}

static void *watchdog(void *arg)
{
	pthread_mutex_lock(&dl.lock);
	while (!dl.stop) {
		struct timespec until;
		time_t now = mono_now();
		for (tracked *t = dl.head; t; t = t->next)
			if (t->armed && now >= t->deadline) {
				/* Both directions: MHD's next read sees the end. */
				shutdown(t->fd, SHUT_RDWR);
				t->armed = 0;
				fprintf(stderr,
				        "docket serve: cut off a client that did not send its "
				        "request within %u s\n",
				        dl.timeout_s);
			}
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&dl.wake, &dl.lock, &until);
	}
	pthread_mutex_unlock(&dl.lock);
	return arg;
}

int dk_deadline_start(unsigned timeout_s)
{
	pthread_mutex_init(&dl.lock, NULL);
	pthread_cond_init(&dl.wake, NULL);
	dl.timeout_s = timeout_s;
	dl.stop = 0;
	if (pthread_create(&dl.thread, NULL, watchdog, NULL) != 0)
		return -1;
	dl.running = 1;
	return 0;
}

void dk_deadline_stop(void)
{
	if (!dl.running)
		return;
	pthread_mutex_lock(&dl.lock);
	dl.stop = 1;
	pthread_cond_signal(&dl.wake);
	pthread_mutex_unlock(&dl.lock);
	pthread_join(dl.thread, NULL);
	dl.running = 0;
	/* The daemon is stopped: every connection was closed and freed. */
	while (dl.head) {
		tracked *t = dl.head;
		dl.head = t->next;
		free(t);
	}
	pthread_cond_destroy(&dl.wake);
	pthread_mutex_destroy(&dl.lock);
}
