/*
 * select.c
 *    Planning SELECT, VALUES and INSERT.
 *
 * A query becomes, bottom up:
 *     Scan | Values -> Filter (WHERE) -> Aggregate (GROUP BY / aggregates)
 *     -> Filter (HAVING) -> Project (targets + hidden sort keys)
 *     -> Distinct -> Sort -> Limit -> Project (drop hidden keys)
 * Every expression is first bound against the table's full column list;
 * then the scan is pruned to the columns actually used, and expressions
 * above the aggregate are rewritten to refer to its output.
 */
#include "planner/planner.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/connectors/connector.h"
#include "runtime/core/types.h"

typedef struct select_state {
    plan_ctx *ctx;
    const sql_select *sel;
    plan_scope scope;           /* input columns (table or none) */
    cat_table *table;           /* FROM table, or NULL */
    int ntargets;
    plan_expr **targets;        /* bound over the input, later over agg output */
    const char **names;         /* output names */
    plan_expr *where;
    int ngroup;
    plan_expr **group;
    plan_expr *having;
    int norder;
    plan_expr **order;          /* bound sort expressions */
    bool *desc, *nulls_first;
    /* aggregation */
    int naggs, aggcap;
    plan_expr **aggs;           /* distinct PE_AGG nodes */
} select_state;

static void *oom(plan_ctx *ctx)
{
    ros_error_oom(ctx->err);
    return NULL;
}

/* ---------------------------------------------------------------- */
/* Names */

/* The last part of the name PostgreSQL's grammar gives a type: what a cast
 * contributes to an output column name (integer is int4, real[] float4). */
static const char *cast_type_name(const sql_typename *tn)
{
    switch (tn->type) {
    case ROS_TYPE_BOOL: return "bool";
    case ROS_TYPE_INT16: return "int2";
    case ROS_TYPE_INT32: return "int4";
    case ROS_TYPE_INT64: return "int8";
    case ROS_TYPE_FLOAT32: return "float4";
    case ROS_TYPE_FLOAT64: return "float8";
    case ROS_TYPE_FLOAT32_ARRAY: return "float4";
    case ROS_TYPE_TEXT: return "text";
    case ROS_TYPE_BYTEA: return "bytea";
    default: return tn->name ? tn->name : "?column?";
    }
}

/*
 * PostgreSQL's name for an unaliased target (FigureColnameInternal): sets
 * *name and returns its strength, 2 for a column or function name, 1 for a
 * cast's type name or "case", 0 for "?column?".  A cast or CASE keeps a
 * stronger name from inside (the argument, the ELSE result).
 */
static int derive_name_strength(const sql_expr *e, const char **name)
{
    int strength;
    switch (e->kind) {
    case SQL_E_COLUMN: *name = e->u.column.name; return 2;
    case SQL_E_FUNC: *name = e->u.func.name; return 2;
    case SQL_E_CAST:
        strength = derive_name_strength(e->u.cast.arg, name);
        if (strength <= 1) {
            *name = cast_type_name(&e->u.cast.type);
            return 1;
        }
        return strength;
    case SQL_E_CASE:
        strength = e->u.case_.else_ ? derive_name_strength(e->u.case_.else_, name) : 0;
        if (strength <= 1) {
            *name = "case";
            return 1;
        }
        return strength;
    case SQL_E_COALESCE: *name = "coalesce"; return 2;
    case SQL_E_NULLIF: *name = "nullif"; return 2;
    case SQL_E_MINMAX: *name = e->u.minmax.greatest ? "greatest" : "least"; return 2;
    case SQL_E_ARRAY: *name = "array"; return 2;
    case SQL_E_SUBSCRIPT: return derive_name_strength(e->u.subscript.arg, name);
    default: return 0;
    }
}

static const char *derive_name(const sql_expr *e)
{
    const char *name = "?column?";
    if (derive_name_strength(e, &name) == 0)
        return "?column?";
    return name;
}

/* ---------------------------------------------------------------- */
/* FROM and targets */

static bool bind_from(select_state *st)
{
    plan_ctx *ctx = st->ctx;
    const sql_select *sel = st->sel;
    if (sel->from.n == 0)
        return true;
    if (sel->from.n > 1) {
        const sql_from *f = sel->from.items[1];
        plan_error(ctx, f->location, ROS_ERR_NOT_SUPPORTED, "queries over more than one table are not supported");
        return false;
    }
    const sql_from *f = sel->from.items[0];
    st->table = cat_table_get(ctx->db, f->table, ctx->err);
    if (!st->table) {
        if (!ctx->err->set)
            plan_error(ctx, f->location, ROS_ERR_UNDEFINED_TABLE, "relation \"%s\" does not exist", f->table);
        return false;
    }
    cat_table *t = st->table;
    st->scope.ncols = t->ncols;
    st->scope.names = ROS_ARENA_ARRAY(ctx->arena, const char *, t->ncols + 1);
    st->scope.types = ROS_ARENA_ARRAY(ctx->arena, ros_type, t->ncols + 1);
    if (!st->scope.names || !st->scope.types)
        return oom(ctx);
    for (int i = 0; i < t->ncols; i++) {
        st->scope.names[i] = ros_arena_strdup(ctx->arena, t->cols[i].name);
        st->scope.types[i] = t->cols[i].type;
    }
    st->scope.qualifier = f->alias ? f->alias : f->table;
    st->scope.relname = f->table;
    return true;
}

