/*
 * exec.h
 *    The executor: compiled expressions and pull-based batch operators.
 *
 * A plan (planner/plan.h) is turned into a tree of rt_op, each of which
 * returns one ros_batch at a time from next().  Expressions are compiled
 * into rt_expr trees that own their scratch vectors, so evaluating a batch
 * allocates nothing once buffers have grown.  Constant subtrees are
 * evaluated once at compile time.
 *
 * Conditional expressions (CASE, COALESCE, AND, OR) evaluate their later
 * arguments only on the rows that still need them, so
 * `CASE WHEN x = 0 THEN 0 ELSE 1 / x END` never divides by zero and an
 * expensive function call inside a CASE branch sees only its rows.
 */
#ifndef RT_EXEC_H
#define RT_EXEC_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <rosql/vector.h>

#include "catalog/catalog.h"
#include "planner/plan.h"
#include "runtime/core/error.h"

#define RT_BATCH_SIZE 1024

typedef struct rt_exec_ctx {
    cat_db *db;                       /* catalog */
    volatile sig_atomic_t *cancel;    /* set asynchronously to cancel */
    uint32_t batch_size;              /* rows per batch */
    int64_t deadline_ns;              /* CLOCK_MONOTONIC time at which the statement
                                         times out (statement_timeout), 0 = never */
    int64_t rows_written;             /* INSERT: rows written */
    int64_t rows_read;                /* rows read from sources */
    bool unbounded;                   /* a source of the plan is unbounded */
    uint64_t job_id;                  /* a job's id (request ids), 0: an ad-hoc statement */
    uint32_t attempt;                 /* the job's attempt (restarts) */
    /* a message for the client that is not an error (NOTICE), or NULL */
    void (*notice)(void *arg, const char *msg);
    void *notice_arg;
} rt_exec_ctx;

/* ---------------------------------------------------------------- */
/* Expressions */

typedef struct rt_expr rt_expr;

/* Compiles e.  Returns NULL with err set (e.g. a constant subexpression
 * that fails to evaluate, such as 1/0). */
rt_expr *rt_expr_compile(rt_exec_ctx *ctx, const plan_expr *e, ros_error *err);

/* Evaluates x over in (in->nrows rows).  Returns a vector of in->nrows rows
 * owned by x or by in, valid until the next evaluation; NULL with err set on
 * error. */
const ros_vector *rt_expr_eval(rt_expr *x, const ros_batch *in, ros_error *err);

void rt_expr_free(rt_expr *x);

/* ---------------------------------------------------------------- */
/* Operators */

typedef struct rt_op rt_op;

/* Builds the operator tree for plan p.  NULL with err set on failure. */
rt_op *rt_op_build(rt_exec_ctx *ctx, const plan_node *p, ros_error *err);

/* Next batch: 1 with *out set (valid until the next call), 0 at the end,
 * 2 when an unbounded input has nothing right now (the operator already
 * waited a little: call again; a job checkpoints meanwhile), -1 with err
 * set. */
int rt_op_next(rt_op *op, ros_batch **out, ros_error *err);

void rt_op_free(rt_op *op);

/* 23502 when a NOT NULL column of t has a NULL in b (table columns). */
int rt_check_not_null(const cat_table *t, const ros_batch *b, ros_error *err);

/* ---------------------------------------------------------------- */
/* Checkpoints (job.c drives them) */

struct rt_wbuf;
struct rt_rbuf;

/* True when a job running p can take checkpoints while it runs; else *why
 * says what holds state that is not checkpointed (aggregation, sorting,
 * DISTINCT): such a job commits its rows once, at its end. */
bool rt_plan_checkpointable(const plan_node *p, const char **why);

/* Writes the state of op and the operators below it (source offsets, the
 * proxies' requests and results, LIMIT counters).  Taken between two
 * rt_op_next calls of the root, when no batch is half consumed. */
int rt_op_snapshot(rt_op *op, struct rt_wbuf *w, ros_error *err);

/* Puts a freshly built op tree back into the state rt_op_snapshot wrote. */
int rt_op_restore(rt_op *op, struct rt_rbuf *r, ros_error *err);

typedef struct rt_proxy_stats {
    int64_t inflight;    /* requests outstanding (not answered) */
    int64_t answered;    /* requests answered whose rows are not emitted yet */
    int64_t recomputed;  /* requests restored from a checkpoint that a service computed again */
    int64_t reused;      /* requests restored or replayed answered from a service's cache */
} rt_proxy_stats;

/* Sums the proxies of op's chain. */
void rt_op_proxy_stats(rt_op *op, rt_proxy_stats *st);

/* ---------------------------------------------------------------- */
/* Batch and vector utilities (vecutil.c) */

/* Initialises b with ncols empty columns of the given types; -1 on OOM. */
int rt_batch_init(ros_batch *b, int ncols, const ros_type *types);
/* Frees the columns and the column array. */
void rt_batch_free(ros_batch *b);
/* Empties every column, keeping buffers. */
void rt_batch_reset(ros_batch *b);

/* Appends row i of src to dst (same type); -1 on OOM. */
int rt_vector_append_row(ros_vector *dst, const ros_vector *src, uint32_t i);
/* dst = src[sel[0..n)] (dst emptied first); -1 on OOM. */
int rt_vector_gather(ros_vector *dst, const ros_vector *src, const uint32_t *sel, uint32_t n);
/* Makes dst a deep copy of src; -1 on OOM. */
int rt_vector_copy(ros_vector *dst, const ros_vector *src);

/* Three-way comparison of two non-NULL values of the same type (PostgreSQL
 * order: text bytewise, NaN greater than every other float). */
int rt_value_cmp(const ros_vector *a, uint32_t i, const ros_vector *b, uint32_t j);

/* Appends a type-tagged binary encoding of row i (NULL-aware) to buf:
 * equal values give equal bytes (used for hashing group keys). */
int rt_key_encode(const ros_vector *v, uint32_t i, ros_strbuf *buf);

uint64_t rt_hash_bytes(const void *p, size_t n);

/* ---------------------------------------------------------------- */
/* Casts (cast.c) */

/* Converts every row of src into dst (already initialised with the target
 * type, emptied first).  Errors as PostgreSQL's: `invalid input syntax for
 * type integer: "abc"`, `integer out of range`. */
int rt_cast_vector(const ros_vector *src, ros_vector *dst, ros_error *err);


#endif /* RT_EXEC_H */
