/*
 * pg_convert.c
 *    Standard statements: parse with libpg_query, read its protobuf parse
 *    tree with libprotobuf-c and convert it into rosql's AST (ast.h).
 *
 * The converter is deliberately strict.  A node kind or clause it does not
 * translate is an error (ROS_ERR_NOT_SUPPORTED, `... is not supported`,
 * positioned at the construct), never silently dropped: a query that loses
 * its WHERE or its window would return wrong answers.  Byte offsets from the
 * protobuf `location` fields are copied into every node; the conversion to
 * character positions happens only when an error is reported.
 *
 * The protobuf tree is freed before returning; everything the AST holds is
 * copied into the caller's arena.
 */
#include "sql_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

/* Deeper expression trees than this are refused rather than risk the stack
 * (see check_nesting). */
#define CONV_MAX_DEPTH 1000

/* State of one conversion. */
typedef struct conv {
    ros_arena *arena;
    ros_error *err;
    const char *text;        /* the statement text locations refer to */
    const sql_tokens *toks;  /* its tokens, for the few facts the tree lacks */
    int depth;               /* expression recursion depth */
} conv;

typedef PgQuery__Node Node;

static sql_stmt *conv_stmt(conv *c, const Node *n);
static sql_select *conv_select(conv *c, const PgQuery__SelectStmt *s);
static sql_expr *conv_expr(conv *c, const Node *n);
static int conv_expr_opt(conv *c, const Node *n, sql_expr **out);
static int conv_expr_list(conv *c, Node *const *items, size_t n, sql_list *out);
static int conv_typename(conv *c, const PgQuery__TypeName *tn, sql_typename *out);
static int conv_options(conv *c, Node *const *items, size_t n, sql_list *out);
static const char *conv_relname(conv *c, const PgQuery__RangeVar *rv);
static int not_supported(conv *c, int location, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int node_location(const Node *n);
static int top_word_location(conv *c, const char *word);
static int push(conv *c, sql_list *list, void *item);

#define NEW(c, T) ((T *)conv_alloc((c), sizeof(T)))

static void *conv_alloc(conv *c, size_t n)
{
    void *p = ros_arena_alloc(c->arena, n);
    if (!p)
        ros_error_oom(c->err);
    return p;
}

static char *conv_strdup(conv *c, const char *s)
{
    char *p = ros_arena_strdup(c->arena, s ? s : "");
    if (!p)
        ros_error_oom(c->err);
    return p;
}

/* ------------------------------------------------------------------ */
/* Depth guard */

/* Tokens that may add a level to the parse tree within one list item. */
static bool nests(const sql_tokens *t, int i)
{
    static const char *const words[] = {"not", "is", "case", "between", "like", "ilike", "similar",
                                        "in", "collate", "at", "isnull", "notnull", "escape", NULL};
    const sql_token *tok = &t->toks[i];
    if (tok->cls == SQL_TOK_OTHER)
        return true; /* operators, :: */
    if (tok->cls == SQL_TOK_PUNCT)
        return !strchr(",;.()[]", t->text[tok->start]);
    for (int k = 0; words[k]; k++)
        if (sql_tok_is_word(t, i, words[k]))
            return true;
    return false;
}

/*
 * libpg_query builds its protobuf output, and protobuf-c reads it back, by
 * recursion on the C stack; a few thousand levels of `1 + 1 + ...` overflow
 * it inside the library, where no check of ours can run.  So before parsing
 * we bound the tree's depth from the tokens: each open parenthesis or
 * bracket is a level, and so is each operator-like token of the current
 * list item (a comma, AND or OR starts a new item: PostgreSQL keeps those as
 * flat lists).  Over CONV_MAX_DEPTH the statement is refused.
 */
static int check_nesting(const char *text, const sql_tokens *t, ros_error *err)
{
    int *count = malloc(sizeof(int) * (size_t)(t->n + 1));
    if (!count)
        return ros_error_oom(err);
    int level = 0, sum = 0, rc = 0;
    count[0] = 0;
    for (int i = 0; i < t->n; i++) {
        if (sql_tok_is_punct(t, i, '(') || sql_tok_is_punct(t, i, '[')) {
            count[++level] = 0;
        } else if (sql_tok_is_punct(t, i, ')') || sql_tok_is_punct(t, i, ']')) {
            if (level > 0) /* unbalanced: the parser reports it */
                sum -= count[level--];
        } else if (sql_tok_is_punct(t, i, ',') || sql_tok_is_word(t, i, "and") || sql_tok_is_word(t, i, "or")) {
            sum -= count[level];
            count[level] = 0;
        } else if (nests(t, i)) {
            count[level]++;
            sum++;
        }
        if (level + sum > CONV_MAX_DEPTH) {
            rc = sql_error_at(err, text, t->toks[i].start, ROS_ERR_NOT_SUPPORTED,
                              "expression is too deeply nested");
            break;
        }
    }
    free(count);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Entry point */

sql_stmt *sql_pg_parse(const char *text, const sql_tokens *toks, ros_arena *arena,
                       ros_error *err)
{
    if (check_nesting(text, toks, err) < 0)
        return NULL;
    PgQueryProtobufParseResult res = pg_query_parse_protobuf(text);
    if (res.error) {
        ros_error_set(err, ROS_ERR_SYNTAX, "%s", res.error->message);
        ros_error_position(err, res.error->cursorpos);
        pg_query_free_protobuf_parse_result(res);
        return NULL;
    }
    PgQuery__ParseResult *tree =
        pg_query__parse_result__unpack(NULL, res.parse_tree.len, (const uint8_t *)res.parse_tree.data);
    pg_query_free_protobuf_parse_result(res);
    if (!tree)
        return ros_error_set(err, ROS_ERR_INTERNAL, "could not read the parser's output"), NULL;

    conv c = {arena, err, text, toks, 0};
    sql_stmt *stmt = NULL;
    if (tree->n_stmts == 0) {
        ros_error_set(err, ROS_ERR_SYNTAX, "empty statement");
    } else if (tree->n_stmts > 1) {
        int i = sql_tok_at(toks, tree->stmts[1]->stmt_location); /* skip the blanks */
        sql_error_at(err, text, i < toks->n ? toks->toks[i].start : tree->stmts[1]->stmt_location,
                     ROS_ERR_SYNTAX, "only one statement can be parsed at a time");
    } else {
        stmt = conv_stmt(&c, tree->stmts[0]->stmt);
        if (stmt)
            stmt->location = 0;
    }
    pg_query__parse_result__free_unpacked(tree, NULL);
    return stmt;
}

/* ------------------------------------------------------------------ */
/* Errors and small helpers */

static int not_supported(conv *c, int location, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ros_error_setv(c->err, ROS_ERR_NOT_SUPPORTED, fmt, ap);
    va_end(ap);
    if (location >= 0)
        ros_error_position(c->err, sql_char_position(c->text, location));
    return -1;
}

static int push(conv *c, sql_list *list, void *item)
{
    int before = list->n;
    sql_list_push(c->arena, list, item);
    return list->n > before ? 0 : ros_error_oom(c->err);
}

/*
 * The location of any node: its own `location` field when it has one, else
 * the smallest location below it (JoinExpr, RangeSubselect and a few others
 * record none).  Found through protobuf-c's reflection so that it covers
 * every node kind.  Returns -1 when nothing below has a location.
 */
static int message_location(const ProtobufCMessage *m, int depth)
{
    if (!m || depth > 64)
        return -1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_INT32 && strcmp(f->name, "location") == 0) {
            int loc = *(const int32_t *)(base + f->offset);
            if (loc >= 0)
                return loc;
        }
    }
    int best = -1;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t cnt = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < cnt; k++) {
                int loc = message_location(arr[k], depth + 1);
                if (loc >= 0 && (best < 0 || loc < best))
                    best = loc;
            }
        } else {
            int loc = message_location(*(ProtobufCMessage *const *)(base + f->offset), depth + 1);
            if (loc >= 0 && (best < 0 || loc < best))
                best = loc;
        }
    }
    return best;
}

