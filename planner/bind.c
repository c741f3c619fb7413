/*
 * bind.c
 *    Binding expressions: resolve column and function names, check types,
 *    make implicit casts explicit.
 *
 * Type rules follow PostgreSQL for rosql's types: integers widen to the
 * wider integer, integer with float gives double precision (real with real
 * stays real), an untyped string literal takes the type the context asks
 * for, and text || anything is text.  Operators with no rule are errors
 * (`operator does not exist: text = integer`) with PostgreSQL's hint.
 */
#include "planner/planner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/core/types.h"
#include "sql/parser.h"

static plan_expr *bind(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e);
static plan_expr *bind_column(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e);
static plan_expr *bind_const(plan_ctx *ctx, const sql_expr *e);
static plan_expr *bind_op(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e);
static plan_expr *bind_func(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e);
static plan_expr *make_binary(plan_ctx *ctx, plan_op op, plan_expr *l, plan_expr *r, int location);
static bool unify(plan_ctx *ctx, plan_expr **args, int n, ros_type *out, const char *what, int location);

/* ---------------------------------------------------------------- */
/* Errors */

/* Converts a byte offset in sql to a 1-based character position. */
static int char_position(const char *sql, int location)
{
    if (!sql || location < 0)
        return 0;
    int pos = 1;
    for (int i = 0; i < location && sql[i]; i++)
        if (((unsigned char)sql[i] & 0xC0) != 0x80)
            pos++;
    return pos;
}

void *plan_error(plan_ctx *ctx, int location, const char *code, const char *fmt, ...)
{
    if (ctx->err->set)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    ros_error_setv(ctx->err, code, fmt, ap);
    va_end(ap);
    ros_error_position(ctx->err, char_position(ctx->sql, location));
    return NULL;
}

static void *oom(plan_ctx *ctx)
{
    ros_error_oom(ctx->err);
    return NULL;
}

/* ---------------------------------------------------------------- */
/* Types */

static int numeric_rank(ros_type t)
{
    switch (t) {
    case ROS_TYPE_INT16: return 1;
    case ROS_TYPE_INT32: return 2;
    case ROS_TYPE_INT64: return 3;
    case ROS_TYPE_FLOAT32: return 4;
    case ROS_TYPE_FLOAT64: return 5;
    default: return 0;
    }
}

/* The common numeric type of a and b (int with real gives double). */
static ros_type numeric_common(ros_type a, ros_type b)
{
    if (a == b)
        return a;
    if ((a == ROS_TYPE_FLOAT32 && ros_type_is_integer(b)) || (b == ROS_TYPE_FLOAT32 && ros_type_is_integer(a)))
        return ROS_TYPE_FLOAT64;
    return numeric_rank(a) >= numeric_rank(b) ? a : b;
}

/* Whether a value of type from may be converted to to (explicitly or not). */
static bool cast_allowed(ros_type from, ros_type to, bool is_explicit)
{
    if (from == to || from == ROS_TYPE_NULL)
        return true;
    if (ros_type_is_numeric(from) && ros_type_is_numeric(to)) {
        /* implicit casts only widen, as in PostgreSQL */
        return is_explicit || numeric_rank(to) > numeric_rank(from);
    }
    if (!is_explicit)
        return false;
    if (to == ROS_TYPE_TEXT || from == ROS_TYPE_TEXT)
        return true; /* I/O conversion */
    if ((from == ROS_TYPE_BOOL && to == ROS_TYPE_INT32) || (from == ROS_TYPE_INT32 && to == ROS_TYPE_BOOL))
        return true;
    return false;
}

/*
 * Whether e stands for a value PostgreSQL computes as numeric, which rosql
 * computes as double precision: a decimal literal (only those are float
 * constants at bind time), avg() of integers, sum() of bigint.  Numeric
 * rounds half away from zero where double precision rounds half to even.
 */
static bool numeric_origin(const plan_expr *e)
{
    if (e->kind == PE_CONST)
        return e->type == ROS_TYPE_FLOAT64 && !e->u.cnst.is_null;
    if (e->kind == PE_AGG && e->nargs == 1)
        return (e->u.agg.kind == AGG_AVG && ros_type_is_integer(e->args[0]->type)) ||
               (e->u.agg.kind == AGG_SUM && e->args[0]->type == ROS_TYPE_INT64);
    return false;
}

/* round(e, 0): numeric's rounding for a numeric_origin value. */
static plan_expr *round_numeric(plan_ctx *ctx, plan_expr *e)
{
    plan_expr *f = plan_expr_new(ctx->arena, PE_FUNC, ROS_TYPE_FLOAT64, 2);
    plan_expr *zero = plan_expr_new(ctx->arena, PE_CONST, ROS_TYPE_INT32, 0);
    if (!f || !zero)
        return oom(ctx);
    f->u.func = FN_ROUND;
    f->args[0] = e;
    f->args[1] = zero;
    f->location = zero->location = e->location;
    return f;
}

plan_expr *plan_coerce(plan_ctx *ctx, plan_expr *e, ros_type t, bool is_explicit)
{
    if (!e)
        return NULL;
    if (e->type == t && !e->unknown)
        return e;
    if (e->kind == PE_CONST && e->u.cnst.is_null) {
        /* a NULL literal adopts any type */
        plan_expr *c = plan_expr_new(ctx->arena, PE_CONST, t, 0);
        if (!c)
            return oom(ctx);
        c->u.cnst.is_null = true;
        c->location = e->location;
        return c;
    }
    if (e->type == t && e->unknown) {
        e->unknown = false;
        return e;
    }
    if (!e->unknown && !cast_allowed(e->type, t, is_explicit))
        return plan_error(ctx, e->location, ROS_ERR_DATATYPE_MISMATCH, "cannot cast type %s to %s",
                          ros_type_name(e->type), ros_type_name(t));
    if (ros_type_is_integer(t) && e->type == ROS_TYPE_FLOAT64 && numeric_origin(e) &&
        !(e = round_numeric(ctx, e)))
        return NULL;
    /* widening an integer literal needs no run-time cast: fold it here, so
     * EXPLAIN shows (x > 10) rather than (x > (10)::double precision) */
    if (e->kind == PE_CONST && !e->unknown && ros_type_is_integer(e->type) &&
        (t == ROS_TYPE_FLOAT64 || t == ROS_TYPE_FLOAT32 || (ros_type_is_integer(t) && numeric_rank(t) > numeric_rank(e->type)))) {
        plan_expr *f = plan_expr_new(ctx->arena, PE_CONST, t, 0);
        if (!f)
            return oom(ctx);
        f->location = e->location;
        if (ros_type_is_integer(t))
            f->u.cnst.i = e->u.cnst.i;
        else
            f->u.cnst.f = t == ROS_TYPE_FLOAT32 ? (double)(float)e->u.cnst.i : (double)e->u.cnst.i;
        return f;
    }
    plan_expr *c = plan_expr_new(ctx->arena, PE_CAST, t, 1);
    if (!c)
        return oom(ctx);
    c->args[0] = e;
    c->location = e->location;
    return c;
}

