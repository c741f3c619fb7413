/*
 * job.c
 *    `rosd job DBFILE ID`: the data plane of one streaming job, in a process
 *    of its own.
 *
 * The job's statement (INSERT INTO sink SELECT ...) is planned and
 * rewritten as in the shell, with the settings it was submitted with; its
 * source plan runs here, pulled batch by batch.  Rows for the sink collect
 * in memory for the current epoch.
 *
 * A checkpoint is taken between two pulls of the root, when no batch is
 * half consumed, every checkpoint_interval, on SIGUSR1 (CHECKPOINT JOB),
 * when the epoch's rows pass EPOCH_BYTES, and before the process stops on
 * SIGTERM (STOP JOB, or a coordinator shutting down).  It is:
 *   1. the operators' state (source offsets; each proxy's requests with
 *      their ids and rows, and results received but not emitted; see
 *      rt_op_snapshot) into one buffer;
 *   2. a file sink: the file with the epoch's rows appended is staged
 *      under a name of its own (phase one);
 *   3. one short catalog transaction: a sqlite sink's rows, the checkpoint
 *      record holding the buffer, and the job's counters;
 *   4. a file sink: the staged file is renamed over the table's file
 *      (phase two; redone on restore when a crash came between 3 and 4).
 * So after any crash the sink holds exactly the rows of the last completed
 * checkpoint, and a restarted job continues from its state: the proxies
 * re-send their unanswered requests under the same ids, which the services
 * answer from their result cache or from the still running original.
 *
 * A plan that aggregates, sorts or has DISTINCT holds state that is not
 * checkpointed: such a job commits once, at its end (a restart starts it
 * over and the sink has nothing of the failed attempt).
 *
 * States (rosql_jobs.state): running; stopping (STOP JOB asked) ->
 * stopped; finished (the input ended); failed (an error of the statement:
 * not restarted).  A job that exits on SIGTERM while still "running" (its
 * coordinator stopped) is resumed by the next coordinator.
 */
#include "runtime/exec/job.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rosql/rosql.h>

#include "catalog/catalog.h"
#include "planner/options.h"
#include "planner/planner.h"
#include "runtime/connectors/connector.h"
#include "runtime/core/clock.h"
#include "runtime/exec/ckpt.h"
#include "runtime/exec/exec.h"
#include "runtime/exec/session_int.h"
#include "service/coordinator.h"
#include "service/frame.h"
#include "service/spawn.h"
#include "sql/parser.h"

#define EPOCH_BYTES (64u << 20)   /* sink rows held before an early checkpoint */
#define PROGRESS_MS 500           /* counters written to the catalog */

static volatile sig_atomic_t g_term;       /* SIGTERM/SIGINT: checkpoint and stop */
static volatile sig_atomic_t g_checkpoint; /* SIGUSR1: checkpoint now */

static void on_term(int sig)
{
    (void)sig;
    g_term = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    g_checkpoint = 1;
}

typedef struct job {
    ros_session *s;
    cat_db *db;
    cat_job *row;
    const cat_table *table;   /* the sink */
    bool file_sink;
    rt_exec_ctx ec;
    rt_op *root;              /* the INSERT's source plan */
    bool checkpointable;
    int64_t interval_ms;
    int keep;                 /* checkpoints kept (checkpoints_kept) */
    FILE *trace;              /* job_output_trace: a line per output batch, or NULL */
    ros_batch epoch;          /* sink rows since the last checkpoint */
    size_t epoch_bytes;
    uint64_t epoch_no;        /* checkpoints taken (names a file sink's staged file) */
    int64_t rows_read_base;   /* counters restored from the checkpoint */
    int64_t rows_written;
    int64_t recomputed_base;
    int64_t last_checkpoint;
    bool restored;            /* started from a checkpoint */
} job;

/* ---------------------------------------------------------------- */
/* File sinks: two-phase commit */

