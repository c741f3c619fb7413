/*
 * test_handler.c
 *    Unit tests of service handlers (service/handler.h) and the built-ins
 *    (service/builtin/): echo of every type byte for byte, delay's sleep and
 *    options, embed against an independent implementation of the model in
 *    service/README.md, cosine's values, errors and reference files, user
 *    libraries (the example library), and the errors of opening.  The GPU
 *    paths are compared with the CPU paths when a GPU is visible and skipped
 *    otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include <rosql/udf.h>
#include <rosql/vector.h>

#include "runtime/core/error.h"
#include "service/handler.h"

/* Opening must fail with this SQLSTATE. */
#define assert_open_fails(spec, opts, device, err, sqlstate)                                       \
    do {                                                                                           \
        ros_error_clear(&(err));                                                                   \
        svc_handler *h_ = svc_handler_open((spec), (opts), (device), &(err));                      \
        assert_null(h_);                                                                           \
        assert_true((err).set);                                                                    \
        assert_string_equal((err).code, (sqlstate));                                               \
    } while (0)

/* A call must fail with this SQLSTATE and failing row. */
#define assert_call_fails(h, args, err, sqlstate, row)                                             \
    do {                                                                                           \
        ros_vector o_;                                                                             \
        int64_t r_ = 12345;                                                                        \
        ros_error_clear(&(err));                                                                   \
        assert_int_equal(svc_handler_call((h), "", (args), &o_, &r_, &(err)), -1);                 \
        assert_true((err).set);                                                                    \
        assert_string_equal((err).code, (sqlstate));                                               \
        assert_int_equal(r_, (row));                                                               \
        assert_null(o_.validity);                                                                  \
        assert_null(o_.data);                                                                      \
    } while (0)

static svc_handler *open_ok(const char *spec, const char *opts, int device)
{
    ros_error err;
    ros_error_clear(&err);
    svc_handler *h = svc_handler_open(spec, opts, device, &err);
    if (!h)
        fail_msg("open %s: %s %s (%s)", spec, err.code, err.message, err.detail);
    return h;
}

static void call_ok(svc_handler *h, const ros_batch *args, ros_vector *out)
{
    ros_error err;
    ros_error_clear(&err);
    int64_t row = 12345;
    if (svc_handler_call(h, "", args, out, &row, &err) != 0)
        fail_msg("call %s: %s %s", svc_handler_spec(h), err.code, err.message);
    assert_int_equal(out->len, args->nrows);
}

/* ---------------------------------------------------------------- */
/* Batches */

static void batch_init(ros_batch *b, uint32_t ncols, const ros_type *types)
{
    b->ncols = ncols;
    b->nrows = 0;
    b->cols = calloc(ncols ? ncols : 1, sizeof *b->cols);
    assert_non_null(b->cols);
    for (uint32_t c = 0; c < ncols; c++)
        ros_vector_init(&b->cols[c], types[c]);
}

static void batch_free(ros_batch *b)
{
    for (uint32_t c = 0; c < b->ncols; c++)
        ros_vector_free(&b->cols[c]);
    free(b->cols);
    memset(b, 0, sizeof *b);
}

/* A one-column text batch; NULL entries of texts are NULL rows. */
static void text_batch(ros_batch *b, const char *const *texts, uint32_t n)
{
    const ros_type t = ROS_TYPE_TEXT;
    batch_init(b, 1, &t);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(texts[i] ? ros_vector_append_text(&b->cols[0], texts[i])
                                  : ros_vector_append_null(&b->cols[0]),
                         0);
    b->nrows = n;
}

/* Appends a real[] row (NULL when v is NULL). */
static void append_floats(ros_vector *col, const float *v, uint32_t n)
{
    if (v)
        assert_int_equal(ros_vector_append_bytes(col, v, n * (uint32_t)sizeof(float)), 0);
    else
        assert_int_equal(ros_vector_append_null(col), 0);
}

/* Row i of a real[] column, copied to dst (at most cap floats); returns
 * its length in floats. */
static uint32_t row_floats(const ros_vector *v, uint32_t i, float *dst, uint32_t cap)
{
    uint32_t len;
    const uint8_t *p = ros_vector_bytes(v, i, &len);
    assert_int_equal(len % sizeof(float), 0);
    uint32_t n = len / (uint32_t)sizeof(float);
    assert_true(n <= cap);
    memcpy(dst, p, len);
    return n;
}

/* ---------------------------------------------------------------- */
/* echo */

/*
 * One column of type t, 37 rows, every 4th NULL (unless no_nulls: then no
 * validity bitmap at all), empty text rows, non-ASCII bytes.
 */
