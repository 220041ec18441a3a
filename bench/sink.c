/*
 * sink.c - a loopback HTTP sink for the webhook benchmarks: accepts any
 * request on 127.0.0.1, reads the body, answers 204, counts.
 *
 * Usage: sink PORTFILE SECONDS
 * Listens on 127.0.0.1 at a port the kernel picks, writes that port to
 * PORTFILE, and stops by itself after SECONDS (or on SIGTERM/SIGINT),
 * printing how many requests it answered. Loopback only and bounded in
 * time, so a benchmark that forgets it cannot leave a server behind.
 *
 * Used until the webhooks' test receiver (tests/tools/receiver.c) is there.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static unsigned long answered;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	static int first_call_marker;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	/* microhttpd calls once for the headers, then once per body chunk,
	 * then once more with no data: answer on that last call */
	if (*con_cls == NULL) {
		*con_cls = &first_call_marker;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, MHD_HTTP_NO_CONTENT, resp);
	MHD_destroy_response(resp);
	answered++;
	return ret;
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	long seconds;
	time_t until;
	FILE *f;

	if (argc != 3 || (seconds = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: sink PORTFILE SECONDS\n");
		return 2;
	}
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = 0;
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
	                     on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "sink: cannot listen on 127.0.0.1\n");
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	f = fopen(argv[1], "w");
	if (info == NULL || f == NULL) {
		fprintf(stderr, "sink: cannot tell the port in %s\n", argv[1]);
		MHD_stop_daemon(d);
		return 1;
	}
	fprintf(f, "%u\n", (unsigned)info->port);
	fclose(f);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	until = time(NULL) + seconds;
	while (!stop && time(NULL) < until)
		usleep(50000);
	MHD_stop_daemon(d);
	printf("%lu\n", answered);
	return 0;
}
