/*
 * catalog.c
 *    Opening and closing the catalog database, outer transactions, and the
 *    statement helpers the other catalog files share.
 *
 * The connection is configured for several processes at once: WAL journal
 * (readers never wait for the writer), synchronous=NORMAL (durable at each
 * checkpoint, safe against corruption), foreign keys on (child rows follow
 * their parents) and a busy timeout, after which a writer gives up with
 * "database is locked".
 */
#include "catalog/catalog_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>
#include <unistd.h>

/* How long a connection waits for another process's write lock. */
#define CAT_BUSY_TIMEOUT_MS 10000

static char *db_temp_path(ros_error *err);
static int db_configure(cat_db *db, ros_error *err);
static void db_remove_files(const char *path);

/* ------------------------------------------------------------------ */
/* Opening and closing */

cat_db *cat_open(const char *path, ros_error *err)
{
    cat_db *db = calloc(1, sizeof *db);
    if (!db) {
        ros_error_oom(err);
        return NULL;
    }
    if (path) {
        db->path = strdup(path);
    } else {
        db->path = db_temp_path(err);
        db->transient = db->path != NULL;
        if (!db->path)
            goto fail;
    }
    if (!db->path)
        goto oom;
    size_t plen = strlen(db->path);
    db->run_dir = malloc(plen + sizeof ".run");
    if (!db->run_dir)
        goto oom;
    memcpy(db->run_dir, db->path, plen);
    memcpy(db->run_dir + plen, ".run", sizeof ".run");

    /* NOMUTEX: a connection is used by one thread at a time (each process or
     * thread opens its own), so SQLite's per-call locking is pure overhead on
     * the scan path */
    int rc = sqlite3_open_v2(db->path, &db->sq, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        ros_error_set(err, ROS_ERR_IO, "could not open database \"%s\": %s", db->path,
                      db->sq ? sqlite3_errmsg(db->sq) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(db->sq, 1);
    sqlite3_busy_timeout(db->sq, CAT_BUSY_TIMEOUT_MS);

    /* Refuse foreign files before changing anything in them (WAL mode is
     * persistent, so even the journal pragma would write to the file). */
    int version;
    /* Another process opening the same new file at the same moment may hold
     * the lock that switching to WAL needs; SQLite does not always run the
     * busy handler there, so retry for as long as the busy timeout. */
    for (int attempt = 0;; attempt++) {
        if (cat_schema_check(db->sq, db->path, CAT_SCHEMA_VERSION, &version, err) == 0 &&
            db_configure(db, err) == 0)
            break;
        int code = sqlite3_errcode(db->sq) & 0xff;
        if ((code != SQLITE_BUSY && code != SQLITE_LOCKED) || attempt * 10 >= CAT_BUSY_TIMEOUT_MS)
            goto fail;
        ros_error_clear(err);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (version < CAT_SCHEMA_VERSION &&
        cat_schema_migrate(db->sq, db->path, cat_migrations, CAT_SCHEMA_VERSION, err) < 0)
        goto fail;
    return db;

oom:
    ros_error_oom(err);
fail:
    cat_close(db);
    return NULL;
}

/* Creates an empty temporary file for a transient catalog. */
static char *db_temp_path(ros_error *err)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    size_t n = strlen(dir) + sizeof "/rosql-XXXXXX";
    char *p = malloc(n);
    if (!p) {
        ros_error_oom(err);
        return NULL;
    }
    snprintf(p, n, "%s/rosql-XXXXXX", dir);
    int fd = mkstemp(p);
    if (fd < 0) {
        ros_error_set(err, ROS_ERR_IO, "could not create temporary catalog in \"%s\": %s", dir,
                      strerror(errno));
        free(p);
        return NULL;
    }
    close(fd);
    return p;
}

static int db_configure(cat_db *db, ros_error *err)
{
    sqlite3_stmt *st;
    if (cat_prepare(db, "PRAGMA journal_mode = WAL", &st, err) < 0)
        return -1;
    int rc = sqlite3_step(st);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (!mode || strcmp(mode, "wal") != 0) {
        if (rc == SQLITE_ROW)
            ros_error_set(err, ROS_ERR_IO, "could not open database \"%s\": WAL journal mode unavailable (got %s)",
                          db->path, mode ? mode : "nothing");
        else
            ros_error_set(err, ROS_ERR_IO, "could not open database \"%s\": %s", db->path,
                          sqlite3_errmsg(db->sq));
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return cat_exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", err);
}

void cat_close(cat_db *db)
{
    if (!db)
        return;
    if (db->sq) {
        if (!sqlite3_get_autocommit(db->sq))
            sqlite3_exec(db->sq, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(db->sq);
    }
    if (db->transient)
        db_remove_files(db->path);
    free(db->path);
    free(db->run_dir);
    free(db);
}

void cat_set_busy_timeout(cat_db *db, int ms) { sqlite3_busy_timeout(db->sq, ms); }

/* Removes a database file and its WAL companions. */
static void db_remove_files(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    size_t plen = strlen(path);
    char *p = malloc(plen + sizeof "-journal");
    if (!p) {
        unlink(path);
        return;
    }
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        memcpy(p, path, plen);
        strcpy(p + plen, suffixes[i]);
        unlink(p);
    }
    free(p);
}

sqlite3 *cat_sqlite(cat_db *db)
{
    return db->sq;
}

const char *cat_path(const cat_db *db)
{
    return db->path;
}

const char *cat_run_dir(const cat_db *db)
{
    return db->run_dir;
}

int cat_schema_version(cat_db *db)
{
    sqlite3_stmt *st;
    int64_t v;
    bool found;
    if (sqlite3_prepare_v2(db->sq, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (cat_step_int(db, st, &v, &found, NULL) < 0 || !found)
        return -1;
    return (int)v;
}

/* ------------------------------------------------------------------ */
/* Outer transactions */

int cat_begin(cat_db *db, ros_error *err)
{
    if (!sqlite3_get_autocommit(db->sq))
        return ros_error_set(err, ROS_ERR_INTERNAL, "catalog transaction already open");
    db->writing++;
    int rc = cat_exec(db, "BEGIN IMMEDIATE", err);
    db->writing--;
    return rc;
}

int cat_commit(cat_db *db, ros_error *err)
{
    if (sqlite3_get_autocommit(db->sq))
        return 0;
    db->writing++;
    int rc = cat_exec(db, "COMMIT", err);
    db->writing--;
    if (rc < 0)
        cat_rollback(db);
    return rc;
}

void cat_rollback(cat_db *db)
{
    if (!sqlite3_get_autocommit(db->sq))
        sqlite3_exec(db->sq, "ROLLBACK", NULL, NULL, NULL);
}

bool cat_in_transaction(cat_db *db)
{
    return !sqlite3_get_autocommit(db->sq);
}

int cat_op_begin(cat_db *db, bool *savepoint, ros_error *err)
{
    *savepoint = !sqlite3_get_autocommit(db->sq);
    db->writing++;
    if (cat_exec(db, *savepoint ? "SAVEPOINT cat_op" : "BEGIN IMMEDIATE", err) < 0) {
        db->writing--;
        return -1;
    }
    return 0;
}

int cat_op_end(cat_db *db, bool savepoint, int rc, ros_error *err)
{
    if (rc >= 0 && cat_exec(db, savepoint ? "RELEASE cat_op" : "COMMIT", err) < 0)
        rc = -1;
    /* Some failures (I/O, out of memory) make SQLite roll the whole
     * transaction back itself; then there is nothing left to undo. */
    if (rc < 0 && !sqlite3_get_autocommit(db->sq)) {
        if (savepoint)
            sqlite3_exec(db->sq, "ROLLBACK TO cat_op; RELEASE cat_op", NULL, NULL, NULL);
        else
            sqlite3_exec(db->sq, "ROLLBACK", NULL, NULL, NULL);
    }
    db->writing--;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Statement helpers */

int cat_sqlerr(cat_db *db, ros_error *err)
{
    int code = sqlite3_errcode(db->sq) & 0xff;
    if (code == SQLITE_NOMEM)
        return ros_error_oom(err);
    return ros_error_set(err, ROS_ERR_IO, "could not %s catalog: %s", db->writing > 0 ? "write" : "read",
                         sqlite3_errmsg(db->sq));
}

int cat_collect(cat_db *db, sqlite3_stmt *st, cat_row_fn load, cat_obj_free_fn free_fn, void ***out, int *n,
                ros_error *err)
{
    void **arr = NULL;
    int cnt = 0, rc;
    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        void **na = realloc(arr, (size_t)(cnt + 1) * sizeof *na);
        if (!na) {
            ros_error_oom(err);
            goto fail;
        }
        arr = na;
        if (!(arr[cnt] = load(db, st, err)))
            goto fail;
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        cat_sqlerr(db, err);
        goto fail;
    }
    sqlite3_finalize(st);
    *out = arr;
    *n = cnt;
    return 0;
fail:
    sqlite3_finalize(st);
    for (int i = 0; i < cnt; i++)
        free_fn(arr[i]);
    free(arr);
    return -1;
}

void *cat_fetch_one(cat_db *db, sqlite3_stmt *st, cat_row_fn load, ros_error *err)
{
    void *obj = NULL;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        obj = load(db, st, err);
    else if (rc != SQLITE_DONE)
        cat_sqlerr(db, err);
    sqlite3_finalize(st);
    return obj;
}

int cat_exec(cat_db *db, const char *sql, ros_error *err)
{
    if (sqlite3_exec(db->sq, sql, NULL, NULL, NULL) != SQLITE_OK)
        return cat_sqlerr(db, err);
    return 0;
}

int cat_prepare(cat_db *db, const char *sql, sqlite3_stmt **st, ros_error *err)
{
    if (sqlite3_prepare_v2(db->sq, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return cat_sqlerr(db, err);
    }
    return 0;
}

int cat_step_done(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        cat_sqlerr(db, err);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int cat_step_int(cat_db *db, sqlite3_stmt *st, int64_t *out, bool *found, ros_error *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        if (found)
            *found = true;
        sqlite3_finalize(st);
        return 0;
    }
    if (rc != SQLITE_DONE) {
        cat_sqlerr(db, err);
        sqlite3_finalize(st);
        return -1;
    }
    if (found)
        *found = false;
    sqlite3_finalize(st);
    return 0;
}

int cat_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (!s)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

char *cat_col_dup(sqlite3_stmt *st, int i, bool *oom)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

double cat_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}
