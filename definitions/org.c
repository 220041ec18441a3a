/*
 * org.c - the org directory (namespace urn:docket:org:1): departments with
 * their head and division leader, users with their department and roles,
 * holidays, the time zone. Read with the same untrusted-XML rules and
 * diagnostics as flows; references between users and departments are
 * checked here because the schema cannot.
 */
#include "definitions/internal.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/file.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int valid_date(const char *s)
{
	static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return 0;
	int y = (int)strtol(s, NULL, 10);
	int m = (int)strtol(s + 5, NULL, 10);
	int d = (int)strtol(s + 8, NULL, 10);
	if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1)
		return 0;
	int max = dim[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
	return d <= max;
}

static void build(dk_org *org, const xmlDoc *doc, dk_diags *d)
{
	const xmlNode *top = xmlDocGetRootElement(doc);
	const char *file = org->file;
	size_t iu = 0, id = 0, ih = 0;
	int *holiday_lines;

	org->timezone = dk_xml_attr(top, "timezone");
	if (org->timezone)
		dk_check_timezone(file, dk_xml_line(top), org->timezone, d);
	else
		org->timezone = dk_strdup("UTC");
	for (const xmlNode *c = top->children; c; c = c->next) {
		if (dk_xml_is(c, "user"))
			org->nusers++;
		else if (dk_xml_is(c, "dept"))
			org->ndepts++;
		else if (dk_xml_is(c, "holiday"))
			org->nholidays++;
	}
	org->users = dk_calloc(org->nusers + 1, sizeof(*org->users));
	org->depts = dk_calloc(org->ndepts + 1, sizeof(*org->depts));
	org->holidays = dk_calloc(org->nholidays + 1, sizeof(*org->holidays));
	holiday_lines = dk_calloc(org->nholidays + 1, sizeof(*holiday_lines));
	for (const xmlNode *c = top->children; c; c = c->next) {
		if (dk_xml_is(c, "user")) {
			dk_user *u = &org->users[iu++];
			char *roles = dk_xml_attr(c, "roles");
			u->line = dk_xml_line(c);
			u->id = dk_xml_attr(c, "id");
			u->name = dk_xml_attr(c, "name");
			if (!u->name)
				u->name = dk_strdup(u->id);
			u->email = dk_xml_attr(c, "email");
			u->dept = dk_xml_attr(c, "dept");
			u->roles = dk_split_words(roles, &u->nroles);
			free(roles);
		} else if (dk_xml_is(c, "dept")) {
			dk_dept *dp = &org->depts[id++];
			dp->line = dk_xml_line(c);
			dp->id = dk_xml_attr(c, "id");
			dp->name = dk_xml_attr(c, "name");
			if (!dp->name)
				dp->name = dk_strdup(dp->id);
			dp->head = dk_xml_attr(c, "head");
			dp->division_leader = dk_xml_attr(c, "division-leader");
		} else if (dk_xml_is(c, "holiday")) {
			holiday_lines[ih] = dk_xml_line(c);
			org->holidays[ih] = dk_xml_attr(c, "date");
			if (!valid_date(org->holidays[ih]))
				dk_diags_add(
				    d, file, holiday_lines[ih], DK_DIAG_ERROR,
				    "holiday date '%s' is not a date; write it as YYYY-MM-DD, "
				    "e.g. 2026-10-01",
				    org->holidays[ih]);
			for (size_t k = 0; k < ih; k++)
				if (strcmp(org->holidays[k], org->holidays[ih]) == 0) {
					dk_diags_add(
					    d, file, holiday_lines[ih], DK_DIAG_WARNING,
					    "holiday %s is listed twice (first on line %d); "
					    "remove one",
					    org->holidays[ih], holiday_lines[k]);
					break;
				}
			ih++;
		}
	}
	free(holiday_lines);

	for (size_t i = 0; i < org->nusers; i++) {
		const dk_user *u = &org->users[i];
		for (size_t k = 0; k < i; k++)
			if (strcmp(org->users[k].id, u->id) == 0) {
				dk_diags_add(
				    d, file, u->line, DK_DIAG_ERROR,
				    "user id '%s' is used twice (first on line %d); rename one",
				    u->id, org->users[k].line);
				break;
			}
		if (u->dept && !dk_org_dept(org, u->dept))
			dk_diags_add(d, file, u->line, DK_DIAG_ERROR,
			             "user '%s' belongs to dept '%s', which is not declared; add "
			             "<dept id=\"%s\"> or fix the 'dept' attribute",
			             u->id, u->dept, u->dept);
	}
	for (size_t i = 0; i < org->ndepts; i++) {
		const dk_dept *dp = &org->depts[i];
		for (size_t k = 0; k < i; k++)
			if (strcmp(org->depts[k].id, dp->id) == 0) {
				dk_diags_add(
				    d, file, dp->line, DK_DIAG_ERROR,
				    "dept id '%s' is used twice (first on line %d); rename one",
				    dp->id, org->depts[k].line);
				break;
			}
		if (dp->head && !dk_org_user(org, dp->head))
			dk_diags_add(
			    d, file, dp->line, DK_DIAG_ERROR,
			    "head '%s' of dept '%s' is not a user; add <user id=\"%s\"> or "
			    "fix the 'head' attribute",
			    dp->head, dp->id, dp->head);
		if (dp->division_leader && !dk_org_user(org, dp->division_leader))
			dk_diags_add(d, file, dp->line, DK_DIAG_ERROR,
			             "division-leader '%s' of dept '%s' is not a user; add <user "
			             "id=\"%s\"> or fix the 'division-leader' attribute",
			             dp->division_leader, dp->id, dp->division_leader);
	}
}

