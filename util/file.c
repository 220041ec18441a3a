/* file.c - whole-file reads and hashing of small byte strings. */
#include "util/file.h"

#include "util/buf.h"
#include "util/error.h"

/* SHA256_Init and friends are deprecated in OpenSSL 3 but kept: unlike
 * EVP they need no library context (see dk_sha256_hex). */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int dk_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int dk_pwrite_all(int fd, const void *p, size_t n, off_t at)
{
	const char *c = p;
	while (n) {
		ssize_t w = pwrite(fd, c, n, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
		at += w;
	}
	return 0;
}

int dk_read_file(char **out, size_t *len, const char *path, size_t max)
{
	FILE *f = fopen(path, "rb");
	dk_buf b = DK_BUF_INIT;
	char chunk[65536];
	size_t n;

	*out = NULL;
	*len = 0;
	if (!f) {
		if (errno == ENOENT)
			return dk_error_set(DK_ENOTFOUND, "%s: no such file; check the path", path);
		return dk_error_set(DK_EINVALID, "%s: cannot open: %s", path, strerror(errno));
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b.len + n > max) {
			fclose(f);
			dk_buf_free(&b);
			return dk_error_set(DK_EINVALID,
			                    "%s: file is larger than the limit of %zu bytes; "
			                    "split it or shorten it",
			                    path, max);
		}
		dk_buf_put(&b, chunk, n);
	}
	if (ferror(f)) {
		int e = errno;
		fclose(f);
		dk_buf_free(&b);
		return dk_error_set(DK_EINVALID, "%s: cannot read: %s", path, strerror(e));
	}
	fclose(f);
	*len = b.len;
	*out = dk_buf_detach(&b);
	return 0;
}

/* The first EVP digest of a process sets up OpenSSL 3's library context
 * (reads openssl.cnf, loads the default provider, builds its method
 * store): 2 to 20 ms, more than the rest of a `docket act`, which hashes
 * the flow and the org it loads. The plain SHA-256 functions run the same
 * code without that set-up. */
void dk_sha256_hex(char out[65], const void *bytes, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, bytes, len);
	SHA256_Final(md, &c);
	for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}
