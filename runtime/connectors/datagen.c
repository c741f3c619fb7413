/*
 * datagen.c
 *    The datagen connector: deterministic generated rows, bounded (rows = N)
 *    or unbounded, optionally rate limited, with a generator per column.
 *
 * Every value is a pure function of (seed, column index, row number): a
 * column's key is hashed from the seed and its index, and row r's value
 * comes from splitmix64(key + r * golden).  The same row therefore has the
 * same values whatever the batch sizes, the projection, or a seek, which is
 * what makes checkpoints and comparisons with other engines exact.
 *
 * Values are generated straight into the vectors, one tight loop per column
 * and type, with no per-row allocation or formatting: this source is on the
 * benchmark path.
 */
#include "runtime/connectors/connector_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "runtime/core/types.h"

#define DG_GOLDEN 0x9E3779B97F4A7C15ull   /* splitmix64 increment */
#define DG_CHUNK 0xD1B54A32D192ED03ull    /* step between a row's extra words */
#define DG_MAX_LENGTH (1u << 20)          /* longest text / bytea value */
#define DG_MAX_DIM 65536                  /* most real[] elements */
#define DG_MAX_BATCH_BYTES (256u << 20)   /* varlen bytes per column and batch */
#define DG_MAX_SLEEP 0.002                /* longest wait inside next(), seconds */

static const char dg_valid_options[] =
    "rows, rows_per_second, seed, fields.<column>.kind, fields.<column>.start, fields.<column>.end, "
    "fields.<column>.min, fields.<column>.max, fields.<column>.length, fields.<column>.dim, "
    "fields.<column>.null_rate";

typedef enum dg_kind { DG_SEQUENCE, DG_RANDOM } dg_kind;

/* The generator of one column. */
typedef struct dg_field {
    ros_type type;          /* column type */
    dg_kind kind;           /* sequence or random */
    int64_t istart, iend;   /* integer sequence: first and last value */
    double dstart, dend;    /* float sequence: first and last value */
    bool has_end;           /* an end was given */
    int64_t imin, imax;     /* random integers: inclusive range */
    double dmin, dmax;      /* random floats and real[] elements: [min, max) */
    uint32_t length;        /* text / bytea: bytes per value */
    uint32_t dim;           /* real[]: elements per value */
    double null_rate;       /* fraction of NULL rows */
    uint64_t null_thresh;   /* a row is NULL when its null hash is below */
    bool all_null;          /* null_rate == 1 */
    uint64_t key;           /* value hash key */
    uint64_t null_key;      /* NULL decision hash key */
} dg_field;

/* Indexes into dg_field.given, in dg_subkeys order. */
enum { DG_K_KIND, DG_K_START, DG_K_END, DG_K_MIN, DG_K_MAX, DG_K_LENGTH, DG_K_DIM, DG_K_NULL_RATE, DG_K_COUNT };
static const char *const dg_subkeys[DG_K_COUNT] = {"kind", "start", "end", "min", "max", "length", "dim", "null_rate"};

/* Parsed options of a datagen table. */
typedef struct dg_config {
    int64_t total;          /* rows to produce; -1: unbounded */
    bool unbounded;         /* no rows option and no sequence end */
    double rate;            /* rows per second; 0: unlimited */
    uint64_t seed;
    int ncols;
    dg_field *fields;       /* one per table column */
} dg_config;

typedef struct dg_source {
    rt_source base;
    dg_config cfg;
    int nproj;              /* projected columns */
    int *proj;              /* their table column indexes */
    ros_type *ptypes;       /* their types */
    int64_t row;            /* next row number */
    bool rate_started;      /* the rate clock runs */
    double rate_t0;         /* clock at rate_row0 */
    int64_t rate_row0;      /* row number when the clock started */
} dg_source;

static inline uint64_t dg_mix(uint64_t z);
static inline uint64_t dg_hash(uint64_t key, int64_t row);
static int dg_config_parse(const cat_table *t, dg_config *cfg, ros_error *err);
static int dg_field_option(const cat_table *t, dg_config *cfg, const char *key, const char *value, bool kinds_only,
                           ros_error *err);
