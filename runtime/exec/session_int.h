/*
 * session_int.h
 *    The session's internals shared by session.c (queries, SET), ddl.c
 *    (catalog statements) and show.c (SHOW).
 */
#ifndef RT_SESSION_INT_H
#define RT_SESSION_INT_H

#include <signal.h>
#include <stdarg.h>

#include <rosql/rosql.h>

#include "catalog/catalog.h"
#include "planner/planner.h"
#include "runtime/core/arena.h"
#include "runtime/core/error.h"
#include "runtime/exec/udf.h"
#include "sql/ast.h"

struct ros_session {
    cat_db *db;                     /* catalog connection */
    rt_udf_cache udfs;              /* C functions loaded by this process */
    volatile sig_atomic_t cancel;   /* set by ros_session_cancel */
    char **settings;                /* SET values, NULL = default */
};

/* Current value of a setting (never NULL for a known name). */
const char *rt_session_setting(ros_session *s, const char *name);

/* A result made of text cells (SHOW, EXPLAIN). */
typedef struct rt_rows {
    int ncols;
    const char *const *names;
    ros_batch b;
} rt_rows;

int rt_rows_init(rt_rows *r, int ncols, const char *const *names);
int rt_rows_add(rt_rows *r, const char *const *cells);
/* Sends the rows with tag "<tag_word> <n>" (or no tag for ""), then frees them. */
int rt_rows_send(rt_rows *r, const ros_result_sink *sink, const char *tag_word);
void rt_rows_free(rt_rows *r);

int rt_result_begin(const ros_result_sink *sink, int ncols, const char *const *names, const ros_type *types);
int rt_result_end(const ros_result_sink *sink, const char *tag);
void rt_notice(const ros_result_sink *sink, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void rt_plan_ctx_init(ros_session *s, plan_ctx *pc, ros_arena *arena, const char *sql, ros_error *err);
plan_node *rt_rewrite(ros_session *s, ros_arena *arena, plan_node *plan, ros_error *err);
int rt_run_insert(ros_session *s, ros_arena *arena, plan_node *plan, int64_t *rows, ros_error *err);

/* CREATE / DROP / ALTER of tables, functions, services (ddl.c). */
int rt_exec_ddl(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st, const ros_result_sink *sink,
                ros_error *err);
/* SHOW TABLES | FUNCTIONS | SERVICES | JOBS | CHECKPOINTS | COLUMNS (show.c). */
int rt_exec_show(ros_session *s, ros_arena *arena, const char *sql, const sql_stmt *st, const ros_result_sink *sink,
                 ros_error *err);

/* Jobs (jobctl.c).  Whether an INSERT with rewritten plan rw runs as a job
 * (SUBMIT, or it calls a service or reads an unbounded source); running it
 * so (foreground: waits, with progress, Ctrl-C stops it); STOP / RESUME /
 * CHECKPOINT JOB. */
bool rt_insert_runs_as_job(ros_session *s, const plan_node *rw, bool submit);
int rt_run_as_job(ros_session *s, const char *sql, const plan_node *rw, bool submit, const ros_result_sink *sink,
                  ros_error *err);
int rt_exec_job(ros_session *s, const sql_stmt *st, const ros_result_sink *sink, ros_error *err);

/* Services (services.c).  Tells the coordinator that services changed
 * (starting it when none runs); with dropped, waits until the instances of
 * those services stopped. */
int rt_services_changed(ros_session *s, const sql_list *dropped, ros_error *err);
/* Records sv (state, desired instances from its options) and has the
 * coordinator start its instances; the statement does not wait for them to
 * load.  Checks device = 'gpu'.  Runs its own catalog transaction. */
int rt_service_create(ros_session *s, cat_service *sv, ros_error *err);
/* Stores sv's changed options (ALTER): desired instances from `instances`,
 * a new try when it had failed; tells the coordinator. */
int rt_service_apply(ros_session *s, cat_service *sv, ros_error *err);
/* The service of decoupled function `function` (owner_function = it):
 * drops it and waits for its instances to stop; 0 also when there is none. */
int rt_service_drop_owned(ros_session *s, const char *function, ros_error *err);
/* Applies function f's annotation to its existing service (instances,
 * device, batching); 0 also when there is none. */
int rt_service_update_owned(ros_session *s, const cat_function *f, ros_error *err);
/* Before a statement runs a rewritten plan: creates, on first use, the
 * service of every decoupled function it calls (named after the function,
 * handler 'library:symbol', options from the annotation).  Must run outside
 * a catalog transaction. */
int rt_services_prepare(ros_session *s, const plan_node *plan, ros_error *err);
/* At session open: makes sure services that should run have a coordinator
 * (after a crash or a reboot).  Failures are silent: a query reports them. */
void rt_services_resume(ros_session *s);

#endif /* RT_SESSION_INT_H */
