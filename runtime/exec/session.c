/*
 * session.c
 *    A session: one catalog connection, its settings and loaded functions,
 *    and the dispatch of each statement to the planner, the rewriter and the
 *    executor (queries) or to the catalog (DDL, SHOW, SET).
 *
 * Every statement runs in one catalog transaction when it writes, so a
 * failure leaves nothing half-made.  Results stream to the caller's
 * ros_result_sink a batch at a time.
 */
#include <rosql/rosql.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "catalog/catalog.h"
#include "planner/options.h"
#include "planner/planner.h"
#include "rewriter/rewriter.h"
#include "runtime/connectors/connector.h"
#include "runtime/core/types.h"
#include "runtime/exec/exec.h"
#include "runtime/exec/session_int.h"
#include "runtime/exec/udf.h"
#include "sql/parser.h"

/* ---------------------------------------------------------------- */
/* Settings */

typedef struct setting_def {
    const char *name;
    const char *def;
    const char *desc;
} setting_def;

static const setting_def settings[] = {
    {"decoupling", "on", "Run functions annotated WITH (decoupled = true) in their own services."},
    {"batch_size", "1024", "Rows per column batch."},
    {"checkpoint_interval", "10s", "Time between checkpoints of streaming jobs."},
    {"checkpoints_kept", "5", "Checkpoints kept per job (older ones are deleted)."},
    {"statement_timeout", "0", "Cancel statements that run longer than this, e.g. '5s' (0: never)."},
    {"job_output_trace", "", "File a job appends a line to per output batch (unix ms, rows): its output cadence ('': none)."},
};
#define NSETTINGS ((int)(sizeof settings / sizeof settings[0]))

