/*
 * cosine.c
 *    builtin:cosine: cosine similarity of real[] vectors.
 *
 * Two modes, fixed at init:
 *   pairs      cosine(a real[], b real[]) -> double precision, row by row;
 *   reference  with the option reference = '/path/file' (one vector per
 *              line, comma-separated floats, all of one length, loaded at
 *              init): cosine(q real[]) -> real[], the similarity of q to
 *              each reference vector in file order.
 * A NULL argument gives a NULL row; vectors of different lengths are an
 * error naming the row; a zero vector has similarity 0 with anything (never
 * NaN); results are clamped to [-1, 1].  Sums run in double.
 *
 * With device >= 0 (cosine_cuda.cu) the batch is staged in pinned memory,
 * copied to the device on the instance's stream and reduced there, with
 * the reference vectors and their norms uploaded once at init.  The CPU
 * and GPU paths agree within 1e-5.
 */
#include "service/builtin/builtin_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ROSQL_HAVE_CUDA
#include "service/builtin/gpu.h"
#endif

/* Largest reference file read, bytes. */
#define REF_FILE_MAX ((size_t)1 << 30)

/* The instance's state, in ctx->state. */
typedef struct cosine_state {
    /* reference mode (nref > 0) */
    float *ref;      /* nref x dim, row-major */
    double *refnorm; /* nref: L2 norms, in double */
    uint32_t nref;
    uint32_t dim;
#ifdef ROSQL_HAVE_CUDA
    svc_cosine_gpu *gpu; /* device >= 0 */
#endif
} cosine_state;

static int cosine_init(ros_func_ctx *ctx, ros_error *err);
static void cosine_fini(ros_func_ctx *ctx);
static int cosine_call(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                       int64_t *err_row, ros_error *err);
static int cosine_warmup_input(ros_func_ctx *ctx, ros_batch *args, ros_error *err);
static int load_reference(cosine_state *st, const char *path, ros_error *err);
static int call_pairs(ros_func_ctx *ctx, cosine_state *st, const ros_batch *args, ros_vector *out,
                      int64_t *err_row, ros_error *err);
static int call_refs(ros_func_ctx *ctx, cosine_state *st, const ros_batch *args, ros_vector *out,
                     int64_t *err_row, ros_error *err);
static double cosine_of(double dot, double na, double nb);

/* ---------------------------------------------------------------- */
/* Arithmetic shared by both paths (the .cu file mirrors it) */

/* dot / (|a| |b|) from the sums, 0 for a zero vector, clamped to [-1, 1]. */
static double cosine_of(double dot, double na, double nb)
{
    if (!(na > 0) || !(nb > 0))
        return 0;
    double r = dot / (sqrt(na) * sqrt(nb));
    if (r > 1)
        r = 1;
    else if (r < -1)
        r = -1;
    return r;
}

/* ---------------------------------------------------------------- */
/* Reference file */

/*
 * Reads path: one vector per line, floats separated by commas, blanks
 * around them allowed, empty lines skipped.  Every vector must have the
 * length of the first.  Returns 0 with st->ref, refnorm, nref, dim set, or
 * -1 with err set (58P01 unreadable, 22P02 malformed, naming file and line).
 */
