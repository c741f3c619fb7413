/*
 * proxies.c
 *    Rule service_proxies: every call of a function computed by a service
 *    becomes a Proxy node below the operator that used it, and the call in
 *    the expression becomes a reference to the proxy's output column.
 *
 * For an operator N over child C whose expressions call services:
 *   - the calls are collected innermost first (f(g(x)) gives g, then f) and
 *     deduplicated (the same call written twice is one remote call, unless
 *     the function is volatile: then each call is its own, as PostgreSQL
 *     evaluates a volatile function once per call);
 *   - each gets a Proxy stacked on C: Proxy_1(C), Proxy_2(Proxy_1(C)), ...
 *     A Proxy outputs its child's columns plus the result, so the column
 *     numbers of C stay valid above it; an argument that uses an earlier
 *     call refers to that proxy's column;
 *   - N's expressions have each call replaced by a column reference, and N
 *     reads from the last proxy.
 * A Filter is split first: conjuncts without service calls stay below the
 * proxies, so rows they reject are never sent.
 * Which calls are proxied is decided by rw_call_is_proxied (a function bound
 * with SERVICE name).
 */
#include <stdlib.h>
#include <string.h>

#include "rewriter/rewriter.h"

#define MAX_CALLS 64

typedef struct extract {
    rw_ctx *ctx;
    plan_expr *calls[MAX_CALLS]; /* distinct calls, innermost first */
    plan_expr *guard[MAX_CALLS]; /* where each is needed (see case_guard), NULL: everywhere */
    int ncalls;
    int col[MAX_CALLS];          /* output column of each call's proxy */
    int *next_op;                /* operator numbering across the plan */
    bool pending;                /* guard_ready_walker: a call without a proxy yet */
} extract;

bool rw_call_is_proxied(const plan_expr *e) { return e->kind == PE_UDF && e->u.udf.service != NULL; }

static bool has_call_walker(plan_expr *e, void *arg) { return rw_call_is_proxied(e); }

static bool has_call(plan_expr *e) { return e && plan_expr_walk(e, has_call_walker, NULL); }

static int find_call(extract *x, const plan_expr *e)
{
    for (int i = 0; i < x->ncalls; i++)
        if (x->calls[i] == e || (!e->u.udf.is_volatile && plan_expr_equal(x->calls[i], e)))
            return i;
    return -1;
}

static plan_expr *bool_const(rw_ctx *ctx, bool v)
{
    plan_expr *c = plan_expr_new(ctx->arena, PE_CONST, ROS_TYPE_BOOL, 0);
    if (c)
        c->u.cnst.i = v;
    return c;
}

/*
 * Guards: a call under CASE or COALESCE is needed only by some rows, and only
 * those are sent.  A guard is itself a CASE with the same conditions in the
 * same order, so it evaluates exactly what the in-process evaluation would
 * (a condition that fails on rows that never reach it fails neither way):
 *   CASE WHEN c1 THEN false ... WHEN c(i-1) THEN false WHEN ci THEN true ELSE false END
 * for the result of branch i, and ELSE true (no ci) for condition i or the
 * ELSE branch.  An enclosing guard g wraps it: CASE WHEN g THEN inner ELSE
 * false END.  NULL means every row.
 */