static int node_location(const Node *n)
{
    return message_location((const ProtobufCMessage *)n, 0);
}

/* Byte offset of the first occurrence of word outside parentheses, or -1:
 * for clauses whose nodes carry no location (FOR UPDATE, UNION). */
static int top_word_location(conv *c, const char *word)
{
    int depth = 0;
    for (int i = 0; i < c->toks->n; i++) {
        if (sql_tok_is_punct(c->toks, i, '('))
            depth++;
        else if (sql_tok_is_punct(c->toks, i, ')'))
            depth--;
        else if (depth == 0 && sql_tok_is_word(c->toks, i, word))
            return c->toks->toks[i].start;
    }
    return -1;
}

/* The string of a String node, or NULL when n is not one. */
static const char *node_str(const Node *n)
{
    return n && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : NULL;
}

/* A human name for a node kind, for `... is not supported`. */
static const char *node_kind_name(const Node *n)
{
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SUB_LINK: return "subqueries are";
    case PG_QUERY__NODE__NODE_JOIN_EXPR: return "JOIN is";
    case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: return "subqueries in FROM are";
    case PG_QUERY__NODE__NODE_RANGE_FUNCTION: return "functions in FROM are";
    case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE: return "TABLESAMPLE is";
    case PG_QUERY__NODE__NODE_PARAM_REF: return "parameters are";
    case PG_QUERY__NODE__NODE_COLLATE_CLAUSE: return "COLLATE is";
    case PG_QUERY__NODE__NODE_ROW_EXPR: return "row constructors are";
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION: return "SQL value functions (CURRENT_DATE, ...) are";
    case PG_QUERY__NODE__NODE_GROUPING_SET: return "GROUPING SETS, ROLLUP and CUBE are";
    case PG_QUERY__NODE__NODE_GROUPING_FUNC: return "GROUPING is";
    case PG_QUERY__NODE__NODE_NAMED_ARG_EXPR: return "named arguments are";
    case PG_QUERY__NODE__NODE_SET_TO_DEFAULT: return "DEFAULT is";
    case PG_QUERY__NODE__NODE_XML_EXPR:
    case PG_QUERY__NODE__NODE_XML_SERIALIZE: return "XML expressions are";
    case PG_QUERY__NODE__NODE_MULTI_ASSIGN_REF: return "multiple assignment is";
    default: return NULL;
    }
}