static int setting_index(const char *name)
{
    for (int i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return i;
    return -1;
}

const char *rt_session_setting(ros_session *s, const char *name)
{
    int i = setting_index(name);
    return i < 0 ? NULL : s->settings[i] ? s->settings[i] : settings[i].def;
}

/* ---------------------------------------------------------------- */
/* Opening and closing */

ros_session *ros_session_open(const char *path, ros_error *err)
{
    ros_session *s = calloc(1, sizeof *s);
    if (!s) {
        ros_error_oom(err);
        return NULL;
    }
    s->settings = calloc(NSETTINGS, sizeof(char *));
    if (!s->settings) {
        free(s);
        ros_error_oom(err);
        return NULL;
    }
    s->db = cat_open(path, err);
    if (!s->db) {
        free(s->settings);
        free(s);
        return NULL;
    }
    s->udfs.db_path = cat_path(s->db);
    if (path)
        rt_services_resume(s);
    return s;
}

void ros_session_close(ros_session *s)
{
    if (!s)
        return;
    rt_udf_cache_clear(&s->udfs);
    cat_close(s->db);
    for (int i = 0; i < NSETTINGS; i++)
        free(s->settings[i]);
    free(s->settings);
    free(s);
}

void ros_session_cancel(ros_session *s)
{
    if (s)
        s->cancel = 1;
}

const char *ros_session_path(ros_session *s)
{
    return cat_path(s->db);
}

char **ros_session_object_names(ros_session *s, char kind)
{
    ros_error err;
    ros_error_clear(&err);
    int n = 0;
    char **names = NULL;
    if (kind == 't') {
        cat_table **t;
        if (cat_table_list(s->db, &t, &n, &err) < 0)
            return NULL;
        names = calloc((size_t)n + 1, sizeof(char *));
        for (int i = 0; names && i < n; i++)
            names[i] = strdup(t[i]->name);
        CAT_FREE_LIST(t, n, cat_table_free);
    } else if (kind == 'f') {
        cat_function **f;
        if (cat_function_list(s->db, &f, &n, &err) < 0)
            return NULL;
        names = calloc((size_t)n + 1, sizeof(char *));
        for (int i = 0; names && i < n; i++)
            names[i] = strdup(f[i]->name);
        CAT_FREE_LIST(f, n, cat_function_free);
    } else if (kind == 's') {
        cat_service **sv;
        if (cat_service_list(s->db, &sv, &n, &err) < 0)
            return NULL;
        names = calloc((size_t)n + 1, sizeof(char *));
        for (int i = 0; names && i < n; i++)
            names[i] = strdup(sv[i]->name);
        CAT_FREE_LIST(sv, n, cat_service_free);
    }
    return names;
}

/* ---------------------------------------------------------------- */
/* Result helpers */

int rt_result_begin(const ros_result_sink *sink, int ncols, const char *const *names, const ros_type *types)
{
    return sink && sink->begin ? sink->begin(sink->arg, ncols, names, types) : 0;
}

int rt_result_end(const ros_result_sink *sink, const char *tag)
{
    return sink && sink->end ? sink->end(sink->arg, tag) : 0;
}

void rt_notice(const ros_result_sink *sink, const char *fmt, ...)
{
    if (!sink || !sink->notice)
        return;
    va_list ap;
    va_start(ap, fmt);
    ros_strbuf sb = ROS_STRBUF_INIT;
    ros_strbuf_appendv(&sb, fmt, ap);
    va_end(ap);
    sink->notice(sink->arg, ros_strbuf_cstr(&sb));
    ros_strbuf_free(&sb);
}

/* A small table of text cells sent as one result (SHOW, EXPLAIN). */
int rt_rows_init(rt_rows *r, int ncols, const char *const *names)
{
    memset(r, 0, sizeof *r);
    r->ncols = ncols;
    r->names = names;
    ros_type types[ncols > 0 ? ncols : 1];
    for (int i = 0; i < ncols; i++)
        types[i] = ROS_TYPE_TEXT;
    return rt_batch_init(&r->b, ncols, types);
}

int rt_rows_add(rt_rows *r, const char *const *cells)
{
    for (int c = 0; c < r->ncols; c++) {
        int rc = cells[c] ? ros_vector_append_text(&r->b.cols[c], cells[c]) : ros_vector_append_null(&r->b.cols[c]);
        if (rc < 0)
            return -1;
    }
    r->b.nrows++;
    return 0;
}

int rt_rows_send(rt_rows *r, const ros_result_sink *sink, const char *tag_word)
{
    ros_type types[r->ncols > 0 ? r->ncols : 1];
    for (int i = 0; i < r->ncols; i++)
        types[i] = ROS_TYPE_TEXT;
    int rc = rt_result_begin(sink, r->ncols, r->names, types);
    if (rc == 0 && sink && sink->batch && r->b.nrows > 0)
        rc = sink->batch(sink->arg, &r->b);
    char tag[64];
    snprintf(tag, sizeof tag, "%s %u", tag_word, r->b.nrows);
    if (rc == 0)
        rc = rt_result_end(sink, tag_word[0] ? tag : "");
    rt_batch_free(&r->b);
    return rc;
}

void rt_rows_free(rt_rows *r)
{
    rt_batch_free(&r->b);
}

/* ---------------------------------------------------------------- */
/* Planning a query */

static plan_udf *load_udf_cb(void *arg, const cat_function *f, ros_error *err)
{
    return rt_udf_cache_get(&((ros_session *)arg)->udfs, f, err);
}

void rt_plan_ctx_init(ros_session *s, plan_ctx *pc, ros_arena *arena, const char *sql, ros_error *err)
{
    memset(pc, 0, sizeof *pc);
    pc->arena = arena;
    pc->db = s->db;
    pc->err = err;
    pc->sql = sql;
    pc->load_udf = load_udf_cb;
    pc->udf_arg = s;
    pc->decoupling = strcmp(rt_session_setting(s, "decoupling"), "on") == 0;
}

plan_node *rt_rewrite(ros_session *s, ros_arena *arena, plan_node *plan, ros_error *err)
{
    rw_ctx rc = {arena, s->db, err, strcmp(rt_session_setting(s, "decoupling"), "on") == 0};
    return rw_rewrite(&rc, plan);
}

static void exec_ctx_init(ros_session *s, rt_exec_ctx *ec)
{
    memset(ec, 0, sizeof *ec);
    ec->db = s->db;
    ec->cancel = &s->cancel;
    long bs = atol(rt_session_setting(s, "batch_size"));
    ec->batch_size = bs > 0 ? (uint32_t)bs : RT_BATCH_SIZE;
    int64_t timeout_ms = plan_parse_duration_ms(rt_session_setting(s, "statement_timeout"));
    if (timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ec->deadline_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + timeout_ms * 1000000;
    }
}

static void notice_cb(void *arg, const char *msg) { rt_notice(arg, "%s", msg); }

/* Runs plan and streams its rows to sink; *rows gets the count. */
static int run_query(ros_session *s, plan_node *plan, const ros_result_sink *sink, int64_t *rows, ros_error *err)
{
    rt_exec_ctx ec;
    exec_ctx_init(s, &ec);
    if (sink) {
        ec.notice = notice_cb;
        ec.notice_arg = (void *)sink;
    }
    rt_op *op = rt_op_build(&ec, plan, err);
    if (!op)
        return -1;
    int rc = 0;
    if (plan->kind != PN_INSERT)
        rc = rt_result_begin(sink, plan->ncols, plan->names, plan->types);
    *rows = 0;
    while (rc == 0) {
        ros_batch *b;
        int r = rt_op_next(op, &b, err);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0)
            break;
        if (r == 2)
            continue; /* an unbounded input with nothing now (it waited) */
        *rows += b->nrows;
        if (sink && sink->batch && sink->batch(sink->arg, b) != 0) {
            ros_error_set(err, ROS_ERR_CANCELED, "canceling statement due to user request");
            rc = -1;
        }
    }
    if (plan->kind == PN_INSERT)
        *rows = ec.rows_written;
    rt_op_free(op);
    return rc;
}

