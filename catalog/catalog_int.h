/*
 * catalog_int.h
 *    Internals shared by the catalog's source files: the handle, statement
 *    helpers, the per-operation transaction wrapper and the schema
 *    migration framework.
 *
 * Nothing outside catalog/ includes this, except the catalog's unit tests,
 * which drive the migration framework with their own steps.
 */
#ifndef CAT_CATALOG_INT_H
#define CAT_CATALOG_INT_H

#include "catalog/catalog.h"

struct cat_db {
    sqlite3 *sq;        /* the connection */
    char *path;         /* database file path (malloc'd) */
    char *run_dir;      /* "<path>.run" (malloc'd) */
    bool transient;     /* path is a temporary file removed by cat_close */
    int writing;        /* > 0 inside a write operation: errors say "write" */
};

/* ------------------------------------------------------------------ */
/* Statement helpers (catalog.c).  All return 0 or -1 with err set. */

/* Records the connection's last SQLite error as ROS_ERR_IO
 * "could not read|write catalog: <sqlite message>"; returns -1. */
int cat_sqlerr(cat_db *db, ros_error *err);
/* Runs statements without parameters or results. */
int cat_exec(cat_db *db, const char *sql, ros_error *err);
int cat_prepare(cat_db *db, const char *sql, sqlite3_stmt **st, ros_error *err);
/* Steps st to completion (no result rows expected) and finalizes it. */
int cat_step_done(cat_db *db, sqlite3_stmt *st, ros_error *err);
/* Binds text, or NULL when s is NULL.  Returns the SQLite result code. */
int cat_bind_text(sqlite3_stmt *st, int i, const char *s);
/* strdup of a text column; NULL for SQL NULL.  Sets *oom when the copy
 * fails, so a loader checks once at the end. */
char *cat_col_dup(sqlite3_stmt *st, int i, bool *oom);
/* Steps a prepared, bound query and reads column 0 of its first row as an
 * integer into *out; *found says whether a row came back.  Finalizes st. */
int cat_step_int(cat_db *db, sqlite3_stmt *st, int64_t *out, bool *found, ros_error *err);
/* Seconds since the epoch, with sub-second precision. */
double cat_now(void);

/* Builds one object from the current row of st; NULL with err set on failure. */
typedef void *(*cat_row_fn)(cat_db *db, sqlite3_stmt *st, ros_error *err);
/* Frees an object built by a cat_row_fn. */
typedef void (*cat_obj_free_fn)(void *obj);

/*
 * Steps a prepared, bound query to the end, building one object per row with
 * load into a malloc'd array (*out, *n), and finalizes st.  The array is
 * handed out as void ** and read by callers as an array of their own object
 * pointers (all object pointers share one representation on every platform
 * rosql builds for).  On failure frees what it built, leaves *out NULL and
 * *n 0, and returns -1 with err set.
 */
int cat_collect(cat_db *db, sqlite3_stmt *st, cat_row_fn load, cat_obj_free_fn free_fn, void ***out, int *n,
                ros_error *err);
/* Steps st once and finalizes it: the object of its first row, or NULL with
 * err untouched when there is none (NULL with err set on failure). */
void *cat_fetch_one(cat_db *db, sqlite3_stmt *st, cat_row_fn load, ros_error *err);

/*
 * Every write function runs between cat_op_begin and cat_op_end.  Outside
 * a transaction the operation is its own BEGIN IMMEDIATE ... COMMIT (taking
 * the write lock up front, so a read-then-write never fails on a lock
 * upgrade); inside one it is a SAVEPOINT, so a failure undoes only this
 * operation.  cat_op_end commits (rc >= 0) or rolls back (rc < 0) and
 * returns rc, or -1 when the commit itself fails.
 */
int cat_op_begin(cat_db *db, bool *savepoint, ros_error *err);
int cat_op_end(cat_db *db, bool savepoint, int rc, ros_error *err);

/* ------------------------------------------------------------------ */
/* Options stored in a child table (options.c).  table is one of
 * rosql_table_options, rosql_function_options, rosql_service_options. */

int cat_options_load(cat_db *db, const char *table, int64_t owner, cat_options *o, ros_error *err);
/* Replaces the owner's stored options with o (order kept). */
int cat_options_store(cat_db *db, const char *table, int64_t owner, const cat_options *o, ros_error *err);

/* ------------------------------------------------------------------ */
/* Schema and migrations (schema.c) */

/* One step of the schema history: the statements that take a catalog from
 * version to_version - 1 to to_version, run in one transaction. */
typedef struct cat_migration {
    int to_version;
    const char *sql;
} cat_migration;

/* rosql's own history: cat_migrations[i] reaches version i + 1. */
extern const cat_migration cat_migrations[CAT_SCHEMA_VERSION];

/*
 * Checks that the file behind sq is a rosql catalog (or an empty file) of a
 * version no newer than nsteps, without taking the write lock.  Sets
 * *version.  Errors name path: ROS_ERR_IO when SQLite cannot read it (not
 * a database), ROS_ERR_INVALID_PARAMETER when it is not a rosql catalog or
 * is newer.
 */
int cat_schema_check(sqlite3 *sq, const char *path, int nsteps, int *version, ros_error *err);

/*
 * Brings the file to version nsteps by running steps[v .. nsteps-1], each
 * in its own BEGIN IMMEDIATE transaction that re-reads the version under the
 * write lock, so processes opening the same new file at once migrate it once.
 * A failing step is rolled back and leaves the file at the version before
 * it.  Returns 0 or -1 with err set.
 */
int cat_schema_migrate(sqlite3 *sq, const char *path, const cat_migration *steps, int nsteps,
                       ros_error *err);

#endif /* CAT_CATALOG_INT_H */
