/*
 * test_parser.c
 *    The SQL front end (sql/): splitting, the libpg_query path, the
 *    extension grammar, locations and PostgreSQL-shaped error reports.
 *
 * Expected error texts and positions are PostgreSQL 15's (psql prints the
 * same LINE/caret block for the same statement).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pg_query.h>

#include "sql/parser.h"

/* ------------------------------------------------------------------ */
/* Helpers: one arena per test */

static ros_arena arena;
static ros_error err;

static int setup(void **state)
{
    (void)state;
    ros_arena_init(&arena);
    ros_error_clear(&err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ros_arena_free(&arena);
    return 0;
}

/* Parses sql, which must succeed. */
static sql_stmt *ok(const char *sql)
{
    ros_error_clear(&err);
    sql_stmt *s = sql_parse(sql, &arena, &err);
    if (!s)
        fail_msg("parse of [%s] failed: %s (%s) at %d", sql, err.message, err.code, err.position);
    assert_false(err.set);
    assert_int_equal(s->location, 0);
    return s;
}

/* Parses sql, which must fail with code, message and position. */
static void bad(const char *sql, const char *code, const char *message, int position)
{
    ros_error_clear(&err);
    sql_stmt *s = sql_parse(sql, &arena, &err);
    if (s)
        fail_msg("parse of [%s] succeeded, expected: %s", sql, message);
    assert_true(err.set);
    if (strcmp(err.code, code) != 0 || strcmp(err.message, message) != 0 || err.position != position)
        fail_msg("got %s \"%s\" at %d, expected %s \"%s\" at %d for [%.200s]", err.code, err.message,
                 err.position, code, message, position, sql);
}

/* The psql-style report of the error sql produces (caller frees). */
static char *report(const char *sql)
{
    ros_error_clear(&err);
    assert_null(sql_parse(sql, &arena, &err));
    ros_strbuf sb = ROS_STRBUF_INIT;
    ros_error_format(&err, sql, &sb);
    return ros_strbuf_steal(&sb);
}

static sql_select *sel(const char *sql)
{
    sql_stmt *s = ok(sql);
    assert_int_equal(s->kind, SQL_S_SELECT);
    return s->u.select;
}

/* The first select-list expression of sql. */
static sql_expr *expr(const char *sql)
{
    sql_select *q = sel(sql);
    assert_true(q->targets.n >= 1);
    return ((sql_target *)q->targets.items[0])->expr;
}

/* Byte offset of the first occurrence of needle in sql. */
static int off(const char *sql, const char *needle)
{
    const char *p = strstr(sql, needle);
    assert_non_null(p);
    return (int)(p - sql);
}

#define ITEM(list, T, i) ((T *)(list).items[(i)])
#define EXPR(list, i) ITEM(list, sql_expr, i)

static void assert_column(const sql_expr *e, const char *qualifier, const char *name)
{
    assert_non_null(e);
    assert_int_equal(e->kind, SQL_E_COLUMN);
    if (qualifier)
        assert_string_equal(e->u.column.qualifier, qualifier);
    else
        assert_null(e->u.column.qualifier);
    assert_string_equal(e->u.column.name, name);
}

static void assert_int_const(const sql_expr *e, int64_t v)
{
    assert_non_null(e);
    assert_int_equal(e->kind, SQL_E_CONST);
    assert_int_equal(e->u.cnst.kind, SQL_C_INT);
    assert_true(e->u.cnst.i == v);
}

static void assert_str_const(const sql_expr *e, const char *v)
{
    assert_non_null(e);
    assert_int_equal(e->kind, SQL_E_CONST);
    assert_int_equal(e->u.cnst.kind, SQL_C_STRING);
    assert_string_equal(e->u.cnst.str, v);
}

static const sql_option *option(const sql_list *opts, int i, const char *key, const char *value,
                                bool quoted)
{
    assert_true(i < opts->n);
    const sql_option *o = opts->items[i];
    assert_string_equal(o->key, key);
    if (value)
        assert_string_equal(o->value, value);
    else
        assert_null(o->value);
    assert_int_equal(o->quoted, quoted);
    return o;
}

/* ------------------------------------------------------------------ */
/* Splitting */

static void check_spans(const char *script, int want_n, const char *const *want)
{
    sql_span *spans = NULL;
    int n = -1;
    ros_error_clear(&err);
    assert_int_equal(sql_split(script, &spans, &n, &err), 0);
    assert_int_equal(n, want_n);
    for (int i = 0; i < n; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s", spans[i].length, script + spans[i].offset);
        assert_string_equal(buf, want[i]);
    }
    free(spans);
}

static void test_split_basic(void **state)
{
    (void)state;
    const char *want[] = {"SELECT 1", "SELECT ';'", "SELECT $$a;b$$"};
    check_spans("SELECT 1; SELECT ';' ;; -- c\n/* x; */ ;  SELECT $$a;b$$ ", 3, want);
    const char *want2[] = {"SELECT 'it''s;'", "SELECT $f$ ; $f$", "SELECT \"a;b\" FROM t"};
    check_spans("SELECT 'it''s;';SELECT $f$ ; $f$;\nSELECT \"a;b\" FROM t;\n", 3, want2);
}

static void test_split_comments(void **state)
{
    (void)state;
    const char *want[] = {"SELECT 1", "SELECT 2"};
    check_spans("-- leading; comment\nSELECT 1;\n/* block; */ SELECT 2 -- trailing; too\n", 2, want);
    const char *want2[] = {"SELECT /* inner; */ 3"};
    check_spans("SELECT /* inner; */ 3", 1, want2);
}

static void test_split_empty(void **state)
{
    (void)state;
    check_spans("", 0, NULL);
    check_spans("   \n\t ", 0, NULL);
    check_spans(" ;; ; -- nothing\n/* at all */;", 0, NULL);
}

static void test_split_extension_statements(void **state)
{
    (void)state;
    const char *want[] = {"CREATE SERVICE s USING 'a;b' WITH (x = ';')", "SHOW TABLES",
                          "SUBMIT INSERT INTO t SELECT 1"};
    check_spans("CREATE SERVICE s USING 'a;b' WITH (x = ';');\nSHOW TABLES;SUBMIT INSERT INTO t SELECT 1;",
                3, want);
}

/* Regression: libpg_query's scanner splitter leaves out statements that do
 * not start with a keyword it knows; they must reach the parser (and fail
 * there) instead of vanishing. */
static void test_split_keeps_unknown_statements(void **state)
{
    (void)state;
    const char *want[] = {"SELEC 1"};
    check_spans("SELEC 1", 1, want);
    const char *want2[] = {"SELECT 1", "oops FORM t", "SELECT (2; 3)"};
    check_spans("SELECT 1; oops FORM t;\n SELECT (2; 3);", 3, want2);
    const char *want3[] = {"foo", "bar 'x;y'"};
    check_spans("foo; bar 'x;y'", 2, want3);
}

static void test_split_offsets(void **state)
{
    (void)state;
    const char *script = "SELECT 'é';\n  SELECT 2;";
    sql_span *spans;
    int n;
    assert_int_equal(sql_split(script, &spans, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(spans[0].offset, 0);
    assert_int_equal(spans[0].length, 11); /* 'é' is 2 bytes */
    assert_int_equal(spans[1].offset, 15);
    assert_int_equal(spans[1].length, 8);
    free(spans);
}

static void test_split_errors(void **state)
{
    (void)state;
    sql_span *spans = (sql_span *)1;
    int n = 7;
    ros_error_clear(&err);
    assert_int_equal(sql_split("SELECT 1; SELECT 'abc", &spans, &n, &err), -1);
    assert_null(spans);
    assert_int_equal(n, 0);
    assert_string_equal(err.code, ROS_ERR_SYNTAX);
    assert_string_equal(err.message, "unterminated quoted string at or near \"'abc\"");
    assert_int_equal(err.position, 18);

    ros_error_clear(&err);
    assert_int_equal(sql_split("SELECT 1 /* open", &spans, &n, &err), -1);
    assert_string_equal(err.message, "unterminated /* comment at or near \"/* open\"");
    assert_int_equal(err.position, 10);
}

static void test_is_complete(void **state)
{
    (void)state;
    assert_false(sql_is_complete(""));
    assert_false(sql_is_complete("   "));
    assert_false(sql_is_complete("SELECT 1"));
    assert_true(sql_is_complete("SELECT 1;"));
    assert_true(sql_is_complete("SELECT 1;  \n"));
    assert_true(sql_is_complete("SELECT 1; -- done"));
    assert_true(sql_is_complete("SELECT 1; /* done */"));
    assert_false(sql_is_complete("SELECT 1; SELECT 2"));
    assert_false(sql_is_complete("SELECT ';"));
    assert_false(sql_is_complete("SELECT 'a;'"));
    assert_true(sql_is_complete("SELECT 'a;';"));
    assert_false(sql_is_complete("SELECT 1 -- ;"));
    assert_false(sql_is_complete("SELECT /* ; */ 1"));
    assert_false(sql_is_complete("SELECT $$ ; "));
    assert_true(sql_is_complete("SELECT $$ ; $$;"));
    assert_false(sql_is_complete("SELECT (1;"));
    assert_true(sql_is_complete("SELECT (1);"));
    assert_true(sql_is_complete("CREATE SERVICE s USING 'x';"));
    assert_false(sql_is_complete("SELECT \"a;"));
}

/* ------------------------------------------------------------------ */
/* SELECT */

static void test_select_clauses(void **state)
{
    (void)state;
    const char *sql = "SELECT DISTINCT a, t.b AS bee, count(*) c FROM tab AS t WHERE a > 1 "
                      "GROUP BY a, t.b HAVING count(*) > 2 ORDER BY 1 DESC NULLS FIRST, b ASC, c NULLS LAST "
                      "LIMIT 10 OFFSET 5;";
    sql_select *q = sel(sql);
    assert_true(q->distinct);
    assert_int_equal(q->targets.n, 3);
    sql_target *t0 = q->targets.items[0], *t1 = q->targets.items[1], *t2 = q->targets.items[2];
    assert_column(t0->expr, NULL, "a");
    assert_null(t0->alias);
    assert_int_equal(t0->location, off(sql, "a,"));
    assert_column(t1->expr, "t", "b");
    assert_string_equal(t1->alias, "bee");
    assert_int_equal(t2->expr->kind, SQL_E_FUNC);
    assert_string_equal(t2->alias, "c");
    assert_int_equal(q->from.n, 1);
    sql_from *f = q->from.items[0];
    assert_string_equal(f->table, "tab");
    assert_string_equal(f->alias, "t");
    assert_int_equal(f->location, off(sql, "tab"));
    assert_int_equal(q->where->kind, SQL_E_OP);
    assert_string_equal(q->where->u.op.op, ">");
    assert_int_equal(q->group_by.n, 2);
    assert_column(EXPR(q->group_by, 1), "t", "b");
    assert_non_null(q->having);
    assert_int_equal(q->order_by.n, 3);
    sql_sortby *o0 = q->order_by.items[0], *o1 = q->order_by.items[1], *o2 = q->order_by.items[2];
    assert_int_const(o0->expr, 1);
    assert_true(o0->desc);
    assert_int_equal(o0->nulls, 1);
    assert_int_equal(o0->location, off(sql, "1 DESC"));
    assert_false(o1->desc);
    assert_int_equal(o1->nulls, 0);
    assert_false(o2->desc);
    assert_int_equal(o2->nulls, 2);
    assert_int_const(q->limit, 10);
    assert_int_const(q->offset, 5);
    assert_int_equal(q->values.n, 0);
}

static void test_select_star(void **state)
{
    (void)state;
    sql_select *q = sel("SELECT *, t.* FROM t");
    sql_expr *s0 = ITEM(q->targets, sql_target, 0)->expr, *s1 = ITEM(q->targets, sql_target, 1)->expr;
    assert_int_equal(s0->kind, SQL_E_STAR);
    assert_null(s0->u.star.qualifier);
    assert_int_equal(s0->location, 7);
    assert_int_equal(s1->kind, SQL_E_STAR);
    assert_string_equal(s1->u.star.qualifier, "t");
    assert_null(ITEM(q->from, sql_from, 0)->alias);

    q = sel("SELECT 1");
    assert_int_equal(q->from.n, 0);
    assert_null(q->where);
    assert_null(q->limit);
    assert_false(q->distinct);
}

static void test_select_limit_all(void **state)
{
    (void)state;
    sql_select *q = sel("SELECT a FROM t LIMIT ALL OFFSET 3");
    assert_null(q->limit);
    assert_int_const(q->offset, 3);
    q = sel("SELECT a FROM t LIMIT 2 + 1");
    assert_int_equal(q->limit->kind, SQL_E_OP);
}

static void test_values(void **state)
{
    (void)state;
    sql_select *q = sel("VALUES (1, 'a'), (2, NULL)");
    assert_int_equal(q->targets.n, 0);
    assert_int_equal(q->values.n, 2);
    sql_list *r0 = q->values.items[0], *r1 = q->values.items[1];
    assert_int_equal(r0->n, 2);
    assert_int_const(EXPR(*r0, 0), 1);
    assert_str_const(EXPR(*r0, 1), "a");
    assert_int_equal(EXPR(*r1, 1)->u.cnst.kind, SQL_C_NULL);
    assert_int_equal(EXPR(*r1, 0)->location, 18);
}

/* ------------------------------------------------------------------ */
/* Expressions */

static void test_constants(void **state)
{
    (void)state;
    sql_select *q = sel("SELECT 1, -7, 99999999999, 9223372036854775808, 1.5, -2.5e3, 'it''s', TRUE, false, NULL, "
                        "-9223372036854775808");
#define T(i) (ITEM(q->targets, sql_target, i)->expr)
    assert_int_const(T(0), 1);
    assert_int_const(T(1), -7);
    assert_int_const(T(2), 99999999999LL);
    assert_int_equal(T(3)->u.cnst.kind, SQL_C_FLOAT);
    assert_string_equal(T(3)->u.cnst.str, "9223372036854775808");
    assert_int_equal(T(4)->u.cnst.kind, SQL_C_FLOAT);
    assert_string_equal(T(4)->u.cnst.str, "1.5");
    assert_string_equal(T(5)->u.cnst.str, "-2.5e3");
    assert_str_const(T(6), "it's");
    assert_int_equal(T(7)->u.cnst.kind, SQL_C_BOOL);
    assert_true(T(7)->u.cnst.b);
    assert_int_equal(T(8)->u.cnst.kind, SQL_C_BOOL);
    assert_false(T(8)->u.cnst.b);
    assert_int_equal(T(9)->u.cnst.kind, SQL_C_NULL);
    assert_int_const(T(10), INT64_MIN);
#undef T
}

static void test_operators(void **state)
{
    (void)state;
    const char *sql = "SELECT a + b * 2";
    sql_expr *e = expr(sql);
    assert_int_equal(e->kind, SQL_E_OP);
    assert_string_equal(e->u.op.op, "+");
    assert_int_equal(e->location, off(sql, "+"));
    assert_column(e->u.op.left, NULL, "a");
    assert_string_equal(e->u.op.right->u.op.op, "*");

    e = expr("SELECT a != b");
    assert_string_equal(e->u.op.op, "<>");
    e = expr("SELECT a || 'x'");
    assert_string_equal(e->u.op.op, "||");
    e = expr("SELECT a % 3 <= 1");
    assert_string_equal(e->u.op.op, "<=");

    e = expr("SELECT -a");
    assert_int_equal(e->kind, SQL_E_OP);
    assert_string_equal(e->u.op.op, "-");
    assert_null(e->u.op.left);
    assert_column(e->u.op.right, NULL, "a");
    e = expr("SELECT +a");
    assert_string_equal(e->u.op.op, "+");
    assert_null(e->u.op.left);
    e = expr("SELECT a OPERATOR(pg_catalog.*) 2");
    assert_string_equal(e->u.op.op, "*");
}

static void test_bool_exprs(void **state)
{
    (void)state;
    sql_expr *e = expr("SELECT a AND b AND (c AND d) OR NOT e");
    assert_int_equal(e->kind, SQL_E_OR);
    assert_int_equal(e->u.list.args.n, 2);
    sql_expr *and_ = EXPR(e->u.list.args, 0);
    assert_int_equal(and_->kind, SQL_E_AND);
    assert_int_equal(and_->u.list.args.n, 4); /* flattened */
    assert_column(EXPR(and_->u.list.args, 3), NULL, "d");
    sql_expr *not_ = EXPR(e->u.list.args, 1);
    assert_int_equal(not_->kind, SQL_E_NOT);
    assert_column(not_->u.not_.arg, NULL, "e");

    e = expr("SELECT a OR (b OR c)");
    assert_int_equal(e->kind, SQL_E_OR);
    assert_int_equal(e->u.list.args.n, 3);
}

static void test_null_and_bool_tests(void **state)
{
    (void)state;
    sql_expr *e = expr("SELECT a IS NULL");
    assert_int_equal(e->kind, SQL_E_NULLTEST);
    assert_false(e->u.nulltest.is_not);
    e = expr("SELECT a IS NOT NULL");
    assert_true(e->u.nulltest.is_not);
    e = expr("SELECT a NOTNULL");
    assert_true(e->u.nulltest.is_not);

    static const struct {
        const char *sql;
        sql_booltest_kind k;
    } bt[] = {
        {"SELECT a IS TRUE", SQL_BT_IS_TRUE},           {"SELECT a IS NOT TRUE", SQL_BT_IS_NOT_TRUE},
        {"SELECT a IS FALSE", SQL_BT_IS_FALSE},         {"SELECT a IS NOT FALSE", SQL_BT_IS_NOT_FALSE},
        {"SELECT a IS UNKNOWN", SQL_BT_IS_UNKNOWN},     {"SELECT a IS NOT UNKNOWN", SQL_BT_IS_NOT_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof bt / sizeof bt[0]; i++) {
        e = expr(bt[i].sql);
        assert_int_equal(e->kind, SQL_E_BOOLTEST);
        assert_int_equal(e->u.booltest.test, bt[i].k);
        assert_column(e->u.booltest.arg, NULL, "a");
    }
}

static void test_like(void **state)
{
    (void)state;
    sql_expr *e = expr("SELECT a LIKE 'x%'");
    assert_int_equal(e->kind, SQL_E_LIKE);
    assert_false(e->u.like.is_not);
    assert_false(e->u.like.ilike);
    assert_column(e->u.like.arg, NULL, "a");
    assert_str_const(e->u.like.pattern, "x%");
    assert_null(e->u.like.escape);

    e = expr("SELECT a NOT LIKE 'x'");
    assert_true(e->u.like.is_not);
    assert_false(e->u.like.ilike);
    e = expr("SELECT a ILIKE 'x'");
    assert_false(e->u.like.is_not);
    assert_true(e->u.like.ilike);
    e = expr("SELECT a NOT ILIKE 'x'");
    assert_true(e->u.like.is_not);
    assert_true(e->u.like.ilike);

    const char *sql = "SELECT a LIKE 'x#%' ESCAPE '#'";
    e = expr(sql);
    assert_str_const(e->u.like.pattern, "x#%");
    assert_int_equal(e->u.like.pattern->location, off(sql, "'x#"));
    assert_str_const(e->u.like.escape, "#");
    e = expr("SELECT a NOT ILIKE 'x' ESCAPE ''");
    assert_true(e->u.like.is_not);
    assert_str_const(e->u.like.escape, "");
}

static void test_in_between(void **state)
{
    (void)state;
    sql_expr *e = expr("SELECT a IN (1, 2, 3)");
    assert_int_equal(e->kind, SQL_E_IN);
    assert_false(e->u.in.is_not);
    assert_int_equal(e->u.in.values.n, 3);
    assert_int_const(EXPR(e->u.in.values, 2), 3);
    e = expr("SELECT a NOT IN ('x')");
    assert_true(e->u.in.is_not);
    assert_str_const(EXPR(e->u.in.values, 0), "x");

    e = expr("SELECT a BETWEEN 1 AND 5");
    assert_int_equal(e->kind, SQL_E_BETWEEN);
    assert_false(e->u.between.is_not);
    assert_false(e->u.between.symmetric);
    assert_int_const(e->u.between.lo, 1);
    assert_int_const(e->u.between.hi, 5);
    e = expr("SELECT a NOT BETWEEN 1 AND 5");
    assert_true(e->u.between.is_not);
    assert_false(e->u.between.symmetric);
    e = expr("SELECT a BETWEEN SYMMETRIC 5 AND 1");
    assert_false(e->u.between.is_not);
    assert_true(e->u.between.symmetric);
    e = expr("SELECT a NOT BETWEEN SYMMETRIC 5 AND 1");
    assert_true(e->u.between.is_not);
    assert_true(e->u.between.symmetric);
}

static void test_conditionals(void **state)
{
    (void)state;
    sql_expr *e = expr("SELECT CASE WHEN a > 1 THEN 'big' WHEN a < 0 THEN 'neg' ELSE 'small' END");
    assert_int_equal(e->kind, SQL_E_CASE);
    assert_null(e->u.case_.arg);
    assert_int_equal(e->u.case_.whens.n, 2);
    sql_when *w = e->u.case_.whens.items[1];
    assert_string_equal(w->cond->u.op.op, "<");
    assert_str_const(w->result, "neg");
    assert_str_const(e->u.case_.else_, "small");
    assert_int_equal(e->location, 7);

    e = expr("SELECT CASE a WHEN 1 THEN 'one' END");
    assert_column(e->u.case_.arg, NULL, "a");
    assert_int_const(ITEM(e->u.case_.whens, sql_when, 0)->cond, 1);
    assert_null(e->u.case_.else_);

    e = expr("SELECT COALESCE(a, b, 0)");
    assert_int_equal(e->kind, SQL_E_COALESCE);
    assert_int_equal(e->u.list.args.n, 3);

    e = expr("SELECT NULLIF(a, 0)");
    assert_int_equal(e->kind, SQL_E_NULLIF);
    assert_column(e->u.nullif.left, NULL, "a");
    assert_int_const(e->u.nullif.right, 0);

    e = expr("SELECT GREATEST(a, 1)");
    assert_int_equal(e->kind, SQL_E_MINMAX);
    assert_true(e->u.minmax.greatest);
    assert_int_equal(e->u.minmax.args.n, 2);
    e = expr("SELECT LEAST(a, 1, 2)");
    assert_false(e->u.minmax.greatest);
    assert_int_equal(e->u.minmax.args.n, 3);
}

static void test_casts(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        ros_type type;
        const char *name;
    } casts[] = {
        {"SELECT a::int", ROS_TYPE_INT32, "integer"},
        {"SELECT a::int4", ROS_TYPE_INT32, "integer"},
        {"SELECT CAST(a AS bigint)", ROS_TYPE_INT64, "bigint"},
        {"SELECT a::smallint", ROS_TYPE_INT16, "smallint"},
        {"SELECT a::float8", ROS_TYPE_FLOAT64, "double precision"},
        {"SELECT CAST(a AS double precision)", ROS_TYPE_FLOAT64, "double precision"},
        {"SELECT a::real", ROS_TYPE_FLOAT32, "real"},
        {"SELECT a::varchar(20)", ROS_TYPE_TEXT, "text"},
        {"SELECT a::character varying", ROS_TYPE_TEXT, "text"},
        {"SELECT a::text", ROS_TYPE_TEXT, "text"},
        {"SELECT a::bool", ROS_TYPE_BOOL, "boolean"},
        {"SELECT a::real[]", ROS_TYPE_FLOAT32_ARRAY, "real[]"},
        {"SELECT a::float4[]", ROS_TYPE_FLOAT32_ARRAY, "real[]"},
        {"SELECT a::pg_catalog.int8", ROS_TYPE_INT64, "bigint"},
        {"SELECT a::bytea", ROS_TYPE_BYTEA, "bytea"},
    };
    for (size_t i = 0; i < sizeof casts / sizeof casts[0]; i++) {
        sql_expr *e = expr(casts[i].sql);
        assert_int_equal(e->kind, SQL_E_CAST);
        assert_column(e->u.cast.arg, NULL, "a");
        assert_int_equal(e->u.cast.type.type, casts[i].type);
        assert_string_equal(e->u.cast.type.name, casts[i].name);
    }
    const char *sql = "SELECT 'x'::text";
    sql_expr *e = expr(sql);
    assert_str_const(e->u.cast.arg, "x");
    assert_int_equal(e->u.cast.type.location, off(sql, "text"));

    bad("SELECT a::foo", ROS_ERR_UNDEFINED_OBJECT, "type \"foo\" does not exist", 11);
    bad("SELECT CAST(a AS mytype)", ROS_ERR_UNDEFINED_OBJECT, "type \"mytype\" does not exist", 18);
    bad("SELECT a::int[]", ROS_ERR_UNDEFINED_OBJECT, "type \"int4[]\" does not exist", 11);
}

static void test_functions(void **state)
{
    (void)state;
    sql_expr *e = expr("SELECT count(*)");
    assert_int_equal(e->kind, SQL_E_FUNC);
    assert_string_equal(e->u.func.name, "count");
    assert_true(e->u.func.star);
    assert_int_equal(e->u.func.args.n, 0);

    e = expr("SELECT COUNT(DISTINCT a)");
    assert_string_equal(e->u.func.name, "count");
    assert_true(e->u.func.distinct);
    assert_false(e->u.func.star);
    assert_column(EXPR(e->u.func.args, 0), NULL, "a");

    e = expr("SELECT sum(a) FILTER (WHERE a > 0)");
    assert_non_null(e->u.func.filter);
    assert_string_equal(e->u.func.filter->u.op.op, ">");

    e = expr("SELECT pg_catalog.lower(a)");
    assert_string_equal(e->u.func.name, "lower");
    e = expr("SELECT position('b' IN a)");
    assert_string_equal(e->u.func.name, "position");
    assert_int_equal(e->u.func.args.n, 2);
    e = expr("SELECT substring(a FROM 2 FOR 3)");
    assert_string_equal(e->u.func.name, "substring");
    assert_int_equal(e->u.func.args.n, 3);
    e = expr("SELECT trim(both 'x' from a)");
    assert_string_equal(e->u.func.name, "btrim");
    e = expr("SELECT trim(leading from a)");
    assert_string_equal(e->u.func.name, "ltrim");
    e = expr("SELECT trim(trailing 'y' from a)");
    assert_string_equal(e->u.func.name, "rtrim");
    const char *sql = "SELECT 1 + my_udf(a, 'k')";
    e = expr(sql);
    e = e->u.op.right;
    assert_string_equal(e->u.func.name, "my_udf");
    assert_int_equal(e->location, off(sql, "my_udf"));
    assert_int_equal(e->u.func.args.n, 2);
}

static void test_arrays(void **state)
{
    (void)state;
    sql_expr *e = expr("SELECT ARRAY[1.0, 2, a]");
    assert_int_equal(e->kind, SQL_E_ARRAY);
    assert_int_equal(e->u.list.args.n, 3);
    assert_column(EXPR(e->u.list.args, 2), NULL, "a");

    e = expr("SELECT v[2]");
    assert_int_equal(e->kind, SQL_E_SUBSCRIPT);
    assert_column(e->u.subscript.arg, NULL, "v");
    assert_int_const(e->u.subscript.index, 2);
    e = expr("SELECT t.v[i + 1]");
    assert_column(e->u.subscript.arg, "t", "v");
    assert_int_equal(e->u.subscript.index->kind, SQL_E_OP);
    e = expr("SELECT (ARRAY[1, 2])[1]");
    assert_int_equal(e->u.subscript.arg->kind, SQL_E_ARRAY);
    bad("SELECT v[1:2]", ROS_ERR_NOT_SUPPORTED, "array slices are not supported", 10);
}

static void test_locations(void **state)
{
    (void)state;
    /* byte offsets, also after multi-byte characters */
    const char *sql = "SELECT 'héllo' || x, y FROM tbl WHERE z = 1";
    sql_select *q = sel(sql);
    sql_expr *cat = ITEM(q->targets, sql_target, 0)->expr;
    assert_int_equal(cat->location, off(sql, "||"));
    assert_int_equal(cat->u.op.left->location, 7);
    assert_int_equal(cat->u.op.right->location, off(sql, "x,"));
    assert_int_equal(ITEM(q->targets, sql_target, 1)->location, off(sql, "y FROM"));
    assert_int_equal(ITEM(q->from, sql_from, 0)->location, off(sql, "tbl"));
    assert_int_equal(q->where->u.op.left->location, off(sql, "z ="));
    assert_int_equal(q->where->u.op.right->location, off(sql, "1"));
}

/* ------------------------------------------------------------------ */
/* Other statements */

static void test_insert(void **state)
{
    (void)state;
    const char *sql = "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')";
    sql_stmt *s = ok(sql);
    assert_int_equal(s->kind, SQL_S_INSERT);
    assert_string_equal(s->u.insert.table, "t");
    assert_int_equal(s->u.insert.table_location, 12);
    assert_int_equal(s->u.insert.columns.n, 2);
    assert_string_equal(ITEM(s->u.insert.columns, char, 1), "b");
    assert_int_equal(s->u.insert.source->values.n, 2);
    assert_false(s->u.insert.submit);

    s = ok("INSERT INTO t SELECT a FROM u WHERE a > 0");
    assert_int_equal(s->u.insert.columns.n, 0);
    assert_int_equal(s->u.insert.source->targets.n, 1);
    assert_string_equal(ITEM(s->u.insert.source->from, sql_from, 0)->table, "u");
}

static void test_create_table(void **state)
{
    (void)state;
    const char *sql = "CREATE TABLE IF NOT EXISTS docs (id bigint NOT NULL, body text, emb real[], "
                      "score double precision NULL, v float4[]) "
                      "WITH (connector = 'csv', path = '/tmp/x.csv', header = true, batch = 100, "
                      "ratio = 1.5, mode = fast, delay = '2s')";
    sql_stmt *s = ok(sql);
    assert_int_equal(s->kind, SQL_S_CREATE_TABLE);
    assert_string_equal(s->u.create_table.name, "docs");
    assert_true(s->u.create_table.if_not_exists);
    assert_null(s->u.create_table.as_select);
    assert_int_equal(s->u.create_table.columns.n, 5);
    sql_column_def *c0 = s->u.create_table.columns.items[0];
    assert_string_equal(c0->name, "id");
    assert_int_equal(c0->type.type, ROS_TYPE_INT64);
    assert_true(c0->not_null);
    assert_int_equal(c0->location, off(sql, "id bigint"));
    assert_int_equal(c0->type.location, off(sql, "bigint"));
    sql_column_def *c2 = s->u.create_table.columns.items[2];
    assert_int_equal(c2->type.type, ROS_TYPE_FLOAT32_ARRAY);
    assert_false(c2->not_null);
    assert_int_equal(ITEM(s->u.create_table.columns, sql_column_def, 3)->type.type, ROS_TYPE_FLOAT64);
    assert_int_equal(ITEM(s->u.create_table.columns, sql_column_def, 4)->type.type, ROS_TYPE_FLOAT32_ARRAY);

    const sql_list *o = &s->u.create_table.options;
    assert_int_equal(o->n, 7);
    const sql_option *o0 = option(o, 0, "connector", "csv", true);
    assert_int_equal(o0->location, off(sql, "connector"));
    option(o, 1, "path", "/tmp/x.csv", true);
    option(o, 2, "header", "true", false);
    option(o, 3, "batch", "100", false);
    option(o, 4, "ratio", "1.5", false);
    option(o, 5, "mode", "fast", false);
    option(o, 6, "delay", "2s", true);

    s = ok("CREATE TABLE t (a int)");
    assert_false(s->u.create_table.if_not_exists);
    assert_int_equal(s->u.create_table.options.n, 0);

    bad("CREATE TABLE t (a int) WITH (x = 1, X = 2)", ROS_ERR_SYNTAX, "option \"x\" specified more than once",
        37);
    bad("CREATE TABLE t (a date)", ROS_ERR_UNDEFINED_OBJECT, "type \"date\" does not exist", 19);
}

static void test_create_table_as(void **state)
{
    (void)state;
    sql_stmt *s = ok("CREATE TABLE t2 AS SELECT a, b FROM t WHERE a > 1");
    assert_int_equal(s->kind, SQL_S_CREATE_TABLE);
    assert_string_equal(s->u.create_table.name, "t2");
    assert_int_equal(s->u.create_table.columns.n, 0);
    assert_non_null(s->u.create_table.as_select);
    assert_int_equal(s->u.create_table.as_select->targets.n, 2);
    assert_non_null(s->u.create_table.as_select->where);
}

static void test_drop(void **state)
{
    (void)state;
    sql_stmt *s = ok("DROP TABLE a, b");
    assert_int_equal(s->kind, SQL_S_DROP);
    assert_int_equal(s->u.drop.object, SQL_OBJ_TABLE);
    assert_int_equal(s->u.drop.names.n, 2);
    assert_string_equal(ITEM(s->u.drop.names, char, 1), "b");
    assert_false(s->u.drop.if_exists);
    assert_false(s->u.drop.cascade);

    s = ok("DROP TABLE IF EXISTS a CASCADE");
    assert_true(s->u.drop.if_exists);
    assert_true(s->u.drop.cascade);
    s = ok("DROP TABLE a RESTRICT");
    assert_false(s->u.drop.cascade);

    s = ok("DROP FUNCTION IF EXISTS f(int, real[]), g CASCADE");
    assert_int_equal(s->u.drop.object, SQL_OBJ_FUNCTION);
    assert_int_equal(s->u.drop.names.n, 2);
    assert_string_equal(ITEM(s->u.drop.names, char, 0), "f");
    assert_string_equal(ITEM(s->u.drop.names, char, 1), "g");
    assert_true(s->u.drop.if_exists);
    assert_true(s->u.drop.cascade);

    bad("DROP VIEW v", ROS_ERR_NOT_SUPPORTED, "DROP of this kind of object is not supported", 6);
}

static void check_c_function(const sql_stmt *s)
{
    assert_int_equal(s->kind, SQL_S_CREATE_FUNCTION);
    assert_string_equal(s->u.create_function.name, "dot");
    assert_true(s->u.create_function.or_replace);
    assert_int_equal(s->u.create_function.arg_types.n, 3);
    assert_int_equal(ITEM(s->u.create_function.arg_types, sql_typename, 0)->type, ROS_TYPE_FLOAT32_ARRAY);
    assert_int_equal(ITEM(s->u.create_function.arg_types, sql_typename, 1)->type, ROS_TYPE_FLOAT64);
    assert_string_equal(ITEM(s->u.create_function.arg_types, sql_typename, 1)->name, "double precision");
    assert_int_equal(ITEM(s->u.create_function.arg_types, sql_typename, 2)->type, ROS_TYPE_TEXT);
    assert_null(s->u.create_function.arg_names.items[0]);
    assert_string_equal(ITEM(s->u.create_function.arg_names, char, 1), "x");
    assert_null(s->u.create_function.arg_names.items[2]);
    assert_int_equal(s->u.create_function.ret_type.type, ROS_TYPE_FLOAT32);
    assert_string_equal(s->u.create_function.language, "c");
    assert_string_equal(s->u.create_function.library, "libdot.so");
    assert_string_equal(s->u.create_function.symbol, "dot_f32");
    assert_true(s->u.create_function.strict);
    assert_int_equal(s->u.create_function.volatility, 'i');
}

static void test_create_function(void **state)
{
    (void)state;
    /* libpg_query's path */
    const char *sql = "CREATE OR REPLACE FUNCTION dot(real[], x double precision, text) RETURNS real "
                      "LANGUAGE c AS 'libdot.so', 'dot_f32' STRICT IMMUTABLE";
    sql_stmt *s = ok(sql);
    check_c_function(s);
    assert_int_equal(s->u.create_function.ret_type.location, off(sql, "real LANG"));
    assert_null(s->u.create_function.service);
    assert_int_equal(s->u.create_function.options.n, 0);

    /* the extension grammar, same AST: a WITH annotation routes it there */
    const char *sql2 = "CREATE OR REPLACE FUNCTION dot(real[], x double precision, text) RETURNS real "
                       "IMMUTABLE AS 'libdot.so', 'dot_f32' LANGUAGE C RETURNS NULL ON NULL INPUT "
                       "WITH (batch_size = 1024, decoupled = true)";
    s = ok(sql2);
    check_c_function(s);
    assert_int_equal(s->u.create_function.ret_type.location, off(sql2, "real IMM"));
    option(&s->u.create_function.options, 0, "batch_size", "1024", false);
    option(&s->u.create_function.options, 1, "decoupled", "true", false);

    s = ok("CREATE FUNCTION f(int) RETURNS int AS 'l.so', 's' LANGUAGE c CALLED ON NULL INPUT STABLE");
    assert_false(s->u.create_function.or_replace);
    assert_false(s->u.create_function.strict);
    assert_int_equal(s->u.create_function.volatility, 's');
    s = ok("CREATE FUNCTION f(int) RETURNS int AS 'l.so' LANGUAGE c RETURNS NULL ON NULL INPUT");
    assert_true(s->u.create_function.strict);
    assert_int_equal(s->u.create_function.volatility, 'v');
    assert_null(s->u.create_function.symbol);
    s = ok("CREATE FUNCTION f() RETURNS bigint LANGUAGE c AS 'l.so', 'f' VOLATILE WITH (cost = 5)");
    assert_int_equal(s->u.create_function.arg_types.n, 0);
    assert_int_equal(s->u.create_function.volatility, 'v');
    assert_int_equal(s->u.create_function.options.n, 1);
}

static void test_create_function_service(void **state)
{
    (void)state;
    sql_stmt *s = ok("CREATE FUNCTION embed(t text) RETURNS real[] SERVICE embedder METHOD 'encode' "
                     "WITH (batch = 64, timeout = '2s');");
    assert_int_equal(s->kind, SQL_S_CREATE_FUNCTION);
    assert_string_equal(s->u.create_function.name, "embed");
    assert_string_equal(ITEM(s->u.create_function.arg_names, char, 0), "t");
    assert_int_equal(ITEM(s->u.create_function.arg_types, sql_typename, 0)->type, ROS_TYPE_TEXT);
    assert_int_equal(s->u.create_function.ret_type.type, ROS_TYPE_FLOAT32_ARRAY);
    assert_string_equal(s->u.create_function.service, "embedder");
    assert_string_equal(s->u.create_function.method, "encode");
    assert_null(s->u.create_function.language);
    assert_null(s->u.create_function.library);
    option(&s->u.create_function.options, 0, "batch", "64", false);
    option(&s->u.create_function.options, 1, "timeout", "2s", true);

    /* any order, types with modifiers, a named two-word type */
    s = ok("CREATE OR REPLACE FUNCTION score(a varchar(10), b double precision, float4[]) RETURNS double precision "
           "WITH (x = -1) STRICT SERVICE \"Scorer\"");
    assert_true(s->u.create_function.or_replace);
    assert_int_equal(s->u.create_function.arg_types.n, 3);
    assert_int_equal(ITEM(s->u.create_function.arg_types, sql_typename, 1)->type, ROS_TYPE_FLOAT64);
    assert_string_equal(ITEM(s->u.create_function.arg_names, char, 1), "b");
    assert_int_equal(ITEM(s->u.create_function.arg_types, sql_typename, 2)->type, ROS_TYPE_FLOAT32_ARRAY);
    assert_int_equal(s->u.create_function.ret_type.type, ROS_TYPE_FLOAT64);
    assert_string_equal(s->u.create_function.service, "Scorer");
    assert_null(s->u.create_function.method);
    assert_true(s->u.create_function.strict);
    option(&s->u.create_function.options, 0, "x", "-1", false);

    /* function names fold to lower case on both paths and in DROP */
    s = ok("CREATE FUNCTION \"MyF\"(int) RETURNS int SERVICE s");
    assert_string_equal(s->u.create_function.name, "myf");
    s = ok("CREATE FUNCTION \"MyF\"(int) RETURNS int AS 'l.so', 'f' LANGUAGE C");
    assert_string_equal(s->u.create_function.name, "myf");
    s = ok("DROP FUNCTION \"MyF\"");
    assert_string_equal(ITEM(s->u.drop.names, char, 0), "myf");
    s = ok("DROP TABLE \"MyT\"");
    assert_string_equal(ITEM(s->u.drop.names, char, 0), "MyT");
    bad("CREATE FUNCTION s.f(int) RETURNS int AS 'l.so' LANGUAGE c", ROS_ERR_NOT_SUPPORTED,
        "schema-qualified function names are not supported", 17);

    bad("CREATE FUNCTION f(int) RETURNS int SERVICE s SERVICE t", ROS_ERR_SYNTAX,
        "conflicting or redundant options", 46);
    bad("CREATE FUNCTION f(int) RETURNS nope SERVICE s", ROS_ERR_UNDEFINED_OBJECT,
        "type \"nope\" does not exist", 32);
    bad("CREATE FUNCTION f(int) RETURNS int SERVICE s METHOD m", ROS_ERR_SYNTAX,
        "syntax error at or near \"m\"", 53);
    bad("CREATE FUNCTION f(int RETURNS int SERVICE s", ROS_ERR_SYNTAX,
        "syntax error at or near \"RETURNS\"", 23);
    bad("CREATE FUNCTION f(int) RETURNS int SERVICE", ROS_ERR_SYNTAX, "syntax error at end of input", 43);
    bad("CREATE FUNCTION f(int) RETURNS int SERVICE s WITH (a = 1, a = 2)", ROS_ERR_SYNTAX,
        "option \"a\" specified more than once", 59);
}

static void test_set_show(void **state)
{
    (void)state;
    sql_stmt *s = ok("SET batch_size = 2048");
    assert_int_equal(s->kind, SQL_S_SET);
    assert_string_equal(s->u.set.name, "batch_size");
    assert_string_equal(s->u.set.value, "2048");
    s = ok("SET Search_Mode TO 'fast'");
    assert_string_equal(s->u.set.name, "search_mode");
    assert_string_equal(s->u.set.value, "fast");
    s = ok("SET x = on");
    assert_string_equal(s->u.set.value, "on");
    s = ok("SET x = -1.5");
    assert_string_equal(s->u.set.value, "-1.5");
    s = ok("SET x TO DEFAULT");
    assert_string_equal(s->u.set.name, "x");
    assert_null(s->u.set.value);
    s = ok("RESET x");
    assert_int_equal(s->kind, SQL_S_SET);
    assert_string_equal(s->u.set.name, "x");
    assert_null(s->u.set.value);

    s = ok("SHOW batch_size");
    assert_int_equal(s->kind, SQL_S_SHOW);
    assert_string_equal(s->u.show.what, "batch_size");
    assert_int_equal(s->u.show.job_id, -1);
    s = ok("SHOW ALL");
    assert_string_equal(s->u.show.what, "all");
}

static void test_explain(void **state)
{
    (void)state;
    sql_stmt *s = ok("EXPLAIN SELECT 1");
    assert_int_equal(s->kind, SQL_S_EXPLAIN);
    assert_false(s->u.explain.analyze);
    assert_false(s->u.explain.verbose);
    assert_true(s->u.explain.rewrite);
    assert_int_equal(s->u.explain.stmt->kind, SQL_S_SELECT);
    assert_int_equal(s->u.explain.stmt->location, 8);

    s = ok("EXPLAIN (REWRITE off, ANALYZE) SELECT a FROM t");
    assert_false(s->u.explain.rewrite);
    assert_true(s->u.explain.analyze);
    assert_int_equal(s->u.explain.stmt->location, 31);
    s = ok("EXPLAIN (rewrite false, verbose true, analyze 0) SELECT 1");
    assert_false(s->u.explain.rewrite);
    assert_true(s->u.explain.verbose);
    assert_false(s->u.explain.analyze);
    s = ok("EXPLAIN ANALYZE VERBOSE INSERT INTO t VALUES (1)");
    assert_true(s->u.explain.analyze);
    assert_true(s->u.explain.verbose);
    assert_int_equal(s->u.explain.stmt->kind, SQL_S_INSERT);

    bad("EXPLAIN (costs off) SELECT 1", ROS_ERR_SYNTAX, "unrecognized EXPLAIN option \"costs\"", 10);
    bad("EXPLAIN (rewrite maybe) SELECT 1", ROS_ERR_SYNTAX, "rewrite requires a Boolean value", 10);
}

static void test_delete_transaction(void **state)
{
    (void)state;
    const char *sql = "DELETE FROM t WHERE a = 1";
    sql_stmt *s = ok(sql);
    assert_int_equal(s->kind, SQL_S_DELETE);
    assert_string_equal(s->u.delete_.table, "t");
    assert_int_equal(s->u.delete_.table_location, 12);
    assert_string_equal(s->u.delete_.where->u.op.op, "=");
    s = ok("DELETE FROM t");
    assert_null(s->u.delete_.where);

    static const struct {
        const char *sql, *what;
    } tx[] = {{"BEGIN", "begin"}, {"START TRANSACTION", "begin"}, {"COMMIT", "commit"},
              {"END", "commit"},  {"ROLLBACK", "rollback"},       {"ABORT", "rollback"}};
    for (size_t i = 0; i < sizeof tx / sizeof tx[0]; i++) {
        s = ok(tx[i].sql);
        assert_int_equal(s->kind, SQL_S_TRANSACTION);
        assert_string_equal(s->u.transaction.what, tx[i].what);
    }
    bad("SAVEPOINT x", ROS_ERR_NOT_SUPPORTED, "savepoints and two-phase commit are not supported", 1);
}

/* ------------------------------------------------------------------ */
/* Extension statements */

static void test_services(void **state)
{
    (void)state;
    const char *sql = "CREATE SERVICE embedder USING 'builtin:echo' WITH (workers = 4, endpoint = 'ipc:///tmp/e', "
                      "Decoupled = TRUE, gpu)";
    sql_stmt *s = ok(sql);
    assert_int_equal(s->kind, SQL_S_CREATE_SERVICE);
    assert_string_equal(s->u.create_service.name, "embedder");
    assert_false(s->u.create_service.if_not_exists);
    assert_string_equal(s->u.create_service.handler, "builtin:echo");
    const sql_list *o = &s->u.create_service.options;
    assert_int_equal(o->n, 4);
    option(o, 0, "workers", "4", false);
    option(o, 1, "endpoint", "ipc:///tmp/e", true);
    const sql_option *d = option(o, 2, "decoupled", "true", false);
    assert_int_equal(d->location, off(sql, "Decoupled"));
    option(o, 3, "gpu", NULL, false);

    s = ok("create service if not exists \"My Svc\" using 'lib.so:sym';");
    assert_true(s->u.create_service.if_not_exists);
    assert_string_equal(s->u.create_service.name, "My Svc");
    assert_int_equal(s->u.create_service.options.n, 0);

    s = ok("ALTER SERVICE embedder SET (workers = 8, note = 'it''s')");
    assert_int_equal(s->kind, SQL_S_ALTER_SERVICE);
    assert_string_equal(s->u.alter_service.name, "embedder");
    option(&s->u.alter_service.options, 0, "workers", "8", false);
    option(&s->u.alter_service.options, 1, "note", "it's", true);

    s = ok("DROP SERVICE a");
    assert_int_equal(s->kind, SQL_S_DROP);
    assert_int_equal(s->u.drop.object, SQL_OBJ_SERVICE);
    assert_int_equal(s->u.drop.names.n, 1);
    assert_false(s->u.drop.if_exists);
    assert_false(s->u.drop.cascade);
    s = ok("DROP SERVICE IF EXISTS a, b CASCADE");
    assert_int_equal(s->u.drop.names.n, 2);
    assert_string_equal(ITEM(s->u.drop.names, char, 1), "b");
    assert_true(s->u.drop.if_exists);
    assert_true(s->u.drop.cascade);
    s = ok("DROP SERVICE a RESTRICT;");
    assert_false(s->u.drop.cascade);

    /* comments before the keywords do not hide an extension statement */
    s = ok("/* setup */ -- more\nCREATE SERVICE s USING 'x'");
    assert_int_equal(s->kind, SQL_S_CREATE_SERVICE);
    s = ok("-- list\nSHOW TABLES -- all of them");
    assert_int_equal(s->kind, SQL_S_SHOW);
    assert_string_equal(s->u.show.what, "tables");
}

static void test_alter_function(void **state)
{
    (void)state;
    sql_stmt *s = ok("ALTER FUNCTION embed SET (batch = 32)");
    assert_int_equal(s->kind, SQL_S_ALTER_FUNCTION);
    assert_string_equal(s->u.alter_function.name, "embed");
    option(&s->u.alter_function.options, 0, "batch", "32", false);
    s = ok("ALTER FUNCTION embed(text, x double precision, real[]) SET (decoupled = false, timeout = '5s')");
    assert_string_equal(s->u.alter_function.name, "embed");
    option(&s->u.alter_function.options, 0, "decoupled", "false", false);
    option(&s->u.alter_function.options, 1, "timeout", "5s", true);
    s = ok("ALTER FUNCTION f() SET (a = 1.25)");
    option(&s->u.alter_function.options, 0, "a", "1.25", false);

    bad("ALTER FUNCTION f SET ()", ROS_ERR_SYNTAX, "syntax error at or near \")\"", 23);
    bad("ALTER FUNCTION f RENAME TO g", ROS_ERR_SYNTAX, "syntax error at or near \"RENAME\"", 18);
}

static void test_show_extensions(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *what;
        int64_t job;
    } shows[] = {
        {"SHOW TABLES", "tables", -1},
        {"show functions;", "functions", -1},
        {"SHOW SERVICES", "services", -1},
        {"SHOW JOBS", "jobs", -1},
        {"SHOW CHECKPOINTS", "checkpoints", -1},
        {"SHOW CHECKPOINTS FOR JOB 42", "checkpoints", 42},
        {"SHOW SERVICE EVENTS", "service events", -1},
    };
    for (size_t i = 0; i < sizeof shows / sizeof shows[0]; i++) {
        sql_stmt *s = ok(shows[i].sql);
        assert_int_equal(s->kind, SQL_S_SHOW);
        assert_string_equal(s->u.show.what, shows[i].what);
        assert_true(s->u.show.job_id == shows[i].job);
    }
    bad("SHOW CHECKPOINTS FOR JOB", ROS_ERR_SYNTAX, "syntax error at end of input", 25);
    bad("SHOW CHECKPOINTS FOR 3", ROS_ERR_SYNTAX, "syntax error at or near \"3\"", 22);
    bad("SHOW SERVICE", ROS_ERR_SYNTAX, "syntax error at end of input", 13);
    bad("SHOW TABLES extra", ROS_ERR_SYNTAX, "syntax error at or near \"extra\"", 13);
}

static void test_submit(void **state)
{
    (void)state;
    const char *sql = "SUBMIT INSERT INTO t (a) SELECT f(x) FROM src";
    sql_stmt *s = ok(sql);
    assert_int_equal(s->kind, SQL_S_INSERT);
    assert_true(s->u.insert.submit);
    assert_string_equal(s->u.insert.table, "t");
    assert_int_equal(s->u.insert.table_location, off(sql, "t (a)"));
    sql_select *q = s->u.insert.source;
    assert_int_equal(ITEM(q->targets, sql_target, 0)->expr->location, off(sql, "f(x)"));
    assert_int_equal(ITEM(q->from, sql_from, 0)->location, off(sql, "src"));

    bad("SUBMIT SELECT 1", ROS_ERR_SYNTAX, "syntax error at or near \"SELECT\"", 8);
    bad("SUBMIT", ROS_ERR_SYNTAX, "syntax error at end of input", 7);
    /* errors inside keep the positions of the original text */
    bad("SUBMIT INSERT INTO t VALUES (1,)", ROS_ERR_SYNTAX, "syntax error at or near \")\"", 32);
}

static void test_job_control(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *action;
        int64_t id;
    } jobs[] = {
        {"STOP JOB 3", "stop", 3},
        {"resume job 12;", "resume", 12},
        {"CHECKPOINT JOB 7", "checkpoint", 7},
    };
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
        sql_stmt *s = ok(jobs[i].sql);
        assert_int_equal(s->kind, SQL_S_JOB);
        assert_string_equal(s->u.job.action, jobs[i].action);
        assert_true(s->u.job.id == jobs[i].id);
    }
    bad("STOP JOB", ROS_ERR_SYNTAX, "syntax error at end of input", 9);
    bad("STOP JOB x", ROS_ERR_SYNTAX, "syntax error at or near \"x\"", 10);
    bad("RESUME JOB 1 2", ROS_ERR_SYNTAX, "syntax error at or near \"2\"", 14);
    bad("CHECKPOINT JOB 0", ROS_ERR_OUT_OF_RANGE, "job id is out of range", 16);
    /* PostgreSQL's own CHECKPOINT is not ours */
}

