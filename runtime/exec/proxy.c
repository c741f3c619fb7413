/*
 * proxy.c
 *    The Proxy operator: computes one function through its service.
 *
 * It pulls batches from its child, evaluates the call's arguments, cuts the
 * rows into requests of at most max_batch rows and keeps up to max_inflight
 * rows outstanding through a service client (service/client.h), which routes,
 * retries and times out each request.  Each request is one unit of output:
 * the child's rows of that request plus the result column.  Units are
 * emitted in input order (ordered, the default) or as they complete.
 *
 * A STRICT function is not sent rows with a NULL argument (their result is
 * NULL).  Request ids are (job, operator, seq): job is random for an ad-hoc
 * query, seq counts requests, so a retry asks under the same id.  In a job
 * the checkpoint keeps the instance each unanswered request was sent to,
 * and a restored request is sent there again (svc_client_submit_prefer):
 * that instance has its answer cached, or is still computing it.
 *
 * A failing row.  When a request fails because of its rows (the function's
 * error, or an instance that died on it more than max_retries times) rather
 * than because the service is unreachable or late, the proxy finds the row:
 * the service may name it (then the other rows are asked again without it),
 * otherwise every row is asked alone (SVC_FLAG_ALONE: the instance runs it
 * in a handler call of its own, so a poison row takes down only its own
 * attempts).  The row then gets on_error: 'fail' stops the query naming the
 * row and its arguments, 'null' gives it a NULL result, 'skip' drops it;
 * the rows treated so are counted and reported as a notice at the end.
 */
#include "runtime/exec/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rosql/rosql.h>
#include <rosql/udf.h>

#include "runtime/core/strbuf.h"
#include "runtime/core/types.h"
#include "runtime/exec/ckpt.h"
#include "service/client.h"
#include "service/coordinator.h"

typedef struct chunk {
    ros_batch rows;  /* copy of the child's rows */
    /* When every row is sent (no guard left a row out, no STRICT NULL
     * argument): the call's arguments, row i of rows in row i, which the
     * client borrows (svc_client_submit_rows) instead of a copy per
     * request.  A column that is a plain column reference is the column of
     * rows itself (a shallow copy: not owned, see args_owned); the others
     * were evaluated and staged. */
    ros_batch args;
    bool args_owned[ROS_UDF_MAX_ARGS + 1];
    int refs;        /* units still using it */
} chunk;

typedef struct unit unit;

/* Rounds an ALONE request is asked again after dying with its instance
 * before its row is blamed (see req_failed). */
#define VICTIM_ROUNDS 5

/* One request of a unit: all its rows, or after a failure a subset. */
typedef struct preq {
    unit *u;
    uint32_t *idx;       /* rows of the unit (indexes into u->sent), NULL: all */
    uint32_t n;
    ros_batch args;      /* built, until submitted */
    uint64_t seq;
    bool alone;          /* SVC_FLAG_ALONE */
    int victim_rounds;   /* times asked again after dying alone with its instance */
    bool borrow;         /* its arguments are rows [u->start, u->end) of u->ch->args:
                            submitted with svc_client_submit_rows (args empty) */
    bool submitted;
    bool done;
    bool ok;
    bool restored;       /* re-sent after a restore from a checkpoint */
    int member;          /* restored: the instance (svc_member.idx) it was sent to before
                            the checkpoint, where its answer is cached; -1 unknown */
    ros_vector result;   /* ok: n results */
} preq;

struct unit {
    unit *next;
    chunk *ch;
    uint32_t start, end; /* rows of the chunk */
    uint32_t *sent;      /* chunk rows sent (strict functions skip NULL arguments);
                            NULL: every row, start + k (see sent_row) */
    uint32_t nsent;
    preq **reqs;         /* its requests; failed ones are replaced by others */
    uint32_t nreqs, capreqs;
    uint32_t open;       /* requests not answered */
    uint8_t *bad;        /* NULL, or nsent flags: the function failed on that row */
    uint32_t nbad;
    uint64_t no;         /* units numbered in input order */
    bool fail_set;       /* on_error = 'fail': a row failed (fail_k, fail_error) */
    uint32_t fail_k;
    ros_error fail_error;
    bool failed;         /* the query fails with error */
    ros_error error;
};

struct rt_proxy {
    rt_exec_ctx *ctx;
    const plan_node *plan;
    svc_client *client;
    rt_expr **args;
    unit *head, *tail;   /* outstanding units in input order */
    uint64_t pending_rows;
    uint64_t limit_rows; /* rows outstanding at most: max_inflight, or
                            inflight_per_instance x the service's ready instances */
    int limit_members;   /* the instance count limit_rows was set for, -1 none */
    uint64_t next_seq;
    bool child_done;
    uint32_t *iota;      /* 0, 1, 2, ... for gathers */
    uint32_t iota_len;
    /* rows accumulated for the next units */
    chunk *cur;          /* child rows */
    ros_batch cur_args;  /* arguments of the rows to send */
    uint32_t *sent;      /* rows of cur to send (all but STRICT NULLs) */
    uint32_t nsent;
    bool cur_all;        /* every row of cur is sent: sent is not kept (nsent counts
                            them), and cur_args holds only the columns of arguments
                            that are not plain column references (argcol) */
    int argcol[ROS_UDF_MAX_ARGS + 1]; /* argument i is child column argcol[i], or -1 */
    rt_expr *guard;      /* which rows need the call, or NULL: all */
    ros_batch guarded;   /* the child's rows that need it, when not all do */
    uint64_t nfailed;    /* rows given the on_error treatment */
    ros_error first_failure; /* the first of them */
    char first_args[512];    /* its arguments */
    uint64_t first_at;       /* its place: unit number << 32 | row */
    uint64_t next_unit;
    bool reported;
    int64_t recomputed;      /* restored requests a service computed again */
    int64_t reused;          /* requests answered from a service's cache or running original */
};

/* px->guarded = rows sel[0..n) of in. */
static int gather_batch(rt_proxy *px, const ros_batch *in, const uint32_t *sel, uint32_t n)
{
    if (px->guarded.ncols != in->ncols) {
        for (uint32_t c = 0; c < px->guarded.ncols; c++)
            ros_vector_free(&px->guarded.cols[c]);
        free(px->guarded.cols);
        px->guarded.ncols = 0;
        if (!(px->guarded.cols = calloc(in->ncols + 1, sizeof(ros_vector))))
            return -1;
        px->guarded.ncols = in->ncols;
        for (uint32_t c = 0; c < in->ncols; c++)
            ros_vector_init(&px->guarded.cols[c], in->cols[c].type);
    }
    for (uint32_t c = 0; c < in->ncols; c++)
        if (rt_vector_gather(&px->guarded.cols[c], &in->cols[c], sel, n) < 0)
            return -1;
    px->guarded.nrows = n;
    return 0;
}

