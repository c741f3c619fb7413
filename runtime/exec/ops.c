/*
 * ops.c
 *    Pull-based batch operators: scan, values, filter, project, hash
 *    aggregate, distinct, sort, limit, insert.
 *
 * Each operator returns its own output batch from next(); the batch stays
 * valid until the following call.  Project returns a batch of views (column
 * structs that point at the child's or the expressions' buffers), so it
 * never copies a column it passes through.
 */
#include "runtime/exec/exec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/connectors/connector.h"
#include "runtime/core/types.h"
#include "runtime/exec/ckpt.h"
#include "runtime/exec/proxy.h"

typedef int (*op_next_fn)(rt_op *op, ros_batch **out, ros_error *err);
typedef void (*op_free_fn)(rt_op *op);

struct rt_op {
    op_next_fn next;
    op_free_fn free;
    rt_exec_ctx *ctx;
    const plan_node *plan;
    rt_op *child;
    ros_batch out;            /* output batch */
    bool views;               /* out's columns are views: do not free their buffers */
    int nexprs;
    rt_expr **exprs;
    bool done;
    /* operator specific */
    rt_source *src;           /* scan */
    rt_sink *sink;            /* insert */
    int64_t skipped, emitted; /* limit */
    uint32_t *sel;            /* filter */
    uint32_t selcap;
    struct hash_state *hash;  /* agg, distinct */
    struct sort_state *sort;  /* sort */
    rt_proxy *proxy;          /* proxy */
};

/* Checked once per batch by the operators that loop over their input. */
static int check_cancel(rt_op *op, ros_error *err)
{
    if (op->ctx->cancel && *op->ctx->cancel)
        return ros_error_set(err, ROS_ERR_CANCELED, "canceling statement due to user request");
    if (op->ctx->deadline_ns) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec > op->ctx->deadline_ns)
            return ros_error_set(err, ROS_ERR_CANCELED, "canceling statement due to statement timeout");
    }
    return 0;
}

static int init_out(rt_op *op, ros_error *err)
{
    if (rt_batch_init(&op->out, op->plan->ncols, op->plan->types) < 0)
        return ros_error_oom(err);
    return 0;
}

