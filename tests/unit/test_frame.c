/*
 * test_frame.c
 *    Unit tests of the service wire frame (service/frame.h): round trips of
 *    every column type and header field, the documented byte offsets, exact
 *    size prediction, splitting under a limit and reassembly, oversized
 *    frames, fault loops (every truncation, random mutations, random
 *    garbage) in which decoding must fail cleanly or give a sound batch,
 *    and the content digest (svc_hash64, svc_frame_digest) and advisory
 *    REUSED flag; the doorbell lane's rings and bell (service/lane.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rosql/vector.h>

#include "runtime/core/error.h"
#include "service/frame.h"
#include "service/lane.h"

#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

/* Checks an exact SQLSTATE on err after a call that must fail. */
#define assert_fails_with(call, err, sqlstate)                                                         \
    do {                                                                                           \
        ros_error_clear(&(err));                                                                   \
        assert_int_equal((call), -1);                                                              \
        assert_true((err).set);                                                                    \
        assert_string_equal((err).code, (sqlstate));                                               \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: deterministic, so a failing iteration can be replayed. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static uint32_t rnd_below(uint32_t n)
{
    return n ? (uint32_t)(rnd() % n) : 0;
}

/* ---------------------------------------------------------------- */
/* Batches to send */

/*
 * A batch with one column of every type, NULLs every 5th row (shifted per
 * column), empty strings, real[] rows of 0..5 floats and one column without
 * a validity bitmap.
 */
static void make_batch(ros_batch *b, uint32_t nrows)
{
    static const ros_type types[] = {ROS_TYPE_NULL,    ROS_TYPE_BOOL,  ROS_TYPE_INT16,
                                     ROS_TYPE_INT32,   ROS_TYPE_INT64, ROS_TYPE_FLOAT32,
                                     ROS_TYPE_FLOAT64, ROS_TYPE_TEXT,  ROS_TYPE_BYTEA,
                                     ROS_TYPE_FLOAT32_ARRAY, ROS_TYPE_INT64};
    uint32_t ncols = sizeof types / sizeof types[0];
    b->ncols = ncols;
    b->nrows = nrows;
    b->cols = calloc(ncols, sizeof *b->cols);
    assert_non_null(b->cols);
    for (uint32_t c = 0; c < ncols; c++) {
        ros_vector *v = &b->cols[c];
        ros_vector_init(v, types[c]);
        bool no_nulls = c == ncols - 1;
        for (uint32_t i = 0; i < nrows; i++) {
            int rc;
            if (types[c] == ROS_TYPE_NULL || (!no_nulls && (i + c) % 5 == 0)) {
                rc = ros_vector_append_null(v);
            } else {
                switch (types[c]) {
                case ROS_TYPE_BOOL: rc = ros_vector_append_bool(v, i % 3 == 0); break;
                case ROS_TYPE_INT16: rc = ros_vector_append_i16(v, (int16_t)(i * 7 - 300)); break;
                case ROS_TYPE_INT32: rc = ros_vector_append_i32(v, (int32_t)(i * 100003u)); break;
                case ROS_TYPE_INT64: rc = ros_vector_append_i64(v, (int64_t)i * -1234567891011ll); break;
                case ROS_TYPE_FLOAT32: rc = ros_vector_append_f32(v, (float)i / 3.0f); break;
                case ROS_TYPE_FLOAT64: rc = ros_vector_append_f64(v, (double)i * 1e-3); break;
                case ROS_TYPE_TEXT: {
                    char s[32];
                    if (i % 4 == 1)
                        s[0] = '\0'; /* empty string, not NULL */
                    else
                        snprintf(s, sizeof s, "row-%u-\xc3\xa9", i);
                    rc = ros_vector_append_text(v, s);
                    break;
                }
                case ROS_TYPE_BYTEA: {
                    uint8_t bytes[3] = {(uint8_t)i, 0, (uint8_t)(i >> 8)};
                    rc = ros_vector_append_bytes(v, bytes, i % 4);
                    break;
                }
                case ROS_TYPE_FLOAT32_ARRAY: {
                    float f[5];
                    uint32_t k = i % 6;
                    for (uint32_t j = 0; j < k && j < 5; j++)
                        f[j] = (float)(i + j) * 0.5f;
                    rc = ros_vector_append_bytes(v, f, (k < 5 ? k : 5) * (uint32_t)sizeof(float));
                    break;
                }
                default: rc = -1;
                }
            }
            assert_int_equal(rc, 0);
        }
        if (no_nulls && v->validity) {
            free(v->validity); /* a column that never had a NULL has no bitmap */
            v->validity = NULL;
        }
    }
}

/* Compares rows [start, start + b->nrows) of a with all rows of b. */
static void assert_rows_equal(const ros_batch *a, uint32_t start, const ros_batch *b)
{
    assert_int_equal(a->ncols, b->ncols);
    assert_true(start + b->nrows <= a->nrows);
    for (uint32_t c = 0; c < a->ncols; c++) {
        const ros_vector *x = &a->cols[c], *y = &b->cols[c];
        assert_int_equal(x->type, y->type);
        assert_true(y->len >= b->nrows);
        for (uint32_t i = 0; i < b->nrows; i++) {
            uint32_t r = start + i;
            bool xn = x->type == ROS_TYPE_NULL || ros_vector_is_null(x, r);
            bool yn = y->type == ROS_TYPE_NULL || ros_vector_is_null(y, i);
            assert_int_equal(xn, yn);
            if (xn)
                continue;
            if (ros_type_is_varlen(x->type)) {
                uint32_t xl, yl;
                const uint8_t *xp = ros_vector_bytes(x, r, &xl);
                const uint8_t *yp = ros_vector_bytes(y, i, &yl);
                assert_int_equal(xl, yl);
                if (xl)
                    assert_memory_equal(xp, yp, xl);
            } else {
                size_t w = ros_type_width(x->type);
                assert_memory_equal((const uint8_t *)x->values + r * w,
                                    (const uint8_t *)y->values + i * w, w);
            }
        }
    }
}

static void free_batch(ros_batch *b)
{
    svc_batch_free(b);
}

/* Reads every byte a decoded batch claims to hold (ASan checks the reach)
 * and checks the invariants the decoder promises. */
static void touch_batch(const ros_batch *b)
{
    volatile uint32_t sink = 0;
    for (uint32_t c = 0; c < b->ncols; c++) {
        const ros_vector *v = &b->cols[c];
        assert_true(v->len == b->nrows);
        assert_true((unsigned)v->type < ROS_TYPE_COUNT);
        for (uint32_t i = 0; i < b->nrows; i++) {
            sink += ros_vector_is_null(v, i);
            if (ros_type_is_varlen(v->type)) {
                assert_true(v->offsets[i] <= v->offsets[i + 1]);
                assert_true(v->offsets[i + 1] <= v->data_len);
                uint32_t n;
                const uint8_t *p = ros_vector_bytes(v, i, &n);
                for (uint32_t k = 0; k < n; k++)
                    sink += p[k];
            } else if (v->type == ROS_TYPE_BOOL) {
                assert_true(ROS_VEC_BOOL(v)[i] <= 1);
            } else if (ros_type_width(v->type)) {
                size_t w = ros_type_width(v->type);
                sink += ((const uint8_t *)v->values)[i * w + w - 1];
            }
        }
    }
    (void)sink;
}

/* Encodes a header + batch frame, asserting success and the size prediction. */
static uint8_t *encode_ok(const svc_frame_header *h, const ros_batch *b, size_t *len)
{
    ros_error err;
    ros_error_clear(&err);
    uint8_t *buf = NULL;
    int rc = svc_frame_encode(h, b, 0, &buf, len, &err);
    if (rc != 0)
        fail_msg("encode failed: %s %s", err.code, err.message);
    assert_int_equal(*len, svc_frame_size(h, b));
    if (b)
        assert_int_equal(*len - SVC_FRAME_HEADER_SIZE - ((h->method_len + 7) & ~7u),
                         svc_frame_batch_size(b));
    assert_int_equal((uintptr_t)buf % 8, 0);
    return buf;
}

static void request_header(svc_frame_header *h)
{
    svc_request_id id = {.job = 42, .op = 7, .seq = 123456789};
    svc_frame_header_init(h, SVC_KIND_REQUEST, &id);
}

/* ---------------------------------------------------------------- */
/* Round trips */

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {0, 1, 2, 7, 8, 9, 63, 64, 65, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        ros_batch b;
        make_batch(&b, sizes[k]);
        svc_frame_header h;
        request_header(&h);
        size_t len;
        uint8_t *buf = encode_ok(&h, &b, &len);
        svc_frame f;
        ros_error err;
        ros_error_clear(&err);
        assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
        assert_false(f.borrowed);
        assert_int_equal(f.h.kind, SVC_KIND_REQUEST);
        assert_int_equal(f.batch.nrows, sizes[k]);
        assert_rows_equal(&b, 0, &f.batch);
        touch_batch(&f.batch);
        /* The decoded batch owns its buffers and can grow like any other. */
        if (sizes[k]) {
            assert_int_equal(ros_vector_append_text(&f.batch.cols[7], "more"), 0);
            assert_int_equal(ros_vector_append_null(&f.batch.cols[10]), 0);
        }
        svc_frame_clear(&f);

        /* Zero-copy view: the float column points into the frame, aligned. */
        assert_int_equal(svc_frame_decode_view(buf, len, 0, &f, &err), 0);
        assert_true(f.borrowed);
        assert_rows_equal(&b, 0, &f.batch);
        if (sizes[k]) {
            const uint8_t *fv = f.batch.cols[5].values;
            assert_true(fv > buf && fv < buf + len);
            assert_int_equal((uintptr_t)fv % 8, 0);
            assert_int_equal((uintptr_t)f.batch.cols[9].data % 8, 0);
        }
        svc_frame_clear(&f);

        /* Unaligned receive buffer: the view falls back to a copy. */
        uint8_t *odd = malloc(len + 1);
        assert_non_null(odd);
        memcpy(odd + 1, buf, len);
        assert_int_equal(svc_frame_decode_view(odd + 1, len, 0, &f, &err), 0);
        assert_false(f.borrowed);
        assert_rows_equal(&b, 0, &f.batch);
        svc_frame_clear(&f);
        free(odd);
        free(buf);
        free_batch(&b);
    }
}