static bool add_target(select_state *st, int *cap, plan_expr *e, const char *name)
{
    if (st->ntargets == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        plan_expr **nt = ROS_ARENA_ARRAY(st->ctx->arena, plan_expr *, ncap);
        const char **nn = ROS_ARENA_ARRAY(st->ctx->arena, const char *, ncap);
        if (!nt || !nn)
            return oom(st->ctx);
        if (st->ntargets) {
            memcpy(nt, st->targets, sizeof(plan_expr *) * st->ntargets);
            memcpy(nn, st->names, sizeof(char *) * st->ntargets);
        }
        st->targets = nt;
        st->names = nn;
        *cap = ncap;
    }
    st->targets[st->ntargets] = e;
    st->names[st->ntargets] = name;
    st->ntargets++;
    return true;
}

static bool bind_targets(select_state *st)
{
    plan_ctx *ctx = st->ctx;
    int cap = 0;
    for (int i = 0; i < st->sel->targets.n; i++) {
        const sql_target *t = st->sel->targets.items[i];
        if (t->expr->kind == SQL_E_STAR) {
            const char *q = t->expr->u.star.qualifier;
            if (!st->table) {
                plan_error(ctx, t->expr->location, ROS_ERR_SYNTAX, "SELECT * with no tables specified is not valid");
                return false;
            }
            if (q && strcmp(q, st->scope.qualifier) != 0) {
                plan_error(ctx, t->expr->location, ROS_ERR_UNDEFINED_TABLE,
                           "missing FROM-clause entry for table \"%s\"", q);
                return false;
            }
            for (int c = 0; c < st->scope.ncols; c++) {
                plan_expr *col = plan_expr_column(ctx->arena, c, st->scope.types[c]);
                if (!col || !add_target(st, &cap, col, st->scope.names[c]))
                    return oom(ctx);
                col->location = t->expr->location;
            }
            continue;
        }
        ctx->aggs_allowed = true;
        plan_expr *e = plan_bind_expr(ctx, &st->scope, t->expr);
        if (!e)
            return false;
        if (e->unknown && !(e = plan_coerce(ctx, e, ROS_TYPE_TEXT, false)))
            return false;
        if (e->type == ROS_TYPE_NULL && !(e = plan_coerce(ctx, e, ROS_TYPE_TEXT, false)))
            return false;
        if (!add_target(st, &cap, e, t->alias ? t->alias : derive_name(t->expr)))
            return false;
    }
    return true;
}

/* An integer literal used as ORDER BY / GROUP BY position, or -1. */
static int64_t ordinal_of(const sql_expr *e)
{
    if (e->kind == SQL_E_CONST && e->u.cnst.kind == SQL_C_INT)
        return e->u.cnst.i;
    return -1;
}

static bool bind_group(select_state *st)
{
    plan_ctx *ctx = st->ctx;
    int n = st->sel->group_by.n;
    st->group = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, n + 1);
    if (!st->group)
        return oom(ctx);
    ctx->aggs_allowed = false;
    ctx->agg_context = "GROUP BY";
    for (int i = 0; i < n; i++) {
        const sql_expr *g = st->sel->group_by.items[i];
        plan_expr *e = NULL;
        int64_t ord = ordinal_of(g);
        if (ord >= 0) {
            if (ord < 1 || ord > st->ntargets) {
                plan_error(ctx, g->location, ROS_ERR_INVALID_PARAMETER, "GROUP BY position %lld is not in select list",
                           (long long)ord);
                return false;
            }
            e = st->targets[ord - 1];
            if (plan_has_agg(e)) {
                plan_error(ctx, g->location, ROS_ERR_GROUPING, "aggregate functions are not allowed in GROUP BY");
                return false;
            }
        } else {
            e = plan_bind_expr(ctx, &st->scope, g);
            if (!e && ctx->err->set && strcmp(ctx->err->code, ROS_ERR_UNDEFINED_COLUMN) == 0 &&
                g->kind == SQL_E_COLUMN && !g->u.column.qualifier) {
                /* PostgreSQL falls back to an output column name */
                for (int t = 0; t < st->ntargets; t++)
                    if (strcmp(st->names[t], g->u.column.name) == 0 && !plan_has_agg(st->targets[t])) {
                        ros_error_clear(ctx->err);
                        e = st->targets[t];
                        break;
                    }
            }
            if (!e)
                return false;
        }
        st->group[st->ngroup++] = e;
    }
    return true;
}

