/*
 * coordinator.c
 *    `rosd coordinator DB`: supervises the service instances of one
 *    database.
 *
 * One process per database (a lock file in the run directory decides),
 * started by the first rosql that needs it and exiting on its own when the
 * database has no service left to run.  It is single-threaded: one loop
 * that, every few tens of milliseconds,
 *   - answers control requests (service/README.md, "Discovery and control");
 *   - reaps exited workers and restarts crashed ones with backoff (100 ms
 *     doubling up to 5 s); CRASH_LOOP_LIMIT failures in a row without
 *     becoming ready mark the instance failed, and a service whose instances
 *     all failed is marked failed with the reason (the worker's last log
 *     line, or how it died);
 *   - reconciles the catalog's services with the running instances: starts
 *     missing ones; scaled in ones are withdrawn from routing and held until
 *     every running job checkpointed (inst_withdraw), then drained
 *     (SIGTERM), as are the instances of dropped services at once;
 *   - pings every instance asynchronously (PING/PONG) for its state and
 *     counters, writes them to the catalog (so SHOW SERVICES in any process
 *     sees them), and pushes the ready set of each service to clients on
 *     every change and once a second.
 * Instances are started in their own session with their output in
 * DB.run/SERVICE-N.log.  A restarted coordinator adopts instances that are
 * still alive (their pid and endpoint are in the catalog) instead of
 * starting new ones, so a coordinator crash reloads no model.
 *
 * Jobs (runtime/exec/job.c) are supervised the same way: a job in state
 * running gets a `rosd job DB ID` process (output in DB.run/job-ID.log); one
 * that dies while running is restarted from its latest checkpoint (at once
 * the first time, then with backoff), and CRASH_LOOP_LIMIT deaths without a
 * new checkpoint mark it failed.  A job in state stopping gets SIGTERM (a
 * final checkpoint).  Live job processes are adopted like instances.  The
 * coordinator stays while a job runs; stopping, it sends its jobs SIGTERM,
 * leaving them "running" for the next coordinator to resume.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "catalog/catalog.h"
#include "runtime/core/clock.h"
#include "runtime/core/strbuf.h"
#include "service/coordinator.h"
#include "service/frame.h"
#include "service/handler.h"
#include "service/spawn.h"

#define TICK_MS 20
#define RECONCILE_MS 250
#define PING_MS 200
#define PING_STARTING_MS 25 /* a starting instance: joins the routing this soon after it is ready */
#define PING_TIMEOUT_MS 1000
#define STATE_WRITE_MS 500
#define PUBLISH_MS 1000
#define IDLE_EXIT_MS 2000
#define DRAIN_TIMEOUT_MS 30000
#define WITHDRAW_GRACE_MS 300    /* a withdrawal push reaches every client within this */
#define HOLD_MAX_MS 60000        /* a withdrawn instance waits this long at most for
                                    the jobs' next checkpoints */
#define CRASH_LOOP_LIMIT 5
#define BACKOFF_MAX_MS 5000
#define REMOTE_PING_FAILURES 3
#define SVC_DEFAULT_CACHE_ENTRIES "4096" /* cache_entries when the service does not say */

typedef enum inst_state { I_BACKOFF, I_STARTING, I_READY, I_DRAINING, I_FAILED } inst_state;

static const char *const inst_state_names[] = {"starting", "starting", "ready", "draining", "failed"};

typedef struct inst {
    char service[128];
    int64_t service_id;
    int idx;
    pid_t pid;          /* 0: no process */
    bool child;         /* started by this coordinator (waitpid), else adopted or remote */
    bool remote;        /* registered by hand (rosd worker --register) */
    char url[320];
    inst_state st;
    int fails;          /* failures in a row without becoming ready */
    bool drained;       /* stopped by a drain (scale-in, DROP), not a crash */
    int64_t restarts;
    int64_t next_start; /* I_BACKOFF: start at (ms) */
    int64_t drain_deadline;
    /* scale-in: I_DRAINING and !termed is a withdrawn instance, out of
     * routing and held (alive, cache warm) until the jobs checkpointed */
    bool termed;        /* SIGTERM sent (draining for good) */
    int64_t held_at;    /* withdrawn at (ms) */
    bool idle_seen;     /* a pong after the withdrawal said nothing in flight or queued */
    int64_t hold_ckpt;  /* idle_seen: newest checkpoint id then; released once every
                           running job has a newer one */
    int64_t pong_at;    /* last pong (ms) */
    char last_error[512];
    /* ping */
    nng_socket sock;
    bool sock_open;
    nng_aio *aio;
    _Atomic int aio_done; /* set by the aio callback (an nng thread) */
    int ping_phase;     /* 0 idle, 1 sending, 2 receiving */
    int64_t next_ping;
    int ping_failures;
    svc_status status;
    bool dirty;         /* catalog row needs writing */
    int written_st;     /* state last written to the catalog, -1 none */
    struct inst *next;
} inst;

typedef struct svc_mem {
    char name[128];
    int64_t id;
    bool present;       /* in the catalog at the last reconcile */
    bool failed;
    char published[4096];
    uint64_t version;
    char state[32];     /* last state written */
    int desired;        /* desired instances seen at the last reconcile, -1 none */
    int64_t over_since; /* autoscaling: load above target since (ms), 0 not */
    int64_t under_since;/* autoscaling: load below half the target since (ms), 0 not */
    struct svc_mem *next;
} svc_mem;

/* A job the coordinator supervises. */
typedef struct jproc {
    int64_t id;
    pid_t pid;          /* 0: no process */
    bool child;         /* started by us (waitpid), else adopted */
    bool termed;        /* SIGTERM sent (stopping) */
    int fails;          /* deaths in a row without a new checkpoint */
    int64_t next_start; /* no process: start at (ms) */
    int64_t ckpt_seen;  /* last checkpoint id seen */
    struct jproc *next;
} jproc;

typedef struct coord {
    char db_path[PATH_MAX];
    char run_dir[PATH_MAX];
    char rosd[PATH_MAX];
    cat_db *db;
    nng_socket ctl, pub;
    inst *insts;
    svc_mem *svcs;
    jproc *jobs;
    uint64_t version;
    int64_t last_publish, last_write, last_reconcile, idle_since;
    bool stop;
} coord;

static volatile sig_atomic_t g_term;

static void on_term(int sig) { g_term = 1; }

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
    fprintf(stderr, "%s rosd coordinator: ", ts);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* ------------------------------------------------------------------ */
/* Services in memory */