static plan_expr *case_guard(extract *x, plan_expr *outer, plan_expr *const *conds, int nfalse, plan_expr *when_true,
                             bool is_null_test)
{
    rw_ctx *ctx = x->ctx;
    int npairs = nfalse + (when_true ? 1 : 0);
    plan_expr *g = plan_expr_new(ctx->arena, PE_CASE, ROS_TYPE_BOOL, 2 * npairs + 1);
    if (!g)
        return NULL;
    g->u.flag = true;
    for (int i = 0; i < nfalse; i++) {
        plan_expr *c = conds[i];
        if (is_null_test) { /* COALESCE: an earlier argument that is not NULL decides */
            plan_expr *t = plan_expr_new(ctx->arena, PE_ISNULL, ROS_TYPE_BOOL, 1);
            if (!t)
                return NULL;
            t->args[0] = conds[i];
            t->u.flag = true; /* IS NOT NULL */
            c = t;
        }
        if (!(g->args[2 * i + 1] = bool_const(ctx, false)))
            return NULL;
        g->args[2 * i] = c;
    }
    if (when_true) {
        g->args[2 * nfalse] = when_true;
        if (!(g->args[2 * nfalse + 1] = bool_const(ctx, true)))
            return NULL;
    }
    if (!(g->args[2 * npairs] = bool_const(ctx, when_true == NULL)))
        return NULL;
    if (!outer)
        return g;
    plan_expr *w = plan_expr_new(ctx->arena, PE_CASE, ROS_TYPE_BOOL, 3);
    if (!w)
        return NULL;
    w->u.flag = true;
    w->args[0] = outer;
    w->args[1] = g;
    if (!(w->args[2] = bool_const(ctx, false)))
        return NULL;
    return w;
}

/* Collects the calls under e (needed where guard holds), arguments before
 * the calls that use them. */
static bool collect(extract *x, plan_expr *e, plan_expr *guard, int depth)
{
    if (!e || depth > 1000)
        return true;
    if (e->kind == PE_CASE || e->kind == PE_COALESCE) {
        bool has_else = e->kind == PE_CASE && e->u.flag;
        int pairs = e->kind == PE_CASE ? (e->nargs - (has_else ? 1 : 0)) / 2 : 0;
        for (int i = 0; i < e->nargs; i++) {
            plan_expr *g = guard;
            if (i > 0 && has_call(e->args[i])) {
                if (e->kind == PE_COALESCE) {
                    g = case_guard(x, guard, e->args, i, NULL, true);
                } else {
                    /* conditions of the branches before this one, in order;
                     * a branch's result also needs its own condition */
                    bool is_else = i >= 2 * pairs;
                    int before = is_else ? pairs : i / 2;
                    plan_expr *when = !is_else && i % 2 == 1 ? e->args[i - 1] : NULL;
                    plan_expr *conds[before + 1];
                    for (int k = 0; k < before; k++)
                        conds[k] = e->args[2 * k];
                    g = before == 0 && !when ? guard : case_guard(x, guard, conds, before, when, false);
                }
                if (!g) {
                    ros_error_oom(x->ctx->err);
                    return false;
                }
            }
            if (!collect(x, e->args[i], g, depth + 1))
                return false;
        }
    } else {
        for (int i = 0; i < e->nargs; i++)
            if (!collect(x, e->args[i], guard, depth + 1))
                return false;
    }
    if (e->kind == PE_AGG && e->u.agg.filter && !collect(x, e->u.agg.filter, guard, depth + 1))
        return false;
    if (!rw_call_is_proxied(e))
        return true;
    int k = find_call(x, e);
    if (k >= 0) {
        /* the same call needed in two places: needed where either guard holds */
        if (!x->guard[k] || !guard)
            x->guard[k] = NULL;
        else if (!plan_expr_equal(x->guard[k], guard)) {
            plan_expr *o = plan_expr_new(x->ctx->arena, PE_OR, ROS_TYPE_BOOL, 2);
            if (!o) {
                ros_error_oom(x->ctx->err);
                return false;
            }
            o->args[0] = x->guard[k];
            o->args[1] = guard;
            x->guard[k] = o;
        }
        return true;
    }
    if (x->ncalls == MAX_CALLS) {
        ros_error_set(x->ctx->err, ROS_ERR_NOT_SUPPORTED, "more than %d service calls in one operator", MAX_CALLS);
        return false;
    }
    x->guard[x->ncalls] = guard;
    x->calls[x->ncalls++] = e;
    return true;
}

/* Mutator: a collected call (with a proxy column already) -> column ref. */
static plan_expr *replace_call(plan_expr *e, void *arg, bool *failed)
{
    extract *x = arg;
    if (!rw_call_is_proxied(e))
        return NULL;
    int k = find_call(x, e);
    if (k < 0 || x->col[k] < 0)
        return NULL;
    plan_expr *c = plan_expr_column(x->ctx->arena, x->col[k], e->type);
    if (!c)
        *failed = true;
    return c;
}

