/*
 * show.c
 *    SHOW TABLES | FUNCTIONS | SERVICES | JOBS | CHECKPOINTS | COLUMNS FROM t:
 *    catalog listings as ordinary results, so they print, export (csv/json)
 *    and read the same way from any process that opens the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/core/types.h"
#include "runtime/exec/session_int.h"

static char *fmt_time(double t, char *buf, size_t n)
{
    if (t <= 0) {
        snprintf(buf, n, "%s", "");
        return buf;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

static char *options_text(const cat_options *o)
{
    ros_strbuf sb = ROS_STRBUF_INIT;
    for (int i = 0; i < o->n; i++)
        ros_strbuf_appendf(&sb, "%s%s=%s", i ? ", " : "", o->items[i].key, o->items[i].value);
    return ros_strbuf_steal(&sb);
}

static int show_tables(ros_session *s, const ros_result_sink *sink, ros_error *err)
{
    cat_table **t;
    int n;
    if (cat_table_list(s->db, &t, &n, err) < 0)
        return -1;
    static const char *const names[] = {"name", "connector", "columns", "options"};
    rt_rows r;
    int rc = rt_rows_init(&r, 4, names);
    for (int i = 0; rc == 0 && i < n; i++) {
        char cols[16];
        snprintf(cols, sizeof cols, "%d", t[i]->ncols);
        char *opts = options_text(&t[i]->options);
        const char *cells[4] = {t[i]->name, t[i]->connector, cols, opts ? opts : ""};
        rc = rt_rows_add(&r, cells);
        free(opts);
    }
    CAT_FREE_LIST(t, n, cat_table_free);
    if (rc < 0) {
        rt_rows_free(&r);
        return ros_error_oom(err);
    }
    return rt_rows_send(&r, sink, "SHOW");
}

static int show_columns(ros_session *s, const char *table, const ros_result_sink *sink, ros_error *err)
{
    cat_table *t = cat_table_get(s->db, table, err);
    if (!t) {
        if (!err->set)
            ros_error_set(err, ROS_ERR_UNDEFINED_TABLE, "relation \"%s\" does not exist", table);
        return -1;
    }
    static const char *const names[] = {"column", "type", "nullable"};
    rt_rows r;
    int rc = rt_rows_init(&r, 3, names);
    for (int i = 0; rc == 0 && i < t->ncols; i++) {
        const char *cells[3] = {t->cols[i].name, ros_type_name(t->cols[i].type), t->cols[i].not_null ? "not null" : ""};
        rc = rt_rows_add(&r, cells);
    }
    char *opts = options_text(&t->options);
    rt_notice(sink, "table \"%s\": connector %s%s%s", t->name, t->connector, opts && *opts ? ", " : "",
              opts ? opts : "");
    free(opts);
    cat_table_free(t);
    if (rc < 0) {
        rt_rows_free(&r);
        return ros_error_oom(err);
    }
    return rt_rows_send(&r, sink, "SHOW");
}

static int show_functions(ros_session *s, const ros_result_sink *sink, ros_error *err)
{
    cat_function **f;
    int n;
    if (cat_function_list(s->db, &f, &n, err) < 0)
        return -1;
    static const char *const names[] = {"name", "arguments", "returns", "language", "definition", "options"};
    rt_rows r;
    int rc = rt_rows_init(&r, 6, names);
    for (int i = 0; rc == 0 && i < n; i++) {
        ros_strbuf args = ROS_STRBUF_INIT, def = ROS_STRBUF_INIT;
        for (int a = 0; a < f[i]->nargs; a++)
            ros_strbuf_appendf(&args, "%s%s", a ? ", " : "", ros_type_name(f[i]->arg_types[a]));
        if (f[i]->service)
            ros_strbuf_appendf(&def, "service %s%s%s", f[i]->service, f[i]->method ? " method " : "",
                               f[i]->method ? f[i]->method : "");
        else
            ros_strbuf_appendf(&def, "%s:%s", f[i]->library ? f[i]->library : "", f[i]->symbol ? f[i]->symbol : "");
        char *opts = options_text(&f[i]->options);
        const char *cells[6] = {f[i]->name, ros_strbuf_cstr(&args), ros_type_name(f[i]->ret_type), f[i]->language,
                                ros_strbuf_cstr(&def), opts ? opts : ""};
        rc = rt_rows_add(&r, cells);
        free(opts);
        ros_strbuf_free(&args);
        ros_strbuf_free(&def);
    }
    CAT_FREE_LIST(f, n, cat_function_free);
    if (rc < 0) {
        rt_rows_free(&r);
        return ros_error_oom(err);
    }
    return rt_rows_send(&r, sink, "SHOW");
}

static int show_services(ros_session *s, const ros_result_sink *sink, ros_error *err)
{
    cat_service **sv;
    int n;
    if (cat_service_list(s->db, &sv, &n, err) < 0)
        return -1;
    static const char *const names[] = {"service", "instance", "state",   "pid",     "endpoint",  "requests",
                                        "rows",    "inflight", "queue",  "restarts", "handler", "last_error"};
    rt_rows r;
    int rc = rt_rows_init(&r, 12, names);
    for (int i = 0; rc == 0 && i < n; i++) {
        char desired[32];
        snprintf(desired, sizeof desired, "desired %d", sv[i]->desired_instances);
        const char *cells[12] = {sv[i]->name, desired, sv[i]->state, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                 sv[i]->handler, sv[i]->last_error};
        rc = rt_rows_add(&r, cells);
        cat_instance **in;
        int ni;
        if (rc == 0 && cat_instance_list(s->db, sv[i]->id, &in, &ni, err) < 0) {
            CAT_FREE_LIST(sv, n, cat_service_free);
            rt_rows_free(&r);
            return -1;
        }
        for (int k = 0; rc == 0 && k < ni; k++) {
            char idx[16], pid[16], req[32], rows[32], infl[32], q[32], rs[32];
            snprintf(idx, sizeof idx, "%d", in[k]->idx);
            snprintf(pid, sizeof pid, "%d", in[k]->pid);
            snprintf(req, sizeof req, "%lld", (long long)in[k]->requests);
            snprintf(rows, sizeof rows, "%lld", (long long)in[k]->rows);
            snprintf(infl, sizeof infl, "%lld", (long long)in[k]->inflight);
            snprintf(q, sizeof q, "%lld", (long long)in[k]->queue_depth);
            snprintf(rs, sizeof rs, "%lld", (long long)in[k]->restarts);
            const char *c2[12] = {sv[i]->name, idx, in[k]->state, pid, in[k]->endpoint, req, rows, infl, q, rs, NULL,
                                  in[k]->last_error};
            rc = rt_rows_add(&r, c2);
        }
        if (rc == 0)
            CAT_FREE_LIST(in, ni, cat_instance_free);
    }
    CAT_FREE_LIST(sv, n, cat_service_free);
    if (rc < 0) {
        rt_rows_free(&r);
        return ros_error_oom(err);
    }
    return rt_rows_send(&r, sink, "SHOW");
}

static int show_jobs(ros_session *s, const ros_result_sink *sink, ros_error *err)
{
    cat_job **j;
    int n;
    if (cat_job_list(s->db, &j, &n, err) < 0)
        return -1;
    static const char *const names[] = {"id",       "state",    "pid",        "rows_read",  "rows_written",
                                        "rate",     "last_checkpoint", "restarts", "recomputed", "last_error",
                                        "started",  "statement"};
    rt_rows r;
    int rc = rt_rows_init(&r, 12, names);
    for (int i = 0; rc == 0 && i < n; i++) {
        char id[32], pid[16], rr[32], rw[32], rate[32], cp[32], rs[32], rec[32], ts[32];
        snprintf(id, sizeof id, "%lld", (long long)j[i]->id);
        snprintf(pid, sizeof pid, "%d", j[i]->pid);
        snprintf(rr, sizeof rr, "%lld", (long long)j[i]->rows_read);
        snprintf(rw, sizeof rw, "%lld", (long long)j[i]->rows_written);
        /* rows read per second over the job's life (to its last update) */
        double secs = j[i]->updated_at - j[i]->created_at;
        snprintf(rate, sizeof rate, "%.0f", secs > 0 ? (double)j[i]->rows_read / secs : 0.0);
        snprintf(cp, sizeof cp, "%lld", (long long)j[i]->last_checkpoint);
        snprintf(rs, sizeof rs, "%lld", (long long)j[i]->restarts);
        snprintf(rec, sizeof rec, "%lld", (long long)j[i]->recomputed);
        const char *cells[12] = {id, j[i]->state, pid, rr, rw, rate, cp, rs, rec,
                                 j[i]->last_error, fmt_time(j[i]->created_at, ts, sizeof ts), j[i]->sql};
        rc = rt_rows_add(&r, cells);
    }
    CAT_FREE_LIST(j, n, cat_job_free);
    if (rc < 0) {
        rt_rows_free(&r);
        return ros_error_oom(err);
    }
    return rt_rows_send(&r, sink, "SHOW");
}