static int compile_exprs(rt_op *op, int n, plan_expr **exprs, ros_error *err)
{
    op->exprs = calloc((size_t)n + 1, sizeof(rt_expr *));
    if (!op->exprs)
        return ros_error_oom(err);
    op->nexprs = n;
    for (int i = 0; i < n; i++)
        if (exprs[i] && !(op->exprs[i] = rt_expr_compile(op->ctx, exprs[i], err)))
            return -1;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Scan */

static int scan_next(rt_op *op, ros_batch **out, ros_error *err)
{
    for (;;) {
        if (check_cancel(op, err) < 0)
            return -1;
        int rc = op->src->ops->next(op->src, &op->out, op->ctx->batch_size, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
        if (rc == 2) {
            /* an unbounded source with nothing right now: wait a little,
             * then let the caller decide (a job checkpoints meanwhile) */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            return 2;
        }
        if (op->out.nrows == 0)
            continue;
        op->ctx->rows_read += op->out.nrows;
        *out = &op->out;
        return 1;
    }
}

/* ---------------------------------------------------------------- */
/* Values */

static int values_next(rt_op *op, ros_batch **out, ros_error *err)
{
    if (op->done)
        return 0;
    op->done = true;
    const plan_node *p = op->plan;
    int ncols = p->ncols;
    ros_batch one = {0, 1, NULL};
    rt_batch_reset(&op->out);
    for (int r = 0; r < p->u.values.nrows; r++)
        for (int c = 0; c < ncols; c++) {
            rt_expr *x = op->exprs[(size_t)r * ncols + c];
            const ros_vector *v = rt_expr_eval(x, &one, err);
            if (!v)
                return -1;
            if (rt_vector_append_row(&op->out.cols[c], v, 0) < 0)
                return ros_error_oom(err);
        }
    op->out.nrows = (uint32_t)p->u.values.nrows;
    *out = &op->out;
    return 1;
}

/* ---------------------------------------------------------------- */
/* Filter */

static int filter_next(rt_op *op, ros_batch **out, ros_error *err)
{
    for (;;) {
        ros_batch *in;
        int rc = rt_op_next(op->child, &in, err);
        if (rc != 1)
            return rc;
        const ros_vector *pred = rt_expr_eval(op->exprs[0], in, err);
        if (!pred)
            return -1;
        uint32_t n = in->nrows;
        if (n > op->selcap) {
            uint32_t *s = realloc(op->sel, sizeof(uint32_t) * n);
            if (!s)
                return ros_error_oom(err);
            op->sel = s;
            op->selcap = n;
        }
        uint32_t k = 0;
        const uint8_t *pv = ROS_VEC_BOOL(pred);
        for (uint32_t i = 0; i < n; i++)
            if (pv[i] && !ros_vector_is_null(pred, i))
                op->sel[k++] = i;
        if (k == 0)
            continue;
        /* the filter's own columns: a call's proxy below it adds one that
         * only the condition reads */
        for (uint32_t c = 0; c < op->out.ncols && c < in->ncols; c++)
            if (rt_vector_gather(&op->out.cols[c], &in->cols[c], op->sel, k) < 0)
                return ros_error_oom(err);
        op->out.nrows = k;
        *out = &op->out;
        return 1;
    }
}

/* ---------------------------------------------------------------- */
/* Project */

static int project_next(rt_op *op, ros_batch **out, ros_error *err)
{
    ros_batch *in;
    int rc = rt_op_next(op->child, &in, err);
    if (rc != 1)
        return rc;
    for (int i = 0; i < op->nexprs; i++) {
        const ros_vector *v = rt_expr_eval(op->exprs[i], in, err);
        if (!v)
            return -1;
        op->out.cols[i] = *v; /* a view */
        op->out.cols[i].type = op->plan->types[i];
    }
    op->out.nrows = in->nrows;
    *out = &op->out;
    return 1;
}

/* ---------------------------------------------------------------- */
/* Hash table for aggregation and DISTINCT */

typedef struct agg_state {
    int64_t count;       /* rows counted (count) / non-NULL values seen (sum, avg, min, max) */
    int64_t isum;        /* min/max: the integer best, or the index of a varlen best */
    double fsum;         /* float sum; min/max: the float best */
    __int128 wide;       /* integer sum, exact: only the result must fit a bigint */
} agg_state;

typedef struct hash_state {
    ros_strbuf keys;         /* encoded group keys, back to back */
    uint64_t *hashes;        /* per group */
    size_t *key_off;         /* per group: offset into keys */
    uint32_t *key_len;
    uint32_t ngroups, capgroups;
    int32_t *slots;          /* open addressing: group id or -1 */
    uint32_t nslots;
    ros_batch groups;        /* group key values, one row per group */
    int naggs;
    agg_state *states;       /* ngroups * naggs */
    ros_vector *best;        /* per agg: variable-width MIN/MAX values seen as best so far */
    struct hash_state **distinct; /* per agg with DISTINCT: set of (group, value) */
    ros_strbuf scratch;
    uint32_t emit_pos;       /* next group to emit */
} hash_state;

static void hash_free(hash_state *h)
{
    if (!h)
        return;
    ros_strbuf_free(&h->keys);
    ros_strbuf_free(&h->scratch);
    free(h->hashes);
    free(h->key_off);
    free(h->key_len);
    free(h->slots);
    rt_batch_free(&h->groups);
    free(h->states);
    if (h->best) {
        for (int i = 0; i < h->naggs; i++)
            ros_vector_free(&h->best[i]);
        free(h->best);
    }
    if (h->distinct) {
        for (int i = 0; i < h->naggs; i++)
            hash_free(h->distinct[i]);
        free(h->distinct);
    }
    free(h);
}

static hash_state *hash_new(int nkeys, const ros_type *types, int naggs)
{
    hash_state *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->naggs = naggs;
    h->nslots = 1024;
    h->slots = malloc(sizeof(int32_t) * h->nslots);
    if (!h->slots || rt_batch_init(&h->groups, nkeys, types) < 0) {
        hash_free(h);
        return NULL;
    }
    memset(h->slots, 0xff, sizeof(int32_t) * h->nslots);
    return h;
}

static int hash_grow(hash_state *h)
{
    uint32_t ns = h->nslots * 2;
    int32_t *slots = malloc(sizeof(int32_t) * ns);
    if (!slots)
        return -1;
    memset(slots, 0xff, sizeof(int32_t) * ns);
    for (uint32_t g = 0; g < h->ngroups; g++) {
        uint32_t s = (uint32_t)h->hashes[g] & (ns - 1);
        while (slots[s] >= 0)
            s = (s + 1) & (ns - 1);
        slots[s] = (int32_t)g;
    }
    free(h->slots);
    h->slots = slots;
    h->nslots = ns;
    return 0;
}

/*
 * Finds or adds the group whose encoded key is in h->scratch.  On a new
 * group, *is_new is set (the caller appends its key values).  Returns the
 * group id or -1 on OOM.
 */
static int64_t hash_lookup(hash_state *h, bool *is_new)
{
    const char *k = ros_strbuf_cstr(&h->scratch);
    uint32_t klen = (uint32_t)h->scratch.len;
    uint64_t hv = rt_hash_bytes(k, klen);
    uint32_t s = (uint32_t)hv & (h->nslots - 1);
    while (h->slots[s] >= 0) {
        uint32_t g = (uint32_t)h->slots[s];
        if (h->hashes[g] == hv && h->key_len[g] == klen && memcmp(h->keys.data + h->key_off[g], k, klen) == 0) {
            *is_new = false;
            return g;
        }
        s = (s + 1) & (h->nslots - 1);
    }
    if (h->ngroups == h->capgroups) {
        uint32_t nc = h->capgroups ? h->capgroups * 2 : 256;
        uint64_t *nh = realloc(h->hashes, sizeof(uint64_t) * nc);
        if (nh)
            h->hashes = nh;
        size_t *no = realloc(h->key_off, sizeof(size_t) * nc);
        if (no)
            h->key_off = no;
        uint32_t *nl = realloc(h->key_len, sizeof(uint32_t) * nc);
        if (nl)
            h->key_len = nl;
        agg_state *st = h->naggs ? realloc(h->states, sizeof(agg_state) * (size_t)nc * h->naggs) : h->states;
        if (h->naggs && st)
            h->states = st;
        if (!nh || !no || !nl || (h->naggs && !st))
            return -1;
        h->capgroups = nc;
    }
    uint32_t g = h->ngroups++;
    h->hashes[g] = hv;
    h->key_off[g] = h->keys.len;
    h->key_len[g] = klen;
    ros_strbuf_appendn(&h->keys, k, klen);
    if (h->keys.oom)
        return -1;
    if (h->naggs)
        memset(&h->states[(size_t)g * h->naggs], 0, sizeof(agg_state) * h->naggs);
    h->slots[s] = (int32_t)g;
    if (h->ngroups * 2 > h->nslots && hash_grow(h) < 0)
        return -1;
    *is_new = true;
    return g;
}

/* ---------------------------------------------------------------- */
/* Aggregate */

/* Adds row i of v (not NULL) to a sum; result FLOAT64 sums integers as
 * doubles (avg).  Integer sums are exact in 128 bits (2^64 bigints cannot
 * overflow them): a sum whose result fits a bigint is right even when a
 * partial sum did not, and agg_emit checks the result. */
static void agg_sum_add(agg_state *st, const ros_vector *v, uint32_t i, ros_type result)
{
    if (ros_type_is_integer(v->type)) {
        int64_t x = v->type == ROS_TYPE_INT16 ? ROS_VEC_I16(v)[i] : v->type == ROS_TYPE_INT32 ? ROS_VEC_I32(v)[i]
                                                                                             : ROS_VEC_I64(v)[i];
        if (result == ROS_TYPE_FLOAT64)
            st->fsum += (double)x;
        else
            st->wide += x;
    } else {
        st->fsum += v->type == ROS_TYPE_FLOAT32 ? ROS_VEC_F32(v)[i] : ROS_VEC_F64(v)[i];
    }
    st->count++;
}

/* Rows of v among the first n that are not NULL (64 rows per step). */
static uint32_t count_valid(const ros_vector *v, uint32_t n)
{
    if (!v->validity)
        return n;
    uint32_t c = 0, words = n / 64;
    for (uint32_t w = 0; w < words; w++) {
        uint64_t bits;
        memcpy(&bits, v->validity + (size_t)w * 8, sizeof bits);
        c += (uint32_t)__builtin_popcountll(bits);
    }
    for (uint32_t i = words * 64; i < n; i++)
        c += !ros_vector_is_null(v, i);
    return c;
}

/*
 * sum/avg of a whole column into st, in row order (float sums add in the
 * same order as row by row, so both paths give the same bits).  The loops
 * are per type, without a NULL test when the column has no NULLs: this is
 * the aggregate's inner loop for every ungrouped sum.
 */
#define SUM_LOOP(T, acc, conv)                                                 \
    do {                                                                       \
        const T *x_ = (const T *)v->values;                                    \
        __typeof__(acc) a_ = acc; /* in a register, not through st */         \
        if (nonull) {                                                          \
            for (uint32_t i_ = 0; i_ < n; i_++)                                \
                a_ += conv x_[i_];                                             \
        } else {                                                               \
            for (uint32_t i_ = 0; i_ < n; i_++)                                \
                if (!ros_vector_is_null(v, i_))                                \
                    a_ += conv x_[i_];                                         \
        }                                                                      \
        acc = a_;                                                              \
    } while (0)

static void agg_sum_column(agg_state *st, const ros_vector *v, uint32_t n, ros_type result)
{
    bool as_double = result != ROS_TYPE_INT64;
    uint32_t valid = count_valid(v, n);
    bool nonull = valid == n; /* a validity bitmap with every bit set: no test per row */
    switch (v->type) {
    case ROS_TYPE_INT16:
        if (as_double)
            SUM_LOOP(int16_t, st->fsum, (double));
        else
            SUM_LOOP(int16_t, st->wide, );
        break;
    case ROS_TYPE_INT32:
        if (as_double)
            SUM_LOOP(int32_t, st->fsum, (double));
        else
            SUM_LOOP(int32_t, st->wide, );
        break;
    case ROS_TYPE_INT64:
        if (as_double)
            SUM_LOOP(int64_t, st->fsum, (double));
        else
            SUM_LOOP(int64_t, st->wide, );
        break;
    case ROS_TYPE_FLOAT32:
        SUM_LOOP(float, st->fsum, (double));
        break;
    default:
        SUM_LOOP(double, st->fsum, );
        break;
    }
    st->count += valid;
}
#undef SUM_LOOP

/*
 * MIN/MAX: fixed-width values live in the group's agg_state (isum for
 * integers and booleans, fsum for floats); variable-width values are
 * appended to a side vector (h->best[a]) and isum holds the index of the
 * current best there.
 */
static int agg_minmax_add(hash_state *h, int a, agg_state *st, bool is_min, const ros_vector *v, uint32_t i)
{
    int c = 0;
    if (ros_type_is_varlen(v->type)) {
        ros_vector *best = &h->best[a];
        if (st->count > 0)
            c = rt_value_cmp(v, i, best, (uint32_t)st->isum);
        if (st->count == 0 || (is_min ? c < 0 : c > 0)) {
            if (rt_vector_append_row(best, v, i) < 0)
                return -1;
            st->isum = best->len - 1;
        }
    } else if (v->type == ROS_TYPE_FLOAT32 || v->type == ROS_TYPE_FLOAT64) {
        double d = v->type == ROS_TYPE_FLOAT32 ? ROS_VEC_F32(v)[i] : ROS_VEC_F64(v)[i];
        /* NaN sorts above every number, as in PostgreSQL */
        if (st->count > 0)
            c = isnan(d) ? (isnan(st->fsum) ? 0 : 1) : isnan(st->fsum) ? -1 : (d > st->fsum) - (d < st->fsum);
        if (st->count == 0 || (is_min ? c < 0 : c > 0))
            st->fsum = d;
    } else {
        int64_t x = v->type == ROS_TYPE_BOOL ? ROS_VEC_BOOL(v)[i] : v->type == ROS_TYPE_INT16 ? ROS_VEC_I16(v)[i]
                    : v->type == ROS_TYPE_INT32 ? ROS_VEC_I32(v)[i] : ROS_VEC_I64(v)[i];
        if (st->count == 0 || (is_min ? x < st->isum : x > st->isum))
            st->isum = x;
    }
    st->count++;
    return 0;
}

/* Adds row i to aggregate a of group g (state st); -1 when out of memory. */
static int agg_add_row(hash_state *h, const plan_aggcall *ac, int a, agg_state *st, int64_t g, const ros_vector *v,
                       const ros_vector *filter, uint32_t i)
{
    if (filter && (ros_vector_is_null(filter, i) || !ROS_VEC_BOOL(filter)[i]))
        return 0;
    if (ac->kind == AGG_COUNT_STAR) {
        st->count++;
        return 0;
    }
    if (ros_vector_is_null(v, i))
        return 0;
    if (ac->distinct) {
        hash_state *d = h->distinct[a];
        ros_strbuf_reset(&d->scratch);
        ros_strbuf_appendn(&d->scratch, (const char *)&g, sizeof g);
        rt_key_encode(v, i, &d->scratch);
        bool is_new;
        if (d->scratch.oom || hash_lookup(d, &is_new) < 0)
            return -1;
        if (!is_new)
            return 0;
    }
    switch (ac->kind) {
    case AGG_COUNT:
        st->count++;
        break;
    case AGG_SUM:
    case AGG_AVG:
        agg_sum_add(st, v, i, ac->kind == AGG_AVG ? ROS_TYPE_FLOAT64 : ac->type);
        break;
    case AGG_MIN:
    case AGG_MAX:
        return agg_minmax_add(h, a, st, ac->kind == AGG_MIN, v, i);
    default:
        break;
    }
    return 0;
}

/* Adds the first n rows of v to an ungrouped aggregate in one go when it
 * can (count(*), count, sum and avg without DISTINCT or FILTER); false when
 * the caller must add them row by row. */
static bool agg_add_column(const plan_aggcall *ac, agg_state *st, const ros_vector *v, const ros_vector *filter,
                           uint32_t n)
{
    if (filter || ac->distinct)
        return false;
    switch (ac->kind) {
    case AGG_COUNT_STAR:
        st->count += n;
        return true;
    case AGG_COUNT:
        st->count += count_valid(v, n);
        return true;
    case AGG_SUM:
    case AGG_AVG:
        if (!ros_type_is_numeric(v->type))
            return false;
        agg_sum_column(st, v, n, ac->kind == AGG_AVG ? ROS_TYPE_FLOAT64 : ac->type);
        return true;
    default:
        return false;
    }
}

/* Consumes the whole input into the hash table. */
static int agg_build(rt_op *op, ros_error *err)
{
    const plan_node *p = op->plan;
    int ngroup = p->u.agg.ngroup, naggs = p->u.agg.naggs;
    hash_state *h = op->hash;
    for (;;) {
        if (check_cancel(op, err) < 0)
            return -1;
        ros_batch *in;
        int rc = rt_op_next(op->child, &in, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        if (rc == 2)
            continue; /* an unbounded input with nothing now */
        uint32_t n = in->nrows;
        const ros_vector *keys[ngroup + 1];
        const ros_vector *args[naggs + 1];
        const ros_vector *filters[naggs + 1];
        for (int k = 0; k < ngroup; k++)
            if (!(keys[k] = rt_expr_eval(op->exprs[k], in, err)))
                return -1;
        for (int a = 0; a < naggs; a++) {
            rt_expr *ax = op->exprs[ngroup + 2 * a], *fx = op->exprs[ngroup + 2 * a + 1];
            args[a] = ax ? rt_expr_eval(ax, in, err) : NULL;
            filters[a] = fx ? rt_expr_eval(fx, in, err) : NULL;
            if ((ax && !args[a]) || (fx && !filters[a]))
                return -1;
        }
        if (ngroup == 0) {
            /* one group: each aggregate takes the whole column at once */
            for (int a = 0; a < naggs; a++) {
                const plan_aggcall *ac = &p->u.agg.aggs[a];
                agg_state *st = &h->states[a];
                if (agg_add_column(ac, st, args[a], filters[a], n))
                    continue;
                for (uint32_t i = 0; i < n; i++)
                    if (agg_add_row(h, ac, a, st, 0, args[a], filters[a], i) < 0)
                        return ros_error_oom(err);
            }
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            ros_strbuf_reset(&h->scratch);
            for (int k = 0; k < ngroup; k++)
                rt_key_encode(keys[k], i, &h->scratch);
            if (h->scratch.oom)
                return ros_error_oom(err);
            bool is_new;
            int64_t g = hash_lookup(h, &is_new);
            if (g < 0)
                return ros_error_oom(err);
            if (is_new)
                for (int k = 0; k < ngroup; k++)
                    if (rt_vector_append_row(&h->groups.cols[k], keys[k], i) < 0)
                        return ros_error_oom(err);
            for (int a = 0; a < naggs; a++)
                if (agg_add_row(h, &p->u.agg.aggs[a], a, &h->states[(size_t)g * naggs + a], g, args[a], filters[a],
                                i) < 0)
                    return ros_error_oom(err);
        }
    }
    return 0;
}

static int agg_emit(rt_op *op, ros_batch **out, ros_error *err)
{
    const plan_node *p = op->plan;
    int ngroup = p->u.agg.ngroup, naggs = p->u.agg.naggs;
    hash_state *h = op->hash;
    uint32_t total = ngroup == 0 ? 1 : h->ngroups;
    if (h->emit_pos >= total)
        return 0;
    uint32_t end = h->emit_pos + op->ctx->batch_size;
    if (end > total)
        end = total;
    rt_batch_reset(&op->out);
    for (uint32_t g = h->emit_pos; g < end; g++) {
        for (int k = 0; k < ngroup; k++)
            if (rt_vector_append_row(&op->out.cols[k], &h->groups.cols[k], g) < 0)
                return ros_error_oom(err);
        for (int a = 0; a < naggs; a++) {
            const plan_aggcall *ac = &p->u.agg.aggs[a];
            ros_vector *o = &op->out.cols[ngroup + a];
            agg_state *st = &h->states[(size_t)g * naggs + a];
            int rc = 0;
            switch (ac->kind) {
            case AGG_COUNT_STAR:
            case AGG_COUNT:
                rc = ros_vector_append_i64(o, st->count);
                break;
            case AGG_SUM:
                if (st->count == 0)
                    rc = ros_vector_append_null(o);
                else if (ac->type == ROS_TYPE_INT64) {
                    if (st->wide > INT64_MAX || st->wide < INT64_MIN)
                        return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "bigint out of range");
                    rc = ros_vector_append_i64(o, (int64_t)st->wide);
                }
                else if (ac->type == ROS_TYPE_FLOAT32)
                    rc = ros_vector_append_f32(o, (float)st->fsum);
                else
                    rc = ros_vector_append_f64(o, st->fsum);
                break;
            case AGG_AVG:
                rc = st->count == 0 ? ros_vector_append_null(o) : ros_vector_append_f64(o, st->fsum / (double)st->count);
                break;
            case AGG_MIN:
            case AGG_MAX:
                if (st->count == 0)
                    rc = ros_vector_append_null(o);
                else if (ros_type_is_varlen(o->type))
                    rc = rt_vector_append_row(o, &h->best[a], (uint32_t)st->isum);
                else
                    switch (o->type) {
                    case ROS_TYPE_BOOL: rc = ros_vector_append_bool(o, st->isum != 0); break;
                    case ROS_TYPE_INT16: rc = ros_vector_append_i16(o, (int16_t)st->isum); break;
                    case ROS_TYPE_INT32: rc = ros_vector_append_i32(o, (int32_t)st->isum); break;
                    case ROS_TYPE_INT64: rc = ros_vector_append_i64(o, st->isum); break;
                    case ROS_TYPE_FLOAT32: rc = ros_vector_append_f32(o, (float)st->fsum); break;
                    default: rc = ros_vector_append_f64(o, st->fsum); break;
                    }
                break;
            }
            if (rc < 0)
                return ros_error_oom(err);
        }
    }
    op->out.nrows = end - h->emit_pos;
    h->emit_pos = end;
    *out = &op->out;
    return 1;
}

static int agg_next(rt_op *op, ros_batch **out, ros_error *err)
{
    if (!op->done) {
        if (agg_build(op, err) < 0)
            return -1;
        op->done = true;
    }
    return agg_emit(op, out, err);
}

/* ---------------------------------------------------------------- */
/* Distinct */

static int distinct_next(rt_op *op, ros_batch **out, ros_error *err)
{
    hash_state *h = op->hash;
    for (;;) {
        ros_batch *in;
        int rc = rt_op_next(op->child, &in, err);
        if (rc != 1)
            return rc;
        rt_batch_reset(&op->out);
        for (uint32_t i = 0; i < in->nrows; i++) {
            ros_strbuf_reset(&h->scratch);
            for (uint32_t c = 0; c < in->ncols; c++)
                rt_key_encode(&in->cols[c], i, &h->scratch);
            bool is_new;
            if (h->scratch.oom || hash_lookup(h, &is_new) < 0)
                return ros_error_oom(err);
            if (!is_new)
                continue;
            for (uint32_t c = 0; c < in->ncols; c++)
                if (rt_vector_append_row(&op->out.cols[c], &in->cols[c], i) < 0)
                    return ros_error_oom(err);
            op->out.nrows++;
        }
        if (op->out.nrows > 0) {
            *out = &op->out;
            return 1;
        }
    }
}

/* ---------------------------------------------------------------- */
/* Sort */

typedef struct sort_state {
    ros_batch all;       /* every input row */
    uint32_t *perm;
    uint32_t pos;
    const plan_node *plan;
} sort_state;

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
    sort_state *s = arg;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    const plan_node *p = s->plan;
    for (int k = 0; k < p->u.sort.nkeys; k++) {
        const ros_vector *v = &s->all.cols[p->u.sort.keys[k]];
        bool na = ros_vector_is_null(v, a), nb = ros_vector_is_null(v, b);
        int c;
        if (na || nb) {
            if (na && nb)
                continue;
            c = na ? 1 : -1; /* NULL is larger ... */
            if (p->u.sort.nulls_first[k])
                c = -c;      /* ... unless NULLS FIRST */
            return c;        /* NULL placement is independent of DESC */
        }
        c = rt_value_cmp(v, a, v, b);
        if (c)
            return p->u.sort.desc[k] ? -c : c;
    }
    return (a > b) - (a < b); /* stable */
}

static int sort_next(rt_op *op, ros_batch **out, ros_error *err)
{
    sort_state *s = op->sort;
    if (!op->done) {
        for (;;) {
            if (check_cancel(op, err) < 0)
                return -1;
            ros_batch *in;
            int rc = rt_op_next(op->child, &in, err);
            if (rc < 0)
                return -1;
            if (rc == 0)
                break;
            if (rc == 2)
                continue;
            for (uint32_t c = 0; c < in->ncols; c++)
                for (uint32_t i = 0; i < in->nrows; i++)
                    if (rt_vector_append_row(&s->all.cols[c], &in->cols[c], i) < 0)
                        return ros_error_oom(err);
            s->all.nrows += in->nrows;
        }
        s->perm = malloc(sizeof(uint32_t) * (s->all.nrows + 1));
        if (!s->perm)
            return ros_error_oom(err);
        for (uint32_t i = 0; i < s->all.nrows; i++)
            s->perm[i] = i;
        qsort_r(s->perm, s->all.nrows, sizeof(uint32_t), sort_cmp, s);
        op->done = true;
    }
    if (s->pos >= s->all.nrows)
        return 0;
    uint32_t k = s->all.nrows - s->pos;
    if (k > op->ctx->batch_size)
        k = op->ctx->batch_size;
    for (uint32_t c = 0; c < s->all.ncols; c++)
        if (rt_vector_gather(&op->out.cols[c], &s->all.cols[c], s->perm + s->pos, k) < 0)
            return ros_error_oom(err);
    op->out.nrows = k;
    s->pos += k;
    *out = &op->out;
    return 1;
}

/* ---------------------------------------------------------------- */
/* Limit */

static int limit_next(rt_op *op, ros_batch **out, ros_error *err)
{
    int64_t limit = op->plan->u.limit.limit, offset = op->plan->u.limit.offset;
    for (;;) {
        if (limit >= 0 && op->emitted >= limit)
            return 0; /* stop pulling: an unbounded input ends here */
        ros_batch *in;
        int rc = rt_op_next(op->child, &in, err);
        if (rc != 1)
            return rc;
        uint32_t start = 0, n = in->nrows;
        if (op->skipped < offset) {
            int64_t skip = offset - op->skipped;
            if (skip >= n) {
                op->skipped += n;
                continue;
            }
            start = (uint32_t)skip;
            op->skipped = offset;
        }
        uint32_t take = n - start;
        if (limit >= 0 && op->emitted + take > limit)
            take = (uint32_t)(limit - op->emitted);
        op->emitted += take;
        if (start == 0 && take == n) {
            *out = in;
            return 1;
        }
        if (n > op->selcap) {
            uint32_t *sel = realloc(op->sel, sizeof(uint32_t) * n);
            if (!sel)
                return ros_error_oom(err);
            op->sel = sel;
            op->selcap = n;
        }
        for (uint32_t i = 0; i < take; i++)
            op->sel[i] = start + i;
        for (uint32_t c = 0; c < in->ncols; c++)
            if (rt_vector_gather(&op->out.cols[c], &in->cols[c], op->sel, take) < 0)
                return ros_error_oom(err);
        op->out.nrows = take;
        *out = &op->out;
        return 1;
    }
}

/* ---------------------------------------------------------------- */
/* Insert */

int rt_check_not_null(const cat_table *t, const ros_batch *b, ros_error *err)
{
    for (int c = 0; c < t->ncols && c < (int)b->ncols; c++) {
        if (!t->cols[c].not_null)
            continue;
        for (uint32_t i = 0; i < b->nrows; i++)
            if (ros_vector_is_null(&b->cols[c], i))
                return ros_error_set(err, "23502",
                                     "null value in column \"%s\" of relation \"%s\" violates not-null constraint",
                                     t->cols[c].name, t->name);
    }
    return 0;
}

static int insert_next(rt_op *op, ros_batch **out, ros_error *err)
{
    const cat_table *t = op->plan->u.insert.table;
    (void)out;
    for (;;) {
        if (check_cancel(op, err) < 0) {
            op->sink->ops->abort(op->sink);
            return -1;
        }
        ros_batch *in;
        int rc = rt_op_next(op->child, &in, err);
        if (rc < 0) {
            op->sink->ops->abort(op->sink);
            return -1;
        }
        if (rc == 0)
            break;
        if (rc == 2)
            continue;
        if (rt_check_not_null(t, in, err) < 0) {
            op->sink->ops->abort(op->sink);
            return -1;
        }
        if (op->sink->ops->write(op->sink, in, err) < 0) {
            op->sink->ops->abort(op->sink);
            return -1;
        }
        op->ctx->rows_written += in->nrows;
    }
    if (op->sink->ops->commit(op->sink, err) < 0)
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- */
/* Building */

int rt_op_next(rt_op *op, ros_batch **out, ros_error *err)
{
    return op->next(op, out, err);
}

void rt_op_free(rt_op *op)
{
    if (!op)
        return;
    rt_op_free(op->child);
    for (int i = 0; i < op->nexprs; i++)
        rt_expr_free(op->exprs[i]);
    free(op->exprs);
    if (op->views) {
        free(op->out.cols);
    } else
        rt_batch_free(&op->out);
    if (op->src)
        op->src->ops->close(op->src);
    if (op->sink)
        op->sink->ops->close(op->sink);
    free(op->sel);
    rt_proxy_free(op->proxy);
    hash_free(op->hash);
    if (op->sort) {
        rt_batch_free(&op->sort->all);
        free(op->sort->perm);
        free(op->sort);
    }
    free(op);
}

/* ---------------------------------------------------------------- */
/* Proxy (proxy.c) */

static int proxy_check(void *arg, ros_error *err) { return check_cancel(arg, err); }

static int proxy_next(rt_op *op, ros_batch **out, ros_error *err)
{
    int rc = rt_proxy_next(op->proxy, op->child, &op->out, proxy_check, op, err);
    if (rc == 1)
        *out = &op->out;
    return rc;
}

rt_op *rt_op_build(rt_exec_ctx *ctx, const plan_node *p, ros_error *err)
{
    rt_op *op = calloc(1, sizeof *op);
    if (!op) {
        ros_error_oom(err);
        return NULL;
    }
    op->ctx = ctx;
    op->plan = p;
    if (p->child && !(op->child = rt_op_build(ctx, p->child, err)))
        goto fail;
    if (p->kind == PN_PROJECT) {
        op->views = true;
        op->out.ncols = (uint32_t)p->ncols;
        op->out.cols = calloc((size_t)p->ncols + 1, sizeof(ros_vector));
        if (!op->out.cols) {
            ros_error_oom(err);
            goto fail;
        }
    } else if (init_out(op, err) < 0)
        goto fail;
    switch (p->kind) {
    case PN_SCAN: {
        rt_source_opts so = {p->u.scan.nproj, p->u.scan.proj, false};
        op->src = rt_source_open(ctx->db, p->u.scan.table, &so, err);
        if (!op->src)
            goto fail;
        if (op->src->unbounded)
            ctx->unbounded = true;
        op->next = scan_next;
        break;
    }
    case PN_VALUES:
        if (compile_exprs(op, p->u.values.nrows * p->ncols, p->u.values.exprs, err) < 0)
            goto fail;
        op->next = values_next;
        break;
    case PN_FILTER:
        if (compile_exprs(op, 1, (plan_expr **)&p->u.filter.pred, err) < 0)
            goto fail;
        op->next = filter_next;
        break;
    case PN_PROJECT:
        if (compile_exprs(op, p->ncols, p->u.project.exprs, err) < 0)
            goto fail;
        op->next = project_next;
        break;
    case PN_AGG: {
        int ng = p->u.agg.ngroup, na = p->u.agg.naggs;
        plan_expr **ex = calloc((size_t)(ng + 2 * na) + 1, sizeof(plan_expr *));
        if (!ex) {
            ros_error_oom(err);
            goto fail;
        }
        for (int k = 0; k < ng; k++)
            ex[k] = p->u.agg.group[k];
        for (int a = 0; a < na; a++) {
            ex[ng + 2 * a] = p->u.agg.aggs[a].arg;
            ex[ng + 2 * a + 1] = p->u.agg.aggs[a].filter;
        }
        int rc = compile_exprs(op, ng + 2 * na, ex, err);
        free(ex);
        if (rc < 0)
            goto fail;
        op->hash = hash_new(ng, p->types, na);
        if (!op->hash) {
            ros_error_oom(err);
            goto fail;
        }
        if (na) {
            op->hash->best = calloc((size_t)na, sizeof(ros_vector));
            op->hash->distinct = calloc((size_t)na, sizeof(hash_state *));
            if (!op->hash->best || !op->hash->distinct) {
                ros_error_oom(err);
                goto fail;
            }
            for (int a = 0; a < na; a++) {
                ros_vector_init(&op->hash->best[a], p->types[ng + a]);
                if (p->u.agg.aggs[a].distinct && !(op->hash->distinct[a] = hash_new(0, NULL, 0))) {
                    ros_error_oom(err);
                    goto fail;
                }
            }
        }
        if (ng == 0) {
            /* the single group exists from the start */
            op->hash->ngroups = 1;
            op->hash->capgroups = 1;
            op->hash->states = calloc((size_t)(na ? na : 1), sizeof(agg_state));
            if (!op->hash->states) {
                ros_error_oom(err);
                goto fail;
            }
        }
        op->next = agg_next;
        break;
    }
    case PN_DISTINCT:
        op->hash = hash_new(0, NULL, 0);
        if (!op->hash) {
            ros_error_oom(err);
            goto fail;
        }
        op->next = distinct_next;
        break;
    case PN_SORT:
        op->sort = calloc(1, sizeof(sort_state));
        if (!op->sort || rt_batch_init(&op->sort->all, p->ncols, p->types) < 0) {
            ros_error_oom(err);
            goto fail;
        }
        op->sort->plan = p;
        op->next = sort_next;
        break;
    case PN_LIMIT:
        op->next = limit_next;
        break;
    case PN_PROXY:
        if (!(op->proxy = rt_proxy_open(ctx, p, err)))
            goto fail;
        op->next = proxy_next;
        break;
    case PN_INSERT:
        op->sink = rt_sink_open(ctx->db, p->u.insert.table, err);
        if (!op->sink)
            goto fail;
        op->next = insert_next;
        break;
    }
    return op;
fail:
    rt_op_free(op);
    return NULL;
}

/* ---------------------------------------------------------------- */
/* Checkpoints */

bool rt_plan_checkpointable(const plan_node *p, const char **why)
{
    for (; p; p = p->child) {
        switch (p->kind) {
        case PN_AGG:
            *why = "it aggregates";
            return false;
        case PN_DISTINCT:
            *why = "it has DISTINCT";
            return false;
        case PN_SORT:
            *why = "it sorts";
            return false;
        default:
            break;
        }
    }
    return true;
}

/* Every operator writes a tag (its plan kind) and then its state, parents
 * before children, so a restore into a different plan is detected. */
int rt_op_snapshot(rt_op *op, rt_wbuf *w, ros_error *err)
{
    for (; op; op = op->child) {
        rt_w_u8(w, (uint8_t)op->plan->kind);
        switch (op->plan->kind) {
        case PN_SCAN:
            rt_w_i64(w, op->src->ops->offset(op->src));
            break;
        case PN_VALUES:
            rt_w_u8(w, op->done);
            break;
        case PN_LIMIT:
            rt_w_i64(w, op->skipped);
            rt_w_i64(w, op->emitted);
            break;
        case PN_PROXY:
            if (rt_proxy_snapshot(op->proxy, w, err) < 0)
                return -1;
            break;
        case PN_AGG:
        case PN_DISTINCT:
        case PN_SORT:
            return ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "cannot checkpoint a plan that %s",
                                 op->plan->kind == PN_AGG ? "aggregates" : op->plan->kind == PN_SORT ? "sorts" : "has DISTINCT");
        default:
            break; /* stateless between batches */
        }
    }
    return w->oom ? ros_error_oom(err) : 0;
}

int rt_op_restore(rt_op *op, rt_rbuf *r, ros_error *err)
{
    for (; op; op = op->child) {
        uint8_t kind = rt_r_u8(r);
        if (r->bad || kind != (uint8_t)op->plan->kind)
            return ros_error_set(err, ROS_ERR_DATA_CORRUPTED,
                                 "checkpoint state does not match the job's plan");
        switch (op->plan->kind) {
        case PN_SCAN: {
            int64_t off = rt_r_i64(r);
            if (!r->bad && op->src->ops->seek(op->src, off, err) < 0)
                return -1;
            break;
        }
        case PN_VALUES:
            op->done = rt_r_u8(r) != 0;
            break;
        case PN_LIMIT:
            op->skipped = rt_r_i64(r);
            op->emitted = rt_r_i64(r);
            break;
        case PN_PROXY:
            if (rt_proxy_restore(op->proxy, r, err) < 0)
                return -1;
            break;
        default:
            break;
        }
        if (r->bad)
            return ros_error_set(err, ROS_ERR_DATA_CORRUPTED, "checkpoint state is malformed");
    }
    return 0;
}

void rt_op_proxy_stats(rt_op *op, rt_proxy_stats *st)
{
    memset(st, 0, sizeof *st);
    for (; op; op = op->child)
        if (op->proxy) {
            rt_proxy_stats one;
            rt_proxy_get_stats(op->proxy, &one);
            st->inflight += one.inflight;
            st->answered += one.answered;
            st->recomputed += one.recomputed;
            st->reused += one.reused;
        }
}
