/*
 * cosine_cuda.cu
 *    The GPU path of builtin:cosine (see cosine.c).
 *
 * One instance owns one stream, the reference vectors (transposed, dim x
 * nref, so the threads of a block, one per reference, read consecutive
 * addresses) and their squared norms on its device, and pinned host plus
 * device buffers for a batch, grown as needed and kept between batches.
 * Per batch the host stages the rows into pinned memory, copies them in on
 * the stream, runs one block per row, copies the results back and
 * synchronises.  Sums run in double, as on the CPU; only their order
 * differs (block reductions), far below the 1e-5 the paths must agree to.
 */
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/builtin/gpu.h"

#define COSINE_THREADS 128 /* power of two: the reductions halve it */

struct svc_cosine_gpu {
    int device;
    cudaStream_t stream;
    /* reference mode */
    uint32_t nref, dim;
    float *d_refT;      /* dim x nref */
    double *d_refnorm;  /* nref squared norms */
    /* pairs mode buffers */
    size_t p_rows_cap, p_a_cap, p_b_cap; /* rows, floats of a, floats of b */
    float *h_a, *h_b, *d_a, *d_b;
    uint32_t *h_aoff, *h_boff, *h_len, *d_aoff, *d_boff, *d_len; /* rows each */
    double *h_res, *d_res;                                       /* rows */
    /* reference mode buffers */
    size_t r_rows_cap;
    float *h_q, *d_q;       /* rows x dim */
    float *h_qres, *d_qres; /* rows x nref */
};

static int cuda_fail(char *errbuf, size_t errlen, const char *what, cudaError_t e)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s: %s", what, cudaGetErrorString(e));
    return -1;
}

#define CUDA_TRY(call, what)                                                                       \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return cuda_fail(errbuf, errlen, (what), e_);                                          \
    } while (0)

/* Frees a pinned and a device buffer and clears both pointers. */
template <typename T> static void free_pair(T **h, T **d)
{
    if (*h)
        cudaFreeHost(*h);
    if (*d)
        cudaFree(*d);
    *h = NULL;
    *d = NULL;
}

/* Allocates n elements of pinned and device memory. */
template <typename T> static cudaError_t alloc_pair(T **h, T **d, size_t n)
{
    if (n == 0)
        n = 1;
    cudaError_t e = cudaHostAlloc((void **)h, n * sizeof(T), cudaHostAllocDefault);
    if (e == cudaSuccess)
        e = cudaMalloc((void **)d, n * sizeof(T));
    return e;
}

/* Grows a capacity to at least need, at least doubling. */
static size_t grow(size_t cap, size_t need)
{
    size_t c = cap * 2;
    return c > need ? c : need;
}

/* ---------------------------------------------------------------- */
/* Kernels */

/* As cosine.c's cosine_of: 0 for a zero vector, clamped to [-1, 1]. */
__device__ static double cosine_of(double dot, double na, double nb)
{
    if (!(na > 0.0) || !(nb > 0.0))
        return 0.0;
    double r = dot / (sqrt(na) * sqrt(nb));
    return r > 1.0 ? 1.0 : (r < -1.0 ? -1.0 : r);
}

/* One block per row: res[row] = cosine of a's and b's row (len floats). */
static __global__ void cosine_pairs_kernel(const float *__restrict__ a, const uint32_t *__restrict__ aoff,
                                    const float *__restrict__ b, const uint32_t *__restrict__ boff,
                                    const uint32_t *__restrict__ len, double *__restrict__ res)
{
    __shared__ double sdot[COSINE_THREADS], sna[COSINE_THREADS], snb[COSINE_THREADS];
    uint32_t row = blockIdx.x;
    const float *x = a + aoff[row];
    const float *y = b + boff[row];
    uint32_t n = len[row];
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (uint32_t k = threadIdx.x; k < n; k += blockDim.x) {
        double u = (double)x[k], v = (double)y[k];
        dot += u * v;
        na += u * u;
        nb += v * v;
    }
    sdot[threadIdx.x] = dot;
    sna[threadIdx.x] = na;
    snb[threadIdx.x] = nb;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) {
            sdot[threadIdx.x] += sdot[threadIdx.x + stride];
            sna[threadIdx.x] += sna[threadIdx.x + stride];
            snb[threadIdx.x] += snb[threadIdx.x + stride];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        res[row] = cosine_of(sdot[0], sna[0], snb[0]);
}

/*
 * One block per query row: the query's squared norm by block reduction,
 * then one thread per reference vector j computes the dot product over dim
 * in order and res[row][j].
 */
static __global__ void cosine_refs_kernel(const float *__restrict__ q, const float *__restrict__ refT,
                                   const double *__restrict__ refnorm, uint32_t nref, uint32_t dim,
                                   float *__restrict__ res)
{
    __shared__ double part[COSINE_THREADS];
    const float *x = q + (size_t)blockIdx.x * dim;
    double s = 0.0;
    for (uint32_t d = threadIdx.x; d < dim; d += blockDim.x) {
        double v = (double)x[d];
        s += v * v;
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride)
            part[threadIdx.x] += part[threadIdx.x + stride];
        __syncthreads();
    }
    double nq = part[0];
    float *out = res + (size_t)blockIdx.x * nref;
    for (uint32_t j = threadIdx.x; j < nref; j += blockDim.x) {
        double dot = 0.0;
        for (uint32_t d = 0; d < dim; d++)
            dot += (double)x[d] * (double)refT[(size_t)d * nref + j];
        out[j] = (float)cosine_of(dot, nq, refnorm[j]);
    }
}