static void test_zero_columns(void **state)
{
    (void)state;
    for (uint32_t nrows = 0; nrows < 3; nrows++) {
        ros_batch b = {.ncols = 0, .nrows = nrows * 5, .cols = NULL};
        svc_frame_header h;
        request_header(&h);
        size_t len;
        uint8_t *buf = encode_ok(&h, &b, &len);
        assert_int_equal(len, SVC_FRAME_HEADER_SIZE + 8);
        svc_frame f;
        ros_error err;
        ros_error_clear(&err);
        assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
        assert_int_equal(f.batch.ncols, 0);
        assert_int_equal(f.batch.nrows, nrows * 5);
        svc_frame_clear(&f);
        free(buf);
    }
}

static void test_header_fields_and_offsets(void **state)
{
    (void)state;
    svc_request_id id = {.job = 0x0102030405060708ull, .op = 0x11223344u, .seq = 0xa1a2a3a4a5a6a7a8ull};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_RESPONSE, &id);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_set_method(&h, "embed:dim=384", 13, &err), 0);
    h.attempt = 3;
    svc_frame_set_part(&h, 1, 3);
    h.flags |= SVC_FLAG_ORDERED | SVC_FLAG_VOLATILE | (1u << 20); /* advisory bit travels */
    h.deadline_ms = 1700000000123ull;
    ros_batch b;
    make_batch(&b, 3);
    size_t len;
    uint8_t *buf = encode_ok(&h, &b, &len);

    /* The table in service/README.md. */
    assert_memory_equal(buf, "ROSF", 4);
    assert_int_equal(buf[4], 1);
    assert_int_equal(buf[5], 0);
    assert_int_equal(buf[6], SVC_KIND_RESPONSE);
    assert_int_equal(buf[8], SVC_FLAG_ORDERED | SVC_FLAG_VOLATILE); /* LAST_PART not set: part 1 of 3 */
    assert_int_equal(buf[10], 0x10);
    assert_int_equal(buf[12], 13);
    assert_int_equal(buf[16], 0x08);
    assert_int_equal(buf[23], 0x01);
    assert_int_equal(buf[24], 0xa8);
    assert_int_equal(buf[31], 0xa1);
    assert_int_equal(buf[32], 0x44);
    assert_int_equal(buf[35], 0x11);
    assert_int_equal(buf[36], 3);
    assert_int_equal(buf[40], 1);
    assert_int_equal(buf[44], 3);
    uint64_t dl;
    memcpy(&dl, buf + 48, 8);
    assert_int_equal(dl, 1700000000123ull);
    uint64_t pl;
    memcpy(&pl, buf + 56, 8);
    assert_int_equal(pl, svc_frame_batch_size(&b));
    assert_memory_equal(buf + 64, "embed:dim=384\0\0\0", 16); /* padded to 8 */
    uint32_t ncols, nrows;
    memcpy(&ncols, buf + 80, 4);
    memcpy(&nrows, buf + 84, 4);
    assert_int_equal(ncols, b.ncols);
    assert_int_equal(nrows, 3);
    /* First column descriptor: NULL type, validity flag. */
    assert_int_equal(buf[88], ROS_TYPE_NULL);
    assert_int_equal(buf[90], 1);

    svc_frame f;
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_int_equal(f.h.version, 1);
    assert_int_equal(f.h.kind, SVC_KIND_RESPONSE);
    assert_int_equal(f.h.flags, h.flags);
    assert_int_equal(f.h.id.job, id.job);
    assert_int_equal(f.h.id.op, id.op);
    assert_int_equal(f.h.id.seq, id.seq);
    assert_int_equal(f.h.attempt, 3);
    assert_int_equal(f.h.part_index, 1);
    assert_int_equal(f.h.part_count, 3);
    assert_int_equal(f.h.deadline_ms, 1700000000123ull);
    assert_int_equal(f.h.method_len, 13);
    assert_string_equal(f.h.method, "embed:dim=384");
    assert_int_equal(f.h.payload_len, pl);

    /* Replies keep the question's name. */
    svc_frame_header r;
    svc_frame_reply_header(&r, &f.h, SVC_KIND_ERROR);
    assert_int_equal(r.id.job, id.job);
    assert_int_equal(r.id.op, id.op);
    assert_int_equal(r.id.seq, id.seq);
    assert_int_equal(r.part_index, 1);
    assert_int_equal(r.attempt, 3);
    assert_int_equal(r.method_len, 0);
    svc_frame_clear(&f);
    free(buf);
    free_batch(&b);

    /* Method limits. */
    char big[SVC_FRAME_METHOD_MAX + 2];
    memset(big, 'm', sizeof big);
    assert_fails_with(svc_frame_set_method(&h, big, SVC_FRAME_METHOD_MAX + 1, &err), err,
                      ROS_ERR_INVALID_PARAMETER);
    assert_fails_with(svc_frame_set_method(&h, "a\0b", 3, &err), err, ROS_ERR_INVALID_PARAMETER);
    assert_string_equal(h.method, "embed:dim=384"); /* unchanged */
    ros_error_clear(&err);
    assert_int_equal(svc_frame_set_method(&h, big, SVC_FRAME_METHOD_MAX, &err), 0);
    svc_frame_set_part(&h, 0, 1);
    ros_batch e = {0};
    buf = encode_ok(&h, &e, &len);
    assert_int_equal(len, SVC_FRAME_HEADER_SIZE + SVC_FRAME_METHOD_MAX + 8);
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_int_equal(f.h.method_len, SVC_FRAME_METHOD_MAX);
    assert_int_equal(strlen(f.h.method), SVC_FRAME_METHOD_MAX);
    svc_frame_clear(&f);
    free(buf);
}

static void test_error_and_status_frames(void **state)
{
    (void)state;
    svc_frame_header req, h;
    request_header(&req);
    svc_frame_reply_header(&h, &req, SVC_KIND_ERROR);
    ros_error remote, err;
    ros_error_clear(&remote);
    ros_error_clear(&err);
    ros_error_set(&remote, ROS_ERR_DIVISION_BY_ZERO, "division by zero");
    ros_error_detail(&remote, "Row 17 had b = 0.");
    ros_error_hint(&remote, "Filter zeros first.");
    uint8_t *buf;
    size_t len;
    assert_int_equal(svc_frame_encode_error(&h, &remote, 17, 0, &buf, &len, &err), 0);
    svc_frame f;
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_int_equal(f.h.kind, SVC_KIND_ERROR);
    assert_int_equal(f.h.id.seq, req.id.seq);
    assert_true(f.remote.set);
    assert_string_equal(f.remote.code, "22012");
    assert_string_equal(f.remote.message, "division by zero");
    assert_string_equal(f.remote.detail, "Row 17 had b = 0.");
    assert_string_equal(f.remote.hint, "Filter zeros first.");
    assert_int_equal(f.error_row, 17);
    svc_frame_clear(&f);
    free(buf);

    /* No row; an unset error; a message at the maximum length. */
    ros_error_clear(&remote);
    assert_int_equal(svc_frame_encode_error(&h, &remote, SVC_FRAME_ROW_NONE, 0, &buf, &len, &err), 0);
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_string_equal(f.remote.code, "XX000");
    assert_string_equal(f.remote.message, "unknown error");
    assert_int_equal(f.error_row, SVC_FRAME_ROW_NONE);
    svc_frame_clear(&f);
    free(buf);
    char msg[600];
    memset(msg, 'x', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    ros_error_set(&remote, ROS_ERR_EXTERNAL, "%s", msg);
    assert_int_equal(svc_frame_encode_error(&h, &remote, 0, 0, &buf, &len, &err), 0);
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_int_equal(strlen(f.remote.message), SVC_FRAME_TEXT_MAX);
    assert_int_equal(f.error_row, 0);
    svc_frame_clear(&f);
    free(buf);
    assert_fails_with(svc_frame_encode_error(&h, &remote, -2, 0, &buf, &len, &err), err,
                      ROS_ERR_INVALID_PARAMETER);
    assert_null(buf);
    assert_fails_with(svc_frame_encode_error(&req, &remote, 0, 0, &buf, &len, &err), err,
                      ROS_ERR_INVALID_PARAMETER);

    /* BUSY and PONG carry a status; PING and CANCEL nothing. */
    svc_status st = {.state = SVC_STATE_READY, .queue_depth = 64, .queue_capacity = 64, .retry_after_ms = 25};
    svc_frame_reply_header(&h, &req, SVC_KIND_BUSY);
    assert_int_equal(svc_frame_encode_status(&h, &st, 0, &buf, &len, &err), 0);
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_int_equal(f.h.kind, SVC_KIND_BUSY);
    assert_int_equal(f.status.queue_depth, 64);
    assert_int_equal(f.status.queue_capacity, 64);
    assert_int_equal(f.status.retry_after_ms, 25);
    assert_int_equal(f.status.state, SVC_STATE_READY);
    svc_frame_clear(&f);
    free(buf);
    svc_frame_header_init(&h, SVC_KIND_PONG, NULL);
    st.state = SVC_STATE_DRAINING;
    assert_int_equal(svc_frame_encode_status(&h, &st, 0, &buf, &len, &err), 0);
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_int_equal(f.status.state, SVC_STATE_DRAINING);
    svc_frame_clear(&f);
    free(buf);
    st.state = 99;
    assert_fails_with(svc_frame_encode_status(&h, &st, 0, &buf, &len, &err), err,
                      ROS_ERR_INVALID_PARAMETER);

    static const svc_frame_kind empty[] = {SVC_KIND_PING, SVC_KIND_CANCEL};
    for (int i = 0; i < 2; i++) {
        svc_frame_header_init(&h, empty[i], &req.id);
        h.attempt = 2;
        buf = encode_ok(&h, NULL, &len);
        assert_int_equal(len, SVC_FRAME_HEADER_SIZE);
        assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
        assert_int_equal(f.h.kind, empty[i]);
        assert_int_equal(f.h.attempt, 2);
        assert_int_equal(f.batch.ncols, 0);
        svc_frame_clear(&f);
        free(buf);
    }
}

/* The SHM envelope: its header copies the request's id, attempt and part,
 * its reference survives a round trip, and references that leave the
 * segment, overlap or are unaligned do not decode. */
static void test_shm_envelope(void **state)
{
    (void)state;
    svc_request_id id = {7, 3, 99};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_REQUEST, &id);
    h.attempt = 4;
    svc_frame_set_part(&h, 1, 3);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_set_method(&h, "m", 1, &err), 0);
    svc_shm_ref ref = {12, 0xabcdef, 1 << 20, 64, 4096, 8192, 65536};
    uint8_t buf[SVC_FRAME_SHM_SIZE];
    svc_frame_write_shm(&h, &ref, buf);
    svc_frame f;
    assert_int_equal(svc_frame_decode(buf, sizeof buf, 0, &f, &err), 0);
    assert_int_equal(f.h.kind, SVC_KIND_SHM);
    assert_int_equal(f.h.id.job, 7);
    assert_int_equal(f.h.id.op, 3);
    assert_int_equal(f.h.id.seq, 99);
    assert_int_equal(f.h.attempt, 4);
    assert_int_equal(f.h.part_index, 1);
    assert_int_equal(f.h.method_len, 0);
    assert_memory_equal(&f.shm, &ref, sizeof ref);
    svc_frame_clear(&f);
    assert_string_equal(svc_frame_kind_name(SVC_KIND_SHM), "shm");

    const svc_shm_ref bad[] = {
        {12, 1, 1 << 20, 64, (1 << 20), 0, 0},    /* frame past the end */
        {12, 1, 1 << 20, 64, 32, 8192, 0},        /* shorter than a header */
        {12, 1, 1 << 20, 60, 4096, 8192, 64},     /* unaligned */
        {12, 1, 1 << 20, 64, 4096, 4096, 64},     /* area overlaps the frame */
        {12, 1, 1 << 20, 64, 4096, 8192, 1 << 20}, /* area past the end */
        {12, 1, 100, UINT64_MAX - 7, 64, 0, 0},   /* offset wraps */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        svc_frame_write_shm(&h, &bad[i], buf);
        ros_error_clear(&err);
        assert_int_equal(svc_frame_decode(buf, sizeof buf, 0, &f, &err), -1);
        assert_string_equal(err.code, SVC_ERR_PROTOCOL_VIOLATION);
        assert_int_equal(f.h.id.seq, 99); /* the header was valid: answerable by id */
    }
    svc_frame_write_shm(&h, &ref, buf);
    buf[SVC_FRAME_HEADER_SIZE + 4] = 1; /* reserved */
    assert_int_equal(svc_frame_decode(buf, sizeof buf, 0, &f, &err), -1);
    assert_int_equal(svc_frame_decode(buf, sizeof buf - 8, 0, &f, &err), -1); /* truncated */
}

