/*
 * embed.c
 *    builtin:embed: text -> real[] of dim floats, a deterministic stand-in
 *    for a text-embedding model (hashed unigrams and bigrams projected by a
 *    seeded random matrix, then L2-normalised).
 *
 * The model, precisely (service/README.md repeats it):
 *   1. Tokens: the text's bytes, ASCII letters lowercased, cut into maximal
 *      runs of [a-z0-9] and bytes >= 0x80; every other byte separates.
 *   2. Features: each token, and each pair of adjacent tokens spelled
 *      "a b" (one space), is hashed: h = FNV-1a 64 of its bytes, z =
 *      splitmix64_mix(h ^ seed); bucket f = z & 4095, sign = -1 when bit 63
 *      of z is set, else +1.  x[f] += sign.
 *   3. W (4096 x dim) is filled row-major from the splitmix64 sequence of
 *      seed: s += 0x9e3779b97f4a7c15, z = mix(s), k = z >> 40 (24 bits),
 *      W = (k - 2^23) / 2^23, uniform on [-1, 1) and exact in float.
 *   4. y[d] = sum over the row's nonzero x[f], in ascending f, of
 *      x[f] * W[f][d], accumulated in float from 0; then y is divided by its
 *      L2 norm (sum of squares in double); an all-zero y stays zero.
 * A NULL text gives a NULL row.
 *
 * Both paths first hash a batch into the same CSR (row offsets, feature ids
 * ascending, signed counts as floats).  The CPU path projects it here; the
 * GPU path (device >= 0, embed_cuda.cu) copies it to the device from pinned
 * memory and projects there in the same order, so the paths agree to well
 * within 1e-5 per element.
 */
#include "service/builtin/builtin_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ROSQL_HAVE_CUDA
#include "service/builtin/gpu.h"
#endif

#define EMBED_FEATURES 4096u /* hash buckets: rows of W */
#define EMBED_DIM_DEFAULT 64
#define EMBED_DIM_MAX 4096
#define EMBED_SEED_DEFAULT 42
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define SPLITMIX_GAMMA 0x9e3779b97f4a7c15ull
/* Up to this many distinct features a row's list is insertion-sorted;
 * beyond it the bucket array is scanned in order instead. */
#define SORT_SMALL 64

/* The loaded model and the scratch of one instance, in ctx->state. */
typedef struct embed_state {
    uint32_t dim;   /* output floats per row */
    uint64_t seed;  /* hash and matrix seed */
    float *W;       /* EMBED_FEATURES x dim, row-major */
    /* CSR of the CPU path, grown as needed */
    uint32_t *rowoff; /* rows_cap + 1 */
    uint32_t *feat;   /* nnz_cap */
    float *cnt;       /* nnz_cap */
    size_t rows_cap, nnz_cap;
    /* one row's feature counts: counts[f] for the features in touched */
    int32_t counts[EMBED_FEATURES];
    uint8_t mark[EMBED_FEATURES];
    uint16_t touched[EMBED_FEATURES];
#ifdef ROSQL_HAVE_CUDA
    svc_embed_gpu *gpu; /* device >= 0: W on the device, stream, pinned buffers */
#endif
} embed_state;

static int embed_init(ros_func_ctx *ctx, ros_error *err);
static void embed_fini(ros_func_ctx *ctx);
static int embed_call(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                      int64_t *err_row, ros_error *err);
static int embed_warmup_input(ros_func_ctx *ctx, ros_batch *args, ros_error *err);
static uint64_t mix64(uint64_t z);
static uint64_t fnv_lower(uint64_t h, const uint8_t *s, uint32_t n);
static uint32_t row_features(embed_state *st, const uint8_t *s, uint32_t n, uint32_t *feat, float *cnt);
static uint32_t build_csr(embed_state *st, const ros_vector *text, uint32_t nrows, uint32_t *rowoff,
                          uint32_t *feat, float *cnt);