static bool bind_order(select_state *st)
{
    plan_ctx *ctx = st->ctx;
    int n = st->sel->order_by.n;
    st->order = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, n + 1);
    st->desc = ROS_ARENA_ARRAY(ctx->arena, bool, n + 1);
    st->nulls_first = ROS_ARENA_ARRAY(ctx->arena, bool, n + 1);
    if (!st->order || !st->desc || !st->nulls_first)
        return oom(ctx);
    ctx->aggs_allowed = true;
    for (int i = 0; i < n; i++) {
        const sql_sortby *s = st->sel->order_by.items[i];
        plan_expr *e = NULL;
        int64_t ord = ordinal_of(s->expr);
        if (ord >= 0) {
            if (ord < 1 || ord > st->ntargets) {
                plan_error(ctx, s->expr->location, ROS_ERR_INVALID_PARAMETER,
                           "ORDER BY position %lld is not in select list", (long long)ord);
                return false;
            }
            e = st->targets[ord - 1];
        } else if (s->expr->kind == SQL_E_COLUMN && !s->expr->u.column.qualifier) {
            /* an output column name wins over an input column (PostgreSQL) */
            int found = -1;
            for (int t = 0; t < st->ntargets; t++)
                if (strcmp(st->names[t], s->expr->u.column.name) == 0) {
                    if (found >= 0 && !plan_expr_equal(st->targets[found], st->targets[t])) {
                        plan_error(ctx, s->expr->location, ROS_ERR_AMBIGUOUS_COLUMN,
                                   "ORDER BY \"%s\" is ambiguous", s->expr->u.column.name);
                        return false;
                    }
                    found = t;
                }
            if (found >= 0)
                e = st->targets[found];
        }
        if (!e) {
            e = plan_bind_expr(ctx, &st->scope, s->expr);
            if (!e)
                return false;
            if (e->unknown && !(e = plan_coerce(ctx, e, ROS_TYPE_TEXT, false)))
                return false;
        }
        if (e->type == ROS_TYPE_FLOAT32_ARRAY) {
            plan_error(ctx, s->expr->location, ROS_ERR_UNDEFINED_FUNCTION,
                       "could not identify an ordering operator for type real[]");
            return false;
        }
        st->order[st->norder] = e;
        st->desc[st->norder] = s->desc;
        st->nulls_first[st->norder] = s->nulls == 0 ? s->desc : s->nulls == 1;
        st->norder++;
    }
    return true;
}

/* ---------------------------------------------------------------- */
/* Column pruning */

typedef struct used_cols {
    bool *used;
} used_cols;

static bool mark_used(plan_expr *e, void *arg)
{
    if (e->kind == PE_COLUMN)
        ((used_cols *)arg)->used[e->u.column] = true;
    return false;
}

typedef struct remap_ctx {
    ros_arena *arena;
    const int *map;
} remap_ctx;

static plan_expr *remap_mutator(plan_expr *e, void *arg, bool *failed)
{
    if (e->kind != PE_COLUMN)
        return NULL;
    remap_ctx *rc = arg;
    plan_expr *c = plan_expr_column(rc->arena, rc->map[e->u.column], e->type);
    if (!c) {
        *failed = true;
        return NULL;
    }
    c->location = e->location;
    return c;
}

static bool remap(plan_ctx *ctx, plan_expr **e, const int *map)
{
    if (!*e)
        return true;
    bool failed = false;
    remap_ctx rc = {ctx->arena, map};
    plan_expr *r = plan_expr_mutate(ctx->arena, *e, remap_mutator, &rc, &failed);
    if (failed || !r)
        return oom(ctx);
    *e = r;
    return true;
}

/* Builds the scan with only the columns used and remaps every expression. */
static plan_node *build_scan(select_state *st)
{
    plan_ctx *ctx = st->ctx;
    int n = st->scope.ncols;
    used_cols u = {ROS_ARENA_ARRAY(ctx->arena, bool, n + 1)};
    int *map = ROS_ARENA_ARRAY(ctx->arena, int, n + 1);
    if (!u.used || !map)
        return oom(ctx);
    plan_expr_walk(st->where, mark_used, &u);
    plan_expr_walk(st->having, mark_used, &u);
    for (int i = 0; i < st->ntargets; i++)
        plan_expr_walk(st->targets[i], mark_used, &u);
    for (int i = 0; i < st->ngroup; i++)
        plan_expr_walk(st->group[i], mark_used, &u);
    for (int i = 0; i < st->norder; i++)
        plan_expr_walk(st->order[i], mark_used, &u);
    int nproj = 0;
    for (int i = 0; i < n; i++)
        map[i] = u.used[i] ? nproj++ : -1;
    plan_node *scan = plan_node_new(ctx->arena, PN_SCAN, NULL, nproj);
    if (!scan)
        return oom(ctx);
    scan->u.scan.table = st->table;
    st->table = NULL; /* the plan owns it now */
    scan->u.scan.nproj = nproj;
    scan->u.scan.proj = ROS_ARENA_ARRAY(ctx->arena, int, nproj + 1);
    if (!scan->u.scan.proj)
        return oom(ctx);
    for (int i = 0; i < n; i++)
        if (map[i] >= 0) {
            scan->u.scan.proj[map[i]] = i;
            scan->names[map[i]] = st->scope.names[i];
            scan->types[map[i]] = st->scope.types[i];
        }
    bool ok = remap(ctx, &st->where, map) && remap(ctx, &st->having, map);
    for (int i = 0; ok && i < st->ntargets; i++)
        ok = remap(ctx, &st->targets[i], map);
    for (int i = 0; ok && i < st->ngroup; i++)
        ok = remap(ctx, &st->group[i], map);
    for (int i = 0; ok && i < st->norder; i++)
        ok = remap(ctx, &st->order[i], map);
    return ok ? scan : NULL;
}