/* ---------------------------------------------------------------- */
/* Entry points */

extern "C" void svc_cosine_gpu_close(svc_cosine_gpu *g)
{
    if (!g)
        return;
    cudaSetDevice(g->device);
    if (g->stream)
        cudaStreamSynchronize(g->stream);
    free_pair(&g->h_a, &g->d_a);
    free_pair(&g->h_b, &g->d_b);
    free_pair(&g->h_aoff, &g->d_aoff);
    free_pair(&g->h_boff, &g->d_boff);
    free_pair(&g->h_len, &g->d_len);
    free_pair(&g->h_res, &g->d_res);
    free_pair(&g->h_q, &g->d_q);
    free_pair(&g->h_qres, &g->d_qres);
    if (g->d_refT)
        cudaFree(g->d_refT);
    if (g->d_refnorm)
        cudaFree(g->d_refnorm);
    if (g->stream)
        cudaStreamDestroy(g->stream);
    free(g);
}

extern "C" int svc_cosine_gpu_open(int device, const float *ref, const double *refnorm, uint32_t nref,
                                   uint32_t dim, svc_cosine_gpu **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    svc_cosine_gpu *g = (svc_cosine_gpu *)calloc(1, sizeof *g);
    if (!g) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    g->device = device;
    g->nref = nref;
    g->dim = dim;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess && nref > 0) {
        size_t n = (size_t)nref * dim;
        float *t = (float *)malloc(n * sizeof(float));
        if (!t) {
            snprintf(errbuf, errlen, "out of memory");
            svc_cosine_gpu_close(g);
            return -1;
        }
        for (uint32_t j = 0; j < nref; j++)
            for (uint32_t d = 0; d < dim; d++)
                t[(size_t)d * nref + j] = ref[(size_t)j * dim + d];
        e = cudaMalloc((void **)&g->d_refT, n * sizeof(float));
        if (e == cudaSuccess)
            e = cudaMemcpy(g->d_refT, t, n * sizeof(float), cudaMemcpyHostToDevice);
        free(t);
        if (e == cudaSuccess)
            e = cudaMalloc((void **)&g->d_refnorm, nref * sizeof(double));
        if (e == cudaSuccess)
            e = cudaMemcpy(g->d_refnorm, refnorm, nref * sizeof(double), cudaMemcpyHostToDevice);
    }
    if (e != cudaSuccess) {
        cuda_fail(errbuf, errlen, "could not upload the reference vectors", e);
        svc_cosine_gpu_close(g);
        return -1;
    }
    *out = g;
    return 0;
}