int dk_org_load_buffer(dk_org **out, const char *name, const char *bytes, size_t len,
                       dk_diags *diags)
{
	dk_diags local = DK_DIAGS_INIT;
	dk_diags *d = diags ? diags : &local;
	int before = d->errors;
	xmlDocPtr doc = NULL;
	dk_org *org = NULL;

	*out = NULL;
	if (!name)
		name = "<org>";
	if (dk_xml_load(&doc, name, bytes, len, "org", DK_ORG_NS, "definitions/org.rng",
	                "org directory", d) < 0)
		goto done;
	org = dk_calloc(1, sizeof(*org));
	org->file = dk_strdup(name);
	dk_sha256_hex(org->sha256, bytes, len);
	build(org, doc, d);
	xmlFreeDoc(doc);
	if (d->errors > before) {
		dk_org_free(org);
		org = NULL;
	}
done:
	*out = org;
	return dk_diags_finish(diags, &local, org == NULL);
}

int dk_org_load_file(dk_org **out, const char *path, dk_diags *diags)
{
	dk_diags local = DK_DIAGS_INIT;
	char *bytes = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = dk_xml_read(&bytes, &len, path, "org directory", diags ? diags : &local);
	if (rc < 0) {
		int code = rc;
		rc = dk_diags_finish(diags, &local, 1);
		return code == DK_ENOTFOUND ? dk_error_set(DK_ENOTFOUND, "%s", dk_error_last())
		                            : rc;
	}
	rc = dk_org_load_buffer(out, path, bytes, len, diags);
	free(bytes);
	return rc;
}

void dk_org_free(dk_org *org)
{
	if (!org)
		return;
	free(org->file);
	free(org->timezone);
	for (size_t i = 0; i < org->nusers; i++) {
		dk_user *u = &org->users[i];
		free(u->id);
		free(u->name);
		free(u->email);
		free(u->dept);
		dk_strv_free(u->roles, u->nroles);
	}
	free(org->users);
	for (size_t i = 0; i < org->ndepts; i++) {
		dk_dept *dp = &org->depts[i];
		free(dp->id);
		free(dp->name);
		free(dp->head);
		free(dp->division_leader);
	}
	free(org->depts);
	dk_strv_free(org->holidays, org->nholidays);
	free(org);
}

const dk_user *dk_org_user(const dk_org *org, const char *id)
{
	if (!org || !id)
		return NULL;
	for (size_t i = 0; i < org->nusers; i++)
		if (org->users[i].id && strcmp(org->users[i].id, id) == 0)
			return &org->users[i];
	return NULL;
}

const dk_dept *dk_org_dept(const dk_org *org, const char *id)
{
	if (!org || !id)
		return NULL;
	for (size_t i = 0; i < org->ndepts; i++)
		if (org->depts[i].id && strcmp(org->depts[i].id, id) == 0)
			return &org->depts[i];
	return NULL;
}

int dk_org_is_holiday(const dk_org *org, const char *date)
{
	if (!org || !date)
		return 0;
	for (size_t i = 0; i < org->nholidays; i++)
		if (strcmp(org->holidays[i], date) == 0)
			return 1;
	return 0;
}

int dk_user_has_role(const dk_user *user, const char *role)
{
	if (!user || !role)
		return 0;
	for (size_t i = 0; i < user->nroles; i++)
		if (strcmp(user->roles[i], role) == 0)
			return 1;
	return 0;
}