static uint32_t nnz_bound(const ros_vector *text, uint32_t nrows);
static int cpu_reserve(embed_state *st, uint32_t nrows, uint32_t nnz, ros_error *err);
static void project_row(const embed_state *st, const uint32_t *feat, const float *cnt, uint32_t b,
                        uint32_t e, float *y);

/* ---------------------------------------------------------------- */
/* The model */

/* splitmix64's finaliser. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Continues FNV-1a 64 state h over n bytes of s, ASCII letters lowercased. */
static uint64_t fnv_lower(uint64_t h, const uint8_t *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c + ('a' - 'A'));
        h ^= c;
        h *= FNV_PRIME;
    }
    return h;
}

/* Token bytes: ASCII letters and digits, and every byte >= 0x80. */
static inline int is_token_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/*
 * Hashes one text into (feature, count) entries, ascending by feature,
 * zero counts dropped.  Writes at most min(n, 4096) entries to feat and cnt
 * and returns how many.
 */
static uint32_t row_features(embed_state *st, const uint8_t *s, uint32_t n, uint32_t *feat, float *cnt)
{
    uint32_t ntouched = 0;
    uint64_t prev = 0; /* FNV state after the previous token */
    int have_prev = 0;
    uint32_t i = 0;
    while (i < n) {
        while (i < n && !is_token_byte(s[i]))
            i++;
        if (i >= n)
            break;
        uint32_t start = i;
        while (i < n && is_token_byte(s[i]))
            i++;
        uint64_t h = fnv_lower(FNV_OFFSET, s + start, i - start);
        uint64_t hs[2];
        int nh = 0;
        hs[nh++] = h;
        if (have_prev) {
            uint64_t b = prev;
            b ^= (uint8_t)' ';
            b *= FNV_PRIME;
            hs[nh++] = fnv_lower(b, s + start, i - start);
        }
        for (int k = 0; k < nh; k++) {
            uint64_t z = mix64(hs[k] ^ st->seed);
            uint32_t f = (uint32_t)(z & (EMBED_FEATURES - 1));
            if (!st->mark[f]) {
                st->mark[f] = 1;
                st->counts[f] = 0;
                st->touched[ntouched++] = (uint16_t)f;
            }
            st->counts[f] += (z >> 63) ? -1 : 1;
        }
        prev = h;
        have_prev = 1;
    }
    uint32_t nnz = 0;
    if (ntouched <= SORT_SMALL) {
        for (uint32_t a = 1; a < ntouched; a++) {
            uint16_t v = st->touched[a];
            uint32_t b = a;
            while (b > 0 && st->touched[b - 1] > v) {
                st->touched[b] = st->touched[b - 1];
                b--;
            }
            st->touched[b] = v;
        }
        for (uint32_t a = 0; a < ntouched; a++) {
            uint32_t f = st->touched[a];
            if (st->counts[f] != 0) {
                feat[nnz] = f;
                cnt[nnz++] = (float)st->counts[f];
            }
            st->mark[f] = 0;
        }
    } else {
        for (uint32_t f = 0; f < EMBED_FEATURES; f++) {
            if (!st->mark[f])
                continue;
            if (st->counts[f] != 0) {
                feat[nnz] = f;
                cnt[nnz++] = (float)st->counts[f];
            }
            st->mark[f] = 0;
        }
    }
    return nnz;
}

/*
 * Upper bound of the CSR entries of a batch: a row of n bytes holds at most
 * (n + 1) / 2 tokens, so at most n unigrams and bigrams, and at most 4096
 * distinct features.
 */
static uint32_t nnz_bound(const ros_vector *text, uint32_t nrows)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(text, i))
            continue;
        uint32_t n = text->offsets[i + 1] - text->offsets[i];
        total += n < EMBED_FEATURES ? n : EMBED_FEATURES;
    }
    return total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
}

/* Hashes every row of text into the CSR; returns the entries written. */
static uint32_t build_csr(embed_state *st, const ros_vector *text, uint32_t nrows, uint32_t *rowoff,
                          uint32_t *feat, float *cnt)
{
    uint32_t nnz = 0;
    rowoff[0] = 0;
    for (uint32_t i = 0; i < nrows; i++) {
        if (!ros_vector_is_null(text, i)) {
            uint32_t n;
            const uint8_t *s = ros_vector_bytes(text, i, &n);
            nnz += row_features(st, s, n, feat + nnz, cnt + nnz);
        }
        rowoff[i + 1] = nnz;
    }
    return nnz;
}