/* The row of u's chunk that is its k-th sent row. */
static inline uint32_t sent_row(const unit *u, uint32_t k)
{
    return u->sent ? u->sent[k] : u->start + k;
}

static void chunk_free(chunk *ch)
{
    if (!ch)
        return;
    rt_batch_free(&ch->rows);
    for (uint32_t i = 0; i < ch->args.ncols; i++)
        if (ch->args_owned[i])
            ros_vector_free(&ch->args.cols[i]);
    free(ch->args.cols);
    free(ch);
}

static void preq_free(preq *r)
{
    if (!r)
        return;
    free(r->idx);
    svc_batch_free(&r->args);
    ros_vector_free(&r->result);
    free(r);
}

static void unit_free(unit *u)
{
    if (!u)
        return;
    /* a borrowed request (preq.borrow) is always answered before its
     * unit is freed, or the client is closed first (rt_proxy_free) */
    if (u->ch && --u->ch->refs == 0)
        chunk_free(u->ch);
    free(u->sent);
    for (uint32_t i = 0; i < u->nreqs; i++)
        preq_free(u->reqs[i]);
    free(u->reqs);
    free(u->bad);
    free(u);
}

static bool unit_done(const unit *u) { return u->failed || u->open == 0; }

/* Adds a request for rows idx[0..n) of u (idx NULL: all; taken), named by
 * the next seq. */
static preq *add_req_seq(rt_proxy *px, unit *u, uint32_t *idx, uint32_t n, bool alone, uint64_t seq);

static preq *add_req(rt_proxy *px, unit *u, uint32_t *idx, uint32_t n, bool alone)
{
    preq *r = add_req_seq(px, u, idx, n, alone, px->next_seq);
    if (r)
        px->next_seq++;
    return r;
}

/* Same, named seq. */
static preq *add_req_seq(rt_proxy *px, unit *u, uint32_t *idx, uint32_t n, bool alone, uint64_t seq)
{
    if (u->nreqs == u->capreqs) {
        uint32_t cap = u->capreqs ? u->capreqs * 2 : 1;
        preq **a = realloc(u->reqs, sizeof(preq *) * cap);
        if (!a)
            return NULL;
        u->reqs = a;
        u->capreqs = cap;
    }
    preq *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->u = u;
    r->idx = idx;
    r->n = n;
    r->alone = alone;
    r->seq = seq;
    r->member = -1;
    ros_vector_init(&r->result, px->plan->types[px->plan->ncols - 1]);
    u->reqs[u->nreqs++] = r;
    u->open++;
    return r;
}

rt_proxy *rt_proxy_open(rt_exec_ctx *ctx, const plan_node *p, ros_error *err)
{
    rt_proxy *px = calloc(1, sizeof *px);
    if (!px) {
        ros_error_oom(err);
        return NULL;
    }
    px->ctx = ctx;
    px->plan = p;
    if (p->u.proxy.nargs > ROS_UDF_MAX_ARGS) {
        ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "function %s has more than %d arguments", p->u.proxy.function,
                      ROS_UDF_MAX_ARGS);
        free(px);
        return NULL;
    }
    px->args = calloc((size_t)p->u.proxy.nargs + 1, sizeof(rt_expr *));
    if (!px->args) {
        ros_error_oom(err);
        goto fail;
    }
    for (int i = 0; i < p->u.proxy.nargs; i++)
        if (!(px->args[i] = rt_expr_compile(ctx, p->u.proxy.args[i], err)))
            goto fail;
    if (p->u.proxy.guard && !(px->guard = rt_expr_compile(ctx, p->u.proxy.guard, err)))
        goto fail;
    for (int i = 0; i < p->u.proxy.nargs; i++)
        px->argcol[i] = p->u.proxy.args[i]->kind == PE_COLUMN ? p->u.proxy.args[i]->u.column : -1;

    svc_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.service = p->u.proxy.service;
    uint32_t batch = p->u.proxy.max_batch ? p->u.proxy.max_batch : 1;
    cfg.max_inflight = (p->u.proxy.max_inflight + batch - 1) / batch + 1;
    cfg.timeout_ms = p->u.proxy.timeout_ms;
    cfg.max_retries = p->u.proxy.max_retries;
    cfg.max_frame = (size_t)p->u.proxy.max_frame;
    cfg.job = ctx->job_id; /* 0 (ad-hoc query): the client draws a random job id */
    cfg.attempt = ctx->attempt;
    cfg.op = (uint32_t)p->u.proxy.op_id;
    /* the function's service exists (the catalog says so), maybe not ready yet */
    if (!(px->client = svc_coord_client(cat_path(ctx->db), &cfg, false, err)))
        goto fail;
    px->limit_rows = p->u.proxy.max_inflight;
    px->limit_members = -1;
    return px;
fail:
    rt_proxy_free(px);
    return NULL;
}

void rt_proxy_free(rt_proxy *px)
{
    if (!px)
        return;
    if (px->client)
        svc_client_close(px->client);
    while (px->head) {
        unit *n = px->head->next;
        unit_free(px->head);
        px->head = n;
    }
    chunk_free(px->cur);
    svc_batch_free(&px->cur_args);
    free(px->sent);
    for (int i = 0; px->args && i < px->plan->u.proxy.nargs; i++)
        rt_expr_free(px->args[i]);
    free(px->args);
    rt_expr_free(px->guard);
    for (uint32_t c = 0; c < px->guarded.ncols; c++)
        ros_vector_free(&px->guarded.cols[c]);
    free(px->guarded.cols);
    free(px->iota);
    free(px);
}

static int ensure_iota(rt_proxy *px, uint32_t n)
{
    if (px->iota_len >= n)
        return 0;
    uint32_t *p = realloc(px->iota, sizeof(uint32_t) * n);
    if (!p)
        return -1;
    for (uint32_t i = px->iota_len; i < n; i++)
        p[i] = i;
    px->iota = p;
    px->iota_len = n;
    return 0;
}

/* Appends rows of a gathered selection of src columns to dst (a batch with
 * the same column types). */
static int append_rows(ros_batch *dst, const ros_vector *const *src, int ncols, const uint32_t *sel, uint32_t n,
                       ros_error *err)
{
    ros_vector tmp[ROS_UDF_MAX_ARGS + 1];
    ros_batch b = {(uint32_t)ncols, n, tmp};
    int rc = 0;
    for (int i = 0; i < ncols; i++)
        ros_vector_init(&tmp[i], src[i]->type);
    for (int i = 0; i < ncols && rc == 0; i++)
        if (rt_vector_gather(&tmp[i], src[i], sel, n) < 0)
            rc = ros_error_oom(err);
    if (rc == 0)
        rc = svc_batch_append(dst, &b, err);
    for (int i = 0; i < ncols; i++)
        ros_vector_free(&tmp[i]);
    return rc;
}

