/*
 * sqlite_vfs.c - the "docket" VFS: SQLite's own (unix) VFS, except that the
 * frames a commit appends to the WAL reach the kernel in one write.
 *
 * SQLite writes a WAL frame as two write(2)s, its 24-byte header and its
 * page, so a step of eight pages made sixteen system calls before the one
 * fdatasync that makes it durable; each costs more than copying its bytes.
 * Here a WAL file gathers writes that continue one another in memory and
 * hands them to the real file as one write when something needs them in
 * the file: its sync (the commit), a read, a write elsewhere, a size
 * question, a truncation, a file control or the close. Every other file,
 * and every other call, goes straight to the real VFS.
 *
 * Why this is safe: what a commit wrote is in the file before its sync
 * returns, as before, and other connections only look at frames the
 * wal-index names, which SQLite updates after that sync because docket
 * always runs with synchronous=FULL (store/sqlite.c); this connection's
 * own reads of the WAL flush first. A crash before the sync loses only
 * frames no one was told about, as a crash between the writes and the sync
 * always could. A failed write is reported by the call that made it happen,
 * the sync among them, which fails the commit.
 */
#include "store/sqlite_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DK_VFS_NAME "docket"
/* Gathered bytes past this are written at once (a big transaction). The
 * unix VFS writes at most 128 KiB - 1 in one call (it masks the length
 * with 0x1ffff) and takes a short write for a full disk: stay below. */
#define DK_WAL_GATHER_MAX ((size_t)120 * 1024)

typedef struct {
	sqlite3_file base;  /* pMethods: ours */
	sqlite3_file *real; /* the real VFS's file, allocated right after */
	int wal;            /* gathers writes */
	unsigned char *buf; /* gathered bytes, for offset at .. at + len */
	size_t len, cap;
	sqlite3_int64 at;
} dk_vfs_file;

static sqlite3_vfs *real_vfs(sqlite3_vfs *v)
{
	return (sqlite3_vfs *)v->pAppData;
}

/* Writes what is gathered; the gathered bytes are dropped either way, as
 * a failed write(2) drops them. */
static int flush(dk_vfs_file *f)
{
	int rc;

	if (f->len == 0)
		return SQLITE_OK;
	rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
	f->len = 0;
	return rc;
}

static int f_close(sqlite3_file *p)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	int rc = flush(f), rc2 = f->real->pMethods->xClose(f->real);

	free(f->buf);
	f->buf = NULL;
	f->cap = 0;
	return rc != SQLITE_OK ? rc : rc2;
}

static int f_read(sqlite3_file *p, void *out, int n, sqlite3_int64 at)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, n, at);
}

static int f_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 at)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	int rc;

	if (!f->wal || n <= 0)
		return f->real->pMethods->xWrite(f->real, data, n, at);
	if (f->len > 0 &&
	    (at != f->at + (sqlite3_int64)f->len || f->len + (size_t)n > DK_WAL_GATHER_MAX)) {
		if ((rc = flush(f)) != SQLITE_OK)
			return rc;
	}
	if ((size_t)n > DK_WAL_GATHER_MAX)
		return f->real->pMethods->xWrite(f->real, data, n, at);
	if (f->len + (size_t)n > f->cap) {
		size_t cap = f->cap ? f->cap : (size_t)64 * 1024;
		unsigned char *b;
		while (cap < f->len + (size_t)n)
			cap *= 2;
		if ((b = realloc(f->buf, cap)) == NULL) {
			/* no memory to gather in: write as SQLite asked */
			if ((rc = flush(f)) != SQLITE_OK)
				return rc;
			return f->real->pMethods->xWrite(f->real, data, n, at);
		}
		f->buf = b;
		f->cap = cap;
	}
	if (f->len == 0)
		f->at = at;
	memcpy(f->buf + f->len, data, (size_t)n);
	f->len += (size_t)n;
	return SQLITE_OK;
}