/* "PATH.rosql-job-ID-EPOCH": the staged copy of a file sink. */
static void staged_path(const job *j, const char *path, uint64_t epoch, char *out, size_t n)
{
    snprintf(out, n, "%s.rosql-job-%lld-%llu", path, (long long)j->row->id, (unsigned long long)epoch);
}

static int copy_file(const char *from, int to, ros_error *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        if (errno == ENOENT)
            return 0; /* nothing written yet */
        return ros_error_set(err, ROS_ERR_IO, "could not open file \"%s\": %s", from, strerror(errno));
    }
    char buf[1 << 16];
    ssize_t k;
    int rc = 0;
    while ((k = read(in, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; off < k;) {
            ssize_t w = write(to, buf + off, (size_t)(k - off));
            if (w < 0) {
                rc = ros_error_set(err, ROS_ERR_IO, "could not write a staged copy of \"%s\": %s", from,
                                   strerror(errno));
                break;
            }
            off += w;
        }
    if (k < 0)
        rc = ros_error_set(err, ROS_ERR_IO, "could not read file \"%s\": %s", from, strerror(errno));
    close(in);
    return rc;
}

/* Phase one: stages the table's file plus the epoch's rows as `staged`. */
static int file_stage(job *j, const char *staged, ros_error *err)
{
    const char *path = cat_options_get(&j->table->options, "path");
    int fd = open(staged, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return ros_error_set(err, ROS_ERR_IO, "could not create file \"%s\": %s", staged, strerror(errno));
    int rc = copy_file(path, fd, err);
    if (rc == 0 && fsync(fd) < 0)
        rc = ros_error_set(err, ROS_ERR_IO, "could not sync file \"%s\": %s", staged, strerror(errno));
    close(fd);
    if (rc < 0 || j->epoch.nrows == 0)
        return rc;
    /* the connector appends the rows to the staged copy */
    cat_table t = *j->table;
    cat_options o = {0};
    for (int i = 0; i < j->table->options.n && rc == 0; i++)
        if (strcmp(j->table->options.items[i].key, "path") != 0 &&
            cat_options_set(&o, j->table->options.items[i].key, j->table->options.items[i].value) < 0)
            rc = ros_error_oom(err);
    if (rc == 0 && cat_options_set(&o, "path", staged) < 0)
        rc = ros_error_oom(err);
    t.options = o;
    rt_sink *sink = rc == 0 ? rt_sink_open(j->db, &t, err) : NULL;
    if (!sink)
        rc = -1;
    if (sink && (sink->ops->write(sink, &j->epoch, err) < 0 || sink->ops->commit(sink, err) < 0))
        rc = -1;
    if (sink)
        sink->ops->close(sink);
    cat_options_free(&o);
    if (rc == 0 && (fd = open(staged, O_RDONLY | O_CLOEXEC)) >= 0) {
        fsync(fd);
        close(fd);
    }
    return rc;
}

/* Phase two: the staged file becomes the table's file. */
static int file_publish(job *j, const char *staged, ros_error *err)
{
    const char *path = cat_options_get(&j->table->options, "path");
    if (rename(staged, path) < 0)
        return ros_error_set(err, ROS_ERR_IO, "could not rename \"%s\" to \"%s\": %s", staged, path, strerror(errno));
    return 0;
}

/* On restore: finishes the last checkpoint's phase two if a crash came
 * before it, and removes staged files of checkpoints that never completed. */
static void file_recover(job *j, uint64_t committed_epoch, bool pending)
{
    const char *path = cat_options_get(&j->table->options, "path");
    char staged[PATH_MAX + 64];
    if (pending) {
        staged_path(j, path, committed_epoch, staged, sizeof staged);
        struct stat st;
        ros_error e = {0};
        if (stat(staged, &st) == 0 && file_publish(j, staged, &e) < 0)
            fprintf(stderr, "rosd job: %s\n", e.message);
    }
    for (uint64_t k = committed_epoch + 1; k <= committed_epoch + 2; k++) {
        staged_path(j, path, k, staged, sizeof staged);
        unlink(staged);
    }
}

/* ---------------------------------------------------------------- */
/* Checkpoints */

static void progress_row(job *j, cat_job *p)
{
    rt_proxy_stats ps;
    rt_op_proxy_stats(j->root, &ps);
    memset(p, 0, sizeof *p);
    p->id = j->row->id;
    p->pid = (int)getpid();
    p->rows_read = j->rows_read_base + j->ec.rows_read;
    p->rows_written = j->rows_written;
    p->last_checkpoint = j->last_checkpoint;
    p->recomputed = j->recomputed_base + ps.recomputed;
}

static int checkpoint(job *j, ros_error *err)
{
    struct timespec ts0;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    rt_wbuf w = {0};
    rt_proxy_stats ps;
    rt_op_proxy_stats(j->root, &ps);
    uint64_t epoch = j->epoch_no + 1;
    int64_t written = j->rows_written + j->epoch.nrows;
    rt_w_u32(&w, RT_CKPT_MAGIC);
    rt_w_u32(&w, RT_CKPT_VERSION);
    rt_w_u64(&w, epoch);
    rt_w_u8(&w, j->file_sink);
    rt_w_i64(&w, j->rows_read_base + j->ec.rows_read);
    rt_w_i64(&w, written);
    rt_w_i64(&w, j->recomputed_base + ps.recomputed);
    if (rt_op_snapshot(j->root, &w, err) < 0) {
        rt_wbuf_free(&w);
        return -1;
    }
    if (w.oom) {
        rt_wbuf_free(&w);
        return ros_error_oom(err);
    }
    rt_op_proxy_stats(j->root, &ps); /* the snapshot sent what was accumulating */
    char staged[PATH_MAX + 64] = "";
    if (j->file_sink) {
        staged_path(j, cat_options_get(&j->table->options, "path"), epoch, staged, sizeof staged);
        if (file_stage(j, staged, err) < 0) {
            unlink(staged);
            rt_wbuf_free(&w);
            return -1;
        }
    }
    int rc = -1;
    if (cat_begin(j->db, err) == 0) {
        rc = 0;
        if (!j->file_sink && j->epoch.nrows) {
            rt_sink *sink = rt_sink_open(j->db, j->table, err);
            if (!sink || sink->ops->write(sink, &j->epoch, err) < 0 || sink->ops->commit(sink, err) < 0)
                rc = -1;
            if (sink)
                sink->ops->close(sink);
        }
        cat_checkpoint c = {0};
        c.job_id = j->row->id;
        struct timespec ts1;
        clock_gettime(CLOCK_MONOTONIC, &ts1);
        c.duration_ms = (double)(ts1.tv_sec - ts0.tv_sec) * 1e3 + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e6;
        c.bytes = (int64_t)w.len;
        c.inflight = ps.inflight;
        c.state = w.p;
        c.state_len = w.len;
        if (rc == 0 && cat_checkpoint_add(j->db, &c, j->keep, err) < 0)
            rc = -1;
        if (rc == 0) {
            cat_job p;
            progress_row(j, &p);
            p.rows_written = written;
            p.last_checkpoint = c.id;
            rc = cat_job_progress(j->db, &p, err);
        }
        if (rc == 0)
            rc = cat_commit(j->db, err);
        else
            cat_rollback(j->db);
        if (rc == 0)
            j->last_checkpoint = c.id;
    }
    rt_wbuf_free(&w);
    if (rc < 0) {
        if (staged[0])
            unlink(staged);
        return -1;
    }
    /* completed: the epoch's rows are the sink's */
    if (staged[0] && file_publish(j, staged, err) < 0)
        return -1; /* redone by the restore */
    j->epoch_no = epoch;
    j->rows_written = written;
    svc_batch_free(&j->epoch);
    j->epoch_bytes = 0;
    return 0;
}

/* Puts the job back into the state of its latest checkpoint, if any. */
static int restore(job *j, ros_error *err)
{
    cat_checkpoint *c = cat_checkpoint_latest(j->db, j->row->id, err);
    if (!c)
        return err->set ? -1 : 0;
    rt_rbuf r = {c->state, c->state_len, 0, false};
    int rc = 0;
    uint32_t magic = c->state ? rt_r_u32(&r) : 0;
    uint32_t version = magic == RT_CKPT_MAGIC ? rt_r_u32(&r) : 0;
    if (magic != RT_CKPT_MAGIC || r.bad) {
        rc = ros_error_set(err, ROS_ERR_DATA_CORRUPTED, "checkpoint %lld of job %lld is not readable",
                           (long long)c->id, (long long)j->row->id);
    } else if (version != RT_CKPT_VERSION) {
        rc = ros_error_set(err, ROS_ERR_NOT_SUPPORTED,
                           "checkpoint %lld of job %lld has format version %u; this build reads version %u",
                           (long long)c->id, (long long)j->row->id, version, RT_CKPT_VERSION);
        ros_error_detail(err, "The job cannot resume from it: submit the statement again as a new job.");
    } else {
        j->epoch_no = rt_r_u64(&r);
        bool file_sink = rt_r_u8(&r) != 0;
        j->rows_read_base = rt_r_i64(&r);
        j->rows_written = rt_r_i64(&r);
        j->recomputed_base = rt_r_i64(&r);
        j->last_checkpoint = c->id;
        j->restored = true;
        if (file_sink && j->file_sink)
            file_recover(j, j->epoch_no, true);
        rc = rt_op_restore(j->root, &r, err);
        if (rc == 0) {
            rt_proxy_stats ps;
            rt_op_proxy_stats(j->root, &ps);
            fprintf(stderr,
                    "rosd job %lld: restored checkpoint %lld (attempt %u): %lld rows read, %lld written; "
                    "%lld requests re-sent under their ids, %lld answered results not yet emitted\n",
                    (long long)j->row->id, (long long)c->id, j->ec.attempt, (long long)j->rows_read_base,
                    (long long)j->rows_written, (long long)ps.inflight, (long long)ps.answered);
        }
    }
    cat_checkpoint_free(c);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Running */

#define RUN_CHECKPOINT_FAILED (-2)

/* Applies the job's settings ("k=v,k=v") to its session; cwd is where
 * relative file paths were meant. */
static int apply_options(job *j, ros_error *err)
{
    const char *o = j->row->options;
    while (o && *o) {
        const char *comma = strchr(o, ',');
        size_t len = comma ? (size_t)(comma - o) : strlen(o);
        char item[PATH_MAX + 64];
        snprintf(item, sizeof item, "%.*s", (int)len, o);
        char *eq = strchr(item, '=');
        if (eq) {
            *eq = '\0';
            const char *k = item, *v = eq + 1;
            if (strcmp(k, "cwd") == 0) {
                if (chdir(v) < 0)
                    return ros_error_set(err, ROS_ERR_IO, "could not change to directory \"%s\": %s", v,
                                         strerror(errno));
            } else {
                char sql[PATH_MAX + 128];
                snprintf(sql, sizeof sql, "SET %s = '%s'", k, v);
                if (ros_session_execute(j->s, sql, NULL, err) < 0)
                    return -1;
            }
        }
        o = comma ? comma + 1 : NULL;
    }
    return 0;
}

static void job_failed(job *j, const ros_error *e)
{
    char msg[sizeof e->message + sizeof e->detail + 8];
    snprintf(msg, sizeof msg, "%s%s%s", e->message, e->detail[0] ? ": " : "", e->detail);
    ros_error ignore = {0};
    cat_job_transition(j->db, j->row->id, "running,stopping", "failed", msg, &ignore);
    fprintf(stderr, "rosd job %lld: failed: %s\n", (long long)j->row->id, msg);
}

static int run(job *j, ros_error *err)
{
    int64_t next_ckpt = ros_mono_ms() + j->interval_ms, next_progress = 0;
    bool first = true;
    for (;;) {
        ros_batch *b = NULL;
        int rc = rt_op_next(j->root, &b, err);
        if (rc < 0)
            return -1;
        if (rc == 1 && first && b->nrows) {
            first = false;
            /* when the pipeline flows again (the recovery benchmark reads it) */
            fprintf(stderr, "rosd job %lld: first output row%s at unix ms %lld\n", (long long)j->row->id,
                    j->restored ? " after the restore" : "", (long long)ros_unix_ms());
        }
        if (rc == 1 && b->nrows && j->trace) {
            fprintf(j->trace, "%lld %u\n", (long long)ros_unix_ms(), b->nrows);
            fflush(j->trace);
        }
        if (rc == 1 && b->nrows) {
            if (rt_check_not_null(j->table, b, err) < 0 || svc_batch_append(&j->epoch, b, err) < 0)
                return -1;
            j->epoch_bytes += svc_frame_batch_size(b);
        }
        int64_t now = ros_mono_ms();
        if (rc == 0) {
            /* the input ended: the last rows and the end, in one checkpoint */
            if (checkpoint(j, err) < 0)
                return RUN_CHECKPOINT_FAILED;
            ros_error ignore = {0};
            cat_job_transition(j->db, j->row->id, "running,stopping", "finished", NULL, &ignore);
            return 0;
        }
        if (j->checkpointable &&
            (g_term || g_checkpoint || now >= next_ckpt || j->epoch_bytes >= EPOCH_BYTES)) {
            g_checkpoint = 0;
            if (checkpoint(j, err) < 0)
                return RUN_CHECKPOINT_FAILED;
            next_ckpt = ros_mono_ms() + j->interval_ms;
        }
        if (g_term)
            return 1;
        if (now >= next_progress) {
            cat_job p;
            progress_row(j, &p);
            ros_error ignore = {0};
            cat_job_progress(j->db, &p, &ignore); /* best effort: busy is fine */
            next_progress = now + PROGRESS_MS;
        }
    }
}

int rt_job_main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: rosd job DBFILE JOB_ID\n");
        return 2;
    }
    char *end;
    long long id = strtoll(argv[2], &end, 10);
    if (*end || id <= 0) {
        fprintf(stderr, "rosd job: invalid job id \"%s\"\n", argv[2]);
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    /* one process per job, whatever starts it (a coordinator racing another) */
    char lockpath[PATH_MAX + 64];
    if (svc_run_dir(argv[1], lockpath, PATH_MAX) < 0 || svc_mkdir_p(lockpath) < 0) {
        fprintf(stderr, "rosd job %lld: cannot create the run directory of %s\n", id, argv[1]);
        return 1;
    }
    snprintf(lockpath + strlen(lockpath), 64, "/job-%lld.lock", id);
    int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "rosd job %lld: another process runs this job\n", id);
        return 0;
    }
    ros_error err = {0};
    job j;
    memset(&j, 0, sizeof j);
    ros_arena arena;
    ros_arena_init(&arena);
    plan_node *plan = NULL;
    int status = 1;
    if (!(j.s = ros_session_open(argv[1], &err)))
        goto out;
    j.db = j.s->db;
    if (!(j.row = cat_job_get(j.db, id, &err))) {
        if (!err.set)
            ros_error_set(&err, ROS_ERR_UNDEFINED_OBJECT, "job %lld does not exist", id);
        goto out;
    }
    if (strcmp(j.row->state, "running") != 0) {
        /* stopped meanwhile (STOP JOB before we started) */
        cat_job_transition(j.db, id, "stopping", "stopped", NULL, &err);
        status = 0;
        goto out;
    }
    if (apply_options(&j, &err) < 0)
        goto fail;
    sql_stmt *st = sql_parse(j.row->sql, &arena, &err);
    if (!st)
        goto fail;
    if (st->kind != SQL_S_INSERT) {
        ros_error_set(&err, ROS_ERR_NOT_SUPPORTED, "a job runs an INSERT, not this statement");
        goto fail;
    }
    plan_ctx pc;
    rt_plan_ctx_init(j.s, &pc, &arena, j.row->sql, &err);
    plan = plan_insert(&pc, st->u.insert.table, st->u.insert.table_location, &st->u.insert.columns,
                       st->u.insert.source);
    plan_node *rw = plan ? rt_rewrite(j.s, &arena, plan, &err) : NULL;
    if (!rw || rt_services_prepare(j.s, rw, &err) < 0)
        goto fail;
    j.table = rw->u.insert.table;
    j.file_sink = strcmp(j.table->connector, "file") == 0;
    const char *why = NULL;
    j.checkpointable = rt_plan_checkpointable(rw->child, &why);
    j.interval_ms = plan_parse_duration_ms(rt_session_setting(j.s, "checkpoint_interval"));
    if (j.interval_ms <= 0)
        j.interval_ms = 10000;
    j.keep = atoi(rt_session_setting(j.s, "checkpoints_kept"));
    const char *trace = rt_session_setting(j.s, "job_output_trace");
    if (trace && trace[0] && !(j.trace = fopen(trace, "a")))
        fprintf(stderr, "rosd job %lld: cannot open job_output_trace \"%s\": %s\n", id, trace, strerror(errno));
    if (j.keep < 1)
        j.keep = 5;
    j.ec.db = j.db;
    long bs = atol(rt_session_setting(j.s, "batch_size"));
    j.ec.batch_size = bs > 0 ? (uint32_t)bs : RT_BATCH_SIZE;
    j.ec.job_id = (uint64_t)id;
    j.ec.attempt = (uint32_t)j.row->restarts;
    if (!(j.root = rt_op_build(&j.ec, rw->child, &err)))
        goto fail;
    if (j.checkpointable && restore(&j, &err) < 0)
        goto fail;
    {
        cat_job p;
        progress_row(&j, &p);
        cat_job_progress(j.db, &p, &err);
        ros_error_clear(&err);
    }
    int rc = run(&j, &err);
    if (rc == RUN_CHECKPOINT_FAILED) {
        /* the catalog or a file was not writable: start over from the last
         * checkpoint (the coordinator restarts the job with backoff) */
        fprintf(stderr, "rosd job %lld: checkpoint failed: %s\n", id, err.message);
        status = 3;
        goto out;
    }
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        /* SIGTERM: STOP JOB asked (stopping -> stopped), or our coordinator
         * is going away and the next one resumes us (running stays) */
        ros_error ignore = {0};
        cat_job_transition(j.db, id, "stopping", "stopped", NULL, &ignore);
        if (!j.checkpointable)
            fprintf(stderr, "rosd job %lld: stopped without a checkpoint (%s): it will start over\n", id, why);
    }
    status = 0;
    goto out;
fail:
    if (j.db && j.row)
        job_failed(&j, &err);
    else
        fprintf(stderr, "rosd job %lld: %s\n", id, err.message);
out:
    if (status != 0 && !j.row)
        fprintf(stderr, "rosd job %lld: %s\n", id, err.message);
    rt_op_free(j.root);
    if (j.trace)
        fclose(j.trace);
    svc_batch_free(&j.epoch);
    if (plan)
        plan_free(plan);
    cat_job_free(j.row);
    if (j.s)
        ros_session_close(j.s);
    ros_arena_free(&arena);
    close(lock); /* the lock file stays: removing it would race a successor */
    return status;
}