/* Whether a row of v's first n is NULL (ros_vector_is_null). */
static bool has_null(const ros_vector *v, uint32_t n)
{
    if (!v->validity)
        return false;
    uint32_t full = n / 8;
    for (uint32_t i = 0; i < full; i++)
        if (v->validity[i] != 0xff)
            return true;
    for (uint32_t r = full * 8; r < n; r++)
        if (!(v->validity[r >> 3] & (1u << (r & 7))))
            return true;
    return false;
}

/* Appends rows 0..n of each src[i] (i < ncols) to dst's column i, when
 * present (src[i] NULL: column i is left alone); dst's columns may differ
 * in length, so each is appended as a batch of its own.  dst->nrows is not
 * changed. */
static int append_cols(ros_batch *dst, const ros_vector *const *src, int ncols, uint32_t n, ros_error *err)
{
    for (int i = 0; i < ncols; i++) {
        if (!src[i])
            continue;
        ros_vector s1 = *src[i]; /* a view: svc_batch_append does not write it */
        ros_batch d = {1, dst->cols[i].len, &dst->cols[i]};
        ros_batch b = {1, n, &s1};
        if (svc_batch_append(&d, &b, err) < 0)
            return -1;
    }
    return 0;
}

/* Switches the rows being accumulated from "every row sent" (cur_all) to a
 * list of the rows sent: the first nsent rows of cur are, and the argument
 * columns that were not staged (plain column references) are copied from
 * cur's rows. */
static int leave_all(rt_proxy *px, ros_error *err)
{
    int nargs = px->plan->u.proxy.nargs;
    uint32_t n = px->nsent;
    px->cur_all = false;
    if (n == 0)
        return 0;
    uint32_t *sent = realloc(px->sent, sizeof(uint32_t) * n);
    if (!sent)
        return ros_error_oom(err);
    px->sent = sent;
    for (uint32_t k = 0; k < n; k++)
        sent[k] = k;
    const ros_vector *src[ROS_UDF_MAX_ARGS + 1];
    for (int i = 0; i < nargs; i++)
        src[i] = px->argcol[i] >= 0 ? &px->cur->rows.cols[px->argcol[i]] : NULL;
    if (append_cols(&px->cur_args, src, nargs, n, err) < 0)
        return -1;
    px->cur_args.nrows = n;
    return 0;
}

/* Cuts the accumulated rows into units of at most max_batch rows. */
static int cut_units(rt_proxy *px, ros_error *err)
{
    chunk *ch = px->cur;
    px->cur = NULL;
    if (!ch)
        return 0;
    const plan_node *p = px->plan;
    int nargs = p->u.proxy.nargs;
    uint32_t batch = p->u.proxy.max_batch ? p->u.proxy.max_batch : 1;
    uint32_t nrows = ch->rows.nrows;
    bool all = px->cur_all && px->nsent == nrows;
    int rc = 0;
    if (all && nrows > 0) {
        /* every row is sent: the chunk keeps the arguments, and each
         * request is a range of them that the client borrows */
        if (px->cur_args.ncols != (uint32_t)nargs) {
            rc = ros_error_set(err, ROS_ERR_INTERNAL, "proxy arguments have %u columns, not %d",
                               px->cur_args.ncols, nargs);
        } else {
            ch->args = px->cur_args;
            memset(&px->cur_args, 0, sizeof px->cur_args);
            ch->args.nrows = nrows;
            for (int i = 0; i < nargs; i++) {
                ch->args_owned[i] = px->argcol[i] < 0;
                if (px->argcol[i] >= 0) {
                    ros_vector_free(&ch->args.cols[i]); /* empty */
                    ch->args.cols[i] = ch->rows.cols[px->argcol[i]];
                }
            }
        }
    } else if (px->cur_all && px->nsent != nrows) {
        rc = ros_error_set(err, ROS_ERR_INTERNAL, "proxy rows and arguments differ (%u, %u)", nrows,
                           px->nsent);
    }
    uint32_t k = 0; /* next entry of cur_sent */
    for (uint32_t start = 0; start < nrows && rc == 0; start += batch) {
        uint32_t end = start + batch < nrows ? start + batch : nrows;
        unit *u = calloc(1, sizeof *u);
        if (!u) {
            rc = ros_error_oom(err);
            break;
        }
        u->ch = ch;
        ch->refs++;
        u->no = px->next_unit++;
        u->start = start;
        u->end = end;
        if (px->tail)
            px->tail->next = u;
        else
            px->head = u;
        px->tail = u;
        px->pending_rows += end - start;
        if (all) {
            u->nsent = end - start; /* u->sent NULL: all of them */
            preq *r = add_req(px, u, NULL, u->nsent, false);
            if (!r) {
                rc = ros_error_oom(err);
                break;
            }
            r->borrow = true;
            continue;
        }
        uint32_t lo = k;
        while (k < px->nsent && px->sent[k] < end)
            k++;
        u->nsent = k - lo;
        if (u->nsent == 0)
            continue; /* every row has a NULL argument: nothing to ask */
        u->sent = malloc(sizeof(uint32_t) * u->nsent);
        preq *r = u->sent ? add_req(px, u, NULL, u->nsent, false) : NULL;
        if (!r || ensure_iota(px, k) < 0) {
            rc = ros_error_oom(err);
            break;
        }
        memcpy(u->sent, px->sent + lo, sizeof(uint32_t) * u->nsent);
        if (lo == 0 && k == px->nsent) {
            /* the whole accumulated argument batch: move it */
            r->args = px->cur_args;
            memset(&px->cur_args, 0, sizeof px->cur_args);
            continue;
        }
        const ros_vector *cols[ROS_UDF_MAX_ARGS + 1];
        for (int i = 0; i < nargs; i++)
            cols[i] = &px->cur_args.cols[i];
        rc = append_rows(&r->args, cols, nargs, px->iota + lo, u->nsent, err);
    }
    svc_batch_free(&px->cur_args);
    px->nsent = 0;
    px->cur_all = false;
    if (ch->refs == 0)
        chunk_free(ch);
    return rc;
}

/*
 * Pulls one child batch into the rows being accumulated; once they reach
 * max_batch (or the input ends) they are cut into units.  Requests so hold
 * max_batch rows whatever the child's batch size.  Returns 1, 0 at the end
 * of the input, -1 on error.
 *
 * While every row is sent (no guard leaves one out, no STRICT NULL
 * argument) the rows are kept once: arguments that are plain column
 * references are not copied at all (the request borrows the chunk's column,
 * see cut_units), the others are appended as evaluated, and no list of the
 * rows sent is kept.  The first row left out switches the chunk to the list
 * (leave_all).
 */
