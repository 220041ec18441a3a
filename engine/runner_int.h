/* runner_int.h - what the runner's files share; private to engine/. */
#ifndef DK_ENGINE_RUNNER_INT_H
#define DK_ENGINE_RUNNER_INT_H

#include "engine/runner.h"
#include "store/store.h"

struct dk_runner {
	char *home;
	dk_store *store;
	dk_flow **flows; /* compiled flows, cached: deployed versions never change */
	size_t nflows;
	dk_org *org; /* reloaded when the stored org's SHA-256 changes */
	int64_t fixed_now;
};

int dk_runner_clock(dk_runner *r, int64_t *now);
int dk_runner_flow(dk_runner *r, const dk_flow **out, const char *id, int version);
int dk_runner_org(dk_runner *r, const dk_org **out);
int dk_runner_get_instance(dk_runner *r, dk_instance_row *out, const char *id);
int dk_runner_earliest_due(dk_runner *r, const char *instance, int64_t *out);
dk_store *dk_runner_store(dk_runner *r);

json_t *dk_json_time(int64_t t);
json_t *dk_json_strn(const char *s);
json_t *dk_event_json(const dk_event_row *e);
json_t *dk_task_json(const dk_task_row *t, int64_t now);

#endif
