/*
 * serve_acts.c - durable acts per second through `docket serve`: CONNS
 * keep-alive connections, each on an instance of its own, each sending its
 * acts one after the other (the next only once the previous one was
 * answered, as a person or a client library would).
 *
 * Usage: serve_acts HOST:PORT CONNS ACTS IDS STEP...
 *   IDS   a file with one instance id a line, at least CONNS of them;
 *         connection i acts on the i-th id.
 *   STEP  TRANSITION:TOKEN:BODY, e.g. submit:dkt_...:{}. Each connection
 *         fires the steps in turn, round and round: the steps must bring
 *         an instance back to where it started (submit, then return).
 *   ACTS  acts in all, rounded up to whole rounds of the steps per
 *         connection, so every instance ends where it began.
 *
 * Prints one line: acts answered 2xx per second, from the first request
 * to the last answer. Any other answer is a failure: it is printed to
 * stderr and the exit status is 1, because a benchmark that lost acts
 * measured something else. Loopback only (the address is parsed
 * numerically, never looked up).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STEPS 8

typedef struct {
	const char *transition, *token, *body;
} step;

static struct sockaddr_in addr;
static step steps[MAX_STEPS];
static int nsteps;
static long rounds; /* per connection */
static atomic_long ok_acts, failed_acts;

typedef struct {
	pthread_t thread;
	const char *id;
	int failed;
} conn;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one answer into buf (headers and Content-Length bytes of body);
 * returns the status, or -1 when the connection broke. */
static int read_answer(int fd, char *buf, size_t cap, size_t *have)
{
	size_t len = 0, need = 0;
	char *end = NULL;

	for (;;) {
		if (!end && (end = memmem(buf, len, "\r\n\r\n", 4))) {
			const char *cl = strcasestr(buf, "\r\nContent-Length:");
			need = (size_t)(end - buf) + 4 + (cl ? strtoul(cl + 17, NULL, 10) : 0);
			if (need >= cap)
				return -1;
		}
		if (end && len >= need)
			break;
		if (len + 1 >= cap)
			return -1;
		ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = 0;
	}
	*have = len;
	if (len != need) /* one request at a time: nothing may follow */
		return -1;
	return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? (int)strtol(buf + 9, NULL, 10) : -1;
}

static void *run(void *arg)
{
	conn *c = arg;
	char req[2048], *ans = malloc(1 << 16);
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (!ans || fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("serve_acts: connect");
		c->failed = 1;
		goto done;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (long r = 0; r < rounds; r++) {
		for (int s = 0; s < nsteps; s++) {
			const step *st = &steps[s];
			size_t have = 0;
			int n =
			    snprintf(req, sizeof(req),
			             "POST /api/instances/%s/transitions/%s HTTP/1.1\r\n"
			             "Host: bench\r\nAuthorization: Bearer %s\r\n"
			             "Content-Type: application/json\r\n"
			             "Content-Length: %zu\r\n\r\n%s",
			             c->id, st->transition, st->token, strlen(st->body), st->body);
			int status;
			if (n < 0 || (size_t)n >= sizeof(req) || send_all(fd, req, (size_t)n) < 0 ||
			    (status = read_answer(fd, ans, 1 << 16, &have)) < 0) {
				fprintf(stderr, "serve_acts: instance %s: the connection broke\n",
				        c->id);
				c->failed = 1;
				goto done;
			}
			if (status / 100 != 2) {
				atomic_fetch_add(&failed_acts, 1);
				fprintf(stderr, "serve_acts: instance %s %s: %.*s\n", c->id,
				        st->transition, (int)have, ans);
				c->failed = 1;
				goto done;
			}
			atomic_fetch_add(&ok_acts, 1);
		}
	}
done:
	if (fd >= 0)
		close(fd);
	free(ans);
	return NULL;
}

int main(int argc, char **argv)
{
	char host[64], line[128];
	conn *conns = NULL;
	long nconns, acts;
	int failed = 0, nids = 0;
	FILE *f = NULL;

	if (argc < 6 || argc - 5 > MAX_STEPS) {
		fprintf(stderr, "usage: serve_acts HOST:PORT CONNS ACTS IDS STEP...\n");
		return 2;
	}
	const char *colon = strrchr(argv[1], ':');
	if (!colon || (size_t)(colon - argv[1]) >= sizeof(host)) {
		fprintf(stderr, "serve_acts: %s is not HOST:PORT\n", argv[1]);
		return 2;
	}
	memcpy(host, argv[1], (size_t)(colon - argv[1]));
	host[colon - argv[1]] = 0;
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)strtol(colon + 1, NULL, 10));
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		fprintf(stderr, "serve_acts: %s is not a numeric IPv4 address\n", host);
		return 2;
	}
	nconns = strtol(argv[2], NULL, 10);
	acts = strtol(argv[3], NULL, 10);
	if (nconns < 1 || nconns > 1024 || acts < 1) {
		fprintf(stderr, "serve_acts: CONNS must be 1 to 1024 and ACTS at least 1\n");
		return 2;
	}
	for (int i = 5; i < argc; i++) {
		step *st = &steps[nsteps++];
		char *a = argv[i], *p = strchr(a, ':'), *q = p ? strchr(p + 1, ':') : NULL;
		if (!q) {
			fprintf(stderr, "serve_acts: step '%s' is not TRANSITION:TOKEN:BODY\n", a);
			return 2;
		}
		*p = *q = 0;
		st->transition = a;
		st->token = p + 1;
		st->body = q + 1;
	}
	rounds = (acts + nconns * nsteps - 1) / (nconns * nsteps);
	conns = calloc((size_t)nconns, sizeof(*conns));
	if (!conns || !(f = fopen(argv[4], "r"))) {
		fprintf(stderr, "serve_acts: cannot read %s\n", argv[4]);
		free(conns);
		return 2;
	}
	while (nids < nconns && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (*line)
			conns[nids++].id = strdup(line);
	}
	fclose(f);
	if (nids < nconns) {
		fprintf(stderr, "serve_acts: %s has %d ids, %ld connections need one each\n",
		        argv[4], nids, nconns);
		failed = 2;
		goto cleanup;
	}
	double t0 = now_s();
	for (long i = 0; i < nconns; i++)
		if (pthread_create(&conns[i].thread, NULL, run, &conns[i]) != 0) {
			fprintf(stderr, "serve_acts: cannot start thread %ld\n", i);
			nconns = i;
			failed = 1;
			break;
		}
	for (long i = 0; i < nconns; i++) {
		pthread_join(conns[i].thread, NULL);
		failed |= conns[i].failed;
	}
	double secs = now_s() - t0;
	if (failed) {
		fprintf(stderr,
		        "serve_acts: %ld acts answered 2xx, %ld refused, some connections "
		        "failed\n",
		        (long)atomic_load(&ok_acts), (long)atomic_load(&failed_acts));
	} else {
		printf("%.1f\n", (double)atomic_load(&ok_acts) / secs);
	}
cleanup:
	for (long i = 0; i < nids; i++)
		free((char *)conns[i].id);
	free(conns);
	return failed ? 1 : 0;
}