static svc_mem *svc_find(coord *c, const char *name)
{
    for (svc_mem *s = c->svcs; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static svc_mem *svc_get(coord *c, const char *name)
{
    svc_mem *s = svc_find(c, name);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->desired = -1;
    s->next = c->svcs;
    c->svcs = s;
    return s;
}

/* Appends to the service's log (SHOW SERVICE EVENTS) and to coord.log. */
static void event(coord *c, const char *service, const char *what, int instances, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void event(coord *c, const char *service, const char *what, int instances, const char *fmt, ...)
{
    char reason[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    logf_("%s: %s (%s)", service, what, reason);
    ros_error err = {0};
    if (cat_service_event_add(c->db, service, what, instances, reason, &err) < 0)
        logf_("could not record event: %s", err.message);
}

/* The membership line of service name: its ready instances as N=URL (the
 * instance number keeps a client's sticky routing right across restarts),
 * and its withdrawn instances still held as N~URL (standby: clients route
 * nothing new to them, only a restored request that prefers its old
 * instance, whose cached answer it then gets). */
static bool inst_held(const inst *i)
{
    return i->st == I_DRAINING && !i->termed && i->pid > 0 && !i->remote;
}

static void members_line(coord *c, const char *name, uint64_t version, char *out, size_t n)
{
    ros_strbuf sb;
    ros_strbuf_init(&sb);
    ros_strbuf_appendf(&sb, "members %s %llu", name, (unsigned long long)version);
    /* by idx, so the line is stable */
    for (int idx = -1;;) {
        inst *best = NULL;
        for (inst *i = c->insts; i; i = i->next)
            if ((i->st == I_READY || inst_held(i)) && strcmp(i->service, name) == 0 && i->idx > idx &&
                (!best || i->idx < best->idx))
                best = i;
        if (!best)
            break;
        ros_strbuf_appendf(&sb, " %d%c%s", best->idx, best->st == I_READY ? '=' : '~', best->url);
        idx = best->idx;
    }
    if (snprintf(out, n, "%s", sb.data ? sb.data : "") >= (int)n)
        logf_("membership of %s is too long to publish in full", name);
    ros_strbuf_free(&sb);
}

/* Pushes the membership of every service whose ready set changed (or all of
 * them when force). */
static void publish(coord *c, bool force)
{
    for (svc_mem *s = c->svcs; s; s = s->next) {
        char line[4096];
        members_line(c, s->name, 0, line, sizeof line);
        /* compare without the version field */
        if (strcmp(line, s->published) != 0) {
            snprintf(s->published, sizeof s->published, "%s", line);
            s->version = ++c->version;
            force = true;
        }
    }
    if (!force)
        return;
    for (svc_mem *s = c->svcs; s; s = s->next) {
        char line[4096];
        members_line(c, s->name, s->version, line, sizeof line);
        nng_send(c->pub, line, strlen(line) + 1, NNG_FLAG_NONBLOCK);
    }
    c->last_publish = ros_mono_ms();
}

/* ------------------------------------------------------------------ */
/* Instances */

static inst *inst_find(coord *c, const char *service, int idx)
{
    for (inst *i = c->insts; i; i = i->next)
        if (i->idx == idx && strcmp(i->service, service) == 0)
            return i;
    return NULL;
}

static void inst_close_sock(inst *i)
{
    if (i->aio) {
        nng_aio_stop(i->aio);
        nng_aio_free(i->aio);
        i->aio = NULL;
    }
    if (i->sock_open) {
        nng_close(i->sock);
        i->sock_open = false;
    }
    i->ping_phase = 0;
}

static void inst_free(coord *c, inst *dead)
{
    for (inst **p = &c->insts; *p; p = &(*p)->next) {
        if (*p == dead) {
            *p = dead->next;
            break;
        }
    }
    inst_close_sock(dead);
    free(dead);
}

static inst *inst_new(coord *c, const char *service, int64_t service_id, int idx)
{
    inst *i = calloc(1, sizeof *i);
    if (!i)
        return NULL;
    snprintf(i->service, sizeof i->service, "%s", service);
    i->service_id = service_id;
    i->idx = idx;
    i->st = I_BACKOFF;
    i->dirty = true;
    i->written_st = -1;
    i->next = c->insts;
    c->insts = i;
    return i;
}

/* Last non-empty line of an instance's log: a worker's start error. */
static void log_tail(const char *path, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    fseek(f, size > 8192 ? size - 8192 : 0, SEEK_SET);
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\n");
        line[len] = '\0';
        if (len && n) {
            size_t k = len < n - 1 ? len : n - 1;
            memcpy(out, line, k);
            out[k] = '\0';
        }
    }
    fclose(f);
}

static void inst_log_path(coord *c, const inst *i, char *out, size_t n)
{
    if (snprintf(out, n, "%s/%s-%d.log", c->run_dir, i->service, i->idx) >= (int)n)
        out[0] = '\0';
}

static const char *opt(const cat_service *s, const char *key) { return cat_options_get(&s->options, key); }

/* The device of instance idx: -1 CPU, else a GPU ordinal. */
static int pick_device(const cat_service *s, int idx)
{
    const char *d = opt(s, "device");
    int ngpu = svc_gpu_count();
    if (!d || strcmp(d, "cpu") == 0 || ngpu <= 0)
        return -1;
    return idx % ngpu; /* 'gpu' and 'auto' with a GPU: round robin */
}

static void inst_url(coord *c, const cat_service *s, int idx, char *out, size_t n)
{
    const char *ep = opt(s, "endpoint");
    if (ep && strncmp(ep, "tcp://", 6) == 0) {
        /* tcp://host:port: instance idx listens on port + idx */
        const char *colon = strrchr(ep + 6, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 0;
        snprintf(out, n, "%.*s:%ld", (int)(colon ? colon - ep : (long)strlen(ep)), ep, port + idx);
        return;
    }
    if (snprintf(out, n, "ipc://%s/%s-%d.ipc", c->run_dir, s->name, idx) >= (int)n)
        out[0] = '\0';
}

static int inst_start(coord *c, inst *i, const cat_service *s)
{
    inst_url(c, s, i->idx, i->url, sizeof i->url);
    if (strncmp(i->url, "ipc://", 6) == 0)
        unlink(i->url + 6); /* a stale socket of a dead instance */
    char *opts = cat_options_to_text(&s->options);
    char dev[16], log[PATH_MAX + 64];
    snprintf(dev, sizeof dev, "%d", pick_device(s, i->idx));
    inst_log_path(c, i, log, sizeof log);
    const char *argv[32];
    int k = 0;
    argv[k++] = c->rosd;
    argv[k++] = "worker";
    argv[k++] = "--handler";
    argv[k++] = s->handler;
    argv[k++] = "--listen";
    argv[k++] = i->url;
    argv[k++] = "--options";
    argv[k++] = opts ? opts : "";
    argv[k++] = "--device";
    argv[k++] = dev;
    static const char *const flags[][2] = {{"max_batch", "--max-batch"},         {"max_delay_ms", "--max-delay-ms"},
                                           {"max_queue", "--max-queue"},         {"cache_entries", "--cache-entries"},
                                           {"max_frame_bytes", "--max-frame"}};
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        const char *v = opt(s, flags[f][0]);
        if (v) {
            argv[k++] = flags[f][1];
            argv[k++] = v;
        }
    }
    if (!opt(s, "cache_entries")) {
        /* a restored job re-asks its in-flight requests: answer them from
         * the cache rather than run the model again */
        argv[k++] = "--cache-entries";
        argv[k++] = SVC_DEFAULT_CACHE_ENTRIES;
    }
    argv[k] = NULL;
    pid_t pid = svc_spawn((char *const *)argv, log, false);
    free(opts);
    if (pid < 0) {
        snprintf(i->last_error, sizeof i->last_error, "could not start rosd: %s", strerror(errno));
        return -1;
    }
    logf_("started %s[%d] pid %d on %s", i->service, i->idx, (int)pid, i->url);
    i->pid = pid;
    i->child = true;
    i->st = I_STARTING;
    i->ping_failures = 0;
    i->next_ping = ros_mono_ms() + 20;
    i->termed = false;
    memset(&i->status, 0, sizeof i->status);
    i->dirty = true;
    inst_close_sock(i);
    return 0;
}

/* Drains i now: SIGTERM (the worker takes no new request, finishes those it
 * has, exits).  A held instance is released. */
static void inst_drain(inst *i, const char *why)
{
    if ((i->st == I_DRAINING && i->termed) || (i->pid <= 0 && i->st == I_FAILED))
        return;
    logf_("draining %s[%d] (%s)", i->service, i->idx, why);
    if (i->pid > 0 && !i->remote)
        kill(i->pid, SIGTERM);
    i->st = i->pid > 0 ? I_DRAINING : I_FAILED;
    i->termed = true;
    i->drain_deadline = ros_mono_ms() + DRAIN_TIMEOUT_MS;
    i->dirty = true;
}

/*
 * Scale-in of i: withdrawn from routing (the next push lists it as standby),
 * it finishes what it has in flight, and is held, alive with its result
 * cache, until every running job has completed a checkpoint taken after it
 * went idle (inst_hold_check), so that no job can restore requests whose
 * answers only it has; then drained.  Remote instances and instances
 * without a process are drained at once.
 */
static void inst_withdraw(coord *c, inst *i, const char *why)
{
    if (i->st == I_DRAINING)
        return;
    if (i->remote || i->pid <= 0 || i->st != I_READY) {
        inst_drain(i, why);
        return;
    }
    i->st = I_DRAINING;
    i->termed = false;
    i->held_at = ros_mono_ms();
    i->idle_seen = false;
    i->hold_ckpt = 0;
    i->dirty = true;
    event(c, i->service, "instance_withdrawn", -1,
          "instance %d out of routing (%s); held until the running jobs' next checkpoints", i->idx, why);
}

/* Releases withdrawn instances whose hold is over (inst_withdraw). */
static void inst_hold_check(coord *c)
{
    bool any = false;
    for (inst *i = c->insts; i && !any; i = i->next)
        any = inst_held(i);
    if (!any)
        return;
    ros_error err = {0};
    cat_job **jl = NULL;
    int n = 0;
    if (cat_job_list(c->db, &jl, &n, &err) < 0)
        return;
    int64_t newest = 0, oldest_running = INT64_MAX;
    int running = 0;
    for (int k = 0; k < n; k++) {
        if (jl[k]->last_checkpoint > newest)
            newest = jl[k]->last_checkpoint;
        if (strcmp(jl[k]->state, "running") == 0) {
            running++;
            if (jl[k]->last_checkpoint < oldest_running)
                oldest_running = jl[k]->last_checkpoint;
        }
    }
    CAT_FREE_LIST(jl, n, cat_job_free);
    int64_t now = ros_mono_ms();
    for (inst *i = c->insts; i; i = i->next) {
        if (!inst_held(i))
            continue;
        /* idle: a pong after every client applied the withdrawal */
        if (!i->idle_seen && i->pong_at > i->held_at + WITHDRAW_GRACE_MS && i->status.inflight == 0 &&
            i->status.queue_depth == 0) {
            i->idle_seen = true;
            i->hold_ckpt = newest;
        }
        char why[200];
        if (running == 0 && i->idle_seen)
            snprintf(why, sizeof why, "no running job, nothing in flight");
        else if (running > 0 && i->idle_seen && oldest_running > i->hold_ckpt)
            snprintf(why, sizeof why, "%d running job%s checkpointed after it went idle (checkpoint > %lld)",
                     running, running == 1 ? "" : "s", (long long)i->hold_ckpt);
        else if (now - i->held_at > HOLD_MAX_MS)
            snprintf(why, sizeof why, "held %d s without every running job checkpointing: released anyway",
                     HOLD_MAX_MS / 1000);
        else
            continue;
        event(c, i->service, "instance_released", -1, "instance %d released: %s", i->idx, why);
        inst_drain(i, "released");
    }
}

/* The process of i ended (status from waitpid, or -1 when not known). */
static void inst_exited(coord *c, inst *i, int status)
{
    char reason[512] = "";
    if (status >= 0 && WIFSIGNALED(status))
        snprintf(reason, sizeof reason, "killed by signal %d", WTERMSIG(status));
    else if (status >= 0 && WIFEXITED(status))
        snprintf(reason, sizeof reason, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(reason, sizeof reason, "process %d is gone", (int)i->pid);
    bool was_draining = i->st == I_DRAINING;
    i->pid = 0;
    inst_close_sock(i);
    i->dirty = true;
    if (was_draining) {
        event(c, i->service, "instance_stopped", -1, "instance %d stopped (%s)", i->idx, reason);
        i->st = I_FAILED; /* removed by reconcile: no longer wanted */
        i->fails = CRASH_LOOP_LIMIT;
        i->drained = true;
        snprintf(i->last_error, sizeof i->last_error, "stopped");
        return;
    }
    char log[PATH_MAX + 64], tail[400];
    inst_log_path(c, i, log, sizeof log);
    log_tail(log, tail, sizeof tail);
    char why[sizeof i->last_error + 8];
    if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0 && tail[0])
        snprintf(why, sizeof why, "%.100s: %.390s", reason, tail);
    else
        snprintf(why, sizeof why, "%.500s", reason);
    memcpy(i->last_error, why, sizeof i->last_error - 1);
    i->last_error[sizeof i->last_error - 1] = '\0';
    i->restarts++;
    i->fails++;
    if (i->fails >= CRASH_LOOP_LIMIT) {
        i->st = I_FAILED;
        event(c, i->service, "instance_failed", -1, "instance %d failed %d times in a row, giving up: %s", i->idx,
              i->fails, i->last_error);
        return;
    }
    int64_t delay = 100LL << (i->fails - 1);
    i->st = I_BACKOFF;
    i->next_start = ros_mono_ms() + (delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay);
    event(c, i->service, "instance_restarting", -1, "instance %d: %s; restarting in %lld ms", i->idx, i->last_error,
          (long long)delay);
}

/* Asynchronous PING: one exchange in flight per instance. */
static void ping_done(void *arg) { atomic_store(&((inst *)arg)->aio_done, 1); }

static void inst_ping(coord *c, inst *i)
{
    if (!i->url[0] || (i->pid <= 0 && !i->remote))
        return;
    if (!i->sock_open) {
        if (nng_req0_open(&i->sock) != 0)
            return;
        nng_socket_set_ms(i->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        nng_socket_set_ms(i->sock, NNG_OPT_RECONNMINT, 20);
        nng_socket_set_ms(i->sock, NNG_OPT_RECONNMAXT, 200);
        i->sock_open = true;
        if (nng_dial(i->sock, i->url, NULL, NNG_FLAG_NONBLOCK) != 0 || nng_aio_alloc(&i->aio, ping_done, i) != 0) {
            inst_close_sock(i);
            return;
        }
    }
    int64_t now = ros_mono_ms();
    if (i->ping_phase == 0) {
        if (now < i->next_ping)
            return;
        svc_frame_header h;
        svc_frame_header_init(&h, SVC_KIND_PING, NULL);
        uint8_t *buf;
        size_t len;
        ros_error e = {0};
        nng_msg *m;
        if (svc_frame_encode(&h, NULL, 0, &buf, &len, &e) < 0)
            return;
        if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0) {
            free(buf);
            return;
        }
        free(buf);
        nng_aio_set_msg(i->aio, m);
        nng_aio_set_timeout(i->aio, PING_TIMEOUT_MS);
        atomic_store(&i->aio_done, 0);
        nng_send_aio(i->sock, i->aio);
        i->ping_phase = 1;
        return;
    }
    if (!atomic_load(&i->aio_done))
        return;
    int rv = nng_aio_result(i->aio);
    if (i->ping_phase == 1) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(i->aio));
            goto failed;
        }
        nng_aio_set_timeout(i->aio, PING_TIMEOUT_MS);
        atomic_store(&i->aio_done, 0);
        nng_recv_aio(i->sock, i->aio);
        i->ping_phase = 2;
        return;
    }
    i->ping_phase = 0;
    i->next_ping = now + (i->st == I_STARTING ? PING_STARTING_MS : PING_MS);
    if (rv != 0)
        goto failed;
    nng_msg *m = nng_aio_get_msg(i->aio);
    svc_frame f;
    ros_error e = {0};
    int drc = svc_frame_decode(nng_msg_body(m), nng_msg_len(m), 0, &f, &e);
    nng_msg_free(m);
    if (drc < 0 || f.h.kind != SVC_KIND_PONG) {
        if (drc == 0)
            svc_frame_clear(&f);
        goto failed;
    }
    i->ping_failures = 0;
    i->pong_at = now;
    if (memcmp(&i->status, &f.status, sizeof f.status) != 0)
        i->dirty = true;
    i->status = f.status;
    if (f.status.state == SVC_STATE_READY && i->st == I_STARTING) {
        event(c, i->service, "instance_ready", -1, "instance %d ready on %s", i->idx, i->url);
        i->st = I_READY;
        i->fails = 0;
        i->dirty = true;
    }
    return;
failed:
    i->ping_phase = 0;
    i->next_ping = now + PING_MS;
    if (++i->ping_failures >= REMOTE_PING_FAILURES && (i->remote || !i->child) && i->st != I_DRAINING) {
        /* a remote or adopted instance we cannot reach: not routable */
        if (i->st == I_READY) {
            event(c, i->service, "instance_unreachable", -1,
                  "instance %d on %s did not answer %d pings: not routed until it answers",
                  i->idx, i->url, i->ping_failures);
            i->st = I_STARTING;
            i->dirty = true;
        }
        if (i->remote && i->ping_failures >= 10 * REMOTE_PING_FAILURES) {
            snprintf(i->last_error, sizeof i->last_error, "unreachable");
            i->st = I_FAILED;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Reconciling with the catalog */

/*
 * Autoscaling of a service with min_instances / max_instances: the measured
 * in-flight and queued requests per ready instance against target_inflight.
 * Above the target for scale_up_delay: more instances (at least one more,
 * enough for the load at the target), never while one is still starting.
 * Below half the target for scale_down_delay: one fewer.  Each decision is
 * an event with its measurement; a failed service is left alone.  With
 * min = max the count is fixed.  Changes s->desired_instances (and the
 * catalog) so the rest of reconcile acts on it at once.
 */
static void autoscale(coord *c, cat_service *s, svc_mem *m, int64_t now)
{
    const char *lo_s = opt(s, "min_instances"), *hi_s = opt(s, "max_instances");
    if ((!lo_s && !hi_s) || m->failed || s->desired_instances <= 0) {
        m->over_since = m->under_since = 0;
        return;
    }
    int lo = lo_s ? atoi(lo_s) : 1, hi = hi_s ? atoi(hi_s) : 1024;
    if (lo < 1)
        lo = 1; /* scale to zero: not yet (nothing would ask for the first instance) */
    if (hi < lo)
        hi = lo;
    const char *t_s = opt(s, "target_inflight");
    double target = t_s ? atof(t_s) : 4;
    int64_t up_ms = opt(s, "scale_up_delay") ? atoll(opt(s, "scale_up_delay")) : 10000;
    int64_t down_ms = opt(s, "scale_down_delay") ? atoll(opt(s, "scale_down_delay")) : 60000;
    int desired = s->desired_instances, want = desired;
    char why[300] = "";
    if (desired < lo || desired > hi) {
        want = desired < lo ? lo : hi;
        snprintf(why, sizeof why, "desired %d outside [%d, %d]", desired, lo, hi);
    } else {
        double load = 0;
        int ready = 0, starting = 0;
        for (inst *i = c->insts; i; i = i->next) {
            if (strcmp(i->service, s->name) != 0 || i->remote)
                continue;
            if (i->st == I_READY) {
                ready++;
                load += (double)i->status.inflight + (double)i->status.queue_depth;
            } else if (i->st == I_STARTING || i->st == I_BACKOFF) {
                starting++;
            }
        }
        if (ready == 0 || starting > 0) {
            m->over_since = m->under_since = 0; /* capacity on its way, or none to measure */
            return;
        }
        double per = load / ready;
        m->over_since = per > target && desired < hi ? (m->over_since ? m->over_since : now) : 0;
        m->under_since = per < target / 2 && desired > lo ? (m->under_since ? m->under_since : now) : 0;
        if (m->over_since && now - m->over_since >= up_ms) {
            int need = (int)(load / target + 0.999);
            want = need > desired + 1 ? need : desired + 1;
            if (want > hi)
                want = hi;
            snprintf(why, sizeof why,
                     "%.0f requests in flight or queued on %d ready instance%s (%.1f each) above target %.0f for %lld ms",
                     load, ready, ready == 1 ? "" : "s", per, target, (long long)(now - m->over_since));
        } else if (m->under_since && now - m->under_since >= down_ms) {
            want = desired - 1;
            snprintf(why, sizeof why,
                     "%.0f requests in flight or queued on %d ready instance%s (%.1f each) below half the target %.0f "
                     "for %lld ms",
                     load, ready, ready == 1 ? "" : "s", per, target, (long long)(now - m->under_since));
        }
    }
    if (want == desired)
        return;
    m->over_since = m->under_since = 0;
    s->desired_instances = want;
    ros_error err = {0};
    if (cat_service_update(c->db, s, &err) < 0) {
        logf_("%s: could not record the autoscaling decision: %s", s->name, err.message);
        s->desired_instances = desired;
        return;
    }
    event(c, s->name, want > desired ? "autoscale_up" : "autoscale_down", want, "%d -> %d: %s", desired, want, why);
    m->desired = want; /* not an ALTER */
}

static void reconcile(coord *c)
{
    ros_error err = {0};
    cat_service **sv = NULL;
    int n = 0;
    if (cat_service_list(c->db, &sv, &n, &err) < 0) {
        logf_("could not read services: %s", err.message);
        return;
    }
    for (svc_mem *m = c->svcs; m; m = m->next)
        m->present = false;
    int64_t now = ros_mono_ms();
    for (int k = 0; k < n; k++) {
        cat_service *s = sv[k];
        svc_mem *m = svc_get(c, s->name);
        if (!m)
            continue;
        m->present = true;
        if (m->id != s->id) { /* a new service under a name seen before */
            m->id = s->id;
            m->failed = false;
            m->state[0] = '\0';
            m->desired = -1;
            m->over_since = m->under_since = 0;
        }
        autoscale(c, s, m, now);
        if (m->desired >= 0 && m->desired != s->desired_instances)
            event(c, s->name, s->desired_instances > m->desired ? "scale_out" : "scale_in", s->desired_instances,
                  "desired instances %d -> %d (ALTER)", m->desired, s->desired_instances);
        else if (m->desired < 0)
            event(c, s->name, "supervised", s->desired_instances, "coordinator %d: %d instance%s of %s", (int)getpid(),
                  s->desired_instances,
                  s->desired_instances == 1 ? "" : "s", s->handler);
        m->desired = s->desired_instances;
        /* ALTER SERVICE (any change) asks for a new try after a failure */
        if (m->failed && strcmp(s->state, "failed") != 0) {
            m->failed = false;
            for (inst *i = c->insts; i; i = i->next)
                if (strcmp(i->service, s->name) == 0 && i->st == I_FAILED && !i->remote) {
                    i->fails = 0;
                    i->st = I_BACKOFF;
                    i->next_start = now;
                }
        }
        /* ALTER writes "starting" to the catalog: the state we last wrote
         * is no longer there, so write it again (write_state) */
        if (!s->state || strcmp(s->state, m->state) != 0)
            m->state[0] = '\0';
        for (int idx = 0; idx < s->desired_instances; idx++) {
            inst *i = inst_find(c, s->name, idx);
            if (!i)
                i = inst_new(c, s->name, s->id, idx);
            if (!i)
                continue;
            if (inst_held(i)) {
                /* withdrawn, still warm, and wanted again: back in routing */
                i->st = I_READY;
                i->dirty = true;
                event(c, s->name, "instance_kept", -1, "instance %d back in routing (withdrawn, not yet released)",
                      i->idx);
            }
            if (i->pid == 0 && !i->remote && (i->drained || i->st == I_DRAINING)) {
                /* drained and gone (scaled in, or its service dropped), and
                 * wanted again (scaled out, or a new service of that name) */
                i->st = I_BACKOFF;
                i->fails = 0;
                i->drained = false;
                i->last_error[0] = '\0';
                i->next_start = now;
            }
            i->service_id = s->id;
            if (i->st == I_BACKOFF && now >= i->next_start && !m->failed)
                inst_start(c, i, s);
        }
        for (inst *i = c->insts; i; i = i->next)
            if (strcmp(i->service, s->name) == 0 && !i->remote && i->idx >= s->desired_instances &&
                i->st != I_DRAINING)
                inst_withdraw(c, i, "scaled in");
    }
    /* instances of dropped services */
    for (inst *i = c->insts; i; i = i->next) {
        svc_mem *m = svc_find(c, i->service);
        if ((!m || !m->present) && !(i->st == I_DRAINING && i->termed))
            inst_drain(i, "service dropped");
    }
    /* forget instances that are gone and no longer wanted */
    for (inst *i = c->insts, *next; i; i = next) {
        next = i->next;
        svc_mem *m = svc_find(c, i->service);
        cat_service *s = NULL;
        for (int k = 0; k < n; k++)
            if (strcmp(sv[k]->name, i->service) == 0)
                s = sv[k];
        bool wanted = s && (i->remote || i->idx < s->desired_instances);
        if (i->pid == 0 && !wanted && (i->st == I_FAILED || i->st == I_BACKOFF || i->st == I_DRAINING)) {
            if (s)
                cat_instance_delete(c->db, s->id, i->idx, &err);
            inst_free(c, i);
        }
        (void)m;
    }
    CAT_FREE_LIST(sv, n, cat_service_free);
    c->last_reconcile = now;
}

/* Writes instance rows and service states that changed. */
static void write_state(coord *c, bool force)
{
    ros_error err = {0};
    bool any = force;
    for (inst *i = c->insts; i && !any; i = i->next)
        any = i->dirty;
    for (svc_mem *m = c->svcs; m && !any; m = m->next)
        any = m->present;
    if (!any)
        return;
    if (cat_begin(c->db, &err) < 0) {
        logf_("could not write state: %s", err.message);
        return;
    }
    for (inst *i = c->insts; i; i = i->next) {
        if (!i->dirty && !force)
            continue;
        svc_mem *m = svc_find(c, i->service);
        if (!m || !m->present)
            continue;
        cat_instance row = {0};
        row.service_id = i->service_id;
        row.idx = i->idx;
        row.pid = i->pid;
        row.endpoint = i->url[0] ? i->url : NULL;
        row.state = (char *)inst_state_names[i->st];
        row.requests = (int64_t)i->status.requests;
        row.rows = (int64_t)i->status.rows;
        row.inflight = i->status.inflight;
        row.queue_depth = i->status.queue_depth;
        row.restarts = i->restarts;
        row.last_error = i->last_error[0] ? i->last_error : NULL;
        if (cat_instance_put(c->db, &row, &err) == 0) {
            i->dirty = false;
            i->written_st = (int)i->st;
        }
    }
    for (svc_mem *m = c->svcs; m; m = m->next) {
        if (!m->present)
            continue;
        int total = 0, ready = 0, failed = 0;
        const char *why = NULL;
        int why_idx = -1;
        for (inst *i = c->insts; i; i = i->next) {
            if (strcmp(i->service, m->name) != 0 || i->st == I_DRAINING)
                continue;
            total++;
            ready += i->st == I_READY;
            if (i->st == I_FAILED) {
                failed++;
                why = i->last_error;
                why_idx = i->idx;
            }
        }
        const char *state = total == 0 ? "stopped" : failed == total ? "failed" : ready == total ? "ready" : "starting";
        m->failed = failed == total && total > 0;
        if (strcmp(state, m->state) != 0) {
            char msg[700] = "";
            if (m->failed)
                snprintf(msg, sizeof msg, "instance %d failed %d times in a row: %s", why_idx, CRASH_LOOP_LIMIT,
                         why ? why : "");
            if (cat_service_set_state(c->db, m->id, state, m->failed ? msg : NULL, &err) >= 0)
                snprintf(m->state, sizeof m->state, "%s", state);
        }
    }
    if (cat_commit(c->db, &err) < 0) {
        logf_("could not write state: %s", err.message);
        cat_rollback(c->db);
    }
    c->last_write = ros_mono_ms();
}

/* ------------------------------------------------------------------ */
/* Jobs */

/* Is pid job id's live `rosd job` process? */
static bool is_job_process(pid_t pid, int64_t id)
{
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)id);
    return svc_rosd_process(pid, "job", want);
}

static jproc *job_find(coord *c, int64_t id)
{
    for (jproc *j = c->jobs; j; j = j->next)
        if (j->id == id)
            return j;
    return NULL;
}

static int job_start(coord *c, jproc *j)
{
    char id[32], log[PATH_MAX + 64];
    snprintf(id, sizeof id, "%lld", (long long)j->id);
    snprintf(log, sizeof log, "%s/job-%lld.log", c->run_dir, (long long)j->id);
    char *argv[] = {c->rosd, "job", c->db_path, id, NULL};
    pid_t pid = svc_spawn(argv, log, false);
    if (pid < 0) {
        logf_("could not start job %lld: %s", (long long)j->id, strerror(errno));
        return -1;
    }
    logf_("started job %lld pid %d", (long long)j->id, (int)pid);
    j->pid = pid;
    j->child = true;
    j->termed = false;
    return 0;
}

/* The process of job j ended (status from waitpid, -1 when not known). */
static void job_exited(coord *c, jproc *j, int status)
{
    char reason[128];
    if (status >= 0 && WIFSIGNALED(status))
        snprintf(reason, sizeof reason, "killed by signal %d", WTERMSIG(status));
    else if (status >= 0 && WIFEXITED(status))
        snprintf(reason, sizeof reason, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(reason, sizeof reason, "process %d is gone", (int)j->pid);
    logf_("job %lld %s", (long long)j->id, reason);
    j->pid = 0;
    ros_error err = {0};
    /* a STOP that found it dying, or its own clean stop */
    if (cat_job_transition(c->db, j->id, "stopping", "stopped", NULL, &err) == 1)
        return;
    cat_job *row = cat_job_get(c->db, j->id, &err);
    bool running = row && strcmp(row->state, "running") == 0;
    pid_t other = row && is_job_process(row->pid, j->id) ? row->pid : 0;
    cat_job_free(row);
    if (!running)
        return; /* finished, failed or stopped: it said so itself */
    if (other) {
        /* ours lost the job's lock to a live process (started by another
         * coordinator): supervise that one */
        j->pid = other;
        j->child = false;
        logf_("adopted job %lld pid %d", (long long)j->id, (int)other);
        return;
    }
    if (c->stop || g_term)
        return; /* we sent SIGTERM while stopping: the next coordinator resumes it */
    j->fails++;
    cat_job_count_restart(c->db, j->id, &err);
    if (j->fails >= CRASH_LOOP_LIMIT) {
        char why[512];
        char log[PATH_MAX + 64], tail[160];
        snprintf(log, sizeof log, "%s/job-%lld.log", c->run_dir, (long long)j->id);
        log_tail(log, tail, sizeof tail);
        snprintf(why, sizeof why, "died %d times without a new checkpoint (%s)%s%.150s", j->fails, reason,
                 tail[0] ? ": " : "", tail);
        cat_job_transition(c->db, j->id, "running", "failed", why, &err);
        logf_("job %lld failed: %s", (long long)j->id, why);
        return;
    }
    /* the first restart at once: the services kept its work */
    int64_t delay = j->fails <= 1 ? 0 : 100LL << (j->fails - 2);
    j->next_start = ros_mono_ms() + (delay > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay);
}

/* Starts, adopts, stops and forgets job processes to match the catalog. */
static void jobs_reconcile(coord *c)
{
    ros_error err = {0};
    cat_job **jl;
    int n;
    if (cat_job_list(c->db, &jl, &n, &err) < 0)
        return;
    int64_t now = ros_mono_ms();
    for (int k = 0; k < n; k++) {
        cat_job *r = jl[k];
        bool running = strcmp(r->state, "running") == 0, stopping = strcmp(r->state, "stopping") == 0;
        jproc *j = job_find(c, r->id);
        if (!j && !running && !stopping)
            continue;
        if (!j) {
            if (!(j = calloc(1, sizeof *j)))
                continue;
            j->id = r->id;
            j->ckpt_seen = r->last_checkpoint;
            j->next = c->jobs;
            c->jobs = j;
            if (is_job_process(r->pid, r->id)) {
                j->pid = r->pid;
                j->child = false;
                logf_("adopted job %lld pid %d", (long long)r->id, (int)r->pid);
            }
        }
        if (r->last_checkpoint != j->ckpt_seen) {
            j->ckpt_seen = r->last_checkpoint;
            j->fails = 0; /* it makes progress */
        }
        if (stopping) {
            if (j->pid > 0 && !j->termed) {
                kill(j->pid, SIGTERM);
                j->termed = true;
            } else if (j->pid == 0) {
                cat_job_transition(c->db, r->id, "stopping", "stopped", NULL, &err);
            }
        } else if (running && j->pid == 0 && now >= j->next_start) {
            job_start(c, j);
        }
    }
    /* forget jobs with no process that are not running (or were deleted) */
    for (jproc **pp = &c->jobs; *pp;) {
        jproc *j = *pp;
        bool keep = j->pid > 0;
        for (int k = 0; k < n && !keep; k++)
            keep = jl[k]->id == j->id && (strcmp(jl[k]->state, "running") == 0 || strcmp(jl[k]->state, "stopping") == 0);
        if (!keep) {
            *pp = j->next;
            free(j);
        } else {
            pp = &j->next;
        }
    }
    CAT_FREE_LIST(jl, n, cat_job_free);
}

/* ------------------------------------------------------------------ */
/* Processes */

static void reap(coord *c)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        bool found = false;
        for (inst *i = c->insts; i && !found; i = i->next)
            if (i->child && i->pid == pid) {
                inst_exited(c, i, status);
                found = true;
            }
        for (jproc *j = c->jobs; j && !found; j = j->next)
            if (j->child && j->pid == pid) {
                job_exited(c, j, status);
                found = true;
            }
    }
    for (jproc *j = c->jobs; j; j = j->next)
        if (j->pid > 0 && !j->child && kill(j->pid, 0) < 0 && errno == ESRCH)
            job_exited(c, j, -1);
    /* adopted instances are not our children: check that they still live */
    int64_t now = ros_mono_ms();
    for (inst *i = c->insts; i; i = i->next) {
        if (i->pid > 0 && !i->child && !i->remote && kill(i->pid, 0) < 0 && errno == ESRCH)
            inst_exited(c, i, -1);
        if (i->st == I_DRAINING && i->termed && i->pid > 0 && now > i->drain_deadline) {
            logf_("%s[%d] did not drain in time: killing it", i->service, i->idx);
            kill(i->pid, SIGKILL);
            i->drain_deadline = now + DRAIN_TIMEOUT_MS;
        }
        if (i->st == I_DRAINING && i->remote) {
            i->st = I_FAILED;
            i->dirty = true;
        }
    }
}

