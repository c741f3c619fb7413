/*
 * ddl.c
 *    CREATE, ALTER and DROP of tables, functions and services.
 *
 * Each statement runs in one catalog transaction: the checks (connector
 * options, loading and checking a C function, option vocabularies) happen
 * before anything is written, and a failure rolls everything back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>

#include "planner/options.h"
#include "service/handler.h"
#include "runtime/connectors/connector.h"
#include "runtime/core/types.h"
#include "runtime/exec/session_int.h"

/* ---------------------------------------------------------------- */
/* Tables */

static int ddl_create_table(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st,
                            const ros_result_sink *sink, ros_error *err)
{
    const char *name = st->u.create_table.name;
    cat_table *existing = cat_table_get(s->db, name, err);
    if (err->set)
        return -1;
    if (existing) {
        cat_table_free(existing);
        if (st->u.create_table.if_not_exists) {
            rt_notice(sink, "relation \"%s\" already exists, skipping", name);
            return rt_result_end(sink, st->u.create_table.as_select ? "SELECT 0" : "CREATE TABLE");
        }
        return ros_error_set(err, ROS_ERR_DUPLICATE_TABLE, "relation \"%s\" already exists", name);
    }
    cat_table t;
    memset(&t, 0, sizeof t);
    t.name = (char *)name;
    t.connector = (char *)"sqlite";
    int rc = -1;
    plan_node *src = NULL;
    cat_table *created = NULL;
    /* options: connector = '...' picks the connector, the rest are its own */
    for (int i = 0; i < st->u.create_table.options.n; i++) {
        const sql_option *o = st->u.create_table.options.items[i];
        if (strcmp(o->key, "connector") == 0)
            t.connector = (char *)(o->value ? o->value : "");
        else if (cat_options_set(&t.options, o->key, o->value ? o->value : "true") < 0) {
            ros_error_oom(err);
            goto done;
        }
    }
    plan_ctx pc;
    rt_plan_ctx_init(s, &pc, arena, sql, err);
    if (st->u.create_table.as_select) {
        src = plan_select(&pc, st->u.create_table.as_select);
        if (!src)
            goto done;
        t.ncols = src->ncols;
        t.cols = ros_arena_alloc(arena, sizeof(cat_column) * (size_t)(src->ncols + 1));
        if (!t.cols) {
            ros_error_oom(err);
            goto done;
        }
        for (int i = 0; i < src->ncols; i++) {
            t.cols[i].name = (char *)src->names[i];
            t.cols[i].type = src->types[i] == ROS_TYPE_NULL ? ROS_TYPE_TEXT : src->types[i];
            for (int j = 0; j < i; j++)
                if (strcmp(t.cols[j].name, t.cols[i].name) == 0) {
                    ros_error_set(err, ROS_ERR_DUPLICATE_COLUMN, "column \"%s\" specified more than once",
                                  t.cols[i].name);
                    goto done;
                }
        }
    } else {
        int n = st->u.create_table.columns.n;
        t.ncols = n;
        t.cols = ros_arena_alloc(arena, sizeof(cat_column) * (size_t)(n + 1));
        if (!t.cols) {
            ros_error_oom(err);
            goto done;
        }
        for (int i = 0; i < n; i++) {
            const sql_column_def *c = st->u.create_table.columns.items[i];
            t.cols[i].name = (char *)c->name;
            t.cols[i].type = c->type.type;
            t.cols[i].not_null = c->not_null;
            for (int j = 0; j < i; j++)
                if (strcmp(t.cols[j].name, c->name) == 0) {
                    plan_error(&pc, c->location, ROS_ERR_DUPLICATE_COLUMN, "column \"%s\" specified more than once",
                               c->name);
                    goto done;
                }
        }
    }
    if (rt_connector_validate(s->db, &t, err) < 0)
        goto done;
    if (src) {
        /* decoupled functions' services are created before the transaction */
        plan_node *rw = rt_rewrite(s, arena, src, err);
        if (!rw || rt_services_prepare(s, rw, err) < 0)
            goto done;
    }
    if (cat_begin(s->db, err) < 0)
        goto done;
    if (cat_table_create(s->db, &t, err) < 0)
        goto done;
    char tag[64] = "CREATE TABLE";
    if (src) {
        created = cat_table_get(s->db, name, err);
        if (!created) {
            if (!err->set)
                ros_error_set(err, ROS_ERR_INTERNAL, "table vanished while being created");
            goto done;
        }
        plan_node *ins = plan_insert_into(&pc, created, src);
        if (!ins)
            goto done;
        created = NULL; /* owned by the plan now */
        int64_t rows = 0;
        int r = rt_run_insert(s, arena, ins, &rows, err);
        plan_free(ins);
        src = NULL;
        if (r < 0)
            goto done;
        snprintf(tag, sizeof tag, "SELECT %lld", (long long)rows);
    }
    if (cat_commit(s->db, err) < 0)
        goto done;
    rc = rt_result_end(sink, tag);
done:
    if (rc < 0)
        cat_rollback(s->db);
    if (src)
        plan_free(src);
    cat_table_free(created);
    cat_options_free(&t.options);
    free(t.data_table); /* set by cat_table_create */
    return rc;
}

