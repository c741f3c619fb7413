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
 * query, seq counts requests, so a retry asks under the same id.
 */
#include "runtime/exec/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rosql/udf.h>

#include "runtime/core/types.h"
#include "service/client.h"
#include "service/coordinator.h"

typedef struct chunk {
    ros_batch rows;  /* copy of one child batch */
    int refs;        /* units still using it */
} chunk;

typedef struct unit {
    struct unit *next;
    chunk *ch;
    uint32_t start, end; /* rows of the chunk */
    uint32_t *sent;      /* chunk rows sent (strict functions skip NULL arguments) */
    uint32_t nsent;
    ros_batch args;      /* built, waiting to be submitted (nsent > 0 && !submitted) */
    bool submitted;
    bool done;
    bool ok;
    ros_vector result;   /* nsent results */
    ros_error error;
    int64_t error_row;
    uint64_t seq;
} unit;

struct rt_proxy {
    rt_exec_ctx *ctx;
    const plan_node *plan;
    svc_client *client;
    rt_expr **args;
    unit *head, *tail;   /* outstanding units in input order */
    uint64_t pending_rows;
    uint64_t next_seq;
    bool child_done;
    uint32_t *iota;      /* 0, 1, 2, ... for gathers */
    uint32_t iota_len;
    /* rows accumulated for the next units */
    chunk *cur;          /* child rows */
    ros_batch cur_args;  /* arguments of the rows to send */
    uint32_t *sent;      /* rows of cur to send (all but STRICT NULLs) */
    uint32_t nsent;
    rt_expr *guard;      /* which rows need the call, or NULL: all */
    ros_batch guarded;   /* the child's rows that need it, when not all do */
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

static void unit_free(unit *u)
{
    if (!u)
        return;
    if (u->ch && --u->ch->refs == 0) {
        rt_batch_free(&u->ch->rows);
        free(u->ch);
    }
    free(u->sent);
    svc_batch_free(&u->args);
    ros_vector_free(&u->result);
    free(u);
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

    svc_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.service = p->u.proxy.service;
    uint32_t batch = p->u.proxy.max_batch ? p->u.proxy.max_batch : 1;
    cfg.max_inflight = (p->u.proxy.max_inflight + batch - 1) / batch + 1;
    cfg.timeout_ms = p->u.proxy.timeout_ms;
    cfg.max_retries = p->u.proxy.max_retries;
    cfg.max_frame = (size_t)p->u.proxy.max_frame;
    cfg.job = 0; /* ad-hoc query: the client draws a random job id */
    cfg.op = (uint32_t)p->u.proxy.op_id;
    /* the function's service exists (the catalog says so), maybe not ready yet */
    if (!(px->client = svc_coord_client(cat_path(ctx->db), &cfg, false, err)))
        goto fail;
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
    if (px->cur) {
        rt_batch_free(&px->cur->rows);
        free(px->cur);
    }
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
    uint32_t k = 0; /* next entry of cur_sent */
    int rc = 0;
    for (uint32_t start = 0; start < nrows && rc == 0; start += batch) {
        uint32_t end = start + batch < nrows ? start + batch : nrows;
        unit *u = calloc(1, sizeof *u);
        if (!u) {
            rc = ros_error_oom(err);
            break;
        }
        u->ch = ch;
        ch->refs++;
        u->start = start;
        u->end = end;
        u->seq = px->next_seq++;
        u->error_row = -1;
        if (px->tail)
            px->tail->next = u;
        else
            px->head = u;
        px->tail = u;
        px->pending_rows += end - start;
        uint32_t lo = k;
        while (k < px->nsent && px->sent[k] < end)
            k++;
        u->nsent = k - lo;
        if (u->nsent == 0) {
            /* every row has a NULL argument: nothing to ask */
            ros_vector_init(&u->result, p->types[p->ncols - 1]);
            u->done = u->ok = true;
            continue;
        }
        u->sent = malloc(sizeof(uint32_t) * u->nsent);
        if (!u->sent || ensure_iota(px, k) < 0) {
            rc = ros_error_oom(err);
            break;
        }
        memcpy(u->sent, px->sent + lo, sizeof(uint32_t) * u->nsent);
        if (lo == 0 && k == px->nsent) {
            /* the whole accumulated argument batch: move it */
            u->args = px->cur_args;
            memset(&px->cur_args, 0, sizeof px->cur_args);
            continue;
        }
        const ros_vector *cols[ROS_UDF_MAX_ARGS + 1];
        for (int i = 0; i < nargs; i++)
            cols[i] = &px->cur_args.cols[i];
        rc = append_rows(&u->args, cols, nargs, px->iota + lo, u->nsent, err);
    }
    svc_batch_free(&px->cur_args);
    px->nsent = 0;
    if (ch->refs == 0) {
        rt_batch_free(&ch->rows);
        free(ch);
    }
    return rc;
}

/*
 * Pulls one child batch into the rows being accumulated; once they reach
 * max_batch (or the input ends) they are cut into units.  Requests so hold
 * max_batch rows whatever the child's batch size.  Returns 1, 0 at the end
 * of the input, -1 on error.
 */
static int pull(rt_proxy *px, rt_op *child, ros_error *err)
{
    ros_batch *in;
    int rc = rt_op_next(child, &in, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return cut_units(px, err) < 0 ? -1 : 0;
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
        }
    }
    const ros_vector *argv[ROS_UDF_MAX_ARGS + 1];
    for (int i = 0; i < nargs && gn > 0; i++)
        if (!(argv[i] = rt_expr_eval(px->args[i], ab, err))) {
            free(gsel);
            return -1;
        }
    if (!px->cur) {
        px->cur = calloc(1, sizeof *px->cur);
        if (!px->cur) {
            free(gsel);
            return ros_error_oom(err);
        }
    }
    chunk *ch = px->cur;
    uint32_t base = ch->rows.nrows;
    if (svc_batch_append(&ch->rows, in, err) < 0) {
        free(gsel);
        return -1;
    }
    /* rows to send: all (that need the call), or for a STRICT function those
     * without a NULL argument */
    uint32_t *sel = malloc(sizeof(uint32_t) * (gn ? gn : 1));
    uint32_t *more = realloc(px->sent, sizeof(uint32_t) * (px->nsent + in->nrows));
    if (!sel || !more) {
        free(sel);
        free(gsel);
        return ros_error_oom(err);
    }
    px->sent = more;
    uint32_t n = 0;
    for (uint32_t r = 0; r < gn; r++) {
        bool skip = false;
        for (int i = 0; i < nargs && p->u.proxy.strict && !skip; i++)
            skip = ros_vector_is_null(argv[i], r);
        if (!skip) {
            sel[n++] = r;
            px->sent[px->nsent++] = base + (gsel ? gsel[r] : r);
        }
    }
    free(gsel);
    if (n > 0 && px->cur_args.ncols == 0 && px->cur_args.nrows == 0) {
        /* first rows: the argument batch takes the argument types */
        px->cur_args.cols = calloc((size_t)nargs + 1, sizeof(ros_vector));
        if (!px->cur_args.cols) {
            free(sel);
            return ros_error_oom(err);
        }
        px->cur_args.ncols = (uint32_t)nargs;
        for (int i = 0; i < nargs; i++)
            ros_vector_init(&px->cur_args.cols[i], argv[i]->type);
    }
    rc = n > 0 ? append_rows(&px->cur_args, argv, nargs, sel, n, err) : 0;
    free(sel);
    if (rc < 0)
        return -1;
    if (ch->rows.nrows >= p->u.proxy.max_batch && cut_units(px, err) < 0)
        return -1;
    return 1;
}