static int load_reference(cosine_state *st, const char *path, ros_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return ros_error_set(err, ROS_ERR_UNDEFINED_FILE, "could not open reference file \"%s\": %s", path,
                             strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    float *vals = NULL;
    size_t nvals = 0, vcap = 0;
    int rc = -1;
    for (;;) {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 65536;
            char *nb = cap > REF_FILE_MAX + 1 ? NULL : realloc(buf, cap + 1);
            if (!nb) {
                if (cap > REF_FILE_MAX + 1)
                    ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "reference file \"%s\" is larger than 1 GiB",
                                  path);
                else
                    ros_error_oom(err);
                goto done;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0) {
            if (ferror(fp)) {
                ros_error_set(err, ROS_ERR_IO, "could not read reference file \"%s\": %s", path,
                              strerror(errno));
                goto done;
            }
            break;
        }
    }
    buf[len] = '\0';

    uint32_t dim = 0, nref = 0;
    const char *p = buf, *end = buf + len;
    for (unsigned line = 1; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (memchr(p, '\0', (size_t)(eol - p))) {
            ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid reference file \"%s\", line %u: zero byte", path,
                          line);
            goto done;
        }
        const char *q = p;
        while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\f' || *q == '\v'))
            q++;
        if (q == eol) { /* empty line */
            p = eol + 1;
            continue;
        }
        uint32_t count = 0;
        for (;;) {
            while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\f' || *q == '\v'))
                q++;
            if (q == eol) {
                ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid reference file \"%s\", line %u: %s", path,
                              line, count ? "number expected after \",\"" : "number expected");
                goto done;
            }
            char *after;
            errno = 0;
            float v = strtof(q, &after);
            if (after == q || after > eol) {
                ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid reference file \"%s\", line %u: \"%.*s\" is not a number",
                              path, line, (int)((eol - q) > 20 ? 20 : (eol - q)), q);
                goto done;
            }
            if (!isfinite(v)) {
                ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid reference file \"%s\", line %u: \"%.*s\" is not a finite real",
                              path, line, (int)(after - q > 40 ? 40 : after - q), q);
                goto done;
            }
            if (nvals == vcap) {
                vcap = vcap ? vcap * 2 : 1024;
                float *nv = realloc(vals, vcap * sizeof *nv);
                if (!nv) {
                    ros_error_oom(err);
                    goto done;
                }
                vals = nv;
            }
            vals[nvals++] = v;
            count++;
            q = after;
            while (q < eol && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\f' || *q == '\v'))
                q++;
            if (q == eol)
                break;
            if (*q != ',') {
                ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid reference file \"%s\", line %u: \",\" expected at \"%.*s\"",
                              path, line, (int)((eol - q) > 20 ? 20 : (eol - q)), q);
                goto done;
            }
            q++;
        }
        if (nref == 0) {
            dim = count;
        } else if (count != dim) {
            ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid reference file \"%s\", line %u: %u values, expected %u",
                          path, line, count, dim);
            ros_error_detail(err, "Every reference vector must have the length of the first one.");
            goto done;
        }
        nref++;
        p = eol + 1;
    }
    if (nref == 0) {
        ros_error_set(err, ROS_ERR_INVALID_TEXT, "reference file \"%s\" holds no vectors", path);
        goto done;
    }
    st->refnorm = malloc(nref * sizeof *st->refnorm);
    if (!st->refnorm) {
        ros_error_oom(err);
        goto done;
    }
    for (uint32_t j = 0; j < nref; j++) {
        double s = 0;
        for (uint32_t d = 0; d < dim; d++)
            s += (double)vals[(size_t)j * dim + d] * (double)vals[(size_t)j * dim + d];
        st->refnorm[j] = s;
    }
    st->ref = vals;
    vals = NULL;
    st->nref = nref;
    st->dim = dim;
    rc = 0;
done:
    free(vals);
    free(buf);
    fclose(fp);
    return rc;
}

/* ---------------------------------------------------------------- */
/* Entry points */

static int cosine_init(ros_func_ctx *ctx, ros_error *err)
{
    cosine_state *st = calloc(1, sizeof *st);
    if (!st)
        return ros_error_oom(err);
    char path[4096];
    if (svc_opt_get(ctx->options, "reference", path, sizeof path)) {
        if (path[0] == '\0') {
            free(st);
            return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid value for option reference: \"\"");
        }
        if (load_reference(st, path, err) < 0) {
            free(st);
            return -1;
        }
    }
    if (ctx->device >= 0) {
#ifdef ROSQL_HAVE_CUDA
        char msg[256] = "";
        if (svc_cosine_gpu_open(ctx->device, st->ref, st->refnorm, st->nref, st->dim, &st->gpu, msg,
                                sizeof msg) < 0) {
            ros_error_set(err, ROS_ERR_EXTERNAL, "could not set up builtin:cosine on device %d: %s", ctx->device,
                          msg);
            free(st->ref);
            free(st->refnorm);
            free(st);
            return -1;
        }
#else
        free(st->ref);
        free(st->refnorm);
        free(st);
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "device %d is not available: built without CUDA",
                             ctx->device);
#endif
    }
    ctx->state = st;
    return 0;
}

static void cosine_fini(ros_func_ctx *ctx)
{
    cosine_state *st = ctx->state;
    if (!st)
        return;
#ifdef ROSQL_HAVE_CUDA
    svc_cosine_gpu_close(st->gpu);
#endif
    free(st->ref);
    free(st->refnorm);
    free(st);
    ctx->state = NULL;
}