plan_expr *plan_coerce_bool(plan_ctx *ctx, plan_expr *e, const char *clause)
{
    if (!e)
        return NULL;
    if (e->type == ROS_TYPE_BOOL && !e->unknown)
        return e;
    if (e->unknown || (e->kind == PE_CONST && e->u.cnst.is_null))
        return plan_coerce(ctx, e, ROS_TYPE_BOOL, true);
    return plan_error(ctx, e->location, ROS_ERR_DATATYPE_MISMATCH,
                      "argument of %s must be type boolean, not type %s", clause, ros_type_name(e->type));
}

/*
 * Finds the common type of n expressions (CASE, COALESCE, IN, GREATEST...)
 * and coerces each to it.  Unknown literals follow the others; all unknown
 * gives text.
 */
static bool unify(plan_ctx *ctx, plan_expr **args, int n, ros_type *out, const char *what, int location)
{
    ros_type t = ROS_TYPE_NULL;
    for (int i = 0; i < n; i++) {
        plan_expr *a = args[i];
        if (a->unknown || a->type == ROS_TYPE_NULL)
            continue;
        if (t == ROS_TYPE_NULL)
            t = a->type;
        else if (t != a->type) {
            if (ros_type_is_numeric(t) && ros_type_is_numeric(a->type))
                t = numeric_common(t, a->type);
            else {
                plan_error(ctx, a->location, ROS_ERR_DATATYPE_MISMATCH, "%s types %s and %s cannot be matched",
                           what, ros_type_name(t), ros_type_name(a->type));
                return false;
            }
        }
    }
    if (t == ROS_TYPE_NULL) {
        bool any_unknown = false;
        for (int i = 0; i < n; i++)
            any_unknown |= args[i]->unknown;
        t = any_unknown ? ROS_TYPE_TEXT : ROS_TYPE_NULL;
        if (t == ROS_TYPE_NULL) {
            *out = t;
            return true;
        }
    }
    for (int i = 0; i < n; i++) {
        args[i] = plan_coerce(ctx, args[i], t, false);
        if (!args[i])
            return false;
    }
    (void)location;
    *out = t;
    return true;
}

/* ---------------------------------------------------------------- */
/* Leaves */

static plan_expr *bind_const(plan_ctx *ctx, const sql_expr *e)
{
    plan_expr *c = NULL;
    switch (e->u.cnst.kind) {
    case SQL_C_NULL:
        c = plan_expr_new(ctx->arena, PE_CONST, ROS_TYPE_NULL, 0);
        if (c)
            c->u.cnst.is_null = true;
        break;
    case SQL_C_BOOL:
        c = plan_expr_new(ctx->arena, PE_CONST, ROS_TYPE_BOOL, 0);
        if (c)
            c->u.cnst.i = e->u.cnst.b;
        break;
    case SQL_C_INT: {
        int64_t v = e->u.cnst.i;
        ros_type t = (v >= INT32_MIN && v <= INT32_MAX) ? ROS_TYPE_INT32 : ROS_TYPE_INT64;
        c = plan_expr_new(ctx->arena, PE_CONST, t, 0);
        if (c)
            c->u.cnst.i = v;
        break;
    }
    case SQL_C_FLOAT: {
        /* decimal literals are double precision in rosql (no numeric type) */
        char *end;
        double d = strtod(e->u.cnst.str, &end);
        c = plan_expr_new(ctx->arena, PE_CONST, ROS_TYPE_FLOAT64, 0);
        if (c)
            c->u.cnst.f = d;
        break;
    }
    case SQL_C_STRING:
        c = plan_expr_new(ctx->arena, PE_CONST, ROS_TYPE_TEXT, 0);
        if (c) {
            c->unknown = true;
            c->u.cnst.bytes = (const uint8_t *)e->u.cnst.str;
            c->u.cnst.len = (uint32_t)strlen(e->u.cnst.str);
        }
        break;
    }
    if (!c)
        return oom(ctx);
    c->location = e->location;
    return c;
}

static plan_expr *bind_column(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e)
{
    const char *q = e->u.column.qualifier;
    const char *name = e->u.column.name;
    if (q && (!scope || !scope->qualifier || strcmp(q, scope->qualifier) != 0)) {
        plan_error(ctx, e->location, ROS_ERR_UNDEFINED_TABLE, "missing FROM-clause entry for table \"%s\"", q);
        return NULL;
    }
    int found = -1;
    for (int i = 0; scope && i < scope->ncols; i++) {
        if (scope->names[i] && strcmp(scope->names[i], name) == 0) {
            if (found >= 0)
                return plan_error(ctx, e->location, ROS_ERR_AMBIGUOUS_COLUMN, "column reference \"%s\" is ambiguous", name);
            found = i;
        }
    }
    if (found < 0) {
        if (q)
            return plan_error(ctx, e->location, ROS_ERR_UNDEFINED_COLUMN, "column %s.%s does not exist", q, name);
        plan_error(ctx, e->location, ROS_ERR_UNDEFINED_COLUMN, "column \"%s\" does not exist", name);
        /* a hint like PostgreSQL's when the name differs only in case */
        for (int i = 0; scope && i < scope->ncols; i++)
            if (scope->names[i] && strcasecmp(scope->names[i], name) == 0) {
                ros_error_hint(ctx->err, "Perhaps you meant to reference the column \"%s\".", scope->names[i]);
                break;
            }
        return NULL;
    }
    plan_expr *c = plan_expr_column(ctx->arena, found, scope->types[found]);
    if (!c)
        return oom(ctx);
    c->location = e->location;
    return c;
}