static int show_checkpoints(ros_session *s, int64_t job, const ros_result_sink *sink, ros_error *err)
{
    cat_checkpoint **c;
    int n;
    if (cat_checkpoint_list(s->db, job > 0 ? job : 0, &c, &n, err) < 0)
        return -1;
    static const char *const names[] = {"id", "job", "time", "duration_ms", "bytes", "inflight"};
    rt_rows r;
    int rc = rt_rows_init(&r, 6, names);
    for (int i = 0; rc == 0 && i < n; i++) {
        char id[32], jb[32], ts[32], dur[32], by[32], inf[32];
        snprintf(id, sizeof id, "%lld", (long long)c[i]->id);
        snprintf(jb, sizeof jb, "%lld", (long long)c[i]->job_id);
        snprintf(dur, sizeof dur, "%.1f", c[i]->duration_ms);
        snprintf(by, sizeof by, "%lld", (long long)c[i]->bytes);
        snprintf(inf, sizeof inf, "%lld", (long long)c[i]->inflight);
        const char *cells[6] = {id, jb, fmt_time(c[i]->created_at, ts, sizeof ts), dur, by, inf};
        rc = rt_rows_add(&r, cells);
    }
    CAT_FREE_LIST(c, n, cat_checkpoint_free);
    if (rc < 0) {
        rt_rows_free(&r);
        return ros_error_oom(err);
    }
    return rt_rows_send(&r, sink, "SHOW");
}