static int pull(rt_proxy *px, rt_op *child, ros_error *err)
{
    ros_batch *in;
    int rc = rt_op_next(child, &in, err);
    if (rc < 0)
        return -1;
    if (rc == 0 || rc == 2) /* end, or nothing now: send what we have */
        return cut_units(px, err) < 0 ? -1 : rc;
    if (in->nrows == 0)
        return 1;
    const plan_node *p = px->plan;
    int nargs = p->u.proxy.nargs;
    /* a guarded call (under CASE/COALESCE): only rows that need it are sent,
     * and its arguments are evaluated on those rows only */
    const ros_batch *ab = in;
    uint32_t gn = in->nrows;
    uint32_t *gsel = NULL;
    if (px->guard) {
        const ros_vector *g = rt_expr_eval(px->guard, in, err);
        if (!g)
            return -1;
        if (!(gsel = malloc(sizeof(uint32_t) * in->nrows)))
            return ros_error_oom(err);
        gn = 0;
        for (uint32_t r = 0; r < in->nrows; r++)
            if (!ros_vector_is_null(g, r) && ROS_VEC_BOOL(g)[r])
                gsel[gn++] = r;
        if (gn < in->nrows) {
            if (gather_batch(px, in, gsel, gn) < 0) {
                free(gsel);
                return ros_error_oom(err);
            }
            ab = &px->guarded;
        } else {
            free(gsel); /* every row: as without a guard */
            gsel = NULL;
        }
    }
    const ros_vector *argv[ROS_UDF_MAX_ARGS + 1];
    for (int i = 0; i < nargs && gn > 0; i++)
        if (!(argv[i] = rt_expr_eval(px->args[i], ab, err))) {
            free(gsel);
            return -1;
        }
    /* STRICT: rows with a NULL argument are not sent */
    bool strict_nulls = false;
    for (int i = 0; i < nargs && gn > 0 && p->u.proxy.strict && !strict_nulls; i++)
        strict_nulls = has_null(argv[i], gn);
    bool all = !gsel && !strict_nulls; /* every row of in is sent */
    if (!px->cur) {
        px->cur = calloc(1, sizeof *px->cur);
        if (!px->cur) {
            free(gsel);
            return ros_error_oom(err);
        }
        px->cur_all = true;
        px->nsent = 0;
    }
    chunk *ch = px->cur;
    uint32_t base = ch->rows.nrows;
    if (svc_batch_append(&ch->rows, in, err) < 0) {
        free(gsel);
        return -1;
    }
    if (base > 0) {
        /* a chunk that takes a second batch fills up to max_batch rows (and
         * one batch more): room for them now, rather than realloc copying
         * the rows as it grows (a no-op once there is room) */
        uint64_t want = (uint64_t)p->u.proxy.max_batch + in->nrows;
        for (uint32_t c = 0; c < ch->rows.ncols && want <= UINT32_MAX; c++)
            if (!ros_type_is_varlen(ch->rows.cols[c].type))
                (void)ros_vector_reserve(&ch->rows.cols[c], (uint32_t)want); /* no room: grows as before */
    }
    if (px->cur_all && !all && leave_all(px, err) < 0) {
        free(gsel);
        return -1;
    }
    if (gn > 0 && !px->cur_args.cols) {
        /* first rows: the argument batch takes the argument types */
        px->cur_args.cols = calloc((size_t)nargs + 1, sizeof(ros_vector));
        if (!px->cur_args.cols) {
            free(gsel);
            return ros_error_oom(err);
        }
        px->cur_args.ncols = (uint32_t)nargs;
        for (int i = 0; i < nargs; i++)
            ros_vector_init(&px->cur_args.cols[i], argv[i]->type);
    }
    if (px->cur_all) {
        /* every row so far is sent: stage the evaluated arguments only */
        const ros_vector *src[ROS_UDF_MAX_ARGS + 1];
        for (int i = 0; i < nargs; i++)
            src[i] = px->argcol[i] < 0 ? argv[i] : NULL;
        if (append_cols(&px->cur_args, src, nargs, gn, err) < 0)
            return -1;
        px->nsent += gn;
    } else {
        /* rows to send: all (that need the call), or for a STRICT function
         * those without a NULL argument */
        uint32_t *sel = malloc(sizeof(uint32_t) * (gn ? gn : 1));
        uint32_t *more = realloc(px->sent, sizeof(uint32_t) * (px->nsent + in->nrows));
        if (!sel || !more) {
            free(sel);
            if (more)
                px->sent = more;
            free(gsel);
            return ros_error_oom(err);
        }
        px->sent = more;
        uint32_t n = 0;
        for (uint32_t r = 0; r < gn; r++) {
            bool skip = false;
            for (int i = 0; i < nargs && strict_nulls && !skip; i++)
                skip = ros_vector_is_null(argv[i], r);
            if (!skip) {
                sel[n++] = r;
                px->sent[px->nsent++] = base + (gsel ? gsel[r] : r);
            }
        }
        if (n == gn && n > 0) { /* no row left out of the evaluated ones: no gather */
            rc = append_cols(&px->cur_args, argv, nargs, n, err);
            if (rc == 0)
                px->cur_args.nrows += n;
        } else if (n > 0) {
            rc = append_rows(&px->cur_args, argv, nargs, sel, n, err);
        }
        free(sel);
        if (rc < 0) {
            free(gsel);
            return -1;
        }
    }
    free(gsel);
    if (ch->rows.nrows >= p->u.proxy.max_batch && cut_units(px, err) < 0)
        return -1;
    return 1;
}

/* Submits requests not yet sent, in order, while the client takes them. */
static int submit_pending(rt_proxy *px, ros_error *err)
{
    const plan_node *p = px->plan;
    /* In a job a request keeps its first answer even for a VOLATILE
     * function: re-asked after a restore it is answered from the service's
     * cache, so the job's output is what was computed, once. */
    bool uncached = p->u.proxy.is_volatile && !px->ctx->job_id;
    uint32_t flags = (p->u.proxy.ordered ? SVC_FLAG_ORDERED : 0) | (uncached ? SVC_FLAG_VOLATILE : 0);
    for (unit *u = px->head; u; u = u->next) {
        if (unit_done(u))
            continue;
        for (uint32_t i = 0; i < u->nreqs; i++) {
            preq *r = u->reqs[i];
            if (r->done || r->submitted)
                continue;
            /* a restored request goes back to the instance that has its answer */
            uint32_t fl = flags | (r->alone ? SVC_FLAG_ALONE : 0);
            int rc = r->borrow ? svc_client_submit_rows(px->client, r->seq, p->u.proxy.method, fl,
                                                        &u->ch->args, u->start, u->end, r, -1, err)
                               : svc_client_submit_prefer(px->client, r->seq, p->u.proxy.method, fl,
                                                          &r->args, r, r->restored ? r->member : -1,
                                                          err);
            if (rc < 0) {
                if (!err->detail[0])
                    ros_error_detail(err, "While sending arguments of %s to service \"%s\".", p->u.proxy.function,
                                     p->u.proxy.service);
                if (strcmp(err->code, SVC_ERR_PROGRAM_LIMIT) == 0 && !err->hint[0])
                    ros_error_hint(err,
                                   "Raise the service's max_frame_bytes (ALTER SERVICE %s SET (max_frame_bytes = ...)).",
                                   p->u.proxy.service);
                return -1;
            }
            if (rc == 1)
                return 0; /* in-flight limit: later */
            r->submitted = true;
        }
    }
    return 0;
}