static void test_extension_syntax_errors(void **state)
{
    (void)state;
    bad("CREATE SERVICE", ROS_ERR_SYNTAX, "syntax error at end of input", 15);
    bad("CREATE SERVICE s", ROS_ERR_SYNTAX, "syntax error at end of input", 17);
    bad("CREATE SERVICE s USING handler", ROS_ERR_SYNTAX, "syntax error at or near \"handler\"", 24);
    bad("CREATE SERVICE select USING 'x'", ROS_ERR_SYNTAX, "syntax error at or near \"select\"", 16);
    bad("CREATE SERVICE s USING 'x' WITH (a = )", ROS_ERR_SYNTAX, "syntax error at or near \")\"", 38);
    bad("CREATE SERVICE s USING 'x' WITH (a 1)", ROS_ERR_SYNTAX, "syntax error at or near \"1\"", 36);
    bad("CREATE SERVICE s USING 'x' WITH (a = 1", ROS_ERR_SYNTAX, "syntax error at end of input", 39);
    bad("CREATE SERVICE s USING 'x' WITH (a = 1, b = 2, A = 3)", ROS_ERR_SYNTAX,
        "option \"a\" specified more than once", 48);
    bad("ALTER SERVICE s SET workers = 2", ROS_ERR_SYNTAX, "syntax error at or near \"workers\"", 21);
    bad("DROP SERVICE IF s", ROS_ERR_SYNTAX, "syntax error at or near \"s\"", 17);
    bad("DROP SERVICE a,", ROS_ERR_SYNTAX, "syntax error at end of input", 16);
    bad("DROP SERVICE a; SELECT 1", ROS_ERR_SYNTAX, "syntax error at or near \"SELECT\"", 17);
    /* positions count characters, not bytes */
    bad("CREATE SERVICE s USING 'é' WITH (x = 1) oops", ROS_ERR_SYNTAX, "syntax error at or near \"oops\"", 41);

    char *r = report("CREATE SERVICE s USING 'x'\n  WITH (a = 1,, b = 2)");
    assert_string_equal(r, "ERROR:  syntax error at or near \",\"\n"
                           "LINE 2:   WITH (a = 1,, b = 2)\n"
                           "                      ^\n");
    free(r);
}