extern "C" int svc_cosine_gpu_pairs(svc_cosine_gpu *g, uint32_t nrows, const uint8_t *avalid,
                                    const uint32_t *aoff, const uint8_t *adata, const uint8_t *bvalid,
                                    const uint32_t *boff, const uint8_t *bdata, double *res, char *errbuf,
                                    size_t errlen)
{
    if (nrows == 0)
        return 0;
    CUDA_TRY(cudaSetDevice(g->device), "could not select the device");
    size_t na = (aoff[nrows] - aoff[0]) / sizeof(float);
    size_t nb = (boff[nrows] - boff[0]) / sizeof(float);
    if (nrows > g->p_rows_cap) {
        size_t c = grow(g->p_rows_cap, nrows);
        free_pair(&g->h_aoff, &g->d_aoff);
        free_pair(&g->h_boff, &g->d_boff);
        free_pair(&g->h_len, &g->d_len);
        free_pair(&g->h_res, &g->d_res);
        g->p_rows_cap = 0;
        CUDA_TRY(alloc_pair(&g->h_aoff, &g->d_aoff, c), "could not allocate batch buffers");
        CUDA_TRY(alloc_pair(&g->h_boff, &g->d_boff, c), "could not allocate batch buffers");
        CUDA_TRY(alloc_pair(&g->h_len, &g->d_len, c), "could not allocate batch buffers");
        CUDA_TRY(alloc_pair(&g->h_res, &g->d_res, c), "could not allocate batch buffers");
        g->p_rows_cap = c;
    }
    if (na > g->p_a_cap || !g->h_a) {
        size_t c = grow(g->p_a_cap, na);
        free_pair(&g->h_a, &g->d_a);
        g->p_a_cap = 0;
        CUDA_TRY(alloc_pair(&g->h_a, &g->d_a, c), "could not allocate batch buffers");
        g->p_a_cap = c;
    }
    if (nb > g->p_b_cap || !g->h_b) {
        size_t c = grow(g->p_b_cap, nb);
        free_pair(&g->h_b, &g->d_b);
        g->p_b_cap = 0;
        CUDA_TRY(alloc_pair(&g->h_b, &g->d_b, c), "could not allocate batch buffers");
        g->p_b_cap = c;
    }
    /* stage: data as whole buffers, offsets in floats, lengths 0 where a
     * row is NULL on either side */
    if (na)
        memcpy(g->h_a, adata + aoff[0], na * sizeof(float));
    if (nb)
        memcpy(g->h_b, bdata + boff[0], nb * sizeof(float));
    for (uint32_t i = 0; i < nrows; i++) {
        int anull = avalid && !(avalid[i >> 3] & (1u << (i & 7)));
        int bnull = bvalid && !(bvalid[i >> 3] & (1u << (i & 7)));
        g->h_aoff[i] = (uint32_t)((aoff[i] - aoff[0]) / sizeof(float));
        g->h_boff[i] = (uint32_t)((boff[i] - boff[0]) / sizeof(float));
        g->h_len[i] = (anull || bnull) ? 0 : (uint32_t)((aoff[i + 1] - aoff[i]) / sizeof(float));
    }
    cudaStream_t s = g->stream;
    if (na)
        CUDA_TRY(cudaMemcpyAsync(g->d_a, g->h_a, na * sizeof(float), cudaMemcpyHostToDevice, s),
                 "could not copy the batch to the device");
    if (nb)
        CUDA_TRY(cudaMemcpyAsync(g->d_b, g->h_b, nb * sizeof(float), cudaMemcpyHostToDevice, s),
                 "could not copy the batch to the device");
    CUDA_TRY(cudaMemcpyAsync(g->d_aoff, g->h_aoff, nrows * sizeof(uint32_t), cudaMemcpyHostToDevice, s),
             "could not copy the batch to the device");
    CUDA_TRY(cudaMemcpyAsync(g->d_boff, g->h_boff, nrows * sizeof(uint32_t), cudaMemcpyHostToDevice, s),
             "could not copy the batch to the device");
    CUDA_TRY(cudaMemcpyAsync(g->d_len, g->h_len, nrows * sizeof(uint32_t), cudaMemcpyHostToDevice, s),
             "could not copy the batch to the device");
    cosine_pairs_kernel<<<nrows, COSINE_THREADS, 0, s>>>(g->d_a, g->d_aoff, g->d_b, g->d_boff, g->d_len,
                                                        g->d_res);
    CUDA_TRY(cudaGetLastError(), "could not launch the kernel");
    CUDA_TRY(cudaMemcpyAsync(g->h_res, g->d_res, nrows * sizeof(double), cudaMemcpyDeviceToHost, s),
             "could not copy the results from the device");
    CUDA_TRY(cudaStreamSynchronize(s), "cosine on the device failed");
    memcpy(res, g->h_res, nrows * sizeof(double));
    return 0;
}

extern "C" int svc_cosine_gpu_refs(svc_cosine_gpu *g, uint32_t nrows, const uint8_t *valid,
                                   const uint32_t *off, const uint8_t *data, const float **res, char *errbuf,
                                   size_t errlen)
{
    *res = g->h_qres;
    if (nrows == 0)
        return 0;
    if (g->nref == 0) {
        snprintf(errbuf, errlen, "no reference vectors were loaded");
        return -1;
    }
    CUDA_TRY(cudaSetDevice(g->device), "could not select the device");
    if (nrows > g->r_rows_cap) {
        size_t c = grow(g->r_rows_cap, nrows);
        free_pair(&g->h_q, &g->d_q);
        free_pair(&g->h_qres, &g->d_qres);
        g->r_rows_cap = 0;
        CUDA_TRY(alloc_pair(&g->h_q, &g->d_q, c * g->dim), "could not allocate batch buffers");
        CUDA_TRY(alloc_pair(&g->h_qres, &g->d_qres, c * g->nref), "could not allocate batch buffers");
        g->r_rows_cap = c;
    }
    size_t rowbytes = (size_t)g->dim * sizeof(float);
    for (uint32_t i = 0; i < nrows; i++) {
        float *dst = g->h_q + (size_t)i * g->dim;
        if (valid && !(valid[i >> 3] & (1u << (i & 7))))
            memset(dst, 0, rowbytes);
        else
            memcpy(dst, data + off[i], rowbytes);
    }
    cudaStream_t s = g->stream;
    CUDA_TRY(cudaMemcpyAsync(g->d_q, g->h_q, nrows * rowbytes, cudaMemcpyHostToDevice, s),
             "could not copy the batch to the device");
    cosine_refs_kernel<<<nrows, COSINE_THREADS, 0, s>>>(g->d_q, g->d_refT, g->d_refnorm, g->nref, g->dim,
                                                       g->d_qres);
    CUDA_TRY(cudaGetLastError(), "could not launch the kernel");
    CUDA_TRY(cudaMemcpyAsync(g->h_qres, g->d_qres, (size_t)nrows * g->nref * sizeof(float),
                             cudaMemcpyDeviceToHost, s),
             "could not copy the results from the device");
    CUDA_TRY(cudaStreamSynchronize(s), "cosine on the device failed");
    *res = g->h_qres;
    return 0;
}
