/*
 * outbox_enqueue.c - puts webhook events into a home's outbox, as the runner
 * will, for end-to-end tests and demos of the dispatcher.
 *
 *   outbox_enqueue --home H --type T --flow F --instance I [--seq N]
 *                  [--count K] [--instances M] [--actor U] [--assignee U]...
 *                  [--title T] [--state S] [--transition T] [--comment C]
 *                  [--org FILE]
 *
 * Queues each event with dk_hook_enqueue, as the runner does, all in one
 * transaction. Assignee names come from --org (an org directory file), or
 * else from the org directory loaded into the home, if any. With --count K, K events go
 * out; with --instances M they are spread round-robin over instances
 * I-0 .. I-(M-1), each instance's events numbered from --seq (default 1)
 * up, so per-instance order can be checked by the payload id.
 */
#include "store/store.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"
#include "web-hooks/hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ASSIGNEES 16

static int usage(void)
{
	fprintf(stderr, "usage: outbox_enqueue --home H --type T --flow F --instance I [--seq N] "
	                "[--count K] [--instances M] [--actor U] [--assignee U]... [--title T] "
	                "[--state S] [--transition T] [--comment C] [--org FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *home = NULL, *instance = NULL, *org_file = NULL, *assignees[MAX_ASSIGNEES];
	dk_org *org = NULL;
	char *org_xml = NULL;
	size_t org_len = 0;
	dk_hook_event ev;
	long count = 1, instances = 1, seq = 1;
	dk_store *s = NULL;
	int error = 0;

	memset(&ev, 0, sizeof(ev));
	ev.assignees = assignees;
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *a = argv[i], *v = argv[i + 1];
		if (strcmp(a, "--home") == 0)
			home = v;
		else if (strcmp(a, "--type") == 0)
			ev.type = v;
		else if (strcmp(a, "--flow") == 0)
			ev.flow_id = v;
		else if (strcmp(a, "--instance") == 0)
			instance = v;
		else if (strcmp(a, "--seq") == 0)
			seq = atol(v);
		else if (strcmp(a, "--count") == 0)
			count = atol(v);
		else if (strcmp(a, "--instances") == 0)
			instances = atol(v);
		else if (strcmp(a, "--actor") == 0)
			ev.actor = v;
		else if (strcmp(a, "--title") == 0)
			ev.title = v;
		else if (strcmp(a, "--state") == 0)
			ev.state = v;
		else if (strcmp(a, "--transition") == 0)
			ev.transition = v;
		else if (strcmp(a, "--comment") == 0)
			ev.comment = v;
		else if (strcmp(a, "--org") == 0)
			org_file = v;
		else if (strcmp(a, "--assignee") == 0 && ev.nassignees < MAX_ASSIGNEES)
			assignees[ev.nassignees++] = v;
		else
			return usage();
	}
	if (argc % 2 == 0 || !home || !ev.type || !ev.flow_id || !instance || count < 1 ||
	    instances < 1)
		return usage();
	ev.flow_version = 1;
	if ((error = dk_store_open(&s, home)) < 0)
		goto cleanup;
	if (org_file)
		error = dk_org_load_file(&org, org_file, NULL);
	else if (dk_store_org_bytes(s, &org_xml, &org_len) == 0)
		error = dk_org_load_buffer(&org, "org", org_xml, org_len, NULL);
	if (error < 0 || (error = dk_time_now(&ev.at)) < 0)
		goto cleanup;
	if ((error = dk_store_begin(s)) < 0)
		goto cleanup;
	for (long k = 0; k < count && error == 0; k++) {
		dk_buf id = DK_BUF_INIT;
		if (instances > 1)
			dk_buf_printf(&id, "%s-%ld", instance, k % instances);
		else
			dk_buf_puts(&id, instance);
		ev.instance_id = id.ptr;
		ev.seq = seq + k / instances;
		error = dk_hook_enqueue(s, &ev, org, ev.at);
		dk_buf_free(&id);
	}
	if (error == 0)
		error = dk_store_commit(s);
	else
		dk_store_rollback(s);
cleanup:
	if (error < 0)
		fprintf(stderr, "outbox_enqueue: %s\n", dk_error_last());
	dk_org_free(org);
	free(org_xml);
	dk_store_close(s);
	return error < 0 ? 1 : 0;
}
