/*
 * sign.c - Standard Webhooks v1 secrets and signatures (OpenSSL libcrypto).
 *
 * A secret is "whsec_" + base64 of the HMAC key. The signed content is
 * "<webhook-id>.<webhook-timestamp>.<body>" and a signature is
 * "v1,<base64 HMAC-SHA256>". During a secret rotation both signatures go out
 * in one header, separated by a space, and a receiver accepts either.
 */
#include "web-hooks/hooks.h"

#include "util/buf.h"
#include "util/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Standard base64 text of len bytes (free()). */
static char *b64_encode(const unsigned char *bytes, size_t len)
{
	char *out = dk_malloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, bytes, (int)len);
	return out;
}

/* Strict base64 decode: only the standard alphabet and '=' padding at the
 * end, a multiple of four characters. EVP_DecodeBlock would accept
 * whitespace and count padding as zero bytes, so the checks and the length
 * fix-up are ours. Returns 0 or -1. */
static int b64_decode(unsigned char **out, size_t *len, const char *text)
{
	size_t n = strlen(text), pad = 0;
	if (n == 0 || n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		if (c == '=') {
			if (i < n - 2)
				return -1;
			pad++;
		} else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		                    (c >= '0' && c <= '9') || c == '+' || c == '/')) {
			return -1;
		}
	}
	unsigned char *buf = dk_malloc(n / 4 * 3 + 1);
	int got = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n);
	if (got < 0 || (size_t)got < pad) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = (size_t)got - pad;
	return 0;
}

int dk_hook_secret_generate(char **out)
{
	unsigned char key[DK_HOOK_SECRET_GEN_BYTES];
	dk_buf b = DK_BUF_INIT;
	if (RAND_bytes(key, sizeof(key)) != 1)
		return dk_error_set(
		    DK_EINTERNAL,
		    "cannot draw random bytes for a webhook secret (OpenSSL RAND_bytes "
		    "failed); check that the system's entropy source works");
	char *b64 = b64_encode(key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	dk_buf_puts(&b, DK_HOOK_SECRET_PREFIX);
	dk_buf_puts(&b, b64);
	free(b64);
	*out = dk_buf_detach(&b);
	return 0;
}

int dk_hook_secret_key(unsigned char **out, size_t *len, const char *secret)
{
	static const char hint[] = "omit --secret to have one generated, or make one with "
	                           "`printf whsec_; openssl rand -base64 32`";
	size_t plen = strlen(DK_HOOK_SECRET_PREFIX);
	if (!secret || strncmp(secret, DK_HOOK_SECRET_PREFIX, plen) != 0)
		return dk_error_set(DK_EINVALID,
		                    "a webhook secret starts with '" DK_HOOK_SECRET_PREFIX
		                    "' followed by base64; %s",
		                    hint);
	if (b64_decode(out, len, secret + plen) < 0)
		return dk_error_set(DK_EINVALID,
		                    "the webhook secret after '" DK_HOOK_SECRET_PREFIX
		                    "' is not valid base64 (A-Z a-z 0-9 + / and = padding); %s",
		                    hint);
	if (*len < DK_HOOK_SECRET_MIN_BYTES) {
		size_t got = *len;
		OPENSSL_cleanse(*out, *len);
		free(*out);
		*out = NULL;
		return dk_error_set(
		    DK_EINVALID, "the webhook secret holds %zu bytes; at least %d are needed; %s",
		    got, DK_HOOK_SECRET_MIN_BYTES, hint);
	}
	return 0;
}

int dk_hook_secret_check(const char *secret)
{
	unsigned char *key = NULL;
	size_t len = 0;
	int error = dk_hook_secret_key(&key, &len, secret);
	if (error == 0) {
		OPENSSL_cleanse(key, len);
		free(key);
	}
	return error;
}

/* HMAC-SHA256 as an EVP_MAC, fetched once: OpenSSL 3's one-shot HMAC()
 * looks the algorithm up again on every call, which cost more than the
 * MAC of a webhook body. */
static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static void hmac_fetch(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* The raw HMAC-SHA256 of "id.timestamp.body" under secret's key into mac. */
static int hmac_raw(unsigned char mac[32], const char *secret, const char *msg_id,
                    const char *timestamp, const char *body, size_t len)
{
	unsigned char *key = NULL;
	size_t klen = 0, maclen = 0;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
	                       OSSL_PARAM_construct_end()};
	int error;

	if ((error = dk_hook_secret_key(&key, &klen, secret)) < 0)
		return error;
	pthread_once(&hmac_once, hmac_fetch);
	if (!hmac_alg || !(ctx = EVP_MAC_CTX_new(hmac_alg)) ||
	    !EVP_MAC_init(ctx, key, klen, params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)timestamp, strlen(timestamp)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)body, len) ||
	    !EVP_MAC_final(ctx, mac, &maclen, 32) || maclen != 32)
		error = dk_error_set(DK_EINTERNAL, "OpenSSL HMAC-SHA256 failed");
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(key, klen);
	free(key);
	return error;
}