/* True when a request's failure is about its rows (the function's own
 * error, or instances that died running it), not about reaching the
 * service (no ready instance, timeout, protocol, size limits). */
static bool row_failure(const ros_error *e)
{
    static const char *const not_rows[] = {ROS_ERR_CANCELED, ROS_ERR_CANNOT_CONNECT_NOW, SVC_ERR_PROTOCOL_VIOLATION,
                                           SVC_ERR_PROGRAM_LIMIT, ROS_ERR_OUT_OF_MEMORY, ROS_ERR_INTERNAL, NULL};
    for (int i = 0; not_rows[i]; i++)
        if (strcmp(e->code, not_rows[i]) == 0)
            return false;
    return true;
}

/* Evaluates the call's arguments on rows sel[0..n) of rows (gathered into
 * px->guarded, the scratch batch); argv gets nargs vectors of n rows. */
static int eval_args_on(rt_proxy *px, const ros_batch *rows, const uint32_t *sel, uint32_t n,
                        const ros_vector **argv, ros_error *err)
{
    if (gather_batch(px, rows, sel, n) < 0)
        return ros_error_oom(err);
    for (int i = 0; i < px->plan->u.proxy.nargs; i++)
        if (!(argv[i] = rt_expr_eval(px->args[i], &px->guarded, err)))
            return -1;
    return 0;
}

/* "(-1, 'abc')": the arguments of row k of u, for messages. */
static void describe_args(rt_proxy *px, unit *u, uint32_t k, char *out, size_t cap)
{
    snprintf(out, cap, "(");
    const ros_vector *argv[ROS_UDF_MAX_ARGS + 1];
    ros_error ignore;
    ros_error_clear(&ignore);
    char *buf = NULL;
    size_t len, bcap = 0;
    uint32_t row = sent_row(u, k);
    if (eval_args_on(px, &u->ch->rows, &row, 1, argv, &ignore) == 0)
        for (int a = 0; a < px->plan->u.proxy.nargs; a++) {
            len = 0;
            int r = ros_format_value(argv[a], 0, &buf, &len, &bcap);
            bool text = argv[a]->type == ROS_TYPE_TEXT;
            size_t used = strlen(out);
            snprintf(out + used, cap - used, "%s%s%s%s", a ? ", " : "", r == 1 ? "NULL" : text ? "'" : "",
                     r == 1 ? "" : buf ? buf : "", r != 1 && text ? "'" : "");
        }
    size_t used = strlen(out);
    snprintf(out + used, cap - used, ")");
    free(buf);
}

/* The function failed on row k of u (error e): on_error decides. */
static void row_failed(rt_proxy *px, unit *u, uint32_t k, const ros_error *e)
{
    const plan_node *p = px->plan;
    char args[512];
    describe_args(px, u, k, args, sizeof args);
    if (p->u.proxy.on_error == PLAN_ON_ERROR_FAIL) {
        /* the unit fails once all its rows are answered, naming the
         * earliest failing row in input order (whatever answered first) */
        if (u->fail_set && k >= u->fail_k)
            return;
        u->fail_set = true;
        u->fail_k = k;
        u->fail_error = *e;
        ros_strbuf d = ROS_STRBUF_INIT;
        ros_strbuf_appendf(&d, "Function %s (service %s) failed on the row with arguments %s.%s%s", p->u.proxy.function,
                           p->u.proxy.service, args, e->detail[0] ? " " : "", e->detail);
        snprintf(u->fail_error.detail, sizeof u->fail_error.detail, "%.*s", (int)sizeof u->fail_error.detail - 1, ros_strbuf_cstr(&d));
        ros_strbuf_free(&d);
        if (!u->fail_error.hint[0])
            ros_error_hint(&u->fail_error, "Use WITH (on_error = 'null') or 'skip' to go on without such rows.");
        return;
    }
    if (!u->bad && !(u->bad = calloc(u->nsent, 1))) {
        u->failed = true;
        ros_error_oom(&u->error);
        return;
    }
    if (!u->bad[k]) {
        u->bad[k] = 1;
        u->nbad++;
        /* the notice names the earliest such row in input order */
        uint64_t at = u->no << 32 | k;
        if (px->nfailed++ == 0 || at < px->first_at) {
            px->first_at = at;
            px->first_failure = *e;
            snprintf(px->first_args, sizeof px->first_args, "%s", args);
        }
    }
}

/* Builds the arguments of r (rows r->idx of its unit) from the unit's rows. */
static int build_args(rt_proxy *px, preq *r, ros_error *err)
{
    unit *u = r->u;
    uint32_t *sel = malloc(sizeof(uint32_t) * (r->n ? r->n : 1));
    if (!sel || ensure_iota(px, r->n) < 0) {
        free(sel);
        return ros_error_oom(err);
    }
    for (uint32_t i = 0; i < r->n; i++)
        sel[i] = sent_row(u, r->idx ? r->idx[i] : i);
    const ros_vector *argv[ROS_UDF_MAX_ARGS + 1];
    int rc = eval_args_on(px, &u->ch->rows, sel, r->n, argv, err);
    free(sel);
    if (rc == 0) {
        r->args.ncols = 0;
        r->args.nrows = 0;
        rc = append_rows(&r->args, argv, px->plan->u.proxy.nargs, px->iota, r->n, err);
    }
    return rc;
}

/* Asks rows idx[0..n) of u again (idx taken). */
static void retry_rows(rt_proxy *px, unit *u, uint32_t *idx, uint32_t n, bool alone)
{
    ros_error e;
    ros_error_clear(&e);
    preq *r = add_req(px, u, idx, n, alone);
    if (!r) {
        free(idx);
        u->failed = true;
        ros_error_oom(&u->error);
        return;
    }
    if (build_args(px, r, &e) < 0) {
        u->failed = true;
        u->error = e;
    }
}