/* ------------------------------------------------------------------ */
/* Errors */

static void test_syntax_errors(void **state)
{
    (void)state;
    bad("SELECT * FORM t", ROS_ERR_SYNTAX, "syntax error at or near \"FORM\"", 10);
    bad("SELECT * FROM", ROS_ERR_SYNTAX, "syntax error at end of input", 14);
    bad("SELECT 'é' FORM t", ROS_ERR_SYNTAX, "syntax error at or near \"t\"", 17);
    bad("SELECT 'abc", ROS_ERR_SYNTAX, "unterminated quoted string at or near \"'abc\"", 8);
    bad("SELECT 1; SELECT 2", ROS_ERR_SYNTAX, "only one statement can be parsed at a time", 11);
    bad(";", ROS_ERR_SYNTAX, "empty statement", 0);
    bad("  -- nothing", ROS_ERR_SYNTAX, "empty statement", 0);

    char *r = report("SELECT * FORM t");
    assert_string_equal(r, "ERROR:  syntax error at or near \"FORM\"\n"
                           "LINE 1: SELECT * FORM t\n"
                           "                 ^\n");
    free(r);
    r = report("SELECT a,\n       b\n  FROM t WHERE");
    assert_string_equal(r, "ERROR:  syntax error at end of input\n"
                           "LINE 3:   FROM t WHERE\n"
                           "                      ^\n");
    free(r);
    r = report("SELECT x::nosuch FROM t");
    assert_string_equal(r, "ERROR:  type \"nosuch\" does not exist\n"
                           "LINE 1: SELECT x::nosuch FROM t\n"
                           "                  ^\n");
    free(r);
    r = report("SELECT 'ü', a FROM t JOIN u ON true");
    assert_string_equal(r, "ERROR:  JOIN is not supported\n"
                           "LINE 1: SELECT 'ü', a FROM t JOIN u ON true\n"
                           "                             ^\n");
    free(r);
}

