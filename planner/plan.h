/*
 * plan.h
 *    Bound expressions and plan trees: what the planner builds from the AST,
 *    the rewriter transforms, and runtime/exec executes.
 *
 * Expressions are bound: every column reference is an index into the input
 * batch of the operator that evaluates it, every node has its result type,
 * and implicit casts are explicit PE_CAST nodes.  Plan nodes carry their
 * output schema (names and types).  Both live in the statement's arena.
 *
 * Recursion goes through plan_expr_walk / plan_expr_mutate (one walker and
 * one copying mutator for every pass): a pass handles the kinds it cares
 * about and hands the rest on.
 */
#ifndef PLAN_PLAN_H
#define PLAN_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include <rosql/vector.h>

#include "catalog/catalog.h"
#include "runtime/core/arena.h"
#include "runtime/core/error.h"
#include "runtime/core/strbuf.h"

/* ------------------------------------------------------------------ */
/* Expressions */

typedef enum plan_expr_kind {
    PE_CONST,     /* u.cnst */
    PE_COLUMN,    /* u.column: index into the input batch */
    PE_OP,        /* u.op: operator on args[0..1] (one arg for NEG/NOT-like ops) */
    PE_FUNC,      /* u.func: built-in scalar function on args */
    PE_UDF,       /* u.udf: user C function on args */
    PE_CAST,      /* args[0] converted to type */
    PE_AND,       /* args, three-valued */
    PE_OR,
    PE_NOT,       /* args[0] */
    PE_ISNULL,    /* args[0] IS [NOT] NULL: u.flag = is_not */
    PE_BOOLTEST,  /* args[0] IS [NOT] TRUE/FALSE/UNKNOWN: u.test (sql_booltest_kind) */
    PE_CASE,      /* args = cond1, res1, cond2, res2, ..., [else]; u.flag = has_else */
    PE_COALESCE,  /* args */
    PE_NULLIF,    /* args[0], args[1] */
    PE_MINMAX,    /* args; u.flag = greatest */
    PE_IN,        /* args[0] IN (args[1..]); u.flag = NOT IN */
    PE_LIKE,      /* args[0] LIKE args[1] [ESCAPE args[2]]; u.like */
    PE_ARRAY,     /* ARRAY[args] of real */
    PE_SUBSCRIPT, /* args[0][args[1]] */
    PE_AGG,       /* aggregate call, only before aggregation planning: u.agg */
} plan_expr_kind;

typedef enum plan_op {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_NEG,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
    OP_CONCAT,
} plan_op;

typedef enum plan_func {
    FN_LENGTH, FN_LOWER, FN_UPPER, FN_SUBSTR, FN_BTRIM, FN_LTRIM, FN_RTRIM,
    FN_REPLACE, FN_POSITION, FN_CONCAT, FN_ABS, FN_FLOOR, FN_CEIL, FN_ROUND,
    FN_SQRT, FN_POWER, FN_MOD, FN_LEFT, FN_RIGHT, FN_REVERSE, FN_REPEAT,
    FN_STARTS_WITH, FN_SIGN, FN_TRUNC, FN_EXP, FN_LN, FN_ARRAY_LENGTH,
    FN__COUNT
} plan_func;

typedef enum plan_agg_kind {
    AGG_COUNT_STAR, AGG_COUNT, AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX,
} plan_agg_kind;

typedef struct plan_udf plan_udf; /* a loaded C function (runtime/exec/udf.h) */

typedef struct plan_expr plan_expr;

struct plan_expr {
    plan_expr_kind kind;
    ros_type type;          /* result type */
    int location;           /* byte offset in the statement, -1 unknown */
    bool unknown;           /* an untyped string literal ('...'), typed by context */
    int nargs;
    plan_expr **args;
    union {
        struct {
            bool is_null;
            int64_t i;      /* bool, ints */
            double f;       /* floats */
            const uint8_t *bytes; /* text, bytea, real[] */
            uint32_t len;
        } cnst;
        int column;
        plan_op op;
        plan_func func;
        struct {
            plan_udf *fn;          /* loaded function (LANGUAGE c), else NULL */
            const char *name;
            bool strict;
            bool is_volatile;
            const char *service;   /* runs in this service (a function bound with
                                      SERVICE name), else NULL: the rewriter turns
                                      such a call into a Proxy node */
            const char *method;    /* METHOD 'm' or NULL */
            const cat_options *options; /* the function's WITH (...) annotation */
            bool decoupled;        /* annotated WITH (decoupled = true): the
                                      rewriter's rule `decouple` gives it its
                                      own service (named after the function)
                                      unless SET decoupling = off */
        } udf;
        bool flag;
        int test;
        struct {
            bool ilike;
            bool is_not;
        } like;
        struct {
            plan_agg_kind kind;
            bool distinct;
            plan_expr *filter;     /* or NULL */
            const char *name;      /* as written */
        } agg;
    } u;
};

/* Allocation helpers (arena); return NULL on OOM. */
plan_expr *plan_expr_new(ros_arena *a, plan_expr_kind kind, ros_type type, int nargs);
plan_expr *plan_expr_column(ros_arena *a, int column, ros_type type);
/* A copy of o in arena a (never NULL-valued entries); NULL on OOM. */
const cat_options *plan_options_dup(ros_arena *a, const cat_options *o);

/* Calls fn on every node, parents first; stops and returns true when fn
 * returns true. */
