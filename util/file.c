/* file.c - whole-file reads and hashing of small byte strings. */
#include "util/file.h"

#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void dk_sha256_hex(char out[65], const void *bytes, size_t len)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(bytes, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(out + (size_t)2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}
