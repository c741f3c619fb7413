/*
 * test_engine.c
 *    Session-level behaviour through the public API (include/rosql/rosql.h):
 *    settings, statement timeout and cancellation, atomic DDL, reopening a
 *    database file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rosql/rosql.h>

#include "runtime/core/error.h"

typedef struct collect {
    ros_session *s;
    int batches;
    int64_t rows;
    int cancel_after;   /* cancel the statement after this many batches (0: never) */
    char first[256];    /* first value of the first row */
} collect;

static int on_batch(void *arg, const ros_batch *b)
{
    collect *c = arg;
    if (c->batches == 0 && b->nrows > 0 && b->ncols > 0) {
        char *buf = NULL;
        size_t len = 0, cap = 0;
        if (ros_format_value(&b->cols[0], 0, &buf, &len, &cap) == 0)
            snprintf(c->first, sizeof c->first, "%s", buf);
        free(buf);
    }
    c->batches++;
    c->rows += b->nrows;
    if (c->cancel_after && c->batches >= c->cancel_after)
        ros_session_cancel(c->s);
    return 0;
}

static int run(ros_session *s, const char *sql, collect *c, ros_error *err)
{
    ros_result_sink sink = {c, NULL, on_batch, NULL, NULL, NULL};
    memset(c, 0, sizeof *c);
    c->s = s;
    ros_error_clear(err);
    return ros_session_execute(s, sql, &sink, err);
}

static int run_cancel(ros_session *s, const char *sql, collect *c, int after, ros_error *err)
{
    ros_result_sink sink = {c, NULL, on_batch, NULL, NULL, NULL};
    memset(c, 0, sizeof *c);
    c->s = s;
    c->cancel_after = after;
    ros_error_clear(err);
    return ros_session_execute(s, sql, &sink, err);
}

static void test_settings(void **state)
{
    (void)state;
    ros_error err;
    collect c;
    ros_session *s = ros_session_open(NULL, &err);
    assert_non_null(s);
    assert_int_equal(run(s, "SET batch_size = 7", &c, &err), 0);
    assert_int_equal(run(s, "SHOW batch_size", &c, &err), 0);
    assert_string_equal(c.first, "7");
    /* the batch size is used: 20 generated rows arrive in batches of 7 */
    assert_int_equal(run(s, "CREATE TABLE g (id bigint) WITH (connector = 'datagen', rows = 20)", &c, &err), 0);
    assert_int_equal(run(s, "SELECT id FROM g", &c, &err), 0);
    assert_int_equal(c.rows, 20);
    assert_int_equal(c.batches, 3);
    assert_int_equal(run(s, "RESET batch_size", &c, &err), 0);
    assert_int_equal(run(s, "SHOW batch_size", &c, &err), 0);
    assert_string_equal(c.first, "1024");
    assert_int_equal(run(s, "SET batch_size = 'x'", &c, &err), -1);
    assert_string_equal(err.code, ROS_ERR_INVALID_PARAMETER);
    assert_int_equal(run(s, "SET nope = 1", &c, &err), -1);
    assert_string_equal(err.message, "unrecognized configuration parameter \"nope\"");
    ros_session_close(s);
}

static void test_timeout_and_cancel(void **state)
{
    (void)state;
    ros_error err;
    collect c;
    ros_session *s = ros_session_open(NULL, &err);
    assert_non_null(s);
    /* an unbounded, rate-limited source never ends on its own */
    assert_int_equal(run(s, "CREATE TABLE slow (id bigint) WITH (connector = 'datagen', rows_per_second = 50)", &c,
                         &err), 0);
    assert_int_equal(run(s, "SET statement_timeout = '200ms'", &c, &err), 0);
    assert_int_equal(run(s, "SELECT count(*) FROM slow", &c, &err), -1);
    assert_string_equal(err.code, ROS_ERR_CANCELED);
    assert_string_equal(err.message, "canceling statement due to statement timeout");
    assert_int_equal(run(s, "SET statement_timeout = 0", &c, &err), 0);
    /* cancel from the sink after two batches of an endless query */
    assert_int_equal(run(s, "CREATE TABLE fast (id bigint) WITH (connector = 'datagen')", &c, &err), 0);
    assert_int_equal(run_cancel(s, "SELECT id FROM fast", &c, 2, &err), -1);
    assert_string_equal(err.message, "canceling statement due to user request");
    assert_int_equal(c.batches, 2);
    /* the session stays usable */
    assert_int_equal(run(s, "SELECT 41 + 1", &c, &err), 0);
    assert_string_equal(c.first, "42");
    ros_session_close(s);
}

static void test_atomic_ddl_and_reopen(void **state)
{
    (void)state;
    ros_error err;
    collect c;
    char dir[] = "/tmp/rosql-engine-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/e.db", dir);
    ros_session *s = ros_session_open(path, &err);
    assert_non_null(s);
    assert_int_equal(run(s, "CREATE TABLE src (a integer)", &c, &err), 0);
    assert_int_equal(run(s, "INSERT INTO src VALUES (1), (2), (0), (4)", &c, &err), 0);
    /* CREATE TABLE AS that fails half-way leaves no table and no rows */
    assert_int_equal(run(s, "CREATE TABLE bad AS SELECT 10 / a AS q FROM src", &c, &err), -1);
    assert_string_equal(err.code, ROS_ERR_DIVISION_BY_ZERO);
    assert_int_equal(run(s, "SELECT * FROM bad", &c, &err), -1);
    assert_string_equal(err.code, ROS_ERR_UNDEFINED_TABLE);
    /* an INSERT that fails on its last row inserts nothing */
    assert_int_equal(run(s, "INSERT INTO src SELECT 10 / a FROM src", &c, &err), -1);
    assert_int_equal(run(s, "SELECT count(*) FROM src", &c, &err), 0);
    assert_string_equal(c.first, "4");
    assert_int_equal(run(s, "CREATE TABLE good AS SELECT a * 2 AS d FROM src WHERE a > 0", &c, &err), 0);
    ros_session_close(s);

    /* reopen: the objects and rows are still there */
    s = ros_session_open(path, &err);
    assert_non_null(s);
    assert_int_equal(run(s, "SELECT sum(d) FROM good", &c, &err), 0);
    assert_string_equal(c.first, "14");
    ros_session_close(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_timeout_and_cancel),
        cmocka_unit_test(test_atomic_ddl_and_reopen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
