/*
 * decouple.c
 *    Rule decouple: a call of a function annotated WITH (decoupled = true)
 *    is computed by the function's own service, named after the function.
 *
 * The rule only marks the call (service = the function's name, decoupled);
 * the next rule, service_proxies, turns every call that has a service into
 * a Proxy node, exactly as for a function bound with SERVICE name, so the
 * placement rules (select list, WHERE split, GROUP BY, aggregates, nested
 * calls, CASE guards) are one piece of code for both.  The service itself
 * is created on first use by the runtime (runtime/exec/services.c), not
 * here: rewriting has no side effect, so EXPLAIN creates nothing.
 *
 * With SET decoupling = off the rule does nothing and the planner has
 * loaded the function into the data plane: the same C code runs in-process.
 */
#include <string.h>

#include "rewriter/rewriter.h"

static bool is_unmarked(const plan_expr *e)
{
    return e->kind == PE_UDF && e->u.udf.decoupled && !e->u.udf.service;
}

static bool find_walker(plan_expr *e, void *arg) { return is_unmarked(e); }

static plan_expr *mark(plan_expr *e, void *arg, bool *failed)
{
    if (!is_unmarked(e))
        return NULL;
    rw_ctx *ctx = arg;
    /* copy the call with its arguments marked too (f(g(x)), both decoupled) */
    plan_expr *c = plan_expr_new(ctx->arena, PE_UDF, e->type, e->nargs);
    if (!c) {
        *failed = true;
        return NULL;
    }
    int nargs = c->nargs;
    plan_expr **args = c->args;
    *c = *e;
    c->nargs = nargs;
    c->args = args;
    for (int i = 0; i < e->nargs; i++)
        if (!(c->args[i] = plan_expr_mutate(ctx->arena, e->args[i], mark, ctx, failed)))
            return NULL;
    c->u.udf.service = e->u.udf.name;
    c->u.udf.method = NULL;
    return c;
}

/* Marks the calls in *slot; false on OOM. */
static bool mark_slot(rw_ctx *ctx, plan_expr **slot, bool *changed)
{
    if (!*slot || !plan_expr_walk(*slot, find_walker, NULL))
        return true;
    bool failed = false;
    plan_expr *r = plan_expr_mutate(ctx->arena, *slot, mark, ctx, &failed);
    if (failed || !r) {
        ros_error_oom(ctx->err);
        return false;
    }
    *slot = r;
    *changed = true;
    return true;
}

/* Copies the expression arrays of p that hold a decoupled call and marks
 * them; returns p, a changed copy of p, or NULL with ctx->err set. */
static plan_node *mark_node(rw_ctx *ctx, plan_node *p)
{
    plan_expr **exprs = NULL;
    int n = 0;
    switch (p->kind) {
    case PN_FILTER: exprs = &p->u.filter.pred; n = 1; break;
    case PN_PROJECT: exprs = p->u.project.exprs; n = p->ncols; break;
    case PN_VALUES: exprs = p->u.values.exprs; n = p->u.values.nrows * p->ncols; break;
    case PN_AGG: exprs = p->u.agg.group; n = p->u.agg.ngroup; break;
    case PN_PROXY: exprs = p->u.proxy.args; n = p->u.proxy.nargs; break;
    default: break;
    }
    bool any = false;
    for (int i = 0; i < n && !any; i++)
        any = exprs[i] && plan_expr_walk(exprs[i], find_walker, NULL);
    for (int a = 0; p->kind == PN_AGG && a < p->u.agg.naggs && !any; a++)
        any = (p->u.agg.aggs[a].arg && plan_expr_walk(p->u.agg.aggs[a].arg, find_walker, NULL)) ||
              (p->u.agg.aggs[a].filter && plan_expr_walk(p->u.agg.aggs[a].filter, find_walker, NULL));
    if (!any)
        return p;
    plan_node *c = ros_arena_alloc(ctx->arena, sizeof *c);
    plan_expr **copy = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, n + 1);
    if (!c || !copy) {
        ros_error_oom(ctx->err);
        return NULL;
    }
    *c = *p;
    bool changed = false;
    if (n)
        memcpy(copy, exprs, sizeof(plan_expr *) * (size_t)n);
    for (int i = 0; i < n; i++)
        if (!mark_slot(ctx, &copy[i], &changed))
            return NULL;
    switch (p->kind) {
    case PN_FILTER: c->u.filter.pred = copy[0]; break;
    case PN_PROJECT: c->u.project.exprs = copy; break;
    case PN_VALUES: c->u.values.exprs = copy; break;
    case PN_AGG: c->u.agg.group = copy; break;
    case PN_PROXY: c->u.proxy.args = copy; break;
    default: break;
    }
    if (p->kind == PN_AGG) {
        int na = p->u.agg.naggs;
        plan_aggcall *aggs = ROS_ARENA_ARRAY(ctx->arena, plan_aggcall, na + 1);
        if (!aggs) {
            ros_error_oom(ctx->err);
            return NULL;
        }
        for (int a = 0; a < na; a++) {
            aggs[a] = p->u.agg.aggs[a];
            if (!mark_slot(ctx, &aggs[a].arg, &changed) || !mark_slot(ctx, &aggs[a].filter, &changed))
                return NULL;
        }
        c->u.agg.aggs = aggs;
    }
    return c;
}

static plan_node *rewrite(rw_ctx *ctx, plan_node *p, bool *changed)
{
    if (!p)
        return NULL;
    plan_node *child = p->child ? rewrite(ctx, p->child, changed) : NULL;
    if (p->child && !child)
        return NULL;
    plan_node *c = mark_node(ctx, p);
    if (!c)
        return NULL;
    if (c == p && child == p->child)
        return p;
    if (c == p) {
        if (!(c = ros_arena_alloc(ctx->arena, sizeof *c))) {
            ros_error_oom(ctx->err);
            return NULL;
        }
        *c = *p;
    }
    c->child = child;
    *changed = true;
    return c;
}

plan_node *rw_rule_decouple(rw_ctx *ctx, plan_node *plan, bool *changed)
{
    if (!ctx->decoupling)
        return plan;
    return rewrite(ctx, plan, changed);
}
