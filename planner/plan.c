/*
 * plan.c
 *    Plan and expression nodes: allocation, the walker and the copying
 *    mutator, structural equality, and the text forms EXPLAIN prints.
 */
#include "plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/core/types.h"

#define PLAN_MAX_DEPTH 1000

static bool expr_walk_depth(plan_expr *e, plan_expr_walker fn, void *arg, int depth);
static plan_expr *expr_mutate_depth(ros_arena *a, plan_expr *e, plan_expr_mutator fn,
                                    void *arg, bool *failed, int depth);
static void explain_node(const plan_node *p, int depth, ros_strbuf *out);

/* ---------------------------------------------------------------- */
/* Allocation */

plan_expr *plan_expr_new(ros_arena *a, plan_expr_kind kind, ros_type type, int nargs)
{
    plan_expr *e = ROS_ARENA_NEW(a, plan_expr);
    if (!e)
        return NULL;
    e->kind = kind;
    e->type = type;
    e->location = -1;
    e->nargs = nargs;
    if (nargs > 0) {
        e->args = ROS_ARENA_ARRAY(a, plan_expr *, nargs);
        if (!e->args)
            return NULL;
    }
    return e;
}

plan_expr *plan_expr_column(ros_arena *a, int column, ros_type type)
{
    plan_expr *e = plan_expr_new(a, PE_COLUMN, type, 0);
    if (e)
        e->u.column = column;
    return e;
}

plan_node *plan_node_new(ros_arena *a, plan_kind kind, plan_node *child, int ncols)
{
    plan_node *p = ROS_ARENA_NEW(a, plan_node);
    if (!p)
        return NULL;
    p->kind = kind;
    p->child = child;
    p->ncols = ncols;
    p->est_rows = -1;
    if (ncols > 0) {
        p->names = ROS_ARENA_ARRAY(a, const char *, ncols);
        p->types = ROS_ARENA_ARRAY(a, ros_type, ncols);
        if (!p->names || !p->types)
            return NULL;
    }
    return p;
}

const cat_options *plan_options_dup(ros_arena *a, const cat_options *o)
{
    cat_options *c = ROS_ARENA_NEW(a, cat_options);
    if (!c)
        return NULL;
    c->n = o->n;
    c->items = o->n ? ROS_ARENA_ARRAY(a, cat_option, o->n) : NULL;
    if (o->n && !c->items)
        return NULL;
    for (int i = 0; i < o->n; i++) {
        c->items[i].key = ros_arena_strdup(a, o->items[i].key);
        c->items[i].value = ros_arena_strdup(a, o->items[i].value);
        if (!c->items[i].key || !c->items[i].value)
            return NULL;
    }
    return c;
}

void plan_free(plan_node *p)
{
    for (; p; p = p->child) {
        if (p->kind == PN_SCAN && p->u.scan.table) {
            cat_table_free(p->u.scan.table);
            p->u.scan.table = NULL;
        } else if (p->kind == PN_INSERT && p->u.insert.table) {
            cat_table_free(p->u.insert.table);
            p->u.insert.table = NULL;
        }
    }
}

/* ---------------------------------------------------------------- */
/* Walker and mutator */

static bool expr_walk_depth(plan_expr *e, plan_expr_walker fn, void *arg, int depth)
{
    if (!e || depth > PLAN_MAX_DEPTH)
        return false;
    if (fn(e, arg))
        return true;
    for (int i = 0; i < e->nargs; i++)
        if (expr_walk_depth(e->args[i], fn, arg, depth + 1))
            return true;
    if (e->kind == PE_AGG && e->u.agg.filter)
        return expr_walk_depth(e->u.agg.filter, fn, arg, depth + 1);
    return false;
}

bool plan_expr_walk(plan_expr *e, plan_expr_walker fn, void *arg)
{
    return expr_walk_depth(e, fn, arg, 0);
}

static plan_expr *expr_mutate_depth(ros_arena *a, plan_expr *e, plan_expr_mutator fn,
                                    void *arg, bool *failed, int depth)
{
    if (!e || *failed)
        return NULL;
    if (depth > PLAN_MAX_DEPTH) {
        *failed = true;
        return NULL;
    }
    plan_expr *r = fn ? fn(e, arg, failed) : NULL;
    if (r || *failed)
        return r;
    plan_expr *c = ROS_ARENA_NEW(a, plan_expr);
    if (!c) {
        *failed = true;
        return NULL;
    }
    *c = *e;
    if (e->nargs > 0) {
        c->args = ROS_ARENA_ARRAY(a, plan_expr *, e->nargs);
        if (!c->args) {
            *failed = true;
            return NULL;
        }
        for (int i = 0; i < e->nargs; i++)
            c->args[i] = expr_mutate_depth(a, e->args[i], fn, arg, failed, depth + 1);
    }
    if (e->kind == PE_AGG && e->u.agg.filter)
        c->u.agg.filter = expr_mutate_depth(a, e->u.agg.filter, fn, arg, failed, depth + 1);
    return *failed ? NULL : c;
}