/* Submits units not yet sent, in order, while the client takes them. */
static int submit_pending(rt_proxy *px, ros_error *err)
{
    const plan_node *p = px->plan;
    uint32_t flags = (p->u.proxy.ordered ? SVC_FLAG_ORDERED : 0) | (p->u.proxy.is_volatile ? SVC_FLAG_VOLATILE : 0);
    for (unit *u = px->head; u; u = u->next) {
        if (u->done || u->submitted)
            continue;
        int rc = svc_client_submit(px->client, u->seq, p->u.proxy.method, flags, &u->args, u, err);
        if (rc < 0) {
            if (!err->detail[0])
                ros_error_detail(err, "While sending arguments of %s to service \"%s\".", p->u.proxy.function,
                                 p->u.proxy.service);
            if (strcmp(err->code, SVC_ERR_PROGRAM_LIMIT) == 0 && !err->hint[0])
                ros_error_hint(err, "Raise the service's max_frame_bytes (ALTER SERVICE %s SET (max_frame_bytes = ...)).",
                               p->u.proxy.service);
            return -1;
        }
        if (rc == 1)
            return 0; /* in-flight limit: later */
        u->submitted = true;
    }
    return 0;
}

static void collect(rt_proxy *px, int wait_ms)
{
    svc_result res;
    while (svc_client_poll(px->client, wait_ms, &res) == 1) {
        unit *u = res.tag;
        u->done = true;
        u->ok = res.ok;
        if (res.ok) {
            u->result = res.out;
            memset(&res.out, 0, sizeof res.out);
        } else {
            u->error = res.error;
            u->error_row = res.error_row;
        }
        svc_result_clear(&res);
        wait_ms = 0;
    }
}

