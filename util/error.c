/* error.c - per-thread error message and the mapping onto exit statuses. */
#include "util/error.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[2048];
static _Thread_local int last_code;

int dk_error_vset(int code, const char *fmt, va_list ap)
{
	/* Callers wrap the previous message ("...: %s", dk_error_last()), and
	 * vsnprintf must not read the buffer it writes: format aside first. */
	char msg[sizeof(last_msg)];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	memcpy(last_msg, msg, sizeof(msg));
	last_code = code;
	return code;
}

int dk_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dk_error_vset(code, fmt, ap);
	va_end(ap);
	return code;
}

const char *dk_error_last(void)
{
	return last_msg;
}

int dk_error_code(void)
{
	return last_code;
}

void dk_error_clear(void)
{
	last_msg[0] = '\0';
	last_code = DK_OK;
}

int dk_error_exit_status(int code)
{
	switch (code) {
	case DK_OK: return 0;
	case DK_EUSAGE: return 2;
	case DK_ENOTFOUND: return 3;
	case DK_EFORBIDDEN: return 4;
	case DK_ECONFLICT: return 5;
	case DK_EPRECOND: return 6;
	default: return 1;
	}
}

const char *dk_error_name(int code)
{
	switch (code) {
	case DK_OK: return "ok";
	case DK_EINVALID: return "invalid";
	case DK_EUSAGE: return "usage";
	case DK_ENOTFOUND: return "not found";
	case DK_EFORBIDDEN: return "forbidden";
	case DK_ECONFLICT: return "conflict";
	case DK_EPRECOND: return "precondition failed";
	default: return "internal";
	}
}