/* ---------------------------------------------------------------- */
/* Functions */

static int ddl_create_function(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st,
                               const ros_result_sink *sink, ros_error *err)
{
    const typeof(st->u.create_function) *cf = &st->u.create_function;
    plan_ctx pc;
    rt_plan_ctx_init(s, &pc, arena, sql, err);
    cat_function f;
    memset(&f, 0, sizeof f);
    f.name = (char *)cf->name;
    f.nargs = cf->arg_types.n;
    f.arg_types = ros_arena_alloc(arena, sizeof(ros_type) * (size_t)(f.nargs + 1));
    if (!f.arg_types)
        return ros_error_oom(err);
    if (f.nargs > ROS_UDF_MAX_ARGS)
        return ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "functions cannot have more than %d arguments",
                             ROS_UDF_MAX_ARGS);
    for (int i = 0; i < f.nargs; i++)
        f.arg_types[i] = ((const sql_typename *)cf->arg_types.items[i])->type;
    f.ret_type = cf->ret_type.type;
    f.volatility = cf->volatility ? (char)cf->volatility : 'v';
    f.strict = cf->strict;
    f.method = (char *)cf->method;
    int rc = -1;
    if (plan_check_options(&pc, PLAN_OPTS_FUNCTION, &cf->options, &f.options) < 0)
        goto done;
    if (cf->service) {
        f.language = (char *)"service";
        f.service = (char *)cf->service;
        if (cat_options_get(&f.options, "decoupled")) {
            ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "a function bound to a service cannot also be decoupled");
            ros_error_hint(err, "Use either SERVICE name or WITH (decoupled = true), not both.");
            goto done;
        }
    } else {
        if (!cf->language || strcasecmp(cf->language, "c") != 0) {
            ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "language \"%s\" does not exist",
                          cf->language ? cf->language : "");
            ros_error_hint(err, "rosql functions are written in C (LANGUAGE c) or bound to a service (SERVICE name).");
            goto done;
        }
        if (!cf->library || !cf->symbol) {
            ros_error_set(err, ROS_ERR_SYNTAX, "LANGUAGE c functions need AS 'library.so', 'symbol'");
            goto done;
        }
        f.language = (char *)"c";
        f.library = (char *)cf->library;
        /* record an absolute path: the function is loaded later by other
         * processes (job and service workers) that may run elsewhere */
        if (cf->library[0] != '/') {
            char cwd[4096];
            if (!getcwd(cwd, sizeof cwd)) {
                ros_error_set(err, ROS_ERR_IO, "could not get the current directory: %s", strerror(errno));
                goto done;
            }
            f.library = ros_arena_printf(arena, "%s/%s", cwd, cf->library);
            if (!f.library) {
                ros_error_oom(err);
                goto done;
            }
        }
        f.symbol = (char *)cf->symbol;
        /* load and check the function now, so a mismatch is an error here, not later */
        plan_udf *u = rt_udf_load(f.name, f.library, f.symbol, f.nargs, f.arg_types, f.ret_type, "", err);
        if (!u)
            goto done;
        rt_udf_unload(u);
    }
    if (cat_begin(s->db, err) < 0 || cat_function_create(s->db, &f, cf->or_replace, err) < 0 ||
        cat_commit(s->db, err) < 0)
        goto done;
    /* a replaced function must be reloaded on its next call, and its
     * service (if it was decoupled) restarted with the new code */
    rt_udf_cache_clear(&s->udfs);
    if (cf->or_replace && rt_service_drop_owned(s, f.name, err) < 0)
        goto done;
    rc = rt_result_end(sink, "CREATE FUNCTION");
done:
    if (rc < 0)
        cat_rollback(s->db);
    cat_options_free(&f.options);
    return rc;
}