plan_expr *plan_expr_mutate(ros_arena *a, plan_expr *e, plan_expr_mutator fn, void *arg, bool *failed)
{
    return expr_mutate_depth(a, e, fn, arg, failed, 0);
}

bool plan_expr_equal(const plan_expr *a, const plan_expr *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->kind != b->kind || a->type != b->type || a->nargs != b->nargs)
        return false;
    switch (a->kind) {
    case PE_CONST:
        if (a->u.cnst.is_null != b->u.cnst.is_null)
            return false;
        if (a->u.cnst.is_null)
            return true;
        if (ros_type_is_varlen(a->type))
            return a->u.cnst.len == b->u.cnst.len &&
                   (a->u.cnst.len == 0 || memcmp(a->u.cnst.bytes, b->u.cnst.bytes, a->u.cnst.len) == 0);
        if (a->type == ROS_TYPE_FLOAT32 || a->type == ROS_TYPE_FLOAT64)
            return memcmp(&a->u.cnst.f, &b->u.cnst.f, sizeof(double)) == 0;
        return a->u.cnst.i == b->u.cnst.i;
    case PE_COLUMN:
        return a->u.column == b->u.column;
    case PE_OP:
        if (a->u.op != b->u.op)
            return false;
        break;
    case PE_FUNC:
        if (a->u.func != b->u.func)
            return false;
        break;
    case PE_UDF:
        /* structural, as PostgreSQL's equal(): GROUP BY f(x) matches a
         * select-list f(x) even for a volatile f; whoever merges calls
         * (the rewriter) checks volatility itself */
        if (a->u.udf.fn != b->u.udf.fn || strcmp(a->u.udf.name, b->u.udf.name) != 0)
            return false;
        break;
    case PE_ISNULL: case PE_CASE: case PE_MINMAX: case PE_IN:
        if (a->u.flag != b->u.flag)
            return false;
        break;
    case PE_BOOLTEST:
        if (a->u.test != b->u.test)
            return false;
        break;
    case PE_LIKE:
        if (a->u.like.ilike != b->u.like.ilike || a->u.like.is_not != b->u.like.is_not)
            return false;
        break;
    case PE_AGG:
        if (a->u.agg.kind != b->u.agg.kind || a->u.agg.distinct != b->u.agg.distinct ||
            !plan_expr_equal(a->u.agg.filter, b->u.agg.filter))
            return false;
        break;
    default:
        break;
    }
    for (int i = 0; i < a->nargs; i++)
        if (!plan_expr_equal(a->args[i], b->args[i]))
            return false;
    return true;
}

/* ---------------------------------------------------------------- */
/* Text forms */

const char *plan_op_name(plan_op op)
{
    static const char *const names[] = {"+", "-", "*", "/", "%", "-", "=", "<>", "<", "<=", ">", ">=", "||"};
    return names[op];
}

const char *plan_func_name(plan_func f)
{
    static const char *const names[FN__COUNT] = {
        "length", "lower", "upper", "substr", "btrim", "ltrim", "rtrim", "replace",
        "position", "concat", "abs", "floor", "ceil", "round", "sqrt", "power", "mod",
        "left", "right", "reverse", "repeat", "starts_with", "sign", "trunc", "exp",
        "ln", "array_length"};
    return (unsigned)f < FN__COUNT ? names[f] : "?";
}

const char *plan_agg_name(plan_agg_kind k)
{
    static const char *const names[] = {"count", "count", "sum", "avg", "min", "max"};
    return names[k];
}

static void deparse_list(const plan_expr *e, int from, const char *const *names, ros_strbuf *out)
{
    for (int i = from; i < e->nargs; i++) {
        if (i > from)
            ros_strbuf_append(out, ", ");
        plan_expr_deparse(e->args[i], names, out);
    }
}