/* Request r failed with e (error_row: its failing row, or -1). */
static void req_failed(rt_proxy *px, preq *r, const ros_error *e, int64_t error_row)
{
    unit *u = r->u;
    if (!row_failure(e)) {
        u->failed = true;
        u->error = *e;
        return;
    }
    /* instances died running it: suspect every row, ask each alone (in the
     * instance's sandbox, which names a poison row without dying) */
    bool crashed = strcmp(e->code, ROS_ERR_CONNECTION) == 0;
    if (crashed && r->alone && r->victim_rounds < VICTIM_ROUNDS) {
        /* Alone and still its instance died: on the CPU the sandbox would
         * have answered a crash of its own, so it died with the instance
         * (another caller's poison batch killed it): ask again.  Only after
         * VICTIM_ROUNDS such rounds (a GPU handler, which has no sandbox,
         * crashing on it) is the row blamed. */
        uint32_t *idx = malloc(sizeof(uint32_t) * r->n);
        if (!idx) {
            u->failed = true;
            ros_error_oom(&u->error);
            return;
        }
        for (uint32_t i = 0; i < r->n; i++)
            idx[i] = r->idx ? r->idx[i] : i;
        int rounds = r->victim_rounds + 1;
        retry_rows(px, u, idx, r->n, true);
        if (!u->failed)
            u->reqs[u->nreqs - 1]->victim_rounds = rounds;
        return;
    }
    if (!(crashed && !r->alone) && (r->n == 1 || (error_row >= 0 && (uint64_t)error_row < r->n))) {
        uint32_t at = r->n == 1 ? 0 : (uint32_t)error_row;
        row_failed(px, u, r->idx ? r->idx[at] : at, e);
        if (u->failed || r->n == 1)
            return;
        /* the other rows again, without the one the service named */
        uint32_t *idx = malloc(sizeof(uint32_t) * (r->n - 1));
        if (!idx) {
            u->failed = true;
            ros_error_oom(&u->error);
            return;
        }
        for (uint32_t i = 0, j = 0; i < r->n; i++)
            if (i != at)
                idx[j++] = r->idx ? r->idx[i] : i;
        retry_rows(px, u, idx, r->n - 1, r->alone);
        return;
    }
    /* the row is unknown: ask every row alone */
    for (uint32_t i = 0; i < r->n && !u->failed; i++) {
        uint32_t *idx = malloc(sizeof(uint32_t));
        if (!idx) {
            u->failed = true;
            ros_error_oom(&u->error);
            return;
        }
        idx[0] = r->idx ? r->idx[i] : i;
        retry_rows(px, u, idx, 1, true);
    }
}

static void collect(rt_proxy *px, int wait_ms)
{
    svc_result res;
    while (svc_client_poll(px->client, wait_ms, &res) == 1) {
        preq *r = res.tag;
        unit *u = r->u;
        r->done = true;
        r->ok = res.ok;
        u->open--;
        if (res.ok && res.reused)
            px->reused++;
        else if (res.ok && r->restored)
            px->recomputed++;
        if (res.ok) {
            ros_vector_free(&r->result);
            r->result = res.out;
            memset(&res.out, 0, sizeof res.out);
        } else if (!u->failed) {
            req_failed(px, r, &res.error, res.error_row);
        }
        svc_result_clear(&res);
        wait_ms = 0;
    }
}

/* The result column of u (nsent rows; failed rows NULL) into res. */
static int unit_result(rt_proxy *px, unit *u, ros_vector *res, ros_error *err)
{
    const plan_node *p = px->plan;
    ros_type rt = p->types[p->ncols - 1];
    for (uint32_t i = 0; i < u->nreqs; i++) {
        preq *r = u->reqs[i];
        if (!r->ok)
            continue;
        if (r->result.len != r->n)
            return ros_error_set(err, ROS_ERR_EXTERNAL, "service \"%s\" answered %u rows for %u", p->u.proxy.service,
                                 r->result.len, r->n);
        if (r->n && r->result.type != rt)
            return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH,
                                 "service \"%s\" returned type %s, but function %s returns %s", p->u.proxy.service,
                                 ros_type_name(r->result.type), p->u.proxy.function, ros_type_name(rt));
    }
    if (u->nreqs == 1 && u->reqs[0]->ok && !u->reqs[0]->idx) {
        /* the common case: one request answered every row */
        ros_vector_free(res);
        *res = u->reqs[0]->result;
        ros_vector_init(&u->reqs[0]->result, rt);
        return 0;
    }
    /* rows answered by several requests (after a failure): put them in order */
    uint32_t *owner = malloc(sizeof(uint32_t) * (u->nsent + 1));
    uint32_t *pos = malloc(sizeof(uint32_t) * (u->nsent + 1));
    if (!owner || !pos) {
        free(owner);
        free(pos);
        return ros_error_oom(err);
    }
    for (uint32_t k = 0; k < u->nsent; k++)
        owner[k] = UINT32_MAX;
    for (uint32_t i = 0; i < u->nreqs; i++) {
        preq *r = u->reqs[i];
        for (uint32_t j = 0; r->ok && j < r->n; j++) {
            uint32_t k = r->idx ? r->idx[j] : j;
            owner[k] = i;
            pos[k] = j;
        }
    }
    int rc = 0;
    ros_vector_reset(res);
    for (uint32_t k = 0; k < u->nsent && rc == 0; k++) {
        if (owner[k] == UINT32_MAX)
            rc = ros_vector_append_null(res) < 0 ? ros_error_oom(err) : 0;
        else
            rc = rt_vector_append_row(res, &u->reqs[owner[k]]->result, pos[k]) < 0 ? ros_error_oom(err) : 0;
    }
    free(owner);
    free(pos);
    return rc;
}

