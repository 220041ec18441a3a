/*
 * links.c - signed action links: what lets an approver approve or return
 * from a notification without signing in.
 *
 * A link names one move: instance, the state of the task and which visit
 * of that state it was issued in, the transition, the user it acts as,
 * when it expires and a random nonce. Those fields travel in the link
 * itself (base64url, no padding) followed by '.' and the base64url
 * HMAC-SHA256 of "docket-link-1\n" + the fields, keyed by the home's link
 * key (kept in the store, made on first use from the OpenSSL CSPRNG).
 * Nothing is stored when a link is made; the server learns what a link
 * may do from the link and trusts it only when the MAC matches.
 *
 * The visit makes a link stale once its state was left, even if the
 * instance comes back to the same state later; the nonce makes it single
 * use (the server records used nonces in the act's own transaction).
 */
#include "web-hooks/hooks.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/time.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define LINK_CONTEXT "docket-link-1\n"
#define LINK_NFIELDS 7

/* base64url without padding of len bytes, appended to b. */
static void b64url_put(dk_buf *b, const unsigned char *bytes, size_t len)
{
	char *tmp = dk_malloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)tmp, bytes, (int)len);
	for (char *p = tmp; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
		else if (*p == '=')
			*p = 0;
	}
	dk_buf_puts(b, tmp);
	free(tmp);
}

/* Decodes n characters of base64url (no padding) into *out (free(), NUL
 * added) and *len. Returns 0 or -1 for any other character or length. */
static int b64url_decode(unsigned char **out, size_t *len, const char *text, size_t n)
{
	size_t pad = (4 - n % 4) % 4;
	char *tmp;
	int got;

	if (n == 0 || pad == 3)
		return -1;
	tmp = dk_malloc(n + pad + 1);
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		           (c >= '0' && c <= '9'))) {
			free(tmp);
			return -1;
		}
		tmp[i] = c;
	}
	memset(tmp + n, '=', pad);
	tmp[n + pad] = 0;
	*out = dk_malloc((n + pad) / 4 * 3 + 1);
	got = EVP_DecodeBlock(*out, (const unsigned char *)tmp, (int)(n + pad));
	free(tmp);
	if (got < 0 || (size_t)got < pad) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*len = (size_t)got - pad;
	(*out)[*len] = 0;
	/* Only the canonical spelling: unused low bits of the last character
	 * must be zero, so one token has exactly one text. */
	dk_buf again = DK_BUF_INIT;
	b64url_put(&again, *out, *len);
	int same = again.len == n && memcmp(again.ptr, text, n) == 0;
	dk_buf_free(&again);
	if (!same) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* HMAC-SHA256 of the context line and the fields: the context keeps a
 * link's MAC from ever matching another docket MAC made with the key. */
static void mac(unsigned char out[32], const unsigned char *key, size_t keylen,
                const unsigned char *fields, size_t len)
{
	dk_buf msg = DK_BUF_INIT;
	unsigned int n = 32;

	dk_buf_puts(&msg, LINK_CONTEXT);
	dk_buf_put(&msg, (const char *)fields, len);
	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg.ptr, msg.len, out, &n);
	dk_buf_free(&msg);
}

int dk_link_key(unsigned char *out, size_t *len, dk_store *s, int create, int64_t now)
{
	unsigned char fresh[DK_LINK_KEY_BYTES];
	int error = dk_store_link_key_get(s, out, DK_LINK_KEY_BYTES, len);

	if (error != DK_ENOTFOUND || !create)
		return error;
	if (RAND_bytes(fresh, sizeof(fresh)) != 1)
		return dk_error_set(DK_EINTERNAL,
		                    "cannot draw random bytes for the action link key (OpenSSL "
		                    "RAND_bytes failed); check the system's entropy source");
	error = dk_store_link_key_put(s, fresh, sizeof(fresh), now);
	OPENSSL_cleanse(fresh, sizeof(fresh));
	if (error < 0)
		return error;
	/* Read back: another process may have kept its key first. */
	return dk_store_link_key_get(s, out, DK_LINK_KEY_BYTES, len);
}

static int field_ok(const char *f)
{
	return f && *f && !strchr(f, '\n');
}