static void make_column(ros_vector *v, ros_type t, uint32_t nrows, bool no_nulls)
{
    ros_vector_init(v, t);
    for (uint32_t i = 0; i < nrows; i++) {
        int rc;
        if (t == ROS_TYPE_NULL || (!no_nulls && i % 4 == 1)) {
            rc = ros_vector_append_null(v);
            continue;
        }
        switch (t) {
        case ROS_TYPE_BOOL: rc = ros_vector_append_bool(v, i % 3 == 0); break;
        case ROS_TYPE_INT16: rc = ros_vector_append_i16(v, (int16_t)(i * 977 - 20000)); break;
        case ROS_TYPE_INT32: rc = ros_vector_append_i32(v, (int32_t)(i * 2654435761u)); break;
        case ROS_TYPE_INT64: rc = ros_vector_append_i64(v, (int64_t)i * -98765432123ll); break;
        case ROS_TYPE_FLOAT32: rc = ros_vector_append_f32(v, (float)i / 7.0f); break;
        case ROS_TYPE_FLOAT64: rc = ros_vector_append_f64(v, (double)i * 1e-300); break;
        case ROS_TYPE_TEXT: {
            char s[40];
            if (i % 5 == 0)
                s[0] = '\0';
            else
                snprintf(s, sizeof s, "t%u-\xe2\x82\xac-%u", i, i * i);
            rc = ros_vector_append_text(v, s);
            break;
        }
        case ROS_TYPE_BYTEA: {
            uint8_t b[4] = {0, (uint8_t)i, 0xff, (uint8_t)(i * 3)};
            rc = ros_vector_append_bytes(v, b, i % 5);
            break;
        }
        case ROS_TYPE_FLOAT32_ARRAY: {
            float f[6];
            for (uint32_t k = 0; k < 6; k++)
                f[k] = (float)(i * 10 + k) - 0.25f;
            rc = ros_vector_append_bytes(v, f, (i % 7 < 6 ? i % 7 : 6) * (uint32_t)sizeof(float));
            break;
        }
        default: rc = -1;
        }
        assert_int_equal(rc, 0);
    }
    if (no_nulls) {
        free(v->validity);
        v->validity = NULL;
    }
}

/* Asserts that out holds the first nrows rows of in, byte for byte. */
static void assert_column_equal(const ros_vector *in, const ros_vector *out, uint32_t nrows)
{
    assert_int_equal(out->type, in->type);
    assert_int_equal(out->len, nrows);
    for (uint32_t i = 0; i < nrows; i++) {
        bool ni = ros_vector_is_null(in, i), no = ros_vector_is_null(out, i);
        assert_int_equal(ni, no);
        if (ni)
            continue;
        if (ros_type_is_varlen(in->type)) {
            uint32_t li, lo;
            const uint8_t *pi = ros_vector_bytes(in, i, &li);
            const uint8_t *po = ros_vector_bytes(out, i, &lo);
            assert_int_equal(li, lo);
            if (li)
                assert_memory_equal(pi, po, li);
        } else {
            size_t w = ros_type_width(in->type);
            assert_memory_equal((const uint8_t *)in->values + i * w, (const uint8_t *)out->values + i * w, w);
        }
    }
}

static void test_echo_every_type(void **state)
{
    (void)state;
    svc_handler *h = open_ok("builtin:echo", NULL, -1);
    assert_string_equal(svc_handler_spec(h), "builtin:echo");
    for (int t = 0; t < ROS_TYPE_COUNT; t++) {
        for (int no_nulls = 0; no_nulls < 2; no_nulls++) {
            ros_batch b;
            const ros_type types[2] = {(ros_type)t, ROS_TYPE_INT64};
            batch_init(&b, 2, types);
            ros_vector_free(&b.cols[0]);
            make_column(&b.cols[0], (ros_type)t, 37, no_nulls && t != ROS_TYPE_NULL);
            make_column(&b.cols[1], ROS_TYPE_INT64, 37, false); /* extra arguments are ignored */
            b.nrows = 37;
            ros_vector out;
            call_ok(h, &b, &out);
            assert_column_equal(&b.cols[0], &out, 37);
            if (t == ROS_TYPE_NULL)
                for (uint32_t i = 0; i < 37; i++)
                    assert_true(ros_vector_is_null(&out, i));
            ros_vector_free(&out);
            /* fewer rows than the column holds: only those come back */
            b.nrows = 9;
            call_ok(h, &b, &out);
            assert_column_equal(&b.cols[0], &out, 9);
            if (ros_type_is_varlen((ros_type)t))
                assert_int_equal(out.data_len, b.cols[0].offsets[9]);
            ros_vector_free(&out);
            batch_free(&b);
        }
    }
    svc_handler_close(h);
}

static void test_echo_edges(void **state)
{
    (void)state;
    ros_error err;
    svc_handler *h = open_ok("builtin:echo", "unrelated=1\n", -1);
    /* zero rows of text: an empty column with a valid offsets array */
    ros_batch b;
    text_batch(&b, NULL, 0);
    ros_vector out;
    call_ok(h, &b, &out);
    assert_int_equal(out.type, ROS_TYPE_TEXT);
    assert_int_equal(out.len, 0);
    assert_non_null(out.offsets);
    assert_int_equal(out.offsets[0], 0);
    ros_vector_free(&out);
    batch_free(&b);
    /* no argument at all */
    batch_init(&b, 0, NULL);
    b.nrows = 3;
    assert_call_fails(h, &b, err, ROS_ERR_DATATYPE_MISMATCH, -1);
    assert_string_equal(err.message, "builtin:echo takes at least one argument");
    batch_free(&b);
    /* a column shorter than the batch is refused, not read past */
    const char *texts[] = {"a", "b"};
    text_batch(&b, texts, 2);
    b.nrows = 3;
    assert_call_fails(h, &b, err, ROS_ERR_INTERNAL, -1);
    batch_free(&b);
    ros_error_clear(&err);
    assert_int_equal(svc_handler_warmup(h, &err), 0);
    svc_handler_close(h);
    svc_handler_close(NULL);
}

