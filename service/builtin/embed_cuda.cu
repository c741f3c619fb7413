/*
 * embed_cuda.cu
 *    The GPU path of builtin:embed (see embed.c for the model), and the
 *    device count of svc_gpu_count.
 *
 * One instance owns: W on its device (uploaded once at open), one stream,
 * and pinned host buffers plus device buffers for the CSR of a batch and its
 * results, grown as needed and kept between batches.  Per batch: the host
 * has hashed the rows into the pinned CSR (embed.c); we copy it in on the
 * stream, run one block per row to project (threads over dim, features in
 * the CSR's ascending order, float multiply and add kept separate so the
 * sum rounds as the CPU's does), a second kernel L2-normalises each row with
 * a block reduction in double, copy the results back and synchronise.
 *
 * Every entry point selects the instance's device first: the worker may call
 * from another thread than the one that opened it.
 */
#include <cuda_runtime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/builtin/gpu.h"

#define EMBED_THREADS_MAX 256

struct svc_embed_gpu {
    int device;
    uint32_t dim;
    uint32_t nfeat;
    cudaStream_t stream;
    float *d_W;         /* nfeat x dim */
    /* capacities, in rows and CSR entries */
    size_t rows_cap;
    size_t nnz_cap;
    /* pinned host buffers */
    uint32_t *h_rowoff; /* rows_cap + 1 */
    uint32_t *h_feat;   /* nnz_cap */
    float *h_cnt;       /* nnz_cap */
    float *h_y;         /* rows_cap x dim */
    /* device buffers of the same sizes */
    uint32_t *d_rowoff;
    uint32_t *d_feat;
    float *d_cnt;
    float *d_y;
};

/* Records "what: cuda error text" in errbuf; returns -1. */
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

extern "C" int svc_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n < 0 ? 0 : n;
}

/* ---------------------------------------------------------------- */
/* Kernels */

/*
 * y[row][d] = sum over the row's CSR entries k (ascending features) of
 * cnt[k] * W[feat[k]][d], accumulated in float from 0 without FMA
 * contraction, as embed.c's project_row does.  One block per row.
 */
static __global__ void embed_project_kernel(const uint32_t *__restrict__ rowoff,
                                     const uint32_t *__restrict__ feat,
                                     const float *__restrict__ cnt, const float *__restrict__ W,
                                     uint32_t dim, float *__restrict__ y)
{
    uint32_t row = blockIdx.x;
    uint32_t b = rowoff[row], e = rowoff[row + 1];
    float *yr = y + (size_t)row * dim;
    for (uint32_t d = threadIdx.x; d < dim; d += blockDim.x) {
        float acc = 0.0f;
        for (uint32_t k = b; k < e; k++)
            acc = __fadd_rn(acc, __fmul_rn(cnt[k], W[(size_t)feat[k] * dim + d]));
        yr[d] = acc;
    }
}

/*
 * Divides each row of y by its L2 norm (sum of squares in double, block
 * reduction); an all-zero row stays zero.  One block per row; blockDim.x is
 * a power of two and the dynamic shared memory holds blockDim.x doubles.
 */
static __global__ void embed_normalise_kernel(float *__restrict__ y, uint32_t dim)
{
    extern __shared__ double part[];
    float *yr = y + (size_t)blockIdx.x * dim;
    double s = 0.0;
    for (uint32_t d = threadIdx.x; d < dim; d += blockDim.x) {
        double v = (double)yr[d];
        s += v * v;
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride)
            part[threadIdx.x] += part[threadIdx.x + stride];
        __syncthreads();
    }
    double ss = part[0];
    if (ss > 0.0) {
        double norm = sqrt(ss);
        for (uint32_t d = threadIdx.x; d < dim; d += blockDim.x)
            yr[d] = (float)((double)yr[d] / norm);
    }
}

/* ---------------------------------------------------------------- */
/* Buffers */

static void free_batch_buffers(svc_embed_gpu *g)
{
    if (g->h_rowoff)
        cudaFreeHost(g->h_rowoff);
    if (g->h_feat)
        cudaFreeHost(g->h_feat);
    if (g->h_cnt)
        cudaFreeHost(g->h_cnt);
    if (g->h_y)
        cudaFreeHost(g->h_y);
    if (g->d_rowoff)
        cudaFree(g->d_rowoff);
    if (g->d_feat)
        cudaFree(g->d_feat);
    if (g->d_cnt)
        cudaFree(g->d_cnt);
    if (g->d_y)
        cudaFree(g->d_y);
    g->h_rowoff = NULL;
    g->h_feat = NULL;
    g->h_cnt = NULL;
    g->h_y = NULL;
    g->d_rowoff = NULL;
    g->d_feat = NULL;
    g->d_cnt = NULL;
    g->d_y = NULL;
    g->rows_cap = 0;
    g->nnz_cap = 0;
}

extern "C" void svc_embed_gpu_close(svc_embed_gpu *g)
{
    if (!g)
        return;
    cudaSetDevice(g->device);
    if (g->stream)
        cudaStreamSynchronize(g->stream);
    free_batch_buffers(g);
    if (g->d_W)
        cudaFree(g->d_W);
    if (g->stream)
        cudaStreamDestroy(g->stream);
    free(g);
}

