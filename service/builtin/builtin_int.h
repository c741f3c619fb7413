/*
 * builtin_int.h
 *    What the built-in handlers share: their descriptors, option parsing,
 *    column copying and argument checks (builtin/common.c).
 *
 * Not part of the handler interface: only service/builtin/ and
 * service/handler.c include this.
 */
#ifndef SVC_BUILTIN_INT_H
#define SVC_BUILTIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rosql/udf.h>
#include <rosql/vector.h>

#include "runtime/core/error.h"
#include "service/builtin/builtin.h"

/* SQLSTATE of a result too large for one column (as the wire frame's). */
#define SVC_BUILTIN_ERR_PROGRAM_LIMIT "54000"

/* The descriptors, one file each; builtin.c lists them. */
extern const svc_builtin svc_builtin_echo;
extern const svc_builtin svc_builtin_delay;
extern const svc_builtin svc_builtin_embed;
extern const svc_builtin svc_builtin_cosine;

/* Warm-up input of echo and delay: one bigint column of 4 rows. */
int svc_echo_warmup_input(ros_func_ctx *ctx, ros_batch *args, ros_error *err);

/* ---------------------------------------------------------------- */
/* Options ("key=value\n" text) */

/*
 * Finds key in options (NULL or "" = none).  Keys and values are trimmed of
 * blanks and a value wrapped in single or double quotes loses them; when a key
 * appears twice the last one wins.  Returns true and copies the value,
 * NUL-terminated, into buf (cut to size - 1 bytes) when found; false and
 * buf = "" otherwise.
 */
bool svc_opt_get(const char *options, const char *key, char *buf, size_t size);

/*
 * Reads option key as a finite number in [min, max] (strtod syntax), or def
 * when absent.  Returns 0, or -1 with err set (ROS_ERR_INVALID_PARAMETER
 * naming the option and its value) and *out unchanged.
 */
int svc_opt_double(const char *options, const char *key, double def, double min, double max,
                   double *out, ros_error *err);

/*
 * Reads option key as a decimal integer in [min, max] (no sign, fraction or
 * trailing garbage), or def when absent.  Same failure as svc_opt_double.
 */
int svc_opt_u64(const char *options, const char *key, uint64_t def, uint64_t min, uint64_t max,
                uint64_t *out, ros_error *err);

/* ---------------------------------------------------------------- */
/* Columns */

/*
 * Copies rows [0, nrows) of src into out (zeroed or empty on entry, of any
 * type; it takes src's type) with one memcpy per buffer.  src must hold at
 * least nrows rows.  Returns 0, or -1 with err set (out of memory, a column
 * shorter than the batch, too much data) and out freed.
 */
int svc_vector_copy(ros_vector *out, const ros_vector *src, uint32_t nrows, ros_error *err);

/*
 * Checks that args has exactly ntypes columns of the given types, each at
 * least args->nrows rows long.  Returns 0, or -1 with err set:
 * ROS_ERR_DATATYPE_MISMATCH `builtin:NAME takes (t1, t2), received (...)`.
 */
int svc_check_args(const char *name, const ros_batch *args, const ros_type *types, int ntypes,
                   ros_error *err);

/* Writes "(t1, t2)" for types into buf. */
void svc_types_text(char *buf, size_t size, const ros_type *types, int ntypes);

/* Writes "(t1, t2)" for the column types of args into buf. */
void svc_batch_types_text(char *buf, size_t size, const ros_batch *args);

/* Allocates a batch of ncols empty columns of the given types.  Returns 0 or
 * -1 with err set (out of memory) and args left empty. */
int svc_batch_alloc(ros_batch *args, const ros_type *types, uint32_t ncols, ros_error *err);

/*
 * Prepares a varlen column (real[] in practice) for nrows rows whose non-NULL
 * rows are each rowbytes long: validity (all valid), nrows + 1 offsets and
 * nrows * rowbytes bytes of data allocated, len and data_len 0.  The caller
 * writes row i at data + offsets[i] and sets offsets[i + 1] (equal to
 * offsets[i] for a NULL row, whose validity bit it clears), then sets len and
 * data_len.  Returns 0 or -1 with err set (out of memory, or more than 4 GiB
 * of data: SVC_BUILTIN_ERR_PROGRAM_LIMIT) and out freed.
 */
int svc_varlen_fixed_prepare(ros_vector *out, ros_type type, uint32_t nrows, uint32_t rowbytes,
                             ros_error *err);

#endif /* SVC_BUILTIN_INT_H */
