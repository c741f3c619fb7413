/*
 * test_connectors.c
 *    Unit tests of the connectors: datagen determinism and generators, file
 *    CSV / JSON round trips, errors and tail mode, sqlite round trips through
 *    a real catalog, and option validation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/connectors/connector.h"
#include "runtime/connectors/connector_int.h"
#include "runtime/core/strbuf.h"

/* ------------------------------------------------------------------ */
/* Helpers */

/* A table definition built by the test (not by the catalog). */
typedef struct test_table {
    cat_table t;
    cat_option opts[32];
    cat_column cols[16];
} test_table;

/* Builds a table: cols is "name:type,..." with types from ros_type numbers
 * given separately; options are key, value pairs ended by NULL. */
static test_table *tbl_new(const char *connector, int ncols, const char *const *names, const ros_type *types, ...)
{
    test_table *tt = calloc(1, sizeof *tt);
    assert_non_null(tt);
    tt->t.name = "t";
    tt->t.connector = (char *)connector;
    tt->t.ncols = ncols;
    tt->t.cols = tt->cols;
    for (int i = 0; i < ncols; i++) {
        tt->cols[i].name = (char *)names[i];
        tt->cols[i].type = types[i];
    }
    va_list ap;
    va_start(ap, types);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        tt->opts[tt->t.options.n].key = (char *)k;
        tt->opts[tt->t.options.n].value = (char *)v;
        tt->t.options.n++;
    }
    va_end(ap);
    tt->t.options.items = tt->opts;
    return tt;
}

static void batch_free(ros_batch *b)
{
    for (uint32_t i = 0; b->cols && i < b->ncols; i++)
        ros_vector_free(&b->cols[i]);
    free(b->cols);
    memset(b, 0, sizeof *b);
}

/* Appends row i of b as text: values separated by '|', NULL as "NULL". */
static void row_text(const ros_batch *b, uint32_t i, ros_strbuf *out)
{
    for (uint32_t c = 0; c < b->ncols; c++) {
        if (c)
            ros_strbuf_appendc(out, '|');
        if (ros_vector_is_null(&b->cols[c], i))
            ros_strbuf_append(out, "NULL");
        else
            rt_format_value(&b->cols[c], i, out);
    }
    ros_strbuf_appendc(out, '\n');
}

/* Reads src to its end (or to the first 2) in batches of max_rows; returns
 * every row as text. */
static char *read_all(rt_source *src, uint32_t max_rows, int64_t *nrows)
{
    ros_strbuf sb = ROS_STRBUF_INIT;
    ros_batch b = {0};
    ros_error err;
    ros_error_clear(&err);
    int64_t n = 0;
    int rc;
    while ((rc = src->ops->next(src, &b, max_rows, &err)) == 1) {
        assert_true(b.nrows > 0 && b.nrows <= (max_rows ? max_rows : RT_DEFAULT_BATCH));
        for (uint32_t i = 0; i < b.ncols; i++)
            assert_int_equal(b.cols[i].len, b.nrows);
        for (uint32_t i = 0; i < b.nrows; i++)
            row_text(&b, i, &sb);
        n += b.nrows;
    }
    if (rc < 0)
        fail_msg("next failed: %s (%s)", err.message, err.detail);
    assert_int_equal(b.nrows, 0);
    batch_free(&b);
    if (nrows)
        *nrows = n;
    return ros_strbuf_steal(&sb);
}

static char *tmp_path(const char *suffix)
{
    static int counter;
    char *p = malloc(256);
    assert_non_null(p);
    snprintf(p, 256, "/tmp/rosql_test_conn_%d_%d%s", (int)getpid(), counter++, suffix);
    unlink(p);
    return p;
}

static void write_file(const char *path, const char *text, const char *mode)
{
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ros_strbuf sb = ROS_STRBUF_INIT;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        ros_strbuf_appendn(&sb, buf, n);
    fclose(f);
    return ros_strbuf_steal(&sb);
}

#define EXPECT_ERR(err, code_, msg_)                                                     \
    do {                                                                                 \
        assert_true((err).set);                                                          \
        assert_string_equal((err).code, (code_));                                        \
        assert_string_equal((err).message, (msg_));                                      \
    } while (0)

/* The all-types table used by round trips. */
static const char *const all_names[] = {"b", "i16", "i32", "i64", "f32", "f64", "s", "by", "arr"};
static const ros_type all_types[] = {ROS_TYPE_BOOL,    ROS_TYPE_INT16,   ROS_TYPE_INT32, ROS_TYPE_INT64,
                                     ROS_TYPE_FLOAT32, ROS_TYPE_FLOAT64, ROS_TYPE_TEXT,  ROS_TYPE_BYTEA,
                                     ROS_TYPE_FLOAT32_ARRAY};
#define ALL_N 9

/* A batch of every type with awkward values: NULLs, quotes, delimiters,
 * newlines, empty strings, extremes, non-finite floats. */
static void all_types_batch(ros_batch *b)
{
    memset(b, 0, sizeof *b);
    b->ncols = ALL_N;
    b->cols = calloc(ALL_N, sizeof *b->cols);
    assert_non_null(b->cols);
    for (int i = 0; i < ALL_N; i++)
        ros_vector_init(&b->cols[i], all_types[i]);
    ros_vector *v = b->cols;
    /* row 0: ordinary values */
    ros_vector_append_bool(&v[0], true);
    ros_vector_append_i16(&v[1], -32768);
    ros_vector_append_i32(&v[2], 2147483647);
    ros_vector_append_i64(&v[3], INT64_MIN);
    ros_vector_append_f32(&v[4], 0.1f);
    ros_vector_append_f64(&v[5], 0.1);
    ros_vector_append_text(&v[6], "plain");
    ros_vector_append_bytes(&v[7], "\x00\xff\x10", 3);
    float a0[3] = {1.5f, -2.0f, 3.25e-5f};
    ros_vector_append_bytes(&v[8], a0, sizeof a0);
    /* row 1: NULLs everywhere */
    for (int i = 0; i < ALL_N; i++)
        ros_vector_append_null(&v[i]);
    /* row 2: quoting trouble */
    ros_vector_append_bool(&v[0], false);
    ros_vector_append_i16(&v[1], 0);
    ros_vector_append_i32(&v[2], -1);
    ros_vector_append_i64(&v[3], INT64_MAX);
    ros_vector_append_f32(&v[4], INFINITY);
    ros_vector_append_f64(&v[5], -INFINITY);
    ros_vector_append_text(&v[6], "he said \"hi\", then\nleft\\ \t caf\xc3\xa9");
    ros_vector_append_bytes(&v[7], "", 0);
    ros_vector_append_bytes(&v[8], "", 0);
    /* row 3: empty string (not NULL), NaN, exact doubles */
    ros_vector_append_bool(&v[0], true);
    ros_vector_append_i16(&v[1], 32767);
    ros_vector_append_i32(&v[2], INT32_MIN);
    ros_vector_append_i64(&v[3], 1234567890123LL);
    ros_vector_append_f32(&v[4], NAN);
    ros_vector_append_f64(&v[5], 1.0 / 3.0);
    ros_vector_append_text(&v[6], "");
    ros_vector_append_bytes(&v[7], "\\x", 2);
    float a3[1] = {3.4028235e38f};
    ros_vector_append_bytes(&v[8], a3, sizeof a3);
    b->nrows = 4;
}