/* Takes over instances a previous coordinator started that still run. */
static void adopt(coord *c)
{
    ros_error err = {0};
    cat_instance **in;
    int n;
    if (cat_instance_list(c->db, 0, &in, &n, &err) < 0)
        return;
    cat_service **sv;
    int ns;
    if (cat_service_list(c->db, &sv, &ns, &err) < 0) {
        CAT_FREE_LIST(in, n, cat_instance_free);
        return;
    }
    for (int k = 0; k < n; k++) {
        const char *name = NULL;
        for (int j = 0; j < ns; j++)
            if (sv[j]->id == in[k]->service_id)
                name = sv[j]->name;
        if (!name || !in[k]->endpoint || !svc_rosd_process(in[k]->pid, "worker", NULL))
            continue; /* gone, or the pid was reused by something else */
        inst *i = inst_new(c, name, in[k]->service_id, in[k]->idx);
        if (!i)
            continue;
        i->pid = in[k]->pid;
        i->child = false;
        i->st = I_STARTING; /* ready once it answers a PING */
        i->restarts = in[k]->restarts;
        snprintf(i->url, sizeof i->url, "%s", in[k]->endpoint);
        logf_("adopted %s[%d] pid %d on %s", name, i->idx, (int)i->pid, i->url);
    }
    CAT_FREE_LIST(in, n, cat_instance_free);
    CAT_FREE_LIST(sv, ns, cat_service_free);
}