/* ---------------------------------------------------------------- */
/* delay */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_delay(void **state)
{
    (void)state;
    ros_error err;
    svc_handler *h = open_ok("builtin:delay", "delay_ms=30\nper_row_ms=0.5\n", -1);
    ros_batch b;
    const ros_type t = ROS_TYPE_INT64;
    batch_init(&b, 1, &t);
    make_column(&b.cols[0], ROS_TYPE_INT64, 40, false);
    b.nrows = 40;
    ros_vector out;
    double t0 = now_ms();
    call_ok(h, &b, &out);
    double took = now_ms() - t0;
    assert_true(took >= 30 + 0.5 * 40);
    assert_true(took < 50 + 2000);
    assert_column_equal(&b.cols[0], &out, 40);
    ros_vector_free(&out);
    /* warm-up: 4 rows, so at least 32 ms */
    t0 = now_ms();
    ros_error_clear(&err);
    assert_int_equal(svc_handler_warmup(h, &err), 0);
    assert_true(now_ms() - t0 >= 32);
    svc_handler_close(h);

    /* defaults: no sleep to speak of */
    h = open_ok("builtin:delay", "", -1);
    t0 = now_ms();
    call_ok(h, &b, &out);
    assert_true(now_ms() - t0 < 1000);
    ros_vector_free(&out);
    svc_handler_close(h);
    batch_free(&b);

    assert_open_fails("builtin:delay", "delay_ms=-1\n", -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "delay_ms"));
    assert_non_null(strstr(err.message, "failed to initialise"));
    assert_open_fails("builtin:delay", "per_row_ms=abc\n", -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "per_row_ms"));
    assert_open_fails("builtin:delay", "per_row_ms=1.5x", -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails("builtin:delay", "delay_ms=", -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails("builtin:delay", "delay_ms=nan", -1, err, ROS_ERR_INVALID_PARAMETER);
    /* quotes and blanks around values are accepted */
    h = open_ok("builtin:delay", " delay_ms = '0.25' \n", -1);
    svc_handler_close(h);
}

/* ---------------------------------------------------------------- */
/* embed: an independent implementation of the documented model */

static uint64_t ref_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t ref_fnv(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The embedding of text per service/README.md, into y[dim]. */
static void ref_embed(const char *text, uint32_t dim, uint64_t seed, float *y)
{
    /* tokens, lowercased */
    size_t n = strlen(text);
    char *low = malloc(n + 1);
    assert_non_null(low);
    for (size_t i = 0; i <= n; i++)
        low[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] + 32) : text[i];
    size_t starts[256], lens[256], ntok = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)low[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80)) {
            i++;
            continue;
        }
        size_t s = i;
        while (i < n) {
            c = (unsigned char)low[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80))
                break;
            i++;
        }
        assert_true(ntok < 256);
        starts[ntok] = s;
        lens[ntok++] = i - s;
    }
    static int x[4096];
    memset(x, 0, sizeof x);
    char buf[1024];
    for (size_t t = 0; t < ntok; t++) {
        for (int bigram = 0; bigram < 2; bigram++) {
            size_t len;
            if (!bigram) {
                len = lens[t];
                memcpy(buf, low + starts[t], len);
            } else {
                if (t == 0)
                    continue;
                len = (size_t)snprintf(buf, sizeof buf, "%.*s %.*s", (int)lens[t - 1], low + starts[t - 1],
                                       (int)lens[t], low + starts[t]);
            }
            uint64_t z = ref_mix(ref_fnv(buf, len) ^ seed);
            x[z & 4095] += (z >> 63) ? -1 : 1;
        }
    }
    free(low);
    float *W = malloc((size_t)4096 * dim * sizeof *W);
    assert_non_null(W);
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)4096 * dim; i++) {
        s += 0x9e3779b97f4a7c15ull;
        double u = (double)(ref_mix(s) >> 40) / 16777216.0; /* [0, 1) */
        W[i] = (float)(2.0 * u - 1.0);
    }
    for (uint32_t d = 0; d < dim; d++)
        y[d] = 0;
    for (uint32_t f = 0; f < 4096; f++)
        if (x[f])
            for (uint32_t d = 0; d < dim; d++)
                y[d] += (float)x[f] * W[(size_t)f * dim + d];
    double ss = 0;
    for (uint32_t d = 0; d < dim; d++)
        ss += (double)y[d] * y[d];
    for (uint32_t d = 0; ss > 0 && d < dim; d++)
        y[d] = (float)(y[d] / sqrt(ss));
    free(W);
}

static const char *const embed_texts[] = {
    "The quick brown fox jumps over the lazy dog",
    NULL,
    "",
    "hello, WORLD!",
    "Hello world",
    "  ...  ",
    "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 42",
    "a a a a a a a a b",
    "zebra",
};
#define N_EMBED_TEXTS (sizeof embed_texts / sizeof embed_texts[0])

/* Embeds embed_texts with h; asserts dim floats per non-NULL row. */
static void embed_all(svc_handler *h, ros_vector *out, uint32_t dim)
{
    ros_batch b;
    text_batch(&b, embed_texts, N_EMBED_TEXTS);
    call_ok(h, &b, out);
    assert_int_equal(out->type, ROS_TYPE_FLOAT32_ARRAY);
    for (uint32_t i = 0; i < N_EMBED_TEXTS; i++) {
        uint32_t len;
        ros_vector_bytes(out, i, &len);
        assert_int_equal(ros_vector_is_null(out, i), embed_texts[i] == NULL);
        assert_int_equal(len, embed_texts[i] ? dim * sizeof(float) : 0);
    }
    batch_free(&b);
}