static int f_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int f_sync(sqlite3_file *p, int flags)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int f_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int f_lock(sqlite3_file *p, int level)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	return f->real->pMethods->xLock(f->real, level);
}

static int f_unlock(sqlite3_file *p, int level)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	return f->real->pMethods->xUnlock(f->real, level);
}

static int f_check_reserved_lock(sqlite3_file *p, int *out)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int f_file_control(sqlite3_file *p, int op, void *arg)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	int rc = flush(f);

	if (rc != SQLITE_OK)
		return rc;
	return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int f_sector_size(sqlite3_file *p)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	return f->real->pMethods->xSectorSize(f->real);
}

static int f_device_characteristics(sqlite3_file *p)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* The shared-memory and memory-map methods exist from versions 2 and 3
 * of a file's methods; a real file without one answers as SQLite's own
 * would (no shared memory: an I/O error; no memory map: none). */
static int f_shm_map(sqlite3_file *p, int region, int size, int extend, void volatile **out)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	if (!f->real->pMethods->xShmMap)
		return SQLITE_IOERR_SHMMAP;
	return f->real->pMethods->xShmMap(f->real, region, size, extend, out);
}

static int f_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	if (!f->real->pMethods->xShmLock)
		return SQLITE_IOERR_SHMLOCK;
	return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *p)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	if (f->real->pMethods->xShmBarrier)
		f->real->pMethods->xShmBarrier(f->real);
}

static int f_shm_unmap(sqlite3_file *p, int delete_flag)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	if (!f->real->pMethods->xShmUnmap)
		return SQLITE_OK;
	return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int f_fetch(sqlite3_file *p, sqlite3_int64 at, int n, void **out)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	int rc = flush(f);

	*out = NULL;
	if (rc != SQLITE_OK || f->real->pMethods->iVersion < 3 || !f->real->pMethods->xFetch)
		return rc;
	return f->real->pMethods->xFetch(f->real, at, n, out);
}

static int f_unfetch(sqlite3_file *p, sqlite3_int64 at, void *page)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	if (f->real->pMethods->iVersion < 3 || !f->real->pMethods->xUnfetch)
		return SQLITE_OK;
	return f->real->pMethods->xUnfetch(f->real, at, page);
}

/* One table per version of the real file's methods: SQLite reads a
 * file's abilities from iVersion. */
#define DK_VFS_METHODS(v)                                                                          \
	{                                                                                          \
		(v), f_close, f_read, f_write, f_truncate, f_sync, f_file_size, f_lock, f_unlock,  \
		    f_check_reserved_lock, f_file_control, f_sector_size,                          \
		    f_device_characteristics, (v) >= 2 ? f_shm_map : NULL,                         \
		    (v) >= 2 ? f_shm_lock : NULL, (v) >= 2 ? f_shm_barrier : NULL,                 \
		    (v) >= 2 ? f_shm_unmap : NULL, (v) >= 3 ? f_fetch : NULL,                      \
		    (v) >= 3 ? f_unfetch : NULL                                                    \
	}
static const sqlite3_io_methods methods[3] = {DK_VFS_METHODS(1), DK_VFS_METHODS(2),
                                              DK_VFS_METHODS(3)};

static const sqlite3_io_methods *methods_for(const sqlite3_io_methods *r)
{
	int v = r->iVersion < 1 ? 1 : r->iVersion > 3 ? 3 : r->iVersion;
	return &methods[v - 1];
}

