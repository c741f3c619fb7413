/*
 * eval.c
 *    Vectorized expression evaluation with PostgreSQL semantics.
 *
 * Each compiled node owns a result vector reused across batches.  Column
 * references return the input column itself (no copy).  Constant subtrees
 * are evaluated once at compile time and broadcast.  Integer overflow and
 * division by zero are errors, only for rows that are not NULL.
 *
 * Conditional nodes (AND, OR, CASE, COALESCE) evaluate later arguments only
 * on the rows that still need them: each such child gathers those rows of
 * the input into a batch of its own (only the columns it uses) first.
 */
#include "runtime/exec/exec.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/types.h"
#include "runtime/exec/udf.h"

struct rt_expr {
    const plan_expr *pe;
    rt_exec_ctx *ctx;
    int nargs;
    rt_expr **args;
    ros_vector out;          /* result */
    bool is_const;           /* value computed at compile time, in cval */
    ros_vector cval;         /* one row */
    uint32_t const_filled;   /* rows of out holding the broadcast constant */
    ros_batch insub;         /* rows gathered for selective evaluation */
    int nused;               /* input columns this subtree reads */
    int *used;
    uint32_t *sel;           /* scratch selection arrays */
    uint32_t *sel2;
    int32_t *branch;         /* CASE/COALESCE: which result each row takes */
    uint32_t *pos;
    uint32_t selcap;
    const ros_vector **argv; /* UDF arguments */
    ros_vector *argtmp;      /* UDF: gathered non-NULL argument rows (STRICT) */
};

static const ros_vector *eval(rt_expr *x, const ros_batch *in, ros_error *err);

/* ---------------------------------------------------------------- */
/* Compilation */

static bool collect_used(plan_expr *e, void *arg)
{
    rt_expr *x = arg;
    if (e->kind == PE_COLUMN) {
        for (int i = 0; i < x->nused; i++)
            if (x->used[i] == e->u.column)
                return false;
        int *nu = realloc(x->used, sizeof(int) * (size_t)(x->nused + 1));
        if (!nu)
            return true;
        x->used = nu;
        x->used[x->nused++] = e->u.column;
    }
    return false;
}

static bool is_constant_walker(plan_expr *e, void *arg)
{
    (void)arg;
    return e->kind == PE_COLUMN || e->kind == PE_AGG || (e->kind == PE_UDF && e->u.udf.is_volatile);
}

void rt_expr_free(rt_expr *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->nargs; i++)
        rt_expr_free(x->args[i]);
    free(x->args);
    ros_vector_free(&x->out);
    ros_vector_free(&x->cval);
    rt_batch_free(&x->insub);
    free(x->used);
    free(x->sel);
    free(x->sel2);
    free(x->branch);
    free(x->pos);
    free(x->argv);
    if (x->argtmp) {
        for (int i = 0; i < x->nargs; i++)
            ros_vector_free(&x->argtmp[i]);
        free(x->argtmp);
    }
    free(x);
}

/*
 * Whether the constant child c (args[i] of e) settles e, as PostgreSQL's
 * constant simplification sees it: the later arguments are then not folded
 * (so CASE WHEN true THEN 1 ELSE 1/0 END is no error).  *skip_next is set
 * when a CASE condition is constantly false or NULL: that arm's result is
 * dropped, not folded.
 */
static bool settles(const plan_expr *e, int i, const rt_expr *c, bool *skip_next)
{
    *skip_next = false;
    if (!c->is_const || c->cval.len != 1)
        return false;
    bool null = ros_vector_is_null(&c->cval, 0);
    switch (e->kind) {
    case PE_AND:
    case PE_OR:
        return !null && (ROS_VEC_BOOL(&c->cval)[0] != 0) == (e->kind == PE_OR);
    case PE_COALESCE:
        return !null;
    case PE_CASE: {
        int conds = e->nargs - (e->u.flag ? 1 : 0);
        if (i % 2 == 1 || i >= conds)
            return false;
        if (null || !ROS_VEC_BOOL(&c->cval)[0]) {
            *skip_next = true;
            return false;
        }
        return true; /* the arm's result is still folded: see compile */
    }
    default:
        return false;
    }
}

static rt_expr *compile(rt_exec_ctx *ctx, const plan_expr *e, ros_error *err, int depth, bool fold)
{
    if (depth > 1000) {
        ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "expression is too deeply nested");
        return NULL;
    }
    rt_expr *x = calloc(1, sizeof *x);
    if (!x) {
        ros_error_oom(err);
        return NULL;
    }
    x->pe = e;
    x->ctx = ctx;
    ros_vector_init(&x->out, e->type);
    ros_vector_init(&x->cval, e->type);
    if (e->kind == PE_AGG) {
        ros_error_set(err, ROS_ERR_INTERNAL, "aggregate reached the expression evaluator");
        goto fail;
    }
    if (e->kind == PE_UDF && !e->u.udf.fn) {
        /* a service's call that no rewriter rule turned into a Proxy */
        ros_error_set(err, ROS_ERR_INTERNAL, "function %s runs in a service but has no proxy", e->u.udf.name);
        goto fail;
    }
    x->nargs = e->nargs;
    if (e->nargs) {
        x->args = calloc((size_t)e->nargs, sizeof(rt_expr *));
        x->argv = calloc((size_t)e->nargs, sizeof(ros_vector *));
        if (!x->args || !x->argv) {
            ros_error_oom(err);
            goto fail;
        }
        int fold_until = fold ? e->nargs : 0; /* arguments before this index may fold */
        bool skip = false;                     /* the next argument may not */
        for (int i = 0; i < e->nargs; i++) {
            /* an unknown literal's conversion (CASE ... ELSE 'a' END to an
             * integer) is checked when the statement is parsed, as in
             * PostgreSQL: always folded */
            bool lit = e->args[i]->kind == PE_CAST && e->args[i]->args[0]->kind == PE_CONST &&
                       e->args[i]->args[0]->unknown;
            bool f = (i < fold_until && !skip) || (fold && lit);
            bool drop = false;
            skip = false;
            if (!(x->args[i] = compile(ctx, e->args[i], err, depth + 1, f)))
                goto fail;
            if (f && settles(e, i, x->args[i], &drop))
                fold_until = e->kind == PE_CASE ? i + 2 : i + 1; /* a CASE arm keeps its result */
            else
                skip = drop;
        }
    }
    if (plan_expr_walk((plan_expr *)e, collect_used, x) && !err->set) {
        ros_error_oom(err);
        goto fail;
    }
    /* fold constant subtrees once */
    if (fold && e->kind != PE_CONST && !plan_expr_walk((plan_expr *)e, is_constant_walker, NULL)) {
        ros_batch one = {0, 1, NULL};
        const ros_vector *v = eval(x, &one, err);
        if (!v) {
            /* a folding error (say 1/0) is the statement's error */
            goto fail;
        }
        if (rt_vector_copy(&x->cval, v) < 0) {
            ros_error_oom(err);
            goto fail;
        }
        x->is_const = true;
        ros_vector_reset(&x->out);
    } else if (e->kind == PE_CONST) {
        int rc;
        if (e->u.cnst.is_null)
            rc = ros_vector_append_null(&x->cval);
        else if (ros_type_is_varlen(e->type))
            rc = ros_vector_append_bytes(&x->cval, e->u.cnst.bytes, e->u.cnst.len);
        else
            switch (e->type) {
            case ROS_TYPE_BOOL: rc = ros_vector_append_bool(&x->cval, e->u.cnst.i != 0); break;
            case ROS_TYPE_INT16: rc = ros_vector_append_i16(&x->cval, (int16_t)e->u.cnst.i); break;
            case ROS_TYPE_INT32: rc = ros_vector_append_i32(&x->cval, (int32_t)e->u.cnst.i); break;
            case ROS_TYPE_INT64: rc = ros_vector_append_i64(&x->cval, e->u.cnst.i); break;
            case ROS_TYPE_FLOAT32: rc = ros_vector_append_f32(&x->cval, (float)e->u.cnst.f); break;
            case ROS_TYPE_FLOAT64: rc = ros_vector_append_f64(&x->cval, e->u.cnst.f); break;
            default: rc = ros_vector_append_null(&x->cval); break;
            }
        if (rc < 0) {
            ros_error_oom(err);
            goto fail;
        }
        x->is_const = true;
    }
    return x;