static void test_embed_model(void **state)
{
    (void)state;
    const uint32_t dim = 64;
    svc_handler *h = open_ok("builtin:embed", NULL, -1);
    ros_vector out, again;
    embed_all(h, &out, dim);
    embed_all(h, &again, dim);
    /* deterministic: identical bytes */
    assert_int_equal(out.data_len, again.data_len);
    assert_memory_equal(out.data, again.data, out.data_len);
    assert_memory_equal(out.offsets, again.offsets, (N_EMBED_TEXTS + 1) * sizeof(uint32_t));
    float y[4096], r[4096];
    for (uint32_t i = 0; i < N_EMBED_TEXTS; i++) {
        if (!embed_texts[i])
            continue;
        row_floats(&out, i, y, 4096);
        ref_embed(embed_texts[i], dim, 42, r);
        double ss = 0;
        for (uint32_t d = 0; d < dim; d++) {
            assert_float_equal(y[d], r[d], 1e-6);
            ss += (double)y[d] * y[d];
        }
        bool empty = strcmp(embed_texts[i], "") == 0 || strcmp(embed_texts[i], "  ...  ") == 0;
        if (empty)
            assert_float_equal(ss, 0.0, 0.0); /* no token: all zeros, not NaN */
        else
            assert_float_equal(sqrt(ss), 1.0, 1e-5);
    }
    /* case and punctuation do not matter; different words do */
    float a[64], c[64];
    row_floats(&out, 3, a, 64);
    row_floats(&out, 4, c, 64);
    assert_memory_equal(a, c, sizeof a);
    row_floats(&out, 8, c, 64);
    assert_memory_not_equal(a, c, sizeof a);
    ros_vector_free(&again);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_handler_warmup(h, &err), 0);
    svc_handler_close(h);

    /* another seed: another model */
    h = open_ok("builtin:embed", "seed=7\n", -1);
    embed_all(h, &again, dim);
    row_floats(&again, 0, y, 4096);
    row_floats(&out, 0, r, 4096);
    assert_memory_not_equal(y, r, dim * sizeof(float));
    ref_embed(embed_texts[0], dim, 7, r);
    for (uint32_t d = 0; d < dim; d++)
        assert_float_equal(y[d], r[d], 1e-6);
    ros_vector_free(&again);
    svc_handler_close(h);
    ros_vector_free(&out);

    /* other dims */
    const uint32_t dims[] = {1, 3, 300, 4096};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        char opts[64];
        snprintf(opts, sizeof opts, "dim=%u\nseed=42\n", dims[k]);
        h = open_ok("builtin:embed", opts, -1);
        embed_all(h, &out, dims[k]);
        uint32_t n = row_floats(&out, 0, y, 4096);
        assert_int_equal(n, dims[k]);
        ref_embed(embed_texts[0], dims[k], 42, r);
        double ss = 0;
        for (uint32_t d = 0; d < n; d++) {
            assert_float_equal(y[d], r[d], 1e-6);
            ss += (double)y[d] * y[d];
        }
        assert_float_equal(sqrt(ss), 1.0, 1e-5);
        if (dims[k] == 1)
            assert_float_equal(fabs(y[0]), 1.0, 1e-6);
        ros_vector_free(&out);
        svc_handler_close(h);
    }
}