/* ---------------------------------------------------------------- */
/* Aggregation */

typedef struct agg_rewrite {
    select_state *st;
    const char *const *input_names;
} agg_rewrite;

static plan_expr *agg_mutator(plan_expr *e, void *arg, bool *failed)
{
    agg_rewrite *ar = arg;
    select_state *st = ar->st;
    plan_ctx *ctx = st->ctx;
    for (int k = 0; k < st->ngroup; k++)
        if (e->kind != PE_CONST && plan_expr_equal(e, st->group[k])) {
            plan_expr *c = plan_expr_column(ctx->arena, k, e->type);
            if (!c)
                *failed = true;
            return c;
        }
    if (e->kind == PE_AGG) {
        int j;
        for (j = 0; j < st->naggs; j++)
            if (plan_expr_equal(e, st->aggs[j]))
                break;
        if (j == st->naggs) {
            if (st->naggs == st->aggcap) {
                int ncap = st->aggcap ? st->aggcap * 2 : 8;
                plan_expr **na = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, ncap);
                if (!na) {
                    *failed = true;
                    return NULL;
                }
                if (st->naggs)
                    memcpy(na, st->aggs, sizeof(plan_expr *) * st->naggs);
                st->aggs = na;
                st->aggcap = ncap;
            }
            st->aggs[st->naggs++] = e;
        }
        plan_expr *c = plan_expr_column(ctx->arena, st->ngroup + j, e->type);
        if (!c)
            *failed = true;
        return c;
    }
    if (e->kind == PE_COLUMN) {
        const char *name = ar->input_names[e->u.column];
        plan_error(ctx, e->location, ROS_ERR_GROUPING,
                   "column \"%s%s%s\" must appear in the GROUP BY clause or be used in an aggregate function",
                   st->scope.qualifier ? st->scope.qualifier : "", st->scope.qualifier ? "." : "", name);
        *failed = true;
        return NULL;
    }
    return NULL;
}

static bool rewrite_above_agg(select_state *st, agg_rewrite *ar, plan_expr **e)
{
    if (!*e)
        return true;
    bool failed = false;
    plan_expr *r = plan_expr_mutate(st->ctx->arena, *e, agg_mutator, ar, &failed);
    if (failed || !r) {
        if (!st->ctx->err->set)
            ros_error_oom(st->ctx->err);
        return false;
    }
    *e = r;
    return true;
}

static plan_node *build_agg(select_state *st, plan_node *input)
{
    plan_ctx *ctx = st->ctx;
    agg_rewrite ar = {st, (const char *const *)input->names};
    bool ok = true;
    for (int i = 0; ok && i < st->ntargets; i++)
        ok = rewrite_above_agg(st, &ar, &st->targets[i]);
    ok = ok && rewrite_above_agg(st, &ar, &st->having);
    for (int i = 0; ok && i < st->norder; i++)
        ok = rewrite_above_agg(st, &ar, &st->order[i]);
    if (!ok)
        return NULL;
    plan_node *agg = plan_node_new(ctx->arena, PN_AGG, input, st->ngroup + st->naggs);
    if (!agg)
        return oom(ctx);
    agg->u.agg.ngroup = st->ngroup;
    agg->u.agg.group = st->group;
    agg->u.agg.naggs = st->naggs;
    agg->u.agg.aggs = ROS_ARENA_ARRAY(ctx->arena, plan_aggcall, st->naggs + 1);
    if (!agg->u.agg.aggs)
        return oom(ctx);
    for (int k = 0; k < st->ngroup; k++) {
        agg->types[k] = st->group[k]->type;
        ros_strbuf sb = ROS_STRBUF_INIT;
        plan_expr_deparse(st->group[k], ar.input_names, &sb);
        agg->names[k] = ros_arena_strdup(ctx->arena, ros_strbuf_cstr(&sb));
        ros_strbuf_free(&sb);
    }
    for (int j = 0; j < st->naggs; j++) {
        plan_expr *a = st->aggs[j];
        plan_aggcall *c = &agg->u.agg.aggs[j];
        c->kind = a->u.agg.kind;
        c->arg = a->nargs ? a->args[0] : NULL;
        c->filter = a->u.agg.filter;
        c->distinct = a->u.agg.distinct;
        c->type = a->type;
        agg->types[st->ngroup + j] = a->type;
        ros_strbuf sb = ROS_STRBUF_INIT;
        plan_expr_deparse(a, ar.input_names, &sb);
        agg->names[st->ngroup + j] = ros_arena_strdup(ctx->arena, ros_strbuf_cstr(&sb));
        ros_strbuf_free(&sb);
    }
    return agg;
}

