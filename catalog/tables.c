/*
 * tables.c
 *    Tables: their definitions (rosql_tables, rosql_columns, options) and,
 *    for the sqlite connector, the SQLite table that holds their rows.
 *
 * A sqlite-connector table's rows live in "data_<id>", columns c0..cN-1.
 * Ids are never reused (AUTOINCREMENT), so neither are data table names.
 * The data table carries SQLite type names only, no NOT NULL: the engine
 * checks constraints and reports them in PostgreSQL's words.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_COLS "id, name, connector, data_table"

static const char *table_sqlite_type(ros_type t);
static int table_create_data(cat_db *db, cat_table *t, ros_error *err);
static cat_table *table_load(cat_db *db, sqlite3_stmt *st, ros_error *err);
static int table_dependents(cat_db *db, const char *name, bool cascade, ros_error *err);

/* SQLite type name of a column of type t, or NULL for no valid column type. */
static const char *table_sqlite_type(ros_type t)
{
    switch (t) {
    case ROS_TYPE_BOOL:
    case ROS_TYPE_INT16:
    case ROS_TYPE_INT32:
    case ROS_TYPE_INT64:
        return "INTEGER";
    case ROS_TYPE_FLOAT32:
    case ROS_TYPE_FLOAT64:
        return "REAL";
    case ROS_TYPE_TEXT:
        return "TEXT";
    case ROS_TYPE_BYTEA:
    case ROS_TYPE_FLOAT32_ARRAY:
        return "BLOB";
    case ROS_TYPE_NULL:
        break;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Create */

int cat_table_create(cat_db *db, cat_table *t, ros_error *err)
{
    const char *connector = t->connector ? t->connector : "sqlite";
    for (int i = 0; i < t->ncols; i++)
        if (!table_sqlite_type(t->cols[i].type))
            return ros_error_set(err, ROS_ERR_INTERNAL, "column \"%s\" has invalid type %d", t->cols[i].name,
                                 (int)t->cols[i].type);

    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    int64_t id;
    bool found;

    if (cat_prepare(db, "SELECT 1 FROM rosql_tables WHERE name = ?", &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, t->name);
    if (cat_step_int(db, st, &id, &found, err) < 0)
        goto done;
    if (found) {
        ros_error_set(err, ROS_ERR_DUPLICATE_TABLE, "relation \"%s\" already exists", t->name);
        goto done;
    }

    if (cat_prepare(db, "INSERT INTO rosql_tables (name, connector) VALUES (?, ?) RETURNING id", &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, t->name);
    cat_bind_text(st, 2, connector);
    if (cat_step_int(db, st, &id, NULL, err) < 0)
        goto done;

    if (cat_prepare(db,
                    "INSERT INTO rosql_columns (table_id, position, name, type, not_null) VALUES (?, ?, ?, ?, ?)",
                    &st, err) < 0)
        goto done;
    for (int i = 0; i < t->ncols; i++) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, i);
        cat_bind_text(st, 3, t->cols[i].name);
        sqlite3_bind_int(st, 4, (int)t->cols[i].type);
        sqlite3_bind_int(st, 5, t->cols[i].not_null);
        if (sqlite3_step(st) != SQLITE_DONE) {
            cat_sqlerr(db, err);
            sqlite3_finalize(st);
            goto done;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);

    if (cat_options_store(db, "rosql_table_options", id, &t->options, err) < 0)
        goto done;

    /* t is only written once everything has succeeded. */
    int64_t old_id = t->id;
    t->id = id;
    if (strcmp(connector, "sqlite") == 0 && table_create_data(db, t, err) < 0) {
        t->id = old_id;
        goto done;
    }
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}

/* Creates data_<id> for t and records it; sets t->data_table. */
static int table_create_data(cat_db *db, cat_table *t, ros_error *err)
{
    char name[32];
    snprintf(name, sizeof name, "data_%lld", (long long)t->id);
    ros_strbuf sql = ROS_STRBUF_INIT;
    ros_strbuf_appendf(&sql, "CREATE TABLE %s (", name);
    for (int i = 0; i < t->ncols; i++)
        ros_strbuf_appendf(&sql, "%sc%d %s", i ? ", " : "", i, table_sqlite_type(t->cols[i].type));
    /* SQLite wants at least one column; a column-less table gets a
     * placeholder that the connector never names. */
    if (t->ncols == 0)
        ros_strbuf_append(&sql, "_placeholder INTEGER");
    ros_strbuf_append(&sql, ")");
    char *dt = strdup(name);
    if (sql.oom || !dt) {
        ros_strbuf_free(&sql);
        free(dt);
        return ros_error_oom(err);
    }
    int rc = cat_exec(db, ros_strbuf_cstr(&sql), err);
    ros_strbuf_free(&sql);

    sqlite3_stmt *st;
    if (rc == 0 && (rc = cat_prepare(db, "UPDATE rosql_tables SET data_table = ? WHERE id = ?", &st, err)) == 0) {
        cat_bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, t->id);
        rc = cat_step_done(db, st, err);
    }
    if (rc < 0) {
        free(dt);
        return -1;
    }
    free(t->data_table);
    t->data_table = dt;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Read */

/* Builds a table from a row of "SELECT " TABLE_COLS, loading its columns
 * and options.  NULL with err set on failure. */
static cat_table *table_load(cat_db *db, sqlite3_stmt *row, ros_error *err)
{
    bool oom = false;
    cat_table *t = calloc(1, sizeof *t);
    if (!t) {
        ros_error_oom(err);
        return NULL;
    }
    t->id = sqlite3_column_int64(row, 0);
    t->name = cat_col_dup(row, 1, &oom);
    t->connector = cat_col_dup(row, 2, &oom);
    t->data_table = cat_col_dup(row, 3, &oom);
    if (oom)
        goto oom;

    sqlite3_stmt *st;
    if (cat_prepare(db, "SELECT name, type, not_null FROM rosql_columns WHERE table_id = ? ORDER BY position",
                    &st, err) < 0)
        goto fail;
    sqlite3_bind_int64(st, 1, t->id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        cat_column *cols = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof *cols);
        if (!cols) {
            sqlite3_finalize(st);
            goto oom;
        }
        t->cols = cols;
        cat_column *c = &t->cols[t->ncols++];
        c->name = cat_col_dup(st, 0, &oom);
        c->type = (ros_type)sqlite3_column_int(st, 1);
        c->not_null = sqlite3_column_int(st, 2) != 0;
        if (oom) {
            sqlite3_finalize(st);
            goto oom;
        }
    }
    if (rc != SQLITE_DONE) {
        cat_sqlerr(db, err);
        sqlite3_finalize(st);
        goto fail;
    }
    sqlite3_finalize(st);
    if (cat_options_load(db, "rosql_table_options", t->id, &t->options, err) < 0)
        goto fail;
    return t;

oom:
    ros_error_oom(err);
fail:
    cat_table_free(t);
    return NULL;
}

/* cat_collect / cat_fetch_one adapters */
static void *table_row(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    return table_load(db, st, err);
}

static void cat_table_free_any(void *t)
{
    cat_table_free(t);
}

cat_table *cat_table_get(cat_db *db, const char *name, ros_error *err)
{
    sqlite3_stmt *st;
    if (cat_prepare(db, "SELECT " TABLE_COLS " FROM rosql_tables WHERE name = ?", &st, err) < 0)
        return NULL;
    cat_bind_text(st, 1, name);
    return cat_fetch_one(db, st, table_row, err);
}

int cat_table_list(cat_db *db, cat_table ***out, int *n, ros_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (cat_prepare(db, "SELECT " TABLE_COLS " FROM rosql_tables ORDER BY name", &st, err) < 0)
        return -1;
    return cat_collect(db, st, table_row, cat_table_free_any, (void ***)out, n, err);
}

void cat_table_free(cat_table *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->connector);
    cat_options_free(&t->options);
    for (int i = 0; i < t->ncols; i++)
        free(t->cols[i].name);
    free(t->cols);
    free(t->data_table);
    free(t);
}

/* ------------------------------------------------------------------ */
/* Drop */

/*
 * Jobs that have not finished and write table name depend on it.  Without
 * cascade they make the drop fail; with cascade they are deleted (with
 * their checkpoints).
 */
static int table_dependents(cat_db *db, const char *name, bool cascade, ros_error *err)
{
    sqlite3_stmt *st;
    if (cascade) {
        if (cat_prepare(db, "DELETE FROM rosql_jobs WHERE sink_table = ? AND state IN ('created', 'running')", &st,
                        err) < 0)
            return -1;
        cat_bind_text(st, 1, name);
        return cat_step_done(db, st, err);
    }
    if (cat_prepare(db,
                    "SELECT id FROM rosql_jobs WHERE sink_table = ? AND state IN ('created', 'running') ORDER BY id",
                    &st, err) < 0)
        return -1;
    cat_bind_text(st, 1, name);
    ros_strbuf detail = ROS_STRBUF_INIT;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ros_strbuf_appendf(&detail, "%sjob %lld depends on table %s", detail.len ? "\n" : "",
                           (long long)sqlite3_column_int64(st, 0), name);
    if (rc != SQLITE_DONE) {
        cat_sqlerr(db, err);
        sqlite3_finalize(st);
        ros_strbuf_free(&detail);
        return -1;
    }
    sqlite3_finalize(st);
    if (detail.len > 0) {
        ros_error_set(err, ROS_ERR_DEPENDENT_OBJECTS, "cannot drop table %s because other objects depend on it",
                      name);
        ros_error_detail(err, "%s", detail.data);
        ros_error_hint(err, "Use DROP ... CASCADE to drop the dependent objects too.");
        ros_strbuf_free(&detail);
        return -1;
    }
    ros_strbuf_free(&detail);
    return 0;
}

int cat_table_drop(cat_db *db, const char *name, bool cascade, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db, "SELECT id, data_table FROM rosql_tables WHERE name = ?", &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, name);
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        sqlite3_finalize(st);
        rc = 1;
        goto done;
    }
    if (step != SQLITE_ROW) {
        cat_sqlerr(db, err);
        sqlite3_finalize(st);
        goto done;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    char data_table[64] = "";
    const char *dt = (const char *)sqlite3_column_text(st, 1);
    if (dt)
        snprintf(data_table, sizeof data_table, "%s", dt);
    sqlite3_finalize(st);

    if (table_dependents(db, name, cascade, err) < 0)
        goto done;
    if (data_table[0]) {
        char sql[96];
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"%s\"", data_table);
        if (cat_exec(db, sql, err) < 0)
            goto done;
    }
    if (cat_prepare(db, "DELETE FROM rosql_tables WHERE id = ?", &st, err) < 0)
        goto done;
    sqlite3_bind_int64(st, 1, id);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    rc = 0;
done:
    return cat_op_end(db, sp, rc, err);
}