static void test_encode_rejects(void **state)
{
    (void)state;
    ros_batch b;
    make_batch(&b, 4);
    svc_frame_header h;
    request_header(&h);
    ros_error err;
    uint8_t *buf = (uint8_t *)&h;
    size_t len = 1;

    h.flags = 0; /* single part without LAST_PART */
    assert_fails_with(svc_frame_encode(&h, &b, 0, &buf, &len, &err), err, ROS_ERR_INVALID_PARAMETER);
    assert_null(buf);
    assert_int_equal(len, 0);
    request_header(&h);
    h.flags |= 1u << 9; /* unknown required flag */
    assert_fails_with(svc_frame_encode(&h, &b, 0, &buf, &len, &err), err, ROS_ERR_INVALID_PARAMETER);
    request_header(&h);
    h.part_index = 1; /* part 1 of 1 */
    assert_fails_with(svc_frame_encode(&h, &b, 0, &buf, &len, &err), err, ROS_ERR_INVALID_PARAMETER);
    request_header(&h);
    h.kind = SVC_KIND_NONE;
    assert_fails_with(svc_frame_encode(&h, &b, 0, &buf, &len, &err), err, ROS_ERR_INVALID_PARAMETER);
    h.kind = SVC_KIND_ERROR;
    assert_fails_with(svc_frame_encode(&h, &b, 0, &buf, &len, &err), err, ROS_ERR_INVALID_PARAMETER);
    h.kind = SVC_KIND_REQUEST;
    assert_fails_with(svc_frame_encode(&h, NULL, 0, &buf, &len, &err), err, ROS_ERR_INVALID_PARAMETER);
    h.kind = SVC_KIND_PING;
    assert_fails_with(svc_frame_encode(&h, &b, 0, &buf, &len, &err), err, ROS_ERR_INVALID_PARAMETER);
    h.kind = SVC_KIND_REQUEST;
    assert_fails_with(svc_frame_encode_rows(&h, &b, 3, 5, 0, &buf, &len, &err), err,
                      ROS_ERR_INVALID_PARAMETER);

    /* Batches that cannot be sent are internal errors, not frames. */
    b.cols[2].type = (ros_type)77;
    assert_fails_with(svc_frame_encode(&h, &b, 0, &buf, &len, &err), err, ROS_ERR_INTERNAL);
    assert_int_equal(svc_frame_batch_size(&b), SIZE_MAX);
    b.cols[2].type = ROS_TYPE_INT16;
    b.cols[3].len = 2;
    assert_fails_with(svc_frame_encode(&h, &b, 0, &buf, &len, &err), err, ROS_ERR_INTERNAL);
    b.cols[3].len = 4;

    /* write_rows wants the exact size. */
    uint8_t small[8];
    assert_fails_with(svc_frame_write_rows(&h, &b, 0, 4, 0, small, sizeof small, &err), err,
                      ROS_ERR_INTERNAL);
    free_batch(&b);
}

/* ---------------------------------------------------------------- */
/* Limits, splitting, reassembly */

static void test_oversized(void **state)
{
    (void)state;
    ros_batch b;
    make_batch(&b, 200);
    svc_frame_header h;
    request_header(&h);
    size_t need = svc_frame_size(&h, &b);
    ros_error err;
    uint8_t *buf;
    size_t len;
    assert_fails_with(svc_frame_encode(&h, &b, need - 1, &buf, &len, &err), err,
                      SVC_ERR_PROGRAM_LIMIT);
    char expect[128];
    snprintf(expect, sizeof expect, "frame of %zu bytes exceeds the limit of %zu bytes", need,
             need - 1);
    assert_string_equal(err.message, expect);
    assert_null(buf);
    ros_error_clear(&err);
    assert_int_equal(svc_frame_encode(&h, &b, need, &buf, &len, &err), 0);
    assert_int_equal(len, need);

    /* The receiver's limit is smaller: an error under the request's id. */
    svc_frame f;
    assert_fails_with(svc_frame_decode(buf, len, need - 8, &f, &err), err, SVC_ERR_PROGRAM_LIMIT);
    snprintf(expect, sizeof expect, "frame of %zu bytes exceeds the limit of %zu bytes", need,
             need - 8);
    assert_string_equal(err.message, expect);
    assert_int_equal(f.h.kind, SVC_KIND_REQUEST);
    assert_int_equal(f.h.id.seq, h.id.seq);
    assert_int_equal(f.batch.ncols, 0);
    /* A header announcing more than the limit, on a short buffer. */
    uint64_t huge = UINT64_MAX - 8;
    memcpy(buf + 56, &huge, 8);
    assert_fails_with(svc_frame_decode(buf, 64, 0, &f, &err), err, SVC_ERR_PROTOCOL_VIOLATION);
    huge = 1ull << 40;
    memcpy(buf + 56, &huge, 8);
    assert_fails_with(svc_frame_decode(buf, len, 0, &f, &err), err, SVC_ERR_PROGRAM_LIMIT);
    free(buf);
    free_batch(&b);
}

