/*
 * jobctl.c
 *    What a session does with streaming jobs: runs an INSERT as a job
 *    (foreground with progress, or detached with SUBMIT), and STOP JOB,
 *    RESUME JOB, CHECKPOINT JOB.
 *
 * A job is a catalog row (rosql_jobs) that the coordinator turns into a
 * `rosd job` process (runtime/exec/job.c); the session only records it,
 * asks the coordinator to act now, and watches the row.  So a job outlives
 * the shell that submitted it, and a second shell (or a restarted one) sees
 * and controls it the same way.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "runtime/connectors/connector.h"
#include "runtime/core/clock.h"
#include "runtime/core/strbuf.h"
#include "runtime/exec/exec.h"
#include "runtime/exec/session_int.h"
#include "service/coordinator.h"
#include "service/spawn.h"

#define COORD_TIMEOUT_MS 5000
#define CONTROL_WAIT_MS 60000 /* STOP / CHECKPOINT wait this long for the job */
#define WATCH_MS 200          /* foreground: how often the job's row is read */

/* ---------------------------------------------------------------- */
/* Which INSERTs run as jobs */

/* Does the plan call a service, or read a source that never ends? */
static bool plan_streams(ros_session *s, const plan_node *p)
{
    for (; p; p = p->child) {
        if (p->kind == PN_PROXY)
            return true;
        if (p->kind == PN_SCAN) {
            ros_error ignore = {0};
            rt_source_opts so = {0, NULL, false};
            rt_source *src = rt_source_open(s->db, p->u.scan.table, &so, &ignore);
            bool unbounded = src && src->unbounded;
            if (src)
                src->ops->close(src);
            if (unbounded)
                return true;
        }
    }
    return false;
}

bool rt_insert_runs_as_job(ros_session *s, const plan_node *rw, bool submit)
{
    return submit || plan_streams(s, rw);
}

/* ---------------------------------------------------------------- */
/* Helpers */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Asks the coordinator to look at jobs now (start = start one if none runs). */
static int tell_coordinator(ros_session *s, bool start, ros_error *err)
{
    int rc = svc_coord_request(cat_path(s->db), "jobs", NULL, 0, COORD_TIMEOUT_MS, start, err);
    return rc < 0 ? -1 : rc;
}

static cat_job *get_job(ros_session *s, int64_t id, ros_error *err)
{
    cat_job *j = cat_job_get(s->db, id, err);
    if (!j && !err->set)
        ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "job %lld does not exist", (long long)id);
    return j;
}

/* Is j's pid its live `rosd job` process? */
static bool job_alive(const cat_job *j)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)j->id);
    return svc_rosd_process(j->pid, "job", id);
}

/* "checkpoint_interval=2s,decoupling=on,batch_size=1024,cwd=/x": what the
 * job process needs of this session. */
static char *job_options(ros_session *s)
{
    ros_strbuf sb = ROS_STRBUF_INIT;
    static const char *const keep[] = {"checkpoint_interval", "checkpoints_kept", "decoupling", "batch_size",
                                         "job_output_trace", NULL};
    for (int i = 0; keep[i]; i++)
        ros_strbuf_appendf(&sb, "%s%s=%s", i ? "," : "", keep[i], rt_session_setting(s, keep[i]));
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) && !strchr(cwd, ','))
        ros_strbuf_appendf(&sb, ",cwd=%s", cwd);
    return ros_strbuf_steal(&sb);
}

static void progress(const ros_result_sink *sink, const cat_job *j, double t0)
{
    if (!sink || !sink->progress)
        return;
    double secs = ros_unix_ms() / 1000.0 - t0;
    char line[256];
    snprintf(line, sizeof line, "job %lld: %lld rows read, %lld written (%.0f rows/s), checkpoint %lld%s",
             (long long)j->id, (long long)j->rows_read, (long long)j->rows_written,
             secs > 0 ? (double)j->rows_read / secs : 0.0, (long long)j->last_checkpoint,
             j->restarts ? " (restarted)" : "");
    sink->progress(sink->arg, line);
}

