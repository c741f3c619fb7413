/*
 * test_core.c
 *    Unit tests of runtime/core and the public vector helpers: the column
 *    layout (validity, fixed and variable width), string buffers, arenas,
 *    error formatting and type names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <rosql/vector.h>

#include "runtime/core/arena.h"
#include "runtime/core/error.h"
#include "runtime/core/strbuf.h"
#include "runtime/core/types.h"

static void test_vector_fixed_and_nulls(void **state)
{
    (void)state;
    ros_vector v;
    ros_vector_init(&v, ROS_TYPE_INT64);
    for (int64_t i = 0; i < 1000; i++) {
        if (i % 7 == 0)
            assert_int_equal(ros_vector_append_null(&v), 0);
        else
            assert_int_equal(ros_vector_append_i64(&v, i * 3), 0);
    }
    assert_int_equal(v.len, 1000);
    for (uint32_t i = 0; i < 1000; i++) {
        assert_int_equal(ros_vector_is_null(&v, i), i % 7 == 0);
        if (i % 7)
            assert_int_equal(ROS_VEC_I64(&v)[i], (int64_t)i * 3);
    }
    ros_vector_reset(&v);
    assert_int_equal(v.len, 0);
    assert_int_equal(ros_vector_resize_fixed(&v, 10), 0);
    for (uint32_t i = 0; i < 10; i++)
        assert_false(ros_vector_is_null(&v, i)); /* reset clears NULL marks */
    ros_vector_free(&v);
    assert_null(v.values);
    assert_int_equal(v.type, ROS_TYPE_INT64);
}

static void test_vector_varlen(void **state)
{
    (void)state;
    ros_vector v;
    ros_vector_init(&v, ROS_TYPE_TEXT);
    assert_int_equal(ros_vector_append_text(&v, "héllo"), 0);
    assert_int_equal(ros_vector_append_null(&v), 0);
    assert_int_equal(ros_vector_append_text(&v, ""), 0);
    assert_int_equal(ros_vector_append_bytes(&v, "a\0b", 3), 0);
    assert_int_equal(v.len, 4);
    uint32_t n;
    const uint8_t *p = ros_vector_bytes(&v, 0, &n);
    assert_int_equal(n, 6);
    assert_memory_equal(p, "héllo", 6);
    assert_true(ros_vector_is_null(&v, 1));
    ros_vector_bytes(&v, 1, &n);
    assert_int_equal(n, 0); /* a NULL varlen row has an empty range */
    ros_vector_bytes(&v, 2, &n);
    assert_int_equal(n, 0);
    assert_false(ros_vector_is_null(&v, 2));
    p = ros_vector_bytes(&v, 3, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "a\0b", 3);
    assert_int_equal(v.offsets[0], 0);
    assert_int_equal(v.offsets[4], v.data_len);
    ros_vector_free(&v);
}

static void test_vector_types(void **state)
{
    (void)state;
    assert_int_equal(ros_type_width(ROS_TYPE_INT16), 2);
    assert_int_equal(ros_type_width(ROS_TYPE_FLOAT64), 8);
    assert_int_equal(ros_type_width(ROS_TYPE_TEXT), 0);
    assert_true(ros_type_is_varlen(ROS_TYPE_FLOAT32_ARRAY));
    assert_false(ros_type_is_varlen(ROS_TYPE_BOOL));
    ros_type t;
    assert_true(ros_type_from_name("INT4", false, &t));
    assert_int_equal(t, ROS_TYPE_INT32);
    assert_true(ros_type_from_name("double precision", false, &t));
    assert_int_equal(t, ROS_TYPE_FLOAT64);
    assert_true(ros_type_from_name("float4[]", false, &t));
    assert_int_equal(t, ROS_TYPE_FLOAT32_ARRAY);
    assert_true(ros_type_from_name("real", true, &t));
    assert_int_equal(t, ROS_TYPE_FLOAT32_ARRAY);
    assert_false(ros_type_from_name("text", true, &t)); /* only real[] arrays */
    assert_false(ros_type_from_name("jsonb", false, &t));
    assert_string_equal(ros_type_name(ROS_TYPE_FLOAT32_ARRAY), "real[]");
    assert_string_equal(ros_type_name(ROS_TYPE_INT16), "smallint");
}

static void test_strbuf(void **state)
{
    (void)state;
    ros_strbuf sb = ROS_STRBUF_INIT;
    assert_string_equal(ros_strbuf_cstr(&sb), "");
    for (int i = 0; i < 1000; i++)
        ros_strbuf_appendf(&sb, "%d,", i);
    assert_false(sb.oom);
    assert_int_equal(strncmp(ros_strbuf_cstr(&sb), "0,1,2,", 6), 0);
    size_t len = sb.len;
    ros_strbuf_appendc(&sb, 'x');
    assert_int_equal(sb.len, len + 1);
    char *s = ros_strbuf_steal(&sb);
    assert_int_equal(strlen(s), len + 1);
    assert_null(sb.data);
    free(s);
    ros_strbuf_free(&sb);
}

static void test_arena(void **state)
{
    (void)state;
    ros_arena a;
    ros_arena_init(&a);
    char *big = ros_arena_alloc(&a, 100000); /* larger than a chunk */
    assert_non_null(big);
    memset(big, 1, 100000);
    for (int i = 0; i < 10000; i++) {
        int64_t *p = ROS_ARENA_NEW(&a, int64_t);
        assert_non_null(p);
        assert_int_equal(*p, 0); /* zeroed */
        assert_int_equal((uintptr_t)p % 16, 0);
        *p = i;
    }
    char *s = ros_arena_printf(&a, "%s-%d", "x", 42);
    assert_string_equal(s, "x-42");
    assert_string_equal(ros_arena_strndup(&a, "abcdef", 3), "abc");
    ros_arena_free(&a);
    assert_null(a.head);
}

static void test_error_format(void **state)
{
    (void)state;
    ros_error e;
    ros_error_clear(&e);
    assert_int_equal(ros_error_set(&e, ROS_ERR_SYNTAX, "syntax error at or near \"%s\"", "FORM"), -1);
    ros_error_position(&e, 10);
    /* the first error wins */
    ros_error_set(&e, ROS_ERR_INTERNAL, "later");
    ros_error_hint(&e, "Check the spelling.");
    ros_strbuf sb = ROS_STRBUF_INIT;
    ros_error_format(&e, "SELECT * FORM t", &sb);
    assert_string_equal(ros_strbuf_cstr(&sb), "ERROR:  syntax error at or near \"FORM\"\n"
                                              "LINE 1: SELECT * FORM t\n"
                                              "                 ^\n"
                                              "HINT:  Check the spelling.\n");
    assert_string_equal(e.code, "42601");
    ros_strbuf_free(&sb);

    /* second line, multibyte characters before the position */
    ros_error_clear(&e);
    ros_error_set(&e, ROS_ERR_UNDEFINED_COLUMN, "column \"z\" does not exist");
    ros_error_position(&e, 18); /* 'z' in line 2: characters, not bytes */
    ros_strbuf_init(&sb);
    ros_error_format(&e, "SELECT 'é',\n  a, z FROM t", &sb);
    assert_string_equal(ros_strbuf_cstr(&sb), "ERROR:  column \"z\" does not exist\n"
                                              "LINE 2:   a, z FROM t\n"
                                              "             ^\n");
    ros_strbuf_free(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_fixed_and_nulls),
        cmocka_unit_test(test_vector_varlen),
        cmocka_unit_test(test_vector_types),
        cmocka_unit_test(test_strbuf),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_error_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
