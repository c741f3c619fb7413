/*
 * test_expr.c
 *    The vectorized expression engine through the session API.
 *
 * Each test opens a transient session, runs statements and collects the
 * result as strings (ros_format_value; NULL for SQL NULL).  Covered: NULL
 * propagation, three-valued logic, overflow and division by zero with their
 * SQLSTATEs, CASE/COALESCE evaluating only the branches a row needs,
 * PostgreSQL's constant folding, results spanning several batches, NULL
 * ordering across batches and LIKE edge cases.  Expected values are
 * PostgreSQL 15's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rosql/rosql.h>

#include "runtime/core/error.h"

/* A collected result: nrows x ncols cells, NULL cells for SQL NULL. */
typedef struct result {
    int ncols;
    size_t nrows, cap;
    char **cells;    /* row-major */
    int nbatches;    /* batch callbacks seen */
    char names[8][64];
} result;

static int res_begin(void *arg, int ncols, const char *const *names, const ros_type *types)
{
    (void)types;
    result *r = arg;
    r->ncols = ncols;
    for (int i = 0; i < ncols && i < 8; i++)
        snprintf(r->names[i], sizeof r->names[i], "%s", names[i]);
    return 0;
}

static int res_batch(void *arg, const ros_batch *b)
{
    result *r = arg;
    r->nbatches++;
    for (uint32_t row = 0; row < b->nrows; row++) {
        if (r->nrows == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->cells = realloc(r->cells, r->cap * (size_t)r->ncols * sizeof(char *));
            assert_non_null(r->cells);
        }
        for (int c = 0; c < r->ncols; c++) {
            char *buf = NULL;
            size_t len = 0, cap = 0;
            int rc = ros_format_value(&b->cols[c], row, &buf, &len, &cap);
            assert_true(rc == 0 || rc == 1);
            if (rc == 1) {
                free(buf);
                buf = NULL;
            }
            r->cells[r->nrows * (size_t)r->ncols + (size_t)c] = buf;
        }
        r->nrows++;
    }
    return 0;
}

static void res_free(result *r)
{
    for (size_t i = 0; i < r->nrows * (size_t)r->ncols; i++)
        free(r->cells[i]);
    free(r->cells);
    memset(r, 0, sizeof *r);
}

static const char *cell(const result *r, size_t row, int col)
{
    assert_true(row < r->nrows);
    assert_true(col < r->ncols);
    return r->cells[row * (size_t)r->ncols + (size_t)col];
}

/* Runs sql, which must succeed; the result goes to *r (cleared first). */
static void run_ok(ros_session *s, const char *sql, result *r)
{
    ros_error err;
    memset(&err, 0, sizeof err);
    memset(r, 0, sizeof *r);
    ros_result_sink sink = {r, res_begin, res_batch, NULL, NULL, NULL};
    int rc = ros_session_execute(s, sql, &sink, &err);
    if (rc != 0)
        fail_msg("%s: %s", sql, err.message);
}

static void exec_ok(ros_session *s, const char *sql)
{
    result r;
    run_ok(s, sql, &r);
    res_free(&r);
}

/* Runs sql, which must fail with SQLSTATE code (and message, unless NULL). */
static void run_err(ros_session *s, const char *sql, const char *code, const char *message)
{
    ros_error err;
    result r;
    memset(&err, 0, sizeof err);
    memset(&r, 0, sizeof r);
    ros_result_sink sink = {&r, res_begin, res_batch, NULL, NULL, NULL};
    int rc = ros_session_execute(s, sql, &sink, &err);
    res_free(&r);
    if (rc == 0)
        fail_msg("%s: succeeded, expected error %s", sql, code);
    if (strcmp(err.code, code) != 0)
        fail_msg("%s: error %s (%s), expected %s", sql, err.code, err.message, code);
    if (message)
        assert_string_equal(err.message, message);
}

/* The single value of a one-row, one-column query (NULL for SQL NULL);
 * the returned string is the caller's. */
static char *scalar(ros_session *s, const char *sql)
{
    result r;
    run_ok(s, sql, &r);
    assert_int_equal(r.nrows, 1);
    assert_int_equal(r.ncols, 1);
    char *v = r.cells[0];
    r.cells[0] = NULL;
    res_free(&r);
    return v;
}

static void expect(ros_session *s, const char *sql, const char *want)
{
    char *v = scalar(s, sql);
    if (want == NULL) {
        if (v != NULL)
            fail_msg("%s: got %s, expected NULL", sql, v);
    } else {
        if (v == NULL)
            fail_msg("%s: got NULL, expected %s", sql, want);
        if (strcmp(v, want) != 0)
            fail_msg("%s: got %s, expected %s", sql, v, want);
    }
    free(v);
}