static int show_service_events(ros_session *s, const ros_result_sink *sink, ros_error *err)
{
    cat_service_event **e;
    int n;
    if (cat_service_event_list(s->db, NULL, &e, &n, err) < 0)
        return -1;
    static const char *const names[] = {"id", "service", "time", "event", "instances", "reason"};
    rt_rows r;
    int rc = rt_rows_init(&r, 6, names);
    for (int i = 0; rc == 0 && i < n; i++) {
        char id[32], ts[32], inst[32] = "";
        snprintf(id, sizeof id, "%lld", (long long)e[i]->id);
        if (e[i]->instances >= 0)
            snprintf(inst, sizeof inst, "%d", e[i]->instances);
        const char *cells[6] = {id, e[i]->service, fmt_time(e[i]->at, ts, sizeof ts), e[i]->event,
                                e[i]->instances >= 0 ? inst : NULL, e[i]->reason};
        rc = rt_rows_add(&r, cells);
    }
    CAT_FREE_LIST(e, n, cat_service_event_free);
    if (rc < 0) {
        rt_rows_free(&r);
        return ros_error_oom(err);
    }
    return rt_rows_send(&r, sink, "SHOW");
}

int rt_exec_show(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st, const ros_result_sink *sink,
                 ros_error *err)
{
    (void)arena;
    (void)sql;
    const char *w = st->u.show.what;
    if (strcmp(w, "tables") == 0)
        return show_tables(s, sink, err);
    if (strcmp(w, "functions") == 0)
        return show_functions(s, sink, err);
    if (strcmp(w, "services") == 0)
        return show_services(s, sink, err);
    if (strcmp(w, "jobs") == 0)
        return show_jobs(s, sink, err);
    if (strcmp(w, "service events") == 0)
        return show_service_events(s, sink, err);
    if (strcmp(w, "checkpoints") == 0)
        return show_checkpoints(s, st->u.show.job_id, sink, err);
    if (strcmp(w, "columns") == 0 && st->u.show.object)
        return show_columns(s, st->u.show.object, sink, err);
    return ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "unrecognized configuration parameter \"%s\"", w);
}