static int ddl_alter_function(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st,
                              const ros_result_sink *sink, ros_error *err)
{
    cat_function *f = cat_function_get(s->db, st->u.alter_function.name, err);
    if (!f) {
        if (!err->set)
            ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "function %s does not exist", st->u.alter_function.name);
        return -1;
    }
    plan_ctx pc;
    rt_plan_ctx_init(s, &pc, arena, sql, err);
    int rc = -1;
    if (plan_check_options(&pc, PLAN_OPTS_FUNCTION, &st->u.alter_function.options, &f->options) < 0)
        goto done;
    if (f->service && cat_options_get(&f->options, "decoupled")) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "function %s is bound to service \"%s\" and cannot be decoupled",
                      f->name, f->service);
        goto done;
    }
    const char *dec = cat_options_get(&f->options, "decoupled");
    if (dec && strcmp(dec, "true") == 0 && !f->library) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "function %s cannot be decoupled", f->name);
        ros_error_detail(err, "Only LANGUAGE c functions can be decoupled.");
        goto done;
    }
    if (cat_begin(s->db, err) < 0 || cat_function_set_options(s->db, f->name, &f->options, err) < 0 ||
        cat_commit(s->db, err) < 0)
        goto done;
    /* the function's service follows its annotation: gone when it is no
     * longer decoupled, resized or reconfigured otherwise */
    if (!(dec && strcmp(dec, "true") == 0) ? rt_service_drop_owned(s, f->name, err) < 0
                                            : rt_service_update_owned(s, f, err) < 0)
        goto done;
    rt_udf_cache_clear(&s->udfs);
    rc = rt_result_end(sink, "ALTER FUNCTION");
done:
    if (rc < 0)
        cat_rollback(s->db);
    cat_function_free(f);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Services */

static const char *const builtin_handlers[] = {"echo", "delay", "embed", "cosine", NULL};

/* Checks handler and returns it with a library path made absolute (the
 * instances run in another directory), allocated in arena. */
static const char *check_handler(ros_arena *arena, const char *handler, ros_error *err)
{
    if (strncmp(handler, "builtin:", 8) == 0) {
        for (int i = 0; builtin_handlers[i]; i++)
            if (strcmp(handler + 8, builtin_handlers[i]) == 0)
                return handler;
        ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "built-in handler \"%s\" does not exist", handler + 8);
        ros_error_hint(err, "Built-in handlers are builtin:echo, builtin:delay, builtin:embed and builtin:cosine.");
        return NULL;
    }
    const char *colon = strrchr(handler, ':');
    if (!colon || colon == handler || !colon[1]) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid handler \"%s\"", handler);
        ros_error_hint(err, "Use 'builtin:NAME' or 'path/to/lib.so:symbol'.");
        return NULL;
    }
    char path[4096], abs[PATH_MAX];
    snprintf(path, sizeof path, "%.*s", (int)(colon - handler), handler);
    if (!realpath(path, abs)) {
        ros_error_set(err, ROS_ERR_UNDEFINED_FILE, "could not access file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    size_t n = strlen(abs) + strlen(colon) + 1;
    char *out = ros_arena_alloc(arena, n);
    if (!out) {
        ros_error_oom(err);
        return NULL;
    }
    snprintf(out, n, "%s%s", abs, colon);
    return out;
}

static int ddl_create_service(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st,
                              const ros_result_sink *sink, ros_error *err)
{
    const char *name = st->u.create_service.name;
    cat_service *existing = cat_service_get(s->db, name, err);
    if (err->set)
        return -1;
    if (existing) {
        cat_service_free(existing);
        if (st->u.create_service.if_not_exists) {
            rt_notice(sink, "service \"%s\" already exists, skipping", name);
            return rt_result_end(sink, "CREATE SERVICE");
        }
        return ros_error_set(err, ROS_ERR_DUPLICATE_OBJECT, "service \"%s\" already exists", name);
    }
    const char *handler = check_handler(arena, st->u.create_service.handler, err);
    if (!handler)
        return -1;
    plan_ctx pc;
    rt_plan_ctx_init(s, &pc, arena, sql, err);
    cat_service sv;
    memset(&sv, 0, sizeof sv);
    sv.name = (char *)name;
    sv.handler = (char *)handler;
    int rc = -1;
    if (plan_check_options(&pc, PLAN_OPTS_SERVICE, &st->u.create_service.options, &sv.options) < 0)
        goto done;
    if (rt_service_create(s, &sv, err) < 0)
        goto done;
    rc = rt_result_end(sink, "CREATE SERVICE");
done:
    if (rc < 0)
        cat_rollback(s->db);
    cat_options_free(&sv.options);
    return rc;
}

static int ddl_alter_service(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st,
                             const ros_result_sink *sink, ros_error *err)
{
    cat_service *sv = cat_service_get(s->db, st->u.alter_service.name, err);
    if (!sv) {
        if (!err->set)
            ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "service \"%s\" does not exist", st->u.alter_service.name);
        return -1;
    }
    plan_ctx pc;
    rt_plan_ctx_init(s, &pc, arena, sql, err);
    int rc = -1;
    if (plan_check_options(&pc, PLAN_OPTS_SERVICE, &st->u.alter_service.options, &sv->options) < 0)
        goto done;
    if (rt_service_apply(s, sv, err) < 0)
        goto done;
    rc = rt_result_end(sink, "ALTER SERVICE");
done:
    if (rc < 0)
        cat_rollback(s->db);
    cat_service_free(sv);
    return rc;
}