int dk_link_sign(char **out, const unsigned char *key, size_t keylen, const dk_link *l)
{
	unsigned char nonce[16], sig[32];
	dk_buf fields = DK_BUF_INIT, b = DK_BUF_INIT;
	char hex[33];

	*out = NULL;
	if (!field_ok(l->instance) || !field_ok(l->state) || !field_ok(l->transition) ||
	    !field_ok(l->user))
		return dk_error_set(DK_EINVALID,
		                    "an action link needs an instance, state, transition and user, "
		                    "none of them empty or holding a line break");
	if (l->nonce[0]) {
		snprintf(hex, sizeof(hex), "%s", l->nonce);
	} else {
		if (RAND_bytes(nonce, sizeof(nonce)) != 1)
			return dk_error_set(DK_EINTERNAL,
			                    "cannot draw random bytes for an action link nonce; "
			                    "check the system's entropy source");
		for (size_t i = 0; i < sizeof(nonce); i++)
			snprintf(hex + 2 * i, 3, "%02x", nonce[i]);
	}
	dk_buf_printf(&fields, "%s\n%s\n%d\n%s\n%s\n%" PRId64 "\n%s", l->instance, l->state,
	              l->visit, l->transition, l->user, l->expires, hex);
	mac(sig, key, keylen, (const unsigned char *)fields.ptr, fields.len);
	b64url_put(&b, (const unsigned char *)fields.ptr, fields.len);
	dk_buf_putc(&b, '.');
	b64url_put(&b, sig, sizeof(sig));
	dk_buf_free(&fields);
	*out = dk_buf_detach(&b);
	return 0;
}

void dk_link_free(dk_link *l)
{
	if (!l)
		return;
	free(l->instance);
	free(l->state);
	free(l->transition);
	free(l->user);
	memset(l, 0, sizeof(*l));
}

int dk_link_verify(dk_link *out, const unsigned char *key, size_t keylen, const char *token)
{
	const char *dot = token ? strchr(token, '.') : NULL;
	unsigned char *fields = NULL, *sig = NULL, want[32];
	size_t flen = 0, slen = 0;
	char *parts[LINK_NFIELDS], *p, *end;
	int error = 0;

	memset(out, 0, sizeof(*out));
	if (!dot || strlen(token) > 4096 ||
	    b64url_decode(&fields, &flen, token, (size_t)(dot - token)) < 0 ||
	    b64url_decode(&sig, &slen, dot + 1, strlen(dot + 1)) < 0 || slen != sizeof(want)) {
		error = dk_error_set(DK_EFORBIDDEN, "this link is damaged: copy the whole link "
		                                    "from the notification, or act in the inbox");
		goto cleanup;
	}
	mac(want, key, keylen, fields, flen);
	if (CRYPTO_memcmp(want, sig, sizeof(want)) != 0) {
		error = dk_error_set(DK_EFORBIDDEN,
		                     "this link's signature is not valid: it was changed, or made "
		                     "for another docket; act in the inbox instead");
		goto cleanup;
	}
	/* Signed by us, so well formed; still checked, cheaply. */
	p = (char *)fields;
	for (size_t i = 0; i < LINK_NFIELDS; i++) {
		parts[i] = p;
		p = strchr(p, '\n');
		if (!p && i + 1 < LINK_NFIELDS) {
			error = dk_error_set(DK_EFORBIDDEN, "this link is damaged");
			goto cleanup;
		}
		if (p)
			*p++ = 0;
	}
	out->instance = dk_strdup(parts[0]);
	out->state = dk_strdup(parts[1]);
	out->visit = (int)strtol(parts[2], &end, 10);
	out->transition = dk_strdup(parts[3]);
	out->user = dk_strdup(parts[4]);
	out->expires = strtoll(parts[5], &end, 10);
	snprintf(out->nonce, sizeof(out->nonce), "%s", parts[6]);
cleanup:
	OPENSSL_cleanse(want, sizeof(want));
	free(fields);
	free(sig);
	return error;
}

int dk_link_expiry(int64_t *out, int64_t at)
{
	const char *v = getenv("DOCKET_LINK_TTL");
	dk_duration d = {0, 0, 0, 0};

	if (!v || !*v)
		v = DK_LINK_TTL_DEFAULT;
	if (dk_duration_parse(&d, v) < 0 || dk_duration_add(at, &d) <= at)
		return dk_error_set(
		    DK_EINVALID,
		    "DOCKET_LINK_TTL='%s' is not a positive duration; write it like "
		    "P7D or PT12H",
		    v);
	*out = dk_duration_add(at, &d);
	return 0;
}