fail:
    rt_expr_free(x);
    return NULL;
}

rt_expr *rt_expr_compile(rt_exec_ctx *ctx, const plan_expr *e, ros_error *err)
{
    return compile(ctx, e, err, 0, true);
}

/* ---------------------------------------------------------------- */
/* Helpers */

static int ensure_sel(rt_expr *x, uint32_t n)
{
    if (n <= x->selcap)
        return 0;
    uint32_t cap = n < 64 ? 64 : n;
    uint32_t *a = realloc(x->sel, cap * sizeof(uint32_t));
    if (a)
        x->sel = a;
    uint32_t *b = realloc(x->sel2, cap * sizeof(uint32_t));
    if (b)
        x->sel2 = b;
    int32_t *c = realloc(x->branch, cap * sizeof(int32_t));
    if (c)
        x->branch = c;
    uint32_t *d = realloc(x->pos, cap * sizeof(uint32_t));
    if (d)
        x->pos = d;
    if (!a || !b || !c || !d)
        return -1;
    x->selcap = cap;
    return 0;
}

/* Fills out with n copies of the one-row vector c. */
static int broadcast(ros_vector *out, const ros_vector *c, uint32_t n, uint32_t *filled)
{
    if (n <= *filled && out->len >= n) {
        out->len = n;
        if (out->offsets)
            out->data_len = out->offsets[n];
        return 0;
    }
    ros_vector_reset(out);
    if (ros_vector_reserve(out, n ? n : 1) < 0)
        return -1;
    if (ros_vector_is_null(c, 0)) {
        for (uint32_t i = 0; i < n; i++)
            if (ros_vector_append_null(out) < 0)
                return -1;
    } else if (ros_type_is_varlen(c->type)) {
        uint32_t len;
        const uint8_t *p = ros_vector_bytes(c, 0, &len);
        for (uint32_t i = 0; i < n; i++)
            if (ros_vector_append_bytes(out, p, len) < 0)
                return -1;
    } else {
        size_t w = ros_type_width(c->type);
        if (ros_vector_resize_fixed(out, n) < 0)
            return -1;
        for (uint32_t i = 0; i < n; i++)
            memcpy((uint8_t *)out->values + i * w, c->values, w);
    }
    *filled = n;
    return 0;
}

/* Evaluates child x on rows sel[0..k) of in (identity when sel is NULL). */
static const ros_vector *eval_rows(rt_expr *x, const ros_batch *in, const uint32_t *sel, uint32_t k, ros_error *err)
{
    if (!sel || k == in->nrows)
        return eval(x, in, err);
    if (!x->insub.cols || x->insub.ncols != in->ncols) {
        rt_batch_free(&x->insub);
        ros_type *types = calloc(in->ncols ? in->ncols : 1, sizeof(ros_type));
        if (!types) {
            ros_error_oom(err);
            return NULL;
        }
        for (uint32_t c = 0; c < in->ncols; c++)
            types[c] = in->cols[c].type;
        int rc = rt_batch_init(&x->insub, (int)in->ncols, types);
        free(types);
        if (rc < 0) {
            ros_error_oom(err);
            return NULL;
        }
    }
    for (int i = 0; i < x->nused; i++) {
        int c = x->used[i];
        if (rt_vector_gather(&x->insub.cols[c], &in->cols[c], sel, k) < 0) {
            ros_error_oom(err);
            return NULL;
        }
    }
    x->insub.nrows = k;
    return eval(x, &x->insub, err);
}

/* Combined validity of a and b into out (out must have n rows reserved).
 * Returns true when some row is NULL. */
static bool merge_validity(ros_vector *out, const ros_vector *a, const ros_vector *b, uint32_t n)
{
    size_t nb = (n + 7) / 8;
    bool any_null = false;
    for (size_t k = 0; k < nb; k++) {
        uint8_t v = 0xff;
        if (a->validity)
            v &= a->validity[k];
        if (b && b->validity)
            v &= b->validity[k];
        out->validity[k] = v;
        if (v != 0xff && (k + 1 < nb || (v | (uint8_t)(0xff << (n - k * 8 >= 8 ? 8 : n - k * 8))) != 0xff))
            any_null = true;
    }
    return any_null;
}

#define VALID(v, i) (!ros_vector_is_null((v), (i)))

static int oor(ros_error *err, ros_type t)
{
    return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "%s out of range", ros_type_name(t));
}

static int div0(ros_error *err)
{
    return ros_error_set(err, ROS_ERR_DIVISION_BY_ZERO, "division by zero");
}

/* ---------------------------------------------------------------- */
/* Operators */

#define INT_KERNEL(T, ACC)                                                                  \
    do {                                                                                    \
        const T *pa = (const T *)a->values, *pb = (const T *)b->values;                     \
        T *po = (T *)out->values;                                                           \
        for (uint32_t i = 0; i < n; i++) {                                                  \
            if (nulls && !VALID(out, i)) {                                                  \
                po[i] = 0;                                                                  \
                continue;                                                                   \
            }                                                                               \
            T x_ = pa[i], y_ = pb[i], r_;                                                   \
            switch (op) {                                                                   \
            case OP_ADD: if (__builtin_add_overflow(x_, y_, &r_)) return oor(err, t); break; \
            case OP_SUB: if (__builtin_sub_overflow(x_, y_, &r_)) return oor(err, t); break; \
            case OP_MUL: if (__builtin_mul_overflow(x_, y_, &r_)) return oor(err, t); break; \
            case OP_DIV:                                                                    \
                if (y_ == 0) return div0(err);                                              \
                if (y_ == -1) { if (__builtin_sub_overflow((T)0, x_, &r_)) return oor(err, t); } \
                else r_ = (T)(x_ / y_);                                                     \
                break;                                                                      \
            case OP_MOD:                                                                    \
                if (y_ == 0) return div0(err);                                              \
                r_ = y_ == -1 ? 0 : (T)(x_ % y_);                                           \
                break;                                                                      \
            default: r_ = 0; break;                                                         \
            }                                                                               \
            po[i] = r_;                                                                     \
        }                                                                                   \
    } while (0)