static int dg_not_applicable(const char *key, const char *col, const char *detail, ros_error *err);
static int dg_finish(const cat_table *t, dg_config *cfg, ros_error *err);
static void dg_int_range(ros_type t, int64_t *lo, int64_t *hi);
static double dg_now(void);

static int dg_next(rt_source *src, ros_batch *out, uint32_t max_rows, ros_error *err);
static int64_t dg_offset(rt_source *src);
static int dg_seek(rt_source *src, int64_t off, ros_error *err);
static void dg_close(rt_source *src);
static int dg_fill(const dg_field *f, ros_vector *v, int64_t r0, uint32_t n);
static void dg_fill_nulls_fixed(const dg_field *f, ros_vector *v, int64_t r0, uint32_t n);

static const rt_source_ops dg_source_ops = {dg_next, dg_offset, dg_seek, dg_close};

/* ================================================================== */
/* Hashing */

/* splitmix64's finaliser: a bijective, well-mixing 64-bit hash. */
static inline uint64_t dg_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The hash of row `row` in the stream of `key`. */
static inline uint64_t dg_hash(uint64_t key, int64_t row)
{
    return dg_mix(key + (uint64_t)row * DG_GOLDEN);
}

/* ================================================================== */
/* Options */

static void dg_int_range(ros_type t, int64_t *lo, int64_t *hi)
{
    switch (t) {
    case ROS_TYPE_INT16: *lo = INT16_MIN; *hi = INT16_MAX; return;
    case ROS_TYPE_INT32: *lo = INT32_MIN; *hi = INT32_MAX; return;
    default: *lo = INT64_MIN; *hi = INT64_MAX; return;
    }
}

static int dg_not_applicable(const char *key, const char *col, const char *detail, ros_error *err)
{
    ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "option \"%s\" does not apply to column \"%s\"", key, col);
    ros_error_detail(err, "%s", detail);
    return -1;
}

/*
 * Handles one fields.<col>.<sub> option.  With kinds_only, only `kind` is
 * applied (a first pass, so other options can check the kind whatever the
 * order they were written in); the other pass applies the rest.  Returns 0
 * or -1 with err naming the option.
 */