/* ---------------------------------------------------------------- */
/* VALUES */

/* Whether INSERT may store a from value in a to column: PostgreSQL's
 * assignment casts, numeric to numeric and anything to text (boolean to
 * integer is explicit only). */
static bool assignable(ros_type from, ros_type to)
{
    return from == to || from == ROS_TYPE_NULL || to == ROS_TYPE_TEXT ||
           (ros_type_is_numeric(from) && ros_type_is_numeric(to));
}

static plan_expr *not_assignable(plan_ctx *ctx, const char *column, ros_type to, ros_type from, int location)
{
    plan_error(ctx, location, ROS_ERR_DATATYPE_MISMATCH, "column \"%s\" is of type %s but expression is of type %s",
               column, ros_type_name(to), ros_type_name(from));
    ros_error_hint(ctx->err, "You will need to rewrite or cast the expression.");
    return NULL;
}

/* want/want_names: the target columns of an INSERT (NULL otherwise). */
static plan_node *plan_values(plan_ctx *ctx, const sql_list *rows, const ros_type *want,
                              const char *const *want_names, int nwant)
{
    int nrows = rows->n;
    const sql_list *first = rows->items[0];
    int ncols = first->n;
    for (int r = 1; r < nrows; r++) {
        const sql_list *row = rows->items[r];
        if (row->n != ncols) {
            const sql_expr *e = row->n ? row->items[0] : NULL;
            return plan_error(ctx, e ? e->location : -1, ROS_ERR_SYNTAX, "VALUES lists must all be the same length");
        }
    }
    plan_node *v = plan_node_new(ctx->arena, PN_VALUES, NULL, ncols);
    if (!v)
        return oom(ctx);
    v->u.values.nrows = nrows;
    v->u.values.exprs = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, (size_t)nrows * ncols + 1);
    plan_expr **col = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, nrows + 1);
    if (!v->u.values.exprs || !col)
        return oom(ctx);
    ctx->aggs_allowed = false;
    ctx->agg_context = "VALUES";
    for (int r = 0; r < nrows; r++) {
        const sql_list *row = rows->items[r];
        for (int c = 0; c < ncols; c++) {
            plan_expr *e = plan_bind_expr(ctx, NULL, row->items[c]);
            if (!e)
                return NULL;
            v->u.values.exprs[(size_t)r * ncols + c] = e;
        }
    }
    for (int c = 0; c < ncols; c++) {
        ros_type t = ROS_TYPE_NULL;
        if (want && c < nwant) {
            t = want[c];
            for (int r = 0; r < nrows; r++) {
                plan_expr **slot = &v->u.values.exprs[(size_t)r * ncols + c];
                if (!(*slot)->unknown && !assignable((*slot)->type, t))
                    return not_assignable(ctx, want_names[c], t, (*slot)->type, (*slot)->location), NULL;
                if (!(*slot = plan_coerce(ctx, *slot, t, true)))
                    return NULL;
            }
        } else {
            for (int r = 0; r < nrows; r++)
                col[r] = v->u.values.exprs[(size_t)r * ncols + c];
            /* reuse the binder's unification through a CASE-like rule */
            ros_type cur = ROS_TYPE_NULL;
            for (int r = 0; r < nrows; r++) {
                plan_expr *e = col[r];
                if (e->unknown || e->type == ROS_TYPE_NULL)
                    continue;
                if (cur == ROS_TYPE_NULL)
                    cur = e->type;
                else if (cur != e->type) {
                    if (ros_type_is_numeric(cur) && ros_type_is_numeric(e->type)) {
                        bool f32i = (cur == ROS_TYPE_FLOAT32 && ros_type_is_integer(e->type)) ||
                                    (e->type == ROS_TYPE_FLOAT32 && ros_type_is_integer(cur));
                        if (f32i)
                            cur = ROS_TYPE_FLOAT64;
                        else if (e->type > cur)
                            cur = e->type;
                    } else
                        return plan_error(ctx, e->location, ROS_ERR_DATATYPE_MISMATCH,
                                          "VALUES types %s and %s cannot be matched", ros_type_name(cur),
                                          ros_type_name(e->type));
                }
            }
            t = cur == ROS_TYPE_NULL ? ROS_TYPE_TEXT : cur;
            for (int r = 0; r < nrows; r++) {
                plan_expr **slot = &v->u.values.exprs[(size_t)r * ncols + c];
                if (!(*slot = plan_coerce(ctx, *slot, t, false)))
                    return NULL;
            }
        }
        v->types[c] = t;
        v->names[c] = ros_arena_printf(ctx->arena, "column%d", c + 1);
    }
    return v;
}