static plan_expr *rewrite_expr(extract *x, plan_expr *e)
{
    if (!e)
        return NULL;
    bool failed = false;
    plan_expr *r = plan_expr_mutate(x->ctx->arena, e, replace_call, x, &failed);
    if (failed || !r) {
        ros_error_oom(x->ctx->err);
        return NULL;
    }
    return r;
}

static const char *opt(const cat_options *o, const char *key) { return o ? cat_options_get(o, key) : NULL; }

static uint32_t opt_u32(const cat_options *o, const char *key, uint32_t dflt)
{
    const char *v = opt(o, key);
    if (!v)
        return dflt;
    long long n = strtoll(v, NULL, 10);
    return n < 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static bool guard_ready_walker(plan_expr *e, void *arg)
{
    extract *x = arg;
    if (!rw_call_is_proxied(e))
        return false;
    int k = find_call(x, e);
    x->pending |= k < 0 || x->col[k] < 0;
    return x->pending;
}

/* Builds the proxy of call k over top. */
static plan_node *make_proxy(extract *x, plan_node *top, int k)
{
    rw_ctx *ctx = x->ctx;
    plan_expr *call = x->calls[k];
    plan_node *p = plan_node_new(ctx->arena, PN_PROXY, top, top->ncols + 1);
    if (!p) {
        ros_error_oom(ctx->err);
        return NULL;
    }
    if (top->ncols) {
        memcpy(p->names, top->names, sizeof(char *) * top->ncols);
        memcpy(p->types, top->types, sizeof(ros_type) * top->ncols);
    }
    p->names[top->ncols] = call->u.udf.name;
    p->types[top->ncols] = call->type;
    p->est_rows = top->est_rows;
    p->u.proxy.function = call->u.udf.name;
    p->u.proxy.service = call->u.udf.service;
    p->u.proxy.method = call->u.udf.method;
    p->u.proxy.nargs = call->nargs;
    p->u.proxy.args = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, call->nargs + 1);
    if (!p->u.proxy.args) {
        ros_error_oom(ctx->err);
        return NULL;
    }
    for (int i = 0; i < call->nargs; i++)
        if (!(p->u.proxy.args[i] = rewrite_expr(x, call->args[i])))
            return NULL;
    p->u.proxy.strict = call->u.udf.strict;
    p->u.proxy.is_volatile = call->u.udf.is_volatile;
    p->u.proxy.decoupled = call->u.udf.decoupled;
    /* the guard may use earlier calls (CASE WHEN g(x) THEN f(x) ...); when it
     * uses one with no proxy below this one yet, every row is sent instead */
    if (x->guard[k]) {
        x->pending = false;
        plan_expr_walk(x->guard[k], guard_ready_walker, x);
        if (!x->pending && !(p->u.proxy.guard = rewrite_expr(x, x->guard[k])))
            return NULL;
    }

    /* settings: the function's annotation, then the service's, then defaults */
    const cat_options *fo = call->u.udf.options;
    ros_error ignore = {0};
    cat_service *sv = ctx->db ? cat_service_get(ctx->db, call->u.udf.service, &ignore) : NULL;
    const cat_options *so = sv ? &sv->options : NULL;
    /* a decoupled function's service may not exist yet: its annotation says */
    uint32_t instances = sv && sv->desired_instances > 0 ? (uint32_t)sv->desired_instances
                         : !sv && call->u.udf.decoupled ? opt_u32(fo, "instances", 1)
                                                        : 1;
    if (instances == 0)
        instances = 1;
    uint32_t batch = opt_u32(fo, "max_batch", opt_u32(so, "max_batch", 256));
    if (batch == 0)
        batch = 1;
    p->u.proxy.max_batch = batch;
    /* enough requests in flight to keep every instance's batcher busy: four
     * batches per ready instance, followed while the query runs (the service
     * may grow or shrink); a max_inflight option fixes the limit instead */
    uint64_t per = (uint64_t)batch * 4;
    if (per > UINT32_MAX / 64)
        per = UINT32_MAX / 64;
    uint64_t inflight = per * instances;
    p->u.proxy.inflight_per_instance = opt(fo, "max_inflight") ? 0 : (uint32_t)per;
    p->u.proxy.max_inflight = opt_u32(fo, "max_inflight", inflight > UINT32_MAX ? UINT32_MAX : (uint32_t)inflight);
    if (p->u.proxy.max_inflight < batch)
        p->u.proxy.max_inflight = batch;
    const char *ord = opt(fo, "ordered");
    p->u.proxy.ordered = !ord || strcmp(ord, "true") == 0;
    p->u.proxy.timeout_ms = opt_u32(fo, "timeout_ms", 30000);
    p->u.proxy.max_retries = opt_u32(fo, "max_retries", 3);
    /* requests are split to fit the frames the service accepts */
    const char *mf = opt(so, "max_frame_bytes");
    p->u.proxy.max_frame = mf ? strtoull(mf, NULL, 10) : 0;
    const char *oe = opt(fo, "on_error");
    p->u.proxy.on_error = !oe || strcmp(oe, "fail") == 0 ? PLAN_ON_ERROR_FAIL
                          : strcmp(oe, "null") == 0   ? PLAN_ON_ERROR_NULL
                                                      : PLAN_ON_ERROR_SKIP;
    p->u.proxy.op_id = (*x->next_op)++;
    if (sv)
        cat_service_free(sv);
    x->col[k] = top->ncols;
    return p;
}