static void test_split_and_reassemble(void **state)
{
    (void)state;
    static const size_t limits[] = {1024, 3000, 4096, 65536, 1 << 20};
    ros_batch b;
    make_batch(&b, 2000);
    svc_frame_header h;
    request_header(&h);
    ros_error err;
    assert_int_equal(svc_frame_set_method(&h, "embed", 5, &err), 0);
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        svc_row_range *parts;
        uint32_t nparts;
        ros_error_clear(&err);
        assert_int_equal(svc_frame_split(&h, &b, limits[k], &parts, &nparts, &err), 0);
        assert_true(nparts >= 1);
        ros_batch whole = {0};
        uint32_t next = 0;
        for (uint32_t p = 0; p < nparts; p++) {
            assert_int_equal(parts[p].start, next);
            assert_true(parts[p].end > parts[p].start);
            next = parts[p].end;
            svc_frame_header ph = h;
            svc_frame_set_part(&ph, p, nparts);
            uint8_t *buf;
            size_t len;
            assert_int_equal(svc_frame_encode_rows(&ph, &b, parts[p].start, parts[p].end,
                                                   limits[k], &buf, &len, &err), 0);
            assert_true(len <= limits[k]);
            assert_int_equal(len - 72, svc_frame_rows_size(&b, parts[p].start, parts[p].end));
            /* Greedy: one more row would not have fitted. */
            if (p + 1 < nparts)
                assert_true(72 + svc_frame_rows_size(&b, parts[p].start, parts[p].end + 1) >
                            limits[k]);
            svc_frame f;
            assert_int_equal(svc_frame_decode(buf, len, limits[k], &f, &err), 0);
            assert_int_equal(f.h.part_index, p);
            assert_int_equal(f.h.part_count, nparts);
            assert_int_equal((f.h.flags & SVC_FLAG_LAST_PART) != 0, p + 1 == nparts);
            assert_rows_equal(&b, parts[p].start, &f.batch);
            assert_int_equal(svc_batch_append(&whole, &f.batch, &err), 0);
            svc_frame_clear(&f);
            free(buf);
        }
        assert_int_equal(next, b.nrows);
        assert_int_equal(whole.nrows, b.nrows);
        assert_rows_equal(&b, 0, &whole);
        touch_batch(&whole);
        svc_batch_free(&whole);
        free(parts);
    }

    /* Zero rows: one empty part. */
    ros_batch e;
    make_batch(&e, 0);
    svc_row_range *parts;
    uint32_t nparts;
    assert_int_equal(svc_frame_split(&h, &e, 1024, &parts, &nparts, &err), 0);
    assert_int_equal(nparts, 1);
    assert_int_equal(parts[0].start, 0);
    assert_int_equal(parts[0].end, 0);
    free(parts);
    free_batch(&e);

    /* A limit below the empty frame, and a single row too large. */
    assert_fails_with(svc_frame_split(&h, &b, 100, &parts, &nparts, &err), err,
                      SVC_ERR_PROGRAM_LIMIT);
    assert_null(parts);
    ros_batch big = {.ncols = 1, .nrows = 3, .cols = calloc(1, sizeof(ros_vector))};
    ros_vector_init(&big.cols[0], ROS_TYPE_BYTEA);
    static uint8_t blob[5000];
    assert_int_equal(ros_vector_append_bytes(&big.cols[0], blob, 10), 0);
    assert_int_equal(ros_vector_append_bytes(&big.cols[0], blob, sizeof blob), 0);
    assert_int_equal(ros_vector_append_bytes(&big.cols[0], blob, 10), 0);
    assert_fails_with(svc_frame_split(&h, &big, 4096, &parts, &nparts, &err), err,
                      SVC_ERR_PROGRAM_LIMIT);
    assert_non_null(strstr(err.message, "row 1 needs a frame of"));
    ros_error_clear(&err);
    assert_int_equal(svc_frame_split(&h, &big, 8192, &parts, &nparts, &err), 0);
    assert_int_equal(nparts, 1);
    free(parts);
    free_batch(&big);

    /* Append refuses a different shape and leaves the row count alone. */
    ros_batch x, y;
    make_batch(&x, 3);
    make_batch(&y, 2);
    y.cols[4].type = ROS_TYPE_INT32;
    assert_fails_with(svc_batch_append(&x, &y, &err), err, ROS_ERR_DATATYPE_MISMATCH);
    assert_int_equal(x.nrows, 3);
    y.cols[4].type = ROS_TYPE_INT64;
    y.ncols--;
    assert_fails_with(svc_batch_append(&x, &y, &err), err, ROS_ERR_DATATYPE_MISMATCH);
    y.ncols++;
    free_batch(&x);
    free_batch(&y);
    free_batch(&b);
}

/* svc_frame_split_rows: a range of a batch, cut the way svc_frame_split cuts
 * a batch of those rows alone. */
static void test_split_rows(void **state)
{
    (void)state;
    ros_batch b;
    make_batch(&b, 2000);
    svc_frame_header h;
    request_header(&h);
    ros_error err;
    ros_error_clear(&err);
    static const uint32_t ranges[][2] = {{0, 2000}, {0, 0}, {17, 17}, {5, 1999}, {1000, 2000}, {333, 334}};
    static const size_t limits[] = {1024, 4096, 1 << 20};
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        uint32_t first = ranges[r][0], last = ranges[r][1];
        /* the same rows as a batch of their own */
        ros_batch own = {0};
        svc_frame_header eh;
        request_header(&eh);
        uint8_t *buf;
        size_t len;
        assert_int_equal(svc_frame_encode_rows(&eh, &b, first, last, 0, &buf, &len, &err), 0);
        svc_frame f;
        assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
        assert_int_equal(svc_batch_append(&own, &f.batch, &err), 0);
        svc_frame_clear(&f);
        free(buf);
        for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
            svc_row_range *pr, *po;
            uint32_t npr, npo;
            assert_int_equal(svc_frame_split_rows(&h, &b, first, last, limits[k], &pr, &npr, &err), 0);
            assert_int_equal(svc_frame_split(&h, &own, limits[k], &po, &npo, &err), 0);
            /* rows of b, the same cuts as for the rows alone */
            assert_int_equal(npr, npo);
            for (uint32_t i = 0; i < npr; i++) {
                assert_int_equal(pr[i].start, po[i].start + first);
                assert_int_equal(pr[i].end, po[i].end + first);
            }
            assert_int_equal(pr[0].start, first);
            assert_int_equal(pr[npr - 1].end, last);
            free(pr);
            free(po);
        }
        svc_batch_free(&own);
    }
    /* ranges outside the batch */
    svc_row_range *parts;
    uint32_t nparts;
    assert_fails_with(svc_frame_split_rows(&h, &b, 10, 2001, 0, &parts, &nparts, &err), err,
                      ROS_ERR_INTERNAL);
    assert_null(parts);
    assert_fails_with(svc_frame_split_rows(&h, &b, 11, 10, 0, &parts, &nparts, &err), err,
                      ROS_ERR_INTERNAL);
    /* a row over the limit is named by its place in the range */
    ros_batch big = {.ncols = 1, .nrows = 4, .cols = calloc(1, sizeof(ros_vector))};
    ros_vector_init(&big.cols[0], ROS_TYPE_BYTEA);
    static uint8_t blob[5000];
    assert_int_equal(ros_vector_append_bytes(&big.cols[0], blob, 10), 0);
    assert_int_equal(ros_vector_append_bytes(&big.cols[0], blob, 10), 0);
    assert_int_equal(ros_vector_append_bytes(&big.cols[0], blob, sizeof blob), 0);
    assert_int_equal(ros_vector_append_bytes(&big.cols[0], blob, 10), 0);
    ros_error_clear(&err);
    assert_fails_with(svc_frame_split_rows(&h, &big, 1, 4, 4096, &parts, &nparts, &err), err,
                      SVC_ERR_PROGRAM_LIMIT);
    assert_non_null(strstr(err.message, "row 1 needs a frame of"));
    ros_error_clear(&err);
    assert_int_equal(svc_frame_split_rows(&h, &big, 3, 4, 4096, &parts, &nparts, &err), 0);
    assert_int_equal(nparts, 1);
    free(parts);
    free_batch(&big);

    free_batch(&b);
}

/* ---------------------------------------------------------------- */
/* Validity bitmaps on the wire */

/* Reads the validity flag of column c of an encoded frame without method. */
#define PAD8(n) (((n) + 7) & ~(size_t)7)

static int wire_validity_flag(const uint8_t *buf, uint32_t c)
{
    return buf[SVC_FRAME_HEADER_SIZE + 8 + 8 * c + 2];
}

static void test_validity_only_with_nulls(void **state)
{
    (void)state;
    /* Column 0: bigint with a bitmap but no NULL; column 1: text whose row
     * 37 is NULL; column 2: NULL-typed (always a bitmap). */
    const uint32_t n = 100;
    ros_batch b = {.ncols = 3, .nrows = n, .cols = calloc(3, sizeof(ros_vector))};
    assert_non_null(b.cols);
    ros_vector_init(&b.cols[0], ROS_TYPE_INT64);
    ros_vector_init(&b.cols[1], ROS_TYPE_TEXT);
    ros_vector_init(&b.cols[2], ROS_TYPE_NULL);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(ros_vector_append_i64(&b.cols[0], (int64_t)i * 3), 0);
        if (i == 37)
            assert_int_equal(ros_vector_append_null(&b.cols[1]), 0);
        else
            assert_int_equal(ros_vector_append_text(&b.cols[1], i % 2 ? "odd" : "even"), 0);
        assert_int_equal(ros_vector_append_null(&b.cols[2]), 0);
    }
    assert_non_null(b.cols[0].validity); /* appends keep a bitmap */
    svc_frame_header h;
    request_header(&h);
    static const svc_row_range ranges[] = {{0, 100}, {0, 37}, {38, 100}, {37, 38}, {30, 45},
                                           {1, 9},   {36, 37}, {0, 0}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        uint32_t start = ranges[k].start, end = ranges[k].end;
        bool has_null = start <= 37 && 37 < end;
        ros_error err;
        ros_error_clear(&err);
        uint8_t *buf;
        size_t len;
        assert_int_equal(svc_frame_encode_rows(&h, &b, start, end, 0, &buf, &len, &err), 0);
        assert_int_equal(len - SVC_FRAME_HEADER_SIZE, svc_frame_rows_size(&b, start, end));
        assert_int_equal(wire_validity_flag(buf, 0), 0);
        assert_int_equal(wire_validity_flag(buf, 1), has_null ? 1 : 0);
        assert_int_equal(wire_validity_flag(buf, 2), 1);
        /* The payload, buffer by buffer: a bitmap only where a row is NULL. */
        size_t r = end - start, data = 0;
        for (uint32_t i = start; i < end; i++)
            data += i == 37 ? 0 : i % 2 ? 3 : 4;
        size_t bitmap = PAD8((r + 7) / 8);
        size_t want = 8 + 3 * 8 + PAD8(8 * r) + (has_null ? bitmap : 0) + PAD8(4 * (r + 1)) +
                      PAD8(data) + bitmap;
        assert_int_equal(len - SVC_FRAME_HEADER_SIZE, want);
        for (int view = 0; view < 2; view++) {
            svc_frame f;
            int rc = view ? svc_frame_decode_view(buf, len, 0, &f, &err)
                          : svc_frame_decode(buf, len, 0, &f, &err);
            assert_int_equal(rc, 0);
            /* no NULL: no bitmap on the wire; a view has none, an owned
             * copy gets an all-valid one (appends set bits in it) */
            if (view)
                assert_null(f.batch.cols[0].validity);
            else if (r > 0) {
                unsigned k = r < 8 ? (unsigned)r : 8u, mask = (1u << k) - 1;
                assert_non_null(f.batch.cols[0].validity);
                assert_int_equal(f.batch.cols[0].validity[0] & mask, mask);
            }
            if (view)
                assert_true(has_null ? f.batch.cols[1].validity != NULL
                                     : f.batch.cols[1].validity == NULL);
            else if (r > 0)
                assert_non_null(f.batch.cols[1].validity);
            if (r > 0)
                assert_non_null(f.batch.cols[2].validity);
            assert_rows_equal(&b, start, &f.batch);
            touch_batch(&f.batch);
            svc_frame_clear(&f);
        }
        free(buf);
    }
    /* A frame carrying an all-valid bitmap (older senders did) is accepted. */
    ros_batch one = {.ncols = 1, .nrows = 3, .cols = calloc(1, sizeof(ros_vector))};
    ros_vector_init(&one.cols[0], ROS_TYPE_INT64);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ros_vector_append_i64(&one.cols[0], i + 10), 0);
    size_t len;
    /* header 64, batch head 8, descriptor 8 (at 72), values 24 (at 80) */
    uint8_t *buf = encode_ok(&h, &one, &len);
    assert_int_equal(len, 104);
    /* the same with a bitmap: descriptor flag, 8 bitmap bytes at 80, values at 88 */
    uint8_t *old = calloc(1, len + 8);
    assert_non_null(old);
    memcpy(old, buf, 80);
    old[72 + 2] = 1;
    old[80] = 0x07; /* three valid rows */
    memcpy(old + 88, buf + 80, 24);
    uint64_t pl = len + 8 - SVC_FRAME_HEADER_SIZE;
    memcpy(old + 56, &pl, 8);
    svc_frame f;
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_decode(old, len + 8, 0, &f, &err), 0);
    assert_rows_equal(&one, 0, &f.batch);
    svc_frame_clear(&f);
    free(old);
    free(buf);
    free_batch(&one);
    free_batch(&b);
}