/* ------------------------------------------------------------------ */
/* Control requests */

static void ctl_reply(coord *c, const char *text) { nng_send(c->ctl, (void *)text, strlen(text) + 1, 0); }

static void handle_ctl(coord *c, char *msg)
{
    char reply[4096];
    char name[128], url[320];
    if (strcmp(msg, "ping") == 0) {
        ctl_reply(c, "ok");
    } else if (strcmp(msg, "reconcile") == 0) {
        reconcile(c);
        write_state(c, false);
        publish(c, false);
        ctl_reply(c, "ok");
    } else if (strcmp(msg, "jobs") == 0) {
        jobs_reconcile(c);
        ctl_reply(c, "ok");
    } else if (strcmp(msg, "stop") == 0) {
        c->stop = true;
        ctl_reply(c, "ok");
    } else if (sscanf(msg, "members %127s", name) == 1) {
        svc_mem *m = svc_find(c, name);
        members_line(c, name, m && m->present ? m->version : 0, reply, sizeof reply);
        ctl_reply(c, reply);
    } else if (sscanf(msg, "instances %127s", name) == 1) {
        int live = 0;
        for (inst *i = c->insts; i; i = i->next)
            live += strcmp(i->service, name) == 0 && i->pid > 0;
        snprintf(reply, sizeof reply, "%d", live);
        ctl_reply(c, reply);
    } else if (sscanf(msg, "register %127s %319s", name, url) == 2) {
        ros_error err = {0};
        cat_service *s = cat_service_get(c->db, name, &err);
        if (!s) {
            snprintf(reply, sizeof reply, "error service \"%s\" does not exist", name);
            ctl_reply(c, reply);
            return;
        }
        inst *found = NULL;
        int next_idx = 1000;
        for (inst *i = c->insts; i; i = i->next) {
            if (strcmp(i->service, name) != 0)
                continue;
            if (i->remote && strcmp(i->url, url) == 0)
                found = i;
            if (i->idx >= next_idx)
                next_idx = i->idx + 1;
        }
        if (!found)
            found = inst_new(c, name, s->id, next_idx);
        if (found) {
            found->remote = true;
            found->st = I_STARTING; /* routable once it answers a PING */
            found->next_ping = 0;
            snprintf(found->url, sizeof found->url, "%s", url);
            logf_("registered %s[%d] at %s", name, found->idx, url);
        }
        cat_service_free(s);
        ctl_reply(c, found ? "ok" : "error out of memory");
    } else if (sscanf(msg, "deregister %127s %319s", name, url) == 2) {
        for (inst *i = c->insts; i; i = i->next)
            if (i->remote && strcmp(i->service, name) == 0 && strcmp(i->url, url) == 0) {
                i->st = I_FAILED;
                snprintf(i->last_error, sizeof i->last_error, "deregistered");
                i->dirty = true;
                inst_close_sock(i);
            }
        /* forget it: a remote instance has no process to wait for */
        for (inst *i = c->insts, *next; i; i = next) {
            next = i->next;
            if (i->remote && i->st == I_FAILED && strcmp(i->service, name) == 0 && strcmp(i->url, url) == 0) {
                ros_error err = {0};
                cat_instance_delete(c->db, i->service_id, i->idx, &err);
                inst_free(c, i);
            }
        }
        publish(c, false);
        ctl_reply(c, "ok");
    } else {
        snprintf(reply, sizeof reply, "error unknown command \"%.60s\"", msg);
        ctl_reply(c, reply);
    }
}