static const char all_expected[] =
    "t|-32768|2147483647|-9223372036854775808|0.1|0.1|plain|\\x00ff10|{1.5,-2,3.25e-05}\n"
    "NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL\n"
    "f|0|-1|9223372036854775807|Infinity|-Infinity|he said \"hi\", then\nleft\\ \t caf\xc3\xa9|\\x|{}\n"
    "t|32767|-2147483648|1234567890123|NaN|0.3333333333333333||\\x5c78|{3.4028235e+38}\n";

/* ------------------------------------------------------------------ */
/* datagen */

static const char *const dg_names[] = {"id", "v", "s", "b", "a", "i16", "i32", "f", "by"};
static const ros_type dg_types[] = {ROS_TYPE_INT64,         ROS_TYPE_FLOAT64, ROS_TYPE_TEXT,
                                    ROS_TYPE_BOOL,          ROS_TYPE_FLOAT32_ARRAY, ROS_TYPE_INT16,
                                    ROS_TYPE_INT32,         ROS_TYPE_FLOAT32, ROS_TYPE_BYTEA};

static test_table *dg_table(const char *rows)
{
    return tbl_new("datagen", 9, dg_names, dg_types, "rows", rows, "seed", "42", "fields.v.null_rate", "0.2",
                   "fields.s.null_rate", "0.3", "fields.i32.kind", "random", "fields.a.dim", "3",
                   "fields.by.length", "4", NULL);
}

static void test_datagen_determinism(void **state)
{
    (void)state;
    test_table *tt = dg_table("1000");
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), 0);
    char *ref = NULL;
    const uint32_t sizes[] = {1000, 7, 64, 1, 0};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
        assert_non_null(src);
        assert_false(src->unbounded);
        int64_t n;
        char *txt = read_all(src, sizes[k], &n);
        assert_int_equal(n, 1000);
        assert_int_equal(src->ops->offset(src), 1000);
        if (!ref)
            ref = txt;
        else {
            assert_string_equal(txt, ref);
            free(txt);
        }
        src->ops->close(src);
    }
    /* Seek: rows 500.. are the tail of the full read. */
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    assert_int_equal(src->ops->seek(src, 500, &err), 0);
    char *tail = read_all(src, 33, NULL);
    const char *p = ref;
    for (int i = 0; i < 500; i++)
        p = strchr(p, '\n') + 1;
    assert_string_equal(tail, p);
    free(tail);
    src->ops->close(src);

    /* A projection yields the same values as the full read's columns. */
    int proj[2] = {2, 0};
    rt_source_opts opts = {2, proj, false};
    src = rt_source_open(NULL, &tt->t, &opts, &err);
    assert_non_null(src);
    ros_batch b = {0};
    assert_int_equal(src->ops->next(src, &b, 10, &err), 1);
    assert_int_equal(b.ncols, 2);
    assert_int_equal(b.cols[0].type, ROS_TYPE_TEXT);
    assert_int_equal(b.cols[1].type, ROS_TYPE_INT64);
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(ROS_VEC_I64(&b.cols[1])[i], (int64_t)i + 1); /* sequence from 1 */
        ros_strbuf want = ROS_STRBUF_INIT, got = ROS_STRBUF_INIT;
        /* column s of row i from the reference */
        const char *line = ref;
        for (uint32_t j = 0; j < i; j++)
            line = strchr(line, '\n') + 1;
        const char *f = strchr(line, '|') + 1;
        f = strchr(f, '|') + 1;
        ros_strbuf_appendn(&want, f, (size_t)(strchr(f, '|') - f));
        if (ros_vector_is_null(&b.cols[0], i))
            ros_strbuf_append(&got, "NULL");
        else
            rt_format_value(&b.cols[0], i, &got);
        assert_string_equal(ros_strbuf_cstr(&got), ros_strbuf_cstr(&want));
        ros_strbuf_free(&want);
        ros_strbuf_free(&got);
    }
    batch_free(&b);
    src->ops->close(src);

    /* Another seed gives other values. */
    tt->opts[1].value = "43";
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    char *other = read_all(src, 1000, NULL);
    assert_string_not_equal(other, ref);
    free(other);
    src->ops->close(src);
    free(ref);
    free(tt);
}

static void test_datagen_bounded(void **state)
{
    (void)state;
    ros_error err;
    ros_error_clear(&err);
    const char *names[] = {"x"};
    ros_type types[] = {ROS_TYPE_INT32};
    test_table *tt = tbl_new("datagen", 1, names, types, "rows", "12345", NULL);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    ros_batch b = {0};
    int64_t total = 0, sum = 0;
    int rc;
    while ((rc = src->ops->next(src, &b, 1000, &err)) == 1) {
        for (uint32_t i = 0; i < b.nrows; i++)
            sum += ROS_VEC_I32(&b.cols[0])[i];
        total += b.nrows;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(total, 12345);
    assert_int_equal(sum, 12345LL * 12346 / 2);
    assert_int_equal(src->ops->offset(src), 12345);
    assert_int_equal(src->ops->next(src, &b, 1000, &err), 0); /* stays at the end */
    batch_free(&b);
    src->ops->close(src);
    free(tt);

    tt = tbl_new("datagen", 1, names, types, "rows", "0", NULL);
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    assert_int_equal(src->ops->next(src, &b, 10, &err), 0);
    assert_int_equal(b.nrows, 0);
    batch_free(&b);
    src->ops->close(src);
    free(tt);

    /* No rows option: unbounded, keeps producing. */
    tt = tbl_new("datagen", 1, names, types, NULL);
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    assert_true(src->unbounded);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(src->ops->next(src, &b, 100000, &err), 1);
        assert_int_equal(b.nrows, 100000);
    }
    assert_int_equal(src->ops->offset(src), 500000);
    batch_free(&b);
    src->ops->close(src);
    free(tt);
}

static void test_datagen_sequence(void **state)
{
    (void)state;
    ros_error err;
    ros_error_clear(&err);
    const char *names[] = {"id", "small", "d"};
    ros_type types[] = {ROS_TYPE_INT64, ROS_TYPE_INT16, ROS_TYPE_FLOAT64};
    test_table *tt = tbl_new("datagen", 3, names, types, "fields.id.start", "10", "fields.id.end", "19",
                             "fields.d.kind", "sequence", "fields.d.start", "0.5", NULL);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    assert_false(src->unbounded); /* the end bounds it */
    ros_batch b = {0};
    assert_int_equal(src->ops->next(src, &b, 100, &err), 1);
    assert_int_equal(b.nrows, 10);
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(ROS_VEC_I64(&b.cols[0])[i], 10 + (int64_t)i);
        assert_int_equal(ROS_VEC_I16(&b.cols[1])[i], 1 + (int)i);
        assert_true(ROS_VEC_F64(&b.cols[2])[i] == 0.5 + i);
    }
    assert_int_equal(src->ops->next(src, &b, 100, &err), 0);
    batch_free(&b);
    src->ops->close(src);
    free(tt);

    /* rows smaller than the sequence wins. */
    tt = tbl_new("datagen", 1, names, types, "rows", "5", "fields.id.start", "-3", "fields.id.end", "100", NULL);
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    int64_t n;
    char *txt = read_all(src, 2, &n);
    assert_int_equal(n, 5);
    assert_string_equal(txt, "-3\n-2\n-1\n0\n1\n");
    free(txt);
    src->ops->close(src);
    free(tt);

    /* A smallint sequence stops at the type's maximum. */
    tt = tbl_new("datagen", 2, names, types, "fields.small.start", "32760", NULL);
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    txt = read_all(src, 100, &n);
    assert_int_equal(n, 8);
    assert_string_equal(txt, "1|32760\n2|32761\n3|32762\n4|32763\n5|32764\n6|32765\n7|32766\n8|32767\n");
    free(txt);
    src->ops->close(src);
    free(tt);
}

