/*
 * test_format.c
 *    ros_format_value against the strings PostgreSQL 15 prints.
 *
 * Every expected string below was taken from psql (SELECT x::float8 etc.)
 * against a PostgreSQL 15 server; the test itself needs no server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rosql/rosql.h>

/* Formats row 0 of v into a fresh buffer; checks the return code. */
static char *format_row(const ros_vector *v, uint32_t row, int want_rc)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    assert_int_equal(ros_format_value(v, row, &buf, &len, &cap), want_rc);
    assert_non_null(buf);
    assert_int_equal(strlen(buf), len);
    return buf;
}

static void check_f64(double x, const char *want)
{
    ros_vector v;
    ros_vector_init(&v, ROS_TYPE_FLOAT64);
    assert_int_equal(ros_vector_append_f64(&v, x), 0);
    char *s = format_row(&v, 0, 0);
    assert_string_equal(s, want);
    free(s);
    ros_vector_free(&v);
}

static void check_f32(float x, const char *want)
{
    ros_vector v;
    ros_vector_init(&v, ROS_TYPE_FLOAT32);
    assert_int_equal(ros_vector_append_f32(&v, x), 0);
    char *s = format_row(&v, 0, 0);
    assert_string_equal(s, want);
    free(s);
    ros_vector_free(&v);
}

static void test_float8(void **state)
{
    (void)state;
    check_f64(0.1, "0.1");
    check_f64(0.3, "0.3");
    check_f64(1e100, "1e+100");
    check_f64(1.5e-07, "1.5e-07");
    check_f64(-0.0, "-0");
    check_f64(0.0, "0");
    check_f64(1.0 / 0.0, "Infinity");
    check_f64(-1.0 / 0.0, "-Infinity");
    check_f64(strtod("NaN", NULL), "NaN");
    check_f64(1e15, "1e+15");
    check_f64(123456789012345.0, "123456789012345");
    check_f64(0.0001, "0.0001");
    check_f64(0.00001, "1e-05");
    check_f64(100, "100");
    check_f64(123.456, "123.456");
    check_f64(-2.5, "-2.5");
    check_f64(1234567890123456789.0, "1.2345678901234568e+18");
    check_f64(5e-324, "5e-324");
    check_f64(1.7976931348623157e308, "1.7976931348623157e+308");
    check_f64(2.2250738585072014e-308, "2.2250738585072014e-308");
    check_f64(1e22, "1e+22");
    /* 1e23 lies exactly halfway between two doubles: PostgreSQL (Ryu)
     * does not print the interval's bound even though it reads back */
    check_f64(1e23, "9.999999999999999e+22");
    check_f64(9007199254740993.0, "9.007199254740992e+15");
    check_f64(30383590809764408.0, "3.0383590809764408e+16");
    /* power of two: the nearest 16 digits miss, the neighbour fits */
    check_f64(6.3108872417680944e-30, "6.310887241768095e-30");
}

static void test_float4(void **state)
{
    (void)state;
    check_f32(0.1f, "0.1");
    check_f32(1.5f, "1.5");
    check_f32(-3.0f, "-3");
    check_f32(1e6f, "1e+06");
    check_f32(123456.0f, "123456");
    check_f32(999999.0f, "999999");
    check_f32(1234567.0f, "1.234567e+06");
    check_f32(0.0001f, "0.0001");
    check_f32(0.00001f, "1e-05");
    check_f32(3.4028235e38f, "3.4028235e+38");
    check_f32(1e-45f, "1e-45");
    check_f32(1.17549435e-38f, "1.1754944e-38");
    check_f32(16777217.0f, "1.6777216e+07");
    check_f32(3.14159265f, "3.1415927");
    check_f32(70246464.0f, "7.0246464e+07");
    check_f32(-0.0f, "-0");
    check_f32(1.0f / 0.0f, "Infinity");
}