/* STOP: stopping, SIGTERM (through the coordinator, or directly when none
 * runs), and wait until it stopped. */
static int stop_job(ros_session *s, int64_t id, ros_error *err)
{
    int moved = cat_job_transition(s->db, id, "created,running", "stopping", NULL, err);
    if (moved < 0)
        return -1;
    cat_job *j = get_job(s, id, err);
    if (!j)
        return -1;
    if (!moved && strcmp(j->state, "stopping") != 0) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "job %lld is not running (it is %s)", (long long)id, j->state);
        cat_job_free(j);
        return -1;
    }
    ros_error ignore = {0};
    if (tell_coordinator(s, false, &ignore) != 0) {
        /* no coordinator: we deliver the stop ourselves */
        if (job_alive(j))
            kill(j->pid, SIGTERM);
        else
            cat_job_transition(s->db, id, "stopping", "stopped", NULL, &ignore);
    }
    cat_job_free(j);
    int64_t deadline = ros_mono_ms() + CONTROL_WAIT_MS;
    for (;;) {
        if (!(j = get_job(s, id, err)))
            return -1;
        bool done = strcmp(j->state, "stopping") != 0;
        if (!done && !job_alive(j) && tell_coordinator(s, false, &ignore) != 0)
            cat_job_transition(s->db, id, "stopping", "stopped", NULL, &ignore);
        cat_job_free(j);
        if (done)
            return 0;
        if (ros_mono_ms() > deadline)
            return ros_error_set(err, ROS_ERR_CANCELED, "job %lld did not stop within %d s", (long long)id,
                                 CONTROL_WAIT_MS / 1000);
        sleep_ms(50);
    }
}

/* ---------------------------------------------------------------- */
/* INSERT as a job */

int rt_run_as_job(ros_session *s, const char *sql, const plan_node *rw, bool submit, const ros_result_sink *sink,
                  ros_error *err)
{
    cat_job j = {0};
    j.sql = (char *)sql;
    j.state = "running";
    j.sink_table = rw->u.insert.table->name;
    j.options = job_options(s);
    if (!j.options)
        return ros_error_oom(err);
    int rc = cat_job_create(s->db, &j, err);
    free(j.options);
    if (rc < 0)
        return -1;
    int64_t id = j.id;
    if (tell_coordinator(s, true, err) < 0) {
        ros_error ignore = {0};
        cat_job_transition(s->db, id, NULL, "failed", err->message, &ignore);
        return -1;
    }
    if (submit) {
        static const char *const names[] = {"job"};
        rt_rows r;
        char cell[32];
        snprintf(cell, sizeof cell, "%lld", (long long)id);
        const char *cells[1] = {cell};
        if (rt_rows_init(&r, 1, names) < 0 || rt_rows_add(&r, cells) < 0) {
            rt_rows_free(&r);
            return ros_error_oom(err);
        }
        return rt_rows_send(&r, sink, "SUBMIT");
    }
    /* foreground: watch the row until the job ends; Ctrl-C stops it */
    double t0 = ros_unix_ms() / 1000.0;
    for (;;) {
        cat_job *row = get_job(s, id, err);
        if (!row)
            return -1;
        if (strcmp(row->state, "finished") == 0) {
            if (sink && sink->progress)
                sink->progress(sink->arg, NULL);
            char tag[64];
            snprintf(tag, sizeof tag, "INSERT 0 %lld", (long long)row->rows_written);
            cat_job_free(row);
            return rt_result_end(sink, tag);
        }
        if (strcmp(row->state, "failed") == 0 || strcmp(row->state, "stopped") == 0) {
            if (sink && sink->progress)
                sink->progress(sink->arg, NULL);
            if (strcmp(row->state, "failed") == 0)
                ros_error_set(err, ROS_ERR_EXTERNAL, "job %lld failed: %s", (long long)id,
                              row->last_error ? row->last_error : "unknown error");
            else
                ros_error_set(err, ROS_ERR_CANCELED, "job %lld was stopped", (long long)id);
            ros_error_detail(err, "%lld rows were written (checkpoint %lld).", (long long)row->rows_written,
                             (long long)row->last_checkpoint);
            if (strcmp(row->state, "stopped") == 0)
                ros_error_hint(err, "RESUME JOB %lld continues it from its last checkpoint.", (long long)id);
            cat_job_free(row);
            return -1;
        }
        progress(sink, row, t0);
        cat_job_free(row);
        if (s->cancel) {
            s->cancel = 0;
            if (sink && sink->progress)
                sink->progress(sink->arg, NULL);
            if (stop_job(s, id, err) < 0)
                return -1;
            cat_job *st = get_job(s, id, err);
            if (!st)
                return -1;
            ros_error_set(err, ROS_ERR_CANCELED, "canceling statement due to user request");
            ros_error_detail(err, "Job %lld stopped at checkpoint %lld with %lld rows written.", (long long)id,
                             (long long)st->last_checkpoint, (long long)st->rows_written);
            ros_error_hint(err, "RESUME JOB %lld continues it.", (long long)id);
            cat_job_free(st);
            return -1;
        }
        sleep_ms(WATCH_MS);
    }
}