/* y = W^T x for CSR entries [b, e), ascending features, then L2-normalised. */
static void project_row(const embed_state *st, const uint32_t *feat, const float *cnt, uint32_t b,
                        uint32_t e, float *y)
{
    uint32_t dim = st->dim;
    for (uint32_t d = 0; d < dim; d++)
        y[d] = 0.0f;
    for (uint32_t k = b; k < e; k++) {
        const float c = cnt[k];
        const float *w = st->W + (size_t)feat[k] * dim;
        for (uint32_t d = 0; d < dim; d++)
            y[d] += c * w[d];
    }
    double ss = 0;
    for (uint32_t d = 0; d < dim; d++)
        ss += (double)y[d] * (double)y[d];
    if (ss > 0) {
        double norm = sqrt(ss);
        for (uint32_t d = 0; d < dim; d++)
            y[d] = (float)((double)y[d] / norm);
    }
}

/* ---------------------------------------------------------------- */
/* Entry points */

static int embed_init(ros_func_ctx *ctx, ros_error *err)
{
    uint64_t dim, seed;
    if (svc_opt_u64(ctx->options, "dim", EMBED_DIM_DEFAULT, 1, EMBED_DIM_MAX, &dim, err) < 0 ||
        svc_opt_u64(ctx->options, "seed", EMBED_SEED_DEFAULT, 0, UINT64_MAX, &seed, err) < 0)
        return -1;
    embed_state *st = calloc(1, sizeof *st);
    if (!st)
        return ros_error_oom(err);
    st->dim = (uint32_t)dim;
    st->seed = seed;
    size_t nw = (size_t)EMBED_FEATURES * st->dim;
    st->W = malloc(nw * sizeof(float));
    if (!st->W) {
        free(st);
        return ros_error_oom(err);
    }
    uint64_t s = seed;
    for (size_t i = 0; i < nw; i++) {
        s += SPLITMIX_GAMMA;
        int64_t k = (int64_t)(mix64(s) >> 40);
        st->W[i] = (float)(k - (1 << 23)) / 8388608.0f;
    }
    if (ctx->device >= 0) {
#ifdef ROSQL_HAVE_CUDA
        char msg[256] = "";
        if (svc_embed_gpu_open(ctx->device, st->W, EMBED_FEATURES, st->dim, &st->gpu, msg, sizeof msg) < 0) {
            free(st->W);
            free(st);
            return ros_error_set(err, ROS_ERR_EXTERNAL, "could not set up builtin:embed on device %d: %s",
                                 ctx->device, msg);
        }
#else
        free(st->W);
        free(st);
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "device %d is not available: built without CUDA",
                             ctx->device);
#endif
    }
    ctx->state = st;
    return 0;
}

static void embed_fini(ros_func_ctx *ctx)
{
    embed_state *st = ctx->state;
    if (!st)
        return;
#ifdef ROSQL_HAVE_CUDA
    svc_embed_gpu_close(st->gpu);
#endif
    free(st->W);
    free(st->rowoff);
    free(st->feat);
    free(st->cnt);
    free(st);
    ctx->state = NULL;
}

/* Grows the CPU path's CSR buffers.  0 or -1 with err set. */
static int cpu_reserve(embed_state *st, uint32_t nrows, uint32_t nnz, ros_error *err)
{
    if ((size_t)nrows + 1 > st->rows_cap) {
        size_t cap = (size_t)nrows + 1;
        uint32_t *p = realloc(st->rowoff, cap * sizeof *p);
        if (!p)
            return ros_error_oom(err);
        st->rowoff = p;
        st->rows_cap = cap;
    }
    if (nnz > st->nnz_cap || !st->feat) {
        size_t cap = nnz ? nnz : 1;
        uint32_t *f = realloc(st->feat, cap * sizeof *f);
        if (!f)
            return ros_error_oom(err);
        st->feat = f;
        float *c = realloc(st->cnt, cap * sizeof *c);
        if (!c)
            return ros_error_oom(err);
        st->cnt = c;
        st->nnz_cap = cap;
    }
    return 0;
}

