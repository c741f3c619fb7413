/*
 * functions.c
 *    User functions: C functions in a shared library and functions served by
 *    a SERVICE (rosql_functions, rosql_function_args, options).
 *
 * A function naming a service stores the service's id, which is the
 * dependency cat_service_drop checks.  CREATE OR REPLACE keeps the
 * function's id, as PostgreSQL keeps its oid.
 */
#include "catalog/catalog_int.h"

#include <stdlib.h>
#include <string.h>

#define FUNC_SELECT                                                                            \
    "SELECT f.id, f.name, f.language, f.library, f.symbol, s.name, f.method, f.ret_type,"      \
    "       f.volatility, f.is_strict"                                                         \
    "  FROM rosql_functions f LEFT JOIN rosql_services s ON s.id = f.service_id"

static int func_write(cat_db *db, cat_function *f, bool replace, ros_error *err);
static cat_function *func_load(cat_db *db, sqlite3_stmt *row, ros_error *err);

/* ------------------------------------------------------------------ */
/* Create and alter */

int cat_function_create(cat_db *db, cat_function *f, bool replace, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    return cat_op_end(db, sp, func_write(db, f, replace, err), err);
}

/* The body of cat_function_create, inside its transaction. */
static int func_write(cat_db *db, cat_function *f, bool replace, ros_error *err)
{
    sqlite3_stmt *st;
    int64_t id = 0, service_id = 0;
    bool exists, found;

    if (cat_prepare(db, "SELECT id FROM rosql_functions WHERE name = ?", &st, err) < 0)
        return -1;
    cat_bind_text(st, 1, f->name);
    if (cat_step_int(db, st, &id, &exists, err) < 0)
        return -1;
    if (exists && !replace)
        return ros_error_set(err, ROS_ERR_DUPLICATE_FUNCTION, "function \"%s\" already exists", f->name);

    if (f->service) {
        if (cat_prepare(db, "SELECT id FROM rosql_services WHERE name = ?", &st, err) < 0)
            return -1;
        cat_bind_text(st, 1, f->service);
        if (cat_step_int(db, st, &service_id, &found, err) < 0)
            return -1;
        if (!found)
            return ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "service \"%s\" does not exist", f->service);
    }

    const char *sql = exists ? "UPDATE rosql_functions SET language = ?, library = ?, symbol = ?, service_id = ?,"
                               " method = ?, ret_type = ?, volatility = ?, is_strict = ?"
                               " WHERE id = ?9 RETURNING id"
                             : "INSERT INTO rosql_functions (language, library, symbol, service_id, method,"
                               " ret_type, volatility, is_strict, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?9)"
                               " RETURNING id";
    if (cat_prepare(db, sql, &st, err) < 0)
        return -1;
    char vol[2] = {f->volatility ? f->volatility : 'v', '\0'};
    cat_bind_text(st, 1, f->language ? f->language : "c");
    cat_bind_text(st, 2, f->library);
    cat_bind_text(st, 3, f->symbol);
    if (service_id)
        sqlite3_bind_int64(st, 4, service_id);
    else
        sqlite3_bind_null(st, 4);
    cat_bind_text(st, 5, f->method);
    sqlite3_bind_int(st, 6, (int)f->ret_type);
    cat_bind_text(st, 7, vol);
    sqlite3_bind_int(st, 8, f->strict);
    if (exists)
        sqlite3_bind_int64(st, 9, id);
    else
        cat_bind_text(st, 9, f->name);
    if (cat_step_int(db, st, &id, NULL, err) < 0)
        return -1;

    if (cat_prepare(db, "DELETE FROM rosql_function_args WHERE function_id = ?", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (cat_step_done(db, st, err) < 0)
        return -1;
    if (f->nargs > 0) {
        if (cat_prepare(db, "INSERT INTO rosql_function_args (function_id, position, type) VALUES (?, ?, ?)", &st,
                        err) < 0)
            return -1;
        for (int i = 0; i < f->nargs; i++) {
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int(st, 2, i);
            sqlite3_bind_int(st, 3, (int)f->arg_types[i]);
            if (sqlite3_step(st) != SQLITE_DONE) {
                cat_sqlerr(db, err);
                sqlite3_finalize(st);
                return -1;
            }
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
    }
    if (cat_options_store(db, "rosql_function_options", id, &f->options, err) < 0)
        return -1;
    f->id = id;
    return 0;
}

int cat_function_set_options(cat_db *db, const char *name, const cat_options *opts, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    int64_t id;
    bool found;
    if (cat_prepare(db, "SELECT id FROM rosql_functions WHERE name = ?", &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, name);
    if (cat_step_int(db, st, &id, &found, err) < 0)
        goto done;
    if (!found) {
        ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "function \"%s\" does not exist", name);
        goto done;
    }
    rc = cat_options_store(db, "rosql_function_options", id, opts, err);
done:
    return cat_op_end(db, sp, rc, err);
}

/* ------------------------------------------------------------------ */
/* Read */

/* Builds a function from a FUNC_SELECT row, loading its arguments and
 * options.  NULL with err set on failure. */
static cat_function *func_load(cat_db *db, sqlite3_stmt *row, ros_error *err)
{
    bool oom = false;
    cat_function *f = calloc(1, sizeof *f);
    if (!f) {
        ros_error_oom(err);
        return NULL;
    }
    f->id = sqlite3_column_int64(row, 0);
    f->name = cat_col_dup(row, 1, &oom);
    f->language = cat_col_dup(row, 2, &oom);
    f->library = cat_col_dup(row, 3, &oom);
    f->symbol = cat_col_dup(row, 4, &oom);
    f->service = cat_col_dup(row, 5, &oom);
    f->method = cat_col_dup(row, 6, &oom);
    f->ret_type = (ros_type)sqlite3_column_int(row, 7);
    const char *vol = (const char *)sqlite3_column_text(row, 8);
    f->volatility = vol && vol[0] ? vol[0] : 'v';
    f->strict = sqlite3_column_int(row, 9) != 0;
    if (oom)
        goto oom;

    sqlite3_stmt *st;
    if (cat_prepare(db, "SELECT type FROM rosql_function_args WHERE function_id = ? ORDER BY position", &st,
                    err) < 0)
        goto fail;
    sqlite3_bind_int64(st, 1, f->id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ros_type *a = realloc(f->arg_types, (size_t)(f->nargs + 1) * sizeof *a);
        if (!a) {
            sqlite3_finalize(st);
            goto oom;
        }
        f->arg_types = a;
        f->arg_types[f->nargs++] = (ros_type)sqlite3_column_int(st, 0);
    }
    if (rc != SQLITE_DONE) {
        cat_sqlerr(db, err);
        sqlite3_finalize(st);
        goto fail;
    }
    sqlite3_finalize(st);
    if (cat_options_load(db, "rosql_function_options", f->id, &f->options, err) < 0)
        goto fail;
    return f;

oom:
    ros_error_oom(err);
fail:
    cat_function_free(f);
    return NULL;
}

/* cat_collect / cat_fetch_one adapters */
static void *func_row(cat_db *db, sqlite3_stmt *st, ros_error *err)
{
    return func_load(db, st, err);
}

static void cat_function_free_any(void *f)
{
    cat_function_free(f);
}

cat_function *cat_function_get(cat_db *db, const char *name, ros_error *err)
{
    sqlite3_stmt *st;
    if (cat_prepare(db, FUNC_SELECT " WHERE f.name = ?", &st, err) < 0)
        return NULL;
    cat_bind_text(st, 1, name);
    return cat_fetch_one(db, st, func_row, err);
}

int cat_function_list(cat_db *db, cat_function ***out, int *n, ros_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (cat_prepare(db, FUNC_SELECT " ORDER BY f.name", &st, err) < 0)
        return -1;
    return cat_collect(db, st, func_row, cat_function_free_any, (void ***)out, n, err);
}

void cat_function_free(cat_function *f)
{
    if (!f)
        return;
    free(f->name);
    free(f->language);
    free(f->library);
    free(f->symbol);
    free(f->service);
    free(f->method);
    free(f->arg_types);
    cat_options_free(&f->options);
    free(f);
}

/* ------------------------------------------------------------------ */
/* Drop */

/*
 * Nothing in the catalog depends on a function (a service's
 * owner_function is a note of where it came from, not a dependency: the
 * engine stops and drops a decoupled service itself), so cascade changes
 * nothing here.
 */
int cat_function_drop(cat_db *db, const char *name, bool cascade, ros_error *err)
{
    bool sp;
    if (cat_op_begin(db, &sp, err) < 0)
        return -1;
    int rc = -1;
    sqlite3_stmt *st;
    if (cat_prepare(db, "DELETE FROM rosql_functions WHERE name = ?", &st, err) < 0)
        goto done;
    cat_bind_text(st, 1, name);
    if (cat_step_done(db, st, err) < 0)
        goto done;
    rc = sqlite3_changes(cat_sqlite(db)) > 0 ? 0 : 1;
done:
    return cat_op_end(db, sp, rc, err);
}