static sql_expr *unsupported_node(conv *c, const Node *n)
{
    const char *what = node_kind_name(n);
    if (what) {
        not_supported(c, node_location(n), "%s not supported", what);
    } else {
        const ProtobufCMessage *m = NULL;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor, n->node_case);
        if (f)
            m = *(ProtobufCMessage *const *)((const char *)n + f->offset);
        not_supported(c, node_location(n), "expression of type %s is not supported",
                      m ? m->descriptor->short_name : "unknown");
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Expressions */

/* An integer literal that does not fit in 32 bits arrives as a Float node
 * holding its text: keep it an integer when it fits in 64. */
static bool parse_int64(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static sql_expr *conv_const(conv *c, const PgQuery__AConst *ac)
{
    sql_expr *e = sql_expr_new(c->arena, SQL_E_CONST, ac->location);
    if (!e)
        return ros_error_oom(c->err), NULL;
    if (ac->isnull) {
        e->u.cnst.kind = SQL_C_NULL;
        return e;
    }
    switch (ac->val_case) {
    case PG_QUERY__A__CONST__VAL_IVAL:
        e->u.cnst.kind = SQL_C_INT;
        e->u.cnst.i = ac->ival->ival;
        return e;
    case PG_QUERY__A__CONST__VAL_FVAL:
        if (parse_int64(ac->fval->fval, &e->u.cnst.i)) {
            e->u.cnst.kind = SQL_C_INT;
        } else {
            e->u.cnst.kind = SQL_C_FLOAT;
            if (!(e->u.cnst.str = conv_strdup(c, ac->fval->fval)))
                return NULL;
        }
        return e;
    case PG_QUERY__A__CONST__VAL_BOOLVAL:
        e->u.cnst.kind = SQL_C_BOOL;
        e->u.cnst.b = ac->boolval->boolval;
        return e;
    case PG_QUERY__A__CONST__VAL_SVAL:
        e->u.cnst.kind = SQL_C_STRING;
        if (!(e->u.cnst.str = conv_strdup(c, ac->sval->sval)))
            return NULL;
        return e;
    default:
        not_supported(c, ac->location, "bit string constants are not supported");
        return NULL;
    }
}

static sql_expr *conv_column_ref(conv *c, const PgQuery__ColumnRef *cr)
{
    size_t n = cr->n_fields;
    bool star = n > 0 && cr->fields[n - 1]->node_case == PG_QUERY__NODE__NODE_A_STAR;
    for (size_t i = 0; i + (star ? 1 : 0) < n; i++)
        if (!node_str(cr->fields[i]))
            return not_supported(c, cr->location, "this column reference is not supported"), NULL;
    if (n > 2)
        return not_supported(c, cr->location, "schema-qualified column references are not supported"), NULL;

    sql_expr *e = sql_expr_new(c->arena, star ? SQL_E_STAR : SQL_E_COLUMN, cr->location);
    if (!e)
        return ros_error_oom(c->err), NULL;
    if (star) {
        if (n == 2 && !(e->u.star.qualifier = conv_strdup(c, node_str(cr->fields[0]))))
            return NULL;
        return e;
    }
    if (n == 2 && !(e->u.column.qualifier = conv_strdup(c, node_str(cr->fields[0]))))
        return NULL;
    if (!(e->u.column.name = conv_strdup(c, node_str(cr->fields[n - 1]))))
        return NULL;
    return e;
}

/* The operator's name: the last element of a possibly qualified name
 * (OPERATOR(pg_catalog.+) is just +). */
static const char *op_name(const PgQuery__AExpr *a)
{
    return a->n_name ? node_str(a->name[a->n_name - 1]) : NULL;
}

static bool is_like_escape(const Node *n)
{
    if (!n || n->node_case != PG_QUERY__NODE__NODE_FUNC_CALL)
        return false;
    const PgQuery__FuncCall *f = n->func_call;
    const char *name = f->n_funcname ? node_str(f->funcname[f->n_funcname - 1]) : NULL;
    return name && strcmp(name, "like_escape") == 0 && f->n_args == 2;
}

static sql_expr *conv_a_expr(conv *c, const PgQuery__AExpr *a)
{
    const char *op = op_name(a);
    sql_expr *e = NULL;
    switch (a->kind) {
    case PG_QUERY__A__EXPR__KIND__AEXPR_OP:
        if (!op)
            break;
        if (!(e = sql_expr_new(c->arena, SQL_E_OP, a->location)) || !(e->u.op.op = conv_strdup(c, op)))
            return ros_error_oom(c->err), NULL;
        if (conv_expr_opt(c, a->lexpr, &e->u.op.left) < 0 || !(e->u.op.right = conv_expr(c, a->rexpr)))
            return NULL;
        return e;
    case PG_QUERY__A__EXPR__KIND__AEXPR_NULLIF:
        if (!(e = sql_expr_new(c->arena, SQL_E_NULLIF, a->location)))
            return ros_error_oom(c->err), NULL;
        if (!(e->u.nullif.left = conv_expr(c, a->lexpr)) || !(e->u.nullif.right = conv_expr(c, a->rexpr)))
            return NULL;
        return e;
    case PG_QUERY__A__EXPR__KIND__AEXPR_IN:
        if (!a->rexpr || a->rexpr->node_case != PG_QUERY__NODE__NODE_LIST)
            break;
        if (!(e = sql_expr_new(c->arena, SQL_E_IN, a->location)))
            return ros_error_oom(c->err), NULL;
        e->u.in.is_not = op && strcmp(op, "<>") == 0;
        if (!(e->u.in.arg = conv_expr(c, a->lexpr)) ||
            conv_expr_list(c, a->rexpr->list->items, a->rexpr->list->n_items, &e->u.in.values) < 0)
            return NULL;
        return e;
    case PG_QUERY__A__EXPR__KIND__AEXPR_LIKE:
    case PG_QUERY__A__EXPR__KIND__AEXPR_ILIKE: {
        if (!(e = sql_expr_new(c->arena, SQL_E_LIKE, a->location)))
            return ros_error_oom(c->err), NULL;
        e->u.like.ilike = a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_ILIKE;
        e->u.like.is_not = op && op[0] == '!';
        if (!(e->u.like.arg = conv_expr(c, a->lexpr)))
            return NULL;
        const Node *pat = a->rexpr;
        if (is_like_escape(pat)) {
            /* LIKE p ESCAPE x arrives as LIKE like_escape(p, x) */
            if (!(e->u.like.pattern = conv_expr(c, pat->func_call->args[0])) ||
                !(e->u.like.escape = conv_expr(c, pat->func_call->args[1])))
                return NULL;
        } else if (!(e->u.like.pattern = conv_expr(c, pat))) {
            return NULL;
        }
        return e;
    }
    case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN:
    case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN:
    case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM:
    case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM:
        if (!a->rexpr || a->rexpr->node_case != PG_QUERY__NODE__NODE_LIST || a->rexpr->list->n_items != 2)
            break;
        if (!(e = sql_expr_new(c->arena, SQL_E_BETWEEN, a->location)))
            return ros_error_oom(c->err), NULL;
        e->u.between.is_not = a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN ||
                              a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM;
        e->u.between.symmetric = a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM ||
                                 a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM;
        if (!(e->u.between.arg = conv_expr(c, a->lexpr)) ||
            !(e->u.between.lo = conv_expr(c, a->rexpr->list->items[0])) ||
            !(e->u.between.hi = conv_expr(c, a->rexpr->list->items[1])))
            return NULL;
        return e;
    case PG_QUERY__A__EXPR__KIND__AEXPR_DISTINCT:
    case PG_QUERY__A__EXPR__KIND__AEXPR_NOT_DISTINCT:
        return not_supported(c, a->location, "IS DISTINCT FROM is not supported"), NULL;
    case PG_QUERY__A__EXPR__KIND__AEXPR_OP_ANY:
    case PG_QUERY__A__EXPR__KIND__AEXPR_OP_ALL:
        return not_supported(c, a->location, "ANY/ALL (array) is not supported"), NULL;
    case PG_QUERY__A__EXPR__KIND__AEXPR_SIMILAR:
        return not_supported(c, a->location, "SIMILAR TO is not supported"), NULL;
    default:
        break;
    }
    if (a->rexpr && a->rexpr->node_case == PG_QUERY__NODE__NODE_SUB_LINK)
        return unsupported_node(c, a->rexpr);
    return not_supported(c, a->location, "this operator expression is not supported"), NULL;
}

/* AND/OR: nested lists of the same kind are flattened. */
static sql_expr *conv_bool_expr(conv *c, const PgQuery__BoolExpr *b)
{
    if (b->boolop == PG_QUERY__BOOL_EXPR_TYPE__NOT_EXPR) {
        sql_expr *e = sql_expr_new(c->arena, SQL_E_NOT, b->location);
        if (!e)
            return ros_error_oom(c->err), NULL;
        if (b->n_args != 1)
            return not_supported(c, b->location, "malformed NOT expression"), NULL;
        return (e->u.not_.arg = conv_expr(c, b->args[0])) ? e : NULL;
    }
    sql_expr_kind kind = b->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR ? SQL_E_AND : SQL_E_OR;
    sql_expr *e = sql_expr_new(c->arena, kind, b->location);
    if (!e)
        return ros_error_oom(c->err), NULL;
    for (size_t i = 0; i < b->n_args; i++) {
        sql_expr *arg = conv_expr(c, b->args[i]);
        if (!arg)
            return NULL;
        if (arg->kind == kind) {
            for (int k = 0; k < arg->u.list.args.n; k++)
                if (push(c, &e->u.list.args, arg->u.list.args.items[k]) < 0)
                    return NULL;
        } else if (push(c, &e->u.list.args, arg) < 0) {
            return NULL;
        }
    }
    return e;
}

static sql_expr *conv_case(conv *c, const PgQuery__CaseExpr *ce)
{
    sql_expr *e = sql_expr_new(c->arena, SQL_E_CASE, ce->location);
    if (!e)
        return ros_error_oom(c->err), NULL;
    if (conv_expr_opt(c, ce->arg, &e->u.case_.arg) < 0)
        return NULL;
    for (size_t i = 0; i < ce->n_args; i++) {
        const Node *n = ce->args[i];
        if (n->node_case != PG_QUERY__NODE__NODE_CASE_WHEN)
            return unsupported_node(c, n);
        sql_when *w = NEW(c, sql_when);
        if (!w || !(w->cond = conv_expr(c, n->case_when->expr)) ||
            !(w->result = conv_expr(c, n->case_when->result)) || push(c, &e->u.case_.whens, w) < 0)
            return NULL;
    }
    if (conv_expr_opt(c, ce->defresult, &e->u.case_.else_) < 0)
        return NULL;
    return e;
}

/* Function name without the pg_catalog schema, lower-cased; NULL with err
 * set for other qualified names. */
static const char *func_name(conv *c, Node *const *names, size_t n, int location)
{
    size_t first = 0;
    if (n >= 2 && node_str(names[0]) && strcmp(node_str(names[0]), "pg_catalog") == 0)
        first = 1;
    if (n - first != 1 || !node_str(names[first]))
        return not_supported(c, location, "schema-qualified function names are not supported"), NULL;
    char *s = conv_strdup(c, node_str(names[first]));
    return sql_lower(s);
}

static sql_expr *conv_func_call(conv *c, const PgQuery__FuncCall *f)
{
    if (f->over)
        return not_supported(c, f->over->location >= 0 ? f->over->location : f->location,
                             "window functions are not supported"), NULL;
    if (f->agg_within_group)
        return not_supported(c, f->location, "WITHIN GROUP is not supported"), NULL;
    if (f->n_agg_order)
        return not_supported(c, node_location(f->agg_order[0]),
                             "ORDER BY in aggregate calls is not supported"), NULL;
    if (f->func_variadic)
        return not_supported(c, f->location, "VARIADIC is not supported"), NULL;

    sql_expr *e = sql_expr_new(c->arena, SQL_E_FUNC, f->location);
    if (!e)
        return ros_error_oom(c->err), NULL;
    if (!(e->u.func.name = func_name(c, f->funcname, f->n_funcname, f->location)))
        return NULL;
    e->u.func.star = f->agg_star;
    e->u.func.distinct = f->agg_distinct;
    if (conv_expr_list(c, f->args, f->n_args, &e->u.func.args) < 0 ||
        conv_expr_opt(c, f->agg_filter, &e->u.func.filter) < 0)
        return NULL;
    return e;
}

static sql_expr *conv_indirection(conv *c, const PgQuery__AIndirection *ind)
{
    sql_expr *e = conv_expr(c, ind->arg);
    if (!e)
        return NULL;
    for (size_t i = 0; i < ind->n_indirection; i++) {
        const Node *n = ind->indirection[i];
        if (n->node_case != PG_QUERY__NODE__NODE_A_INDICES)
            return not_supported(c, e->location, "field selection is not supported"), NULL;
        const PgQuery__AIndices *ix = n->a_indices;
        if (ix->is_slice || !ix->uidx)
            return not_supported(c, node_location(n) >= 0 ? node_location(n) : e->location,
                                 "array slices are not supported"), NULL;
        sql_expr *s = sql_expr_new(c->arena, SQL_E_SUBSCRIPT, e->location);
        if (!s)
            return ros_error_oom(c->err), NULL;
        s->u.subscript.arg = e;
        if (!(s->u.subscript.index = conv_expr(c, ix->uidx)))
            return NULL;
        e = s;
    }
    return e;
}

static sql_expr *conv_expr_inner(conv *c, const Node *n)
{
    sql_expr *e;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_A_CONST:
        return conv_const(c, n->a_const);
    case PG_QUERY__NODE__NODE_COLUMN_REF:
        return conv_column_ref(c, n->column_ref);
    case PG_QUERY__NODE__NODE_A_EXPR:
        return conv_a_expr(c, n->a_expr);
    case PG_QUERY__NODE__NODE_BOOL_EXPR:
        return conv_bool_expr(c, n->bool_expr);
    case PG_QUERY__NODE__NODE_NULL_TEST:
        if (!(e = sql_expr_new(c->arena, SQL_E_NULLTEST, n->null_test->location)))
            return ros_error_oom(c->err), NULL;
        e->u.nulltest.is_not = n->null_test->nulltesttype == PG_QUERY__NULL_TEST_TYPE__IS_NOT_NULL;
        return (e->u.nulltest.arg = conv_expr(c, n->null_test->arg)) ? e : NULL;
    case PG_QUERY__NODE__NODE_BOOLEAN_TEST: {
        static const sql_booltest_kind map[] = {
            [PG_QUERY__BOOL_TEST_TYPE__IS_TRUE] = SQL_BT_IS_TRUE,
            [PG_QUERY__BOOL_TEST_TYPE__IS_NOT_TRUE] = SQL_BT_IS_NOT_TRUE,
            [PG_QUERY__BOOL_TEST_TYPE__IS_FALSE] = SQL_BT_IS_FALSE,
            [PG_QUERY__BOOL_TEST_TYPE__IS_NOT_FALSE] = SQL_BT_IS_NOT_FALSE,
            [PG_QUERY__BOOL_TEST_TYPE__IS_UNKNOWN] = SQL_BT_IS_UNKNOWN,
            [PG_QUERY__BOOL_TEST_TYPE__IS_NOT_UNKNOWN] = SQL_BT_IS_NOT_UNKNOWN,
        };
        const PgQuery__BooleanTest *bt = n->boolean_test;
        if (bt->booltesttype < PG_QUERY__BOOL_TEST_TYPE__IS_TRUE ||
            bt->booltesttype > PG_QUERY__BOOL_TEST_TYPE__IS_NOT_UNKNOWN)
            return unsupported_node(c, n);
        if (!(e = sql_expr_new(c->arena, SQL_E_BOOLTEST, bt->location)))
            return ros_error_oom(c->err), NULL;
        e->u.booltest.test = map[bt->booltesttype];
        return (e->u.booltest.arg = conv_expr(c, bt->arg)) ? e : NULL;
    }
    case PG_QUERY__NODE__NODE_CASE_EXPR:
        return conv_case(c, n->case_expr);
    case PG_QUERY__NODE__NODE_COALESCE_EXPR:
        if (!(e = sql_expr_new(c->arena, SQL_E_COALESCE, n->coalesce_expr->location)))
            return ros_error_oom(c->err), NULL;
        return conv_expr_list(c, n->coalesce_expr->args, n->coalesce_expr->n_args, &e->u.list.args) < 0
                   ? NULL : e;
    case PG_QUERY__NODE__NODE_MIN_MAX_EXPR:
        if (!(e = sql_expr_new(c->arena, SQL_E_MINMAX, n->min_max_expr->location)))
            return ros_error_oom(c->err), NULL;
        e->u.minmax.greatest = n->min_max_expr->op == PG_QUERY__MIN_MAX_OP__IS_GREATEST;
        return conv_expr_list(c, n->min_max_expr->args, n->min_max_expr->n_args, &e->u.minmax.args) < 0
                   ? NULL : e;
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        if (!(e = sql_expr_new(c->arena, SQL_E_CAST, n->type_cast->location)))
            return ros_error_oom(c->err), NULL;
        if (!(e->u.cast.arg = conv_expr(c, n->type_cast->arg)) ||
            conv_typename(c, n->type_cast->type_name, &e->u.cast.type) < 0)
            return NULL;
        return e;
    case PG_QUERY__NODE__NODE_FUNC_CALL:
        return conv_func_call(c, n->func_call);
    case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
        if (!(e = sql_expr_new(c->arena, SQL_E_ARRAY, n->a_array_expr->location)))
            return ros_error_oom(c->err), NULL;
        return conv_expr_list(c, n->a_array_expr->elements, n->a_array_expr->n_elements,
                              &e->u.list.args) < 0 ? NULL : e;
    case PG_QUERY__NODE__NODE_A_INDIRECTION:
        return conv_indirection(c, n->a_indirection);
    default:
        return unsupported_node(c, n);
    }
}

static sql_expr *conv_expr(conv *c, const Node *n)
{
    if (!n) {
        ros_error_set(c->err, ROS_ERR_INTERNAL, "missing expression in parse tree");
        return NULL;
    }
    if (++c->depth > CONV_MAX_DEPTH) {
        c->depth--;
        not_supported(c, node_location(n), "expression is too deeply nested");
        return NULL;
    }
    sql_expr *e = conv_expr_inner(c, n);
    c->depth--;
    return e;
}

static int conv_expr_opt(conv *c, const Node *n, sql_expr **out)
{
    *out = NULL;
    if (!n)
        return 0;
    *out = conv_expr(c, n);
    return *out ? 0 : -1;
}

static int conv_expr_list(conv *c, Node *const *items, size_t n, sql_list *out)
{
    for (size_t i = 0; i < n; i++) {
        sql_expr *e = conv_expr(c, items[i]);
        if (!e || push(c, out, e) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Type names, relation names, options */

static int conv_typename(conv *c, const PgQuery__TypeName *tn, sql_typename *out)
{
    if (!tn)
        return ros_error_set(c->err, ROS_ERR_INTERNAL, "missing type name in parse tree");
    if (tn->setof)
        return not_supported(c, tn->location, "SETOF is not supported");
    if (tn->pct_type)
        return not_supported(c, tn->location, "%%TYPE is not supported");
    if (tn->n_array_bounds > 1)
        return not_supported(c, tn->location, "multidimensional arrays are not supported");
    size_t first = 0;
    if (tn->n_names >= 2 && node_str(tn->names[0]) && strcmp(node_str(tn->names[0]), "pg_catalog") == 0)
        first = 1;
    /* typmods such as varchar(10) or numeric(10,2) are accepted and not
     * enforced: rosql's text and double precision have no limits */
    ros_strbuf name = ROS_STRBUF_INIT;
    for (size_t i = first; i < tn->n_names; i++) {
        if (i > first)
            ros_strbuf_appendc(&name, '.');
        ros_strbuf_append(&name, node_str(tn->names[i]) ? node_str(tn->names[i]) : "?");
    }
    int rc = sql_resolve_type(ros_strbuf_cstr(&name), tn->n_array_bounds > 0, tn->location, out,
                              c->text, c->err);
    ros_strbuf_free(&name);
    return rc;
}

static const char *conv_relname(conv *c, const PgQuery__RangeVar *rv)
{
    if (rv->catalogname && rv->catalogname[0])
        return not_supported(c, rv->location, "cross-database references are not supported"), NULL;
    if (rv->schemaname && rv->schemaname[0])
        return not_supported(c, rv->location, "schema-qualified names are not supported"), NULL;
    return conv_strdup(c, rv->relname);
}

/* Text of a DefElem argument as sql_option.value wants it. */
static int defelem_value(conv *c, const PgQuery__DefElem *d, sql_option *o)
{
    const Node *a = d->arg;
    if (!a)
        return 0;
    char buf[32];
    switch (a->node_case) {
    case PG_QUERY__NODE__NODE_STRING:
        o->value = conv_strdup(c, a->string->sval);
        break;
    case PG_QUERY__NODE__NODE_INTEGER:
        snprintf(buf, sizeof buf, "%d", a->integer->ival);
        o->value = conv_strdup(c, buf);
        break;
    case PG_QUERY__NODE__NODE_FLOAT:
        o->value = conv_strdup(c, a->float_->fval);
        break;
    case PG_QUERY__NODE__NODE_BOOLEAN:
        o->value = conv_strdup(c, a->boolean->boolval ? "true" : "false");
        break;
    case PG_QUERY__NODE__NODE_TYPE_NAME: {
        /* a bare identifier parses as a type name */
        const PgQuery__TypeName *tn = a->type_name;
        if (tn->n_names != 1 || !node_str(tn->names[0]) || tn->n_array_bounds || tn->n_typmods)
            return not_supported(c, d->location, "this value of option \"%s\" is not supported",
                                 d->defname);
        o->value = conv_strdup(c, node_str(tn->names[0]));
        break;
    }
    default:
        return not_supported(c, d->location, "this value of option \"%s\" is not supported", d->defname);
    }
    if (!o->value)
        return -1;
    /* The tree does not say whether the value was quoted: the tokens do. */
    int i = sql_tok_at(c->toks, d->location);
    if (i + 2 < c->toks->n && sql_tok_is_punct(c->toks, i + 1, '='))
        o->quoted = c->toks->toks[i + 2].cls == SQL_TOK_STRING;
    return 0;
}

static int conv_options(conv *c, Node *const *items, size_t n, sql_list *out)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
            return unsupported_node(c, items[i]), -1;
        const PgQuery__DefElem *d = items[i]->def_elem;
        if (d->defnamespace && d->defnamespace[0])
            return not_supported(c, d->location, "qualified option names are not supported");
        sql_option *o = NEW(c, sql_option);
        if (!o || !(o->key = sql_lower(conv_strdup(c, d->defname))))
            return -1;
        o->location = d->location;
        if (defelem_value(c, d, o) < 0 || sql_option_add(c->arena, out, o, c->text, c->err) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* SELECT */

static int conv_from_item(conv *c, const Node *n, sql_select *sel)
{
    if (n->node_case != PG_QUERY__NODE__NODE_RANGE_VAR) {
        if (n->node_case == PG_QUERY__NODE__NODE_JOIN_EXPR) {
            /* point at the JOIN keyword when we can find it */
            int loc = top_word_location(c, "join");
            if (loc < 0)
                loc = top_word_location(c, "natural");
            return not_supported(c, loc >= 0 ? loc : node_location(n), "JOIN is not supported");
        }
        return unsupported_node(c, n), -1;
    }
    const PgQuery__RangeVar *rv = n->range_var;
    if (!rv->inh)
        return not_supported(c, rv->location, "ONLY is not supported");
    sql_from *f = NEW(c, sql_from);
    if (!f || !(f->table = conv_relname(c, rv)))
        return -1;
    f->location = rv->location;
    if (rv->alias) {
        if (rv->alias->n_colnames)
            return not_supported(c, rv->location, "column aliases in FROM are not supported");
        if (!(f->alias = conv_strdup(c, rv->alias->aliasname)))
            return -1;
    }
    return push(c, &sel->from, f);
}

static int conv_sortby(conv *c, const Node *n, sql_list *out)
{
    if (n->node_case != PG_QUERY__NODE__NODE_SORT_BY)
        return unsupported_node(c, n), -1;
    const PgQuery__SortBy *sb = n->sort_by;
    if (sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_USING)
    {
        int loc = top_word_location(c, "using");
        return not_supported(c, loc >= 0 ? loc : sb->location, "ORDER BY USING is not supported");
    }
    sql_sortby *s = NEW(c, sql_sortby);
    if (!s || !(s->expr = conv_expr(c, sb->node)))
        return -1;
    s->desc = sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_DESC;
    s->nulls = sb->sortby_nulls == PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_FIRST ? 1
             : sb->sortby_nulls == PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_LAST  ? 2
                                                                               : 0;
    s->location = sb->location >= 0 ? sb->location : s->expr->location;
    return push(c, out, s);
}

static int conv_target(conv *c, const Node *n, sql_list *out)
{
    if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
        return unsupported_node(c, n), -1;
    const PgQuery__ResTarget *rt = n->res_target;
    sql_target *t = NEW(c, sql_target);
    if (!t || !(t->expr = conv_expr(c, rt->val)))
        return -1;
    if (rt->name && rt->name[0] && !(t->alias = conv_strdup(c, rt->name)))
        return -1;
    t->location = rt->location;
    return push(c, out, t);
}

static sql_select *conv_select(conv *c, const PgQuery__SelectStmt *s)
{
    if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE) {
        const char *word = s->op == PG_QUERY__SET_OPERATION__SETOP_UNION       ? "union"
                         : s->op == PG_QUERY__SET_OPERATION__SETOP_INTERSECT ? "intersect"
                                                                               : "except";
        not_supported(c, top_word_location(c, word), "UNION, INTERSECT and EXCEPT are not supported");
        return NULL;
    }
    if (s->with_clause)
        return not_supported(c, s->with_clause->location, "WITH is not supported"), NULL;
    if (s->into_clause)
        return not_supported(c, s->into_clause->rel ? s->into_clause->rel->location : -1,
                             "SELECT INTO is not supported"), NULL;
    if (s->n_locking_clause)
        return not_supported(c, top_word_location(c, "for"),
                             "SELECT FOR UPDATE/SHARE is not supported"), NULL;
    if (s->n_window_clause)
        return not_supported(c, node_location(s->window_clause[0]), "WINDOW is not supported"), NULL;
    if (s->group_distinct)
        return not_supported(c, top_word_location(c, "group"), "GROUP BY DISTINCT is not supported"), NULL;
    if (s->limit_option == PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_WITH_TIES)
        return not_supported(c, top_word_location(c, "fetch"), "FETCH ... WITH TIES is not supported"), NULL;

    sql_select *sel = NEW(c, sql_select);
    if (!sel)
        return NULL;
    if (s->n_distinct_clause) {
        /* plain DISTINCT is a list holding one empty node */
        const Node *d0 = s->distinct_clause[0];
        if (s->n_distinct_clause > 1 || (d0 && d0->node_case != PG_QUERY__NODE__NODE__NOT_SET))
            return not_supported(c, d0 ? node_location(d0) : -1, "DISTINCT ON is not supported"), NULL;
        sel->distinct = true;
    }
    for (size_t i = 0; i < s->n_target_list; i++)
        if (conv_target(c, s->target_list[i], &sel->targets) < 0)
            return NULL;
    for (size_t i = 0; i < s->n_from_clause; i++) {
        if (i == 1)
            return not_supported(c, node_location(s->from_clause[1]),
                                 "more than one table in FROM is not supported"), NULL;
        if (conv_from_item(c, s->from_clause[i], sel) < 0)
            return NULL;
    }
    if (conv_expr_opt(c, s->where_clause, &sel->where) < 0 ||
        conv_expr_list(c, s->group_clause, s->n_group_clause, &sel->group_by) < 0 ||
        conv_expr_opt(c, s->having_clause, &sel->having) < 0)
        return NULL;
    for (size_t i = 0; i < s->n_sort_clause; i++)
        if (conv_sortby(c, s->sort_clause[i], &sel->order_by) < 0)
            return NULL;
    const Node *lc = s->limit_count;
    bool limit_all = lc && lc->node_case == PG_QUERY__NODE__NODE_A_CONST && lc->a_const->isnull;
    if ((!limit_all && conv_expr_opt(c, lc, &sel->limit) < 0) ||
        conv_expr_opt(c, s->limit_offset, &sel->offset) < 0)
        return NULL;
    for (size_t i = 0; i < s->n_values_lists; i++) {
        const Node *row = s->values_lists[i];
        if (row->node_case != PG_QUERY__NODE__NODE_LIST)
            return unsupported_node(c, row), NULL;
        sql_list *l = NEW(c, sql_list);
        if (!l || conv_expr_list(c, row->list->items, row->list->n_items, l) < 0 ||
            push(c, &sel->values, l) < 0)
            return NULL;
    }
    return sel;
}

static sql_select *conv_select_node(conv *c, const Node *n)
{
    if (!n || n->node_case != PG_QUERY__NODE__NODE_SELECT_STMT)
        return n ? (unsupported_node(c, n), NULL)
                 : (ros_error_set(c->err, ROS_ERR_INTERNAL, "missing query in parse tree"), NULL);
    return conv_select(c, n->select_stmt);
}

/* ------------------------------------------------------------------ */
/* Statements */

static sql_stmt *new_stmt(conv *c, sql_stmt_kind kind)
{
    sql_stmt *s = NEW(c, sql_stmt);
    if (s)
        s->kind = kind;
    return s;
}

static sql_stmt *conv_insert(conv *c, const PgQuery__InsertStmt *ins)
{
    if (ins->with_clause)
        return not_supported(c, ins->with_clause->location, "WITH is not supported"), NULL;
    if (ins->on_conflict_clause)
        return not_supported(c, ins->on_conflict_clause->location, "ON CONFLICT is not supported"), NULL;
    if (ins->n_returning_list)
        return not_supported(c, top_word_location(c, "returning"), "RETURNING is not supported"), NULL;
    if (ins->override != PG_QUERY__OVERRIDING_KIND__OVERRIDING_NOT_SET)
        return not_supported(c, top_word_location(c, "overriding"), "OVERRIDING is not supported"), NULL;
    if (!ins->select_stmt)
        return not_supported(c, top_word_location(c, "default"), "DEFAULT VALUES is not supported"), NULL;
    if (ins->relation->alias)
        return not_supported(c, ins->relation->location, "table aliases in INSERT are not supported"), NULL;

    sql_stmt *s = new_stmt(c, SQL_S_INSERT);
    if (!s || !(s->u.insert.table = conv_relname(c, ins->relation)))
        return NULL;
    s->u.insert.table_location = ins->relation->location;
    for (size_t i = 0; i < ins->n_cols; i++) {
        const Node *n = ins->cols[i];
        if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
            return unsupported_node(c, n), NULL;
        if (n->res_target->n_indirection)
            return not_supported(c, n->res_target->location,
                                 "subscripts in INSERT column lists are not supported"), NULL;
        char *name = conv_strdup(c, n->res_target->name);
        if (!name || push(c, &s->u.insert.columns, name) < 0)
            return NULL;
    }
    if (!(s->u.insert.source = conv_select_node(c, ins->select_stmt)))
        return NULL;
    return s;
}

static int conv_column_def(conv *c, const PgQuery__ColumnDef *cd, sql_list *out)
{
    sql_column_def *col = NEW(c, sql_column_def);
    if (!col || !(col->name = conv_strdup(c, cd->colname)))
        return -1;
    col->location = cd->location;
    if (cd->coll_clause)
        return not_supported(c, cd->coll_clause->location, "COLLATE is not supported");
    if (conv_typename(c, cd->type_name, &col->type) < 0)
        return -1;
    for (size_t i = 0; i < cd->n_constraints; i++) {
        const Node *n = cd->constraints[i];
        if (n->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
            return unsupported_node(c, n), -1;
        const PgQuery__Constraint *k = n->constraint;
        if (k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL)
            col->not_null = true;
        else if (k->contype == PG_QUERY__CONSTR_TYPE__CONSTR_NULL)
            col->not_null = false;
        else
            return not_supported(c, k->location, "column constraints other than NOT NULL are not supported");
    }
    return push(c, out, col);
}

static sql_stmt *conv_create_table(conv *c, const PgQuery__CreateStmt *cs)
{
    const PgQuery__RangeVar *rv = cs->relation;
    if (rv->relpersistence && rv->relpersistence[0] != 'p')
        return not_supported(c, rv->location, "temporary and unlogged tables are not supported"), NULL;
    if (cs->n_inh_relations)
        return not_supported(c, node_location(cs->inh_relations[0]), "INHERITS is not supported"), NULL;
    if (cs->partspec)
        return not_supported(c, cs->partspec->location, "PARTITION BY is not supported"), NULL;
    if (cs->partbound || cs->of_typename)
        return not_supported(c, rv->location, "partitions and typed tables are not supported"), NULL;
    if (cs->n_constraints)
        return not_supported(c, node_location(cs->constraints[0]), "table constraints are not supported"), NULL;
    if (cs->tablespacename && cs->tablespacename[0])
        return not_supported(c, top_word_location(c, "tablespace"), "TABLESPACE is not supported"), NULL;
    if (cs->access_method && cs->access_method[0])
        return not_supported(c, top_word_location(c, "using"), "USING is not supported"), NULL;

    sql_stmt *s = new_stmt(c, SQL_S_CREATE_TABLE);
    if (!s || !(s->u.create_table.name = conv_relname(c, rv)))
        return NULL;
    s->u.create_table.if_not_exists = cs->if_not_exists;
    for (size_t i = 0; i < cs->n_table_elts; i++) {
        const Node *n = cs->table_elts[i];
        if (n->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF) {
            if (conv_column_def(c, n->column_def, &s->u.create_table.columns) < 0)
                return NULL;
        } else if (n->node_case == PG_QUERY__NODE__NODE_CONSTRAINT) {
            return not_supported(c, n->constraint->location, "table constraints are not supported"), NULL;
        } else if (n->node_case == PG_QUERY__NODE__NODE_TABLE_LIKE_CLAUSE) {
            return not_supported(c, node_location(n), "LIKE in CREATE TABLE is not supported"), NULL;
        } else {
            return unsupported_node(c, n), NULL;
        }
    }
    if (conv_options(c, cs->options, cs->n_options, &s->u.create_table.options) < 0)
        return NULL;
    return s;
}

static sql_stmt *conv_create_table_as(conv *c, const PgQuery__CreateTableAsStmt *ct)
{
    const PgQuery__IntoClause *into = ct->into;
    int loc = into && into->rel ? into->rel->location : -1;
    if (ct->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE || ct->is_select_into || !into || !into->rel)
        return not_supported(c, loc, "only CREATE TABLE ... AS is supported"), NULL;
    if (into->rel->relpersistence && into->rel->relpersistence[0] != 'p')
        return not_supported(c, loc, "temporary and unlogged tables are not supported"), NULL;
    if (into->n_col_names)
        return not_supported(c, node_location(into->col_names[0]),
                             "column names in CREATE TABLE AS are not supported"), NULL;
    if (into->skip_data)
        return not_supported(c, top_word_location(c, "no"), "WITH NO DATA is not supported"), NULL;
    if ((into->table_space_name && into->table_space_name[0]) || (into->access_method && into->access_method[0]))
        return not_supported(c, loc, "TABLESPACE and USING are not supported"), NULL;

    sql_stmt *s = new_stmt(c, SQL_S_CREATE_TABLE);
    if (!s || !(s->u.create_table.name = conv_relname(c, into->rel)))
        return NULL;
    s->u.create_table.if_not_exists = ct->if_not_exists;
    if (conv_options(c, into->options, into->n_options, &s->u.create_table.options) < 0 ||
        !(s->u.create_table.as_select = conv_select_node(c, ct->query)))
        return NULL;
    return s;
}

/* One name of a DROP TABLE list (a List of Strings) or DROP FUNCTION list
 * (ObjectWithArgs; argument types are not kept). */
static const char *drop_name(conv *c, const Node *n)
{
    Node *const *names = NULL;
    size_t cnt = 0;
    if (n->node_case == PG_QUERY__NODE__NODE_LIST) {
        names = n->list->items;
        cnt = n->list->n_items;
    } else if (n->node_case == PG_QUERY__NODE__NODE_OBJECT_WITH_ARGS) {
        names = n->object_with_args->objname;
        cnt = n->object_with_args->n_objname;
    }
    if (cnt != 1 || !node_str(names[0]))
        return not_supported(c, node_location(n), "schema-qualified names are not supported"), NULL;
    /* function names are case-folded everywhere, as calls fold them */
    char *name = conv_strdup(c, node_str(names[0]));
    return n->node_case == PG_QUERY__NODE__NODE_OBJECT_WITH_ARGS ? sql_lower(name) : name;
}

static sql_stmt *conv_drop(conv *c, const PgQuery__DropStmt *d)
{
    sql_object_kind kind;
    if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
        kind = SQL_OBJ_TABLE;
    else if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_FUNCTION)
        kind = SQL_OBJ_FUNCTION;
    else
        return not_supported(c, c->toks->n > 1 ? c->toks->toks[1].start : -1,
                             "DROP of this kind of object is not supported"), NULL;
    if (d->concurrent)
        return not_supported(c, top_word_location(c, "concurrently"), "CONCURRENTLY is not supported"), NULL;
    sql_stmt *s = new_stmt(c, SQL_S_DROP);
    if (!s)
        return NULL;
    s->u.drop.object = kind;
    s->u.drop.if_exists = d->missing_ok;
    s->u.drop.cascade = d->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
    for (size_t i = 0; i < d->n_objects; i++) {
        const char *name = drop_name(c, d->objects[i]);
        if (!name || push(c, &s->u.drop.names, (void *)name) < 0)
            return NULL;
    }
    return s;
}

static sql_stmt *conv_create_function(conv *c, const PgQuery__CreateFunctionStmt *cf)
{
    if (cf->is_procedure)
        return not_supported(c, top_word_location(c, "procedure"), "CREATE PROCEDURE is not supported"), NULL;
    if (cf->sql_body)
        return not_supported(c, node_location(cf->sql_body), "SQL function bodies are not supported"), NULL;
    if (!cf->return_type)
        return not_supported(c, -1, "functions without RETURNS are not supported"), NULL;

    sql_stmt *s = new_stmt(c, SQL_S_CREATE_FUNCTION);
    if (!s)
        return NULL;
    s->u.create_function.or_replace = cf->replace;
    s->u.create_function.volatility = 'v';
    int name_at = sql_tok_at(c->toks, top_word_location(c, "function") + 1);
    if (!(s->u.create_function.name = func_name(c, cf->funcname, cf->n_funcname,
                                                name_at < c->toks->n ? c->toks->toks[name_at].start : -1)))
        return NULL;
    for (size_t i = 0; i < cf->n_parameters; i++) {
        const Node *n = cf->parameters[i];
        if (n->node_case != PG_QUERY__NODE__NODE_FUNCTION_PARAMETER)
            return unsupported_node(c, n), NULL;
        const PgQuery__FunctionParameter *p = n->function_parameter;
        int loc = p->arg_type ? p->arg_type->location : -1;
        if (p->mode != PG_QUERY__FUNCTION_PARAMETER_MODE__FUNC_PARAM_IN &&
            p->mode != PG_QUERY__FUNCTION_PARAMETER_MODE__FUNC_PARAM_DEFAULT)
            return not_supported(c, loc, "only input parameters are supported"), NULL;
        if (p->defexpr)
            return not_supported(c, node_location(p->defexpr), "parameter defaults are not supported"), NULL;
        sql_typename *tn = NEW(c, sql_typename);
        if (!tn || conv_typename(c, p->arg_type, tn) < 0)
            return NULL;
        char *name = NULL;
        if (p->name && p->name[0] && !(name = conv_strdup(c, p->name)))
            return NULL;
        if (push(c, &s->u.create_function.arg_types, tn) < 0 ||
            push(c, &s->u.create_function.arg_names, name) < 0)
            return NULL;
    }
    if (conv_typename(c, cf->return_type, &s->u.create_function.ret_type) < 0)
        return NULL;

    for (size_t i = 0; i < cf->n_options; i++) {
        const Node *n = cf->options[i];
        if (n->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
            return unsupported_node(c, n), NULL;
        const PgQuery__DefElem *d = n->def_elem;
        const Node *a = d->arg;
        if (strcmp(d->defname, "language") == 0 && node_str(a)) {
            if (!(s->u.create_function.language = sql_lower(conv_strdup(c, node_str(a)))))
                return NULL;
        } else if (strcmp(d->defname, "as") == 0 && a && a->node_case == PG_QUERY__NODE__NODE_LIST &&
                   a->list->n_items >= 1 && a->list->n_items <= 2) {
            if (!(s->u.create_function.library = conv_strdup(c, node_str(a->list->items[0]))))
                return NULL;
            if (a->list->n_items == 2 &&
                !(s->u.create_function.symbol = conv_strdup(c, node_str(a->list->items[1]))))
                return NULL;
        } else if (strcmp(d->defname, "strict") == 0 && a && a->node_case == PG_QUERY__NODE__NODE_BOOLEAN) {
            s->u.create_function.strict = a->boolean->boolval;
        } else if (strcmp(d->defname, "volatility") == 0 && node_str(a)) {
            s->u.create_function.volatility = node_str(a)[0]; /* immutable, stable, volatile */
        } else {
            return not_supported(c, d->location, "function option %s is not supported",
                                 sql_lower(conv_strdup(c, d->defname))), NULL;
        }
    }
    return s;
}

/* The value of SET name = v1, v2: constants joined by ", ". */
static sql_stmt *conv_set(conv *c, const PgQuery__VariableSetStmt *vs)
{
    if (vs->is_local)
        return not_supported(c, top_word_location(c, "local"), "SET LOCAL is not supported"), NULL;
    sql_stmt *s = new_stmt(c, SQL_S_SET);
    if (!s)
        return NULL;
    switch (vs->kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE: {
        ros_strbuf v = ROS_STRBUF_INIT;
        for (size_t i = 0; i < vs->n_args; i++) {
            const Node *a = vs->args[i];
            if (a->node_case != PG_QUERY__NODE__NODE_A_CONST || a->a_const->isnull) {
                ros_strbuf_free(&v);
                return not_supported(c, node_location(a), "this SET value is not supported"), NULL;
            }
            const PgQuery__AConst *k = a->a_const;
            if (i > 0)
                ros_strbuf_append(&v, ", ");
            if (k->val_case == PG_QUERY__A__CONST__VAL_IVAL)
                ros_strbuf_appendf(&v, "%d", k->ival->ival);
            else if (k->val_case == PG_QUERY__A__CONST__VAL_FVAL)
                ros_strbuf_append(&v, k->fval->fval);
            else if (k->val_case == PG_QUERY__A__CONST__VAL_SVAL)
                ros_strbuf_append(&v, k->sval->sval);
            else if (k->val_case == PG_QUERY__A__CONST__VAL_BOOLVAL)
                ros_strbuf_append(&v, k->boolval->boolval ? "true" : "false");
        }
        s->u.set.value = conv_strdup(c, ros_strbuf_cstr(&v));
        ros_strbuf_free(&v);
        if (!s->u.set.value)
            return NULL;
        break;
    }
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
        break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
        if (!(s->u.set.name = conv_strdup(c, "all")))
            return NULL;
        return s;
    default:
        return not_supported(c, c->toks->n > 1 ? c->toks->toks[1].start : -1,
                             "this form of SET is not supported"), NULL;
    }
    if (!(s->u.set.name = sql_lower(conv_strdup(c, vs->name))))
        return NULL;
    return s;
}

/* A Boolean EXPLAIN option: no value, or true/false/on/off/1/0/yes/no. */
static int explain_bool(conv *c, const PgQuery__DefElem *d, bool *out)
{
    const Node *a = d->arg;
    if (!a) {
        *out = true;
        return 0;
    }
    const char *v = node_str(a);
    if (a->node_case == PG_QUERY__NODE__NODE_INTEGER && (a->integer->ival == 0 || a->integer->ival == 1)) {
        *out = a->integer->ival == 1;
        return 0;
    }
    if (a->node_case == PG_QUERY__NODE__NODE_BOOLEAN) {
        *out = a->boolean->boolval;
        return 0;
    }
    static const char *const yes[] = {"true", "on", "yes", "1"}, *const no[] = {"false", "off", "no", "0"};
    for (size_t i = 0; v && i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, 0;
    }
    return sql_error_at(c->err, c->text, d->location, ROS_ERR_SYNTAX, "%s requires a Boolean value",
                        d->defname);
}

/* Where the explained statement starts: after EXPLAIN, its parenthesised
 * options or its ANALYZE and VERBOSE words. */
static int explained_location(conv *c)
{
    const sql_tokens *t = c->toks;
    int i = 1;
    if (sql_tok_is_punct(t, i, '(')) {
        int depth = 0;
        for (; i < t->n; i++) {
            if (sql_tok_is_punct(t, i, '('))
                depth++;
            else if (sql_tok_is_punct(t, i, ')') && --depth == 0)
                break;
        }
        i++;
    }
    while (sql_tok_is_word(t, i, "analyze") || sql_tok_is_word(t, i, "analyse") ||
           sql_tok_is_word(t, i, "verbose"))
        i++;
    return i < t->n ? t->toks[i].start : -1;
}

static sql_stmt *conv_explain(conv *c, const PgQuery__ExplainStmt *ex)
{
    sql_stmt *s = new_stmt(c, SQL_S_EXPLAIN);
    if (!s)
        return NULL;
    s->u.explain.rewrite = true;
    for (size_t i = 0; i < ex->n_options; i++) {
        const Node *n = ex->options[i];
        if (n->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
            return unsupported_node(c, n), NULL;
        const PgQuery__DefElem *d = n->def_elem;
        bool *flag = strcmp(d->defname, "analyze") == 0   ? &s->u.explain.analyze
                   : strcmp(d->defname, "verbose") == 0 ? &s->u.explain.verbose
                   : strcmp(d->defname, "rewrite") == 0 ? &s->u.explain.rewrite
                                                        : NULL;
        if (!flag)
            return sql_error_at(c->err, c->text, d->location, ROS_ERR_SYNTAX,
                                "unrecognized EXPLAIN option \"%s\"", d->defname), NULL;
        if (explain_bool(c, d, flag) < 0)
            return NULL;
    }
    if (!(s->u.explain.stmt = conv_stmt(c, ex->query)))
        return NULL;
    s->u.explain.stmt->location = explained_location(c);
    return s;
}

static sql_stmt *conv_delete(conv *c, const PgQuery__DeleteStmt *d)
{
    if (d->with_clause)
        return not_supported(c, d->with_clause->location, "WITH is not supported"), NULL;
    if (d->n_using_clause)
        return not_supported(c, node_location(d->using_clause[0]), "DELETE ... USING is not supported"), NULL;
    if (d->n_returning_list)
        return not_supported(c, top_word_location(c, "returning"), "RETURNING is not supported"), NULL;
    if (!d->relation->inh)
        return not_supported(c, d->relation->location, "ONLY is not supported"), NULL;
    if (d->relation->alias)
        return not_supported(c, d->relation->location, "table aliases in DELETE are not supported"), NULL;
    sql_stmt *s = new_stmt(c, SQL_S_DELETE);
    if (!s || !(s->u.delete_.table = conv_relname(c, d->relation)))
        return NULL;
    s->u.delete_.table_location = d->relation->location;
    if (conv_expr_opt(c, d->where_clause, &s->u.delete_.where) < 0)
        return NULL;
    return s;
}

static sql_stmt *conv_transaction(conv *c, const PgQuery__TransactionStmt *t)
{
    const char *what;
    switch (t->kind) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
        what = "begin";
        break;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
        what = "commit";
        break;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
        what = "rollback";
        break;
    default:
        return not_supported(c, 0, "savepoints and two-phase commit are not supported"), NULL;
    }
    if (t->n_options || t->chain)
        return not_supported(c, c->toks->n > 1 ? c->toks->toks[1].start : -1,
                             "transaction options are not supported"), NULL;
    sql_stmt *s = new_stmt(c, SQL_S_TRANSACTION);
    if (s)
        s->u.transaction.what = what;
    return s;
}

/* Statement kinds nobody converts: named after their first words. */
static sql_stmt *unsupported_stmt(conv *c)
{
    ros_strbuf what = ROS_STRBUF_INIT;
    int words = sql_tok_is_word(c->toks, 0, "create") || sql_tok_is_word(c->toks, 0, "alter") ? 2 : 1;
    for (int i = 0; i < words && i < c->toks->n && c->toks->toks[i].cls == SQL_TOK_WORD; i++) {
        if (i)
            ros_strbuf_appendc(&what, ' ');
        for (int k = c->toks->toks[i].start; k < c->toks->toks[i].end; k++) {
            char ch = c->text[k];
            ros_strbuf_appendc(&what, ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch);
        }
    }
    not_supported(c, c->toks->n ? c->toks->toks[0].start : -1, "%s is not supported",
                  what.len ? ros_strbuf_cstr(&what) : "this statement");
    ros_strbuf_free(&what);
    return NULL;
}

static sql_stmt *conv_stmt(conv *c, const Node *n)
{
    if (!n)
        return ros_error_set(c->err, ROS_ERR_INTERNAL, "missing statement in parse tree"), NULL;
    sql_stmt *s;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        if (!(s = new_stmt(c, SQL_S_SELECT)) || !(s->u.select = conv_select(c, n->select_stmt)))
            return NULL;
        return s;
    case PG_QUERY__NODE__NODE_INSERT_STMT:
        return conv_insert(c, n->insert_stmt);
    case PG_QUERY__NODE__NODE_CREATE_STMT:
        return conv_create_table(c, n->create_stmt);
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
        return conv_create_table_as(c, n->create_table_as_stmt);
    case PG_QUERY__NODE__NODE_DROP_STMT:
        return conv_drop(c, n->drop_stmt);
    case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT:
        return conv_create_function(c, n->create_function_stmt);
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
        return conv_set(c, n->variable_set_stmt);
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
        if (!(s = new_stmt(c, SQL_S_SHOW)) ||
            !(s->u.show.what = sql_lower(conv_strdup(c, n->variable_show_stmt->name))))
            return NULL;
        s->u.show.job_id = -1;
        return s;
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        return conv_explain(c, n->explain_stmt);
    case PG_QUERY__NODE__NODE_DELETE_STMT:
        return conv_delete(c, n->delete_stmt);
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        return conv_transaction(c, n->transaction_stmt);
    default:
        return unsupported_stmt(c);
    }
}