/* ---------------------------------------------------------------- */
/* LIMIT / OFFSET */

static bool bind_count(plan_ctx *ctx, const sql_expr *e, const char *what, int64_t *out)
{
    if (!e)
        return true;
    plan_expr *b = plan_bind_expr(ctx, NULL, e);
    if (!b)
        return false;
    if (b->kind == PE_CONST && b->u.cnst.is_null)
        return true; /* LIMIT NULL is LIMIT ALL */
    if (b->kind == PE_CONST && b->unknown) {
        /* LIMIT '5': the literal is read as a bigint */
        char buf[64];
        char *end;
        uint32_t n = b->u.cnst.len < sizeof buf - 1 ? b->u.cnst.len : (uint32_t)sizeof buf - 1;
        memcpy(buf, b->u.cnst.bytes, n);
        buf[n] = '\0';
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n')
            end++;
        if (end == buf || *end || errno == ERANGE || b->u.cnst.len != n) {
            plan_error(ctx, e->location, ROS_ERR_INVALID_TEXT, "invalid input syntax for type bigint: \"%s\"", buf);
            return false;
        }
        b->type = ROS_TYPE_INT64;
        b->unknown = false;
        b->u.cnst.i = v;
    } else if (b->kind == PE_CONST && b->type == ROS_TYPE_FLOAT64 && isfinite(b->u.cnst.f) &&
               fabs(b->u.cnst.f) < 9.2e18) {
        /* LIMIT 2.5: a numeric literal, rounded half away from zero */
        b->type = ROS_TYPE_INT64;
        b->u.cnst.i = (int64_t)round(b->u.cnst.f);
    }
    if (b->kind != PE_CONST || !ros_type_is_integer(b->type)) {
        plan_error(ctx, e->location, ROS_ERR_NOT_SUPPORTED, "%s must be an integer constant", what);
        return false;
    }
    if (b->u.cnst.i < 0) {
        plan_error(ctx, e->location, "2201W", "%s must not be negative", what);
        return false;
    }
    *out = b->u.cnst.i;
    return true;
}

/* ---------------------------------------------------------------- */
/* SELECT */