/* ---------------------------------------------------------------- */
/* Operators */

static const struct {
    const char *name;
    plan_op op;
} op_names[] = {
    {"+", OP_ADD}, {"-", OP_SUB}, {"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD},
    {"=", OP_EQ}, {"<>", OP_NE}, {"!=", OP_NE}, {"<", OP_LT}, {"<=", OP_LE},
    {">", OP_GT}, {">=", OP_GE}, {"||", OP_CONCAT},
};

static bool op_is_comparison(plan_op op)
{
    return op >= OP_EQ && op <= OP_GE;
}

static plan_expr *op_error(plan_ctx *ctx, const char *op, plan_expr *l, plan_expr *r, int location)
{
    if (l)
        plan_error(ctx, location, ROS_ERR_UNDEFINED_FUNCTION, "operator does not exist: %s %s %s",
                   ros_type_name(l->type), op, ros_type_name(r->type));
    else
        plan_error(ctx, location, ROS_ERR_UNDEFINED_FUNCTION, "operator does not exist: %s %s", op,
                   ros_type_name(r->type));
    ros_error_hint(ctx->err, "No operator matches the given name and argument types. "
                             "You might need to add explicit type casts.");
    return NULL;
}

/* Builds l op r with operand types resolved and casts inserted. */
static plan_expr *make_binary(plan_ctx *ctx, plan_op op, plan_expr *l, plan_expr *r, int location)
{
    ros_type lt = l->type, rt = r->type;
    ros_type operand, result;
    if (op == OP_CONCAT && (lt == ROS_TYPE_BYTEA || rt == ROS_TYPE_BYTEA) &&
        (lt == ROS_TYPE_BYTEA || l->unknown || lt == ROS_TYPE_NULL) &&
        (rt == ROS_TYPE_BYTEA || r->unknown || rt == ROS_TYPE_NULL)) {
        /* bytea || bytea, an unknown literal read as bytea */
        l = plan_coerce(ctx, l, ROS_TYPE_BYTEA, false);
        r = plan_coerce(ctx, r, ROS_TYPE_BYTEA, false);
        operand = result = ROS_TYPE_BYTEA;
    } else if (op == OP_CONCAT) {
        /* text || anything and anything || text are text */
        bool ltext = lt == ROS_TYPE_TEXT || l->unknown, rtext = rt == ROS_TYPE_TEXT || r->unknown;
        if (!ltext && !rtext && lt != ROS_TYPE_NULL && rt != ROS_TYPE_NULL)
            return op_error(ctx, "||", l, r, location);
        l = plan_coerce(ctx, l, ROS_TYPE_TEXT, true);
        r = plan_coerce(ctx, r, ROS_TYPE_TEXT, true);
        operand = result = ROS_TYPE_TEXT;
    } else {
        /* unknown = unknown (NULL = NULL too) compares as text */
        if ((l->unknown || lt == ROS_TYPE_NULL) && (r->unknown || rt == ROS_TYPE_NULL))
            lt = rt = ROS_TYPE_TEXT;
        else if (l->unknown || lt == ROS_TYPE_NULL)
            lt = rt == ROS_TYPE_NULL ? ROS_TYPE_INT32 : rt;
        else if (r->unknown || rt == ROS_TYPE_NULL)
            rt = lt;
        if (ros_type_is_numeric(lt) && ros_type_is_numeric(rt))
            operand = numeric_common(lt, rt);
        else if (lt == rt && op_is_comparison(op) && lt != ROS_TYPE_FLOAT32_ARRAY)
            operand = lt;
        else
            return op_error(ctx, plan_op_name(op), l, r, location);
        if (!op_is_comparison(op) && !ros_type_is_numeric(operand))
            return op_error(ctx, plan_op_name(op), l, r, location);
        if (op == OP_MOD && !ros_type_is_integer(operand))
            return op_error(ctx, "%", l, r, location);
        l = plan_coerce(ctx, l, operand, false);
        r = plan_coerce(ctx, r, operand, false);
        result = op_is_comparison(op) ? ROS_TYPE_BOOL : operand;
    }
    if (!l || !r)
        return NULL;
    plan_expr *e = plan_expr_new(ctx->arena, PE_OP, result, 2);
    if (!e)
        return oom(ctx);
    e->u.op = op;
    e->args[0] = l;
    e->args[1] = r;
    e->location = location;
    return e;
}

static plan_expr *bind_op(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e)
{
    const char *name = e->u.op.op;
    plan_op op = OP_ADD;
    bool found = false;
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (strcmp(op_names[i].name, name) == 0) {
            op = op_names[i].op;
            found = true;
            break;
        }
    /* the operators LIKE and ILIKE stand for */
    static const char *const like_ops[] = {"~~", "!~~", "~~*", "!~~*"};
    for (int i = 0; i < 4 && e->u.op.left; i++)
        if (strcmp(name, like_ops[i]) == 0) {
            sql_expr like = *e;
            like.kind = SQL_E_LIKE;
            like.u.like.arg = e->u.op.left;
            like.u.like.pattern = e->u.op.right;
            like.u.like.escape = NULL;
            like.u.like.is_not = i % 2 == 1;
            like.u.like.ilike = i >= 2;
            return bind(ctx, scope, &like);
        }
    plan_expr *r = bind(ctx, scope, e->u.op.right);
    if (!r)
        return NULL;
    if (!e->u.op.left) {
        /* prefix operator: - or + */
        if (r->unknown)
            r = plan_coerce(ctx, r, ROS_TYPE_FLOAT64, false);
        if (!r)
            return NULL;
        if ((strcmp(name, "-") != 0 && strcmp(name, "+") != 0) || !ros_type_is_numeric(r->type))
            return op_error(ctx, name, NULL, r, e->location);
        if (strcmp(name, "+") == 0)
            return r;
        /* fold a negated integer literal so -2147483648 stays an integer */
        if (r->kind == PE_CONST && !r->u.cnst.is_null) {
            if (ros_type_is_integer(r->type))
                r->u.cnst.i = -r->u.cnst.i;
            else
                r->u.cnst.f = -r->u.cnst.f;
            if (r->type == ROS_TYPE_INT64 && r->u.cnst.i >= INT32_MIN && r->u.cnst.i <= INT32_MAX)
                r->type = ROS_TYPE_INT32;
            r->location = e->location;
            return r;
        }
        plan_expr *n = plan_expr_new(ctx->arena, PE_OP, r->type, 1);
        if (!n)
            return oom(ctx);
        n->u.op = OP_NEG;
        n->args[0] = r;
        n->location = e->location;
        return n;
    }
    plan_expr *l = bind(ctx, scope, e->u.op.left);
    if (!l)
        return NULL;
    if (!found)
        return op_error(ctx, name, l, r, e->location);
    return make_binary(ctx, op, l, r, e->location);
}

/* ---------------------------------------------------------------- */
/* Functions */

typedef struct builtin_fn {
    const char *name;
    plan_func func;
    int min_args, max_args;
    char kind; /* 't' text functions, 'n' numeric keeping type, 'f' float math, 'i' int result, 'b' bool, 'x' special */
} builtin_fn;

static const builtin_fn builtins[] = {
    {"length", FN_LENGTH, 1, 1, 'i'},       {"char_length", FN_LENGTH, 1, 1, 'i'},
    {"character_length", FN_LENGTH, 1, 1, 'i'},
    {"lower", FN_LOWER, 1, 1, 't'},         {"upper", FN_UPPER, 1, 1, 't'},
    {"substr", FN_SUBSTR, 2, 3, 't'},       {"substring", FN_SUBSTR, 2, 3, 't'},
    {"btrim", FN_BTRIM, 1, 2, 't'},         {"trim", FN_BTRIM, 1, 2, 't'},
    {"ltrim", FN_LTRIM, 1, 2, 't'},         {"rtrim", FN_RTRIM, 1, 2, 't'},
    {"replace", FN_REPLACE, 3, 3, 't'},     {"position", FN_POSITION, 2, 2, 'i'},
    {"strpos", FN_POSITION, 2, 2, 'i'},     {"concat", FN_CONCAT, 1, 100, 'x'},
    {"left", FN_LEFT, 2, 2, 't'},           {"right", FN_RIGHT, 2, 2, 't'},
    {"reverse", FN_REVERSE, 1, 1, 't'},     {"repeat", FN_REPEAT, 2, 2, 't'},
    {"starts_with", FN_STARTS_WITH, 2, 2, 'b'},
    {"abs", FN_ABS, 1, 1, 'n'},             {"floor", FN_FLOOR, 1, 1, 'f'},
    {"ceil", FN_CEIL, 1, 1, 'f'},           {"ceiling", FN_CEIL, 1, 1, 'f'},
    {"round", FN_ROUND, 1, 2, 'f'},         {"trunc", FN_TRUNC, 1, 2, 'f'},
    {"sqrt", FN_SQRT, 1, 1, 'f'},           {"power", FN_POWER, 2, 2, 'f'},
    {"pow", FN_POWER, 2, 2, 'f'},           {"exp", FN_EXP, 1, 1, 'f'},
    {"ln", FN_LN, 1, 1, 'f'},               {"mod", FN_MOD, 2, 2, 'n'},
    {"sign", FN_SIGN, 1, 1, 'f'},           {"array_length", FN_ARRAY_LENGTH, 2, 2, 'i'},
    {"cardinality", FN_ARRAY_LENGTH, 1, 1, 'i'},
};

static const builtin_fn *find_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

static plan_expr *bind_args(plan_ctx *ctx, const plan_scope *scope, const sql_list *list, plan_expr *e, int from)
{
    for (int i = 0; i < list->n; i++) {
        e->args[from + i] = bind(ctx, scope, (const sql_expr *)list->items[i]);
        if (!e->args[from + i])
            return NULL;
    }
    return e;
}

static plan_expr *fn_arg_error(plan_ctx *ctx, const sql_expr *e, plan_expr **args, int n)
{
    ros_strbuf sb = ROS_STRBUF_INIT;
    for (int i = 0; i < n; i++)
        ros_strbuf_appendf(&sb, "%s%s", i ? ", " : "", args[i]->unknown ? "unknown" : ros_type_name(args[i]->type));
    plan_error(ctx, e->location, ROS_ERR_UNDEFINED_FUNCTION, "function %s(%s) does not exist", e->u.func.name,
               ros_strbuf_cstr(&sb));
    ros_strbuf_free(&sb);
    ros_error_hint(ctx->err, "No function matches the given name and argument types. "
                             "You might need to add explicit type casts.");
    return NULL;
}

static plan_expr *bind_builtin(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e, const builtin_fn *b)
{
    int n = e->u.func.args.n;
    if (e->u.func.star || e->u.func.distinct || e->u.func.filter)
        return plan_error(ctx, e->location, ROS_ERR_SYNTAX, "%s is not an aggregate function", e->u.func.name);
    plan_expr *f = plan_expr_new(ctx->arena, PE_FUNC, ROS_TYPE_TEXT, n);
    if (!f)
        return oom(ctx);
    f->u.func = b->func;
    f->location = e->location;
    if (!bind_args(ctx, scope, &e->u.func.args, f, 0))
        return NULL;
    if (n < b->min_args || n > b->max_args)
        return fn_arg_error(ctx, e, f->args, n);
    plan_expr **a = f->args;
    switch (b->func) {
    case FN_LENGTH:
    case FN_LOWER: case FN_UPPER: case FN_REVERSE:
        if (b->func == FN_LENGTH && a[0]->type == ROS_TYPE_BYTEA && !a[0]->unknown)
            break;
        if (!(a[0] = plan_coerce(ctx, a[0], ROS_TYPE_TEXT, false)))
            return NULL;
        break;
    case FN_SUBSTR: case FN_LEFT: case FN_RIGHT: case FN_REPEAT:
        if (!(a[0] = plan_coerce(ctx, a[0], ROS_TYPE_TEXT, false)))
            return NULL;
        for (int i = 1; i < n; i++) {
            if (!a[i]->unknown && !ros_type_is_integer(a[i]->type) && a[i]->type != ROS_TYPE_NULL)
                return fn_arg_error(ctx, e, a, n);
            if (!(a[i] = plan_coerce(ctx, a[i], ROS_TYPE_INT64, false)))
                return NULL;
        }
        break;
    case FN_BTRIM: case FN_LTRIM: case FN_RTRIM: case FN_REPLACE: case FN_POSITION: case FN_STARTS_WITH:
        for (int i = 0; i < n; i++) {
            if (!a[i]->unknown && a[i]->type != ROS_TYPE_TEXT && a[i]->type != ROS_TYPE_NULL)
                return fn_arg_error(ctx, e, a, n);
            if (!(a[i] = plan_coerce(ctx, a[i], ROS_TYPE_TEXT, false)))
                return NULL;
        }
        break;
    case FN_CONCAT:
        /* concat prints its arguments with their output functions: a
         * boolean stays one (t/f), unlike its cast to text (true/false) */
        for (int i = 0; i < n; i++)
            if (a[i]->type != ROS_TYPE_BOOL && !(a[i] = plan_coerce(ctx, a[i], ROS_TYPE_TEXT, true)))
                return NULL;
        break;
    case FN_ABS: case FN_MOD: {
        ros_type t;
        for (int i = 0; i < n; i++)
            if (!a[i]->unknown && !ros_type_is_numeric(a[i]->type) && a[i]->type != ROS_TYPE_NULL)
                return fn_arg_error(ctx, e, a, n);
        if (!unify(ctx, a, n, &t, b->name, e->location))
            return NULL;
        if (t == ROS_TYPE_TEXT || t == ROS_TYPE_NULL) {
            for (int i = 0; i < n; i++)
                if (!(a[i] = plan_coerce(ctx, a[i], ROS_TYPE_FLOAT64, false)))
                    return NULL;
            t = ROS_TYPE_FLOAT64;
        }
        if (b->func == FN_MOD && !ros_type_is_integer(t))
            return fn_arg_error(ctx, e, a, n);
        f->type = t;
        return f;
    }
    case FN_FLOOR: case FN_CEIL: case FN_ROUND: case FN_TRUNC: case FN_SQRT: case FN_POWER:
    case FN_EXP: case FN_LN: case FN_SIGN:
        for (int i = 0; i < n; i++) {
            if (!a[i]->unknown && !ros_type_is_numeric(a[i]->type) && a[i]->type != ROS_TYPE_NULL)
                return fn_arg_error(ctx, e, a, n);
            ros_type want = (i == 1 && (b->func == FN_ROUND || b->func == FN_TRUNC)) ? ROS_TYPE_INT32 : ROS_TYPE_FLOAT64;
            if (want == ROS_TYPE_INT32 && !ros_type_is_integer(a[i]->type) && !a[i]->unknown)
                return fn_arg_error(ctx, e, a, n);
            if (!(a[i] = plan_coerce(ctx, a[i], want, false)))
                return NULL;
        }
        f->type = ROS_TYPE_FLOAT64;
        /* round(x) of a double rounds half to even; of what PostgreSQL
         * holds as numeric, half away from zero as round(x, 0) does */
        if (b->func == FN_ROUND && n == 1 && numeric_origin(a[0]))
            return round_numeric(ctx, a[0]);
        return f;
    case FN_ARRAY_LENGTH:
        if (a[0]->type != ROS_TYPE_FLOAT32_ARRAY)
            return fn_arg_error(ctx, e, a, n);
        if (n == 2 && !(a[1] = plan_coerce(ctx, a[1], ROS_TYPE_INT32, false)))
            return NULL;
        break;
    default:
        break;
    }
    switch (b->kind) {
    case 'i': f->type = b->func == FN_ARRAY_LENGTH || b->func == FN_POSITION || b->func == FN_LENGTH ? ROS_TYPE_INT32 : ROS_TYPE_INT64; break;
    case 'b': f->type = ROS_TYPE_BOOL; break;
    default: f->type = ROS_TYPE_TEXT; break;
    }
    return f;
}

static plan_expr *bind_agg(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e, plan_agg_kind kind)
{
    if (!ctx->aggs_allowed)
        return plan_error(ctx, e->location, ROS_ERR_GROUPING, "aggregate functions are not allowed in %s",
                          ctx->agg_context ? ctx->agg_context : "this context");
    if (ctx->in_agg_arg)
        return plan_error(ctx, e->location, ROS_ERR_GROUPING, "aggregate function calls cannot be nested");
    int n = e->u.func.args.n;
    if (e->u.func.star) {
        if (kind != AGG_COUNT)
            return plan_error(ctx, e->location, ROS_ERR_SYNTAX, "%s(*) is not supported", e->u.func.name);
        kind = AGG_COUNT_STAR;
        n = 0;
    } else if (n != 1) {
        return plan_error(ctx, e->location, ROS_ERR_UNDEFINED_FUNCTION, "function %s takes exactly one argument",
                          e->u.func.name);
    }
    plan_expr *g = plan_expr_new(ctx->arena, PE_AGG, ROS_TYPE_INT64, n);
    if (!g)
        return oom(ctx);
    g->location = e->location;
    g->u.agg.kind = kind;
    g->u.agg.distinct = e->u.func.distinct;
    g->u.agg.name = e->u.func.name;
    ctx->in_agg_arg = true;
    bool ok = bind_args(ctx, scope, &e->u.func.args, g, 0) != NULL;
    if (ok && e->u.func.filter) {
        g->u.agg.filter = plan_coerce_bool(ctx, bind(ctx, scope, e->u.func.filter), "FILTER");
        ok = g->u.agg.filter != NULL;
    }
    ctx->in_agg_arg = false;
    if (!ok)
        return NULL;
    if (n == 1 && g->args[0]->unknown && !(g->args[0] = plan_coerce(ctx, g->args[0], ROS_TYPE_TEXT, false)))
        return NULL;
    ros_type at = n ? g->args[0]->type : ROS_TYPE_NULL;
    switch (kind) {
    case AGG_COUNT_STAR:
    case AGG_COUNT:
        g->type = ROS_TYPE_INT64;
        break;
    case AGG_SUM:
        if (!ros_type_is_numeric(at))
            return fn_arg_error(ctx, e, g->args, 1);
        /* PostgreSQL: sum(smallint|integer) is bigint, sum(real) real; sum(bigint) is numeric,
         * which rosql approximates with bigint (overflow is an error) */
        g->type = ros_type_is_integer(at) ? ROS_TYPE_INT64 : at;
        break;
    case AGG_AVG:
        if (!ros_type_is_numeric(at))
            return fn_arg_error(ctx, e, g->args, 1);
        g->type = ROS_TYPE_FLOAT64;
        break;
    case AGG_MIN:
    case AGG_MAX:
        /* PostgreSQL has no min/max for boolean or bytea */
        if (at == ROS_TYPE_FLOAT32_ARRAY || at == ROS_TYPE_NULL || at == ROS_TYPE_BOOL || at == ROS_TYPE_BYTEA)
            return fn_arg_error(ctx, e, g->args, 1);
        g->type = at;
        break;
    }
    return g;
}

static plan_expr *bind_udf(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e, cat_function *cf)
{
    int n = e->u.func.args.n;
    if (e->u.func.star || e->u.func.distinct || e->u.func.filter)
        return plan_error(ctx, e->location, ROS_ERR_SYNTAX, "%s is not an aggregate function", e->u.func.name);
    plan_expr *f = plan_expr_new(ctx->arena, PE_UDF, cf->ret_type, n);
    if (!f)
        return oom(ctx);
    f->location = e->location;
    if (!bind_args(ctx, scope, &e->u.func.args, f, 0))
        return NULL;
    if (n != cf->nargs)
        return fn_arg_error(ctx, e, f->args, n);
    for (int i = 0; i < n; i++) {
        plan_expr *a = f->args[i];
        if (!a->unknown && a->type != ROS_TYPE_NULL && !cast_allowed(a->type, cf->arg_types[i], false))
            return fn_arg_error(ctx, e, f->args, n);
        if (!(f->args[i] = plan_coerce(ctx, a, cf->arg_types[i], false)))
            return NULL;
    }
    f->u.udf.name = ros_arena_strdup(ctx->arena, cf->name);
    f->u.udf.strict = cf->strict;
    f->u.udf.is_volatile = cf->volatility == 'v';
    f->u.udf.options = plan_options_dup(ctx->arena, &cf->options);
    if (cf->service) {
        /* computed by the service through a Proxy node (rewriter) */
        f->u.udf.service = ros_arena_strdup(ctx->arena, cf->service);
        f->u.udf.method = cf->method ? ros_arena_strdup(ctx->arena, cf->method) : NULL;
        if (!f->u.udf.service || !f->u.udf.options || (cf->method && !f->u.udf.method))
            return oom(ctx);
        return f;
    }
    if (!f->u.udf.options)
        return oom(ctx);
    const char *dec = cat_options_get(&cf->options, "decoupled");
    f->u.udf.decoupled = dec && strcmp(dec, "true") == 0;
    if (f->u.udf.decoupled && ctx->decoupling)
        return f; /* runs in its service: nothing is loaded into the data plane */
    if (!ctx->load_udf)
        return plan_error(ctx, e->location, ROS_ERR_INTERNAL, "no function loader");
    f->u.udf.fn = ctx->load_udf(ctx->udf_arg, cf, ctx->err);
    if (!f->u.udf.fn) {
        ros_error_position(ctx->err, char_position(ctx->sql, e->location));
        return NULL;
    }
    return f;
}

static plan_expr *bind_func(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e)
{
    const char *name = e->u.func.name;
    static const struct {
        const char *name;
        plan_agg_kind kind;
    } aggs[] = {{"count", AGG_COUNT}, {"sum", AGG_SUM}, {"avg", AGG_AVG}, {"min", AGG_MIN}, {"max", AGG_MAX}};
    for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++)
        if (strcmp(aggs[i].name, name) == 0)
            return bind_agg(ctx, scope, e, aggs[i].kind);
    const builtin_fn *b = find_builtin(name);
    if (b)
        return bind_builtin(ctx, scope, e, b);
    cat_function *cf = cat_function_get(ctx->db, name, ctx->err);
    if (!cf) {
        if (ctx->err->set)
            return NULL;
        /* bind the arguments first so the message can name their types */
        plan_expr *args[32];
        int n = e->u.func.args.n < 32 ? e->u.func.args.n : 32;
        for (int i = 0; i < n; i++) {
            args[i] = bind(ctx, scope, (const sql_expr *)e->u.func.args.items[i]);
            if (!args[i])
                return NULL;
        }
        return fn_arg_error(ctx, e, args, n);
    }
    plan_expr *r = bind_udf(ctx, scope, e, cf);
    cat_function_free(cf);
    return r;
}