static int cosine_call(ros_func_ctx *ctx, const char *method, const ros_batch *args, ros_vector *out,
                       int64_t *err_row, ros_error *err)
{
    cosine_state *st = ctx->state;
    *err_row = -1;
    if (st->nref > 0)
        return call_refs(ctx, st, args, out, err_row, err);
    return call_pairs(ctx, st, args, out, err_row, err);
}

/* Floats in row i of a real[] column (its bytes / 4). */
static inline uint32_t row_floats(const ros_vector *v, uint32_t i)
{
    return (v->offsets[i + 1] - v->offsets[i]) / (uint32_t)sizeof(float);
}

/* Row i of a real[] column as floats (offsets are whole floats). */
static inline const float *row_data(const ros_vector *v, uint32_t i)
{
    return (const float *)(const void *)(v->data + v->offsets[i]);
}

/* Pairs mode: two real[] columns -> double precision. */
static int call_pairs(ros_func_ctx *ctx, cosine_state *st, const ros_batch *args, ros_vector *out,
                      int64_t *err_row, ros_error *err)
{
    static const ros_type takes[] = {ROS_TYPE_FLOAT32_ARRAY, ROS_TYPE_FLOAT32_ARRAY};
    uint32_t nrows = args->nrows;
    if (svc_check_args("cosine", args, takes, 2, err) < 0) {
        if (args->ncols == 1 && args->cols[0].type == ROS_TYPE_FLOAT32_ARRAY)
            ros_error_hint(err, "With one argument, set the option reference to a file of vectors.");
        return -1;
    }
    const ros_vector *a = &args->cols[0], *b = &args->cols[1];
    /* lengths first, so both paths fail the same way before computing */
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(a, i) || ros_vector_is_null(b, i))
            continue;
        uint32_t la = row_floats(a, i), lb = row_floats(b, i);
        if (la != lb) {
            *err_row = i;
            return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH,
                                 "builtin:cosine received vectors of different lengths in row %u: %u and %u", i,
                                 la, lb);
        }
    }
    ros_vector_init(out, ROS_TYPE_FLOAT64);
    if (ros_vector_resize_fixed(out, nrows) < 0) {
        ros_vector_free(out);
        return ros_error_oom(err);
    }
    double *res = ROS_VEC_F64(out);
#ifdef ROSQL_HAVE_CUDA
    if (st->gpu) {
        char msg[256] = "";
        if (svc_cosine_gpu_pairs(st->gpu, nrows, a->validity, a->offsets, a->data, b->validity, b->offsets,
                                 b->data, res, msg, sizeof msg) < 0) {
            ros_vector_free(out);
            return ros_error_set(err, ROS_ERR_EXTERNAL, "builtin:cosine failed on device %d: %s", ctx->device,
                                 msg);
        }
        for (uint32_t i = 0; i < nrows; i++)
            if (ros_vector_is_null(a, i) || ros_vector_is_null(b, i)) {
                ros_vector_set_valid(out, i, false);
                res[i] = 0;
            }
        return 0;
    }
#endif
    for (uint32_t i = 0; i < nrows; i++) {
        if (ros_vector_is_null(a, i) || ros_vector_is_null(b, i)) {
            ros_vector_set_valid(out, i, false);
            res[i] = 0;
            continue;
        }
        uint32_t n = row_floats(a, i);
        const float *x = row_data(a, i), *y = row_data(b, i);
        double dot = 0, na = 0, nb = 0;
        for (uint32_t k = 0; k < n; k++) {
            dot += (double)x[k] * (double)y[k];
            na += (double)x[k] * (double)x[k];
            nb += (double)y[k] * (double)y[k];
        }
        res[i] = cosine_of(dot, na, nb);
    }
    return 0;
}