static int v_open(sqlite3_vfs *v, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
	dk_vfs_file *f = (dk_vfs_file *)p;
	sqlite3_vfs *r = real_vfs(v);
	int rc;

	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = r->xOpen(r, name, f->real, flags, out_flags);
	/* SQLite calls xClose when pMethods is set, even on failure. */
	if (f->real->pMethods)
		f->base.pMethods = methods_for(f->real->pMethods);
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	return rc;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	return real_vfs(v)->xDelete(real_vfs(v), name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	return real_vfs(v)->xAccess(real_vfs(v), name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	return real_vfs(v)->xFullPathname(real_vfs(v), name, n, out);
}

static void *v_dl_open(sqlite3_vfs *v, const char *name)
{
	return real_vfs(v)->xDlOpen(real_vfs(v), name);
}

static void v_dl_error(sqlite3_vfs *v, int n, char *out)
{
	real_vfs(v)->xDlError(real_vfs(v), n, out);
}

static void (*v_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	return real_vfs(v)->xDlSym(real_vfs(v), h, sym);
}

static void v_dl_close(sqlite3_vfs *v, void *h)
{
	real_vfs(v)->xDlClose(real_vfs(v), h);
}

static int v_randomness(sqlite3_vfs *v, int n, char *out)
{
	return real_vfs(v)->xRandomness(real_vfs(v), n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
	return real_vfs(v)->xSleep(real_vfs(v), us);
}

static int v_current_time(sqlite3_vfs *v, double *out)
{
	return real_vfs(v)->xCurrentTime(real_vfs(v), out);
}

static int v_get_last_error(sqlite3_vfs *v, int n, char *out)
{
	return real_vfs(v)->xGetLastError ? real_vfs(v)->xGetLastError(real_vfs(v), n, out) : 0;
}

static int v_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	return real_vfs(v)->xCurrentTimeInt64(real_vfs(v), out);
}

static sqlite3_vfs vfs;

static int v_set_system_call(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr call)
{
	return real_vfs(v)->xSetSystemCall(real_vfs(v), name, call);
}

static sqlite3_syscall_ptr v_get_system_call(sqlite3_vfs *v, const char *name)
{
	return real_vfs(v)->xGetSystemCall(real_vfs(v), name);
}

static const char *v_next_system_call(sqlite3_vfs *v, const char *name)
{
	return real_vfs(v)->xNextSystemCall(real_vfs(v), name);
}

static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static const char *vfs_name;

static void vfs_register(void)
{
	sqlite3_vfs *r;

	if ((r = sqlite3_vfs_find(NULL)) == NULL || r->iVersion < 2)
		return; /* SQLite's default, as it is */
	vfs.iVersion = r->iVersion < 3 ? r->iVersion : 3;
	vfs.szOsFile = (int)sizeof(dk_vfs_file) + r->szOsFile;
	vfs.mxPathname = r->mxPathname;
	vfs.zName = DK_VFS_NAME;
	vfs.pAppData = r;
	vfs.xOpen = v_open;
	vfs.xDelete = v_delete;
	vfs.xAccess = v_access;
	vfs.xFullPathname = v_full_pathname;
	vfs.xDlOpen = r->xDlOpen ? v_dl_open : NULL;
	vfs.xDlError = r->xDlError ? v_dl_error : NULL;
	vfs.xDlSym = r->xDlSym ? v_dl_sym : NULL;
	vfs.xDlClose = r->xDlClose ? v_dl_close : NULL;
	vfs.xRandomness = v_randomness;
	vfs.xSleep = v_sleep;
	vfs.xCurrentTime = v_current_time;
	vfs.xGetLastError = v_get_last_error;
	vfs.xCurrentTimeInt64 = v_current_time_int64;
	if (vfs.iVersion >= 3) {
		vfs.xSetSystemCall = r->xSetSystemCall ? v_set_system_call : NULL;
		vfs.xGetSystemCall = r->xGetSystemCall ? v_get_system_call : NULL;
		vfs.xNextSystemCall = r->xNextSystemCall ? v_next_system_call : NULL;
	}
	if (sqlite3_vfs_register(&vfs, 0) == SQLITE_OK)
		vfs_name = vfs.zName;
}

const char *dk_sql_vfs(void)
{
	pthread_once(&vfs_once, vfs_register);
	return vfs_name;
}