/* ---------------------------------------------------------------- */
/* DROP */

static int ddl_drop(ros_session *s, const sql_stmt *st, const ros_result_sink *sink, ros_error *err)
{
    static const char *const kinds[] = {"table", "function", "service"};
    static const char *const tags[] = {"DROP TABLE", "DROP FUNCTION", "DROP SERVICE"};
    sql_object_kind k = st->u.drop.object;
    if (cat_begin(s->db, err) < 0)
        return -1;
    for (int i = 0; i < st->u.drop.names.n; i++) {
        const char *name = st->u.drop.names.items[i];
        int r = k == SQL_OBJ_TABLE      ? cat_table_drop(s->db, name, st->u.drop.cascade, err)
                : k == SQL_OBJ_FUNCTION ? cat_function_drop(s->db, name, st->u.drop.cascade, err)
                                        : cat_service_drop(s->db, name, st->u.drop.cascade, err);
        if (r < 0)
            goto fail;
        if (r == 1) {
            if (!st->u.drop.if_exists) {
                if (k == SQL_OBJ_FUNCTION)
                    ros_error_set(err, ROS_ERR_UNDEFINED_FUNCTION, "function %s does not exist", name);
                else
                    ros_error_set(err, k == SQL_OBJ_TABLE ? ROS_ERR_UNDEFINED_TABLE : ROS_ERR_UNDEFINED_OBJECT,
                                  "%s \"%s\" does not exist", kinds[k], name);
                goto fail;
            }
            if (k == SQL_OBJ_FUNCTION)
                rt_notice(sink, "function %s() does not exist, skipping", name);
            else
                rt_notice(sink, "%s \"%s\" does not exist, skipping", kinds[k], name);
        }
    }
    if (cat_commit(s->db, err) < 0)
        goto fail;
    if (k == SQL_OBJ_FUNCTION || k == SQL_OBJ_SERVICE)
        rt_udf_cache_clear(&s->udfs);
    /* a decoupled function's service goes with it */
    for (int i = 0; k == SQL_OBJ_FUNCTION && i < st->u.drop.names.n; i++)
        if (rt_service_drop_owned(s, st->u.drop.names.items[i], err) < 0)
            return -1;
    /* DROP SERVICE drains and stops the instances before it returns */
    if (k == SQL_OBJ_SERVICE && rt_services_changed(s, &st->u.drop.names, err) < 0)
        return -1;
    return rt_result_end(sink, tags[k]);
fail:
    cat_rollback(s->db);
    return -1;
}

int rt_exec_ddl(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st, const ros_result_sink *sink,
                ros_error *err)
{
    switch (st->kind) {
    case SQL_S_CREATE_TABLE: return ddl_create_table(s, arena, sql, st, sink, err);
    case SQL_S_CREATE_FUNCTION: return ddl_create_function(s, arena, sql, st, sink, err);
    case SQL_S_ALTER_FUNCTION: return ddl_alter_function(s, arena, sql, st, sink, err);
    case SQL_S_CREATE_SERVICE: return ddl_create_service(s, arena, sql, st, sink, err);
    case SQL_S_ALTER_SERVICE: return ddl_alter_service(s, arena, sql, st, sink, err);
    case SQL_S_DROP: return ddl_drop(s, st, sink, err);
    case SQL_S_DELETE:
        return ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "DELETE is not supported yet");
    default:
        return ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "statement is not supported");
    }
}