static void test_datagen_random_ranges(void **state)
{
    (void)state;
    ros_error err;
    ros_error_clear(&err);
    const char *names[] = {"i", "d", "s", "by", "a", "f", "b", "w"};
    ros_type types[] = {ROS_TYPE_INT32, ROS_TYPE_FLOAT64, ROS_TYPE_TEXT, ROS_TYPE_BYTEA,
                        ROS_TYPE_FLOAT32_ARRAY, ROS_TYPE_FLOAT32, ROS_TYPE_BOOL, ROS_TYPE_INT64};
    test_table *tt = tbl_new("datagen", 8, names, types, "rows", "20000", "fields.i.kind", "random", "fields.i.min",
                             "-5", "fields.i.max", "5", "fields.d.min", "2", "fields.d.max", "3", "fields.s.length",
                             "7", "fields.by.length", "3", "fields.a.dim", "4", "fields.a.min", "-1", "fields.a.max",
                             "1", "fields.f.min", "100", "fields.f.max", "200", "fields.w.kind", "random", NULL);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), 0);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    ros_batch b = {0};
    assert_int_equal(src->ops->next(src, &b, 20000, &err), 1);
    assert_int_equal(b.nrows, 20000);
    int seen[11] = {0};
    int trues = 0, negw = 0;
    double dsum = 0;
    for (uint32_t r = 0; r < b.nrows; r++) {
        int32_t x = ROS_VEC_I32(&b.cols[0])[r];
        assert_true(x >= -5 && x <= 5);
        seen[x + 5]++;
        double d = ROS_VEC_F64(&b.cols[1])[r];
        assert_true(d >= 2 && d < 3);
        dsum += d;
        uint32_t len;
        const uint8_t *p = ros_vector_bytes(&b.cols[2], r, &len);
        assert_int_equal(len, 7);
        for (uint32_t k = 0; k < len; k++)
            assert_true(p[k] >= 'a' && p[k] <= 'z');
        ros_vector_bytes(&b.cols[3], r, &len);
        assert_int_equal(len, 3);
        p = ros_vector_bytes(&b.cols[4], r, &len);
        assert_int_equal(len, 16);
        for (int k = 0; k < 4; k++) {
            float e;
            memcpy(&e, p + 4 * k, 4);
            assert_true(e >= -1 && e <= 1);
        }
        float f = ROS_VEC_F32(&b.cols[5])[r];
        assert_true(f >= 100 && f <= 200);
        trues += ROS_VEC_BOOL(&b.cols[6])[r];
        negw += ROS_VEC_I64(&b.cols[7])[r] < 0;
        for (int c = 0; c < 8; c++)
            assert_false(ros_vector_is_null(&b.cols[c], r));
    }
    for (int k = 0; k < 11; k++)
        assert_true(seen[k] > 20000 / 11 / 2); /* both ends and everything between */
    assert_true(fabs(dsum / 20000 - 2.5) < 0.02);
    assert_true(trues > 9000 && trues < 11000);
    assert_true(negw > 9000 && negw < 11000); /* full bigint range by default */
    /* Letters are spread: all 26 occur. */
    int letters[26] = {0};
    for (uint32_t k = 0; k < b.cols[2].data_len; k++)
        letters[b.cols[2].data[k] - 'a']++;
    for (int k = 0; k < 26; k++)
        assert_true(letters[k] > 0);
    batch_free(&b);
    src->ops->close(src);
    free(tt);
}

static void test_datagen_null_rate(void **state)
{
    (void)state;
    ros_error err;
    ros_error_clear(&err);
    const char *names[] = {"a", "b", "c", "d"};
    ros_type types[] = {ROS_TYPE_FLOAT64, ROS_TYPE_TEXT, ROS_TYPE_INT32, ROS_TYPE_FLOAT32_ARRAY};
    test_table *tt = tbl_new("datagen", 4, names, types, "rows", "20000", "fields.a.null_rate", "0.25",
                             "fields.b.null_rate", "1", "fields.d.null_rate", "0.5", NULL);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    ros_batch b = {0};
    int nulls[4] = {0};
    int rc;
    while ((rc = src->ops->next(src, &b, 3000, &err)) == 1)
        for (int c = 0; c < 4; c++)
            for (uint32_t r = 0; r < b.nrows; r++)
                nulls[c] += ros_vector_is_null(&b.cols[c], r);
    assert_int_equal(rc, 0);
    assert_true(nulls[0] > 4500 && nulls[0] < 5500);
    assert_int_equal(nulls[1], 20000);
    assert_int_equal(nulls[2], 0);
    assert_true(nulls[3] > 9500 && nulls[3] < 10500);
    batch_free(&b);
    src->ops->close(src);
    free(tt);
}

static void test_datagen_rate(void **state)
{
    (void)state;
    ros_error err;
    ros_error_clear(&err);
    const char *names[] = {"x"};
    ros_type types[] = {ROS_TYPE_INT64};
    test_table *tt = tbl_new("datagen", 1, names, types, "rows_per_second", "10", NULL);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    ros_batch b = {0};
    assert_int_equal(src->ops->next(src, &b, 100, &err), 1);
    assert_int_equal(b.nrows, 1);
    assert_int_equal(src->ops->next(src, &b, 100, &err), 2); /* next row due in 100 ms */
    assert_int_equal(b.nrows, 0);
    usleep(250 * 1000);
    assert_int_equal(src->ops->next(src, &b, 100, &err), 1);
    assert_true(b.nrows >= 2 && b.nrows <= 3);
    batch_free(&b);
    src->ops->close(src);
    free(tt);
}