/* ---------------------------------------------------------------- */
/* Appending batches */

static void test_append_bulk(void **state)
{
    (void)state;
    /* Slices of every odd size appended one after the other rebuild the
     * batch: validity bits at every offset, varlen offsets rebased, NULL
     * columns, a column without a bitmap. */
    ros_batch all;
    make_batch(&all, 600);
    static const uint32_t sizes[] = {1, 3, 7, 8, 0, 13, 64, 100, 5, 9, 200, 190};
    ros_batch dst = {0};
    uint32_t at = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint32_t n = sizes[k];
        /* the slice travels through a frame, as the worker's parts do */
        svc_frame_header h;
        request_header(&h);
        ros_error err;
        ros_error_clear(&err);
        uint8_t *buf;
        size_t len;
        assert_int_equal(svc_frame_encode_rows(&h, &all, at, at + n, 0, &buf, &len, &err), 0);
        svc_frame f;
        assert_int_equal(svc_frame_decode_view(buf, len, 0, &f, &err), 0);
        assert_int_equal(svc_batch_append(&dst, &f.batch, &err), 0);
        svc_frame_clear(&f);
        free(buf);
        at += n;
        assert_int_equal(dst.nrows, at);
        for (uint32_t c = 0; c < dst.ncols; c++) {
            assert_int_equal(dst.cols[c].len, at);
            assert_true(dst.cols[c].cap >= at);
        }
        ros_batch head = all;
        head.nrows = at;
        assert_rows_equal(&head, 0, &dst);
        touch_batch(&dst);
    }
    /* Row by row from the vectors themselves (bitmap or none). */
    ros_batch rows = {0};
    for (uint32_t i = 0; i < 40; i++) {
        ros_vector cols[16];
        assert_true(all.ncols <= 16);
        for (uint32_t c = 0; c < all.ncols; c++)
            ros_vector_init(&cols[c], all.cols[c].type);
        ros_batch one = {.ncols = all.ncols, .nrows = 1, .cols = cols};
        for (uint32_t c = 0; c < all.ncols; c++) {
            ros_vector *v = &cols[c];
            const ros_vector *s = &all.cols[c];
            if (s->type == ROS_TYPE_NULL || ros_vector_is_null(s, i))
                assert_int_equal(ros_vector_append_null(v), 0);
            else if (ros_type_is_varlen(s->type)) {
                uint32_t bl;
                const uint8_t *bp = ros_vector_bytes(s, i, &bl);
                assert_int_equal(ros_vector_append_bytes(v, bp, bl), 0);
            } else
                assert_int_equal(ros_vector_append_fixed(v, (const uint8_t *)s->values +
                                                                i * ros_type_width(s->type)),
                                 0);
        }
        ros_error err;
        ros_error_clear(&err);
        assert_int_equal(svc_batch_append(&rows, &one, &err), 0);
        for (uint32_t c = 0; c < all.ncols; c++)
            ros_vector_free(&cols[c]);
    }
    assert_rows_equal(&all, 0, &rows);
    /* The result is an ordinary vector: appending to it one by one works. */
    assert_int_equal(ros_vector_append_i64(&rows.cols[4], 77), 0);
    assert_false(ros_vector_is_null(&rows.cols[4], 40));
    assert_int_equal(ROS_VEC_I64(&rows.cols[4])[40], 77);
    assert_int_equal(ros_vector_append_null(&rows.cols[10]), 0);
    assert_true(ros_vector_is_null(&rows.cols[10], 40));
    svc_batch_free(&rows);
    svc_batch_free(&dst);
    free_batch(&all);
}

/* ---------------------------------------------------------------- */
/* Malformed frames */

/* Decodes a copy of buf after patch(copy) and expects failure with code. */
static void expect_reject(const uint8_t *buf, size_t len, size_t at, const void *bytes, size_t n,
                          const char *code)
{
    uint8_t *c = malloc(len);
    assert_non_null(c);
    memcpy(c, buf, len);
    memcpy(c + at, bytes, n);
    svc_frame f;
    ros_error err;
    ros_error_clear(&err);
    int rc = svc_frame_decode(c, len, 0, &f, &err);
    if (rc == 0)
        fail_msg("frame patched at %zu was accepted", at);
    if (getenv("FRAME_DEBUG"))
        print_message("patch at %zu: %s\n", at, err.message);
    assert_string_equal(err.code, code);
    assert_int_equal(f.batch.ncols, 0);
    assert_null(f.batch.cols);
    free(c);
}

/* A small frame of three columns (text, bool, real[]) and three rows:
 * ("abc", false, {1,2}), ("", true, {1,2}), ("abc", NULL, {1,2}). */