static int dg_field_option(const cat_table *t, dg_config *cfg, const char *key, const char *value, bool kinds_only,
                           ros_error *err)
{
    const char *rest = key + strlen("fields.");
    const char *dot = strrchr(rest, '.');
    if (!dot || dot == rest || dot[1] == '\0')
        return rt_opt_unknown("datagen", key, dg_valid_options, err);
    size_t clen = (size_t)(dot - rest);
    const char *sub = dot + 1;
    int k = 0;
    while (k < DG_K_COUNT && strcmp(sub, dg_subkeys[k]) != 0)
        k++;
    if (k == DG_K_COUNT)
        return rt_opt_unknown("datagen", key, dg_valid_options, err);
    int c = 0;
    while (c < t->ncols && !(strlen(t->cols[c].name) == clen && memcmp(t->cols[c].name, rest, clen) == 0))
        c++;
    if (c == t->ncols) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "column \"%.*s\" named in option \"%s\" does not exist",
                      (int)clen, rest, key);
        ros_error_detail(err, "Table \"%s\" has no column \"%.*s\".", t->name, (int)clen, rest);
        return -1;
    }
    dg_field *f = &cfg->fields[c];
    const char *col = t->cols[c].name;
    const char *tname = ros_type_name(f->type);
    bool integer = ros_type_is_integer(f->type);
    bool numeric = ros_type_is_numeric(f->type);
    char detail[256];
    if (kinds_only != (k == DG_K_KIND))
        return 0;
    switch (k) {
    case DG_K_KIND:
        if (strcasecmp(value, "sequence") == 0) {
            if (!numeric)
                return rt_opt_invalid(key, value, err,
                                      "Column \"%s\" has type %s; kind 'sequence' needs a numeric column.", col, tname);
            f->kind = DG_SEQUENCE;
        } else if (strcasecmp(value, "random") == 0) {
            f->kind = DG_RANDOM;
        } else {
            return rt_opt_invalid(key, value, err, "Valid kinds are 'sequence' and 'random'.");
        }
        return 0;
    case DG_K_START:
    case DG_K_END:
        if (f->kind != DG_SEQUENCE) {
            snprintf(detail, sizeof detail, "Options start and end apply to columns of kind 'sequence'; \"%s\" is "
                     "of kind 'random'.", col);
            return dg_not_applicable(key, col, detail, err);
        }
        if (integer) {
            int64_t lo, hi, x;
            dg_int_range(f->type, &lo, &hi);
            if (rt_opt_int(key, value, lo, hi, &x, err) < 0)
                return -1;
            if (k == DG_K_START)
                f->istart = x;
            else
                f->iend = x, f->has_end = true;
        } else {
            double x;
            if (rt_opt_double(key, value, -1e300, 1e300, &x, err) < 0)
                return -1;
            if (k == DG_K_START)
                f->dstart = x;
            else
                f->dend = x, f->has_end = true;
        }
        return 0;
    case DG_K_MIN:
    case DG_K_MAX:
        if (f->kind != DG_RANDOM || !(numeric || f->type == ROS_TYPE_FLOAT32_ARRAY)) {
            snprintf(detail, sizeof detail, "Options min and max apply to random numeric and real[] columns; "
                     "\"%s\" is %s of type %s.", col, f->kind == DG_SEQUENCE ? "a sequence" : "random", tname);
            return dg_not_applicable(key, col, detail, err);
        }
        if (integer) {
            int64_t lo, hi, x;
            dg_int_range(f->type, &lo, &hi);
            if (rt_opt_int(key, value, lo, hi, &x, err) < 0)
                return -1;
            if (k == DG_K_MIN)
                f->imin = x;
            else
                f->imax = x;
        } else {
            double x;
            double lim = f->type == ROS_TYPE_FLOAT64 ? 1e300 : 3e38;
            if (rt_opt_double(key, value, -lim, lim, &x, err) < 0)
                return -1;
            if (k == DG_K_MIN)
                f->dmin = x;
            else
                f->dmax = x;
        }
        return 0;
    case DG_K_LENGTH: {
        if (f->type != ROS_TYPE_TEXT && f->type != ROS_TYPE_BYTEA) {
            snprintf(detail, sizeof detail, "Option length applies to text and bytea columns; \"%s\" has type %s.",
                     col, tname);
            return dg_not_applicable(key, col, detail, err);
        }
        int64_t x;
        if (rt_opt_int(key, value, 0, DG_MAX_LENGTH, &x, err) < 0)
            return -1;
        f->length = (uint32_t)x;
        return 0;
    }
    case DG_K_DIM: {
        if (f->type != ROS_TYPE_FLOAT32_ARRAY) {
            snprintf(detail, sizeof detail, "Option dim applies to real[] columns; \"%s\" has type %s.", col, tname);
            return dg_not_applicable(key, col, detail, err);
        }
        int64_t x;
        if (rt_opt_int(key, value, 0, DG_MAX_DIM, &x, err) < 0)
            return -1;
        f->dim = (uint32_t)x;
        return 0;
    }
    case DG_K_NULL_RATE:
        if (rt_opt_double(key, value, 0, 1, &f->null_rate, err) < 0)
            return -1;
        if (f->null_rate > 0 && t->cols[c].not_null) {
            ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "option \"%s\" must be 0 for NOT NULL column \"%s\"", key,
                          col);
            return -1;
        }
        return 0;
    }
    return 0;
}