static void poll_ctl(coord *c, int wait_ms)
{
    nng_socket_set_ms(c->ctl, NNG_OPT_RECVTIMEO, wait_ms);
    for (int k = 0; k < 32; k++) {
        char *buf = NULL;
        size_t len = 0;
        if (nng_recv(c->ctl, &buf, &len, NNG_FLAG_ALLOC) != 0)
            return;
        char msg[1024];
        size_t m = len < sizeof msg - 1 ? len : sizeof msg - 1;
        memcpy(msg, buf, m);
        msg[m] = '\0';
        nng_free(buf, len);
        handle_ctl(c, msg);
        nng_socket_set_ms(c->ctl, NNG_OPT_RECVTIMEO, 0);
    }
}

/* ------------------------------------------------------------------ */

/* True when an instance changed state since the last write: states are
 * written at once, counters every STATE_WRITE_MS. */
static bool state_changed(coord *c)
{
    for (inst *i = c->insts; i; i = i->next)
        if ((int)i->st != i->written_st)
            return true;
    return false;
}

static bool any_wanted(coord *c)
{
    for (inst *i = c->insts; i; i = i->next)
        if (i->pid > 0 || i->st == I_BACKOFF || i->st == I_STARTING || i->st == I_READY)
            return true;
    return c->jobs != NULL; /* a job runs, or is to be restarted or stopped */
}