static void test_embed_errors(void **state)
{
    (void)state;
    ros_error err;
    assert_open_fails("builtin:embed", "dim=0", -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "dim"));
    assert_open_fails("builtin:embed", "dim=4097", -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails("builtin:embed", "dim=12.5", -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails("builtin:embed", "seed=-1", -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_non_null(strstr(err.message, "seed"));
    assert_open_fails("builtin:embed", "seed=18446744073709551616", -1, err, ROS_ERR_INVALID_PARAMETER);
    svc_handler *h = open_ok("builtin:embed", "seed=18446744073709551615", -1);
    ros_batch b;
    const ros_type t = ROS_TYPE_INT64;
    batch_init(&b, 1, &t);
    make_column(&b.cols[0], ROS_TYPE_INT64, 3, false);
    b.nrows = 3;
    assert_call_fails(h, &b, err, ROS_ERR_DATATYPE_MISMATCH, -1);
    assert_string_equal(err.message, "builtin:embed takes (text), received (bigint)");
    batch_free(&b);
    svc_handler_close(h);
}

/* A long batch through both paths; skipped without a GPU. */
static void test_embed_gpu_agrees(void **state)
{
    (void)state;
    if (svc_gpu_count() == 0) {
        printf("skipped: no GPU\n");
        skip();
    }
    const char *words[] = {"alpha", "Beta", "gamma,", "delta!", "\xc3\xa9t\xc3\xa9", "7", "x-y", ""};
    const uint32_t nrows = 700;
    ros_batch b;
    const ros_type t = ROS_TYPE_TEXT;
    batch_init(&b, 1, &t);
    for (uint32_t i = 0; i < nrows; i++) {
        char s[512] = "";
        size_t at = 0;
        for (uint32_t k = 0; k < (i * 7) % 40 && at < 400; k++)
            at += (size_t)snprintf(s + at, sizeof s - at, "%s ", words[(i + k * k) % 8]);
        assert_int_equal(i % 13 == 5 ? ros_vector_append_null(&b.cols[0]) : ros_vector_append_text(&b.cols[0], s),
                         0);
    }
    b.nrows = nrows;
    const char *opts[] = {"dim=64", "dim=333\nseed=9", "dim=1"};
    for (size_t k = 0; k < 3; k++) {
        svc_handler *cpu = open_ok("builtin:embed", opts[k], -1);
        svc_handler *gpu = open_ok("builtin:embed", opts[k], 0);
        ros_error err;
        ros_error_clear(&err);
        assert_int_equal(svc_handler_warmup(gpu, &err), 0);
        for (int round = 0; round < 2; round++) { /* the second reuses the buffers */
            ros_vector oc, og;
            call_ok(cpu, &b, &oc);
            call_ok(gpu, &b, &og);
            assert_int_equal(oc.data_len, og.data_len);
            assert_memory_equal(oc.offsets, og.offsets, (nrows + 1) * sizeof(uint32_t));
            for (uint32_t i = 0; i < nrows; i++)
                assert_int_equal(ros_vector_is_null(&oc, i), ros_vector_is_null(&og, i));
            const float *fc = (const float *)oc.data, *fg = (const float *)og.data;
            for (uint32_t j = 0; j < oc.data_len / 4; j++)
                assert_float_equal(fc[j], fg[j], 1e-5);
            ros_vector_free(&oc);
            ros_vector_free(&og);
        }
        svc_handler_close(cpu);
        svc_handler_close(gpu);
    }
    batch_free(&b);
}

/* ---------------------------------------------------------------- */
/* cosine */

static void pair_batch(ros_batch *b)
{
    const ros_type types[2] = {ROS_TYPE_FLOAT32_ARRAY, ROS_TYPE_FLOAT32_ARRAY};
    batch_init(b, 2, types);
}

static void add_pair(ros_batch *b, const float *x, const float *y, uint32_t n)
{
    append_floats(&b->cols[0], x, n);
    append_floats(&b->cols[1], y, n);
    b->nrows++;
}

static void test_cosine_pairs(void **state)
{
    (void)state;
    svc_handler *h = open_ok("builtin:cosine", NULL, -1);
    ros_batch b;
    pair_batch(&b);
    const float v[3] = {1, 2, 3}, w[3] = {-1, -2, -3}, e1[3] = {1, 0, 0}, e2[3] = {0, 5, 0},
                z[3] = {0, 0, 0}, s[3] = {2, 4, 6}, p[2] = {3, 4}, q[2] = {4, 3};
    add_pair(&b, v, v, 3);       /* 1 */
    add_pair(&b, e1, e2, 3);     /* 0 */
    add_pair(&b, v, w, 3);       /* -1 */
    add_pair(&b, NULL, v, 3);    /* NULL */
    add_pair(&b, v, NULL, 3);    /* NULL */
    add_pair(&b, z, v, 3);       /* 0, not NaN */
    add_pair(&b, v, s, 3);       /* 1 */
    add_pair(&b, p, q, 2);       /* 24/25 */
    add_pair(&b, p, q, 0);       /* empty vectors: 0 */
    ros_vector out;
    call_ok(h, &b, &out);
    assert_int_equal(out.type, ROS_TYPE_FLOAT64);
    const double want[] = {1, 0, -1, 0, 0, 0, 1, 24.0 / 25.0, 0};
    for (uint32_t i = 0; i < b.nrows; i++) {
        assert_int_equal(ros_vector_is_null(&out, i), i == 3 || i == 4);
        if (!ros_vector_is_null(&out, i)) {
            assert_false(isnan(ROS_VEC_F64(&out)[i]));
            assert_float_equal(ROS_VEC_F64(&out)[i], want[i], 1e-12);
        }
    }
    ros_vector_free(&out);

    /* lengths differ in row 9 */
    ros_error err;
    append_floats(&b.cols[0], v, 3);
    append_floats(&b.cols[1], p, 2);
    b.nrows++;
    assert_call_fails(h, &b, err, ROS_ERR_DATATYPE_MISMATCH, 9);
    assert_non_null(strstr(err.message, "row 9"));
    batch_free(&b);

    /* one argument without a reference file */
    const ros_type one = ROS_TYPE_FLOAT32_ARRAY;
    batch_init(&b, 1, &one);
    append_floats(&b.cols[0], v, 3);
    b.nrows = 1;
    assert_call_fails(h, &b, err, ROS_ERR_DATATYPE_MISMATCH, -1);
    assert_string_equal(err.message, "builtin:cosine takes (real[], real[]), received (real[])");
    batch_free(&b);
    ros_error_clear(&err);
    assert_int_equal(svc_handler_warmup(h, &err), 0);
    svc_handler_close(h);
}

/* Writes text to a new temporary file whose path goes to path. */
static void temp_file(char *path, size_t size, const char *text)
{
    snprintf(path, size, "/tmp/rosql_test_handler_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void test_cosine_reference(void **state)
{
    (void)state;
    char path[64], opts[128];
    temp_file(path, sizeof path, "1, 0, 0\n\n0,1,0\n -1 ,0, 0 \r\n3,4,0");
    snprintf(opts, sizeof opts, "reference='%s'\n", path);
    svc_handler *h = open_ok("builtin:cosine", opts, -1);
    const ros_type one = ROS_TYPE_FLOAT32_ARRAY;
    ros_batch b;
    batch_init(&b, 1, &one);
    const float q1[3] = {2, 0, 0}, q2[3] = {0, 0, 0}, q3[3] = {0, 3, 4};
    append_floats(&b.cols[0], q1, 3);
    append_floats(&b.cols[0], NULL, 0);
    append_floats(&b.cols[0], q2, 3);
    append_floats(&b.cols[0], q3, 3);
    b.nrows = 4;
    ros_vector out;
    call_ok(h, &b, &out);
    assert_int_equal(out.type, ROS_TYPE_FLOAT32_ARRAY);
    const float want[4][4] = {{1, 0, -1, 0.6f}, {0}, {0, 0, 0, 0}, {0, 0.6f, 0, 0.48f}};
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(ros_vector_is_null(&out, i), i == 1);
        if (i == 1)
            continue;
        float r[8];
        assert_int_equal(row_floats(&out, i, r, 8), 4);
        for (int j = 0; j < 4; j++)
            assert_float_equal(r[j], want[i][j], 1e-6);
    }
    ros_vector_free(&out);
    /* a query of the wrong length, in row 4 */
    ros_error err;
    append_floats(&b.cols[0], q1, 2);
    b.nrows = 5;
    assert_call_fails(h, &b, err, ROS_ERR_DATATYPE_MISMATCH, 4);
    assert_non_null(strstr(err.message, "row 4"));
    batch_free(&b);
    ros_error_clear(&err);
    assert_int_equal(svc_handler_warmup(h, &err), 0);
    svc_handler_close(h);
    unlink(path);

    /* malformed files name the file and the line */
    static const struct {
        const char *text;
        const char *line;
    } bad[] = {
        {"1,2,3\n4,5\n", "line 2"},
        {"1,2\n\n3,x\n", "line 3"},
        {"1,2,\n", "line 1"},
        {"1;2\n", "line 1"},
        {"1,2\n3,nan\n", "line 2"},
        {"1,2\n3,1e99\n", "line 2"},
        {"\n\n", "no vectors"},
        {"", "no vectors"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        temp_file(path, sizeof path, bad[k].text);
        snprintf(opts, sizeof opts, "reference=%s", path);
        assert_open_fails("builtin:cosine", opts, -1, err, ROS_ERR_INVALID_TEXT);
        assert_non_null(strstr(err.message, path));
        if (!strstr(err.message, bad[k].line))
            fail_msg("file %zu: \"%s\" lacks \"%s\"", k, err.message, bad[k].line);
        unlink(path);
    }
    assert_open_fails("builtin:cosine", "reference=/nonexistent/rosql/ref.txt", -1, err,
                      ROS_ERR_UNDEFINED_FILE);
    assert_non_null(strstr(err.message, "/nonexistent/rosql/ref.txt"));
}

static void test_cosine_gpu_agrees(void **state)
{
    (void)state;
    if (svc_gpu_count() == 0) {
        printf("skipped: no GPU\n");
        skip();
    }
    /* pairs of varied lengths, NULLs and zero vectors */
    ros_batch b;
    pair_batch(&b);
    float x[300], y[300];
    for (uint32_t i = 0; i < 500; i++) {
        uint32_t n = (i * 37) % 300;
        for (uint32_t k = 0; k < n; k++) {
            x[k] = sinf((float)(i + k));
            y[k] = (i % 11 == 3) ? 0.0f : cosf((float)(i * k) * 0.01f);
        }
        add_pair(&b, i % 17 == 2 ? NULL : x, i % 19 == 4 ? NULL : y, n);
    }
    svc_handler *cpu = open_ok("builtin:cosine", NULL, -1);
    svc_handler *gpu = open_ok("builtin:cosine", NULL, 0);
    for (int round = 0; round < 2; round++) {
        ros_vector oc, og;
        call_ok(cpu, &b, &oc);
        call_ok(gpu, &b, &og);
        for (uint32_t i = 0; i < b.nrows; i++) {
            assert_int_equal(ros_vector_is_null(&oc, i), ros_vector_is_null(&og, i));
            if (!ros_vector_is_null(&oc, i))
                assert_float_equal(ROS_VEC_F64(&oc)[i], ROS_VEC_F64(&og)[i], 1e-5);
        }
        ros_vector_free(&oc);
        ros_vector_free(&og);
    }
    svc_handler_close(cpu);
    svc_handler_close(gpu);
    batch_free(&b);

    /* reference mode: 50 vectors of 40 */
    char path[64], opts[128], line[64];
    size_t cap = 50 * 40 * 16, at = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int j = 0; j < 50; j++)
        for (int d = 0; d < 40; d++) {
            snprintf(line, sizeof line, "%s%.4f%s", d ? "," : "", sin(j * 40.0 + d), d == 39 ? "\n" : "");
            at += (size_t)snprintf(text + at, cap - at, "%s", line);
        }
    temp_file(path, sizeof path, text);
    free(text);
    snprintf(opts, sizeof opts, "reference=%s", path);
    cpu = open_ok("builtin:cosine", opts, -1);
    gpu = open_ok("builtin:cosine", opts, 0);
    const ros_type one = ROS_TYPE_FLOAT32_ARRAY;
    batch_init(&b, 1, &one);
    for (uint32_t i = 0; i < 300; i++) {
        for (uint32_t d = 0; d < 40; d++)
            x[d] = i % 9 == 0 ? 0.0f : cosf((float)(i + d * d));
        append_floats(&b.cols[0], i % 7 == 1 ? NULL : x, 40);
    }
    b.nrows = 300;
    ros_vector oc, og;
    call_ok(cpu, &b, &oc);
    call_ok(gpu, &b, &og);
    assert_int_equal(oc.data_len, og.data_len);
    for (uint32_t j = 0; j < oc.data_len / 4; j++)
        assert_float_equal(((float *)oc.data)[j], ((float *)og.data)[j], 1e-5);
    ros_vector_free(&oc);
    ros_vector_free(&og);
    batch_free(&b);
    svc_handler_close(cpu);
    svc_handler_close(gpu);
    unlink(path);
}

/* ---------------------------------------------------------------- */
/* User libraries */

/* Path of the example library: $ROSQL_BUILD_DIR/examples/..., or beside
 * the build directory this test runs from. */
static void example_library(char *path, size_t size)
{
    const char *dir = getenv("ROSQL_BUILD_DIR");
    int n;
    if (dir && dir[0]) {
        n = snprintf(path, size, "%s/examples/librosql_example_udf.so", dir);
    } else {
        char exe[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        assert_true(len > 0);
        exe[len] = '\0';
        for (int up = 0; up < 2; up++) { /* build/tests/test_handler -> build */
            char *slash = strrchr(exe, '/');
            assert_non_null(slash);
            *slash = '\0';
        }
        n = snprintf(path, size, "%s/examples/librosql_example_udf.so", exe);
    }
    assert_true(n > 0 && (size_t)n < size);
    if (access(path, R_OK) != 0)
        fail_msg("%s is missing: build the target rosql_example_udf first", path);
}

static void test_user_library(void **state)
{
    (void)state;
    char lib[PATH_MAX], spec[PATH_MAX + 64];
    example_library(lib, sizeof lib);
    ros_error err;

    /* add_one(bigint) -> bigint */
    snprintf(spec, sizeof spec, "%s:add_one_udf", lib);
    svc_handler *h = open_ok(spec, "k=v\n", -1);
    assert_string_equal(svc_handler_spec(h), spec);
    ros_error_clear(&err);
    assert_int_equal(svc_handler_warmup(h, &err), 0);
    ros_batch b;
    const ros_type i64 = ROS_TYPE_INT64;
    batch_init(&b, 1, &i64);
    assert_int_equal(ros_vector_append_i64(&b.cols[0], 41), 0);
    assert_int_equal(ros_vector_append_null(&b.cols[0]), 0);
    assert_int_equal(ros_vector_append_i64(&b.cols[0], -7), 0);
    b.nrows = 3;
    ros_vector out;
    call_ok(h, &b, &out);
    assert_int_equal(out.type, ROS_TYPE_INT64);
    assert_int_equal(ROS_VEC_I64(&out)[0], 42);
    assert_true(ros_vector_is_null(&out, 1));
    assert_int_equal(ROS_VEC_I64(&out)[2], -6);
    ros_vector_free(&out);
    /* the function's own error: ros_udf cannot name a row */
    ROS_VEC_I64(&b.cols[0])[0] = INT64_MAX;
    assert_call_fails(h, &b, err, ROS_ERR_EXTERNAL, -1);
    assert_string_equal(err.message, "function add_one failed: bigint out of range");
    batch_free(&b);
    /* wrong argument types */
    const char *texts[] = {"x"};
    text_batch(&b, texts, 1);
    assert_call_fails(h, &b, err, ROS_ERR_DATATYPE_MISMATCH, -1);
    char want[PATH_MAX + 128];
    snprintf(want, sizeof want, "handler \"%s\" takes (bigint), received (text)", spec);
    assert_string_equal(err.message, want);
    batch_free(&b);
    batch_init(&b, 0, NULL);
    b.nrows = 1;
    assert_call_fails(h, &b, err, ROS_ERR_DATATYPE_MISMATCH, -1);
    batch_free(&b);
    svc_handler_close(h);

    /* fail_on_negative */
    snprintf(spec, sizeof spec, "%s:fail_on_negative_udf", lib);
    h = open_ok(spec, NULL, -1);
    batch_init(&b, 1, &i64);
    assert_int_equal(ros_vector_append_i64(&b.cols[0], 3), 0);
    assert_int_equal(ros_vector_append_i64(&b.cols[0], -2), 0);
    b.nrows = 2;
    assert_call_fails(h, &b, err, ROS_ERR_EXTERNAL, -1);
    assert_string_equal(err.message, "function fail_on_negative failed: negative input -2");
    batch_free(&b);
    svc_handler_close(h);

    /* score: init loads the model, fini frees it (ASan checks) */
    snprintf(spec, sizeof spec, "%s:score_udf", lib);
    h = open_ok(spec, NULL, -1);
    ros_error_clear(&err);
    assert_int_equal(svc_handler_warmup(h, &err), 0);
    const char *words[] = {"\x01", NULL, ""};
    text_batch(&b, words, 3);
    call_ok(h, &b, &out);
    assert_int_equal(out.type, ROS_TYPE_FLOAT64);
    assert_float_equal(ROS_VEC_F64(&out)[0], sin(1.0) * 0.5 + 0.5, 1e-12);
    assert_true(ros_vector_is_null(&out, 1));
    assert_float_equal(ROS_VEC_F64(&out)[2], 0.0, 0.0);
    ros_vector_free(&out);
    batch_free(&b);
    svc_handler_close(h);

    /* a device is handed to a library as is */
    snprintf(spec, sizeof spec, "%s:add_one_udf", lib);
    h = open_ok(spec, NULL, 0);
    svc_handler_set_host(h, NULL, NULL);
    svc_handler_close(h);

    /* errors of opening */
    snprintf(spec, sizeof spec, "%s:no_such_udf", lib);
    assert_open_fails(spec, NULL, -1, err, ROS_ERR_UNDEFINED_FUNCTION);
    snprintf(want, sizeof want, "could not find function \"no_such_udf\" in file \"%s\"", lib);
    assert_string_equal(err.message, want);
    assert_open_fails("/nonexistent/librosql_nothing.so:add_one_udf", NULL, -1, err, ROS_ERR_UNDEFINED_FILE);
    assert_non_null(strstr(err.message, "could not load library \"/nonexistent/librosql_nothing.so\": "));
    assert_open_fails("librosql_nothing.so:x", NULL, -1, err, ROS_ERR_UNDEFINED_FILE);
    assert_open_fails("no-colon", NULL, -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails("lib.so:", NULL, -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails(":sym", NULL, -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails("", NULL, -1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails(NULL, NULL, -1, err, ROS_ERR_INVALID_PARAMETER);
    snprintf(spec, sizeof spec, "%s:add_one_udf", lib);
    assert_open_fails(spec, NULL, -2, err, ROS_ERR_INVALID_PARAMETER);
}

/* A symbol that is not a ros_udf: libc's stdout FILE (its first word, the
 * FILE's flags, is no ABI version). */
static void test_not_a_udf(void **state)
{
    (void)state;
    Dl_info info;
    if (!dladdr((void *)&fclose, &info) || !info.dli_fname || !strchr(info.dli_fname, '/')) {
        printf("skipped: libc's path is not known\n");
        skip();
    }
    char spec[PATH_MAX + 32];
    snprintf(spec, sizeof spec, "%s:_IO_2_1_stdout_", info.dli_fname);
    ros_error err;
    assert_open_fails(spec, NULL, -1, err, ROS_ERR_UNDEFINED_FUNCTION);
    assert_non_null(strstr(err.message, "is not a valid ros_udf"));
    assert_non_null(strstr(err.detail, "interface version"));
}

/* ---------------------------------------------------------------- */
/* Opening */

static void test_open_errors(void **state)
{
    (void)state;
    ros_error err;
    assert_open_fails("builtin:nope", NULL, -1, err, ROS_ERR_UNDEFINED_FUNCTION);
    assert_string_equal(err.message, "unknown built-in handler \"nope\"");
    assert_open_fails("builtin:", NULL, -1, err, ROS_ERR_UNDEFINED_FUNCTION);
    /* echo and delay never have a GPU path */
    assert_open_fails("builtin:echo", NULL, 0, err, ROS_ERR_INVALID_PARAMETER);
    assert_string_equal(err.message, "device 0 is not available: builtin:echo has no GPU path in this build");
    assert_open_fails("builtin:delay", NULL, 1, err, ROS_ERR_INVALID_PARAMETER);
    assert_open_fails("builtin:embed", NULL, -5, err, ROS_ERR_INVALID_PARAMETER);
    /* embed has one, given a device */
    int n = svc_gpu_count();
    assert_true(n >= 0);
    if (n == 0) {
        assert_open_fails("builtin:embed", NULL, 0, err, ROS_ERR_INVALID_PARAMETER);
        assert_non_null(strstr(err.message, "device 0 is not available"));
        assert_open_fails("builtin:cosine", NULL, 0, err, ROS_ERR_INVALID_PARAMETER);
    } else {
        assert_open_fails("builtin:embed", NULL, n, err, ROS_ERR_INVALID_PARAMETER);
        char want[64];
        snprintf(want, sizeof want, "device %d is not available", n);
        assert_non_null(strstr(err.message, want));
    }
    assert_int_equal(svc_gpu_count(), n); /* cached, stable */
}

/* Every built-in opens, warms up and closes with default options. */
static void test_builtins_warm_up(void **state)
{
    (void)state;
    const char *specs[] = {"builtin:echo", "builtin:delay", "builtin:embed", "builtin:cosine"};
    for (size_t i = 0; i < 4; i++) {
        svc_handler *h = open_ok(specs[i], NULL, -1);
        ros_error err;
        ros_error_clear(&err);
        if (svc_handler_warmup(h, &err) != 0)
            fail_msg("%s: %s", specs[i], err.message);
        svc_handler_close(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_every_type),
        cmocka_unit_test(test_echo_edges),
        cmocka_unit_test(test_delay),
        cmocka_unit_test(test_embed_model),
        cmocka_unit_test(test_embed_errors),
        cmocka_unit_test(test_embed_gpu_agrees),
        cmocka_unit_test(test_cosine_pairs),
        cmocka_unit_test(test_cosine_reference),
        cmocka_unit_test(test_cosine_gpu_agrees),
        cmocka_unit_test(test_user_library),
        cmocka_unit_test(test_not_a_udf),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_builtins_warm_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