plan_node *plan_select(plan_ctx *ctx, const sql_select *sel)
{
    if (sel->values.n > 0)
        return plan_values(ctx, &sel->values, NULL, NULL, 0);

    select_state st;
    memset(&st, 0, sizeof st);
    st.ctx = ctx;
    st.sel = sel;
    plan_node *top = NULL;

    if (!bind_from(&st))
        goto fail;
    /* WHERE */
    if (sel->where) {
        ctx->aggs_allowed = false;
        ctx->agg_context = "WHERE";
        st.where = plan_coerce_bool(ctx, plan_bind_expr(ctx, &st.scope, sel->where), "WHERE");
        if (!st.where)
            goto fail;
    }
    if (!bind_targets(&st) || !bind_group(&st))
        goto fail;
    if (sel->having) {
        ctx->aggs_allowed = true;
        st.having = plan_coerce_bool(ctx, plan_bind_expr(ctx, &st.scope, sel->having), "HAVING");
        if (!st.having)
            goto fail;
    }
    if (!bind_order(&st))
        goto fail;

    /* the input */
    if (st.table) {
        top = build_scan(&st);
    } else {
        top = plan_node_new(ctx->arena, PN_VALUES, NULL, 0);
        if (top) {
            top->u.values.nrows = 1;
        } else
            oom(ctx);
    }
    if (!top)
        goto fail;
    if (st.where) {
        plan_node *f = plan_node_new(ctx->arena, PN_FILTER, top, top->ncols);
        if (!f)
            goto fail_oom;
        if (top->ncols) { /* count(*) may read no columns at all */
            memcpy(f->names, top->names, sizeof(char *) * top->ncols);
            memcpy(f->types, top->types, sizeof(ros_type) * top->ncols);
        }
        f->u.filter.pred = st.where;
        top = f;
    }
    /* aggregation */
    bool grouped = st.ngroup > 0 || (st.having != NULL);
    for (int i = 0; !grouped && i < st.ntargets; i++)
        grouped = plan_has_agg(st.targets[i]);
    for (int i = 0; !grouped && i < st.norder; i++)
        grouped = plan_has_agg(st.order[i]);
    if (grouped) {
        plan_node *agg = build_agg(&st, top);
        if (!agg)
            goto fail;
        top = agg;
        if (st.having) {
            plan_node *f = plan_node_new(ctx->arena, PN_FILTER, top, top->ncols);
            if (!f)
                goto fail_oom;
            memcpy(f->names, top->names, sizeof(char *) * top->ncols);
            memcpy(f->types, top->types, sizeof(ros_type) * top->ncols);
            f->u.filter.pred = st.having;
            top = f;
        }
    }
    /* projection: targets, then sort keys that are not targets */
    int *keycol = ROS_ARENA_ARRAY(ctx->arena, int, st.norder + 1);
    int nextra = 0;
    plan_expr **extra = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, st.norder + 1);
    if (!keycol || !extra)
        goto fail_oom;
    for (int i = 0; i < st.norder; i++) {
        keycol[i] = -1;
        for (int t = 0; t < st.ntargets; t++)
            if (plan_expr_equal(st.order[i], st.targets[t])) {
                keycol[i] = t;
                break;
            }
        if (keycol[i] < 0) {
            if (sel->distinct) {
                plan_error(ctx, ((sql_sortby *)sel->order_by.items[i])->location, ROS_ERR_INVALID_PARAMETER,
                           "for SELECT DISTINCT, ORDER BY expressions must appear in select list");
                goto fail;
            }
            keycol[i] = st.ntargets + nextra;
            extra[nextra++] = st.order[i];
        }
    }
    plan_node *proj = plan_node_new(ctx->arena, PN_PROJECT, top, st.ntargets + nextra);
    if (!proj)
        goto fail_oom;
    proj->u.project.exprs = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, st.ntargets + nextra + 1);
    if (!proj->u.project.exprs)
        goto fail_oom;
    for (int t = 0; t < st.ntargets; t++) {
        proj->u.project.exprs[t] = st.targets[t];
        proj->names[t] = st.names[t];
        proj->types[t] = st.targets[t]->type;
    }
    for (int i = 0; i < nextra; i++) {
        proj->u.project.exprs[st.ntargets + i] = extra[i];
        proj->names[st.ntargets + i] = ros_arena_printf(ctx->arena, "?sort%d?", i + 1);
        proj->types[st.ntargets + i] = extra[i]->type;
    }
    top = proj;
    if (sel->distinct) {
        plan_node *d = plan_node_new(ctx->arena, PN_DISTINCT, top, top->ncols);
        if (!d)
            goto fail_oom;
        memcpy(d->names, top->names, sizeof(char *) * top->ncols);
        memcpy(d->types, top->types, sizeof(ros_type) * top->ncols);
        top = d;
    }
    if (st.norder > 0) {
        plan_node *s = plan_node_new(ctx->arena, PN_SORT, top, top->ncols);
        if (!s)
            goto fail_oom;
        memcpy(s->names, top->names, sizeof(char *) * top->ncols);
        memcpy(s->types, top->types, sizeof(ros_type) * top->ncols);
        s->u.sort.nkeys = st.norder;
        s->u.sort.keys = keycol;
        s->u.sort.desc = st.desc;
        s->u.sort.nulls_first = st.nulls_first;
        top = s;
    }
    int64_t limit = -1, offset = 0;
    if (!bind_count(ctx, sel->limit, "LIMIT", &limit) || !bind_count(ctx, sel->offset, "OFFSET", &offset))
        goto fail;
    if (limit >= 0 || offset > 0) {
        plan_node *l = plan_node_new(ctx->arena, PN_LIMIT, top, top->ncols);
        if (!l)
            goto fail_oom;
        memcpy(l->names, top->names, sizeof(char *) * top->ncols);
        memcpy(l->types, top->types, sizeof(ros_type) * top->ncols);
        l->u.limit.limit = limit;
        l->u.limit.offset = offset;
        top = l;
    }
    if (nextra > 0) {
        plan_node *p = plan_node_new(ctx->arena, PN_PROJECT, top, st.ntargets);
        if (!p)
            goto fail_oom;
        p->u.project.exprs = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, st.ntargets + 1);
        if (!p->u.project.exprs)
            goto fail_oom;
        for (int t = 0; t < st.ntargets; t++) {
            p->u.project.exprs[t] = plan_expr_column(ctx->arena, t, top->types[t]);
            if (!p->u.project.exprs[t])
                goto fail_oom;
            p->names[t] = top->names[t];
            p->types[t] = top->types[t];
        }
        top = p;
    }
    return top;

fail_oom:
    oom(ctx);
fail:
    if (st.table)
        cat_table_free(st.table);
    if (top)
        plan_free(top);
    return NULL;
}

/* ---------------------------------------------------------------- */
/* INSERT */

/* Projects source onto the table's columns (col_of_target[i] = table column
 * of source column i), casting to the column types. */