void plan_expr_deparse(const plan_expr *e, const char *const *names, ros_strbuf *out)
{
    if (!e) {
        ros_strbuf_append(out, "NULL");
        return;
    }
    switch (e->kind) {
    case PE_CONST:
        if (e->u.cnst.is_null)
            ros_strbuf_append(out, "NULL");
        else if (e->type == ROS_TYPE_BOOL)
            ros_strbuf_append(out, e->u.cnst.i ? "true" : "false");
        else if (ros_type_is_integer(e->type))
            ros_strbuf_appendf(out, "%lld", (long long)e->u.cnst.i);
        else if (e->type == ROS_TYPE_FLOAT32 || e->type == ROS_TYPE_FLOAT64)
            ros_strbuf_appendf(out, "%.17g", e->u.cnst.f);
        else if (e->type == ROS_TYPE_TEXT) {
            ros_strbuf_appendc(out, '\'');
            for (uint32_t i = 0; i < e->u.cnst.len; i++) {
                if (e->u.cnst.bytes[i] == '\'')
                    ros_strbuf_appendc(out, '\'');
                ros_strbuf_appendc(out, (char)e->u.cnst.bytes[i]);
            }
            ros_strbuf_appendc(out, '\'');
        } else
            ros_strbuf_appendf(out, "<%s constant>", ros_type_name(e->type));
        break;
    case PE_COLUMN:
        if (names && names[e->u.column])
            ros_strbuf_append(out, names[e->u.column]);
        else
            ros_strbuf_appendf(out, "$%d", e->u.column);
        break;
    case PE_OP:
        ros_strbuf_appendc(out, '(');
        if (e->u.op == OP_NEG) {
            ros_strbuf_append(out, "- ");
            plan_expr_deparse(e->args[0], names, out);
        } else {
            plan_expr_deparse(e->args[0], names, out);
            ros_strbuf_appendf(out, " %s ", plan_op_name(e->u.op));
            plan_expr_deparse(e->args[1], names, out);
        }
        ros_strbuf_appendc(out, ')');
        break;
    case PE_FUNC:
        ros_strbuf_appendf(out, "%s(", plan_func_name(e->u.func));
        deparse_list(e, 0, names, out);
        ros_strbuf_appendc(out, ')');
        break;
    case PE_UDF:
        ros_strbuf_appendf(out, "%s(", e->u.udf.name);
        deparse_list(e, 0, names, out);
        ros_strbuf_appendc(out, ')');
        break;
    case PE_CAST:
        ros_strbuf_appendc(out, '(');
        plan_expr_deparse(e->args[0], names, out);
        ros_strbuf_appendf(out, ")::%s", ros_type_name(e->type));
        break;
    case PE_AND:
    case PE_OR:
        ros_strbuf_appendc(out, '(');
        for (int i = 0; i < e->nargs; i++) {
            if (i)
                ros_strbuf_append(out, e->kind == PE_AND ? " AND " : " OR ");
            plan_expr_deparse(e->args[i], names, out);
        }
        ros_strbuf_appendc(out, ')');
        break;
    case PE_NOT:
        ros_strbuf_append(out, "(NOT ");
        plan_expr_deparse(e->args[0], names, out);
        ros_strbuf_appendc(out, ')');
        break;
    case PE_ISNULL:
        ros_strbuf_appendc(out, '(');
        plan_expr_deparse(e->args[0], names, out);
        ros_strbuf_append(out, e->u.flag ? " IS NOT NULL)" : " IS NULL)");
        break;
    case PE_BOOLTEST: {
        static const char *const t[] = {" IS TRUE", " IS NOT TRUE", " IS FALSE",
                                        " IS NOT FALSE", " IS UNKNOWN", " IS NOT UNKNOWN"};
        ros_strbuf_appendc(out, '(');
        plan_expr_deparse(e->args[0], names, out);
        ros_strbuf_append(out, t[e->u.test]);
        ros_strbuf_appendc(out, ')');
        break;
    }
    case PE_CASE: {
        int pairs = (e->nargs - (e->u.flag ? 1 : 0)) / 2;
        ros_strbuf_append(out, "CASE");
        for (int i = 0; i < pairs; i++) {
            ros_strbuf_append(out, " WHEN ");
            plan_expr_deparse(e->args[2 * i], names, out);
            ros_strbuf_append(out, " THEN ");
            plan_expr_deparse(e->args[2 * i + 1], names, out);
        }
        if (e->u.flag) {
            ros_strbuf_append(out, " ELSE ");
            plan_expr_deparse(e->args[e->nargs - 1], names, out);
        }
        ros_strbuf_append(out, " END");
        break;
    }
    case PE_COALESCE:
    case PE_NULLIF:
    case PE_MINMAX:
    case PE_ARRAY:
        ros_strbuf_append(out, e->kind == PE_COALESCE ? "COALESCE(" : e->kind == PE_NULLIF ? "NULLIF("
                               : e->kind == PE_ARRAY  ? "ARRAY["
                               : e->u.flag            ? "GREATEST("
                                                      : "LEAST(");
        deparse_list(e, 0, names, out);
        ros_strbuf_appendc(out, e->kind == PE_ARRAY ? ']' : ')');
        break;
    case PE_IN:
        ros_strbuf_appendc(out, '(');
        plan_expr_deparse(e->args[0], names, out);
        ros_strbuf_append(out, e->u.flag ? " NOT IN (" : " IN (");
        deparse_list(e, 1, names, out);
        ros_strbuf_append(out, "))");
        break;
    case PE_LIKE:
        ros_strbuf_appendc(out, '(');
        plan_expr_deparse(e->args[0], names, out);
        ros_strbuf_appendf(out, " %s%s ", e->u.like.is_not ? "NOT " : "", e->u.like.ilike ? "ILIKE" : "LIKE");
        plan_expr_deparse(e->args[1], names, out);
        if (e->nargs > 2) {
            ros_strbuf_append(out, " ESCAPE ");
            plan_expr_deparse(e->args[2], names, out);
        }
        ros_strbuf_appendc(out, ')');
        break;
    case PE_SUBSCRIPT:
        plan_expr_deparse(e->args[0], names, out);
        ros_strbuf_appendc(out, '[');
        plan_expr_deparse(e->args[1], names, out);
        ros_strbuf_appendc(out, ']');
        break;
    case PE_AGG:
        ros_strbuf_appendf(out, "%s(%s", plan_agg_name(e->u.agg.kind), e->u.agg.distinct ? "DISTINCT " : "");
        if (e->u.agg.kind == AGG_COUNT_STAR)
            ros_strbuf_appendc(out, '*');
        else
            deparse_list(e, 0, names, out);
        ros_strbuf_appendc(out, ')');
        if (e->u.agg.filter) {
            ros_strbuf_append(out, " FILTER (WHERE ");
            plan_expr_deparse(e->u.agg.filter, names, out);
            ros_strbuf_appendc(out, ')');
        }
        break;
    }
}