static void test_datagen_validation(void **state)
{
    (void)state;
    const char *names[] = {"id", "flag", "s"};
    ros_type types[] = {ROS_TYPE_INT32, ROS_TYPE_BOOL, ROS_TYPE_TEXT};
    struct {
        const char *k, *v, *code, *msg;
    } cases[] = {
        {"bogus", "1", ROS_ERR_INVALID_PARAMETER, "unknown option \"bogus\" for connector \"datagen\""},
        {"rows", "-1", ROS_ERR_INVALID_PARAMETER, "invalid value for option \"rows\": \"-1\""},
        {"rows", "abc", ROS_ERR_INVALID_PARAMETER, "invalid value for option \"rows\": \"abc\""},
        {"rows_per_second", "0", ROS_ERR_INVALID_PARAMETER, "invalid value for option \"rows_per_second\": \"0\""},
        {"fields.nope.kind", "random", ROS_ERR_INVALID_PARAMETER,
         "column \"nope\" named in option \"fields.nope.kind\" does not exist"},
        {"fields.flag.kind", "sequence", ROS_ERR_INVALID_PARAMETER,
         "invalid value for option \"fields.flag.kind\": \"sequence\""},
        {"fields.id.kind", "zigzag", ROS_ERR_INVALID_PARAMETER,
         "invalid value for option \"fields.id.kind\": \"zigzag\""},
        {"fields.id.colour", "red", ROS_ERR_INVALID_PARAMETER,
         "unknown option \"fields.id.colour\" for connector \"datagen\""},
        {"fields.id.length", "3", ROS_ERR_INVALID_PARAMETER, "option \"fields.id.length\" does not apply to column \"id\""},
        {"fields.id.min", "3", ROS_ERR_INVALID_PARAMETER, "option \"fields.id.min\" does not apply to column \"id\""},
        {"fields.s.start", "3", ROS_ERR_INVALID_PARAMETER, "option \"fields.s.start\" does not apply to column \"s\""},
        {"fields.s.null_rate", "1.5", ROS_ERR_INVALID_PARAMETER,
         "invalid value for option \"fields.s.null_rate\": \"1.5\""},
        {"fields.id.start", "99999999999", ROS_ERR_INVALID_PARAMETER,
         "invalid value for option \"fields.id.start\": \"99999999999\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_table *tt = tbl_new("datagen", 3, names, types, cases[i].k, cases[i].v, NULL);
        ros_error err;
        ros_error_clear(&err);
        assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), -1);
        EXPECT_ERR(err, cases[i].code, cases[i].msg);
        ros_error_clear(&err);
        assert_null(rt_source_open(NULL, &tt->t, NULL, &err));
        EXPECT_ERR(err, cases[i].code, cases[i].msg);
        free(tt);
    }
    /* The unknown-option hint lists the valid ones. */
    test_table *tt = tbl_new("datagen", 3, names, types, "bogus", "1", NULL);
    ros_error err;
    ros_error_clear(&err);
    rt_connector_validate(NULL, &tt->t, &err);
    assert_non_null(strstr(err.hint, "rows_per_second"));
    assert_non_null(strstr(err.hint, "fields.<column>.kind"));
    free(tt);

    /* min > max, end < start, null_rate on NOT NULL, kind given after its
     * dependent option, and the connector key ignored. */
    tt = tbl_new("datagen", 3, names, types, "fields.id.kind", "random", "fields.id.min", "5", "fields.id.max", "1",
                 NULL);
    ros_error_clear(&err);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), -1);
    EXPECT_ERR(err, ROS_ERR_INVALID_PARAMETER, "option \"fields.id.min\" must not be greater than option \"fields.id.max\"");
    free(tt);
    tt = tbl_new("datagen", 3, names, types, "fields.id.start", "5", "fields.id.end", "1", NULL);
    ros_error_clear(&err);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), -1);
    EXPECT_ERR(err, ROS_ERR_INVALID_PARAMETER, "option \"fields.id.end\" must not be less than option \"fields.id.start\"");
    free(tt);
    tt = tbl_new("datagen", 3, names, types, "fields.s.null_rate", "0.5", NULL);
    tt->cols[2].not_null = true;
    ros_error_clear(&err);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), -1);
    EXPECT_ERR(err, ROS_ERR_INVALID_PARAMETER, "option \"fields.s.null_rate\" must be 0 for NOT NULL column \"s\"");
    free(tt);
    tt = tbl_new("datagen", 3, names, types, "connector", "datagen", "fields.id.max", "9", "fields.id.kind", "RANDOM",
                 "fields.id.min", "1", "rows", "10", NULL);
    ros_error_clear(&err);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), 0);
    assert_false(err.set);
    free(tt);
}

/* ------------------------------------------------------------------ */
/* Dispatch and validation */

static void test_connector_dispatch(void **state)
{
    (void)state;
    const char *names[] = {"a"};
    ros_type types[] = {ROS_TYPE_INT32};
    ros_error err;
    ros_error_clear(&err);
    test_table *tt = tbl_new("kafka", 1, names, types, NULL);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), -1);
    EXPECT_ERR(err, ROS_ERR_UNDEFINED_OBJECT, "connector \"kafka\" does not exist");
    ros_error_clear(&err);
    assert_null(rt_source_open(NULL, &tt->t, NULL, &err));
    EXPECT_ERR(err, ROS_ERR_UNDEFINED_OBJECT, "connector \"kafka\" does not exist");
    free(tt);

    assert_true(rt_connector_writable("sqlite"));
    assert_true(rt_connector_writable("file"));
    assert_true(rt_connector_writable(NULL));
    assert_false(rt_connector_writable("datagen"));
    assert_false(rt_connector_writable("kafka"));

    tt = tbl_new("datagen", 1, names, types, NULL);
    ros_error_clear(&err);
    assert_null(rt_sink_open(NULL, &tt->t, &err));
    EXPECT_ERR(err, ROS_ERR_NOT_SUPPORTED, "cannot insert into table \"t\"");
    assert_non_null(strstr(err.detail, "datagen"));
    free(tt);

    struct {
        const char *conn, *k, *v, *code, *msg;
    } cases[] = {
        {"file", "format", "csv", ROS_ERR_INVALID_PARAMETER, "option \"path\" is required for connector \"file\""},
        {"file", "format", "xml", ROS_ERR_INVALID_PARAMETER, "invalid value for option \"format\": \"xml\""},
        {"file", "header", "maybe", ROS_ERR_INVALID_PARAMETER, "invalid value for option \"header\": \"maybe\""},
        {"file", "delimiter", "ab", ROS_ERR_INVALID_PARAMETER, "invalid value for option \"delimiter\": \"ab\""},
        {"file", "mode", "follow", ROS_ERR_INVALID_PARAMETER, "invalid value for option \"mode\": \"follow\""},
        {"file", "rows", "1", ROS_ERR_INVALID_PARAMETER, "unknown option \"rows\" for connector \"file\""},
        {"sqlite", "path", "x", ROS_ERR_INVALID_PARAMETER, "unknown option \"path\" for connector \"sqlite\""},
        {"sqlite", "mode", "x", ROS_ERR_INVALID_PARAMETER, "invalid value for option \"mode\": \"x\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(cases[i].conn, "file") != 0 ||
            strcmp(cases[i].msg, "option \"path\" is required for connector \"file\"") == 0)
            tt = tbl_new(cases[i].conn, 1, names, types, cases[i].k, cases[i].v, NULL);
        else
            tt = tbl_new(cases[i].conn, 1, names, types, "path", "/tmp/x.csv", cases[i].k, cases[i].v, NULL);
        ros_error_clear(&err);
        assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), -1);
        EXPECT_ERR(err, cases[i].code, cases[i].msg);
        free(tt);
    }
    tt = tbl_new("file", 1, names, types, "path", "/tmp/x.json", "format", "json", "header", "true", NULL);
    ros_error_clear(&err);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), -1);
    EXPECT_ERR(err, ROS_ERR_INVALID_PARAMETER, "option \"header\" is only valid with format 'csv'");
    free(tt);
    tt = tbl_new("FILE", 1, names, types, "connector", "file", "path", "/tmp/x.csv", "format", "CSV", "header", "on",
                 "delimiter", ";", "null_string", "\\N", "mode", "tail", NULL);
    ros_error_clear(&err);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), 0);
    free(tt);
}