static int exec_select(ros_session *s, ros_arena *arena, const char *sql, const sql_select *sel,
                       const ros_result_sink *sink, ros_error *err)
{
    plan_ctx pc;
    rt_plan_ctx_init(s, &pc, arena, sql, err);
    plan_node *plan = plan_select(&pc, sel);
    if (!plan)
        return -1;
    plan_node *rw = rt_rewrite(s, arena, plan, err);
    int rc = -1;
    int64_t rows = 0;
    if (rw && rt_services_prepare(s, rw, err) == 0 && run_query(s, rw, sink, &rows, err) == 0) {
        char tag[64];
        snprintf(tag, sizeof tag, "SELECT %lld", (long long)rows);
        rc = rt_result_end(sink, tag);
    }
    plan_free(plan);
    return rc;
}

static int exec_insert(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st,
                       const ros_result_sink *sink, ros_error *err)
{
    plan_ctx pc;
    rt_plan_ctx_init(s, &pc, arena, sql, err);
    plan_node *plan = plan_insert(&pc, st->u.insert.table, st->u.insert.table_location, &st->u.insert.columns,
                                  st->u.insert.source);
    plan_node *rw = plan ? rt_rewrite(s, arena, plan, err) : NULL;
    /* services are created before the insert's transaction, which must not
     * hold the catalog while their coordinator records them */
    if (rw && rt_services_prepare(s, rw, err) == 0 && rt_insert_runs_as_job(s, rw, st->u.insert.submit)) {
        int rc = rt_run_as_job(s, sql, rw, st->u.insert.submit, sink, err);
        plan_free(plan);
        return rc;
    }
    if (!rw || err->set || cat_begin(s->db, err) < 0) {
        if (plan)
            plan_free(plan);
        return -1;
    }
    int64_t rows = 0;
    int rc = run_query(s, rw, sink, &rows, err);
    if (plan)
        plan_free(plan);
    if (rc == 0 && cat_commit(s->db, err) == 0) {
        char tag[64];
        snprintf(tag, sizeof tag, "INSERT 0 %lld", (long long)rows);
        return rt_result_end(sink, tag);
    }
    cat_rollback(s->db);
    return -1;
}

