/*
 * planner.h
 *    Binding the AST against the catalog and building plans.
 *
 * plan_select() turns a SELECT (or VALUES) into a plan tree whose root
 * outputs the query's columns; plan_insert() wraps a source plan into an
 * INSERT.  Names are resolved against the catalog, types checked and
 * implicit casts made explicit, with PostgreSQL's messages and positions on
 * failure (`relation "x" does not exist`, `column "y" does not exist`).
 */
#ifndef PLAN_PLANNER_H
#define PLAN_PLANNER_H

#include "planner/plan.h"
#include "sql/ast.h"

/* The columns visible to a bound expression. */
typedef struct plan_scope {
    int ncols;
    const char **names;
    ros_type *types;
    const char *qualifier;  /* table name or alias that qualifies them, or NULL */
    const char *relname;    /* the table's own name (for messages), or NULL */
} plan_scope;

/* Loads a C function for a call (runtime/exec provides this, so the
 * planner does not depend on the executor). Returns NULL with err set. */
typedef plan_udf *(*plan_udf_loader)(void *arg, const cat_function *f, ros_error *err);

typedef struct plan_ctx {
    ros_arena *arena;        /* statement arena */
    cat_db *db;              /* catalog */
    ros_error *err;          /* where errors go */
    const char *sql;         /* statement text, for positions */
    plan_udf_loader load_udf;
    void *udf_arg;
    bool decoupling;         /* SET decoupling: decoupled functions are not loaded
                                here, they run in their own services */
    /* binding state */
    bool in_agg_arg;         /* binding an aggregate's argument */
    bool aggs_allowed;       /* aggregates allowed here (select list, HAVING, ORDER BY) */
    const char *agg_context; /* clause name for "aggregate functions are not allowed in WHERE" */
    int depth;               /* expression nesting, guarded */
} plan_ctx;

/* Records an error at a byte location of ctx->sql; returns NULL. */
void *plan_error(plan_ctx *ctx, int location, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Binds an expression over scope (scope may be NULL: no columns). */
plan_expr *plan_bind_expr(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e);

/*
 * Converts e to type t: an unknown literal becomes a typed literal cast,
 * other types get a PE_CAST when the conversion is allowed (implicitly, or
 * explicit when is_explicit).  Returns NULL with an error naming both types
 * (`column "a" is of type integer but expression is of type text`-style
 * messages come from callers; this one says `cannot cast type x to y`).
 */
plan_expr *plan_coerce(plan_ctx *ctx, plan_expr *e, ros_type t, bool is_explicit);

/* Coerces a boolean condition (WHERE, HAVING, AND args...). */
plan_expr *plan_coerce_bool(plan_ctx *ctx, plan_expr *e, const char *clause);

/* True when e contains an aggregate call. */
bool plan_has_agg(plan_expr *e);

/* Plans a SELECT/VALUES query.  Returns NULL with ctx->err set. */
plan_node *plan_select(plan_ctx *ctx, const sql_select *sel);

/* Plans INSERT INTO table [(cols)] source. */
plan_node *plan_insert(plan_ctx *ctx, const char *table, int table_location,
                       const sql_list *columns, const sql_select *source);

/* Plans the INSERT that fills a table created by CREATE TABLE AS. */
plan_node *plan_insert_into(plan_ctx *ctx, cat_table *table, plan_node *source);

#endif /* PLAN_PLANNER_H */