/* ------------------------------------------------------------------ */
/* file */

static void file_roundtrip(const char *format)
{
    char *path = tmp_path(strcmp(format, "json") == 0 ? ".json" : ".csv");
    test_table *tt = tbl_new("file", ALL_N, all_names, all_types, "path", path, "format", format, NULL);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(rt_connector_validate(NULL, &tt->t, &err), 0);
    rt_sink *sink = rt_sink_open(NULL, &tt->t, &err);
    assert_non_null(sink);
    ros_batch b;
    all_types_batch(&b);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0); /* twice: appends */
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    sink->ops->close(sink);
    batch_free(&b);

    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    int64_t n;
    char *txt = read_all(src, 3, &n);
    if (err.set)
        fail_msg("%s: %s", err.message, err.detail);
    assert_int_equal(n, 8);
    ros_strbuf want = ROS_STRBUF_INIT;
    ros_strbuf_append(&want, all_expected);
    ros_strbuf_append(&want, all_expected);
    assert_string_equal(txt, ros_strbuf_cstr(&want));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(src->ops->offset(src), (int64_t)st.st_size);
    free(txt);
    ros_strbuf_free(&want);
    src->ops->close(src);
    unlink(path);
    free(path);
    free(tt);
}

static void test_file_csv_roundtrip(void **state)
{
    (void)state;
    file_roundtrip("csv");
    /* The text written is what psql --csv would print. */
    char *path = tmp_path(".csv");
    test_table *tt = tbl_new("file", ALL_N, all_names, all_types, "path", path, NULL);
    ros_error err;
    ros_error_clear(&err);
    rt_sink *sink = rt_sink_open(NULL, &tt->t, &err);
    assert_non_null(sink);
    ros_batch b;
    all_types_batch(&b);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    sink->ops->close(sink);
    batch_free(&b);
    char *txt = slurp(path);
    assert_string_equal(txt,
                        "t,-32768,2147483647,-9223372036854775808,0.1,0.1,plain,\\x00ff10,\"{1.5,-2,3.25e-05}\"\n"
                        ",,,,,,,,\n"
                        "f,0,-1,9223372036854775807,Infinity,-Infinity,\"he said \"\"hi\"\", then\nleft\\ \t "
                        "caf\xc3\xa9\",\\x,{}\n"
                        "t,32767,-2147483648,1234567890123,NaN,0.3333333333333333,\"\",\\x5c78,{3.4028235e+38}\n");
    free(txt);
    unlink(path);
    free(path);
    free(tt);
}

static void test_file_json_roundtrip(void **state)
{
    (void)state;
    file_roundtrip("json");
    /* Hand-written JSON: escapes, missing and unknown keys, nesting. */
    char *path = tmp_path(".json");
    write_file(path,
               "{\"s\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\n\", \"i32\": 7, \"extra\": {\"x\": [1, {}]}}\n"
               "\n"
               "  {\"arr\": [1, 2.5e0, -3], \"b\": false, \"f64\": \"1e3\", \"s\": {\"k\": [1,2]}, \"i16\": null}\r\n"
               "{}\n"
               "{\"s\": \"last\", \"s\": \"wins\", \"by\": \"\\\\x4142\", \"f32\": \"NaN\", \"b\": \"yes\"}",
               "w");
    test_table *tt = tbl_new("file", ALL_N, all_names, all_types, "path", path, "format", "json", NULL);
    ros_error err;
    ros_error_clear(&err);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    int64_t n;
    char *txt = read_all(src, 10, &n);
    assert_int_equal(n, 4);
    assert_string_equal(txt, "NULL|NULL|7|NULL|NULL|NULL|caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ / \n|NULL|NULL\n"
                             "f|NULL|NULL|NULL|NULL|1000|{\"k\": [1,2]}|NULL|{1,2.5,-3}\n"
                             "NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL\n"
                             "t|NULL|NULL|NULL|NaN|NULL|wins|\\x4142|NULL\n");
    free(txt);
    src->ops->close(src);

    /* Written JSON escapes properly and spells non-finite floats as strings. */
    unlink(path);
    rt_sink *sink = rt_sink_open(NULL, &tt->t, &err);
    assert_non_null(sink);
    ros_batch b;
    all_types_batch(&b);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    sink->ops->close(sink);
    batch_free(&b);
    txt = slurp(path);
    const char *line3 = strchr(strchr(txt, '\n') + 1, '\n') + 1;
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(strchr(line3, '\n') - line3 + 1), line3);
    assert_string_equal(line,
                        "{\"b\":false,\"i16\":0,\"i32\":-1,\"i64\":9223372036854775807,\"f32\":\"Infinity\","
                        "\"f64\":\"-Infinity\",\"s\":\"he said \\\"hi\\\", then\\nleft\\\\ \\t caf\xc3\xa9\","
                        "\"by\":\"\\\\x\",\"arr\":[]}\n");
    assert_non_null(strstr(txt, "{\"b\":null,\"i16\":null,\"i32\":null,\"i64\":null,\"f32\":null,\"f64\":null,"
                                "\"s\":null,\"by\":null,\"arr\":null}\n"));
    free(txt);
    unlink(path);
    free(path);
    free(tt);
}

static void test_file_header_and_options(void **state)
{
    (void)state;
    char *path = tmp_path(".csv");
    const char *names[] = {"id", "name, full"};
    ros_type types[] = {ROS_TYPE_INT32, ROS_TYPE_TEXT};
    test_table *tt = tbl_new("file", 2, names, types, "path", path, "header", "true", NULL);
    ros_error err;
    ros_error_clear(&err);
    for (int round = 0; round < 2; round++) {
        rt_sink *sink = rt_sink_open(NULL, &tt->t, &err);
        assert_non_null(sink);
        ros_batch b = {0};
        ros_type bt[] = {ROS_TYPE_INT32, ROS_TYPE_TEXT};
        assert_int_equal(rt_batch_prepare(&b, 2, bt, &err), 0);
        ros_vector_append_i32(&b.cols[0], round + 1);
        ros_vector_append_text(&b.cols[1], round ? "second" : "first");
        b.nrows = 1;
        assert_int_equal(sink->ops->write(sink, &b, &err), 0);
        assert_int_equal(sink->ops->commit(sink, &err), 0);
        sink->ops->close(sink);
        batch_free(&b);
    }
    char *txt = slurp(path);
    assert_string_equal(txt, "id,\"name, full\"\n1,first\n2,second\n");
    free(txt);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    txt = read_all(src, 10, NULL);
    assert_string_equal(txt, "1|first\n2|second\n");
    free(txt);
    /* seek(0) skips the header again; seek past it does not. */
    assert_int_equal(src->ops->seek(src, 0, &err), 0);
    txt = read_all(src, 1, NULL);
    assert_string_equal(txt, "1|first\n2|second\n");
    free(txt);
    src->ops->close(src);
    unlink(path);
    free(tt);

    /* Delimiter, null_string, CRLF line ends, a byte order mark, a last
     * line without newline, quoted null string. */
    write_file(path, "\xEF\xBB\xBFid|name, full\r\n1|\\N\r\n\\N|\"\\N\"\r\n3|\r\n4|x\"y\"z", "w");
    tt = tbl_new("file", 2, names, types, "path", path, "header", "true", "delimiter", "|", "null_string", "\\N",
                 NULL);
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    txt = read_all(src, 10, NULL);
    assert_string_equal(txt, "1|NULL\nNULL|\\N\n3|\n4|xyz\n");
    free(txt);
    src->ops->close(src);
    free(tt);
    unlink(path);
    free(path);
}