/* Builds the output batch of a finished unit. */
static int emit(rt_proxy *px, unit *u, ros_batch *out, ros_error *err)
{
    const plan_node *p = px->plan;
    ros_type rt = p->types[p->ncols - 1];
    if (!u->ok) {
        *err = u->error;
        if (u->error_row >= 0 && (uint64_t)u->error_row < u->nsent)
            ros_error_detail(err, "Function %s (service %s) failed on input row %u of request %llu.",
                             p->u.proxy.function, p->u.proxy.service, u->sent[u->error_row] - u->start,
                             (unsigned long long)u->seq);
        return -1;
    }
    if (u->result.len != u->nsent)
        return ros_error_set(err, ROS_ERR_EXTERNAL, "service \"%s\" answered %u rows for %u", p->u.proxy.service,
                             u->result.len, u->nsent);
    if (u->nsent && u->result.type != rt)
        return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH,
                             "service \"%s\" returned type %s, but function %s returns %s", p->u.proxy.service,
                             ros_type_name(u->result.type), p->u.proxy.function, ros_type_name(rt));
    uint32_t n = u->end - u->start;
    if (ensure_iota(px, u->end) < 0)
        return ros_error_oom(err);
    rt_batch_reset(out);
    bool whole = u->start == 0 && u->end == u->ch->rows.nrows && u->ch->refs == 1;
    for (int c = 0; c < p->ncols - 1; c++) {
        if (whole) {
            /* the unit is its chunk's only user: move the rows, do not copy */
            ros_vector_free(&out->cols[c]);
            out->cols[c] = u->ch->rows.cols[c];
            ros_vector_init(&u->ch->rows.cols[c], out->cols[c].type);
        } else if (rt_vector_gather(&out->cols[c], &u->ch->rows.cols[c], px->iota + u->start, n) < 0)
            return ros_error_oom(err);
    }
    ros_vector *res = &out->cols[p->ncols - 1];
    if (u->nsent == n) {
        ros_vector_free(res);
        *res = u->result;
        ros_vector_init(&u->result, res->type);
    } else {
        ros_vector_reset(res);
        for (uint32_t r = u->start, k = 0; r < u->end; r++) {
            int rc = k < u->nsent && u->sent[k] == r ? rt_vector_append_row(res, &u->result, k++)
                                                      : ros_vector_append_null(res);
            if (rc < 0)
                return ros_error_oom(err);
        }
    }
    out->nrows = n;
    return 0;
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
            for (; u && !u->done; prev = u, u = u->next)
                ;
        if (u && u->done) {
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
        if (!px->child_done && px->pending_rows < px->plan->u.proxy.max_inflight) {
            int rc = pull(px, child, err);
            if (rc < 0)
                return -1;
            if (rc == 0)
                px->child_done = true;
            if (submit_pending(px, err) < 0)
                return -1;
            collect(px, 0);
            continue;
        }
        if (!px->head)
            return 0;
        if (submit_pending(px, err) < 0)
            return -1;
        collect(px, 50);
    }
}