static int embed_call(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                      int64_t *err_row, ros_error *err)
{
    static const ros_type takes[] = {ROS_TYPE_TEXT};
    embed_state *st = ctx->state;
    uint32_t nrows = args->nrows;
    *err_row = -1;
    if (svc_check_args("embed", args, takes, 1, err) < 0)
        return -1;
    const ros_vector *text = &args->cols[0];
    uint32_t rowbytes = st->dim * (uint32_t)sizeof(float);
    if (svc_varlen_fixed_prepare(out, ROS_TYPE_FLOAT32_ARRAY, nrows, rowbytes, err) < 0)
        return -1;
    uint32_t bound = nnz_bound(text, nrows);
    const uint32_t *rowoff, *feat;
    const float *cnt;
    const float *ygpu = NULL; /* GPU path: nrows x dim results */
#ifdef ROSQL_HAVE_CUDA
    if (st->gpu) {
        uint32_t *ro, *fe;
        float *cn;
        char msg[256] = "";
        if (svc_embed_gpu_reserve(st->gpu, nrows, bound, &ro, &fe, &cn, msg, sizeof msg) < 0)
            goto gpu_fail;
        build_csr(st, text, nrows, ro, fe, cn);
        if (svc_embed_gpu_run(st->gpu, nrows, &ygpu, msg, sizeof msg) < 0)
            goto gpu_fail;
        rowoff = ro;
        feat = fe;
        cnt = cn;
        goto fill;
    gpu_fail:
        ros_vector_free(out);
        return ros_error_set(err, ROS_ERR_EXTERNAL, "builtin:embed failed on device %d: %s", ctx->device, msg);
    }
#endif
    if (cpu_reserve(st, nrows, bound, err) < 0) {
        ros_vector_free(out);
        return -1;
    }
    build_csr(st, text, nrows, st->rowoff, st->feat, st->cnt);
    rowoff = st->rowoff;
    feat = st->feat;
    cnt = st->cnt;
#ifdef ROSQL_HAVE_CUDA
fill:
#endif
    for (uint32_t i = 0; i < nrows; i++) {
        uint32_t at = out->offsets[i];
        if (ros_vector_is_null(text, i)) {
            ros_vector_set_valid(out, i, false);
            out->offsets[i + 1] = at;
            continue;
        }
        float *y = (float *)(out->data + at);
        if (ygpu)
            memcpy(y, ygpu + (size_t)i * st->dim, rowbytes);
        else
            project_row(st, feat, cnt, rowoff[i], rowoff[i + 1], y);
        out->offsets[i + 1] = at + rowbytes;
    }
    out->len = nrows;
    out->data_len = out->offsets[nrows];
    return 0;
}

/* Four rows: words, punctuation, empty and NULL text. */
static int embed_warmup_input(ros_func_ctx *ctx, ros_batch *args, ros_error *err)
{
    const ros_type t = ROS_TYPE_TEXT;
    if (svc_batch_alloc(args, &t, 1, err) < 0)
        return -1;
    ros_vector *v = &args->cols[0];
    if (ros_vector_append_text(v, "warm-up") < 0 || ros_vector_append_text(v, "The quick brown fox.") < 0 ||
        ros_vector_append_text(v, "") < 0 || ros_vector_append_null(v) < 0)
        return ros_error_oom(err);
    args->nrows = 4;
    return 0;
}

const svc_builtin svc_builtin_embed = {
    .name = "embed",
    .init = embed_init,
    .call = embed_call,
    .fini = embed_fini,
    .warmup_input = embed_warmup_input,
#ifdef ROSQL_HAVE_CUDA
    .has_gpu = 1,
#else
    .has_gpu = 0,
#endif
};