/* ---------------------------------------------------------------- */
/* STOP / RESUME / CHECKPOINT JOB */

static int checkpoint_job(ros_session *s, int64_t id, const ros_result_sink *sink, ros_error *err)
{
    cat_job *j = get_job(s, id, err);
    if (!j)
        return -1;
    if (strcmp(j->state, "running") != 0 || !job_alive(j)) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "job %lld is not running%s%s%s", (long long)id,
                      strcmp(j->state, "running") ? " (it is " : "", strcmp(j->state, "running") ? j->state : "",
                      strcmp(j->state, "running") ? ")" : "");
        if (strcmp(j->state, "running") == 0)
            ros_error_detail(err, "Its process is being restarted; try again in a moment.");
        cat_job_free(j);
        return -1;
    }
    int64_t before = j->last_checkpoint;
    kill(j->pid, SIGUSR1);
    cat_job_free(j);
    int64_t deadline = ros_mono_ms() + CONTROL_WAIT_MS;
    for (;;) {
        sleep_ms(20);
        if (!(j = get_job(s, id, err)))
            return -1;
        int64_t now_ckpt = j->last_checkpoint;
        bool running = strcmp(j->state, "running") == 0;
        cat_job_free(j);
        if (now_ckpt != before) {
            char tag[64];
            snprintf(tag, sizeof tag, "CHECKPOINT %lld", (long long)now_ckpt);
            return rt_result_end(sink, tag);
        }
        if (!running)
            return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "job %lld ended before its checkpoint", (long long)id);
        if (ros_mono_ms() > deadline)
            return ros_error_set(err, ROS_ERR_CANCELED, "job %lld took no checkpoint within %d s", (long long)id,
                                 CONTROL_WAIT_MS / 1000);
        if (s->cancel)
            return ros_error_set(err, ROS_ERR_CANCELED, "canceling statement due to user request");
    }
}

int rt_exec_job(ros_session *s, const sql_stmt *st, const ros_result_sink *sink, ros_error *err)
{
    int64_t id = st->u.job.id;
    const char *a = st->u.job.action;
    if (strcmp(a, "stop") == 0) {
        if (stop_job(s, id, err) < 0)
            return -1;
        return rt_result_end(sink, "STOP JOB");
    }
    if (strcmp(a, "checkpoint") == 0)
        return checkpoint_job(s, id, sink, err);
    /* resume */
    int moved = cat_job_transition(s->db, id, "stopped,failed", "running", NULL, err);
    if (moved < 0)
        return -1;
    if (moved == 0) {
        cat_job *j = get_job(s, id, err);
        if (!j)
            return -1;
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "job %lld cannot be resumed: it is %s", (long long)id, j->state);
        cat_job_free(j);
        return -1;
    }
    if (tell_coordinator(s, true, err) < 0)
        return -1;
    return rt_result_end(sink, "RESUME JOB");
}
