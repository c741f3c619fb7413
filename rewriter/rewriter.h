/*
 * rewriter.h
 *    Plan-rewrite rules.
 *
 * The rewriter runs a fixed list of named rules over a planned tree, in
 * order.  Each rule is small, testable alone, and copies what it changes
 * instead of scribbling on its input.  EXPLAIN shows the rewritten plan;
 * EXPLAIN (REWRITE off) the plan before rewriting.
 *
 * Rules: identity_project, decouple (a call of a function annotated WITH
 * (decoupled = true) is computed by the function's own service), and
 * service_proxies (every call computed by a service becomes a Proxy node).
 */
#ifndef RW_REWRITER_H
#define RW_REWRITER_H

#include <stdbool.h>

#include "planner/plan.h"

typedef struct rw_ctx {
    ros_arena *arena;   /* statement arena for new nodes */
    cat_db *db;         /* catalog */
    ros_error *err;     /* where errors go */
    bool decoupling;    /* SET decoupling: rewrite annotated functions */
} rw_ctx;

/* A rule returns the (possibly new) tree, sets *changed when it changed
 * anything, and returns NULL with ctx->err set on failure. */
typedef plan_node *(*rw_rule_fn)(rw_ctx *ctx, plan_node *plan, bool *changed);

typedef struct rw_rule {
    const char *name;
    rw_rule_fn fn;
} rw_rule;

/* The rules, in the order they run; NULL-terminated by name. */
const rw_rule *rw_rules(void);

/* Applies every rule once, in order.  Returns the rewritten plan or NULL
 * with ctx->err set. */
plan_node *rw_rewrite(rw_ctx *ctx, plan_node *plan);

/* Rule: removes a Project that returns its input's columns unchanged. */
plan_node *rw_rule_identity_project(rw_ctx *ctx, plan_node *plan, bool *changed);

/* Rule (decouple.c): marks calls of decoupled functions as computed by the
 * service named after the function (when ctx->decoupling). */
plan_node *rw_rule_decouple(rw_ctx *ctx, plan_node *plan, bool *changed);

/* Rule (proxies.c): each call of a function computed by a service becomes a
 * Proxy node below the operator that uses it (see proxies.c). */
plan_node *rw_rule_service_proxies(rw_ctx *ctx, plan_node *plan, bool *changed);

/* True when call e is computed by a service (and so by a proxy). */
bool rw_call_is_proxied(const plan_expr *e);

#endif /* RW_REWRITER_H */