/* ---------------------------------------------------------------- */
/* The recursion */

static plan_expr *bind_list_node(plan_ctx *ctx, const plan_scope *scope, plan_expr_kind kind, const sql_list *l,
                                 int location)
{
    plan_expr *e = plan_expr_new(ctx->arena, kind, ROS_TYPE_BOOL, l->n);
    if (!e)
        return oom(ctx);
    e->location = location;
    if (!bind_args(ctx, scope, l, e, 0))
        return NULL;
    return e;
}

static plan_expr *bind(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e)
{
    if (!e)
        return plan_error(ctx, -1, ROS_ERR_INTERNAL, "missing expression");
    if (ctx->depth > 500)
        return plan_error(ctx, e->location, ROS_ERR_NOT_SUPPORTED, "expression is too deeply nested");
    ctx->depth++;
    plan_expr *r = NULL;
    switch (e->kind) {
    case SQL_E_CONST:
        r = bind_const(ctx, e);
        break;
    case SQL_E_COLUMN:
        r = bind_column(ctx, scope, e);
        break;
    case SQL_E_STAR:
        r = plan_error(ctx, e->location, ROS_ERR_SYNTAX, "\"*\" is not allowed here");
        break;
    case SQL_E_OP:
        r = bind_op(ctx, scope, e);
        break;
    case SQL_E_AND:
    case SQL_E_OR: {
        r = bind_list_node(ctx, scope, e->kind == SQL_E_AND ? PE_AND : PE_OR, &e->u.list.args, e->location);
        for (int i = 0; r && i < r->nargs; i++)
            if (!(r->args[i] = plan_coerce_bool(ctx, r->args[i], e->kind == SQL_E_AND ? "AND" : "OR")))
                r = NULL;
        break;
    }
    case SQL_E_NOT: {
        plan_expr *a = plan_coerce_bool(ctx, bind(ctx, scope, e->u.not_.arg), "NOT");
        if (!a)
            break;
        r = plan_expr_new(ctx->arena, PE_NOT, ROS_TYPE_BOOL, 1);
        if (r) {
            r->args[0] = a;
            r->location = e->location;
        }
        break;
    }
    case SQL_E_NULLTEST: {
        plan_expr *a = bind(ctx, scope, e->u.nulltest.arg);
        if (!a)
            break;
        if (a->unknown)
            a = plan_coerce(ctx, a, ROS_TYPE_TEXT, false);
        r = plan_expr_new(ctx->arena, PE_ISNULL, ROS_TYPE_BOOL, 1);
        if (r) {
            r->args[0] = a;
            r->u.flag = e->u.nulltest.is_not;
            r->location = e->location;
        }
        break;
    }
    case SQL_E_BOOLTEST: {
        plan_expr *a = plan_coerce_bool(ctx, bind(ctx, scope, e->u.booltest.arg), "IS TRUE");
        if (!a)
            break;
        r = plan_expr_new(ctx->arena, PE_BOOLTEST, ROS_TYPE_BOOL, 1);
        if (r) {
            r->args[0] = a;
            r->u.test = e->u.booltest.test;
            r->location = e->location;
        }
        break;
    }
    case SQL_E_BETWEEN: {
        /* a BETWEEN lo AND hi  ==  a >= lo AND a <= hi (SYMMETRIC: either order) */
        plan_expr *a = bind(ctx, scope, e->u.between.arg);
        plan_expr *lo = a ? bind(ctx, scope, e->u.between.lo) : NULL;
        plan_expr *hi = lo ? bind(ctx, scope, e->u.between.hi) : NULL;
        if (!hi)
            break;
        plan_expr *c1 = make_binary(ctx, OP_GE, a, lo, e->location);
        plan_expr *c2 = c1 ? make_binary(ctx, OP_LE, a, hi, e->location) : NULL;
        if (!c2)
            break;
        r = plan_expr_new(ctx->arena, PE_AND, ROS_TYPE_BOOL, 2);
        if (!r)
            break;
        r->args[0] = c1;
        r->args[1] = c2;
        r->location = e->location;
        if (e->u.between.symmetric) {
            plan_expr *d1 = make_binary(ctx, OP_GE, a, hi, e->location);
            plan_expr *d2 = d1 ? make_binary(ctx, OP_LE, a, lo, e->location) : NULL;
            plan_expr *alt = d2 ? plan_expr_new(ctx->arena, PE_AND, ROS_TYPE_BOOL, 2) : NULL;
            plan_expr *or = alt ? plan_expr_new(ctx->arena, PE_OR, ROS_TYPE_BOOL, 2) : NULL;
            if (!or) {
                r = NULL;
                break;
            }
            alt->args[0] = d1;
            alt->args[1] = d2;
            or->args[0] = r;
            or->args[1] = alt;
            r = or;
        }
        if (e->u.between.is_not) {
            plan_expr *n = plan_expr_new(ctx->arena, PE_NOT, ROS_TYPE_BOOL, 1);
            if (!n) {
                r = NULL;
                break;
            }
            n->args[0] = r;
            r = n;
        }
        break;
    }
    case SQL_E_IN: {
        int n = e->u.in.values.n;
        r = plan_expr_new(ctx->arena, PE_IN, ROS_TYPE_BOOL, n + 1);
        if (!r)
            break;
        r->location = e->location;
        r->u.flag = e->u.in.is_not;
        if (!(r->args[0] = bind(ctx, scope, e->u.in.arg)) || !bind_args(ctx, scope, &e->u.in.values, r, 1)) {
            r = NULL;
            break;
        }
        /* values that cannot be compared with the argument: PostgreSQL
         * then falls back to a chain of = and reports the operator */
        plan_expr *a0 = r->args[0];
        for (int i = 1; i <= n; i++) {
            plan_expr *v = r->args[i];
            if (a0->unknown || a0->type == ROS_TYPE_NULL || v->unknown || v->type == ROS_TYPE_NULL ||
                a0->type == v->type || (ros_type_is_numeric(a0->type) && ros_type_is_numeric(v->type)))
                continue;
            r = op_error(ctx, "=", a0, v, e->location);
            break;
        }
        ros_type t;
        if (!r)
            break;
        if (!unify(ctx, r->args, n + 1, &t, "IN", e->location))
            r = NULL;
        else if (t == ROS_TYPE_FLOAT32_ARRAY)
            r = op_error(ctx, "=", r->args[0], r->args[0], e->location);
        break;
    }
    case SQL_E_LIKE: {
        int n = e->u.like.escape ? 3 : 2;
        r = plan_expr_new(ctx->arena, PE_LIKE, ROS_TYPE_BOOL, n);
        if (!r)
            break;
        r->location = e->location;
        r->u.like.ilike = e->u.like.ilike;
        r->u.like.is_not = e->u.like.is_not;
        r->args[0] = bind(ctx, scope, e->u.like.arg);
        r->args[1] = r->args[0] ? bind(ctx, scope, e->u.like.pattern) : NULL;
        if (n == 3 && r->args[1])
            r->args[2] = bind(ctx, scope, e->u.like.escape);
        for (int i = 0; i < n && r; i++) {
            if (!r->args[i]) {
                r = NULL;
                break;
            }
            if (!r->args[i]->unknown && r->args[i]->type != ROS_TYPE_TEXT && r->args[i]->type != ROS_TYPE_NULL) {
                r = op_error(ctx, e->u.like.ilike ? "~~*" : "~~", r->args[0], r->args[1] ? r->args[1] : r->args[0],
                             e->location);
                break;
            }
            if (!(r->args[i] = plan_coerce(ctx, r->args[i], ROS_TYPE_TEXT, false)))
                r = NULL;
        }
        break;
    }
    case SQL_E_CASE: {
        int pairs = e->u.case_.whens.n;
        bool has_else = e->u.case_.else_ != NULL;
        r = plan_expr_new(ctx->arena, PE_CASE, ROS_TYPE_NULL, 2 * pairs + (has_else ? 1 : 0));
        if (!r)
            break;
        r->location = e->location;
        r->u.flag = has_else;
        plan_expr *arg = e->u.case_.arg ? bind(ctx, scope, e->u.case_.arg) : NULL;
        if (e->u.case_.arg && !arg) {
            r = NULL;
            break;
        }
        int nres = pairs + (has_else ? 1 : 0);
        plan_expr **res = ROS_ARENA_ARRAY(ctx->arena, plan_expr *, nres ? nres : 1);
        for (int i = 0; r && i < pairs; i++) {
            const sql_when *w = e->u.case_.whens.items[i];
            plan_expr *c = bind(ctx, scope, w->cond);
            if (c && arg)
                c = make_binary(ctx, OP_EQ, arg, c, w->cond->location);
            else
                c = plan_coerce_bool(ctx, c, "CASE/WHEN");
            res[i] = c ? bind(ctx, scope, w->result) : NULL;
            if (!res[i]) {
                r = NULL;
                break;
            }
            r->args[2 * i] = c;
        }
        if (r && has_else && !(res[pairs] = bind(ctx, scope, e->u.case_.else_)))
            r = NULL;
        ros_type t;
        if (r && !unify(ctx, res, nres, &t, "CASE", e->location))
            r = NULL;
        if (!r)
            break;
        for (int i = 0; i < pairs; i++)
            r->args[2 * i + 1] = res[i];
        if (has_else)
            r->args[2 * pairs] = res[pairs];
        r->type = t == ROS_TYPE_NULL ? ROS_TYPE_TEXT : t;
        if (t == ROS_TYPE_NULL)
            for (int i = 0; i < nres; i++)
                res[i] = plan_coerce(ctx, res[i], ROS_TYPE_TEXT, false);
        break;
    }
    case SQL_E_COALESCE:
    case SQL_E_MINMAX: {
        const sql_list *l = e->kind == SQL_E_COALESCE ? &e->u.list.args : &e->u.minmax.args;
        r = bind_list_node(ctx, scope, e->kind == SQL_E_COALESCE ? PE_COALESCE : PE_MINMAX, l, e->location);
        ros_type t;
        if (r && !unify(ctx, r->args, r->nargs, &t, e->kind == SQL_E_COALESCE ? "COALESCE" : "GREATEST/LEAST",
                        e->location))
            r = NULL;
        if (r) {
            r->type = t == ROS_TYPE_NULL ? ROS_TYPE_TEXT : t;
            if (e->kind == SQL_E_MINMAX)
                r->u.flag = e->u.minmax.greatest;
        }
        break;
    }
    case SQL_E_NULLIF: {
        plan_expr *a = bind(ctx, scope, e->u.nullif.left);
        plan_expr *b = a ? bind(ctx, scope, e->u.nullif.right) : NULL;
        if (!b)
            break;
        /* the comparison decides the operand types; the result has the first's */
        plan_expr *cmp = make_binary(ctx, OP_EQ, a, b, e->location);
        if (!cmp)
            break;
        r = plan_expr_new(ctx->arena, PE_NULLIF, cmp->args[0]->type, 2);
        if (r) {
            r->args[0] = cmp->args[0];
            r->args[1] = cmp->args[1];
            r->location = e->location;
        }
        break;
    }
    case SQL_E_CAST: {
        plan_expr *a = bind(ctx, scope, e->u.cast.arg);
        if (!a)
            break;
        r = plan_coerce(ctx, a, e->u.cast.type.type, true);
        if (r && r == a && numeric_origin(a)) {
            /* 2.5::float8 is a double: a cast node of its own, so it no
             * longer counts as numeric (see numeric_origin) */
            r = plan_expr_new(ctx->arena, PE_CAST, a->type, 1);
            if (!r) {
                oom(ctx);
                break;
            }
            r->args[0] = a;
            r->location = e->location;
        }
        break;
    }
    case SQL_E_FUNC:
        r = bind_func(ctx, scope, e);
        break;
    case SQL_E_ARRAY: {
        r = bind_list_node(ctx, scope, PE_ARRAY, &e->u.list.args, e->location);
        for (int i = 0; r && i < r->nargs; i++) {
            plan_expr *a = r->args[i];
            if (!a->unknown && !ros_type_is_numeric(a->type) && a->type != ROS_TYPE_NULL) {
                r = plan_error(ctx, a->location, ROS_ERR_NOT_SUPPORTED, "arrays of type %s are not supported",
                               ros_type_name(a->type));
                break;
            }
            if (!(r->args[i] = plan_coerce(ctx, a, ROS_TYPE_FLOAT32, true)))
                r = NULL;
        }
        if (r)
            r->type = ROS_TYPE_FLOAT32_ARRAY;
        break;
    }
    case SQL_E_SUBSCRIPT: {
        plan_expr *a = bind(ctx, scope, e->u.subscript.arg);
        plan_expr *i = a ? bind(ctx, scope, e->u.subscript.index) : NULL;
        if (!i)
            break;
        if (a->type != ROS_TYPE_FLOAT32_ARRAY) {
            r = plan_error(ctx, e->location, ROS_ERR_DATATYPE_MISMATCH,
                           "cannot subscript type %s because it does not support subscripting", ros_type_name(a->type));
            break;
        }
        if (!(i = plan_coerce(ctx, i, ROS_TYPE_INT32, false)))
            break;
        r = plan_expr_new(ctx->arena, PE_SUBSCRIPT, ROS_TYPE_FLOAT32, 2);
        if (r) {
            r->args[0] = a;
            r->args[1] = i;
            r->location = e->location;
        }
        break;
    }
    }
    ctx->depth--;
    if (!r && !ctx->err->set)
        ros_error_oom(ctx->err);
    return r;
}

plan_expr *plan_bind_expr(plan_ctx *ctx, const plan_scope *scope, const sql_expr *e)
{
    return bind(ctx, scope, e);
}

static bool has_agg_walker(plan_expr *e, void *arg)
{
    (void)arg;
    return e->kind == PE_AGG;
}

bool plan_has_agg(plan_expr *e)
{
    return plan_expr_walk(e, has_agg_walker, NULL);
}
