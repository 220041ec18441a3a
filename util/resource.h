/* resource.h - files built into the binary (schemas, the web inbox). */
#ifndef DK_UTIL_RESOURCE_H
#define DK_UTIL_RESOURCE_H

#include <stddef.h>

/* The bytes of a file embedded at build time by its path in the source
 * tree ("definitions/flow.rng"), NUL-terminated, with *len set; NULL when
 * there is no such resource. Lent, static. */
const char *dk_resource(const char *name, size_t *len);

#endif