/* Runs the INSERT of CREATE TABLE ... AS (inside the caller's transaction). */
int rt_run_insert(ros_session *s, ros_arena *arena, plan_node *plan, int64_t *rows, ros_error *err)
{
    plan_node *rw = rt_rewrite(s, arena, plan, err);
    return rw ? run_query(s, rw, NULL, rows, err) : -1;
}

/* ---------------------------------------------------------------- */
/* EXPLAIN */

static int exec_explain(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st,
                        const ros_result_sink *sink, ros_error *err)
{
    const sql_stmt *inner = st->u.explain.stmt;
    plan_ctx pc;
    rt_plan_ctx_init(s, &pc, arena, sql, err);
    plan_node *plan = NULL;
    if (inner->kind == SQL_S_SELECT)
        plan = plan_select(&pc, inner->u.select);
    else if (inner->kind == SQL_S_INSERT)
        plan = plan_insert(&pc, inner->u.insert.table, inner->u.insert.table_location, &inner->u.insert.columns,
                           inner->u.insert.source);
    else
        return ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "EXPLAIN of this statement is not supported");
    if (!plan)
        return -1;
    plan_node *shown = st->u.explain.rewrite ? rt_rewrite(s, arena, plan, err) : plan;
    int rc = -1;
    if (shown) {
        ros_strbuf sb = ROS_STRBUF_INIT;
        plan_explain(shown, &sb);
        if (!st->u.explain.rewrite)
            ros_strbuf_append(&sb, "(before rewriting)\n");
        static const char *const names[] = {"QUERY PLAN"};
        rt_rows r;
        rc = rt_rows_init(&r, 1, names);
        char *text = ros_strbuf_steal(&sb);
        for (char *line = text, *nl; rc == 0 && line && *line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            const char *cells[1] = {line};
            rc = rt_rows_add(&r, cells);
        }
        free(text);
        if (rc == 0)
            rc = rt_rows_send(&r, sink, "EXPLAIN");
        else {
            rt_rows_free(&r);
            ros_error_oom(err);
        }
    }
    plan_free(plan);
    return rc;
}

/* ---------------------------------------------------------------- */
/* SET / SHOW settings */

static int exec_set(ros_session *s, const sql_stmt *st, const ros_result_sink *sink, ros_error *err)
{
    int i = setting_index(st->u.set.name);
    if (i < 0)
        return ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "unrecognized configuration parameter \"%s\"",
                             st->u.set.name);
    const char *v = st->u.set.value;
    char norm[64];
    if (v) {
        if (strcmp(settings[i].name, "decoupling") == 0) {
            if (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcmp(v, "1"))
                v = "on";
            else if (!strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcmp(v, "0"))
                v = "off";
            else
                return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "parameter \"decoupling\" requires a Boolean value");
        } else if (strcmp(settings[i].name, "job_output_trace") == 0) {
            /* a path: job options are "k=v,..." and applied as SET k = 'v' */
            if (strpbrk(v, ",'\n"))
                return ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                                     "invalid value for parameter \"job_output_trace\": a path without commas or quotes");
        } else if (strcmp(settings[i].name, "batch_size") == 0 || strcmp(settings[i].name, "checkpoints_kept") == 0) {
            long max = strcmp(settings[i].name, "batch_size") == 0 ? 65536 : 1000;
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > max) {
                ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid value for parameter \"%s\": \"%s\"",
                              settings[i].name, v);
                ros_error_hint(err, "Valid values are between 1 and %ld.", max);
                return -1;
            }
        } else {
            int64_t ms = plan_parse_duration_ms(v);
            if (ms < 0) {
                ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid value for parameter \"%s\": \"%s\"",
                              settings[i].name, v);
                ros_error_hint(err, "Use a duration such as '2s', '500ms' or '1min'.");
                return -1;
            }
            if (strcmp(settings[i].name, "checkpoint_interval") == 0 && ms == 0)
                return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "checkpoint_interval must be positive");
            snprintf(norm, sizeof norm, "%s", v);
            v = norm;
        }
    }
    char *copy = v ? strdup(v) : NULL;
    if (v && !copy)
        return ros_error_oom(err);
    free(s->settings[i]);
    s->settings[i] = copy;
    return rt_result_end(sink, v ? "SET" : "RESET");
}