static int setup(void **state)
{
    ros_error err;
    memset(&err, 0, sizeof err);
    ros_session *s = ros_session_open(NULL, &err);
    if (!s)
        fail_msg("ros_session_open: %s", err.message);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    ros_session_close(*state);
    return 0;
}

/* ---------------------------------------------------------------- */
/* NULLs and logic */

static void test_null_propagation(void **state)
{
    ros_session *s = *state;
    static const char *const nulls[] = {
        "SELECT 1 + NULL::integer", "SELECT NULL::bigint * 0", "SELECT -NULL::integer", "SELECT 1 / NULL::integer",
        "SELECT NULL::integer / 0", "SELECT NULL::integer % 0", "SELECT 'a' || NULL", "SELECT upper(NULL::text)",
        "SELECT length(NULL::text)", "SELECT substr('abc', NULL)", "SELECT abs(NULL::integer)",
        "SELECT NULL::integer = 1", "SELECT NULL::text < 'a'", "SELECT NULL::integer IN (1, 2)",
        "SELECT 3 IN (1, NULL)", "SELECT 3 NOT IN (1, NULL)", "SELECT NULL::integer BETWEEN 1 AND 2",
        "SELECT 'a' LIKE NULL", "SELECT NULLIF(NULL::integer, 1)", "SELECT GREATEST(NULL::integer, NULL)",
        "SELECT CASE WHEN NULL THEN 1 END", "SELECT CAST(NULL AS integer) + 2147483647 + 1",
        "SELECT power(NULL::float8, 2)", "SELECT replace('a', NULL, 'b')",
    };
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        expect(s, nulls[i], NULL);
    /* but not everywhere */
    expect(s, "SELECT NULL::integer IS NULL", "t");
    expect(s, "SELECT concat('a', NULL, 'b')", "ab");
    expect(s, "SELECT coalesce(NULL, NULL, 3)", "3");
    expect(s, "SELECT GREATEST(NULL, 2, 1)", "2");
    expect(s, "SELECT 1 IN (1, NULL)", "t");
    expect(s, "SELECT count(NULL::integer)", "0");
}

