/* fn.c - the dk: functions (namespace urn:docket:fn) that flow expressions
 * may call: names, arities and one line of documentation. The loader checks
 * calls against this table; the engine implements every entry. */
#include "definitions/flow.h"

#include <string.h>

static const dk_fn_info table[] = {
    {"head-of", 1, 1, "head-of(user): the head of the user's department"},
    {"dept-of", 1, 1, "dept-of(user): the id of the user's department"},
    {"division-leader-of", 1, 1,
     "division-leader-of(user): the division leader over the user's department"},
    {"name-of", 1, 1, "name-of(user): the user's display name"},
    {"members", 1, 2,
     "members(role [, dept]): space-separated ids of the users holding role, in dept "
     "when given"},
    {"now", 0, 0, "now(): the current instant"},
    {"entered-at", 0, 0, "entered-at(): the instant the instance entered its current state"},
    {"day-of-month", 1, 2,
     "day-of-month(n [, months-ahead]): day n of this month (or of a later month), 00:00 "
     "in the flow's time zone"},
    {"end-of-month", 0, 1,
     "end-of-month([months-ahead]): the last instant of this month (or of a later month)"},
    {"working-days", 1, 2,
     "working-days(n [, from]): n working days after from (default now), skipping "
     "weekends and org holidays"},
    {"start-of-next-week", 0, 0, "start-of-next-week(): next Monday, 00:00"},
    {"add", 2, 2, "add(date, duration): date plus an ISO 8601 duration such as 'P3D'"},
    {"days-between", 2, 2, "days-between(a, b): whole days from date a to date b"},
    {"late", 1, 1, "late(kind): true when evidence of that kind came in after its due date"},
    {"days-late", 1, 1, "days-late(kind): how many days after its due date the evidence came in"},
    {"count", 1, 1, "count(kind): how many files of that evidence kind were uploaded"},
    {"uploaded-at", 1, 1, "uploaded-at(kind): when the last file of that kind was uploaded"},
    {"min", 2, 2, "min(a, b): the smaller number"},
    {"max", 2, 2, "max(a, b): the larger number"},
    {NULL, 0, 0, NULL},
};

const dk_fn_info *dk_fn_lookup(const char *name)
{
	if (!name)
		return NULL;
	for (const dk_fn_info *f = table; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

const dk_fn_info *dk_fn_table(void)
{
	return table;
}
