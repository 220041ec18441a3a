/* test_api.c - the API's route table against its OpenAPI description, and
 * tokens: format, hashing, expiry, revocation. */
#include "api/api.h"
#include "store/store.h"
#include "util/error.h"
#include "util/resource.h"

#include <ctype.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static json_t *openapi(void)
{
	size_t len = 0;
	const char *bytes = dk_resource("api/static/openapi.json", &len);
	assert_non_null(bytes);
	json_t *doc = json_loadb(bytes, len, 0, NULL);
	assert_non_null(doc);
	return doc;
}

static void lower(char *out, const char *in)
{
	while ((*out++ = (char)tolower((unsigned char)*in++)))
		;
}

/* Every route the server answers is described... */
static void test_routes_in_openapi(void **state)
{
	size_t n;
	const dk_api_route_info *r = dk_api_routes(&n);
	json_t *doc = openapi(), *paths = json_object_get(doc, "paths");
	char m[16];

	assert_true(n > 10);
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_object_get(paths, r[i].path);
		lower(m, r[i].method);
		if (!p || !json_object_get(p, m))
			fail_msg("%s %s is served but not in api/static/openapi.json", r[i].method,
			         r[i].path);
	}
	json_decref(doc);
}

/* ...and every described operation is served. */
static void test_openapi_in_routes(void **state)
{
	size_t n;
	const dk_api_route_info *r = dk_api_routes(&n);
	json_t *doc = openapi(), *ops;
	const char *path, *method;
	char m[16];
	int ops_seen = 0;

	json_object_foreach(json_object_get(doc, "paths"), path, ops)
	{
		json_t *op;
		json_object_foreach(ops, method, op)
		{
			int found = 0;
			for (size_t i = 0; i < n && !found; i++) {
				lower(m, r[i].method);
				found = strcmp(r[i].path, path) == 0 && strcmp(m, method) == 0;
			}
			if (!found)
				fail_msg(
				    "%s %s is in openapi.json but the server has no such route",
				    method, path);
			ops_seen++;
		}
	}
	assert_int_equal(ops_seen, (int)n);
	json_decref(doc);
}

typedef struct {
	char dir[64];
	dk_store *s;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/dk-api-XXXXXX");
	if (!mkdtemp(f->dir) || dk_store_open(&f->s, f->dir) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char cmd[128];
	dk_store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void test_token_roundtrip(void **state)
{
	fixture *f = *state;
	char *tok = NULL, *user = NULL, hash[65];
	dk_token_row row = {0}, found = {0};

	assert_int_equal(dk_token_create(&tok, &row, f->s, "li", "laptop", 0, 1000), 0);
	assert_int_equal(strncmp(tok, DK_TOKEN_PREFIX, 4), 0);
	assert_int_equal(strlen(tok), 4 + 43);
	for (const char *p = tok + 4; *p; p++)
		assert_true(isalnum((unsigned char)*p) || *p == '-' || *p == '_');
	dk_token_hash(hash, tok);
	assert_string_equal(row.sha256, hash);
	/* The store holds the hash, not the token. */
	assert_int_equal(dk_store_token_find_by_hash(f->s, hash, &found), 0);
	assert_string_equal(found.user_id, "li");
	assert_null(strstr(found.sha256, tok + 4));
	dk_token_row_free(&found);

	assert_int_equal(dk_token_check(&user, f->s, tok, 2000), 0);
	assert_string_equal(user, "li");
	free(user);
	/* One character off is unknown. */
	char orig = tok[10];
	tok[10] = orig == 'A' ? 'B' : 'A';
	assert_int_equal(dk_token_check(&user, f->s, tok, 2000), DK_EFORBIDDEN);
	assert_null(user);
	assert_int_equal(dk_token_check(&user, f->s, "Bearer-ish", 2000), DK_EFORBIDDEN);

	assert_int_equal(dk_store_begin(f->s), 0);
	assert_int_equal(dk_store_token_revoke(f->s, row.id), 0);
	assert_int_equal(dk_store_commit(f->s), 0);
	tok[10] = orig; /* the real token again */
	assert_int_equal(dk_token_check(&user, f->s, tok, 2000), DK_EFORBIDDEN);
	assert_non_null(strstr(dk_error_last(), "revoked"));
	free(tok);
	dk_token_row_free(&row);
}

static void test_token_expiry(void **state)
{
	fixture *f = *state;
	char *tok = NULL, *user = NULL;
	int64_t until = 0;

	assert_int_equal(dk_token_parse_expiry(&until, "P30D", 1000), 0);
	assert_int_equal(until, 1000 + 30 * 86400);
	assert_int_equal(dk_token_parse_expiry(&until, "2027-01-01", 1000), 0);
	assert_int_equal(dk_token_parse_expiry(&until, "1970-01-01", 1000), DK_EINVALID);
	assert_int_equal(dk_token_parse_expiry(&until, "soon", 1000), DK_EINVALID);

	assert_int_equal(dk_token_create(&tok, NULL, f->s, "wei", NULL, 5000, 1000), 0);
	assert_int_equal(dk_token_check(&user, f->s, tok, 4999), 0);
	free(user);
	assert_int_equal(dk_token_check(&user, f->s, tok, 5000), DK_EFORBIDDEN);
	assert_non_null(strstr(dk_error_last(), "expired"));
	free(tok);
}

static void test_idempotency(void **state)
{
	fixture *f = *state;
	char *what = NULL, *body = NULL;
	int status = 0;

	assert_int_equal(dk_store_idempotency_get(f->s, "li", "k", &what, &status, &body),
	                 DK_ENOTFOUND);
	assert_int_equal(dk_store_begin(f->s), 0);
	assert_int_equal(dk_store_idempotency_put(f->s, "li", "k", "POST /a", 201, "{}", 100), 0);
	/* The first answer stays. */
	assert_int_equal(dk_store_idempotency_put(f->s, "li", "k", "POST /a", 409, "x", 100), 0);
	assert_int_equal(dk_store_commit(f->s), 0);
	assert_int_equal(dk_store_idempotency_get(f->s, "li", "k", &what, &status, &body), 0);
	assert_string_equal(what, "POST /a");
	assert_int_equal(status, 201);
	assert_string_equal(body, "{}");
	free(what);
	free(body);
	/* Keys are per user. */
	assert_int_equal(dk_store_idempotency_get(f->s, "wei", "k", &what, &status, &body),
	                 DK_ENOTFOUND);
	/* A day later the key is forgotten at the next put. */
	assert_int_equal(dk_store_begin(f->s), 0);
	assert_int_equal(
	    dk_store_idempotency_put(f->s, "li", "k2", "POST /b", 200, "{}", 100 + 86401), 0);
	assert_int_equal(dk_store_commit(f->s), 0);
	assert_int_equal(dk_store_idempotency_get(f->s, "li", "k", &what, &status, &body),
	                 DK_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routes_in_openapi),
	    cmocka_unit_test(test_openapi_in_routes),
	    cmocka_unit_test_setup_teardown(test_token_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