static void explain_line(int depth, ros_strbuf *out)
{
    if (depth > 0) {
        for (int i = 0; i < 6 * depth - 4; i++)
            ros_strbuf_appendc(out, ' ');
        ros_strbuf_append(out, "->  ");
    }
}

static void explain_detail(int depth, ros_strbuf *out)
{
    int n = depth > 0 ? 6 * depth + 2 : 2;
    for (int i = 0; i < n; i++)
        ros_strbuf_appendc(out, ' ');
}

static void explain_node(const plan_node *p, int depth, ros_strbuf *out)
{
    const plan_node *c = p->child;
    const char *const *cn = c ? (const char *const *)c->names : NULL;
    explain_line(depth, out);
    switch (p->kind) {
    case PN_SCAN: {
        const cat_table *t = p->u.scan.table;
        ros_strbuf_appendf(out, "Scan on %s (connector=%s)\n", t->name, t->connector);
        explain_detail(depth, out);
        ros_strbuf_append(out, "Columns: ");
        for (int i = 0; i < p->ncols; i++)
            ros_strbuf_appendf(out, "%s%s", i ? ", " : "", p->names[i]);
        ros_strbuf_appendc(out, '\n');
        break;
    }
    case PN_VALUES:
        ros_strbuf_appendf(out, "Values (%d row%s)\n", p->u.values.nrows, p->u.values.nrows == 1 ? "" : "s");
        break;
    case PN_FILTER:
        ros_strbuf_append(out, "Filter\n");
        explain_detail(depth, out);
        ros_strbuf_append(out, "Condition: ");
        plan_expr_deparse(p->u.filter.pred, cn, out);
        ros_strbuf_appendc(out, '\n');
        break;
    case PN_PROJECT:
        ros_strbuf_append(out, "Project\n");
        explain_detail(depth, out);
        ros_strbuf_append(out, "Output: ");
        for (int i = 0; i < p->ncols; i++) {
            if (i)
                ros_strbuf_append(out, ", ");
            plan_expr_deparse(p->u.project.exprs[i], cn, out);
        }
        ros_strbuf_appendc(out, '\n');
        break;
    case PN_AGG:
        ros_strbuf_append(out, p->u.agg.ngroup ? "HashAggregate\n" : "Aggregate\n");
        if (p->u.agg.ngroup) {
            explain_detail(depth, out);
            ros_strbuf_append(out, "Group Key: ");
            for (int i = 0; i < p->u.agg.ngroup; i++) {
                if (i)
                    ros_strbuf_append(out, ", ");
                plan_expr_deparse(p->u.agg.group[i], cn, out);
            }
            ros_strbuf_appendc(out, '\n');
        }
        if (p->u.agg.naggs) {
            explain_detail(depth, out);
            ros_strbuf_append(out, "Aggregates: ");
            for (int i = 0; i < p->u.agg.naggs; i++) {
                const plan_aggcall *ag = &p->u.agg.aggs[i];
                ros_strbuf_appendf(out, "%s%s(%s", i ? ", " : "", plan_agg_name(ag->kind), ag->distinct ? "DISTINCT " : "");
                if (ag->arg)
                    plan_expr_deparse(ag->arg, cn, out);
                else
                    ros_strbuf_appendc(out, '*');
                ros_strbuf_appendc(out, ')');
                if (ag->filter) {
                    ros_strbuf_append(out, " FILTER (WHERE ");
                    plan_expr_deparse(ag->filter, cn, out);
                    ros_strbuf_appendc(out, ')');
                }
            }
            ros_strbuf_appendc(out, '\n');
        }
        break;
    case PN_SORT:
        ros_strbuf_append(out, "Sort\n");
        explain_detail(depth, out);
        ros_strbuf_append(out, "Sort Key: ");
        for (int i = 0; i < p->u.sort.nkeys; i++) {
            int k = p->u.sort.keys[i];
            ros_strbuf_appendf(out, "%s%s", i ? ", " : "", cn && cn[k] ? cn[k] : "?");
            if (p->u.sort.desc[i])
                ros_strbuf_append(out, " DESC");
            if (p->u.sort.nulls_first[i] != p->u.sort.desc[i])
                ros_strbuf_append(out, p->u.sort.nulls_first[i] ? " NULLS FIRST" : " NULLS LAST");
        }
        ros_strbuf_appendc(out, '\n');
        break;
    case PN_LIMIT:
        ros_strbuf_append(out, "Limit");
        if (p->u.limit.limit >= 0)
            ros_strbuf_appendf(out, " %lld", (long long)p->u.limit.limit);
        if (p->u.limit.offset > 0)
            ros_strbuf_appendf(out, " Offset %lld", (long long)p->u.limit.offset);
        ros_strbuf_appendc(out, '\n');
        break;
    case PN_DISTINCT:
        ros_strbuf_append(out, "HashDistinct\n");
        break;
    case PN_INSERT:
        ros_strbuf_appendf(out, "Insert on %s (connector=%s)\n", p->u.insert.table->name,
                           p->u.insert.table->connector);
        break;
    case PN_PROXY: {
        static const char *const on_error[] = {"fail", "null", "skip"};
        ros_strbuf_appendf(out, "Proxy %s (service=%s", p->u.proxy.function, p->u.proxy.service);
        if (p->u.proxy.method)
            ros_strbuf_appendf(out, ", method=%s", p->u.proxy.method);
        if (p->u.proxy.decoupled)
            ros_strbuf_append(out, ", decoupled");
        ros_strbuf_append(out, ")\n");
        explain_detail(depth, out);
        ros_strbuf_appendf(out, "Call: %s(", p->u.proxy.function);
        for (int i = 0; i < p->u.proxy.nargs; i++) {
            if (i)
                ros_strbuf_append(out, ", ");
            plan_expr_deparse(p->u.proxy.args[i], cn, out);
        }
        ros_strbuf_appendf(out, ") AS %s\n", p->names[p->ncols - 1]);
        if (p->u.proxy.guard) {
            explain_detail(depth, out);
            ros_strbuf_append(out, "Sent only when: ");
            plan_expr_deparse(p->u.proxy.guard, cn, out);
            ros_strbuf_append(out, "\n");
        }
        explain_detail(depth, out);
        ros_strbuf_appendf(out, "Batch: %u rows, in flight: %u rows", p->u.proxy.max_batch, p->u.proxy.max_inflight);
        if (p->u.proxy.inflight_per_instance)
            ros_strbuf_appendf(out, " (%u per ready instance)", p->u.proxy.inflight_per_instance);
        ros_strbuf_appendf(out, ", %s, timeout: %u ms, retries: %u, on_error: %s\n",
                           p->u.proxy.ordered ? "ordered" : "unordered", p->u.proxy.timeout_ms,
                           p->u.proxy.max_retries, on_error[p->u.proxy.on_error]);
        break;
    }
    }
    if (c)
        explain_node(c, depth + 1, out);
}

void plan_explain(const plan_node *p, ros_strbuf *out)
{
    explain_node(p, 0, out);
}