static void test_file_bad_values(void **state)
{
    (void)state;
    char *path = tmp_path(".csv");
    const char *names[] = {"a", "b"};
    ros_type types[] = {ROS_TYPE_INT16, ROS_TYPE_INT32};
    test_table *tt = tbl_new("file", 2, names, types, "path", path, NULL);
    struct {
        const char *text, *code, *msg, *detail;
    } cases[] = {
        {"1,2\n\"3\n\",4\n5,abc\n", ROS_ERR_INVALID_TEXT, "invalid input syntax for type integer: \"abc\"",
         "file \"%s\", line 4, column b"},
        {"99999,1\n", ROS_ERR_OUT_OF_RANGE, "value \"99999\" is out of range for type smallint",
         "file \"%s\", line 1, column a"},
        {"1,2\n3\n", RT_ERR_BAD_COPY_FORMAT, "missing data for column \"b\"", "file \"%s\", line 2"},
        {"1,2,3\n", RT_ERR_BAD_COPY_FORMAT, "extra data after last expected column", "file \"%s\", line 1"},
        {"1,\"2\n", RT_ERR_BAD_COPY_FORMAT, "unterminated CSV quoted field", "file \"%s\", line 1"},
        {"1,9999999999\n", ROS_ERR_OUT_OF_RANGE, "value \"9999999999\" is out of range for type integer",
         "file \"%s\", line 1, column b"},
        {"1, 2 \n-,3\n", ROS_ERR_INVALID_TEXT, "invalid input syntax for type smallint: \"-\"",
         "file \"%s\", line 2, column a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].text, "w");
        ros_error err;
        ros_error_clear(&err);
        rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
        assert_non_null(src);
        ros_batch b = {0};
        int rc;
        while ((rc = src->ops->next(src, &b, 100, &err)) == 1)
            ;
        assert_int_equal(rc, -1);
        EXPECT_ERR(err, cases[i].code, cases[i].msg);
        char detail[512];
        snprintf(detail, sizeof detail, cases[i].detail, path);
        assert_string_equal(err.detail, detail);
        batch_free(&b);
        src->ops->close(src);
    }
    free(tt);

    /* Other types' syntax errors. */
    const char *n1[] = {"v"};
    struct {
        ros_type type;
        const char *text, *code, *msg;
    } vals[] = {
        {ROS_TYPE_BOOL, "maybe\n", ROS_ERR_INVALID_TEXT, "invalid input syntax for type boolean: \"maybe\""},
        {ROS_TYPE_FLOAT64, "1.5x\n", ROS_ERR_INVALID_TEXT, "invalid input syntax for type double precision: \"1.5x\""},
        {ROS_TYPE_FLOAT64, "1e999\n", ROS_ERR_OUT_OF_RANGE, "\"1e999\" is out of range for type double precision"},
        {ROS_TYPE_FLOAT32, "1e39\n", ROS_ERR_OUT_OF_RANGE, "\"1e39\" is out of range for type real"},
        {ROS_TYPE_BYTEA, "\\x4g\n", ROS_ERR_INVALID_PARAMETER, "invalid hexadecimal digit: \"g\""},
        {ROS_TYPE_FLOAT32_ARRAY, "\"{1,x}\"\n", ROS_ERR_INVALID_TEXT, "invalid input syntax for type real: \"x\""},
        {ROS_TYPE_FLOAT32_ARRAY, "\"{1,2\"\n", ROS_ERR_INVALID_TEXT, "malformed array literal: \"{1,2\""},
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        write_file(path, vals[i].text, "w");
        tt = tbl_new("file", 1, n1, &vals[i].type, "path", path, NULL);
        ros_error err;
        ros_error_clear(&err);
        rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
        assert_non_null(src);
        ros_batch b = {0};
        assert_int_equal(src->ops->next(src, &b, 100, &err), -1);
        EXPECT_ERR(err, vals[i].code, vals[i].msg);
        batch_free(&b);
        src->ops->close(src);
        free(tt);
    }
    /* Values that parse. */
    write_file(path, " TRUE \nof\ny\n0\n", "w");
    ros_type bt = ROS_TYPE_BOOL;
    tt = tbl_new("file", 1, n1, &bt, "path", path, NULL);
    ros_error err;
    ros_error_clear(&err);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    char *txt = read_all(src, 100, NULL);
    assert_string_equal(txt, "t\nf\nt\nf\n");
    free(txt);
    src->ops->close(src);
    free(tt);

    /* JSON syntax errors name the line. */
    write_file(path, "{\"v\": 1}\n{\"v\": 2,}\n", "w");
    ros_type it = ROS_TYPE_INT32;
    tt = tbl_new("file", 1, n1, &it, "path", path, "format", "json", NULL);
    ros_error_clear(&err);
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    ros_batch b = {0};
    assert_int_equal(src->ops->next(src, &b, 100, &err), -1);
    EXPECT_ERR(err, ROS_ERR_INVALID_TEXT, "invalid input syntax for type json");
    char want[512];
    snprintf(want, sizeof want, "file \"%s\", line 2, byte 9: Expected string.", path);
    assert_string_equal(err.detail, want);
    batch_free(&b);
    src->ops->close(src);
    const char *bad_json[] = {"[1]\n", "{\"v\": tru}\n", "{\"v\": \"\\ud800\"}\n", "{\"v\": 01}\n",
                              "{\"v\": \"a\nb\"}\n", "{\"v\": 1} x\n", "{\"v\": \"\\q\"}\n"};
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        write_file(path, bad_json[i], "w");
        ros_error_clear(&err);
        src = rt_source_open(NULL, &tt->t, NULL, &err);
        assert_non_null(src);
        assert_int_equal(src->ops->next(src, &b, 100, &err), -1);
        EXPECT_ERR(err, ROS_ERR_INVALID_TEXT, "invalid input syntax for type json");
        batch_free(&b);
        src->ops->close(src);
    }
    /* A JSON value of the wrong kind. */
    write_file(path, "{\"v\": [1]}\n", "w");
    ros_error_clear(&err);
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    assert_int_equal(src->ops->next(src, &b, 100, &err), -1);
    EXPECT_ERR(err, ROS_ERR_INVALID_TEXT, "invalid input syntax for type integer: \"[1]\"");
    batch_free(&b);
    src->ops->close(src);
    free(tt);
    unlink(path);
    free(path);
}

static void test_file_missing(void **state)
{
    (void)state;
    const char *names[] = {"a"};
    ros_type types[] = {ROS_TYPE_INT32};
    test_table *tt = tbl_new("file", 1, names, types, "path", "/nonexistent/rosql/x.csv", NULL);
    ros_error err;
    ros_error_clear(&err);
    assert_null(rt_source_open(NULL, &tt->t, NULL, &err));
    EXPECT_ERR(err, ROS_ERR_UNDEFINED_FILE, "could not open file \"/nonexistent/rosql/x.csv\": No such file or directory");
    ros_error_clear(&err);
    assert_null(rt_sink_open(NULL, &tt->t, &err));
    EXPECT_ERR(err, ROS_ERR_UNDEFINED_FILE,
               "could not open file \"/nonexistent/rosql/x.csv\" for writing: No such file or directory");
    free(tt);
}