#define FLOAT_KERNEL(T)                                                                      \
    do {                                                                                     \
        const T *pa = (const T *)a->values, *pb = (const T *)b->values;                      \
        T *po = (T *)out->values;                                                            \
        for (uint32_t i = 0; i < n; i++) {                                                   \
            if (nulls && !VALID(out, i)) {                                                   \
                po[i] = 0;                                                                   \
                continue;                                                                    \
            }                                                                                \
            T x_ = pa[i], y_ = pb[i], r_;                                                    \
            switch (op) {                                                                    \
            case OP_ADD: r_ = x_ + y_; break;                                                \
            case OP_SUB: r_ = x_ - y_; break;                                                \
            case OP_MUL: r_ = x_ * y_; break;                                                \
            case OP_DIV: if (y_ == 0) return div0(err); r_ = x_ / y_; break;                 \
            default: r_ = 0; break;                                                          \
            }                                                                                \
            if (isinf(r_) && !isinf(x_) && !isinf(y_))                                       \
                return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value out of range: overflow"); \
            po[i] = r_;                                                                      \
        }                                                                                    \
    } while (0)

#define CMP_RESULT(c)                                                                                  \
    (op == OP_EQ ? (c) == 0 : op == OP_NE ? (c) != 0 : op == OP_LT ? (c) < 0 : op == OP_LE ? (c) <= 0 \
     : op == OP_GT ? (c) > 0 : (c) >= 0)

#define CMP_KERNEL(T)                                                              \
    do {                                                                           \
        const T *pa = (const T *)a->values, *pb = (const T *)b->values;            \
        switch (op) {                                                              \
        case OP_EQ: for (uint32_t i = 0; i < n; i++) po[i] = pa[i] == pb[i]; break; \
        case OP_NE: for (uint32_t i = 0; i < n; i++) po[i] = pa[i] != pb[i]; break; \
        case OP_LT: for (uint32_t i = 0; i < n; i++) po[i] = pa[i] < pb[i]; break;  \
        case OP_LE: for (uint32_t i = 0; i < n; i++) po[i] = pa[i] <= pb[i]; break; \
        case OP_GT: for (uint32_t i = 0; i < n; i++) po[i] = pa[i] > pb[i]; break;  \
        default: for (uint32_t i = 0; i < n; i++) po[i] = pa[i] >= pb[i]; break;    \
        }                                                                          \
    } while (0)

static int eval_op(rt_expr *x, const ros_batch *in, ros_error *err)
{
    plan_op op = x->pe->u.op;
    uint32_t n = in->nrows;
    ros_vector *out = &x->out;
    if (op == OP_NEG) {
        const ros_vector *a = eval(x->args[0], in, err);
        if (!a || ros_vector_resize_fixed(out, n) < 0)
            return a ? ros_error_oom(err) : -1;
        bool nulls = merge_validity(out, a, NULL, n);
        ros_type t = a->type;
        for (uint32_t i = 0; i < n; i++) {
            if (nulls && !VALID(out, i))
                continue;
            switch (t) {
            case ROS_TYPE_INT16:
                if (ROS_VEC_I16(a)[i] == INT16_MIN) return oor(err, t);
                ROS_VEC_I16(out)[i] = (int16_t)-ROS_VEC_I16(a)[i];
                break;
            case ROS_TYPE_INT32:
                if (ROS_VEC_I32(a)[i] == INT32_MIN) return oor(err, t);
                ROS_VEC_I32(out)[i] = -ROS_VEC_I32(a)[i];
                break;
            case ROS_TYPE_INT64:
                if (ROS_VEC_I64(a)[i] == INT64_MIN) return oor(err, t);
                ROS_VEC_I64(out)[i] = -ROS_VEC_I64(a)[i];
                break;
            case ROS_TYPE_FLOAT32: ROS_VEC_F32(out)[i] = -ROS_VEC_F32(a)[i]; break;
            case ROS_TYPE_FLOAT64: ROS_VEC_F64(out)[i] = -ROS_VEC_F64(a)[i]; break;
            default: break;
            }
        }
        return 0;
    }
    const ros_vector *a = eval(x->args[0], in, err);
    const ros_vector *b = a ? eval(x->args[1], in, err) : NULL;
    if (!b)
        return -1;
    ros_type t = a->type;
    if (op == OP_CONCAT) {
        ros_vector_reset(out);
        if (ros_vector_reserve(out, n ? n : 1) < 0)
            return ros_error_oom(err);
        for (uint32_t i = 0; i < n; i++) {
            if (!VALID(a, i) || !VALID(b, i)) {
                if (ros_vector_append_null(out) < 0)
                    return ros_error_oom(err);
                continue;
            }
            uint32_t la, lb;
            const uint8_t *pa = ros_vector_bytes(a, i, &la);
            const uint8_t *pb = ros_vector_bytes(b, i, &lb);
            if (ros_vector_reserve_data(out, la + lb) < 0 || ros_vector_append_bytes(out, pa, la) < 0)
                return ros_error_oom(err);
            /* extend the row just appended with b's bytes */
            if (lb)
                memcpy(out->data + out->data_len, pb, lb);
            out->data_len += lb;
            out->offsets[out->len] = out->data_len;
        }
        return 0;
    }
    if (ros_vector_resize_fixed(out, n) < 0)
        return ros_error_oom(err);
    bool nulls = merge_validity(out, a, b, n);
    if (op >= OP_EQ && op <= OP_GE) {
        uint8_t *po = ROS_VEC_BOOL(out);
        switch (t) {
        case ROS_TYPE_BOOL: CMP_KERNEL(uint8_t); break;
        case ROS_TYPE_INT16: CMP_KERNEL(int16_t); break;
        case ROS_TYPE_INT32: CMP_KERNEL(int32_t); break;
        case ROS_TYPE_INT64: CMP_KERNEL(int64_t); break;
        default:
            /* floats (NaN ordering), text and bytea go through the comparator */
            for (uint32_t i = 0; i < n; i++) {
                if (nulls && !VALID(out, i)) {
                    po[i] = 0;
                    continue;
                }
                int c = rt_value_cmp(a, i, b, i);
                po[i] = CMP_RESULT(c);
            }
            break;
        }
        return 0;
    }
    switch (t) {
    case ROS_TYPE_INT16: INT_KERNEL(int16_t, int32_t); break;
    case ROS_TYPE_INT32: INT_KERNEL(int32_t, int64_t); break;
    case ROS_TYPE_INT64: INT_KERNEL(int64_t, int64_t); break;
    case ROS_TYPE_FLOAT32: FLOAT_KERNEL(float); break;
    case ROS_TYPE_FLOAT64: FLOAT_KERNEL(double); break;
    default: return ros_error_set(err, ROS_ERR_INTERNAL, "bad operand type for arithmetic");
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* Boolean logic */

/* AND / OR with three-valued logic; later arguments see only undecided rows. */
static int eval_andor(rt_expr *x, const ros_batch *in, ros_error *err)
{
    bool is_and = x->pe->kind == PE_AND;
    uint32_t n = in->nrows;
    if (ensure_sel(x, n) < 0 || ros_vector_resize_fixed(&x->out, n) < 0)
        return ros_error_oom(err);
    uint8_t *res = ROS_VEC_BOOL(&x->out);
    /* state: 1 = identity so far (true for AND), 2 = NULL seen */
    for (uint32_t i = 0; i < n; i++) {
        res[i] = is_and ? 1 : 0;
        x->sel[i] = i;
        x->branch[i] = 0; /* NULL seen */
    }
    uint32_t k = n;
    bool identity = true;
    for (int a = 0; a < x->nargs && k > 0; a++) {
        const ros_vector *v = eval_rows(x->args[a], in, identity ? NULL : x->sel, k, err);
        if (!v)
            return -1;
        uint32_t k2 = 0;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t row = x->sel[j];
            if (!VALID(v, j)) {
                x->branch[row] = 1;
                x->sel2[k2++] = row;
            } else if ((ROS_VEC_BOOL(v)[j] != 0) != is_and) {
                res[row] = is_and ? 0 : 1; /* decided */
            } else
                x->sel2[k2++] = row;
        }
        identity = identity && k2 == k;
        uint32_t *t = x->sel;
        x->sel = x->sel2;
        x->sel2 = t;
        k = k2;
    }
    for (uint32_t j = 0; j < k; j++)
        if (x->branch[x->sel[j]])
            ros_vector_set_valid(&x->out, x->sel[j], false);
    return 0;
}

/* ---------------------------------------------------------------- */
/* CASE and COALESCE */

/* Assembles out from per-row (branch, pos) choices; branch -1 is NULL. */
static int assemble(rt_expr *x, const ros_vector *const *res, uint32_t n, ros_error *err)
{
    ros_vector_reset(&x->out);
    if (ros_vector_reserve(&x->out, n ? n : 1) < 0)
        return ros_error_oom(err);
    for (uint32_t i = 0; i < n; i++) {
        int rc = x->branch[i] < 0 ? ros_vector_append_null(&x->out)
                                  : rt_vector_append_row(&x->out, res[x->branch[i]], x->pos[i]);
        if (rc < 0)
            return ros_error_oom(err);
    }
    return 0;
}

static int eval_case(rt_expr *x, const ros_batch *in, ros_error *err)
{
    uint32_t n = in->nrows;
    bool has_else = x->pe->u.flag;
    int pairs = (x->nargs - (has_else ? 1 : 0)) / 2;
    const ros_vector *res[x->nargs + 1];
    uint32_t *match = malloc(sizeof(uint32_t) * (n ? n : 1));
    if (!match || ensure_sel(x, n) < 0) {
        free(match);
        return ros_error_oom(err);
    }
    for (uint32_t i = 0; i < n; i++) {
        x->sel[i] = i;
        x->branch[i] = -1;
    }
    uint32_t k = n;
    int rc = 0;
    for (int p = 0; p < pairs && k > 0; p++) {
        const ros_vector *c = eval_rows(x->args[2 * p], in, k == n ? NULL : x->sel, k, err);
        if (!c) {
            rc = -1;
            break;
        }
        uint32_t m = 0, k2 = 0;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t row = x->sel[j];
            if (VALID(c, j) && ROS_VEC_BOOL(c)[j])
                match[m++] = row;
            else
                x->sel2[k2++] = row;
        }
        if (m > 0) {
            res[p] = eval_rows(x->args[2 * p + 1], in, match, m, err);
            if (!res[p]) {
                rc = -1;
                break;
            }
            for (uint32_t j = 0; j < m; j++) {
                x->branch[match[j]] = p;
                x->pos[match[j]] = j;
            }
        }
        uint32_t *t = x->sel;
        x->sel = x->sel2;
        x->sel2 = t;
        k = k2;
    }
    if (rc == 0 && has_else && k > 0) {
        res[pairs] = eval_rows(x->args[x->nargs - 1], in, k == n ? NULL : x->sel, k, err);
        if (!res[pairs])
            rc = -1;
        else
            for (uint32_t j = 0; j < k; j++) {
                x->branch[x->sel[j]] = pairs;
                x->pos[x->sel[j]] = j;
            }
    }
    free(match);
    return rc < 0 ? -1 : assemble(x, res, n, err);
}

static int eval_coalesce(rt_expr *x, const ros_batch *in, ros_error *err)
{
    uint32_t n = in->nrows;
    const ros_vector *res[x->nargs + 1];
    if (ensure_sel(x, n) < 0)
        return ros_error_oom(err);
    for (uint32_t i = 0; i < n; i++) {
        x->sel[i] = i;
        x->branch[i] = -1;
    }
    uint32_t k = n;
    for (int a = 0; a < x->nargs && k > 0; a++) {
        const ros_vector *v = eval_rows(x->args[a], in, k == n ? NULL : x->sel, k, err);
        if (!v)
            return -1;
        res[a] = v;
        uint32_t k2 = 0;
        for (uint32_t j = 0; j < k; j++) {
            uint32_t row = x->sel[j];
            if (VALID(v, j)) {
                x->branch[row] = a;
                x->pos[row] = j;
            } else
                x->sel2[k2++] = row;
        }
        uint32_t *t = x->sel;
        x->sel = x->sel2;
        x->sel2 = t;
        k = k2;
    }
    return assemble(x, res, n, err);
}

/* ---------------------------------------------------------------- */
/* LIKE */

static size_t utf8_len(uint8_t c)
{
    return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
}

static bool like_eq(uint8_t a, uint8_t b, bool ci)
{
    return ci ? tolower(a) == tolower(b) : a == b;
}

enum { LIKE_ERROR = -2, LIKE_ABORT = -1, LIKE_FALSE = 0, LIKE_TRUE = 1 };

/*
 * Matches t against a LIKE pattern: PostgreSQL's MatchText (like_match.c),
 * so the answers, and when a pattern ending in the escape character is an
 * error, are PostgreSQL's: only once matching reaches it.  esc < 0: no
 * escape character.  Returns LIKE_TRUE, LIKE_FALSE, LIKE_ABORT (no match,
 * and no later start can match either) or LIKE_ERROR.
 */
static int like_match(const uint8_t *t, size_t tlen, const uint8_t *p, size_t plen, int esc, bool ci)
{
    if (plen == 1 && p[0] == '%' && esc != '%')
        return LIKE_TRUE;
    while (tlen > 0 && plen > 0) {
        if (esc >= 0 && p[0] == (uint8_t)esc) {
            p++, plen--;
            if (plen == 0)
                return LIKE_ERROR;
            if (!like_eq(p[0], t[0], ci))
                return LIKE_FALSE;
        } else if (p[0] == '%') {
            /* a run of % and _ eats one character per _ */
            p++, plen--;
            while (plen > 0) {
                if (p[0] == '%' && esc != '%') {
                    p++, plen--;
                } else if (p[0] == '_' && esc != '_') {
                    if (tlen == 0)
                        return LIKE_ABORT;
                    size_t l = utf8_len(t[0]);
                    l = l > tlen ? tlen : l;
                    t += l, tlen -= l;
                    p++, plen--;
                } else
                    break;
            }
            if (plen == 0)
                return LIKE_TRUE;
            uint8_t first;
            if (esc >= 0 && p[0] == (uint8_t)esc) {
                if (plen < 2)
                    return LIKE_ERROR;
                first = p[1];
            } else
                first = p[0];
            while (tlen > 0) {
                if (like_eq(t[0], first, ci)) {
                    int m = like_match(t, tlen, p, plen, esc, ci);
                    if (m != LIKE_FALSE)
                        return m;
                }
                size_t l = utf8_len(t[0]);
                l = l > tlen ? tlen : l;
                t += l, tlen -= l;
            }
            return LIKE_ABORT;
        } else if (p[0] == '_') {
            size_t l = utf8_len(t[0]);
            l = l > tlen ? tlen : l;
            t += l, tlen -= l;
            p++, plen--;
            continue;
        } else if (!like_eq(p[0], t[0], ci)) {
            return LIKE_FALSE;
        }
        t++, tlen--;
        p++, plen--;
    }
    if (tlen > 0)
        return LIKE_FALSE;
    while (plen > 0 && p[0] == '%' && esc != '%')
        p++, plen--;
    return plen == 0 ? LIKE_TRUE : LIKE_ABORT;
}

static int eval_like(rt_expr *x, const ros_batch *in, ros_error *err)
{
    uint32_t n = in->nrows;
    const ros_vector *s = eval(x->args[0], in, err);
    const ros_vector *p = s ? eval(x->args[1], in, err) : NULL;
    const ros_vector *e = (p && x->nargs > 2) ? eval(x->args[2], in, err) : NULL;
    if (!p || (x->nargs > 2 && !e))
        return -1;
    if (ros_vector_resize_fixed(&x->out, n) < 0)
        return ros_error_oom(err);
    bool ci = x->pe->u.like.ilike, neg = x->pe->u.like.is_not;
    for (uint32_t i = 0; i < n; i++) {
        if (!VALID(s, i) || !VALID(p, i) || (e && !VALID(e, i))) {
            ros_vector_set_valid(&x->out, i, false);
            continue;
        }
        int esc = '\\';
        if (e) {
            uint32_t el;
            const uint8_t *ep = ros_vector_bytes(e, i, &el);
            if (el == 0)
                esc = -1;
            else if (el == 1)
                esc = ep[0];
            else
                return ros_error_set(err, ROS_ERR_INVALID_ESCAPE, "invalid escape string"),
                       ros_error_hint(err, "Escape string must be empty or one character."), -1;
        }
        uint32_t sl, pl;
        const uint8_t *sp = ros_vector_bytes(s, i, &sl);
        const uint8_t *pp = ros_vector_bytes(p, i, &pl);
        int m = like_match(sp, sl, pp, pl, esc, ci);
        if (m == LIKE_ERROR)
            return ros_error_set(err, ROS_ERR_INVALID_ESCAPE, "LIKE pattern must not end with escape character");
        ROS_VEC_BOOL(&x->out)[i] = (uint8_t)((m == LIKE_TRUE) != neg);
    }
    return 0;
}

/* ---------------------------------------------------------------- */
/* Built-in functions */

/* Appends n bytes; an empty value may have no bytes at all (NULL). */
static void append_bytes(ros_strbuf *sb, const uint8_t *p, size_t n)
{
    if (n)
        ros_strbuf_appendn(sb, (const char *)p, n);
}

static const uint8_t *txt(const ros_vector *v, uint32_t i, uint32_t *len)
{
    return ros_vector_bytes(v, i, len);
}

/* Byte offset of character number k (0-based) in s, clamped to n. */
static uint32_t char_offset(const uint8_t *s, uint32_t n, int64_t k)
{
    uint32_t off = 0;
    while (k > 0 && off < n) {
        off += (uint32_t)utf8_len(s[off]);
        k--;
    }
    return off > n ? n : off;
}

static int64_t char_count(const uint8_t *s, uint32_t n)
{
    int64_t c = 0;
    for (uint32_t i = 0; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

static double fnum(const ros_vector *v, uint32_t i)
{
    switch (v->type) {
    case ROS_TYPE_INT16: return ROS_VEC_I16(v)[i];
    case ROS_TYPE_INT32: return ROS_VEC_I32(v)[i];
    case ROS_TYPE_INT64: return (double)ROS_VEC_I64(v)[i];
    case ROS_TYPE_FLOAT32: return ROS_VEC_F32(v)[i];
    default: return ROS_VEC_F64(v)[i];
    }
}

static int64_t inum(const ros_vector *v, uint32_t i)
{
    switch (v->type) {
    case ROS_TYPE_INT16: return ROS_VEC_I16(v)[i];
    case ROS_TYPE_INT32: return ROS_VEC_I32(v)[i];
    default: return ROS_VEC_I64(v)[i];
    }
}

/* Does a trim character set (chars) contain the UTF-8 character at c? */
static bool in_set(const uint8_t *set, uint32_t sl, const uint8_t *c, size_t cl)
{
    for (uint32_t k = 0; k < sl;) {
        size_t l = utf8_len(set[k]);
        if (l == cl && memcmp(set + k, c, cl) == 0)
            return true;
        k += (uint32_t)l;
    }
    return false;
}

static int eval_func_row(rt_expr *x, const ros_vector *const *a, uint32_t i, ros_strbuf *tmp, ros_error *err)
{
    ros_vector *out = &x->out;
    plan_func f = x->pe->u.func;
    uint32_t l0, l1, l2;
    const uint8_t *s0, *s1, *s2;
    switch (f) {
    case FN_LENGTH:
        s0 = txt(a[0], i, &l0);
        return ros_vector_append_i32(out, (int32_t)(a[0]->type == ROS_TYPE_BYTEA ? l0 : char_count(s0, l0)));
    case FN_LOWER:
    case FN_UPPER: {
        s0 = txt(a[0], i, &l0);
        ros_strbuf_reset(tmp);
        for (uint32_t k = 0; k < l0; k++)
            ros_strbuf_appendc(tmp, (char)(s0[k] < 0x80 ? (f == FN_LOWER ? tolower(s0[k]) : toupper(s0[k])) : s0[k]));
        return ros_vector_append_bytes(out, tmp->data, (uint32_t)tmp->len);
    }
    case FN_SUBSTR: {
        s0 = txt(a[0], i, &l0);
        int64_t start = inum(a[1], i);
        int64_t end = INT64_MAX;
        if (x->nargs > 2) {
            int64_t cnt = inum(a[2], i);
            if (cnt < 0)
                return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "negative substring length not allowed");
            end = start + cnt;
        }
        if (start < 1)
            start = 1;
        if (end <= start)
            return ros_vector_append_bytes(out, "", 0);
        uint32_t b = char_offset(s0, l0, start - 1);
        uint32_t e = end == INT64_MAX ? l0 : char_offset(s0, l0, end - 1);
        return ros_vector_append_bytes(out, s0 + b, e - b);
    }
    case FN_LEFT:
    case FN_RIGHT: {
        s0 = txt(a[0], i, &l0);
        int64_t k = inum(a[1], i), total = char_count(s0, l0);
        int64_t take = k >= 0 ? (k < total ? k : total) : (total + k > 0 ? total + k : 0);
        uint32_t b = f == FN_LEFT ? 0 : char_offset(s0, l0, total - take);
        uint32_t e = f == FN_LEFT ? char_offset(s0, l0, take) : l0;
        return ros_vector_append_bytes(out, s0 + b, e - b);
    }
    case FN_REVERSE: {
        s0 = txt(a[0], i, &l0);
        ros_strbuf_reset(tmp);
        for (uint32_t e = l0; e > 0;) {
            uint32_t b = e - 1;
            while (b > 0 && (s0[b] & 0xC0) == 0x80)
                b--;
            append_bytes(tmp, s0 + b, e - b);
            e = b;
        }
        return ros_vector_append_bytes(out, tmp->data ? tmp->data : "", (uint32_t)tmp->len);
    }
    case FN_REPEAT: {
        s0 = txt(a[0], i, &l0);
        int64_t k = inum(a[1], i);
        if (k > 0 && (uint64_t)k * l0 > (1u << 30))
            return ros_error_set(err, ROS_ERR_OUT_OF_MEMORY, "requested length too large");
        ros_strbuf_reset(tmp);
        for (int64_t r = 0; r < k; r++)
            append_bytes(tmp, s0, l0);
        return ros_vector_append_bytes(out, tmp->data ? tmp->data : "", (uint32_t)tmp->len);
    }
    case FN_BTRIM:
    case FN_LTRIM:
    case FN_RTRIM: {
        s0 = txt(a[0], i, &l0);
        const uint8_t *set = (const uint8_t *)" ";
        uint32_t sl = 1;
        if (x->nargs > 1)
            set = txt(a[1], i, &sl);
        uint32_t b = 0, e = l0;
        if (f != FN_RTRIM)
            while (b < e && in_set(set, sl, s0 + b, utf8_len(s0[b])))
                b += (uint32_t)utf8_len(s0[b]);
        if (f != FN_LTRIM)
            while (e > b) {
                uint32_t c = e - 1;
                while (c > b && (s0[c] & 0xC0) == 0x80)
                    c--;
                if (!in_set(set, sl, s0 + c, e - c))
                    break;
                e = c;
            }
        return ros_vector_append_bytes(out, s0 + b, e - b);
    }
    case FN_REPLACE: {
        s0 = txt(a[0], i, &l0);
        s1 = txt(a[1], i, &l1);
        s2 = txt(a[2], i, &l2);
        if (l1 == 0)
            return ros_vector_append_bytes(out, s0, l0);
        ros_strbuf_reset(tmp);
        for (uint32_t k = 0; k < l0;) {
            if (k + l1 <= l0 && memcmp(s0 + k, s1, l1) == 0) {
                append_bytes(tmp, s2, l2);
                k += l1;
            } else
                ros_strbuf_appendc(tmp, (char)s0[k++]);
        }
        return ros_vector_append_bytes(out, tmp->data ? tmp->data : "", (uint32_t)tmp->len);
    }
    case FN_POSITION: {
        /* position(sub IN s) arrives as position(s, sub); strpos(s, sub) likewise */
        s0 = txt(a[0], i, &l0);
        s1 = txt(a[1], i, &l1);
        int32_t r = 0;
        if (l1 == 0)
            r = 1;
        else
            for (uint32_t k = 0; k + l1 <= l0; k++)
                if (memcmp(s0 + k, s1, l1) == 0) {
                    r = (int32_t)char_count(s0, k) + 1;
                    break;
                }
        return ros_vector_append_i32(out, r);
    }
    case FN_STARTS_WITH:
        s0 = txt(a[0], i, &l0);
        s1 = txt(a[1], i, &l1);
        return ros_vector_append_bool(out, l1 <= l0 && memcmp(s0, s1, l1) == 0);
    case FN_ABS:
        switch (out->type) {
        case ROS_TYPE_INT16: if (inum(a[0], i) == INT16_MIN) return oor(err, out->type);
            return ros_vector_append_i16(out, (int16_t)llabs(inum(a[0], i)));
        case ROS_TYPE_INT32: if (inum(a[0], i) == INT32_MIN) return oor(err, out->type);
            return ros_vector_append_i32(out, (int32_t)llabs(inum(a[0], i)));
        case ROS_TYPE_INT64: if (inum(a[0], i) == INT64_MIN) return oor(err, out->type);
            return ros_vector_append_i64(out, llabs(inum(a[0], i)));
        case ROS_TYPE_FLOAT32: return ros_vector_append_f32(out, fabsf(ROS_VEC_F32(a[0])[i]));
        default: return ros_vector_append_f64(out, fabs(fnum(a[0], i)));
        }
    case FN_MOD: {
        int64_t y = inum(a[1], i), xx = inum(a[0], i);
        if (y == 0)
            return div0(err);
        int64_t r = y == -1 ? 0 : xx % y;
        return out->type == ROS_TYPE_INT16 ? ros_vector_append_i16(out, (int16_t)r)
               : out->type == ROS_TYPE_INT32 ? ros_vector_append_i32(out, (int32_t)r)
                                             : ros_vector_append_i64(out, r);
    }
    case FN_FLOOR: return ros_vector_append_f64(out, floor(fnum(a[0], i)));
    case FN_CEIL: return ros_vector_append_f64(out, ceil(fnum(a[0], i)));
    case FN_SIGN: {
        double d = fnum(a[0], i);
        return ros_vector_append_f64(out, d > 0 ? 1 : d < 0 ? -1 : 0);
    }
    case FN_ROUND:
    case FN_TRUNC: {
        double d = fnum(a[0], i);
        int64_t places = x->nargs > 1 ? inum(a[1], i) : 0;
        double scale = pow(10.0, (double)places);
        double v = d * scale;
        /* round(x, n) is numeric's: half away from zero; round(x) of a
         * double is float8's rint: half to even */
        if (f == FN_ROUND)
            v = x->nargs > 1 ? (v < 0 ? -floor(-v + 0.5) : floor(v + 0.5)) : rint(v);
        else
            v = trunc(v);
        return ros_vector_append_f64(out, places ? v / scale : v);
    }
    case FN_SQRT: {
        double d = fnum(a[0], i);
        if (d < 0)
            return ros_error_set(err, "2201F", "cannot take square root of a negative number");
        return ros_vector_append_f64(out, sqrt(d));
    }
    case FN_POWER: {
        double b = fnum(a[0], i), e = fnum(a[1], i);
        if (b == 0 && e < 0)
            return ros_error_set(err, "2201F", "zero raised to a negative power is undefined");
        if (b < 0 && floor(e) != e)
            return ros_error_set(err, "2201F", "a negative number raised to a non-integer power yields a complex result");
        double r = pow(b, e);
        if (isinf(r) && !isinf(b) && !isinf(e))
            return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value out of range: overflow");
        return ros_vector_append_f64(out, r);
    }
    case FN_EXP: {
        double r = exp(fnum(a[0], i));
        if (isinf(r))
            return ros_error_set(err, ROS_ERR_OUT_OF_RANGE, "value out of range: overflow");
        return ros_vector_append_f64(out, r);
    }
    case FN_LN: {
        double d = fnum(a[0], i);
        if (d == 0)
            return ros_error_set(err, "2201E", "cannot take logarithm of zero");
        if (d < 0)
            return ros_error_set(err, "2201E", "cannot take logarithm of a negative number");
        return ros_vector_append_f64(out, log(d));
    }
    case FN_ARRAY_LENGTH: {
        txt(a[0], i, &l0);
        if (x->nargs > 1 && inum(a[1], i) != 1)
            return ros_vector_append_null(out);
        if (l0 == 0 && x->nargs > 1)
            return ros_vector_append_null(out);
        return ros_vector_append_i32(out, (int32_t)(l0 / sizeof(float)));
    }
    default:
        return ros_error_set(err, ROS_ERR_INTERNAL, "unknown function %d", (int)f);
    }
}

static int eval_func(rt_expr *x, const ros_batch *in, ros_error *err)
{
    uint32_t n = in->nrows;
    const ros_vector *a[x->nargs + 1];
    for (int k = 0; k < x->nargs; k++)
        if (!(a[k] = eval(x->args[k], in, err)))
            return -1;
    ros_vector_reset(&x->out);
    if (ros_vector_reserve(&x->out, n ? n : 1) < 0)
        return ros_error_oom(err);
    ros_strbuf tmp = ROS_STRBUF_INIT;
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (x->pe->u.func == FN_CONCAT) {
            /* concat ignores NULLs */
            ros_strbuf_reset(&tmp);
            for (int k = 0; k < x->nargs; k++)
                if (VALID(a[k], i) && a[k]->type == ROS_TYPE_BOOL) {
                    ros_strbuf_append(&tmp, ROS_VEC_BOOL(a[k])[i] ? "t" : "f");
                } else if (VALID(a[k], i)) {
                    uint32_t l;
                    const uint8_t *p = txt(a[k], i, &l);
                    append_bytes(&tmp, p, l);
                }
            rc = ros_vector_append_bytes(&x->out, tmp.data ? tmp.data : "", (uint32_t)tmp.len) < 0 ? ros_error_oom(err) : 0;
            continue;
        }
        bool any_null = false;
        for (int k = 0; k < x->nargs; k++)
            any_null |= !VALID(a[k], i);
        if (any_null) {
            rc = ros_vector_append_null(&x->out) < 0 ? ros_error_oom(err) : 0;
            continue;
        }
        int r = eval_func_row(x, a, i, &tmp, err);
        if (r < 0 && !err->set)
            ros_error_oom(err);
        rc = r < 0 ? -1 : 0;
    }
    if (tmp.oom && rc == 0)
        rc = ros_error_oom(err);
    ros_strbuf_free(&tmp);
    return rc;
}

/* ---------------------------------------------------------------- */
/* User C functions */

static int eval_udf(rt_expr *x, const ros_batch *in, ros_error *err)
{
    uint32_t n = in->nrows;
    plan_udf *u = x->pe->u.udf.fn;
    for (int k = 0; k < x->nargs; k++)
        if (!(x->argv[k] = eval(x->args[k], in, err)))
            return -1;
    ros_vector_free(&x->out);
    ros_vector_init(&x->out, x->pe->type);
    if (!x->pe->u.udf.strict)
        return rt_udf_call(u, x->argv, n, &x->out, err);
    /* STRICT: rows with a NULL argument are NULL without a call */
    if (ensure_sel(x, n) < 0)
        return ros_error_oom(err);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool null = false;
        for (int a = 0; a < x->nargs; a++)
            null |= !VALID(x->argv[a], i);
        if (!null)
            x->sel[k++] = i;
    }
    if (k == n)
        return rt_udf_call(u, x->argv, n, &x->out, err);
    if (!x->argtmp) {
        x->argtmp = calloc((size_t)x->nargs + 1, sizeof(ros_vector));
        if (!x->argtmp)
            return ros_error_oom(err);
        for (int a = 0; a < x->nargs; a++)
            ros_vector_init(&x->argtmp[a], x->pe->args[a]->type);
    }
    const ros_vector *sub[x->nargs + 1];
    for (int a = 0; a < x->nargs; a++) {
        if (rt_vector_gather(&x->argtmp[a], x->argv[a], x->sel, k) < 0)
            return ros_error_oom(err);
        sub[a] = &x->argtmp[a];
    }
    ros_vector res;
    ros_vector_init(&res, x->pe->type);
    if (k > 0 && rt_udf_call(u, sub, k, &res, err) < 0) {
        ros_vector_free(&res);
        return -1;
    }
    if (ros_vector_reserve(&x->out, n ? n : 1) < 0) {
        ros_vector_free(&res);
        return ros_error_oom(err);
    }
    uint32_t j = 0;
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (j < k && x->sel[j] == i)
            rc = rt_vector_append_row(&x->out, &res, j++);
        else
            rc = ros_vector_append_null(&x->out);
    }
    ros_vector_free(&res);
    return rc < 0 ? ros_error_oom(err) : 0;
}

