/*
 * schema.c
 *    The catalog's schema history and the framework that migrates a file
 *    forward to the current version.
 *
 * The version lives in PRAGMA user_version: 0 is an empty file, N is the
 * schema after cat_migrations[N-1].  To change the schema, append a step
 * (its to_version one higher), raise CAT_SCHEMA_VERSION in catalog.h and
 * describe it in README.md; never edit a step that has shipped, since files
 * in the field have already run it.
 *
 * A rosql catalog is recognised by its rosql_meta row application=rosql, so
 * an unrelated SQLite file is refused rather than written into.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <string.h>

static int schema_read(sqlite3 *sq, const char *path, int *version, bool *foreign, bool *is_rosql,
                       ros_error *err);
static int schema_verdict(const char *path, int version, int nsteps, bool foreign, bool is_rosql,
                          ros_error *err);
static int schema_sqlerr(sqlite3 *sq, const char *path, ros_error *err);

/* ------------------------------------------------------------------ */
/* History */

/* Version 1: objects, their options, live service and job state. */
static const char schema_v1[] =
    "CREATE TABLE rosql_meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL);"
    "INSERT INTO rosql_meta (key, value) VALUES ('application', 'rosql');"

    "CREATE TABLE rosql_tables ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  connector TEXT NOT NULL,"
    "  data_table TEXT);"
    "CREATE TABLE rosql_columns ("
    "  table_id INTEGER NOT NULL REFERENCES rosql_tables (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  type INTEGER NOT NULL,"
    "  not_null INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (table_id, position));"
    "CREATE TABLE rosql_table_options ("
    "  owner_id INTEGER NOT NULL REFERENCES rosql_tables (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (owner_id, position));"

    "CREATE TABLE rosql_services ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  handler TEXT NOT NULL,"
    "  desired_instances INTEGER NOT NULL DEFAULT 1,"
    "  state TEXT NOT NULL,"
    "  last_error TEXT,"
    "  owner_function TEXT);"
    "CREATE TABLE rosql_service_options ("
    "  owner_id INTEGER NOT NULL REFERENCES rosql_services (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (owner_id, position));"
    "CREATE TABLE rosql_instances ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  service_id INTEGER NOT NULL REFERENCES rosql_services (id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  pid INTEGER NOT NULL DEFAULT 0,"
    "  endpoint TEXT,"
    "  state TEXT NOT NULL,"
    "  requests INTEGER NOT NULL DEFAULT 0,"
    "  rows_served INTEGER NOT NULL DEFAULT 0,"
    "  inflight INTEGER NOT NULL DEFAULT 0,"
    "  queue_depth INTEGER NOT NULL DEFAULT 0,"
    "  restarts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  updated_at REAL NOT NULL,"
    "  UNIQUE (service_id, idx));"

    /* service_id has no ON DELETE action: a service cannot go while a
     * function still names it (cat_service_drop drops them first). */
    "CREATE TABLE rosql_functions ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL UNIQUE,"
    "  language TEXT NOT NULL,"
    "  library TEXT,"
    "  symbol TEXT,"
    "  service_id INTEGER REFERENCES rosql_services (id),"
    "  method TEXT,"
    "  ret_type INTEGER NOT NULL,"
    "  volatility TEXT NOT NULL CHECK (volatility IN ('v', 's', 'i')),"
    "  is_strict INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX rosql_functions_service ON rosql_functions (service_id);"
    "CREATE TABLE rosql_function_args ("
    "  function_id INTEGER NOT NULL REFERENCES rosql_functions (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  type INTEGER NOT NULL,"
    "  PRIMARY KEY (function_id, position));"
    "CREATE TABLE rosql_function_options ("
    "  owner_id INTEGER NOT NULL REFERENCES rosql_functions (id) ON DELETE CASCADE,"
    "  position INTEGER NOT NULL,"
    "  key TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (owner_id, position));"

    "CREATE TABLE rosql_jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  sql TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  pid INTEGER NOT NULL DEFAULT 0,"
    "  rows_read INTEGER NOT NULL DEFAULT 0,"
    "  rows_written INTEGER NOT NULL DEFAULT 0,"
    "  last_checkpoint INTEGER NOT NULL DEFAULT 0,"
    "  restarts INTEGER NOT NULL DEFAULT 0,"
    "  recomputed INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  sink_table TEXT,"
    "  created_at REAL NOT NULL,"
    "  updated_at REAL NOT NULL);"
    "CREATE INDEX rosql_jobs_sink ON rosql_jobs (sink_table);"
    "CREATE TABLE rosql_checkpoints ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id INTEGER NOT NULL REFERENCES rosql_jobs (id) ON DELETE CASCADE,"
    "  created_at REAL NOT NULL,"
    "  duration_ms REAL NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  inflight INTEGER NOT NULL DEFAULT 0,"
    "  state BLOB);"
    "CREATE INDEX rosql_checkpoints_job ON rosql_checkpoints (job_id, id);";