static uint8_t *small_frame(size_t *len, ros_batch *b)
{
    b->ncols = 3;
    b->nrows = 3;
    b->cols = calloc(3, sizeof(ros_vector));
    ros_vector_init(&b->cols[0], ROS_TYPE_TEXT);
    ros_vector_init(&b->cols[1], ROS_TYPE_BOOL);
    ros_vector_init(&b->cols[2], ROS_TYPE_FLOAT32_ARRAY);
    float fl[2] = {1, 2};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ros_vector_append_text(&b->cols[0], i == 1 ? "" : "abc"), 0);
        if (i == 2)
            assert_int_equal(ros_vector_append_null(&b->cols[1]), 0);
        else
            assert_int_equal(ros_vector_append_bool(&b->cols[1], i & 1), 0);
        assert_int_equal(ros_vector_append_bytes(&b->cols[2], fl, 8), 0);
    }
    svc_frame_header h;
    request_header(&h);
    return encode_ok(&h, b, len);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    ros_batch b;
    size_t len;
    uint8_t *buf = small_frame(&len, &b);
    /* Layout: header 64, batch head 8, 3 descriptors 24 -> column 0 at 96
     * (no NULL: no bitmap): offsets 16 (0 3 3 6), data 8 ("abcabc" padded);
     * column 1 at 120 (a NULL): validity 8, values 8; column 2 at 136 (no
     * NULL): offsets 16 (0 8 16 24), data 24. */
    const size_t P = 64, C0 = P + 32;
    assert_int_equal(len, C0 + 24 + 16 + 40);
    assert_int_equal(buf[P + 8 + 2], 0);  /* column 0: no validity flag */
    assert_int_equal(buf[P + 16 + 2], 1); /* column 1: validity flag */
    assert_int_equal(buf[P + 24 + 2], 0); /* column 2: no validity flag */
    uint32_t u32;
    uint16_t u16;
    uint8_t u8;

    expect_reject(buf, len, 0, "RQSF", 4, SVC_ERR_PROTOCOL_VIOLATION);
    u16 = 2;
    expect_reject(buf, len, 4, &u16, 2, SVC_ERR_PROTOCOL_VIOLATION);
    u16 = 0;
    expect_reject(buf, len, 6, &u16, 2, SVC_ERR_PROTOCOL_VIOLATION);
    u16 = 8;
    expect_reject(buf, len, 6, &u16, 2, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = SVC_FLAG_LAST_PART | (1u << 5);
    expect_reject(buf, len, 8, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = 0; /* part 0 of 1 without LAST_PART */
    expect_reject(buf, len, 8, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = SVC_FRAME_METHOD_MAX + 1;
    expect_reject(buf, len, 12, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = 8; /* method length eats the payload: totals disagree */
    expect_reject(buf, len, 12, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = 5;
    expect_reject(buf, len, 40, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = UINT32_MAX;
    expect_reject(buf, len, P, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION); /* ncols */
    u32 = 4;
    expect_reject(buf, len, P, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = UINT32_MAX;
    expect_reject(buf, len, P + 4, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION); /* nrows */
    u32 = 4;
    expect_reject(buf, len, P + 4, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u16 = ROS_TYPE_COUNT;
    expect_reject(buf, len, P + 8, &u16, 2, SVC_ERR_PROTOCOL_VIOLATION); /* type */
    u16 = ROS_TYPE_INT64; /* same buffer sizes as the text column, but a data length */
    expect_reject(buf, len, P + 8, &u16, 2, SVC_ERR_PROTOCOL_VIOLATION);
    u16 = 2;
    expect_reject(buf, len, P + 10, &u16, 2, SVC_ERR_PROTOCOL_VIOLATION); /* column flags */
    u32 = 7;
    expect_reject(buf, len, P + 12, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION); /* data_len */
    u32 = 3;
    expect_reject(buf, len, P + 20, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION); /* bool data_len */
    u16 = 1; /* column 0 claims a bitmap: its buffers no longer fit */
    expect_reject(buf, len, P + 10, &u16, 2, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = 1;
    expect_reject(buf, len, C0, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION); /* offsets[0] */
    u32 = 2;
    expect_reject(buf, len, C0 + 8, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION); /* decreasing */
    u32 = 5;
    expect_reject(buf, len, C0 + 12, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION); /* short of data */
    u32 = 700;
    expect_reject(buf, len, C0 + 12, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION); /* past data */
    u8 = 2;
    expect_reject(buf, len, C0 + 24 + 8, &u8, 1, SVC_ERR_PROTOCOL_VIOLATION); /* bool 2 */
    /* real[] column at C0+40: offsets[1] 6 is not a whole float */
    u32 = 6;
    expect_reject(buf, len, C0 + 40 + 4, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    uint64_t u64 = len; /* payload length counting the header */
    expect_reject(buf, len, 56, &u64, 8, SVC_ERR_PROTOCOL_VIOLATION);

    /* Trailing bytes and a payload not a multiple of 8. */
    uint8_t *longer = calloc(1, len + 8);
    memcpy(longer, buf, len);
    u64 = len - 64 + 8;
    memcpy(longer + 56, &u64, 8);
    svc_frame f;
    ros_error err;
    assert_fails_with(svc_frame_decode(longer, len + 8, 0, &f, &err), err, SVC_ERR_PROTOCOL_VIOLATION);
    u64 = len - 64 + 4;
    memcpy(longer + 56, &u64, 8);
    assert_fails_with(svc_frame_decode(longer, len + 4, 0, &f, &err), err, SVC_ERR_PROTOCOL_VIOLATION);
    free(longer);

    /* An advisory flag is ignored; a NUL in the method is refused. */
    uint8_t *c = malloc(len);
    memcpy(c, buf, len);
    c[10] |= 0x40;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_decode(c, len, 0, &f, &err), 0);
    svc_frame_clear(&f);
    free(c);
    svc_frame_header h;
    request_header(&h);
    assert_int_equal(svc_frame_set_method(&h, "abc", 3, &err), 0);
    size_t mlen;
    uint8_t *m = encode_ok(&h, &b, &mlen);
    expect_reject(m, mlen, 65, "", 1, SVC_ERR_PROTOCOL_VIOLATION);
    free(m);

    /* A NULL column with a non-NULL row. */
    ros_batch nb = {.ncols = 1, .nrows = 2, .cols = calloc(1, sizeof(ros_vector))};
    ros_vector_init(&nb.cols[0], ROS_TYPE_NULL);
    assert_int_equal(ros_vector_append_null(&nb.cols[0]), 0);
    assert_int_equal(ros_vector_append_null(&nb.cols[0]), 0);
    size_t nlen;
    uint8_t *n = encode_ok(&h, &nb, &nlen);
    u8 = 2;
    expect_reject(n, nlen, nlen - 8, &u8, 1, SVC_ERR_PROTOCOL_VIOLATION);
    free(n);
    free_batch(&nb);

    /* Error frames: bad SQLSTATE, text lengths. */
    ros_error remote;
    ros_error_clear(&remote);
    ros_error_set(&remote, ROS_ERR_EXTERNAL, "boom");
    svc_frame_header eh;
    svc_frame_reply_header(&eh, &h, SVC_KIND_ERROR);
    uint8_t *e;
    size_t elen;
    assert_int_equal(svc_frame_encode_error(&eh, &remote, 1, 0, &e, &elen, &err), 0);
    expect_reject(e, elen, 64, "3800a", 5, SVC_ERR_PROTOCOL_VIOLATION);
    expect_reject(e, elen, 64 + 5, "x", 1, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = 5;
    expect_reject(e, elen, 64 + 12, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = 9;
    expect_reject(e, elen, 64 + 12, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    u32 = 0xffffff00;
    expect_reject(e, elen, 64 + 16, &u32, 4, SVC_ERR_PROTOCOL_VIOLATION);
    expect_reject(e, elen, 64 + 25, "", 1, SVC_ERR_PROTOCOL_VIOLATION);
    free(e);

    /* NULL buffer, empty buffer. */
    assert_fails_with(svc_frame_decode(NULL, 0, 0, &f, &err), err, SVC_ERR_PROTOCOL_VIOLATION);
    assert_int_equal(f.h.kind, SVC_KIND_NONE);
    assert_fails_with(svc_frame_decode(buf, 0, 0, &f, &err), err, SVC_ERR_PROTOCOL_VIOLATION);

    free(buf);
    free_batch(&b);
}

/* ---------------------------------------------------------------- */
/* Content digest */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts n hashes and fails on a repeat. */
static void assert_distinct(uint64_t *h, size_t n, const char *what)
{
    qsort(h, n, sizeof *h, cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (h[i] == h[i - 1])
            fail_msg("%s: two inputs hash to %016llx", what, (unsigned long long)h[i]);
}

/*
 * svc_hash64: independent of the buffer's alignment; every length of zero
 * bytes, every single-bit flip, every swap of two 8-byte words, every seed
 * and every small counter give different values (lengths cross the 16- and
 * 64-byte steps and the tail).
 */
static void test_hash64(void **state)
{
    (void)state;
    enum { N = 300 };
    static uint8_t data[N], shifted[N + 8];
    for (size_t i = 0; i < N; i++)
        data[i] = (uint8_t)rnd();

    /* the same bytes at any alignment; the same call twice */
    for (size_t len = 0; len <= N; len += len < 140 ? 1 : 37) {
        uint64_t want = svc_hash64(data, len, 5);
        assert_int_equal(svc_hash64(data, len, 5), want);
        for (size_t off = 1; off < 8; off++) {
            memcpy(shifted + off, data, len);
            assert_int_equal(svc_hash64(shifted + off, len, 5), want);
        }
    }

    /* zero bytes: the length counts */
    static uint8_t zeros[N];
    static uint64_t h[N * 8 + 1];
    size_t n = 0;
    for (size_t len = 0; len <= N; len++)
        h[n++] = svc_hash64(zeros, len, 0);
    assert_distinct(h, n, "zero bytes of different lengths");

    /* every single-bit flip of 1, 15, 16, 63, 64, 65, 200 and 300 bytes */
    static const size_t lens[] = {1, 15, 16, 63, 64, 65, 200, N};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t len = lens[k];
        n = 0;
        h[n++] = svc_hash64(data, len, 0);
        for (size_t bit = 0; bit < len * 8; bit++) {
            data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            h[n++] = svc_hash64(data, len, 0);
            data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        assert_distinct(h, n, "single-bit flips");
    }

    /* swapping two different 8-byte words (within a lane, across lanes,
     * between the blocks and the tail) */
    n = 0;
    h[n++] = svc_hash64(data, 264, 0);
    for (size_t i = 0; i < 33; i++)
        for (size_t j = i + 1; j < 33; j += 3) {
            uint8_t t[8];
            if (memcmp(data + 8 * i, data + 8 * j, 8) == 0)
                continue;
            memcpy(t, data + 8 * i, 8);
            memcpy(data + 8 * i, data + 8 * j, 8);
            memcpy(data + 8 * j, t, 8);
            h[n++] = svc_hash64(data, 264, 0);
            memcpy(data + 8 * j, data + 8 * i, 8);
            memcpy(data + 8 * i, t, 8);
        }
    assert_true(n > 100);
    assert_distinct(h, n, "swapped words");

    /* seeds */
    n = 0;
    for (uint64_t seed = 0; seed < 1000; seed++)
        h[n++] = svc_hash64(data, 100, seed);
    assert_distinct(h, n, "seeds");

    /* 200000 bigint counters, and the same counters 8 bytes into zeros */
    size_t m = 200000;
    uint64_t *many = malloc(m * 2 * sizeof *many);
    assert_non_null(many);
    for (uint64_t i = 0; i < m; i++) {
        uint64_t w[2] = {0, i};
        many[i] = svc_hash64(&i, 8, 0);
        many[m + i] = svc_hash64(w, 16, 0);
    }
    assert_distinct(many, m * 2, "counters");
    free(many);
}

/*
 * svc_frame_digest covers the method and the payload bytes of a request
 * part, not the rest of the header (request id, attempt, part, flags,
 * deadline): a retry under another attempt has the digest of its first
 * try, a part with other rows or another method another one.
 */
static void test_frame_digest(void **state)
{
    (void)state;
    ros_batch b;
    make_batch(&b, 40);
    svc_frame_header h;
    request_header(&h);
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_set_method(&h, "m", 1, &err), 0);
    size_t len;
    uint8_t *buf = encode_ok(&h, &b, &len);
    svc_frame f;
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    uint64_t d = svc_frame_digest(&f.h, buf, len);
    svc_frame_clear(&f);

    /* another header around the same content: the same digest */
    svc_frame_header h2 = h;
    h2.id.seq++;
    h2.attempt = 9;
    h2.deadline_ms = 12345;
    h2.flags |= SVC_FLAG_ORDERED | SVC_FLAG_VOLATILE | SVC_FLAG_REUSED;
    svc_frame_set_part(&h2, 2, 5);
    size_t len2;
    uint8_t *buf2 = encode_ok(&h2, &b, &len2);
    assert_int_equal(len2, len);
    assert_int_equal(svc_frame_decode(buf2, len2, 0, &f, &err), 0);
    assert_int_equal(svc_frame_digest(&f.h, buf2, len2), d);
    svc_frame_clear(&f);
    free(buf2);

    /* another method, or none: another digest */
    static const char *methods[] = {"n", ""};
    for (int k = 0; k < 2; k++) {
        h2 = h;
        assert_int_equal(svc_frame_set_method(&h2, methods[k], strlen(methods[k]), &err), 0);
        buf2 = encode_ok(&h2, &b, &len2);
        assert_int_equal(svc_frame_decode(buf2, len2, 0, &f, &err), 0);
        assert_true(svc_frame_digest(&f.h, buf2, len2) != d);
        svc_frame_clear(&f);
        free(buf2);
    }

    /* any payload byte changed: another digest */
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    size_t payload = (size_t)f.h.payload_len;
    assert_true(payload > 0);
    for (size_t i = len - payload; i < len; i++) {
        buf[i] ^= 0x01;
        assert_true(svc_frame_digest(&f.h, buf, len) != d);
        buf[i] ^= 0x01;
    }
    assert_int_equal(svc_frame_digest(&f.h, buf, len), d);
    svc_frame_clear(&f);

    /* one row less: another digest */
    ros_batch fewer;
    make_batch(&fewer, 39);
    buf2 = encode_ok(&h, &fewer, &len2);
    assert_int_equal(svc_frame_decode(buf2, len2, 0, &f, &err), 0);
    assert_true(svc_frame_digest(&f.h, buf2, len2) != d);
    svc_frame_clear(&f);
    free(buf2);
    free_batch(&fewer);
    free(buf);
    free_batch(&b);
}

/* SVC_FLAG_REUSED is advisory (bit 16): it encodes, travels in a RESPONSE
 * and decodes; a frame without it (an older worker) reads as not reused. */
static void test_reused_flag(void **state)
{
    (void)state;
    assert_int_equal(SVC_FLAG_REUSED, 1u << 16);
    assert_int_equal(SVC_FLAG_REUSED & SVC_FLAGS_REQUIRED_MASK, 0);
    ros_batch b;
    make_batch(&b, 4);
    svc_frame_header req, h;
    request_header(&req);
    svc_frame_reply_header(&h, &req, SVC_KIND_RESPONSE);
    assert_int_equal(h.flags & SVC_FLAG_REUSED, 0);
    size_t len;
    uint8_t *buf = encode_ok(&h, &b, &len);
    svc_frame f;
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_int_equal(f.h.flags & SVC_FLAG_REUSED, 0);
    svc_frame_clear(&f);
    free(buf);
    h.flags |= SVC_FLAG_REUSED;
    buf = encode_ok(&h, &b, &len);
    assert_int_equal(buf[10], 0x01); /* bit 16: byte 10, bit 0 */
    assert_int_equal(svc_frame_decode(buf, len, 0, &f, &err), 0);
    assert_int_equal(f.h.flags, SVC_FLAG_LAST_PART | SVC_FLAG_REUSED);
    assert_int_equal(f.batch.nrows, 4);
    svc_frame_clear(&f);
    free(buf);
    free_batch(&b);
}

/* ---------------------------------------------------------------- */
/* Fault loops */

static long accepted, rejected;

/* Decodes (copy and view); on success the batch must be sound and must
 * encode and decode again. */
static void decode_any(const uint8_t *buf, size_t len)
{
    for (int view = 0; view < 2; view++) {
        svc_frame f;
        ros_error err;
        ros_error_clear(&err);
        int rc = view ? svc_frame_decode_view(buf, len, 0, &f, &err)
                      : svc_frame_decode(buf, len, 0, &f, &err);
        if (rc != 0) {
            assert_true(err.set);
            assert_true(strcmp(err.code, SVC_ERR_PROTOCOL_VIOLATION) == 0 ||
                        strcmp(err.code, SVC_ERR_PROGRAM_LIMIT) == 0);
            assert_null(f.batch.cols);
            rejected++;
            continue;
        }
        accepted++;
        assert_false(err.set);
        touch_batch(&f.batch);
        if (f.h.kind == SVC_KIND_REQUEST || f.h.kind == SVC_KIND_RESPONSE) {
            uint8_t *again;
            size_t alen;
            assert_int_equal(svc_frame_encode(&f.h, &f.batch, 0, &again, &alen, &err), 0);
            /* the same frame, or shorter: a bitmap without a NULL bit (which
             * a mutation can produce) is not sent again */
            assert_true(alen <= len);
            assert_int_equal(alen, svc_frame_size(&f.h, &f.batch));
            svc_frame g;
            assert_int_equal(svc_frame_decode(again, alen, 0, &g, &err), 0);
            assert_rows_equal(&f.batch, 0, &g.batch);
            svc_frame_clear(&g);
            free(again);
        }
        svc_frame_clear(&f);
    }
}

static uint8_t *fault_frame(size_t *len, ros_batch *b)
{
    make_batch(b, 13);
    svc_frame_header h;
    request_header(&h);
    ros_error err;
    assert_int_equal(svc_frame_set_method(&h, "m", 1, &err), 0);
    return encode_ok(&h, b, len);
}

static void test_fault_truncation(void **state)
{
    (void)state;
    ros_batch b;
    size_t len;
    uint8_t *buf = fault_frame(&len, &b);
    for (size_t n = 0; n < len; n++) {
        /* A fresh allocation of exactly n bytes lets ASan see any overread. */
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, buf, n);
        svc_frame f;
        ros_error err;
        ros_error_clear(&err);
        assert_int_equal(svc_frame_decode(c, n, 0, &f, &err), -1);
        assert_string_equal(err.code, SVC_ERR_PROTOCOL_VIOLATION);
        free(c);
    }
    free(buf);
    free_batch(&b);
}

static void test_fault_mutations(void **state)
{
    (void)state;
    ros_batch b;
    size_t len;
    uint8_t *buf = fault_frame(&len, &b);
    uint8_t *c = malloc(len);
    accepted = rejected = 0;
    rng_state = 0x1234567887654321ull;
    for (int iter = 0; iter < 30000; iter++) {
        memcpy(c, buf, len);
        int nmut = 1 + (int)rnd_below(iter % 4 == 0 ? 4 : 1);
        for (int m = 0; m < nmut; m++) {
            size_t at = rnd_below((uint32_t)len);
            switch (rnd_below(4)) {
            case 0: c[at] ^= (uint8_t)(1u << rnd_below(8)); break; /* bit flip */
            case 1: c[at] = (uint8_t)rnd(); break;                   /* random byte */
            case 2: {                                                /* nudge a uint32 */
                at &= ~(size_t)3;
                uint32_t v;
                memcpy(&v, c + at, 4);
                v += (uint32_t)rnd_below(9) - 4;
                memcpy(c + at, &v, 4);
                break;
            }
            default: {                                               /* extreme uint32 */
                at &= ~(size_t)3;
                static const uint32_t ext[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe};
                memcpy(c + at, &ext[rnd_below(6)], 4);
                break;
            }
            }
        }
        decode_any(c, len);
    }
    print_message("mutations: %ld decodes accepted, %ld rejected\n", accepted, rejected);
    assert_true(rejected > 0);
    assert_true(accepted > 0);
    free(c);
    free(buf);
    free_batch(&b);
}

static void test_fault_garbage(void **state)
{
    (void)state;
    accepted = rejected = 0;
    rng_state = 0xdeadbeefcafef00dull;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = rnd_below(600);
        uint8_t *c = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            c[i] = (uint8_t)rnd();
        /* Most iterations get a plausible header so decoding goes deeper. */
        if (len >= 64 && iter % 4) {
            memcpy(c, "ROSF\1\0", 6);
            c[6] = (uint8_t)(1 + rnd_below(7));
            c[7] = 0;
            uint32_t flags = SVC_FLAG_LAST_PART;
            memcpy(c + 8, &flags, 4);
            uint32_t ml = iter % 3 ? 0 : rnd_below(16);
            memcpy(c + 12, &ml, 4);
            uint32_t parts[2] = {0, 1};
            memcpy(c + 40, parts, 8);
            uint64_t pl = (uint64_t)len - 64 - ((ml + 7) & ~7u);
            if (pl > len)
                pl = 0;
            memcpy(c + 56, &pl, 8);
            if (len >= 72 + ((ml + 7) & ~7u) && iter % 2) {
                uint8_t *p = c + 64 + ((ml + 7) & ~7u);
                uint32_t nc = rnd_below(4), nr = rnd_below(9);
                memcpy(p, &nc, 4);
                memcpy(p + 4, &nr, 4);
            }
        }
        decode_any(c, len);
        free(c);
    }
    print_message("garbage: %ld decodes accepted, %ld rejected\n", accepted, rejected);
    assert_true(rejected > 0);
}


/* ---------------------------------------------------------------- */
/* Doorbell lane (service/lane.h) */

/* A lane region and its bell in one shared anonymous mapping, as in a lane
 * block. */
typedef struct lane_fx {
    uint8_t *mem;
    svc_lane l;
} lane_fx;

static void lane_fx_open(lane_fx *fx)
{
    size_t size = SVC_LANE_FIRST_OFF + SVC_LANE_BYTES;
    fx->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(fx->mem != MAP_FAILED);
    svc_lane_view(&fx->l, fx->mem + SVC_LANE_FIRST_OFF, fx->mem + SVC_LANE_BELL_OFF);
    svc_lane_init(&fx->l);
}

static void lane_fx_close(lane_fx *fx)
{
    munmap(fx->mem, SVC_LANE_FIRST_OFF + SVC_LANE_BYTES);
}

static void test_lane_frame(void **state)
{
    (void)state;
    svc_request_id id = {7, 3, 0};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_LANE, &id);
    svc_shm_ref ref = {5, 0x1234, SVC_LANE_BLOCK_BYTES, SVC_LANE_FIRST_OFF, SVC_LANE_BYTES, SVC_LANE_BELL_OFF,
                       SVC_LANE_BELL_BYTES};
    uint8_t buf[SVC_FRAME_SHM_SIZE];
    svc_frame_write_lane(&h, &ref, buf);
    svc_frame f;
    ros_error err;
    ros_error_clear(&err);
    assert_int_equal(svc_frame_decode(buf, sizeof buf, 0, &f, &err), 0);
    assert_int_equal(f.h.kind, SVC_KIND_LANE);
    assert_memory_equal(&f.shm, &ref, sizeof ref);
    svc_frame_clear(&f);
    assert_string_equal(svc_frame_kind_name(SVC_KIND_LANE), "lane");
    /* a lane past the end of its block is malformed */
    ref.off = SVC_LANE_BLOCK_BYTES - 64;
    svc_frame_write_lane(&h, &ref, buf);
    ros_error_clear(&err);
    assert_int_equal(svc_frame_decode(buf, sizeof buf, 0, &f, &err), -1);
    assert_string_equal(err.code, SVC_ERR_PROTOCOL_VIOLATION);
}

/* Requests and answers keep their order and bytes across many wraps of
 * both rings; a full ring refuses a post; sizes over a slot are refused. */
static void test_lane_rings(void **state)
{
    (void)state;
    lane_fx fx;
    lane_fx_open(&fx);
    assert_true(svc_lane_valid(&fx.l));
    uint8_t env[SVC_LANE_REQ_MAX], got[SVC_LANE_RESP_MAX];
    uint64_t tag;
    size_t len;
    assert_int_equal(svc_lane_take_request(&fx.l, &tag, env, &len), 0);
    assert_int_equal(svc_lane_take_answer(&fx.l, &tag, got, &len), 0);
    assert_false(svc_lane_has_answer(&fx.l));
    uint64_t next_take = 0;
    for (uint64_t t = 0; t < 5 * SVC_LANE_RESP_SLOTS; t++) {
        memset(env, (int)(t & 0xff), sizeof env);
        assert_int_equal(svc_lane_post_request(&fx.l, t, env, sizeof env), 0);
        uint8_t e2[SVC_LANE_REQ_MAX];
        assert_int_equal(svc_lane_take_request(&fx.l, &tag, e2, &len), 1);
        assert_int_equal(tag, t);
        assert_int_equal(len, SVC_LANE_REQ_MAX);
        assert_memory_equal(e2, env, sizeof env);
        /* answers of varying length, taken two behind */
        size_t n = 1 + (size_t)(t * 37 % SVC_LANE_RESP_MAX);
        uint8_t frame[SVC_LANE_RESP_MAX];
        for (size_t i = 0; i < n; i++)
            frame[i] = (uint8_t)(t + i);
        uint32_t bell = svc_lane_bell_read(fx.l.bell);
        assert_int_equal(svc_lane_post_answer(&fx.l, t, frame, n), 0);
        assert_int_equal(svc_lane_bell_read(fx.l.bell), bell + 1);
        if (t >= 2) {
            assert_true(svc_lane_has_answer(&fx.l));
            assert_int_equal(svc_lane_take_answer(&fx.l, &tag, got, &len), 1);
            assert_int_equal(tag, next_take);
            size_t want = 1 + (size_t)(next_take * 37 % SVC_LANE_RESP_MAX);
            assert_int_equal(len, want);
            for (size_t i = 0; i < want; i++)
                assert_int_equal(got[i], (uint8_t)(next_take + i));
            next_take++;
        }
    }
    while (svc_lane_take_answer(&fx.l, &tag, got, &len) == 1)
        assert_int_equal(tag, next_take++);
    assert_int_equal(next_take, 5 * SVC_LANE_RESP_SLOTS);

    /* full rings */
    for (uint32_t i = 0; i < SVC_LANE_REQ_SLOTS; i++)
        assert_int_equal(svc_lane_post_request(&fx.l, i, env, sizeof env), 0);
    assert_int_equal(svc_lane_post_request(&fx.l, 99, env, sizeof env), -1);
    for (uint32_t i = 0; i < SVC_LANE_RESP_SLOTS; i++)
        assert_int_equal(svc_lane_post_answer(&fx.l, i, got, 8), 0);
    assert_int_equal(svc_lane_post_answer(&fx.l, 99, got, 8), -1);
    /* too large for a slot */
    uint8_t big[SVC_LANE_RESP_MAX + 1] = {0};
    assert_int_equal(svc_lane_take_answer(&fx.l, &tag, got, &len), 1);
    assert_int_equal(svc_lane_post_answer(&fx.l, 1, big, sizeof big), -1);
    assert_int_equal(svc_lane_post_request(&fx.l, 1, big, SVC_LANE_REQ_MAX + 1), -1);
    lane_fx_close(&fx);
}

/* Indices or lengths a peer corrupted are errors, never reads outside. */
static void test_lane_corrupt(void **state)
{
    (void)state;
    lane_fx fx;
    lane_fx_open(&fx);
    uint8_t env[SVC_LANE_REQ_MAX], got[SVC_LANE_RESP_MAX];
    uint64_t tag;
    size_t len;
    /* the request head far ahead of the tail */
    uint32_t bad = 1000;
    memcpy(fx.l.base + 64, &bad, 4);
    assert_int_equal(svc_lane_take_request(&fx.l, &tag, env, &len), -1);
    /* the answer head far ahead */
    memcpy(fx.l.base + 256, &bad, 4);
    assert_int_equal(svc_lane_take_answer(&fx.l, &tag, got, &len), -1);
    /* a slot's length over the slot */
    svc_lane_init(&fx.l);
    assert_int_equal(svc_lane_post_answer(&fx.l, 5, got, 16), 0);
    uint32_t huge = SVC_LANE_RESP_MAX + 1;
    memcpy(fx.l.base + SVC_LANE_CTRL + SVC_LANE_REQ_SLOTS * SVC_LANE_REQ_SLOT + 8, &huge, 4);
    assert_int_equal(svc_lane_take_answer(&fx.l, &tag, got, &len), -1);
    /* a tail the client set past the head: the worker refuses to post */
    svc_lane_init(&fx.l);
    memcpy(fx.l.base + 320, &bad, 4);
    assert_int_equal(svc_lane_post_answer(&fx.l, 5, got, 16), -1);
    /* a region without the magic */
    memset(fx.l.base, 0, 8);
    assert_false(svc_lane_valid(&fx.l));
    lane_fx_close(&fx);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *lane_poster(void *arg)
{
    lane_fx *fx = arg;
    struct timespec d = {0, 50 * 1000000L};
    nanosleep(&d, NULL);
    uint8_t env[SVC_LANE_REQ_MAX] = {1};
    svc_lane_post_request(&fx->l, 42, env, sizeof env);
    nanosleep(&d, NULL);
    svc_lane_post_answer(&fx->l, 43, env, 8);
    return NULL;
}

/* A sleeping worker is woken by a post, a sleeping client by an answer
 * (both well before their timeouts), and a close wakes the worker. */
static void test_lane_doorbell(void **state)
{
    (void)state;
    lane_fx fx;
    lane_fx_open(&fx);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, lane_poster, &fx), 0);
    int64_t t0 = mono_ms();
    uint8_t env[SVC_LANE_REQ_MAX];
    uint64_t tag;
    size_t len;
    while (svc_lane_take_request(&fx.l, &tag, env, &len) == 0)
        svc_lane_wait_request(&fx.l, 5000);
    assert_int_equal(tag, 42);
    uint32_t seen = svc_lane_bell_read(fx.l.bell);
    while (svc_lane_bell_read(fx.l.bell) == seen)
        svc_lane_bell_wait(fx.l.bell, fx.l.bell_waiting, seen, 5000);
    assert_true(mono_ms() - t0 < 2500);
    assert_int_equal(svc_lane_take_answer(&fx.l, &tag, env, &len), 1);
    assert_int_equal(tag, 43);
    pthread_join(t, NULL);
    /* a wait with nothing posted times out */
    t0 = mono_ms();
    svc_lane_wait_request(&fx.l, 30);
    assert_true(mono_ms() - t0 >= 25);
    /* closed: no sleep at all */
    assert_false(svc_lane_closed(&fx.l));
    svc_lane_close(&fx.l);
    assert_true(svc_lane_closed(&fx.l));
    t0 = mono_ms();
    svc_lane_wait_request(&fx.l, 5000);
    assert_true(mono_ms() - t0 < 2500);
    lane_fx_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_zero_columns),
        cmocka_unit_test(test_header_fields_and_offsets),
        cmocka_unit_test(test_error_and_status_frames),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_split_and_reassemble),
        cmocka_unit_test(test_split_rows),
        cmocka_unit_test(test_validity_only_with_nulls),
        cmocka_unit_test(test_append_bulk),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_fault_truncation),
        cmocka_unit_test(test_fault_mutations),
        cmocka_unit_test(test_fault_garbage),
        cmocka_unit_test(test_hash64),
        cmocka_unit_test(test_frame_digest),
        cmocka_unit_test(test_reused_flag),
        cmocka_unit_test(test_shm_envelope),
        cmocka_unit_test(test_lane_frame),
        cmocka_unit_test(test_lane_rings),
        cmocka_unit_test(test_lane_corrupt),
        cmocka_unit_test(test_lane_doorbell),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