static void test_file_tail(void **state)
{
    (void)state;
    char *path = tmp_path(".csv");
    const char *names[] = {"id", "s"};
    ros_type types[] = {ROS_TYPE_INT32, ROS_TYPE_TEXT};
    write_file(path, "1,a\n2,\"b\nb\"\n3,", "w");
    test_table *tt = tbl_new("file", 2, names, types, "path", path, "mode", "tail", NULL);
    ros_error err;
    ros_error_clear(&err);
    rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    assert_true(src->unbounded);
    ros_batch b = {0};
    assert_int_equal(src->ops->next(src, &b, 100, &err), 1);
    assert_int_equal(b.nrows, 2);
    assert_int_equal(src->ops->offset(src), 12);
    assert_int_equal(src->ops->next(src, &b, 100, &err), 2); /* "3," has no newline yet */
    assert_int_equal(b.nrows, 0);
    write_file(path, "c\n4,d\n", "a");
    assert_int_equal(src->ops->next(src, &b, 100, &err), 1);
    assert_int_equal(b.nrows, 2);
    assert_int_equal(ROS_VEC_I32(&b.cols[0])[0], 3);
    assert_int_equal(ROS_VEC_I32(&b.cols[0])[1], 4);
    assert_int_equal(src->ops->next(src, &b, 100, &err), 2);
    int64_t off = src->ops->offset(src);
    assert_int_equal(off, 20);
    src->ops->close(src);

    /* A new source continues from a recorded offset, with true line numbers. */
    write_file(path, "5,e\nx,f\n", "a");
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    assert_int_equal(src->ops->seek(src, 12, &err), 0);
    assert_int_equal(src->ops->next(src, &b, 3, &err), 1);
    assert_int_equal(b.nrows, 3);
    assert_int_equal(ROS_VEC_I32(&b.cols[0])[0], 3);
    assert_int_equal(ROS_VEC_I32(&b.cols[0])[2], 5);
    assert_int_equal(src->ops->next(src, &b, 3, &err), -1);
    char want[512];
    snprintf(want, sizeof want, "file \"%s\", line 7, column id", path);
    assert_string_equal(err.detail, want);
    batch_free(&b);
    src->ops->close(src);
    free(tt);

    /* opts->tail turns a bounded file into a stream too; a bounded read
     * takes a last line without newline. */
    write_file(path, "1,a\n2,b", "w");
    tt = tbl_new("file", 2, names, types, "path", path, NULL);
    int proj[1] = {1};
    rt_source_opts opts = {1, proj, true};
    ros_error_clear(&err);
    src = rt_source_open(NULL, &tt->t, &opts, &err);
    assert_non_null(src);
    assert_true(src->unbounded);
    char *txt = read_all(src, 10, NULL);
    assert_string_equal(txt, "a\n");
    free(txt);
    src->ops->close(src);
    src = rt_source_open(NULL, &tt->t, NULL, &err);
    assert_non_null(src);
    assert_false(src->unbounded);
    txt = read_all(src, 10, NULL);
    assert_string_equal(txt, "1|a\n2|b\n");
    free(txt);
    src->ops->close(src);
    free(tt);
    unlink(path);
    free(path);
}

static void test_file_sink_abort(void **state)
{
    (void)state;
    char *path = tmp_path(".csv");
    const char *names[] = {"id"};
    ros_type types[] = {ROS_TYPE_INT64};
    write_file(path, "1\n2", "w"); /* an unfinished last line */
    test_table *tt = tbl_new("file", 1, names, types, "path", path, NULL);
    ros_error err;
    ros_error_clear(&err);
    rt_sink *sink = rt_sink_open(NULL, &tt->t, &err);
    assert_non_null(sink);
    ros_batch b = {0};
    assert_int_equal(rt_batch_prepare(&b, 1, types, &err), 0);
    for (int i = 0; i < 100000; i++) /* more than the 1 MiB buffer */
        ros_vector_append_i64(&b.cols[0], 1000000000000LL + i);
    b.nrows = 100000;
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    sink->ops->abort(sink);
    char *txt = slurp(path);
    assert_string_equal(txt, "1\n2");
    free(txt);
    batch_free(&b);
    assert_int_equal(rt_batch_prepare(&b, 1, types, &err), 0);
    ros_vector_append_i64(&b.cols[0], 3);
    ros_vector_append_null(&b.cols[0]);
    b.nrows = 2;
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    /* rows written and not committed at close are dropped */
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    sink->ops->close(sink);
    txt = slurp(path);
    assert_string_equal(txt, "1\n2\n3\n\n");
    free(txt);
    /* NOT NULL is enforced */
    tt->cols[0].not_null = true;
    sink = rt_sink_open(NULL, &tt->t, &err);
    assert_non_null(sink);
    assert_int_equal(sink->ops->write(sink, &b, &err), -1);
    EXPECT_ERR(err, RT_ERR_NOT_NULL, "null value in column \"id\" of relation \"t\" violates not-null constraint");
    sink->ops->close(sink);
    batch_free(&b);
    free(tt);
    unlink(path);
    free(path);
}

/* Garbage input never crashes a reader: every call ends in a row batch, the
 * end, or an error that is reported. */
static void test_file_garbage(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\",:\\\n\r ux0123456789.-eEtrfalsn\xc3\xa9\x01";
    char *path = tmp_path(".txt");
    uint64_t x = 12345;
    for (int round = 0; round < 300; round++) {
        char text[300];
        size_t len = (size_t)(round % 290) + 1;
        for (size_t i = 0; i < len; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            text[i] = alphabet[(x >> 33) % (sizeof alphabet - 1)];
        }
        text[len] = '\0';
        write_file(path, text, "w");
        for (int json = 0; json < 2; json++) {
            test_table *tt = tbl_new("file", ALL_N, all_names, all_types, "path", path, "format",
                                     json ? "json" : "csv", NULL);
            ros_error err;
            ros_error_clear(&err);
            rt_source *src = rt_source_open(NULL, &tt->t, NULL, &err);
            assert_non_null(src);
            ros_batch b = {0};
            int rc;
            while ((rc = src->ops->next(src, &b, 2, &err)) == 1)
                ;
            assert_true(rc == 0 || rc == -1);
            assert_int_equal(err.set, rc == -1);
            batch_free(&b);
            src->ops->close(src);
            free(tt);
        }
    }
    unlink(path);
    free(path);
}

/* ------------------------------------------------------------------ */
/* sqlite */

static cat_table *sqlite_table_create(cat_db *db, const char *name, ros_error *err)
{
    cat_table t = {0};
    cat_column cols[ALL_N];
    t.name = (char *)name;
    t.connector = "sqlite";
    t.ncols = ALL_N;
    t.cols = cols;
    for (int i = 0; i < ALL_N; i++) {
        cols[i].name = (char *)all_names[i];
        cols[i].type = all_types[i];
        cols[i].not_null = false;
    }
    assert_int_equal(rt_connector_validate(db, &t, err), 0);
    if (cat_table_create(db, &t, err) < 0)
        fail_msg("cat_table_create: %s", err->message);
    free(t.data_table);
    cat_table *got = cat_table_get(db, name, err);
    assert_non_null(got);
    assert_non_null(got->data_table);
    return got;
}