/* Cross-option checks, hash keys and the row count.  Returns 0 or -1. */
static int dg_finish(const cat_table *t, dg_config *cfg, ros_error *err)
{
    bool any_end = false;
    uint64_t limit = cfg->total >= 0 ? (uint64_t)cfg->total : UINT64_MAX;
    uint64_t seedkey = dg_mix(cfg->seed ^ 0xA0761D6478BD642Full);
    for (int c = 0; c < cfg->ncols; c++) {
        dg_field *f = &cfg->fields[c];
        const char *col = t->cols[c].name;
        if (f->kind == DG_SEQUENCE && ros_type_is_integer(f->type)) {
            int64_t lo, hi;
            dg_int_range(f->type, &lo, &hi);
            if (f->has_end && f->iend < f->istart) {
                ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                              "option \"fields.%s.end\" must not be less than option \"fields.%s.start\"", col, col);
                return -1;
            }
            /* A sequence without end stops at the type's largest value. */
            uint64_t count = (uint64_t)(f->has_end ? f->iend : hi) - (uint64_t)f->istart + 1;
            if (count != 0 && count < limit) /* count == 0: the whole int64 range */
                limit = count;
        } else if (f->kind == DG_SEQUENCE) {
            if (f->has_end) {
                if (f->dend < f->dstart) {
                    ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                                  "option \"fields.%s.end\" must not be less than option \"fields.%s.start\"", col,
                                  col);
                    return -1;
                }
                double count = floor(f->dend - f->dstart) + 1;
                if (count < (double)limit)
                    limit = (uint64_t)count;
            }
        } else if (ros_type_is_integer(f->type) ? f->imin > f->imax : f->dmin > f->dmax) {
            ros_error_set(err, ROS_ERR_INVALID_PARAMETER,
                          "option \"fields.%s.min\" must not be greater than option \"fields.%s.max\"", col, col);
            return -1;
        }
        any_end = any_end || (f->kind == DG_SEQUENCE && f->has_end);
        f->all_null = f->null_rate >= 1.0;
        f->null_thresh = f->all_null ? UINT64_MAX : (uint64_t)(f->null_rate * 18446744073709551616.0);
        f->key = dg_mix(seedkey + (uint64_t)(c + 1) * DG_CHUNK);
        f->null_key = dg_mix(f->key ^ 0xE7037ED1A0B428DBull);
    }
    cfg->unbounded = cfg->total < 0 && !any_end;
    cfg->total = limit > (uint64_t)INT64_MAX ? (cfg->unbounded ? -1 : INT64_MAX) : (int64_t)limit;
    return 0;
}

/*
 * Parses t's options into cfg.  Returns 0, or -1 with err naming the
 * offending option (cfg->fields is then freed).
 */
static int dg_config_parse(const cat_table *t, dg_config *cfg, ros_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->total = -1;
    cfg->ncols = t->ncols;
    cfg->fields = calloc((size_t)(t->ncols ? t->ncols : 1), sizeof *cfg->fields);
    if (!cfg->fields)
        return ros_error_oom(err);
    for (int c = 0; c < t->ncols; c++) {
        dg_field *f = &cfg->fields[c];
        f->type = t->cols[c].type;
        f->kind = ros_type_is_integer(f->type) ? DG_SEQUENCE : DG_RANDOM;
        f->istart = 1;
        f->dstart = 1;
        dg_int_range(f->type, &f->imin, &f->imax);
        f->dmin = 0;
        f->dmax = 1;
        f->length = 10;
        f->dim = 8;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < t->options.n; i++) {
            const char *k = t->options.items[i].key;
            const char *v = t->options.items[i].value ? t->options.items[i].value : "";
            if (rt_opt_is_connector_key(k))
                continue;
            if (strncmp(k, "fields.", 7) == 0) {
                if (dg_field_option(t, cfg, k, v, pass == 0, err) < 0)
                    goto fail;
                continue;
            }
            if (pass == 1)
                continue;
            if (strcmp(k, "rows") == 0) {
                if (rt_opt_int(k, v, 0, INT64_MAX, &cfg->total, err) < 0)
                    goto fail;
            } else if (strcmp(k, "rows_per_second") == 0) {
                if (rt_opt_double(k, v, 0, 1e12, &cfg->rate, err) < 0)
                    goto fail;
                if (cfg->rate <= 0) {
                    rt_opt_invalid(k, v, err, "Option \"%s\" must be greater than zero.", k);
                    goto fail;
                }
            } else if (strcmp(k, "seed") == 0) {
                int64_t s;
                if (rt_opt_int(k, v, INT64_MIN, INT64_MAX, &s, err) < 0)
                    goto fail;
                cfg->seed = (uint64_t)s;
            } else {
                rt_opt_unknown("datagen", k, dg_valid_options, err);
                goto fail;
            }
        }
    }
    if (dg_finish(t, cfg, err) < 0)
        goto fail;
    return 0;