/* Version 2: the scaling and supervision log of services (SHOW SERVICE EVENTS). */
static const char schema_v2[] =
    "CREATE TABLE rosql_service_events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  service TEXT NOT NULL,"
    "  at REAL NOT NULL,"
    "  event TEXT NOT NULL,"
    "  instances INTEGER,"
    "  reason TEXT);"
    "CREATE INDEX rosql_service_events_service ON rosql_service_events (service, id);";

/* Version 3: what a job runs with (settings such as checkpoint_interval,
 * decoupling and batch_size, as "k=v,k=v"). */
static const char schema_v3[] = "ALTER TABLE rosql_jobs ADD COLUMN options TEXT;";

const cat_migration cat_migrations[CAT_SCHEMA_VERSION] = {
    {1, schema_v1},
    {2, schema_v2},
    {3, schema_v3},
};

/* ------------------------------------------------------------------ */
/* Checking and migrating */

int cat_schema_check(sqlite3 *sq, const char *path, int nsteps, int *version, ros_error *err)
{
    bool foreign, is_rosql;
    if (schema_read(sq, path, version, &foreign, &is_rosql, err) < 0)
        return -1;
    return schema_verdict(path, *version, nsteps, foreign, is_rosql, err);
}

int cat_schema_migrate(sqlite3 *sq, const char *path, const cat_migration *steps, int nsteps,
                       ros_error *err)
{
    for (;;) {
        if (sqlite3_exec(sq, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            return schema_sqlerr(sq, path, err);
        int v;
        bool foreign, is_rosql;
        if (schema_read(sq, path, &v, &foreign, &is_rosql, err) < 0 ||
            schema_verdict(path, v, nsteps, foreign, is_rosql, err) < 0)
            goto fail;
        if (v == nsteps)
            break;
        if (steps[v].to_version != v + 1) {
            ros_error_set(err, ROS_ERR_INTERNAL, "catalog migration step %d reaches version %d, not %d",
                          v, steps[v].to_version, v + 1);
            goto fail;
        }
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(sq, steps[v].sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(sq, pragma, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(sq, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            ros_error_set(err, ROS_ERR_IO, "could not migrate catalog \"%s\" to version %d: %s", path, v + 1,
                          sqlite3_errmsg(sq));
            goto fail;
        }
    }
    if (sqlite3_exec(sq, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        schema_sqlerr(sq, path, err);
        goto fail;
    }
    return 0;

fail:
    if (!sqlite3_get_autocommit(sq))
        sqlite3_exec(sq, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/*
 * Reads the version and what kind of file this is: foreign when it holds
 * tables that are not a rosql catalog's, is_rosql when rosql_meta says so.
 * This is the first read of the file, so it is where SQLite notices a file
 * that is not a database at all.
 */
static int schema_read(sqlite3 *sq, const char *path, int *version, bool *foreign, bool *is_rosql,
                       ros_error *err)
{
    sqlite3_stmt *st = NULL;
    *foreign = *is_rosql = false;
    if (sqlite3_prepare_v2(sq, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto fail;
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);

    bool has_meta = false;
    if (sqlite3_prepare_v2(sq,
                           "SELECT count(*) FILTER (WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'),"
                           "       count(*) FILTER (WHERE name = 'rosql_meta')"
                           "  FROM sqlite_schema WHERE type = 'table'",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto fail;
    *foreign = sqlite3_column_int(st, 0) > 0;
    has_meta = sqlite3_column_int(st, 1) > 0;
    sqlite3_finalize(st);
    st = NULL;

    if (has_meta) {
        if (sqlite3_prepare_v2(sq, "SELECT value FROM rosql_meta WHERE key = 'application'", -1, &st, NULL) !=
            SQLITE_OK)
            goto fail;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *app = (const char *)sqlite3_column_text(st, 0);
            *is_rosql = app && strcmp(app, "rosql") == 0;
        } else if (rc != SQLITE_DONE) {
            goto fail;
        }
        sqlite3_finalize(st);
    }
    if (*is_rosql)
        *foreign = false;
    return 0;

fail:
    schema_sqlerr(sq, path, err);
    sqlite3_finalize(st);
    return -1;
}

/* Decides, from what schema_read found, whether rosql may use the file. */
static int schema_verdict(const char *path, int version, int nsteps, bool foreign, bool is_rosql,
                          ros_error *err)
{
    if (is_rosql && version > nsteps) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                      "database \"%s\" has catalog version %d, newer than this rosql supports (%d)", path,
                      version, nsteps);
        ros_error_hint(err, "Open it with a newer rosql.");
        return -1;
    }
    if (foreign || (version != 0 && !is_rosql)) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "database \"%s\" is not a rosql catalog", path);
        ros_error_detail(err, "The file is a SQLite database without rosql's catalog tables.");
        return -1;
    }
    return 0;
}

static int schema_sqlerr(sqlite3 *sq, const char *path, ros_error *err)
{
    if ((sqlite3_errcode(sq) & 0xff) == SQLITE_NOMEM)
        return ros_error_oom(err);
    return ros_error_set(err, ROS_ERR_IO, "could not open database \"%s\": %s", path, sqlite3_errmsg(sq));
}