/* True when proxy p computes call (same function, arguments over the same
 * columns, every row: no guard), so its column can be read instead. */
static bool same_call(const plan_node *p, const plan_expr *call)
{
    if (call->u.udf.is_volatile || p->u.proxy.guard || strcmp(p->u.proxy.function, call->u.udf.name) != 0 ||
        strcmp(p->u.proxy.service, call->u.udf.service) != 0 || p->u.proxy.nargs != call->nargs ||
        (p->u.proxy.method == NULL) != (call->u.udf.method == NULL) ||
        (p->u.proxy.method && strcmp(p->u.proxy.method, call->u.udf.method) != 0))
        return false;
    for (int i = 0; i < call->nargs; i++)
        if (!plan_expr_equal(p->u.proxy.args[i], call->args[i]))
            return false;
    return true;
}

/* The column of base that already holds call k (a proxy below a Filter that
 * passes its columns up, see expose_proxies), or -1. */
static int computed_below(extract *x, const plan_node *base, int k)
{
    for (const plan_node *n = base; n && (n->kind == PN_FILTER || n->kind == PN_PROXY); n = n->child)
        if (n->kind == PN_PROXY && n->ncols <= base->ncols && same_call(n, x->calls[k]))
            return n->ncols - 1;
    return -1;
}

/* A Filter whose condition called services, below a Project or Aggregate:
 * it passes its proxies' columns up too, so the operator above reads a call
 * it shares with the WHERE clause (SELECT f(x) ... WHERE f(x) > 0: one
 * remote call) instead of asking again. */
static plan_node *expose_proxies(rw_ctx *ctx, plan_node *child)
{
    if (!child || child->kind != PN_FILTER || !child->child || child->child->kind != PN_PROXY ||
        child->child->ncols <= child->ncols)
        return child;
    const plan_node *below = child->child;
    plan_node *c = plan_node_new(ctx->arena, PN_FILTER, child->child, below->ncols);
    if (!c) {
        ros_error_oom(ctx->err);
        return NULL;
    }
    memcpy(c->names, below->names, sizeof(char *) * below->ncols);
    memcpy(c->types, below->types, sizeof(ros_type) * below->ncols);
    c->est_rows = child->est_rows;
    c->u.filter = child->u.filter;
    return c;
}

/* Stacks the proxies of every call in slots[0..n) over base and rewrites the
 * slots; returns the new top (base when there is no call). */