/* ---------------------------------------------------------------- */
/* Dispatch */

static int eval_simple(rt_expr *x, const ros_batch *in, ros_error *err)
{
    uint32_t n = in->nrows;
    const plan_expr *pe = x->pe;
    ros_vector *out = &x->out;
    switch (pe->kind) {
    case PE_NOT:
    case PE_ISNULL:
    case PE_BOOLTEST: {
        const ros_vector *a = eval(x->args[0], in, err);
        if (!a || ros_vector_resize_fixed(out, n) < 0)
            return a ? ros_error_oom(err) : -1;
        uint8_t *o = ROS_VEC_BOOL(out);
        for (uint32_t i = 0; i < n; i++) {
            bool valid = VALID(a, i);
            bool v = valid && a->type == ROS_TYPE_BOOL && ROS_VEC_BOOL(a)[i];
            if (pe->kind == PE_NOT) {
                if (!valid)
                    ros_vector_set_valid(out, i, false);
                o[i] = !v;
            } else if (pe->kind == PE_ISNULL) {
                o[i] = pe->u.flag ? valid : !valid;
            } else {
                switch (pe->u.test) {
                case 0: o[i] = valid && v; break;
                case 1: o[i] = !(valid && v); break;
                case 2: o[i] = valid && !v; break;
                case 3: o[i] = !(valid && !v); break;
                case 4: o[i] = !valid; break;
                default: o[i] = valid; break;
                }
            }
        }
        return 0;
    }
    case PE_CAST: {
        const ros_vector *a = eval(x->args[0], in, err);
        if (!a)
            return -1;
        return rt_cast_vector(a, out, err);
    }
    case PE_NULLIF: {
        const ros_vector *a = eval(x->args[0], in, err);
        const ros_vector *b = a ? eval(x->args[1], in, err) : NULL;
        if (!b)
            return -1;
        if (rt_vector_copy(out, a) < 0)
            return ros_error_oom(err);
        for (uint32_t i = 0; i < n; i++)
            if (VALID(a, i) && VALID(b, i) && rt_value_cmp(a, i, b, i) == 0)
                ros_vector_set_valid(out, i, false);
        return 0;
    }
    case PE_MINMAX: {
        const ros_vector *a[x->nargs + 1];
        for (int k = 0; k < x->nargs; k++)
            if (!(a[k] = eval(x->args[k], in, err)))
                return -1;
        ros_vector_reset(out);
        if (ros_vector_reserve(out, n ? n : 1) < 0)
            return ros_error_oom(err);
        for (uint32_t i = 0; i < n; i++) {
            int best = -1;
            for (int k = 0; k < x->nargs; k++) {
                if (!VALID(a[k], i))
                    continue;
                if (best < 0) {
                    best = k;
                    continue;
                }
                int c = rt_value_cmp(a[k], i, a[best], i);
                if (pe->u.flag ? c > 0 : c < 0)
                    best = k;
            }
            int rc = best < 0 ? ros_vector_append_null(out) : rt_vector_append_row(out, a[best], i);
            if (rc < 0)
                return ros_error_oom(err);
        }
        return 0;
    }
    case PE_IN: {
        const ros_vector *a[x->nargs + 1];
        for (int k = 0; k < x->nargs; k++)
            if (!(a[k] = eval(x->args[k], in, err)))
                return -1;
        if (ros_vector_resize_fixed(out, n) < 0)
            return ros_error_oom(err);
        for (uint32_t i = 0; i < n; i++) {
            if (!VALID(a[0], i)) {
                ros_vector_set_valid(out, i, false);
                continue;
            }
            bool found = false, saw_null = false;
            for (int k = 1; k < x->nargs && !found; k++) {
                if (!VALID(a[k], i))
                    saw_null = true;
                else if (rt_value_cmp(a[0], i, a[k], i) == 0)
                    found = true;
            }
            if (!found && saw_null)
                ros_vector_set_valid(out, i, false);
            ROS_VEC_BOOL(out)[i] = (uint8_t)(found != pe->u.flag);
        }
        return 0;
    }
    case PE_ARRAY: {
        const ros_vector *a[x->nargs + 1];
        for (int k = 0; k < x->nargs; k++)
            if (!(a[k] = eval(x->args[k], in, err)))
                return -1;
        ros_vector_reset(out);
        float vals[x->nargs + 1];
        for (uint32_t i = 0; i < n; i++) {
            for (int k = 0; k < x->nargs; k++) {
                if (!VALID(a[k], i))
                    return ros_error_set(err, ROS_ERR_NOT_SUPPORTED, "NULL elements in real[] are not supported");
                vals[k] = ROS_VEC_F32(a[k])[i];
            }
            if (ros_vector_append_bytes(out, vals, (uint32_t)(sizeof(float) * (size_t)x->nargs)) < 0)
                return ros_error_oom(err);
        }
        return 0;
    }
    case PE_SUBSCRIPT: {
        const ros_vector *a = eval(x->args[0], in, err);
        const ros_vector *b = a ? eval(x->args[1], in, err) : NULL;
        if (!b)
            return -1;
        if (ros_vector_resize_fixed(out, n) < 0)
            return ros_error_oom(err);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t len = 0;
            const uint8_t *p = VALID(a, i) ? ros_vector_bytes(a, i, &len) : NULL;
            int32_t idx = VALID(b, i) ? ROS_VEC_I32(b)[i] : 0;
            if (!p || idx < 1 || (uint32_t)idx > len / sizeof(float)) {
                ros_vector_set_valid(out, i, false);
                ROS_VEC_F32(out)[i] = 0;
                continue;
            }
            memcpy(&ROS_VEC_F32(out)[i], p + (size_t)(idx - 1) * sizeof(float), sizeof(float));
        }
        return 0;
    }
    default:
        return ros_error_set(err, ROS_ERR_INTERNAL, "unexpected expression kind %d", (int)pe->kind);
    }
}