extern "C" int svc_embed_gpu_open(int device, const float *W, uint32_t nfeat, uint32_t dim,
                                  svc_embed_gpu **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    svc_embed_gpu *g = (svc_embed_gpu *)calloc(1, sizeof *g);
    if (!g) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    g->device = device;
    g->dim = dim;
    g->nfeat = nfeat;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        e = cudaMalloc((void **)&g->d_W, (size_t)nfeat * dim * sizeof(float));
    if (e == cudaSuccess)
        e = cudaMemcpy(g->d_W, W, (size_t)nfeat * dim * sizeof(float), cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        cuda_fail(errbuf, errlen, "could not upload the model", e);
        svc_embed_gpu_close(g);
        return -1;
    }
    *out = g;
    return 0;
}

extern "C" int svc_embed_gpu_reserve(svc_embed_gpu *g, uint32_t nrows, uint32_t nnz, uint32_t **rowoff,
                                     uint32_t **feat, float **cnt, char *errbuf, size_t errlen)
{
    CUDA_TRY(cudaSetDevice(g->device), "could not select the device");
    size_t need_rows = nrows ? nrows : 1, need_nnz = nnz ? nnz : 1;
    if (need_rows > g->rows_cap || need_nnz > g->nnz_cap || !g->h_rowoff) {
        /* nothing to keep: the caller fills the buffers after this */
        size_t rows = g->rows_cap > need_rows ? g->rows_cap : need_rows;
        size_t ents = g->nnz_cap > need_nnz ? g->nnz_cap : need_nnz;
        if (need_rows > g->rows_cap && rows < 2 * g->rows_cap)
            rows = 2 * g->rows_cap;
        if (need_nnz > g->nnz_cap && ents < 2 * g->nnz_cap)
            ents = 2 * g->nnz_cap;
        free_batch_buffers(g);
        size_t ybytes = rows * g->dim * sizeof(float);
        CUDA_TRY(cudaHostAlloc((void **)&g->h_rowoff, (rows + 1) * sizeof(uint32_t), cudaHostAllocDefault),
                 "could not allocate pinned memory");
        CUDA_TRY(cudaHostAlloc((void **)&g->h_feat, ents * sizeof(uint32_t), cudaHostAllocDefault),
                 "could not allocate pinned memory");
        CUDA_TRY(cudaHostAlloc((void **)&g->h_cnt, ents * sizeof(float), cudaHostAllocDefault),
                 "could not allocate pinned memory");
        CUDA_TRY(cudaHostAlloc((void **)&g->h_y, ybytes, cudaHostAllocDefault),
                 "could not allocate pinned memory");
        CUDA_TRY(cudaMalloc((void **)&g->d_rowoff, (rows + 1) * sizeof(uint32_t)),
                 "could not allocate device memory");
        CUDA_TRY(cudaMalloc((void **)&g->d_feat, ents * sizeof(uint32_t)), "could not allocate device memory");
        CUDA_TRY(cudaMalloc((void **)&g->d_cnt, ents * sizeof(float)), "could not allocate device memory");
        CUDA_TRY(cudaMalloc((void **)&g->d_y, ybytes), "could not allocate device memory");
        g->rows_cap = rows;
        g->nnz_cap = ents;
    }
    *rowoff = g->h_rowoff;
    *feat = g->h_feat;
    *cnt = g->h_cnt;
    return 0;
}

extern "C" int svc_embed_gpu_run(svc_embed_gpu *g, uint32_t nrows, const float **y, char *errbuf,
                                 size_t errlen)
{
    *y = g->h_y;
    if (nrows == 0)
        return 0;
    if (nrows > g->rows_cap) {
        snprintf(errbuf, errlen, "batch of %u rows exceeds the reserved %zu", nrows, g->rows_cap);
        return -1;
    }
    CUDA_TRY(cudaSetDevice(g->device), "could not select the device");
    uint32_t nnz = g->h_rowoff[nrows];
    CUDA_TRY(cudaMemcpyAsync(g->d_rowoff, g->h_rowoff, ((size_t)nrows + 1) * sizeof(uint32_t),
                             cudaMemcpyHostToDevice, g->stream),
             "could not copy the batch to the device");
    if (nnz > 0) {
        CUDA_TRY(cudaMemcpyAsync(g->d_feat, g->h_feat, (size_t)nnz * sizeof(uint32_t), cudaMemcpyHostToDevice,
                                 g->stream),
                 "could not copy the batch to the device");
        CUDA_TRY(cudaMemcpyAsync(g->d_cnt, g->h_cnt, (size_t)nnz * sizeof(float), cudaMemcpyHostToDevice,
                                 g->stream),
                 "could not copy the batch to the device");
    }
    unsigned threads = 32;
    while (threads < g->dim && threads < EMBED_THREADS_MAX)
        threads *= 2;
    embed_project_kernel<<<nrows, threads, 0, g->stream>>>(g->d_rowoff, g->d_feat, g->d_cnt, g->d_W, g->dim,
                                                          g->d_y);
    CUDA_TRY(cudaGetLastError(), "could not launch the projection");
    embed_normalise_kernel<<<nrows, threads, threads * sizeof(double), g->stream>>>(g->d_y, g->dim);
    CUDA_TRY(cudaGetLastError(), "could not launch the normalisation");
    CUDA_TRY(cudaMemcpyAsync(g->h_y, g->d_y, (size_t)nrows * g->dim * sizeof(float), cudaMemcpyDeviceToHost,
                             g->stream),
             "could not copy the results from the device");
    CUDA_TRY(cudaStreamSynchronize(g->stream), "embedding on the device failed");
    return 0;
}