static void test_three_valued_logic(void **state)
{
    ros_session *s = *state;
    exec_ok(s, "CREATE TABLE tv (id integer, p boolean, q boolean)");
    exec_ok(s, "INSERT INTO tv VALUES (1, true, true), (2, true, false), (3, true, NULL), (4, false, true), "
               "(5, false, false), (6, false, NULL), (7, NULL, true), (8, NULL, false), (9, NULL, NULL)");
    result r;
    run_ok(s, "SELECT p AND q, p OR q, NOT p, p IS TRUE, p IS NOT FALSE, p IS UNKNOWN FROM tv ORDER BY id", &r);
    /* t, f, NULL as 1, 0, -1 */
    static const int tv[] = {1, 0, -1};
    assert_int_equal(r.nrows, 9);
    for (int i = 0; i < 9; i++) {
        int p = tv[i / 3], q = tv[i % 3];
        int and_ = (p == 0 || q == 0) ? 0 : (p == 1 && q == 1) ? 1 : -1;
        int or_ = (p == 1 || q == 1) ? 1 : (p == 0 && q == 0) ? 0 : -1;
        int not_ = p < 0 ? -1 : !p;
        int want[6] = {and_, or_, not_, p == 1, p != 0, p < 0};
        for (int c = 0; c < 6; c++) {
            const char *v = cell(&r, (size_t)i, c);
            const char *w = want[c] < 0 ? NULL : want[c] ? "t" : "f";
            if (w == NULL)
                assert_null(v);
            else {
                assert_non_null(v);
                assert_string_equal(v, w);
            }
        }
    }
    res_free(&r);
    /* WHERE keeps only true rows: NOT (p AND q) is true for 2, 4, 5, 6, 8 */
    run_ok(s, "SELECT id FROM tv WHERE NOT (p AND q) ORDER BY id", &r);
    assert_int_equal(r.nrows, 5);
    static const char *const ids[] = {"2", "4", "5", "6", "8"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(cell(&r, (size_t)i, 0), ids[i]);
    res_free(&r);
    expect(s, "SELECT NULL AND false", "f");
    expect(s, "SELECT NULL OR true", "t");
    expect(s, "SELECT NULL AND true", NULL);
}

/* ---------------------------------------------------------------- */
/* Errors */

static void test_overflow(void **state)
{
    ros_session *s = *state;
    run_err(s, "SELECT 2147483647 + 1", "22003", "integer out of range");
    run_err(s, "SELECT -2147483647 - 2", "22003", "integer out of range");
    run_err(s, "SELECT 65536 * 65536", "22003", "integer out of range");
    run_err(s, "SELECT (-2147483648) / -1", "22003", "integer out of range");
    run_err(s, "SELECT abs(-2147483648)", "22003", "integer out of range");
    run_err(s, "SELECT 9223372036854775807 + 1", "22003", "bigint out of range");
    run_err(s, "SELECT (-9223372036854775807 - 1) * -1", "22003", "bigint out of range");
    run_err(s, "SELECT (-32768)::smallint * (-1)::smallint", "22003", "smallint out of range");
    run_err(s, "SELECT -(-32768)::smallint", "22003", "smallint out of range");
    run_err(s, "SELECT 32767::smallint + 1::smallint", "22003", "smallint out of range");
    run_err(s, "SELECT 40000::smallint", "22003", "smallint out of range");
    run_err(s, "SELECT '99999999999'::integer", "22003", "value \"99999999999\" is out of range for type integer");
    run_err(s, "SELECT 1e300::float8 * 1e300::float8", "22003", "value out of range: overflow");
    run_err(s, "SELECT 1e39::float8::real", "22003", "value out of range: overflow");
    run_err(s, "SELECT 1e-50::float8::real", "22003", "value out of range: underflow");
    run_err(s, "SELECT '1e400'::float8", "22003", "\"1e400\" is out of range for type double precision");
    run_err(s, "SELECT 2147483647.5::float8::integer", "22003", "integer out of range");
    /* mixed widths widen first */
    expect(s, "SELECT 2147483647 + 1::bigint", "2147483648");
    expect(s, "SELECT 32767::smallint + 1", "32768");
    /* overflow only in rows that are evaluated */
    exec_ok(s, "CREATE TABLE ov (i integer)");
    exec_ok(s, "INSERT INTO ov VALUES (1), (2147483647), (NULL)");
    run_err(s, "SELECT i + 1 FROM ov", "22003", "integer out of range");
    expect(s, "SELECT sum(i + 1) FROM ov WHERE i < 10", "2");
    expect(s, "SELECT sum(i) FROM ov", "2147483648");
}

static void test_division_by_zero(void **state)
{
    ros_session *s = *state;
    run_err(s, "SELECT 1 / 0", "22012", "division by zero");
    run_err(s, "SELECT 1 % 0", "22012", "division by zero");
    run_err(s, "SELECT 1::bigint / 0", "22012", "division by zero");
    run_err(s, "SELECT 1::smallint % 0::smallint", "22012", "division by zero");
    run_err(s, "SELECT 1.5::float8 / 0", "22012", "division by zero");
    run_err(s, "SELECT 1.5::real / 0::real", "22012", "division by zero");
    /* integer division truncates toward zero; % takes the dividend's sign */
    expect(s, "SELECT -7 / 2", "-3");
    expect(s, "SELECT 7 / -2", "-3");
    expect(s, "SELECT -7 % 3", "-1");
    expect(s, "SELECT 7 % -3", "1");
    expect(s, "SELECT (-2147483648) % -1", "0");
    exec_ok(s, "CREATE TABLE dz (x integer)");
    exec_ok(s, "INSERT INTO dz VALUES (5), (0)");
    run_err(s, "SELECT 10 / x FROM dz", "22012", "division by zero");
    expect(s, "SELECT sum(10 / x) FROM dz WHERE x <> 0", "2");
}

static void test_case_evaluates_needed_branches(void **state)
{
    ros_session *s = *state;
    exec_ok(s, "CREATE TABLE cz (x integer)");
    exec_ok(s, "INSERT INTO cz VALUES (0), (5), (-2), (NULL), (0)");
    result r;
    run_ok(s, "SELECT CASE WHEN x = 0 THEN 0 ELSE 10 / x END FROM cz", &r);
    static const char *const want[] = {"0", "2", "-5", NULL, "0"};
    assert_int_equal(r.nrows, 5);
    for (int i = 0; i < 5; i++) {
        if (want[i])
            assert_string_equal(cell(&r, (size_t)i, 0), want[i]);
        else
            assert_null(cell(&r, (size_t)i, 0));
    }
    res_free(&r);
    /* simple CASE, COALESCE, NULLIF, AND and OR guard the same way */
    expect(s, "SELECT sum(CASE x WHEN 0 THEN -1 ELSE 100 / x END) FROM cz", "-32");
    expect(s, "SELECT sum(coalesce(nullif(x, 0), 1)) FROM cz", "6");
    expect(s, "SELECT sum(100 / nullif(x, 0)) FROM cz", "-30");
    expect(s, "SELECT count(*) FROM cz WHERE x <> 0 AND 10 / x > 1", "1");
    expect(s, "SELECT count(*) FROM cz WHERE x = 0 OR 10 / x < 0", "3");
    /* constants fold as PostgreSQL folds them: a settled CASE, COALESCE,
     * AND or OR leaves the rest alone, anything else is an error at once */
    expect(s, "SELECT CASE WHEN 1 = 1 THEN 1 ELSE 1 / 0 END", "1");
    expect(s, "SELECT CASE WHEN false THEN 1 / 0 ELSE 2 END", "2");
    expect(s, "SELECT coalesce(NULL, 1, 1 / 0)", "1");
    expect(s, "SELECT false AND 1 / 0 = 1", "f");
    expect(s, "SELECT true OR 1 / 0 = 1", "t");
    run_err(s, "SELECT CASE WHEN x = 0 THEN 0 ELSE 1 / 0 END FROM cz", "22012", "division by zero");
    run_err(s, "SELECT CASE WHEN true THEN 1 ELSE 'a' END", "22P02", "invalid input syntax for type integer: \"a\"");
}

/* ---------------------------------------------------------------- */
/* Batches */

static void test_batch_boundaries(void **state)
{
    ros_session *s = *state;
    exec_ok(s, "CREATE TABLE g (id bigint) WITH (connector='datagen', rows=5000)");
    exec_ok(s, "CREATE TABLE bt (id bigint, v integer)");
    exec_ok(s, "INSERT INTO bt SELECT id, CASE WHEN id % 3 = 0 THEN NULL ELSE (id % 100)::integer END FROM g");
    /* expected values computed here */
    long long cnt = 0, sum = 0, sumdiv = 0;
    for (long long id = 1; id <= 5000; id++)
        if (id % 3 != 0) {
            cnt++;
            sum += id % 100;
            if (id % 100 != 0)
                sumdiv += 1000 / (id % 100);
        }
    char want[64];
    expect(s, "SELECT count(*) FROM bt", "5000");
    snprintf(want, sizeof want, "%lld", cnt);
    expect(s, "SELECT count(v) FROM bt", want);
    snprintf(want, sizeof want, "%lld", sum);
    expect(s, "SELECT sum(v) FROM bt", want);
    snprintf(want, sizeof want, "%lld", sumdiv);
    expect(s, "SELECT sum(CASE WHEN v = 0 THEN NULL ELSE 1000 / v END) FROM bt", want);
    /* an error in the last batch only */
    run_err(s, "SELECT id / (5000 - id) FROM bt", "22012", "division by zero");
    run_err(s, "SELECT id + 9223372036854770808 FROM bt", "22003", "bigint out of range");
    expect(s, "SELECT max(id + 9223372036854770807) FROM bt", "9223372036854775807");

    result r;
    run_ok(s, "SELECT id, v, v * 2 + 1 FROM bt", &r);
    assert_int_equal(r.nrows, 5000);
    assert_true(r.nbatches > 1);
    for (size_t i = 0; i < r.nrows; i++) {
        long long id = (long long)i + 1;
        snprintf(want, sizeof want, "%lld", id);
        assert_string_equal(cell(&r, i, 0), want);
        if (id % 3 == 0) {
            assert_null(cell(&r, i, 1));
            assert_null(cell(&r, i, 2));
        } else {
            snprintf(want, sizeof want, "%lld", (id % 100) * 2 + 1);
            assert_string_equal(cell(&r, i, 2), want);
        }
    }
    res_free(&r);
}

/* Rows with equal keys (the NULLs) keep their input order: the sort is
 * stable, across batch boundaries too; NULLs go last ascending and first
 * descending unless NULLS FIRST/LAST says otherwise. */
static void test_sort_nulls_across_batches(void **state)
{
    ros_session *s = *state;
    exec_ok(s, "CREATE TABLE g2 (id bigint) WITH (connector='datagen', rows=3000)");
    exec_ok(s, "CREATE TABLE sn (id bigint, v integer)");
    exec_ok(s, "INSERT INTO sn SELECT id, CASE WHEN id % 4 = 0 THEN NULL ELSE (id % 7)::integer END FROM g2");
    static const char *const orders[] = {
        "SELECT id, v FROM sn ORDER BY v",                  /* NULLs last */
        "SELECT id, v FROM sn ORDER BY v NULLS FIRST",
        "SELECT id, v FROM sn ORDER BY v DESC",             /* NULLs first */
        "SELECT id, v FROM sn ORDER BY v DESC NULLS LAST",
    };
    static const bool nulls_first[] = {false, true, true, false};
    static const bool desc[] = {false, false, true, true};
    for (int o = 0; o < 4; o++) {
        result r;
        run_ok(s, orders[o], &r);
        assert_int_equal(r.nrows, 3000);
        size_t nnull = 750, first_null = nulls_first[o] ? 0 : 3000 - nnull;
        long long prev_id = 0, prev_v = desc[o] ? 1000 : -1000, prev_id_same_v = 0;
        for (size_t i = 0; i < r.nrows; i++) {
            long long id = atoll(cell(&r, i, 0));
            const char *v = cell(&r, i, 1);
            bool in_null_run = i >= first_null && i < first_null + nnull;
            if (in_null_run) {
                assert_null(v);
                assert_int_equal(id % 4, 0);
                if (i > first_null)
                    assert_true(id > prev_id); /* stable */
                prev_id = id;
                continue;
            }
            assert_non_null(v);
            long long vv = atoll(v);
            assert_true(desc[o] ? vv <= prev_v : vv >= prev_v);
            if (vv == prev_v)
                assert_true(id > prev_id_same_v); /* stable among equal values too */
            prev_v = vv;
            prev_id_same_v = id;
        }
        res_free(&r);
    }
    /* LIMIT/OFFSET across the boundary */
    result r;
    run_ok(s, "SELECT id FROM sn ORDER BY v NULLS FIRST, id LIMIT 3 OFFSET 749", &r);
    assert_int_equal(r.nrows, 3);
    assert_string_equal(cell(&r, 0, 0), "3000"); /* the last NULL */
    assert_string_equal(cell(&r, 1, 0), "7");    /* the first v = 0 */
    assert_string_equal(cell(&r, 2, 0), "14");
    res_free(&r);
}

/* ---------------------------------------------------------------- */
/* LIKE */

static void test_like_edges(void **state)
{
    ros_session *s = *state;
    static const struct {
        const char *sql, *want;
    } cases[] = {
        {"SELECT 'abc' LIKE 'abc'", "t"},
        {"SELECT 'abc' LIKE 'ab'", "f"},
        {"SELECT '' LIKE ''", "t"},
        {"SELECT '' LIKE '%'", "t"},
        {"SELECT '' LIKE '_'", "f"},
        {"SELECT 'abc' LIKE '%%%'", "t"},
        {"SELECT 'abc' LIKE 'a%c'", "t"},
        {"SELECT 'abcabc' LIKE '%abc'", "t"},
        {"SELECT 'aaa' LIKE 'a%a%a'", "t"},
        {"SELECT 'aa' LIKE 'a%a%a'", "f"},
        {"SELECT 'a_c' LIKE 'a\\_c'", "t"},
        {"SELECT 'abc' LIKE 'a\\_c'", "f"},
        {"SELECT '%' LIKE '\\%'", "t"},
        {"SELECT 'x' LIKE '\\x'", "t"},
        {"SELECT 'a\\c' LIKE 'a\\\\c'", "t"},
        {"SELECT 'a_c' LIKE 'a#_c' ESCAPE '#'", "t"},
        {"SELECT 'a\\c' LIKE 'a\\c' ESCAPE ''", "t"},
        {"SELECT 'é' LIKE '_'", "t"},          /* _ is one character, not one byte */
        {"SELECT 'héllo' LIKE 'h_llo'", "t"},
        {"SELECT 'héllo' LIKE 'h__llo'", "f"},
        {"SELECT 'ABC' ILIKE 'a%'", "t"},
        {"SELECT 'ABC' NOT ILIKE 'a%'", "f"},
        {"SELECT 'É' ILIKE 'é'", "f"},         /* C collation folds ASCII only */
        {"SELECT 'abc' ~~ 'a%'", "t"},
        {"SELECT 'abc' !~~* 'A%'", "f"},
        /* PostgreSQL reports the trailing escape only when matching gets there */
        {"SELECT 'abc' LIKE 'abc\\'", "f"},
        {"SELECT 'abd' LIKE 'abc\\'", "f"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect(s, cases[i].sql, cases[i].want);
    run_err(s, "SELECT 'abcd' LIKE 'abc\\'", "22025", "LIKE pattern must not end with escape character");
    run_err(s, "SELECT 'abc' LIKE '%\\'", "22025", "LIKE pattern must not end with escape character");
    run_err(s, "SELECT 'abc' LIKE 'a' ESCAPE 'xy'", "22025", "invalid escape string");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_null_propagation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_valued_logic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_division_by_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_evaluates_needed_branches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sort_nulls_across_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_like_edges, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