fail:
    free(cfg->fields);
    cfg->fields = NULL;
    return -1;
}

int rt_datagen_validate(cat_db *db, const cat_table *t, ros_error *err)
{
    dg_config cfg;
    if (dg_config_parse(t, &cfg, err) < 0)
        return -1;
    free(cfg.fields);
    return 0;
}

/* ================================================================== */
/* Source */

rt_source *rt_datagen_source_open(cat_db *db, const cat_table *t, const rt_source_opts *opts, ros_error *err)
{
    dg_source *ds = calloc(1, sizeof *ds);
    if (!ds) {
        ros_error_oom(err);
        return NULL;
    }
    ds->base.ops = &dg_source_ops;
    if (dg_config_parse(t, &ds->cfg, err) < 0) {
        free(ds);
        return NULL;
    }
    ds->base.unbounded = ds->cfg.unbounded;
    ds->nproj = opts ? opts->nproj : t->ncols;
    ds->proj = malloc(sizeof *ds->proj * (size_t)(ds->nproj ? ds->nproj : 1));
    ds->ptypes = malloc(sizeof *ds->ptypes * (size_t)(ds->nproj ? ds->nproj : 1));
    if (!ds->proj || !ds->ptypes) {
        ros_error_oom(err);
        dg_close(&ds->base);
        return NULL;
    }
    for (int i = 0; i < ds->nproj; i++) {
        ds->proj[i] = opts ? opts->proj[i] : i;
        ds->ptypes[i] = t->cols[ds->proj[i]].type;
    }
    return &ds->base;
}

static void dg_close(rt_source *src)
{
    dg_source *ds = (dg_source *)src;
    if (!ds)
        return;
    free(ds->cfg.fields);
    free(ds->proj);
    free(ds->ptypes);
    free(ds);
}

static int64_t dg_offset(rt_source *src)
{
    return ((dg_source *)src)->row;
}

static int dg_seek(rt_source *src, int64_t off, ros_error *err)
{
    dg_source *ds = (dg_source *)src;
    if (off < 0)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid datagen offset %lld", (long long)off);
    ds->row = off;
    ds->rate_started = false;
    return 0;
}

static double dg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Clears the validity of the NULL rows of a fixed-width vector (values 0). */
static void dg_fill_nulls_fixed(const dg_field *f, ros_vector *v, int64_t r0, uint32_t n)
{
    size_t w = ros_type_width(v->type);
    for (uint32_t i = 0; i < n; i++) {
        if (f->all_null || dg_hash(f->null_key, r0 + i) < f->null_thresh) {
            v->validity[i >> 3] &= (uint8_t)~(1u << (i & 7));
            memset((uint8_t *)v->values + (size_t)i * w, 0, w);
        }
    }
}

/* Generates rows [r0, r0 + n) of field f into v (empty, of f's type).
 * Returns 0 or -1 on allocation failure. */