static void test_not_supported(void **state)
{
    (void)state;
    const char *ns = ROS_ERR_NOT_SUPPORTED;
    bad("WITH x AS (SELECT 1) SELECT * FROM x", ns, "WITH is not supported", 1);
    bad("SELECT sum(a) OVER (PARTITION BY b) FROM t", ns, "window functions are not supported", 20);
    bad("SELECT a FROM t GROUP BY GROUPING SETS ((a), ())", ns, "GROUPING SETS, ROLLUP and CUBE are not supported",
        26);
    bad("SELECT a FROM t GROUP BY ROLLUP (a)", ns, "GROUPING SETS, ROLLUP and CUBE are not supported", 26);
    bad("SELECT a FROM t FOR UPDATE", ns, "SELECT FOR UPDATE/SHARE is not supported", 17);
    bad("SELECT a FROM t ORDER BY a USING <", ns, "ORDER BY USING is not supported", 28);
    bad("SELECT (SELECT 1)", ns, "subqueries are not supported", 8);
    bad("SELECT a FROM t WHERE a IN (SELECT b FROM u)", ns, "subqueries are not supported", 25);
    bad("SELECT a FROM t WHERE EXISTS (SELECT 1)", ns, "subqueries are not supported", 23);
    bad("SELECT a FROM t, u", ns, "more than one table in FROM is not supported", 18);
    bad("SELECT a FROM t JOIN u ON t.a = u.a", ns, "JOIN is not supported", 17);
    bad("SELECT a FROM (SELECT 1) s", ns, "subqueries in FROM are not supported", 23);
    bad("SELECT a FROM generate_series(1, 3) g", ns, "functions in FROM are not supported", 15);
    bad("SELECT DISTINCT ON (a) a FROM t", ns, "DISTINCT ON is not supported", 21);
    bad("SELECT 1 UNION SELECT 2", ns, "UNION, INTERSECT and EXCEPT are not supported", 10);
    bad("SELECT a IS DISTINCT FROM b", ns, "IS DISTINCT FROM is not supported", 10);
    bad("SELECT a FROM s.t", ns, "schema-qualified names are not supported", 15);
    bad("SELECT $1", ns, "parameters are not supported", 8);
    bad("SELECT a = ANY(b)", ns, "ANY/ALL (array) is not supported", 10);
    bad("SELECT a SIMILAR TO 'x'", ns, "SIMILAR TO is not supported", 10);
    bad("SELECT string_agg(a, ',' ORDER BY a) FROM t", ns, "ORDER BY in aggregate calls is not supported", 35);
    bad("SELECT (a).b FROM t", ns, "field selection is not supported", 9);
    bad("SELECT ROW(1, 2)", ns, "row constructors are not supported", 8);
    bad("SELECT CURRENT_DATE", ns, "SQL value functions (CURRENT_DATE, ...) are not supported", 8);
    bad("SELECT a COLLATE \"C\" FROM t", ns, "COLLATE is not supported", 10);
    bad("SELECT B'101'", ns, "bit string constants are not supported", 8);
    bad("SELECT myschema.f(a)", ns, "schema-qualified function names are not supported", 8);
    bad("UPDATE t SET a = 1", ns, "UPDATE is not supported", 1);
    bad("CREATE INDEX i ON t (a)", ns, "CREATE INDEX is not supported", 1);
    bad("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", ns, "ON CONFLICT is not supported", 26);
    bad("INSERT INTO t VALUES (1) RETURNING a", ns, "RETURNING is not supported", 26);
    bad("INSERT INTO t VALUES (DEFAULT)", ns, "DEFAULT is not supported", 23);
    bad("CREATE TABLE t (a int PRIMARY KEY)", ns, "column constraints other than NOT NULL are not supported", 23);
    bad("CREATE TABLE t (a int DEFAULT 1)", ns, "column constraints other than NOT NULL are not supported", 23);
    bad("CREATE TEMP TABLE t (a int)", ns, "temporary and unlogged tables are not supported", 19);
    bad("DELETE FROM t USING u WHERE t.a = u.a", ns, "DELETE ... USING is not supported", 21);
    bad("CREATE FUNCTION f(int) RETURNS int LANGUAGE sql AS 'select 1' COST 10", ns,
        "function option cost is not supported", 63);
    bad("SELECT a FROM t LIMIT 1 OFFSET 1 FETCH FIRST 1 ROWS WITH TIES", ROS_ERR_SYNTAX,
        "syntax error at or near \"FETCH\"", 34);
    bad("SELECT a FROM t ORDER BY a FETCH FIRST 1 ROWS WITH TIES", ns,
        "FETCH ... WITH TIES is not supported", 28);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    /* a long chain must neither crash nor be refused */
    ros_strbuf sb = ROS_STRBUF_INIT;
    ros_strbuf_append(&sb, "SELECT 1");
    for (int i = 0; i < 500; i++)
        ros_strbuf_append(&sb, " + 1");
    sql_expr *e = expr(ros_strbuf_cstr(&sb));
    assert_int_equal(e->kind, SQL_E_OP);

    /* thousands of levels would overflow the stack inside libpg_query and
     * protobuf-c: refused before parsing, with a position */
    ros_strbuf_reset(&sb);
    ros_strbuf_append(&sb, "SELECT 1");
    for (int i = 0; i < 20000; i++)
        ros_strbuf_append(&sb, " + 1");
    bad(ros_strbuf_cstr(&sb), ROS_ERR_NOT_SUPPORTED, "expression is too deeply nested", 4010);
    ros_strbuf_reset(&sb);
    ros_strbuf_append(&sb, "SELECT ");
    for (int i = 0; i < 5000; i++)
        ros_strbuf_append(&sb, "f(");
    bad(ros_strbuf_cstr(&sb), ROS_ERR_NOT_SUPPORTED, "expression is too deeply nested", 2009);

    /* long but flat statements are fine */
    ros_strbuf_reset(&sb);
    ros_strbuf_append(&sb, "SELECT a FROM t WHERE a = 0");
    for (int i = 0; i < 3000; i++)
        ros_strbuf_appendf(&sb, " AND a <> %d OR b = -%d", i, i);
    sql_select *q = sel(ros_strbuf_cstr(&sb));
    assert_int_equal(q->where->kind, SQL_E_OR);
    assert_int_equal(q->where->u.list.args.n, 3001);
    ros_strbuf_reset(&sb);
    ros_strbuf_append(&sb, "INSERT INTO t VALUES (-1, 'x' || 'y')");
    for (int i = 0; i < 5000; i++)
        ros_strbuf_appendf(&sb, ", (-%d, 'x' || 'y')", i);
    sql_stmt *s = ok(ros_strbuf_cstr(&sb));
    assert_int_equal(s->u.insert.source->values.n, 5001);
    ros_strbuf_free(&sb);
}