static void shutdown_all(coord *c)
{
    /* jobs first: their final checkpoints may still ask the services */
    int64_t deadline = ros_mono_ms() + 10000;
    for (jproc *j = c->jobs; j; j = j->next)
        if (j->pid > 0)
            kill(j->pid, SIGTERM);
    for (;;) {
        reap(c);
        bool live = false;
        for (jproc *j = c->jobs; j; j = j->next)
            live |= j->pid > 0;
        if (!live || ros_mono_ms() > deadline)
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    for (jproc *j = c->jobs; j; j = j->next)
        if (j->pid > 0)
            kill(j->pid, SIGKILL);
    for (inst *i = c->insts; i; i = i->next)
        if (i->pid > 0)
            inst_drain(i, "coordinator stopping");
    deadline = ros_mono_ms() + 10000;
    for (;;) {
        reap(c);
        bool live = false;
        for (inst *i = c->insts; i; i = i->next)
            live |= i->pid > 0 && !i->remote;
        if (!live || ros_mono_ms() > deadline)
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    for (inst *i = c->insts; i; i = i->next)
        if (i->pid > 0 && !i->remote)
            kill(i->pid, SIGKILL);
    reap(c);
    for (inst *i = c->insts; i; i = i->next) {
        i->st = I_FAILED;
        snprintf(i->last_error, sizeof i->last_error, "stopped");
        i->dirty = true;
    }
    publish(c, true);
}

int svc_coord_main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: rosd coordinator DBFILE\n");
        return 2;
    }
    coord *c = calloc(1, sizeof *c);
    if (!c)
        return 1;
    snprintf(c->db_path, sizeof c->db_path, "%s", argv[1]);
    if (svc_run_dir(c->db_path, c->run_dir, sizeof c->run_dir) < 0 || svc_mkdir_p(c->run_dir) < 0) {
        logf_("cannot create the run directory of %s", c->db_path);
        return 1;
    }
    char lockpath[PATH_MAX + 32];
    snprintf(lockpath, sizeof lockpath, "%s/coord.lock", c->run_dir);
    int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
        logf_("another coordinator runs for %s", c->db_path);
        return 0;
    }
    if (svc_find_rosd(c->rosd, sizeof c->rosd) < 0) {
        logf_("cannot find the rosd program");
        return 1;
    }
    ros_error err = {0};
    c->db = cat_open(c->db_path, &err);
    if (!c->db) {
        logf_("cannot open %s: %s", c->db_path, err.message);
        return 1;
    }
    /* a query writing a table holds the write lock for a while: never let
     * that stall restarts and pings (state writes are retried next tick) */
    cat_set_busy_timeout(c->db, 50);
    char url[PATH_MAX + 16];
    snprintf(url, sizeof url, "%s/coord.ctl", c->run_dir);
    unlink(url);
    snprintf(url, sizeof url, "%s/coord.pub", c->run_dir);
    unlink(url);
    char ctl_url[PATH_MAX + 16], pub_url[PATH_MAX + 16];
    svc_coord_ctl_url(c->db_path, ctl_url, sizeof ctl_url);
    svc_coord_pub_url(c->db_path, pub_url, sizeof pub_url);
    int rv;
    if ((rv = nng_rep0_open(&c->ctl)) != 0 || (rv = nng_listen(c->ctl, ctl_url, NULL, 0)) != 0 ||
        (rv = nng_pub0_open(&c->pub)) != 0 || (rv = nng_listen(c->pub, pub_url, NULL, 0)) != 0) {
        logf_("cannot listen on %s: %s", ctl_url, nng_strerror(rv));
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    c->version = (uint64_t)ros_unix_ms() * 1000; /* grows across coordinator restarts */
    logf_("pid %d serving %s (control %s)", (int)getpid(), c->db_path, ctl_url);

    struct stat dbst;
    if (stat(c->db_path, &dbst) < 0) {
        logf_("cannot stat %s: %s", c->db_path, strerror(errno));
        return 1;
    }
    ino_t db_ino = dbst.st_ino;
    dev_t db_dev = dbst.st_dev;
    adopt(c);
    reconcile(c);
    jobs_reconcile(c);
    c->idle_since = ros_mono_ms();
    while (!c->stop && !g_term) {
        poll_ctl(c, TICK_MS);
        reap(c);
        int64_t now = ros_mono_ms();
        if (now - c->last_reconcile >= RECONCILE_MS) {
            struct stat st;
            if (stat(c->db_path, &st) < 0 || st.st_ino != db_ino || st.st_dev != db_dev) {
                /* deleted, or replaced by another database at that path
                 * (whose own coordinator will come) */
                logf_("database %s is gone: stopping", c->db_path);
                break;
            }
            reconcile(c);
            jobs_reconcile(c);
            inst_hold_check(c);
        }
        for (inst *i = c->insts; i; i = i->next)
            inst_ping(c, i);
        publish(c, now - c->last_publish >= PUBLISH_MS);
        if (now - c->last_write >= STATE_WRITE_MS || (state_changed(c) && now - c->last_write >= TICK_MS))
            write_state(c, false);
        if (any_wanted(c))
            c->idle_since = now;
        else if (now - c->idle_since > IDLE_EXIT_MS) {
            logf_("no service to run: exiting");
            break;
        }
    }
    shutdown_all(c);
    if (c->db) {
        struct stat st;
        if (stat(c->db_path, &st) == 0)
            write_state(c, true);
        cat_close(c->db);
    }
    while (c->insts)
        inst_free(c, c->insts);
    while (c->jobs) {
        jproc *n = c->jobs->next;
        free(c->jobs);
        c->jobs = n;
    }
    while (c->svcs) {
        svc_mem *n = c->svcs->next;
        free(c->svcs);
        c->svcs = n;
    }
    nng_close(c->ctl);
    nng_close(c->pub);
    /* the lock file is removed only when it is still ours: a database
     * recreated at this path has its own */
    struct stat ours, there;
    if (fstat(lock, &ours) == 0 && stat(lockpath, &there) == 0 && ours.st_ino == there.st_ino &&
        ours.st_dev == there.st_dev)
        unlink(lockpath);
    close(lock);
    free(c);
    return 0;
}