/* Builds the output batch of a finished unit. */
static int emit(rt_proxy *px, unit *u, ros_batch *out, ros_error *err)
{
    const plan_node *p = px->plan;
    ros_type rt = p->types[p->ncols - 1];
    if (u->failed || u->fail_set) {
        *err = u->failed ? u->error : u->fail_error;
        return -1;
    }
    ros_vector sent_res;
    ros_vector_init(&sent_res, rt);
    if (u->nsent && unit_result(px, u, &sent_res, err) < 0) {
        ros_vector_free(&sent_res);
        return -1;
    }
    /* output rows: the unit's rows, less those dropped by on_error = 'skip' */
    bool skip = u->nbad && p->u.proxy.on_error == PLAN_ON_ERROR_SKIP;
    uint32_t n = u->end - u->start;
    const uint32_t *rows = NULL;
    uint32_t *keep = NULL;
    if (ensure_iota(px, u->end) < 0) {
        ros_vector_free(&sent_res);
        return ros_error_oom(err);
    }
    rows = px->iota + u->start;
    if (skip) {
        if (!(keep = malloc(sizeof(uint32_t) * (n ? n : 1)))) {
            ros_vector_free(&sent_res);
            return ros_error_oom(err);
        }
        uint32_t m = 0;
        for (uint32_t r = u->start, k = 0; r < u->end; r++) {
            bool sent = k < u->nsent && sent_row(u, k) == r;
            if (!(sent && u->bad[k]))
                keep[m++] = r;
            k += sent;
        }
        n = m;
        rows = keep;
    }
    rt_batch_reset(out);
    bool whole = !skip && u->start == 0 && u->end == u->ch->rows.nrows && u->ch->refs == 1;
    int rc = 0;
    for (int c = 0; c < p->ncols - 1 && rc == 0; c++) {
        if (whole) {
            /* the unit is its chunk's only user: move the rows, do not copy */
            ros_vector_free(&out->cols[c]);
            out->cols[c] = u->ch->rows.cols[c];
            ros_vector_init(&u->ch->rows.cols[c], out->cols[c].type);
        } else if (rt_vector_gather(&out->cols[c], &u->ch->rows.cols[c], rows, n) < 0)
            rc = ros_error_oom(err);
    }
    ros_vector *res = &out->cols[p->ncols - 1];
    if (rc == 0 && u->nsent == u->end - u->start && !skip) {
        ros_vector_free(res);
        *res = sent_res;
        ros_vector_init(&sent_res, rt);
    } else if (rc == 0) {
        ros_vector_reset(res);
        for (uint32_t r = u->start, k = 0; r < u->end && rc == 0; r++) {
            bool sent = k < u->nsent && sent_row(u, k) == r;
            if (sent && skip && u->bad[k]) {
                k++;
                continue;
            }
            int a = sent ? rt_vector_append_row(res, &sent_res, k++) : ros_vector_append_null(res);
            if (a < 0)
                rc = ros_error_oom(err);
        }
    }
    ros_vector_free(&sent_res);
    free(keep);
    out->nrows = n;
    return rc;
}

/* At the end of the input: the rows on_error treated, as a notice. */
static void report(rt_proxy *px)
{
    if (px->reported || px->nfailed == 0 || !px->ctx->notice)
        return;
    px->reported = true;
    const plan_node *p = px->plan;
    char msg[1400];
    snprintf(msg, sizeof msg, "function %s failed on %llu row%s, which %s (on_error = '%s'); the first had arguments %s: %s",
             p->u.proxy.function, (unsigned long long)px->nfailed, px->nfailed == 1 ? "" : "s",
             p->u.proxy.on_error == PLAN_ON_ERROR_SKIP ? (px->nfailed == 1 ? "was skipped" : "were skipped")
                                                       : "got NULL",
             p->u.proxy.on_error == PLAN_ON_ERROR_SKIP ? "skip" : "null", px->first_args,
             px->first_failure.message);
    px->ctx->notice(px->ctx->notice_arg, msg);
}

uint64_t rt_proxy_failed_rows(const rt_proxy *px) { return px->nfailed; }

/*
 * The in-flight limit follows the service's size: inflight_per_instance rows
 * (four batches) per instance in the membership the client applied (ready
 * instances only: the coordinator publishes an instance once it is ready and
 * withdraws it before draining), at least one instance's worth.  A growing
 * service gets the requests that keep its new instances busy at once; a
 * shrinking one stops getting more than its remaining instances can take
 * (requests already out finish; nothing new is sent until below the limit).
 */
static void follow_service_size(rt_proxy *px)
{
    uint32_t per = px->plan->u.proxy.inflight_per_instance;
    if (!per)
        return;
    int n = svc_client_members(px->client);
    if (n < 1)
        n = 1;
    if (n == px->limit_members)
        return;
    px->limit_members = n;
    px->limit_rows = (uint64_t)per * (uint64_t)n;
    uint32_t batch = px->plan->u.proxy.max_batch ? px->plan->u.proxy.max_batch : 1;
    uint64_t reqs = (px->limit_rows + batch - 1) / batch + 1;
    svc_client_set_max_inflight(px->client, reqs > UINT32_MAX ? UINT32_MAX : (uint32_t)reqs);
}

uint64_t rt_proxy_inflight_limit(const rt_proxy *px) { return px->limit_rows; }

/* Is a unit ready to be emitted? */
static bool emittable(const rt_proxy *px)
{
    if (px->plan->u.proxy.ordered)
        return px->head && unit_done(px->head);
    for (const unit *u = px->head; u; u = u->next)
        if (unit_done(u))
            return true;
    return false;
}

int rt_proxy_next(rt_proxy *px, rt_op *child, ros_batch *out, int (*check)(void *, ros_error *), void *check_arg,
                  ros_error *err)
{
    for (;;) {
        if (check(check_arg, err) < 0)
            return -1;
        /* a finished unit to emit */
        unit *prev = NULL, *u = px->head;
        if (!px->plan->u.proxy.ordered)
            for (; u && !unit_done(u); prev = u, u = u->next)
                ;
        if (u && unit_done(u)) {
            if (prev)
                prev->next = u->next;
            else
                px->head = u->next;
            if (px->tail == u)
                px->tail = prev;
            px->pending_rows -= u->end - u->start;
            int rc = emit(px, u, out, err);
            unit_free(u);
            if (rc < 0)
                return -1;
            return 1;
        }
        /* more input while there is room */
        follow_service_size(px);
        if (!px->child_done && px->pending_rows < px->limit_rows) {
            int rc = pull(px, child, err);
            if (rc < 0)
                return -1;
            if (rc == 0)
                px->child_done = true;
            if (submit_pending(px, err) < 0)
                return -1;
            collect(px, 0);
            if (rc == 2 && !emittable(px))
                return 2; /* the input is idle (it waited): let the caller act */
            continue;
        }
        if (!px->head) {
            report(px);
            return 0;
        }
        if (submit_pending(px, err) < 0)
            return -1;
        collect(px, 50);
        if (!emittable(px))
            return 2; /* answers are slow: the caller may checkpoint meanwhile */
    }
}

/* ---------------------------------------------------------------- */
/* Checkpoints */