static void test_keywords(void **state)
{
    (void)state;
    const char *const *kw = sql_keywords();
    bool select = false, service = false, services = false, decoupled = false;
    int n = 0;
    for (; kw[n]; n++) {
        select |= strcmp(kw[n], "SELECT") == 0;
        service |= strcmp(kw[n], "SERVICE") == 0;
        services |= strcmp(kw[n], "SERVICES") == 0;
        decoupled |= strcmp(kw[n], "DECOUPLED") == 0;
        for (int k = 0; k < n; k++)
            assert_string_not_equal(kw[k], kw[n]);
    }
    assert_true(n > 50);
    assert_true(select && service && services && decoupled);
}

static void test_expr_new_and_list(void **state)
{
    (void)state;
    sql_expr *e = sql_expr_new(&arena, SQL_E_CONST, 12);
    assert_non_null(e);
    assert_int_equal(e->kind, SQL_E_CONST);
    assert_int_equal(e->location, 12);
    assert_int_equal(e->u.cnst.kind, SQL_C_NULL);
    sql_list l = {0, 0, NULL};
    for (intptr_t i = 0; i < 100; i++)
        sql_list_push(&arena, &l, (void *)i);
    assert_int_equal(l.n, 100);
    for (intptr_t i = 0; i < 100; i++)
        assert_true((intptr_t)l.items[i] == i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_split_basic),
        T(test_split_comments),
        T(test_split_empty),
        T(test_split_extension_statements),
        T(test_split_keeps_unknown_statements),
        T(test_split_offsets),
        T(test_split_errors),
        T(test_is_complete),
        T(test_select_clauses),
        T(test_select_star),
        T(test_select_limit_all),
        T(test_values),
        T(test_constants),
        T(test_operators),
        T(test_bool_exprs),
        T(test_null_and_bool_tests),
        T(test_like),
        T(test_in_between),
        T(test_conditionals),
        T(test_casts),
        T(test_functions),
        T(test_arrays),
        T(test_locations),
        T(test_insert),
        T(test_create_table),
        T(test_create_table_as),
        T(test_drop),
        T(test_create_function),
        T(test_create_function_service),
        T(test_set_show),
        T(test_explain),
        T(test_delete_transaction),
        T(test_services),
        T(test_alter_function),
        T(test_show_extensions),
        T(test_submit),
        T(test_job_control),
        T(test_extension_syntax_errors),
        T(test_syntax_errors),
        T(test_not_supported),
        T(test_deep_nesting),
        T(test_keywords),
        T(test_expr_new_and_list),
#undef T
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pg_query_exit();
    return rc;
}