static int dg_fill(const dg_field *f, ros_vector *v, int64_t r0, uint32_t n)
{
    const uint64_t key = f->key;
    if (!ros_type_is_varlen(v->type)) {
        if (ros_vector_resize_fixed(v, n) < 0)
            return -1;
        uint64_t span = (uint64_t)f->imax - (uint64_t)f->imin + 1; /* 0: the full 64-bit range */
        double dspan = f->dmax - f->dmin;
        bool dsplit = !isfinite(dspan);
        switch (v->type) {
        case ROS_TYPE_BOOL: {
            uint8_t *o = ROS_VEC_BOOL(v);
            for (uint32_t i = 0; i < n; i++)
                o[i] = (uint8_t)(dg_hash(key, r0 + i) >> 63);
            break;
        }
#define DG_INT_LOOP(T, o)                                                                          \
    do {                                                                                           \
        if (f->kind == DG_SEQUENCE) {                                                              \
            int64_t base = f->istart + r0;                                                         \
            for (uint32_t i = 0; i < n; i++)                                                       \
                (o)[i] = (T)(base + (int64_t)i);                                                   \
        } else if (span == 0) {                                                                    \
            for (uint32_t i = 0; i < n; i++)                                                       \
                (o)[i] = (T)dg_hash(key, r0 + i);                                                  \
        } else {                                                                                   \
            for (uint32_t i = 0; i < n; i++)                                                       \
                (o)[i] = (T)(f->imin + (int64_t)(((unsigned __int128)dg_hash(key, r0 + i) * span) >> 64)); \
        }                                                                                          \
    } while (0)
        case ROS_TYPE_INT16: DG_INT_LOOP(int16_t, ROS_VEC_I16(v)); break;
        case ROS_TYPE_INT32: DG_INT_LOOP(int32_t, ROS_VEC_I32(v)); break;
        case ROS_TYPE_INT64: DG_INT_LOOP(int64_t, ROS_VEC_I64(v)); break;
#undef DG_INT_LOOP
        case ROS_TYPE_FLOAT32: {
            float *o = ROS_VEC_F32(v);
            float lo = (float)f->dmin, hi = (float)f->dmax;
            if (f->kind == DG_SEQUENCE) {
                for (uint32_t i = 0; i < n; i++)
                    o[i] = (float)(f->dstart + (double)(r0 + i));
                break;
            }
            for (uint32_t i = 0; i < n; i++) {
                double u = (double)(dg_hash(key, r0 + i) >> 11) * 0x1.0p-53;
                float x = (float)(dsplit ? f->dmin * (1 - u) + f->dmax * u : f->dmin + u * dspan);
                o[i] = x < lo ? lo : x > hi ? hi : x;
            }
            break;
        }
        case ROS_TYPE_FLOAT64: {
            double *o = ROS_VEC_F64(v);
            if (f->kind == DG_SEQUENCE) {
                for (uint32_t i = 0; i < n; i++)
                    o[i] = f->dstart + (double)(r0 + i);
                break;
            }
            for (uint32_t i = 0; i < n; i++) {
                double u = (double)(dg_hash(key, r0 + i) >> 11) * 0x1.0p-53;
                o[i] = dsplit ? f->dmin * (1 - u) + f->dmax * u : f->dmin + u * dspan;
            }
            break;
        }
        default:
            return -1;
        }
        if (f->null_rate > 0)
            dg_fill_nulls_fixed(f, v, r0, n);
        return 0;
    }

    /* Variable width: fixed bytes per non-NULL row. */
    uint32_t rowbytes = v->type == ROS_TYPE_FLOAT32_ARRAY ? f->dim * 4 : f->length;
    if (ros_vector_reserve(v, n) < 0 || ros_vector_reserve_data(v, rowbytes * n + 1) < 0)
        return -1;
    uint8_t *d = v->data;
    uint32_t *off = v->offsets;
    uint32_t pos = 0;
    double dspan = f->dmax - f->dmin;
    for (uint32_t i = 0; i < n; i++) {
        int64_t r = r0 + i;
        if (f->null_rate > 0 && (f->all_null || dg_hash(f->null_key, r) < f->null_thresh)) {
            v->validity[i >> 3] &= (uint8_t)~(1u << (i & 7));
            off[i + 1] = pos;
            continue;
        }
        uint64_t s = dg_hash(key, r);
        uint8_t *p = d + pos;
        if (v->type == ROS_TYPE_TEXT) {
            /* 12 letters per 64-bit word: each multiply by 26 takes the next
             * base-26 digit off the top. */
            for (uint32_t j = 0, w = 0; j < rowbytes; w++) {
                uint64_t u = dg_mix(s + w * DG_CHUNK);
                for (int l = 0; l < 12 && j < rowbytes; l++, j++) {
                    unsigned __int128 m = (unsigned __int128)u * 26;
                    p[j] = (uint8_t)('a' + (unsigned)(m >> 64));
                    u = (uint64_t)m;
                }
            }
        } else if (v->type == ROS_TYPE_BYTEA) {
            for (uint32_t j = 0, w = 0; j < rowbytes; w++) {
                uint64_t u = dg_mix(s + w * DG_CHUNK);
                for (int l = 0; l < 8 && j < rowbytes; l++, j++, u >>= 8)
                    p[j] = (uint8_t)u;
            }
        } else {
            float lo = (float)f->dmin, hi = (float)f->dmax;
            for (uint32_t e = 0; e < f->dim; e++) {
                uint64_t u = dg_mix(s + (e >> 1) * DG_CHUNK);
                uint32_t bits = (e & 1) ? (uint32_t)u : (uint32_t)(u >> 32);
                double fr = (double)(bits >> 8) * 0x1.0p-24;
                float x = (float)(f->dmin + fr * dspan);
                x = x < lo ? lo : x > hi ? hi : x;
                memcpy(p + 4 * e, &x, 4);
            }
        }
        pos += rowbytes;
        off[i + 1] = pos;
    }
    v->len = n;
    v->data_len = pos;
    return 0;
}