static void test_sqlite_roundtrip(void **state)
{
    (void)state;
    ros_error err;
    ros_error_clear(&err);
    cat_db *db = cat_open(NULL, &err);
    if (!db)
        fail_msg("cat_open: %s", err.message);
    cat_table *t = sqlite_table_create(db, "t", &err);

    /* Own transaction: rows appear at commit. */
    rt_sink *sink = rt_sink_open(db, t, &err);
    assert_non_null(sink);
    ros_batch b;
    all_types_batch(&b);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_true(cat_in_transaction(db));
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    assert_false(cat_in_transaction(db));
    /* Abort drops uncommitted rows. */
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    sink->ops->abort(sink);
    assert_false(cat_in_transaction(db));

    rt_source *src = rt_source_open(db, t, NULL, &err);
    assert_non_null(src);
    int64_t n;
    char *txt = read_all(src, 3, &n);
    assert_int_equal(n, 4);
    assert_string_equal(txt, all_expected);
    free(txt);
    assert_int_equal(src->ops->offset(src), 4);
    src->ops->close(src);

    /* Inside the catalog's transaction: commit is the owner's. */
    assert_int_equal(cat_begin(db, &err), 0);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    assert_true(cat_in_transaction(db));
    cat_rollback(db);
    assert_int_equal(cat_begin(db, &err), 0);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    assert_int_equal(cat_commit(db, &err), 0);
    sink->ops->close(sink);

    /* Projection, seek and offsets. */
    int proj[2] = {6, 3};
    rt_source_opts opts = {2, proj, false};
    src = rt_source_open(db, t, &opts, &err);
    assert_non_null(src);
    assert_int_equal(src->ops->seek(src, 5, &err), 0);
    txt = read_all(src, 100, &n);
    assert_int_equal(n, 3);
    assert_string_equal(txt, "NULL|NULL\nhe said \"hi\", then\nleft\\ \t caf\xc3\xa9|9223372036854775807\n"
                             "|1234567890123\n");
    free(txt);
    assert_int_equal(src->ops->offset(src), 8);
    src->ops->close(src);

    /* Counting: no columns, only rows. */
    opts.nproj = 0;
    src = rt_source_open(db, t, &opts, &err);
    assert_non_null(src);
    ros_batch cb = {0};
    assert_int_equal(src->ops->next(src, &cb, 100, &err), 1);
    assert_int_equal(cb.nrows, 8);
    assert_int_equal(cb.ncols, 0);
    batch_free(&cb);
    src->ops->close(src);

    /* A bounded source does not see rows added after it opened; a tail
     * source does, and returns 2 when there is nothing new. */
    rt_source *bounded = rt_source_open(db, t, NULL, &err);
    assert_non_null(bounded);
    opts.nproj = 2;
    opts.tail = true;
    src = rt_source_open(db, t, &opts, &err);
    assert_non_null(src);
    assert_true(src->unbounded);
    assert_int_equal(src->ops->next(src, &cb, 100, &err), 1);
    assert_int_equal(cb.nrows, 8);
    assert_int_equal(src->ops->next(src, &cb, 100, &err), 2);
    sink = rt_sink_open(db, t, &err);
    assert_non_null(sink);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    sink->ops->close(sink);
    assert_int_equal(src->ops->next(src, &cb, 100, &err), 1);
    assert_int_equal(cb.nrows, 4);
    assert_int_equal(src->ops->offset(src), 12);
    assert_int_equal(src->ops->next(src, &cb, 100, &err), 2);
    src->ops->close(src);
    txt = read_all(bounded, 5, &n);
    assert_int_equal(n, 8);
    free(txt);
    bounded->ops->close(bounded);
    batch_free(&cb);
    batch_free(&b);

    /* NOT NULL and a large batch. */
    cat_table *t2;
    {
        cat_table d = {0};
        cat_column c[2] = {{"id", ROS_TYPE_INT64, true}, {"v", ROS_TYPE_FLOAT64, false}};
        d.name = "big";
        d.connector = "sqlite";
        d.ncols = 2;
        d.cols = c;
        assert_int_equal(cat_table_create(db, &d, &err), 0);
        free(d.data_table);
        t2 = cat_table_get(db, "big", &err);
        assert_non_null(t2);
    }
    ros_type bt[2] = {ROS_TYPE_INT64, ROS_TYPE_FLOAT64};
    assert_int_equal(rt_batch_prepare(&b, 2, bt, &err), 0);
    for (int i = 0; i < 50000; i++) {
        ros_vector_append_i64(&b.cols[0], i);
        if (i % 7 == 0)
            ros_vector_append_null(&b.cols[1]);
        else
            ros_vector_append_f64(&b.cols[1], i * 0.5);
    }
    b.nrows = 50000;
    sink = rt_sink_open(db, t2, &err);
    assert_non_null(sink);
    assert_int_equal(sink->ops->write(sink, &b, &err), 0);
    assert_int_equal(sink->ops->commit(sink, &err), 0);
    src = rt_source_open(db, t2, NULL, &err);
    assert_non_null(src);
    int64_t total = 0, nulls = 0;
    double sum = 0;
    int rc;
    while ((rc = src->ops->next(src, &cb, 4096, &err)) == 1) {
        for (uint32_t i = 0; i < cb.nrows; i++) {
            assert_int_equal(ROS_VEC_I64(&cb.cols[0])[i], total + i);
            if (ros_vector_is_null(&cb.cols[1], i))
                nulls++;
            else
                sum += ROS_VEC_F64(&cb.cols[1])[i];
        }
        total += cb.nrows;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(total, 50000);
    assert_int_equal(nulls, (50000 + 6) / 7);
    assert_true(sum > 0);
    src->ops->close(src);
    batch_free(&cb);
    ros_vector_append_null(&b.cols[0]);
    ros_vector_append_f64(&b.cols[1], 1);
    b.nrows++;
    assert_int_equal(sink->ops->write(sink, &b, &err), -1);
    EXPECT_ERR(err, RT_ERR_NOT_NULL, "null value in column \"id\" of relation \"big\" violates not-null constraint");
    sink->ops->close(sink);
    batch_free(&b);

    cat_table_free(t2);
    cat_table_free(t);
    cat_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_datagen_determinism),
        cmocka_unit_test(test_datagen_bounded),
        cmocka_unit_test(test_datagen_sequence),
        cmocka_unit_test(test_datagen_random_ranges),
        cmocka_unit_test(test_datagen_null_rate),
        cmocka_unit_test(test_datagen_rate),
        cmocka_unit_test(test_datagen_validation),
        cmocka_unit_test(test_connector_dispatch),
        cmocka_unit_test(test_file_csv_roundtrip),
        cmocka_unit_test(test_file_json_roundtrip),
        cmocka_unit_test(test_file_header_and_options),
        cmocka_unit_test(test_file_bad_values),
        cmocka_unit_test(test_file_missing),
        cmocka_unit_test(test_file_tail),
        cmocka_unit_test(test_file_sink_abort),
        cmocka_unit_test(test_file_garbage),
        cmocka_unit_test(test_sqlite_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