int dk_hook_sign(char **out, const char *secret, const char *msg_id, int64_t timestamp,
                 const char *body, size_t len)
{
	unsigned char mac[32];
	char ts[24];
	int error;

	snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
	if ((error = hmac_raw(mac, secret, msg_id, ts, body, len)) < 0)
		return error;
	char *b64 = b64_encode(mac, sizeof(mac));
	dk_buf b = DK_BUF_INIT;
	dk_buf_printf(&b, "v1,%s", b64);
	free(b64);
	*out = dk_buf_detach(&b);
	return 0;
}

int dk_hook_signature_header(char **out, const char *secret, const char *old_secret,
                             const char *msg_id, int64_t timestamp, const char *body, size_t len)
{
	char *a = NULL, *b = NULL;
	int error;

	if ((error = dk_hook_sign(&a, secret, msg_id, timestamp, body, len)) < 0)
		goto cleanup;
	if (old_secret && (error = dk_hook_sign(&b, old_secret, msg_id, timestamp, body, len)) < 0)
		goto cleanup;
	if (b) {
		dk_buf h = DK_BUF_INIT;
		dk_buf_printf(&h, "%s %s", a, b);
		*out = dk_buf_detach(&h);
	} else {
		*out = a;
		a = NULL;
	}
cleanup:
	free(a);
	free(b);
	return error;
}

int dk_hook_verify(const char *secret, const char *msg_id, const char *timestamp, const char *body,
                   size_t len, const char *signature_header, int64_t now, int64_t tolerance)
{
	unsigned char mac[32];
	char *end = NULL;
	int error, matched = 0;

	if (!msg_id || !*msg_id || !timestamp || !signature_header)
		return dk_error_set(DK_EINVALID,
		                    "webhook-id, webhook-timestamp and webhook-signature are all "
		                    "required");
	long long ts = strtoll(timestamp, &end, 10);
	if (!*timestamp || *end)
		return dk_error_set(DK_EINVALID, "webhook-timestamp '%s' is not unix seconds",
		                    timestamp);
	if ((error = hmac_raw(mac, secret, msg_id, timestamp, body, len)) < 0)
		return error;
	/* Walk every "v1,<sig>" entry; other versions are for other keys. */
	const char *p = signature_header;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *e = p;
		while (*e && *e != ' ')
			e++;
		if (e - p > 3 && strncmp(p, "v1,", 3) == 0) {
			char *text = dk_strndup(p + 3, (size_t)(e - p - 3));
			unsigned char *sig = NULL;
			size_t slen = 0;
			if (b64_decode(&sig, &slen, text) == 0) {
				if (slen == sizeof(mac) && CRYPTO_memcmp(sig, mac, slen) == 0)
					matched = 1;
				free(sig);
			}
			free(text);
		}
		p = e;
	}
	if (!matched)
		return dk_error_set(DK_EFORBIDDEN, "no webhook signature matches the secret");
	if (tolerance > 0 && (ts < now - tolerance || ts > now + tolerance))
		return dk_error_set(DK_EFORBIDDEN,
		                    "webhook-timestamp %lld is %lld s away from now; at most %lld "
		                    "s are tolerated (replay or clock skew)",
		                    ts, ts > now ? ts - (long long)now : (long long)now - ts,
		                    (long long)tolerance);
	return 0;
}
