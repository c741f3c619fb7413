/*
 * rewriter.c
 *    The rule driver and the built-in rules.
 *
 * Step 1: remove identity projections (what SELECT * and INSERT of a
 *         matching column list leave behind), so no operator copies a batch
 *         it does not change.
 * Step 2: calls of functions annotated WITH (decoupled = true) are marked
 *         as computed by the function's own service (decouple.c), unless
 *         SET decoupling = off.
 * Step 3: calls of functions computed by services become Proxy nodes
 *         (proxies.c).
 */
#include "rewriter/rewriter.h"

#include <string.h>

static const rw_rule rules[] = {
    {"identity_project", rw_rule_identity_project},
    {"decouple", rw_rule_decouple},
    {"service_proxies", rw_rule_service_proxies},
    {NULL, NULL},
};

const rw_rule *rw_rules(void)
{
    return rules;
}

plan_node *rw_rewrite(rw_ctx *ctx, plan_node *plan)
{
    for (const rw_rule *r = rules; r->name; r++) {
        bool changed = false;
        plan = r->fn(ctx, plan, &changed);
        if (!plan)
            return NULL;
    }
    return plan;
}

/* True when p outputs exactly its child's columns, in order, same types. */
static bool is_identity(const plan_node *p)
{
    if (p->kind != PN_PROJECT || !p->child || p->ncols != p->child->ncols)
        return false;
    for (int i = 0; i < p->ncols; i++) {
        const plan_expr *e = p->u.project.exprs[i];
        if (e->kind != PE_COLUMN || e->u.column != i || e->type != p->child->types[i])
            return false;
    }
    return true;
}

/* Copy-on-write recursion: returns p, or a copy of p whose subtree changed. */
static plan_node *drop_identity_below(rw_ctx *ctx, plan_node *p, bool *changed)
{
    if (!p || !p->child)
        return p;
    plan_node *child = drop_identity_below(ctx, p->child, changed);
    if (!child)
        return NULL;
    while (is_identity(child))
        child = child->child;
    if (child == p->child)
        return p;
    plan_node *c = ros_arena_alloc(ctx->arena, sizeof *c);
    if (!c) {
        ros_error_oom(ctx->err);
        return NULL;
    }
    *c = *p;
    c->child = child;
    *changed = true;
    return c;
}

plan_node *rw_rule_identity_project(rw_ctx *ctx, plan_node *plan, bool *changed)
{
    plan_node *p = drop_identity_below(ctx, plan, changed);
    /* the root's names are the result's column names: drop it only if they match */
    while (p && is_identity(p)) {
        bool same_names = true;
        for (int i = 0; i < p->ncols && same_names; i++)
            same_names = p->names[i] && p->child->names[i] && strcmp(p->names[i], p->child->names[i]) == 0;
        if (!same_names)
            break;
        p = p->child;
        *changed = true;
    }
    return p;
}