static const ros_vector *eval(rt_expr *x, const ros_batch *in, ros_error *err)
{
    int rc;
    if (x->is_const) {
        if (broadcast(&x->out, &x->cval, in->nrows, &x->const_filled) < 0) {
            ros_error_oom(err);
            return NULL;
        }
        return &x->out;
    }
    x->const_filled = 0;
    switch (x->pe->kind) {
    case PE_COLUMN:
        if ((uint32_t)x->pe->u.column >= in->ncols) {
            ros_error_set(err, ROS_ERR_INTERNAL, "column %d out of range", x->pe->u.column);
            return NULL;
        }
        return &in->cols[x->pe->u.column];
    case PE_OP: rc = eval_op(x, in, err); break;
    case PE_AND:
    case PE_OR: rc = eval_andor(x, in, err); break;
    case PE_CASE: rc = eval_case(x, in, err); break;
    case PE_COALESCE: rc = eval_coalesce(x, in, err); break;
    case PE_LIKE: rc = eval_like(x, in, err); break;
    case PE_FUNC: rc = eval_func(x, in, err); break;
    case PE_UDF: rc = eval_udf(x, in, err); break;
    default: rc = eval_simple(x, in, err); break;
    }
    if (rc < 0) {
        if (!err->set)
            ros_error_oom(err);
        return NULL;
    }
    return &x->out;
}

const ros_vector *rt_expr_eval(rt_expr *x, const ros_batch *in, ros_error *err)
{
    return eval(x, in, err);
}