static int show_setting(ros_session *s, const char *name, const ros_result_sink *sink, ros_error *err)
{
    rt_rows r;
    if (strcmp(name, "all") == 0) {
        static const char *const names[] = {"name", "setting", "description"};
        if (rt_rows_init(&r, 3, names) < 0)
            return ros_error_oom(err);
        for (int i = 0; i < NSETTINGS; i++) {
            const char *cells[3] = {settings[i].name, rt_session_setting(s, settings[i].name), settings[i].desc};
            if (rt_rows_add(&r, cells) < 0) {
                rt_rows_free(&r);
                return ros_error_oom(err);
            }
        }
        return rt_rows_send(&r, sink, "SHOW");
    }
    int i = setting_index(name);
    if (i < 0)
        return ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "unrecognized configuration parameter \"%s\"", name);
    const char *const names[] = {settings[i].name};
    const char *cells[1] = {rt_session_setting(s, name)};
    if (rt_rows_init(&r, 1, names) < 0 || rt_rows_add(&r, cells) < 0) {
        rt_rows_free(&r);
        return ros_error_oom(err);
    }
    return rt_rows_send(&r, sink, "SHOW");
}

/* ---------------------------------------------------------------- */
/* Dispatch */

int ros_session_execute(ros_session *s, const char *sql, const ros_result_sink *sink, ros_error *err)
{
    ros_arena arena;
    ros_arena_init(&arena);
    s->cancel = 0;
    int rc = -1;
    sql_stmt *st = sql_parse(sql, &arena, err);
    if (!st)
        goto done;
    switch (st->kind) {
    case SQL_S_SELECT:
        rc = exec_select(s, &arena, sql, st->u.select, sink, err);
        break;
    case SQL_S_INSERT:
        rc = exec_insert(s, &arena, sql, st, sink, err);
        break;
    case SQL_S_EXPLAIN:
        rc = exec_explain(s, &arena, sql, st, sink, err);
        break;
    case SQL_S_SET:
        rc = exec_set(s, st, sink, err);
        break;
    case SQL_S_SHOW:
        if (setting_index(st->u.show.what) >= 0 || strcmp(st->u.show.what, "all") == 0)
            rc = show_setting(s, st->u.show.what, sink, err);
        else
            rc = rt_exec_show(s, &arena, sql, st, sink, err);
        break;
    case SQL_S_JOB:
        rc = rt_exec_job(s, st, sink, err);
        break;
    case SQL_S_TRANSACTION:
        rt_notice(sink, "rosql runs each statement in its own transaction; %s has no effect", st->u.transaction.what);
        rc = rt_result_end(sink, strcmp(st->u.transaction.what, "begin") == 0 ? "BEGIN"
                                 : strcmp(st->u.transaction.what, "commit") == 0 ? "COMMIT"
                                                                                 : "ROLLBACK");
        break;
    default:
        rc = rt_exec_ddl(s, &arena, sql, st, sink, err);
        break;
    }
done:
    if (rc < 0 && !err->set)
        ros_error_set(err, ROS_ERR_INTERNAL, "statement failed");
    if (rc < 0 && cat_in_transaction(s->db))
        cat_rollback(s->db);
    ros_arena_free(&arena);
    return rc < 0 ? -1 : 0;
}