static int dg_next(rt_source *src, ros_batch *out, uint32_t max_rows, ros_error *err)
{
    dg_source *ds = (dg_source *)src;
    const dg_config *cfg = &ds->cfg;
    if (rt_batch_prepare(out, ds->nproj, ds->ptypes, err) < 0)
        return -1;
    if (max_rows == 0)
        max_rows = RT_DEFAULT_BATCH;
    uint64_t n = max_rows;
    if (cfg->total >= 0) {
        if (ds->row >= cfg->total)
            return 0;
        if ((uint64_t)(cfg->total - ds->row) < n)
            n = (uint64_t)(cfg->total - ds->row);
    } else if (ds->row > INT64_MAX - (int64_t)n) {
        return 0; /* row numbers exhausted */
    }
    /* Keep each varlen column's bytes per batch bounded. */
    for (int j = 0; j < ds->nproj; j++) {
        const dg_field *f = &cfg->fields[ds->proj[j]];
        uint64_t rb = f->type == ROS_TYPE_FLOAT32_ARRAY ? (uint64_t)f->dim * 4
                      : (f->type == ROS_TYPE_TEXT || f->type == ROS_TYPE_BYTEA) ? f->length : 0;
        if (rb && n * rb > DG_MAX_BATCH_BYTES)
            n = DG_MAX_BATCH_BYTES / rb ? DG_MAX_BATCH_BYTES / rb : 1;
    }
    if (cfg->rate > 0) {
        double now = dg_now();
        if (!ds->rate_started) {
            ds->rate_started = true;
            ds->rate_t0 = now;
            ds->rate_row0 = ds->row;
        }
        /* Row k after the clock started is due at k / rate. */
        double due = (double)(ds->row - ds->rate_row0) / cfg->rate;
        double wait = due - (now - ds->rate_t0);
        if (wait > DG_MAX_SLEEP)
            return 2;
        if (wait > 0) {
            struct timespec ts = {0, (long)(wait * 1e9) + 1};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
            now = dg_now();
        }
        double allowed = floor((now - ds->rate_t0) * cfg->rate) + 1 - (double)(ds->row - ds->rate_row0);
        if (allowed < 1)
            allowed = 1;
        if (allowed < (double)n)
            n = (uint64_t)allowed;
    }
    for (int j = 0; j < ds->nproj; j++) {
        if (dg_fill(&cfg->fields[ds->proj[j]], &out->cols[j], ds->row, (uint32_t)n) < 0)
            return ros_error_oom(err);
    }
    out->nrows = (uint32_t)n;
    ds->row += (int64_t)n;
    return 1;
}