static plan_node *insert_project(plan_ctx *ctx, cat_table *t, plan_node *src, const int *target_col, int ntarget)
{
    plan_node *p = plan_node_new(ctx->arena, PN_PROJECT, src, t->ncols);
    if (!p)
        return oom(ctx);
    p->u.project.exprs = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, t->ncols + 1);
    if (!p->u.project.exprs)
        return oom(ctx);
    for (int c = 0; c < t->ncols; c++) {
        p->names[c] = ros_arena_strdup(ctx->arena, t->cols[c].name);
        p->types[c] = t->cols[c].type;
        int s = -1;
        for (int i = 0; i < ntarget; i++)
            if (target_col[i] == c)
                s = i;
        plan_expr *e;
        if (s < 0) {
            e = plan_expr_new(ctx->arena, PE_CONST, t->cols[c].type, 0);
            if (!e)
                return oom(ctx);
            e->u.cnst.is_null = true;
        } else {
            e = plan_expr_column(ctx->arena, s, src->types[s]);
            if (!e)
                return oom(ctx);
            ros_type from = src->types[s], to = t->cols[c].type;
            if (!assignable(from, to))
                return not_assignable(ctx, t->cols[c].name, to, from, -1), NULL;
            if (!(e = plan_coerce(ctx, e, to, true)))
                return NULL;
        }
        p->u.project.exprs[c] = e;
    }
    return p;
}

plan_node *plan_insert_into(plan_ctx *ctx, cat_table *table, plan_node *source)
{
    int *target = ROS_ARENA_ARRAY(ctx->arena, int, table->ncols + 1);
    if (!target)
        return oom(ctx);
    if (source->ncols != table->ncols)
        return plan_error(ctx, -1, ROS_ERR_SYNTAX, "INSERT has %s expressions than target columns",
                          source->ncols > table->ncols ? "more" : "fewer");
    for (int i = 0; i < table->ncols; i++)
        target[i] = i;
    plan_node *p = insert_project(ctx, table, source, target, table->ncols);
    if (!p)
        return NULL;
    plan_node *ins = plan_node_new(ctx->arena, PN_INSERT, p, 0);
    if (!ins)
        return oom(ctx);
    ins->u.insert.table = table;
    return ins;
}

plan_node *plan_insert(plan_ctx *ctx, const char *table, int table_location, const sql_list *columns,
                       const sql_select *source)
{
    cat_table *t = cat_table_get(ctx->db, table, ctx->err);
    if (!t) {
        if (!ctx->err->set)
            plan_error(ctx, table_location, ROS_ERR_UNDEFINED_TABLE, "relation \"%s\" does not exist", table);
        return NULL;
    }
    plan_node *src = NULL;
    if (!rt_connector_writable(t->connector)) {
        plan_error(ctx, table_location, ROS_ERR_NOT_SUPPORTED, "cannot insert into table \"%s\"", table);
        ros_error_detail(ctx->err, "Tables with connector \"%s\" are read-only.", t->connector);
        goto fail;
    }
    /* target columns */
    int ntarget = columns->n ? columns->n : t->ncols;
    int *target = ROS_ARENA_ARRAY(ctx->arena, int, ntarget + 1);
    ros_type *want = ROS_ARENA_ARRAY(ctx->arena, ros_type, ntarget + 1);
    const char **want_names = ROS_ARENA_ARRAY(ctx->arena, const char *, ntarget + 1);
    if (!target || !want || !want_names) {
        oom(ctx);
        goto fail;
    }
    for (int i = 0; i < ntarget; i++) {
        if (!columns->n) {
            target[i] = i;
        } else {
            const char *name = columns->items[i];
            target[i] = -1;
            for (int c = 0; c < t->ncols; c++)
                if (strcmp(t->cols[c].name, name) == 0)
                    target[i] = c;
            if (target[i] < 0) {
                plan_error(ctx, table_location, ROS_ERR_UNDEFINED_COLUMN,
                           "column \"%s\" of relation \"%s\" does not exist", name, table);
                goto fail;
            }
            for (int j = 0; j < i; j++)
                if (target[j] == target[i]) {
                    plan_error(ctx, table_location, ROS_ERR_DUPLICATE_COLUMN, "column \"%s\" specified more than once",
                               name);
                    goto fail;
                }
        }
        want[i] = t->cols[target[i]].type;
        want_names[i] = t->cols[target[i]].name;
    }
    if (source->values.n > 0) {
        const sql_list *row0 = source->values.items[0];
        if (row0->n > ntarget) {
            const sql_expr *e = row0->items[ntarget];
            plan_error(ctx, e->location, ROS_ERR_SYNTAX, "INSERT has more expressions than target columns");
            goto fail;
        }
        src = plan_values(ctx, &source->values, want, want_names, row0->n);
    } else {
        src = plan_select(ctx, source);
    }
    if (!src)
        goto fail;
    if (src->ncols > ntarget) {
        plan_error(ctx, table_location, ROS_ERR_SYNTAX, "INSERT has more expressions than target columns");
        goto fail;
    }
    if (src->ncols < ntarget && columns->n) {
        plan_error(ctx, table_location, ROS_ERR_SYNTAX, "INSERT has more target columns than expressions");
        goto fail;
    }
    plan_node *p = insert_project(ctx, t, src, target, src->ncols);
    if (!p)
        goto fail;
    plan_node *ins = plan_node_new(ctx->arena, PN_INSERT, p, 0);
    if (!ins) {
        oom(ctx);
        goto fail;
    }
    ins->u.insert.table = t;
    return ins;
fail:
    if (src)
        plan_free(src);
    cat_table_free(t);
    return NULL;
}