int rt_proxy_snapshot(rt_proxy *px, rt_wbuf *w, ros_error *err)
{
    /* rows still accumulating become units, so all state is in units */
    if (cut_units(px, err) < 0)
        return -1;
    rt_w_u64(w, px->next_seq);
    rt_w_u64(w, px->next_unit);
    rt_w_u64(w, px->nfailed);
    uint32_t nunits = 0;
    for (unit *u = px->head; u; u = u->next) {
        if (u->failed || u->fail_set) {
            /* the job fails on this unit anyway: with its error */
            *err = u->failed ? u->error : u->fail_error;
            return -1;
        }
        nunits++;
    }
    rt_w_u32(w, nunits);
    ros_batch rows = {0, 0, NULL};
    for (unit *u = px->head; u; u = u->next) {
        rt_w_u64(w, u->no);
        uint32_t n = u->end - u->start;
        const ros_batch *src = &u->ch->rows;
        if (u->start != 0 || u->end != src->nrows) {
            if (ensure_iota(px, u->end) < 0)
                return ros_error_oom(err);
            rt_batch_free(&rows);
            ros_type types[src->ncols + 1];
            for (uint32_t c = 0; c < src->ncols; c++)
                types[c] = src->cols[c].type;
            if (rt_batch_init(&rows, (int)src->ncols, types) < 0)
                return ros_error_oom(err);
            for (uint32_t c = 0; c < src->ncols; c++)
                if (rt_vector_gather(&rows.cols[c], &src->cols[c], px->iota + u->start, n) < 0) {
                    rt_batch_free(&rows);
                    return ros_error_oom(err);
                }
            rows.nrows = n;
            src = &rows;
        }
        if (rt_w_batch(w, src, err) < 0) {
            rt_batch_free(&rows);
            return -1;
        }
        rt_w_u32(w, u->nsent);
        for (uint32_t k = 0; k < u->nsent; k++)
            rt_w_u32(w, sent_row(u, k) - u->start);
        rt_w_u32(w, u->nbad);
        if (u->nbad)
            rt_w_bytes(w, u->bad, u->nsent);
        uint32_t live = 0;
        for (uint32_t i = 0; i < u->nreqs; i++)
            live += !u->reqs[i]->done || u->reqs[i]->ok;
        rt_w_u32(w, live);
        for (uint32_t i = 0; i < u->nreqs; i++) {
            preq *r = u->reqs[i];
            if (r->done && !r->ok)
                continue; /* failed: replaced by other requests, or its row treated */
            rt_w_u64(w, r->seq);
            rt_w_u8(w, r->alone);
            rt_w_u8(w, r->done);
            rt_w_u32(w, (uint32_t)r->victim_rounds);
            rt_w_u32(w, r->n);
            rt_w_u8(w, r->idx != NULL);
            for (uint32_t j = 0; r->idx && j < r->n; j++)
                rt_w_u32(w, r->idx[j]);
            if (r->done && rt_w_vector(w, &r->result, err) < 0) {
                rt_batch_free(&rows);
                return -1;
            }
            if (!r->done) {
                /* where it went (its answer is cached there), or where a
                 * restored one not sent again yet went before */
                int m = r->submitted ? svc_client_member_of(px->client, r->seq) : -1;
                if (m < 0 && r->restored)
                    m = r->member;
                rt_w_u32(w, (uint32_t)(m < 0 ? -1 : m));
            }
        }
    }
    rt_batch_free(&rows);
    return w->oom ? ros_error_oom(err) : 0;
}

static int restore_fail(ros_error *err)
{
    if (!err->set)
        ros_error_set(err, ROS_ERR_DATA_CORRUPTED, "checkpoint state of a proxy is malformed");
    return -1;
}

int rt_proxy_restore(rt_proxy *px, rt_rbuf *r, ros_error *err)
{
    px->next_seq = rt_r_u64(r);
    px->next_unit = rt_r_u64(r);
    px->nfailed = rt_r_u64(r);
    uint32_t nunits = rt_r_u32(r);
    for (uint32_t k = 0; k < nunits && !r->bad; k++) {
        unit *u = calloc(1, sizeof *u);
        chunk *ch = calloc(1, sizeof *ch);
        if (!u || !ch) {
            free(u);
            free(ch);
            return ros_error_oom(err);
        }
        u->ch = ch;
        ch->refs = 1;
        if (px->tail)
            px->tail->next = u;
        else
            px->head = u;
        px->tail = u;
        u->no = rt_r_u64(r);
        if (rt_r_batch(r, &ch->rows, err) < 0)
            return -1;
        u->start = 0;
        u->end = ch->rows.nrows;
        px->pending_rows += u->end;
        u->nsent = rt_r_u32(r);
        if (r->bad || u->nsent > u->end)
            return restore_fail(err);
        if (u->nsent && !(u->sent = malloc(sizeof(uint32_t) * u->nsent)))
            return ros_error_oom(err);
        for (uint32_t i = 0; i < u->nsent; i++)
            if ((u->sent[i] = rt_r_u32(r)) >= u->end)
                return restore_fail(err);
        u->nbad = rt_r_u32(r);
        if (u->nbad) {
            const uint8_t *bad = rt_r_bytes(r, u->nsent);
            if (!bad || !(u->bad = malloc(u->nsent)))
                return bad ? ros_error_oom(err) : restore_fail(err);
            memcpy(u->bad, bad, u->nsent);
        }
        uint32_t nreqs = rt_r_u32(r);
        for (uint32_t i = 0; i < nreqs && !r->bad; i++) {
            uint64_t seq = rt_r_u64(r);
            bool alone = rt_r_u8(r) != 0;
            bool done = rt_r_u8(r) != 0;
            int rounds = (int)rt_r_u32(r);
            uint32_t n = rt_r_u32(r);
            bool has_idx = rt_r_u8(r) != 0;
            if (r->bad || n > u->nsent)
                return restore_fail(err);
            uint32_t *idx = NULL;
            if (has_idx) {
                if (!(idx = malloc(sizeof(uint32_t) * (n ? n : 1))))
                    return ros_error_oom(err);
                for (uint32_t j = 0; j < n; j++)
                    if ((idx[j] = rt_r_u32(r)) >= u->nsent) {
                        free(idx);
                        return restore_fail(err);
                    }
            }
            preq *q = add_req_seq(px, u, idx, n, alone, seq);
            if (!q) {
                free(idx);
                return ros_error_oom(err);
            }
            q->victim_rounds = rounds;
            if (done) {
                ros_vector_free(&q->result);
                if (rt_r_vector(r, &q->result, err) < 0)
                    return -1;
                q->done = q->ok = true;
                u->open--;
            } else {
                q->restored = true;
                q->member = (int32_t)rt_r_u32(r);
                if (r->bad || q->member < -1)
                    return restore_fail(err);
                if (build_args(px, q, err) < 0)
                    return -1;
            }
        }
    }
    if (r->bad)
        return restore_fail(err);
    return 0;
}

void rt_proxy_get_stats(const rt_proxy *px, rt_proxy_stats *st)
{
    memset(st, 0, sizeof *st);
    for (const unit *u = px->head; u; u = u->next)
        for (uint32_t i = 0; i < u->nreqs; i++) {
            st->inflight += !u->reqs[i]->done;
            st->answered += u->reqs[i]->done && u->reqs[i]->ok;
        }
    st->recomputed = px->recomputed;
    st->reused = px->reused;
}