static plan_node *extract_calls(rw_ctx *ctx, int *next_op, plan_node *base, plan_expr ***slots, int n)
{
    extract x;
    memset(&x, 0, sizeof x);
    x.ctx = ctx;
    x.next_op = next_op;
    for (int i = 0; i < n; i++)
        if (!collect(&x, *slots[i], NULL, 0))
            return NULL;
    if (x.ncalls == 0)
        return base;
    for (int k = 0; k < x.ncalls; k++)
        x.col[k] = -1;
    plan_node *top = base;
    for (int k = 0; k < x.ncalls; k++) {
        if ((x.col[k] = computed_below(&x, base, k)) >= 0)
            continue; /* the same call already computed for a WHERE below */
        if (!(top = make_proxy(&x, top, k)))
            return NULL;
    }
    for (int i = 0; i < n; i++)
        if (*slots[i] && !(*slots[i] = rewrite_expr(&x, *slots[i])))
            return NULL;
    return top;
}

static plan_node *copy_node(rw_ctx *ctx, const plan_node *p)
{
    plan_node *c = ros_arena_alloc(ctx->arena, sizeof *c);
    if (!c)
        ros_error_oom(ctx->err);
    else
        *c = *p;
    return c;
}

/* Splits a filter: conjuncts without calls below, the rest above proxies. */
static plan_node *rewrite_filter(rw_ctx *ctx, int *next_op, plan_node *f, plan_node *child)
{
    plan_expr *pred = f->u.filter.pred;
    plan_expr **conj = pred->kind == PE_AND ? pred->args : &pred;
    int n = pred->kind == PE_AND ? pred->nargs : 1;
    int ncheap = 0;
    for (int i = 0; i < n; i++)
        ncheap += !has_call(conj[i]);
    plan_node *below = child;
    plan_expr *rest = pred;
    if (ncheap > 0 && ncheap < n) {
        plan_expr *cheap = plan_expr_new(ctx->arena, PE_AND, ROS_TYPE_BOOL, ncheap);
        rest = plan_expr_new(ctx->arena, PE_AND, ROS_TYPE_BOOL, n - ncheap);
        below = copy_node(ctx, f);
        if (!cheap || !rest || !below) {
            ros_error_oom(ctx->err);
            return NULL;
        }
        for (int i = 0, a = 0, b = 0; i < n; i++) {
            if (has_call(conj[i]))
                rest->args[b++] = conj[i];
            else
                cheap->args[a++] = conj[i];
        }
        below->child = child;
        below->u.filter.pred = ncheap == 1 ? cheap->args[0] : cheap;
        if (n - ncheap == 1)
            rest = rest->args[0];
    }
    plan_node *out = copy_node(ctx, f);
    if (!out)
        return NULL;
    out->u.filter.pred = rest;
    plan_expr **slot = &out->u.filter.pred;
    plan_expr ***slots = &slot;
    if (!(out->child = extract_calls(ctx, next_op, below, slots, 1)))
        return NULL;
    return out;
}