static void test_scalars(void **state)
{
    (void)state;
    ros_vector v;
    char *s;

    ros_vector_init(&v, ROS_TYPE_BOOL);
    assert_int_equal(ros_vector_append_bool(&v, true), 0);
    assert_int_equal(ros_vector_append_bool(&v, false), 0);
    s = format_row(&v, 0, 0);
    assert_string_equal(s, "t");
    free(s);
    s = format_row(&v, 1, 0);
    assert_string_equal(s, "f");
    free(s);
    ros_vector_free(&v);

    ros_vector_init(&v, ROS_TYPE_INT16);
    assert_int_equal(ros_vector_append_i16(&v, -32768), 0);
    s = format_row(&v, 0, 0);
    assert_string_equal(s, "-32768");
    free(s);
    ros_vector_free(&v);

    ros_vector_init(&v, ROS_TYPE_INT32);
    assert_int_equal(ros_vector_append_i32(&v, 2147483647), 0);
    s = format_row(&v, 0, 0);
    assert_string_equal(s, "2147483647");
    free(s);
    ros_vector_free(&v);

    ros_vector_init(&v, ROS_TYPE_INT64);
    assert_int_equal(ros_vector_append_i64(&v, INT64_MIN), 0);
    s = format_row(&v, 0, 0);
    assert_string_equal(s, "-9223372036854775808");
    free(s);
    ros_vector_free(&v);

    ros_vector_init(&v, ROS_TYPE_TEXT);
    assert_int_equal(ros_vector_append_text(&v, "héllo, \"world\""), 0);
    assert_int_equal(ros_vector_append_text(&v, ""), 0);
    s = format_row(&v, 0, 0);
    assert_string_equal(s, "héllo, \"world\"");
    free(s);
    s = format_row(&v, 1, 0);
    assert_string_equal(s, "");
    free(s);
    ros_vector_free(&v);

    ros_vector_init(&v, ROS_TYPE_BYTEA);
    assert_int_equal(ros_vector_append_bytes(&v, "\x00\xff\x10", 3), 0);
    assert_int_equal(ros_vector_append_bytes(&v, "", 0), 0);
    s = format_row(&v, 0, 0);
    assert_string_equal(s, "\\x00ff10");
    free(s);
    s = format_row(&v, 1, 0);
    assert_string_equal(s, "\\x");
    free(s);
    ros_vector_free(&v);
}

static void test_real_array(void **state)
{
    (void)state;
    ros_vector v;
    ros_vector_init(&v, ROS_TYPE_FLOAT32_ARRAY);
    float a[] = {1.0f, 2.5f, -3.0f, 1e10f, 0.1f, 1.0f / 0.0f, -0.0f};
    assert_int_equal(ros_vector_append_bytes(&v, a, sizeof a), 0);
    assert_int_equal(ros_vector_append_bytes(&v, NULL, 0), 0);
    char *s = format_row(&v, 0, 0);
    assert_string_equal(s, "{1,2.5,-3,1e+10,0.1,Infinity,-0}");
    free(s);
    s = format_row(&v, 1, 0);
    assert_string_equal(s, "{}");
    free(s);
    ros_vector_free(&v);
}

static void test_null_and_append(void **state)
{
    (void)state;
    ros_vector v;
    ros_vector_init(&v, ROS_TYPE_INT32);
    assert_int_equal(ros_vector_append_i32(&v, 7), 0);
    assert_int_equal(ros_vector_append_null(&v), 0);
    assert_int_equal(ros_vector_append_i32(&v, -8), 0);

    /* values append to what the buffer holds; NULL adds nothing, returns 1 */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    assert_int_equal(ros_format_value(&v, 0, &buf, &len, &cap), 0);
    assert_int_equal(ros_format_value(&v, 1, &buf, &len, &cap), 1);
    assert_int_equal(ros_format_value(&v, 2, &buf, &len, &cap), 0);
    assert_string_equal(buf, "7-8");
    assert_int_equal(len, 3);
    assert_true(cap > len);
    free(buf);
    ros_vector_free(&v);

    /* NULL into an empty buffer still leaves a valid string */
    ros_vector_init(&v, ROS_TYPE_TEXT);
    assert_int_equal(ros_vector_append_null(&v), 0);
    buf = format_row(&v, 0, 1);
    assert_string_equal(buf, "");
    free(buf);
    ros_vector_free(&v);

    /* a long run grows the buffer */
    ros_vector_init(&v, ROS_TYPE_FLOAT64);
    assert_int_equal(ros_vector_append_f64(&v, 0.1), 0);
    buf = NULL;
    len = cap = 0;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ros_format_value(&v, 0, &buf, &len, &cap), 0);
    assert_int_equal(len, 3000);
    assert_int_equal(strlen(buf), 3000);
    assert_memory_equal(buf + 2997, "0.1", 3);
    free(buf);
    ros_vector_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float8),
        cmocka_unit_test(test_float4),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_real_array),
        cmocka_unit_test(test_null_and_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