/* Reference mode: one real[] column of dim floats -> real[] of nref. */
static int call_refs(ros_func_ctx *ctx, cosine_state *st, const ros_batch *args, ros_vector *out,
                     int64_t *err_row, ros_error *err)
{
    static const ros_type takes[] = {ROS_TYPE_FLOAT32_ARRAY};
    uint32_t nrows = args->nrows;
    if (svc_check_args("cosine", args, takes, 1, err) < 0) {
        ros_error_detail(err, "With the option reference, builtin:cosine takes one vector per row.");
        return -1;
    }
    const ros_vector *q = &args->cols[0];
    for (uint32_t i = 0; i < nrows; i++) {
        if (!ros_vector_is_null(q, i) && row_floats(q, i) != st->dim) {
            *err_row = i;
            return ros_error_set(err, ROS_ERR_DATATYPE_MISMATCH,
                                 "builtin:cosine received a vector of %u elements in row %u, the reference vectors have %u",
                                 row_floats(q, i), i, st->dim);
        }
    }
    uint32_t rowbytes = st->nref * (uint32_t)sizeof(float);
    if ((uint64_t)st->nref * sizeof(float) > UINT32_MAX)
        return ros_error_set(err, SVC_BUILTIN_ERR_PROGRAM_LIMIT, "too many reference vectors");
    if (svc_varlen_fixed_prepare(out, ROS_TYPE_FLOAT32_ARRAY, nrows, rowbytes, err) < 0)
        return -1;
    const float *gres = NULL; /* GPU path: nrows x nref results */
#ifdef ROSQL_HAVE_CUDA
    if (st->gpu) {
        char msg[256] = "";
        if (svc_cosine_gpu_refs(st->gpu, nrows, q->validity, q->offsets, q->data, &gres, msg, sizeof msg) < 0) {
            ros_vector_free(out);
            return ros_error_set(err, ROS_ERR_EXTERNAL, "builtin:cosine failed on device %d: %s", ctx->device,
                                 msg);
        }
    }
#endif
    for (uint32_t i = 0; i < nrows; i++) {
        uint32_t at = out->offsets[i];
        if (ros_vector_is_null(q, i)) {
            ros_vector_set_valid(out, i, false);
            out->offsets[i + 1] = at;
            continue;
        }
        float *r = (float *)(out->data + at);
        if (gres) {
            memcpy(r, gres + (size_t)i * st->nref, rowbytes);
        } else {
            const float *x = row_data(q, i);
            double nq = 0;
            for (uint32_t d = 0; d < st->dim; d++)
                nq += (double)x[d] * (double)x[d];
            for (uint32_t j = 0; j < st->nref; j++) {
                const float *w = st->ref + (size_t)j * st->dim;
                double dot = 0;
                for (uint32_t d = 0; d < st->dim; d++)
                    dot += (double)x[d] * (double)w[d];
                r[j] = (float)cosine_of(dot, nq, st->refnorm[j]);
            }
        }
        out->offsets[i + 1] = at + rowbytes;
    }
    out->len = nrows;
    out->data_len = out->offsets[nrows];
    return 0;
}

/* Pairs: two real[] columns of 4 rows of 4 floats; reference: one column
 * of 4 rows of dim floats. */
static int cosine_warmup_input(ros_func_ctx *ctx, ros_batch *args, ros_error *err)
{
    const cosine_state *st = ctx->state;
    static const ros_type types[] = {ROS_TYPE_FLOAT32_ARRAY, ROS_TYPE_FLOAT32_ARRAY};
    uint32_t ncols = st->nref > 0 ? 1 : 2;
    uint32_t dim = st->nref > 0 ? st->dim : 4;
    if (svc_batch_alloc(args, types, ncols, err) < 0)
        return -1;
    float *v = malloc((size_t)dim * sizeof *v);
    if (!v)
        return ros_error_oom(err);
    int rc = 0;
    for (uint32_t c = 0; c < ncols && rc == 0; c++)
        for (uint32_t i = 0; i < 4 && rc == 0; i++) {
            for (uint32_t d = 0; d < dim; d++)
                v[d] = (float)((d + i + c) % 5) - 1.5f;
            if (ros_vector_append_bytes(&args->cols[c], v, dim * (uint32_t)sizeof *v) < 0)
                rc = ros_error_oom(err);
        }
    free(v);
    if (rc == 0)
        args->nrows = 4;
    return rc;
}

const svc_builtin svc_builtin_cosine = {
    .name = "cosine",
    .init = cosine_init,
    .call = cosine_call,
    .fini = cosine_fini,
    .warmup_input = cosine_warmup_input,
#ifdef ROSQL_HAVE_CUDA
    .has_gpu = 1,
#else
    .has_gpu = 0,
#endif
};
