/* file.h - small file helpers shared by every module. */
#ifndef DK_UTIL_FILE_H
#define DK_UTIL_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Reads a whole file of at most max bytes into *out, NUL-terminated
 * (the caller frees it); *len gets its length. Returns 0, DK_ENOTFOUND when
 * it does not exist, DK_EINVALID when it is too big or unreadable. */
int dk_read_file(char **out, size_t *len, const char *path, size_t max);

/* Writes all n bytes of p to fd, retrying short writes and EINTR. Returns
 * 0, or -1 with errno set (EIO when write made no progress). */
int dk_write_all(int fd, const void *p, size_t n);
/* dk_write_all at offset at (pwrite): the file position does not move. */
int dk_pwrite_all(int fd, const void *p, size_t n, off_t at);

/* Hex SHA-256 of bytes into out[65]. */
void dk_sha256_hex(char out[65], const void *bytes, size_t len);

#endif
