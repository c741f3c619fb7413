/*
 * gpu.h
 *    The CUDA side of the built-ins (embed_cuda.cu, cosine_cuda.cu), as plain C entry points.
 *
 * Compiled only where nvcc is found (ROSQL_HAVE_CUDA); the C files call these
 * inside #ifdef ROSQL_HAVE_CUDA.  Every function that can fail returns 0, or
 * -1 with a message (lowercase, no full stop) in errbuf.  Pointers to
 * device state are opaque to the C side.
 */
#ifndef SVC_BUILTIN_GPU_H
#define SVC_BUILTIN_GPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CUDA devices visible (cudaGetDeviceCount), 0 on any error. */
int svc_cuda_device_count(void);

/* ---------------------------------------------------------------- */
/* embed (embed_cuda.cu) */

typedef struct svc_embed_gpu svc_embed_gpu;

/*
 * Selects device, uploads W (nfeat x dim floats, row-major: W[f * dim + d])
 * and creates the instance's stream.  *out is NULL on failure.
 */
int svc_embed_gpu_open(int device, const float *W, uint32_t nfeat, uint32_t dim,
                       svc_embed_gpu **out, char *errbuf, size_t errlen);

/*
 * Ensures the pinned host CSR buffers hold nrows rows and nnz entries and
 * returns them: rowoff (nrows + 1 entries), feat (nnz), cnt (nnz).  The
 * pointers stay valid until the next reserve or close.
 */
int svc_embed_gpu_reserve(svc_embed_gpu *g, uint32_t nrows, uint32_t nnz, uint32_t **rowoff,
                          uint32_t **feat, float **cnt, char *errbuf, size_t errlen);

/*
 * Computes the nrows x dim normalised embeddings of the CSR in the reserved
 * buffers (rowoff[nrows] entries in all) and sets *y to a pinned host array
 * holding them, row after row (valid until the next call or close).
 */
int svc_embed_gpu_run(svc_embed_gpu *g, uint32_t nrows, const float **y, char *errbuf,
                      size_t errlen);

/* Frees the device buffers, pinned buffers and stream.  Safe on NULL. */
void svc_embed_gpu_close(svc_embed_gpu *g);

/* ---------------------------------------------------------------- */
/* cosine (cosine_cuda.cu) */

typedef struct svc_cosine_gpu svc_cosine_gpu;

/*
 * Selects device and creates the instance's stream; with nref > 0 also
 * uploads the reference vectors (ref: nref x dim floats, row-major) and
 * their squared norms (refnorm: nref doubles).  *out is NULL on failure.
 */
int svc_cosine_gpu_open(int device, const float *ref, const double *refnorm, uint32_t nref,
                        uint32_t dim, svc_cosine_gpu **out, char *errbuf, size_t errlen);

/*
 * Pairs mode: res[i] = cosine(a_i, b_i) for nrows rows of two real[] columns
 * given by their validity bitmaps (NULL = no NULLs), offsets (bytes, nrows +
 * 1) and data.  The caller has checked that non-NULL pairs have equal
 * lengths; res of a row with a NULL is unspecified.  res has nrows entries.
 */
int svc_cosine_gpu_pairs(svc_cosine_gpu *g, uint32_t nrows, const uint8_t *avalid,
                         const uint32_t *aoff, const uint8_t *adata, const uint8_t *bvalid,
                         const uint32_t *boff, const uint8_t *bdata, double *res, char *errbuf,
                         size_t errlen);

/*
 * Reference mode: for nrows rows of a real[] column (validity, byte offsets,
 * data; every non-NULL row holds dim floats) sets *res to a pinned array of
 * nrows x nref floats, the similarity of each row to each reference vector
 * (rows that are NULL: unspecified), valid until the next call or close.
 */
int svc_cosine_gpu_refs(svc_cosine_gpu *g, uint32_t nrows, const uint8_t *valid,
                        const uint32_t *off, const uint8_t *data, const float **res, char *errbuf,
                        size_t errlen);

/* Frees everything of g.  Safe on NULL. */
void svc_cosine_gpu_close(svc_cosine_gpu *g);

#ifdef __cplusplus
}
#endif

#endif /* SVC_BUILTIN_GPU_H */