typedef bool (*plan_expr_walker)(plan_expr *e, void *arg);
bool plan_expr_walk(plan_expr *e, plan_expr_walker fn, void *arg);

/*
 * Copying mutator: fn is offered each node first; if it returns non-NULL that
 * replaces the node (and is not descended into); if it returns NULL the node
 * is copied with its children mutated.  *failed is set on OOM or when fn
 * reports failure through it.
 */
typedef plan_expr *(*plan_expr_mutator)(plan_expr *e, void *arg, bool *failed);
plan_expr *plan_expr_mutate(ros_arena *a, plan_expr *e, plan_expr_mutator fn, void *arg, bool *failed);

/* Structural equality (used to match GROUP BY keys and repeated calls). */
bool plan_expr_equal(const plan_expr *a, const plan_expr *b);

/* Appends a readable SQL-ish rendering (EXPLAIN); names[i] names input
 * column i (may be NULL: "$i"). */
void plan_expr_deparse(const plan_expr *e, const char *const *names, ros_strbuf *out);

const char *plan_op_name(plan_op op);
const char *plan_func_name(plan_func f);
const char *plan_agg_name(plan_agg_kind k);

/* ------------------------------------------------------------------ */
/* Plan nodes */

typedef enum plan_kind {
    PN_SCAN,     /* read a table through its connector */
    PN_VALUES,   /* literal rows (VALUES, or SELECT without FROM) */
    PN_FILTER,   /* keep rows where pred is true */
    PN_PROJECT,  /* compute exprs */
    PN_AGG,      /* hash aggregation: group keys then aggregates */
    PN_SORT,     /* full sort on key columns */
    PN_LIMIT,    /* offset, limit */
    PN_DISTINCT, /* remove duplicate rows */
    PN_INSERT,   /* write child's rows into a table; outputs nothing */
    PN_PROXY,    /* child's columns plus one: a function computed by a service */
} plan_kind;

/* How a proxy treats a row its function fails on (on_error). */
typedef enum plan_on_error { PLAN_ON_ERROR_FAIL, PLAN_ON_ERROR_NULL, PLAN_ON_ERROR_SKIP } plan_on_error;

typedef struct plan_aggcall {
    plan_agg_kind kind;
    plan_expr *arg;         /* over the child's columns; NULL for count(*) */
    plan_expr *filter;      /* FILTER (WHERE ...) or NULL */
    bool distinct;
    ros_type type;          /* result type */
} plan_aggcall;

typedef struct plan_node plan_node;

struct plan_node {
    plan_kind kind;
    plan_node *child;       /* input (NULL for SCAN, VALUES) */
    int ncols;              /* output columns */
    const char **names;     /* output column names */
    ros_type *types;        /* output column types */
    double est_rows;        /* estimate for EXPLAIN, -1 unknown */
    union {
        struct {
            cat_table *table;   /* owned by the plan (freed by plan_free) */
            int nproj;
            int *proj;          /* table column of each output column */
        } scan;
        struct {
            int nrows;
            plan_expr **exprs;  /* nrows * ncols, row-major, no column refs */
        } values;
        struct {
            plan_expr *pred;
        } filter;
        struct {
            plan_expr **exprs;  /* ncols */
        } project;
        struct {
            int ngroup;
            plan_expr **group;  /* over the child's columns */
            int naggs;
            plan_aggcall *aggs;
        } agg;
        struct {
            int nkeys;
            int *keys;          /* child column indexes */
            bool *desc;
            bool *nulls_first;
        } sort;
        struct {
            int64_t limit;      /* -1: none */
            int64_t offset;     /* 0: none */
        } limit;
        struct {
            cat_table *table;   /* owned by the plan */
        } insert;
        struct {
            const char *function;   /* SQL name, for messages */
            const char *service;    /* service called */
            const char *method;     /* or NULL */
            int nargs;
            plan_expr **args;       /* over the child's columns */
            bool strict;            /* NULL argument: NULL result, not sent */
            bool is_volatile;       /* never answered from a result cache */
            bool ordered;           /* emit in input order (else completion order) */
            uint32_t max_batch;     /* rows per request */
            uint32_t max_inflight;  /* rows outstanding (at plan time) */
            uint32_t inflight_per_instance; /* rows outstanding per ready instance of
                                       the service: the limit follows the service's
                                       size while it runs; 0 = max_inflight is fixed
                                       (the function's max_inflight option) */
            uint32_t timeout_ms;    /* per request, retries included */
            uint32_t max_retries;
            uint64_t max_frame;     /* the service's max_frame_bytes, 0 = default */
            plan_on_error on_error;
            int op_id;              /* operator number within the plan (request ids) */
            bool decoupled;         /* the function's own service (rule decouple),
                                       created on first use */
            plan_expr *guard;       /* or NULL: only rows where it is true are sent
                                       (a call under CASE/COALESCE); the others
                                       get NULL, which nothing reads */
        } proxy;
    } u;
};

plan_node *plan_node_new(ros_arena *a, plan_kind kind, plan_node *child, int ncols);
/* Frees what the plan owns outside its arena (catalog objects). */
void plan_free(plan_node *p);
/* EXPLAIN text, one line per node, PostgreSQL's indentation. */
void plan_explain(const plan_node *p, ros_strbuf *out);

#endif /* PLAN_PLAN_H */