static plan_node *rewrite_node(rw_ctx *ctx, int *next_op, plan_node *p, bool *changed)
{
    if (!p)
        return NULL;
    plan_node *child = p->child;
    if (child && !(child = rewrite_node(ctx, next_op, child, changed)))
        return NULL;
    switch (p->kind) {
    case PN_FILTER:
        if (has_call(p->u.filter.pred)) {
            *changed = true;
            return rewrite_filter(ctx, next_op, p, child);
        }
        break;
    case PN_PROJECT: {
        bool any = false;
        for (int i = 0; i < p->ncols && !any; i++)
            any = has_call(p->u.project.exprs[i]);
        if (!any)
            break;
        plan_node *c = copy_node(ctx, p);
        plan_expr **exprs = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, p->ncols + 1);
        plan_expr ***slots = ROS_ARENA_ARRAY(ctx->arena, plan_expr **, p->ncols + 1);
        if (!c || !exprs || !slots) {
            ros_error_oom(ctx->err);
            return NULL;
        }
        for (int i = 0; i < p->ncols; i++) {
            exprs[i] = p->u.project.exprs[i];
            slots[i] = &exprs[i];
        }
        c->u.project.exprs = exprs;
        if (!(child = expose_proxies(ctx, child)) || !(c->child = extract_calls(ctx, next_op, child, slots, p->ncols)))
            return NULL;
        *changed = true;
        return c;
    }
    case PN_AGG: {
        int ng = p->u.agg.ngroup, na = p->u.agg.naggs;
        bool any = false;
        for (int i = 0; i < ng && !any; i++)
            any = has_call(p->u.agg.group[i]);
        for (int a = 0; a < na && !any; a++)
            any = has_call(p->u.agg.aggs[a].arg) || has_call(p->u.agg.aggs[a].filter);
        if (!any)
            break;
        plan_node *c = copy_node(ctx, p);
        plan_expr **group = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, ng + 1);
        plan_aggcall *aggs = ROS_ARENA_ARRAY(ctx->arena, plan_aggcall, na + 1);
        plan_expr ***slots = ROS_ARENA_ARRAY(ctx->arena, plan_expr **, ng + 2 * na + 1);
        if (!c || !group || !aggs || !slots) {
            ros_error_oom(ctx->err);
            return NULL;
        }
        int n = 0;
        for (int i = 0; i < ng; i++) {
            group[i] = p->u.agg.group[i];
            slots[n++] = &group[i];
        }
        for (int a = 0; a < na; a++) {
            aggs[a] = p->u.agg.aggs[a];
            slots[n++] = &aggs[a].arg;
            slots[n++] = &aggs[a].filter;
        }
        c->u.agg.group = group;
        c->u.agg.aggs = aggs;
        if (!(child = expose_proxies(ctx, child)) || !(c->child = extract_calls(ctx, next_op, child, slots, n)))
            return NULL;
        *changed = true;
        return c;
    }
    case PN_VALUES:
        if (p->u.values.nrows == 1) {
            bool any = false;
            for (int i = 0; i < p->ncols && !any; i++)
                any = has_call(p->u.values.exprs[i]);
            if (!any)
                break;
            /* SELECT f(1): the row's expressions become a Project over one
             * empty-looking row, and the Project's calls get proxies */
            plan_node *one = plan_node_new(ctx->arena, PN_VALUES, NULL, 1);
            plan_expr **cell = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, 1);
            plan_node *proj = plan_node_new(ctx->arena, PN_PROJECT, one, p->ncols);
            if (!one || !cell || !proj || !(cell[0] = bool_const(ctx, true))) {
                ros_error_oom(ctx->err);
                return NULL;
            }
            one->names[0] = "?column?";
            one->types[0] = ROS_TYPE_BOOL;
            one->est_rows = 1;
            one->u.values.nrows = 1;
            one->u.values.exprs = cell;
            if (p->ncols) {
                memcpy(proj->names, p->names, sizeof(char *) * p->ncols);
                memcpy(proj->types, p->types, sizeof(ros_type) * p->ncols);
            }
            proj->est_rows = 1;
            proj->u.project.exprs = p->u.values.exprs;
            return rewrite_node(ctx, next_op, proj, changed);
        }
        for (int i = 0; i < p->u.values.nrows * p->ncols; i++)
            if (has_call(p->u.values.exprs[i])) {
                ros_error_set(ctx->err, ROS_ERR_NOT_SUPPORTED,
                              "a function that runs in a service cannot be called in a VALUES list");
                ros_error_hint(ctx->err, "Use INSERT ... SELECT f(...) instead of INSERT ... VALUES (f(...)).");
                return NULL;
            }
        break;
    default:
        break;
    }
    if (child == p->child)
        return p;
    plan_node *c = copy_node(ctx, p);
    if (c)
        c->child = child;
    return c;
}

plan_node *rw_rule_service_proxies(rw_ctx *ctx, plan_node *plan, bool *changed)
{
    int next_op = 1;
    return rewrite_node(ctx, &next_op, plan, changed);
}
