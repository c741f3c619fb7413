/*
 * file.c
 *    The file connector: a table stored as CSV or as JSON lines in one file,
 *    read as a bounded source or followed as a stream (mode 'tail'), and
 *    appended to by a sink.
 *
 * CSV follows PostgreSQL's COPY ... CSV: RFC 4180 quoting, an unquoted field
 * equal to null_string (default: empty) is NULL, a quoted one never is.
 * JSON lines hold one object per line whose keys are column names; a
 * missing key is NULL.  Offsets are byte offsets after the last record
 * consumed; the source reads through its own buffer so they are exact, and
 * in tail mode a last line without its newline is left for a later call.
 *
 * The sink buffers rows in memory, writes them past 1 MiB and at commit
 * (then fsyncs); abort truncates the file back to its size at the last
 * commit, so aborted rows never stay in the file.
 */
#include "runtime/connectors/connector_int.h"
#include "runtime/core/textin.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/connectors/json.h"
#include "runtime/core/types.h"

#define FILE_READ_CHUNK 65536
#define FILE_SINK_FLUSH (1u << 20)

static const char file_valid_options[] = "path, format, header, delimiter, null_string, mode";

/* Parsed options of a file table. */
typedef struct file_cfg {
    char *path;            /* file path (malloc'd) */
    bool json;             /* format 'json' (else 'csv') */
    bool header;           /* CSV: first line holds column names */
    char delim;            /* CSV field delimiter */
    char *null_string;     /* CSV text of NULL (malloc'd, "" by default) */
    size_t null_len;       /* its length */
    bool tail;             /* mode 'tail' */
} file_cfg;

/* A CSV field of the current record. */
typedef struct csv_field {
    size_t off;            /* start in the record or in scratch */
    size_t len;            /* length */
    bool quoted;           /* had quotes (then never NULL) */
    bool in_scratch;       /* unescaped copy lives in scratch */
} csv_field;

/* The columns of a table, copied so that a source or sink does not depend
 * on the cat_table staying alive. */
typedef struct file_cols {
    int n;
    char **names;
    ros_type *types;
    bool *not_null;
} file_cols;

typedef struct file_source {
    rt_source base;
    file_cfg cfg;
    file_cols cols;
    int nproj;             /* projected columns */
    int *proj;             /* their table column indexes */
    ros_type *ptypes;      /* their types */
    int fd;
    /* read buffer: buf[start, end) not yet consumed; buf[0] is at file
     * offset buf_off */
    char *buf;
    size_t cap, start, end;
    int64_t buf_off;
    int64_t line;          /* line number of the record at buf[start] */
    bool bom_pending;      /* at offset 0: a UTF-8 byte order mark may follow */
    bool header_pending;   /* at offset 0 of a CSV file with a header line */
    /* scanning state of a record that is not complete yet */
    size_t scan;           /* bytes after start already scanned */
    bool scan_quote;       /* CSV: inside quotes there */
    int64_t scan_lines;    /* newlines seen inside quotes */
    /* current record */
    int64_t rec_line;      /* its first line */
    ros_strbuf scratch;    /* unescaped CSV fields, decoded JSON strings */
    csv_field *fields;
    int fields_cap;
    rt_json_value *slots;  /* JSON: the value of each table column */
    uint32_t *slot_gen;    /* slot valid when equal to gen */
    uint32_t gen;
} file_source;

typedef struct file_sink {
    rt_sink base;
    file_cfg cfg;
    file_cols cols;
    char *table;           /* table name, for messages */
    char **json_keys;      /* "\"name\":" per column, JSON escaped */
    int fd;
    ros_strbuf buf;        /* rows not yet written to the file */
    ros_strbuf tmp;        /* one formatted value */
    int64_t size;          /* file size including written, uncommitted rows */
    int64_t committed;     /* file size at the last commit */
    bool prepared;         /* header / line fix-up done since the last commit */
} file_sink;

/* Callback state of one JSON record. */
typedef struct json_ctx {
    file_source *fs;
} json_ctx;

static int file_cfg_parse(const cat_table *t, file_cfg *cfg, ros_error *err);
static void file_cfg_free(file_cfg *cfg);
static int file_cols_copy(file_cols *dst, const cat_table *t);
static void file_cols_free(file_cols *c);
static int file_open_error(const char *path, bool writing, ros_error *err);

static int fsrc_next(rt_source *src, ros_batch *out, uint32_t max_rows, ros_error *err);
static int64_t fsrc_offset(rt_source *src);
static int fsrc_seek(rt_source *src, int64_t off, ros_error *err);
static void fsrc_close(rt_source *src);
static ssize_t fsrc_refill(file_source *fs, ros_error *err);
static int fsrc_record(file_source *fs, const char **rec, size_t *len, ros_error *err);
static int fsrc_csv_row(file_source *fs, const char *rec, size_t n, ros_batch *out, ros_error *err);
static int fsrc_json_row(file_source *fs, const char *rec, size_t n, ros_batch *out, ros_error *err);
static int fsrc_json_member(void *arg, const char *key, size_t keylen, const rt_json_value *v);
static int fsrc_value_error(file_source *fs, int col, ros_error *err);

static int fsink_write(rt_sink *sink, const ros_batch *b, ros_error *err);
static int fsink_commit(rt_sink *sink, ros_error *err);
static void fsink_abort(rt_sink *sink);
static void fsink_close(rt_sink *sink);
static int fsink_flush(file_sink *fk, ros_error *err);
static int fsink_prepare(file_sink *fk, ros_error *err);
static void fsink_csv_put(file_sink *fk, const char *s, size_t n);
static void fsink_json_value(file_sink *fk, const ros_vector *v, uint32_t i);

static const rt_source_ops file_source_ops = {fsrc_next, fsrc_offset, fsrc_seek, fsrc_close};
static const rt_sink_ops file_sink_ops = {fsink_write, fsink_commit, fsink_abort, fsink_close};

/* ================================================================== */
/* Options */

/*
 * Parses t's options into cfg (zeroed first).  Returns 0, or -1 with err
 * naming the offending option; cfg is then freed.
 */
static int file_cfg_parse(const cat_table *t, file_cfg *cfg, ros_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->delim = ',';
    const char *csv_only = NULL;
    for (int i = 0; i < t->options.n; i++) {
        const char *k = t->options.items[i].key;
        const char *v = t->options.items[i].value ? t->options.items[i].value : "";
        if (rt_opt_is_connector_key(k))
            continue;
        if (strcmp(k, "path") == 0) {
            if (v[0] == '\0') {
                rt_opt_invalid(k, v, err, "The path must not be empty.");
                goto fail;
            }
            free(cfg->path);
            if (!(cfg->path = strdup(v)))
                goto oom;
        } else if (strcmp(k, "format") == 0) {
            if (strcasecmp(v, "csv") == 0)
                cfg->json = false;
            else if (strcasecmp(v, "json") == 0)
                cfg->json = true;
            else {
                rt_opt_invalid(k, v, err, "Valid formats are 'csv' and 'json'.");
                goto fail;
            }
        } else if (strcmp(k, "header") == 0) {
            if (rt_opt_bool(k, v, &cfg->header, err) < 0)
                goto fail;
            csv_only = "header";
        } else if (strcmp(k, "delimiter") == 0) {
            if (strlen(v) != 1 || v[0] == '"' || v[0] == '\n' || v[0] == '\r') {
                rt_opt_invalid(k, v, err, "The delimiter must be a single character other than a quote or newline.");
                goto fail;
            }
            cfg->delim = v[0];
            csv_only = "delimiter";
        } else if (strcmp(k, "null_string") == 0) {
            if (strchr(v, '\n') || strchr(v, '\r') || strchr(v, '"')) {
                rt_opt_invalid(k, v, err, "The null string must not contain quotes or newlines.");
                goto fail;
            }
            free(cfg->null_string);
            if (!(cfg->null_string = strdup(v)))
                goto oom;
            csv_only = "null_string";
        } else if (strcmp(k, "mode") == 0) {
            if (rt_opt_mode(k, v, &cfg->tail, err) < 0)
                goto fail;
        } else {
            rt_opt_unknown("file", k, file_valid_options, err);
            goto fail;
        }
    }
    if (!cfg->path) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "option \"path\" is required for connector \"file\"");
        goto fail;
    }
    if (cfg->json && csv_only) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "option \"%s\" is only valid with format 'csv'", csv_only);
        goto fail;
    }
    if (!cfg->null_string && !(cfg->null_string = strdup("")))
        goto oom;
    cfg->null_len = strlen(cfg->null_string);
    if (cfg->null_len == 1 && cfg->null_string[0] == cfg->delim) {
        ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "option \"null_string\" must not be the delimiter");
        goto fail;
    }
    return 0;
oom:
    ros_error_oom(err);
fail:
    file_cfg_free(cfg);
    return -1;
}

static void file_cfg_free(file_cfg *cfg)
{
    free(cfg->path);
    free(cfg->null_string);
    memset(cfg, 0, sizeof *cfg);
}

static int file_cols_copy(file_cols *dst, const cat_table *t)
{
    memset(dst, 0, sizeof *dst);
    int n = t->ncols;
    dst->names = calloc((size_t)(n ? n : 1), sizeof *dst->names);
    dst->types = calloc((size_t)(n ? n : 1), sizeof *dst->types);
    dst->not_null = calloc((size_t)(n ? n : 1), sizeof *dst->not_null);
    if (!dst->names || !dst->types || !dst->not_null)
        goto fail;
    dst->n = n;
    for (int i = 0; i < n; i++) {
        if (!(dst->names[i] = strdup(t->cols[i].name ? t->cols[i].name : "")))
            goto fail;
        dst->types[i] = t->cols[i].type;
        dst->not_null[i] = t->cols[i].not_null;
    }
    return 0;
fail:
    dst->n = n;
    file_cols_free(dst);
    return -1;
}

static void file_cols_free(file_cols *c)
{
    for (int i = 0; c->names && i < c->n; i++)
        free(c->names[i]);
    free(c->names);
    free(c->types);
    free(c->not_null);
    memset(c, 0, sizeof *c);
}

/* Records the error of a failed open(2) of path; returns -1. */
static int file_open_error(const char *path, bool writing, ros_error *err)
{
    int e = errno;
    ros_error_set(err, e == ENOENT ? ROS_ERR_UNDEFINED_FILE : ROS_ERR_IO, "could not open file \"%s\"%s: %s", path,
                  writing ? " for writing" : "", strerror(e));
    return -1;
}

int rt_file_validate(cat_db *db, const cat_table *t, ros_error *err)
{
    file_cfg cfg;
    if (file_cfg_parse(t, &cfg, err) < 0)
        return -1;
    file_cfg_free(&cfg);
    return 0;
}

/* ================================================================== */
/* Source */

rt_source *rt_file_source_open(cat_db *db, const cat_table *t, const rt_source_opts *opts, ros_error *err)
{
    file_source *fs = calloc(1, sizeof *fs);
    if (!fs) {
        ros_error_oom(err);
        return NULL;
    }
    fs->fd = -1;
    fs->base.ops = &file_source_ops;
    ros_strbuf_init(&fs->scratch);
    if (file_cfg_parse(t, &fs->cfg, err) < 0)
        goto fail;
    if (file_cols_copy(&fs->cols, t) < 0)
        goto oom;
    fs->nproj = opts ? opts->nproj : t->ncols;
    int ncols = t->ncols ? t->ncols : 1;
    fs->proj = malloc(sizeof *fs->proj * (size_t)(fs->nproj ? fs->nproj : 1));
    fs->ptypes = malloc(sizeof *fs->ptypes * (size_t)(fs->nproj ? fs->nproj : 1));
    fs->slots = calloc((size_t)ncols, sizeof *fs->slots);
    fs->slot_gen = calloc((size_t)ncols, sizeof *fs->slot_gen);
    fs->cap = FILE_READ_CHUNK;
    fs->buf = malloc(fs->cap);
    if (!fs->proj || !fs->ptypes || !fs->slots || !fs->slot_gen || !fs->buf)
        goto oom;
    for (int i = 0; i < fs->nproj; i++) {
        fs->proj[i] = opts ? opts->proj[i] : i;
        fs->ptypes[i] = t->cols[fs->proj[i]].type;
    }
    fs->base.unbounded = fs->cfg.tail || (opts && opts->tail);
    fs->cfg.tail = fs->base.unbounded;
    fs->fd = open(fs->cfg.path, O_RDONLY | O_CLOEXEC);
    if (fs->fd < 0) {
        file_open_error(fs->cfg.path, false, err);
        goto fail;
    }
    struct stat st;
    if (fstat(fs->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        ros_error_set(err, ROS_ERR_IO, "could not open file \"%s\": Is a directory", fs->cfg.path);
        goto fail;
    }
    fs->line = 1;
    fs->bom_pending = true;
    fs->header_pending = fs->cfg.header && !fs->cfg.json;
    fs->gen = 1;
    return &fs->base;
oom:
    ros_error_oom(err);
fail:
    fsrc_close(&fs->base);
    return NULL;
}

static void fsrc_close(rt_source *src)
{
    file_source *fs = (file_source *)src;
    if (!fs)
        return;
    if (fs->fd >= 0)
        close(fs->fd);
    file_cfg_free(&fs->cfg);
    file_cols_free(&fs->cols);
    free(fs->proj);
    free(fs->ptypes);
    free(fs->slots);
    free(fs->slot_gen);
    free(fs->fields);
    free(fs->buf);
    ros_strbuf_free(&fs->scratch);
    free(fs);
}

static int64_t fsrc_offset(rt_source *src)
{
    file_source *fs = (file_source *)src;
    return fs->buf_off + (int64_t)fs->start;
}

static int fsrc_seek(rt_source *src, int64_t off, ros_error *err)
{
    file_source *fs = (file_source *)src;
    if (off < 0)
        return ros_error_set(err, ROS_ERR_INVALID_PARAMETER, "invalid offset %lld for file \"%s\"", (long long)off,
                             fs->cfg.path);
    /* Count the lines before off so that messages keep true line numbers. */
    int64_t lines = 1, pos = 0;
    while (pos < off) {
        size_t want = (size_t)(off - pos) < fs->cap ? (size_t)(off - pos) : fs->cap;
        ssize_t r = pread(fs->fd, fs->buf, want, pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ros_error_set(err, ROS_ERR_IO, "could not read file \"%s\": %s", fs->cfg.path, strerror(errno));
        if (r == 0)
            break;
        for (const char *p = fs->buf, *e = fs->buf + r; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
            lines++;
        pos += r;
    }
    if (lseek(fs->fd, off, SEEK_SET) < 0)
        return ros_error_set(err, ROS_ERR_IO, "could not seek in file \"%s\": %s", fs->cfg.path, strerror(errno));
    fs->start = fs->end = 0;
    fs->buf_off = off;
    fs->line = lines;
    fs->bom_pending = off == 0;
    fs->header_pending = off == 0 && fs->cfg.header && !fs->cfg.json;
    fs->scan = 0;
    fs->scan_quote = false;
    fs->scan_lines = 0;
    return 0;
}

/* Reads more of the file into the buffer (compacting or growing it first).
 * Returns the bytes read, 0 at the end of the file, -1 with err set. */
static ssize_t fsrc_refill(file_source *fs, ros_error *err)
{
    if (fs->start > 0) {
        memmove(fs->buf, fs->buf + fs->start, fs->end - fs->start);
        fs->buf_off += (int64_t)fs->start;
        fs->end -= fs->start;
        fs->start = 0;
    }
    if (fs->cap - fs->end < FILE_READ_CHUNK / 2) {
        if (fs->cap > (size_t)1 << 30)
            return ros_error_set(err, RT_ERR_BAD_COPY_FORMAT, "record too long in file \"%s\" at line %lld",
                                 fs->cfg.path, (long long)fs->line);
        char *nb = realloc(fs->buf, fs->cap * 2);
        if (!nb)
            return ros_error_oom(err);
        fs->buf = nb;
        fs->cap *= 2;
    }
    for (;;) {
        ssize_t r = read(fs->fd, fs->buf + fs->end, fs->cap - fs->end);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ros_error_set(err, ROS_ERR_IO, "could not read file \"%s\": %s", fs->cfg.path, strerror(errno));
        fs->end += (size_t)r;
        return r;
    }
}

/*
 * Finds the next complete record (without its line end) in the buffer,
 * reading as needed.  Returns 1 with *rec valid until the next call, 0 at
 * the end of the input, 2 when only part of a record is there yet (tail
 * mode), -1 with err set.
 */
static int fsrc_record(file_source *fs, const char **rec, size_t *len, ros_error *err)
{
    for (;;) {
        char *p = fs->buf + fs->start;
        size_t avail = fs->end - fs->start;
        if (fs->bom_pending && avail >= 3) {
            fs->bom_pending = false;
            if (memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
                fs->start += 3; /* UTF-8 byte order mark */
                continue;
            }
        }
        size_t i = fs->scan;
        bool found = false;
        if (fs->cfg.json) {
            char *nl = i < avail ? memchr(p + i, '\n', avail - i) : NULL;
            if (nl) {
                i = (size_t)(nl - p);
                found = true;
            } else {
                i = avail;
            }
        } else {
            bool q = fs->scan_quote;
            for (; i < avail; i++) {
                char c = p[i];
                if (c == '"')
                    q = !q; /* a doubled quote toggles twice */
                else if (c == '\n') {
                    if (!q) {
                        found = true;
                        break;
                    }
                    fs->scan_lines++;
                }
            }
            fs->scan_quote = q;
        }
        size_t reclen = i;
        if (!found) {
            fs->scan = avail;
            ssize_t r = fsrc_refill(fs, err);
            if (r < 0)
                return -1;
            if (r > 0)
                continue;
            p = fs->buf + fs->start;
            if (avail == 0)
                return fs->cfg.tail ? 2 : 0;
            if (fs->cfg.tail)
                return 2; /* a partial last line: wait for the rest */
            if (fs->scan_quote) {
                ros_error_set(err, RT_ERR_BAD_COPY_FORMAT, "unterminated CSV quoted field");
                ros_error_detail(err, "file \"%s\", line %lld", fs->cfg.path, (long long)fs->line);
                return -1;
            }
        }
        *rec = p;
        *len = reclen;
        if (reclen > 0 && p[reclen - 1] == '\r')
            (*len)--;
        fs->rec_line = fs->line;
        fs->line += (found ? 1 : 0) + fs->scan_lines;
        fs->start += reclen + (found ? 1 : 0);
        fs->scan = 0;
        fs->scan_quote = false;
        fs->scan_lines = 0;
        fs->bom_pending = false;
        return 1;
    }
}

/* Adds the value's origin to the error just recorded; returns -1. */
static int fsrc_value_error(file_source *fs, int col, ros_error *err)
{
    ros_error_detail(err, "file \"%s\", line %lld, column %s", fs->cfg.path, (long long)fs->rec_line,
                     fs->cols.names[col]);
    return -1;
}

/* Splits a CSV record into fields and appends its projected values. */
static int fsrc_csv_row(file_source *fs, const char *rec, size_t n, ros_batch *out, ros_error *err)
{
    const char delim = fs->cfg.delim;
    ros_strbuf_reset(&fs->scratch);
    int k = 0;
    size_t i = 0;
    for (;;) {
        if (k == fs->fields_cap) {
            int ncap = fs->fields_cap ? fs->fields_cap * 2 : 16;
            csv_field *nf = realloc(fs->fields, sizeof *nf * (size_t)ncap);
            if (!nf)
                return ros_error_oom(err);
            fs->fields = nf;
            fs->fields_cap = ncap;
        }
        csv_field *f = &fs->fields[k++];
        size_t a = i;
        while (i < n && rec[i] != delim && rec[i] != '"')
            i++;
        if (i >= n || rec[i] == delim) {
            f->off = a;
            f->len = i - a;
            f->quoted = false;
            f->in_scratch = false;
        } else {
            /* Quotes: unescape into scratch. */
            f->quoted = true;
            f->in_scratch = true;
            f->off = fs->scratch.len;
            ros_strbuf_appendn(&fs->scratch, rec + a, i - a);
            bool inq = false;
            while (i < n) {
                char c = rec[i];
                if (inq) {
                    if (c == '"') {
                        if (i + 1 < n && rec[i + 1] == '"') {
                            ros_strbuf_appendc(&fs->scratch, '"');
                            i += 2;
                        } else {
                            inq = false;
                            i++;
                        }
                        continue;
                    }
                    size_t b = i;
                    while (i < n && rec[i] != '"')
                        i++;
                    ros_strbuf_appendn(&fs->scratch, rec + b, i - b);
                } else if (c == delim) {
                    break;
                } else if (c == '"') {
                    inq = true;
                    i++;
                } else {
                    ros_strbuf_appendc(&fs->scratch, c);
                    i++;
                }
            }
            if (inq) {
                ros_error_set(err, RT_ERR_BAD_COPY_FORMAT, "unterminated CSV quoted field");
                ros_error_detail(err, "file \"%s\", line %lld", fs->cfg.path, (long long)fs->rec_line);
                return -1;
            }
            f->len = fs->scratch.len - f->off;
        }
        if (i >= n)
            break;
        i++; /* the delimiter */
    }
    if (fs->scratch.oom)
        return ros_error_oom(err);
    if (k < fs->cols.n) {
        ros_error_set(err, RT_ERR_BAD_COPY_FORMAT, "missing data for column \"%s\"", fs->cols.names[k]);
        ros_error_detail(err, "file \"%s\", line %lld", fs->cfg.path, (long long)fs->rec_line);
        return -1;
    }
    if (k > fs->cols.n) {
        ros_error_set(err, RT_ERR_BAD_COPY_FORMAT, "extra data after last expected column");
        ros_error_detail(err, "file \"%s\", line %lld", fs->cfg.path, (long long)fs->rec_line);
        return -1;
    }
    for (int j = 0; j < fs->nproj; j++) {
        int c = fs->proj[j];
        const csv_field *f = &fs->fields[c];
        const char *s = f->in_scratch ? (fs->scratch.data ? fs->scratch.data + f->off : "") : rec + f->off;
        ros_vector *v = &out->cols[j];
        if (!f->quoted && f->len == fs->cfg.null_len && memcmp(s, fs->cfg.null_string, f->len) == 0) {
            if (ros_vector_append_null(v) < 0)
                return ros_error_oom(err);
        } else if (ros_text_append(v, s, f->len, err) < 0) {
            return fsrc_value_error(fs, c, err);
        }
    }
    return 0;
}

/* A JSON array [1,2.5] for a real[] column: PostgreSQL's input syntax for
 * it is {1,2.5}, so parse a copy with the brackets swapped. */
static int json_array_append(ros_vector *v, const char *s, size_t len, ros_error *err)
{
    if (len < 2 || s[0] != '[' || s[len - 1] != ']')
        return ros_text_append(v, s, len, err);
    char *copy = malloc(len);
    if (!copy)
        return ros_error_oom(err);
    memcpy(copy, s, len);
    copy[0] = '{';
    copy[len - 1] = '}';
    int rc = ros_text_append(v, copy, len, err);
    free(copy);
    return rc;
}

/* Records a member of the current JSON object in its column's slot; unknown
 * keys are ignored, a repeated key keeps its last value. */
static int fsrc_json_member(void *arg, const char *key, size_t keylen, const rt_json_value *v)
{
    file_source *fs = ((json_ctx *)arg)->fs;
    for (int c = 0; c < fs->cols.n; c++) {
        const char *name = fs->cols.names[c];
        if (strlen(name) == keylen && memcmp(name, key, keylen) == 0) {
            fs->slots[c] = *v;
            fs->slot_gen[c] = fs->gen;
            break;
        }
    }
    return 0;
}

/* Parses a JSON object line and appends its projected values. */
static int fsrc_json_row(file_source *fs, const char *rec, size_t n, ros_batch *out, ros_error *err)
{
    if (++fs->gen == 0) {
        memset(fs->slot_gen, 0, sizeof *fs->slot_gen * (size_t)(fs->cols.n ? fs->cols.n : 1));
        fs->gen = 1;
    }
    json_ctx ctx = {fs};
    const char *why = NULL;
    size_t at = 0;
    int rc = rt_json_parse_object(rec, n, &fs->scratch, fsrc_json_member, &ctx, &why, &at);
    if (rc == -3)
        return ros_error_oom(err);
    if (rc < 0) {
        ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid input syntax for type json");
        ros_error_detail(err, "file \"%s\", line %lld, byte %zu: %s", fs->cfg.path, (long long)fs->rec_line, at + 1,
                         why ? why : "Invalid JSON.");
        return -1;
    }
    for (int j = 0; j < fs->nproj; j++) {
        int c = fs->proj[j];
        ros_vector *v = &out->cols[j];
        if (fs->slot_gen[c] != fs->gen || fs->slots[c].kind == RT_JSON_NULL) {
            if (ros_vector_append_null(v) < 0)
                return ros_error_oom(err);
            continue;
        }
        const rt_json_value *jv = &fs->slots[c];
        const char *s = jv->in_scratch ? (fs->scratch.data ? fs->scratch.data + jv->off : "") : rec + jv->off;
        size_t len = jv->len;
        if (jv->kind == RT_JSON_TRUE) {
            s = "true";
            len = 4;
        } else if (jv->kind == RT_JSON_FALSE) {
            s = "false";
            len = 5;
        }
        bool ok_kind = true;
        if (jv->kind == RT_JSON_ARRAY)
            ok_kind = v->type == ROS_TYPE_FLOAT32_ARRAY || v->type == ROS_TYPE_TEXT;
        else if (jv->kind == RT_JSON_OBJECT)
            ok_kind = v->type == ROS_TYPE_TEXT;
        else if (v->type == ROS_TYPE_FLOAT32_ARRAY)
            ok_kind = jv->kind == RT_JSON_STRING;
        if (!ok_kind) {
            int l = len > 200 ? 200 : (int)len;
            ros_error_set(err, ROS_ERR_INVALID_TEXT, "invalid input syntax for type %s: \"%.*s\"",
                          ros_type_name(v->type), l, s);
            return fsrc_value_error(fs, c, err);
        }
        int rc = jv->kind == RT_JSON_ARRAY && v->type == ROS_TYPE_FLOAT32_ARRAY
                     ? json_array_append(v, s, len, err)
                     : ros_text_append(v, s, len, err);
        if (rc < 0)
            return fsrc_value_error(fs, c, err);
    }
    return 0;
}

static int fsrc_next(rt_source *src, ros_batch *out, uint32_t max_rows, ros_error *err)
{
    file_source *fs = (file_source *)src;
    if (rt_batch_prepare(out, fs->nproj, fs->ptypes, err) < 0)
        return -1;
    if (max_rows == 0)
        max_rows = RT_DEFAULT_BATCH;
    uint32_t rows = 0;
    int rc = 1;
    while (rows < max_rows) {
        const char *rec;
        size_t n;
        rc = fsrc_record(fs, &rec, &n, err);
        if (rc != 1)
            break;
        if (fs->header_pending) {
            fs->header_pending = false;
            continue;
        }
        if (fs->cfg.json) {
            size_t k = 0;
            while (k < n && (rec[k] == ' ' || rec[k] == '\t' || rec[k] == '\r'))
                k++;
            if (k == n)
                continue; /* blank line */
            if (fsrc_json_row(fs, rec, n, out, err) < 0)
                return -1;
        } else if (fsrc_csv_row(fs, rec, n, out, err) < 0) {
            return -1;
        }
        rows++;
    }
    if (rc < 0)
        return -1;
    out->nrows = rows;
    if (rows > 0)
        return 1;
    return rc == 2 ? 2 : 0;
}

/* ================================================================== */
/* Sink */

rt_sink *rt_file_sink_open(cat_db *db, const cat_table *t, ros_error *err)
{
    file_sink *fk = calloc(1, sizeof *fk);
    if (!fk) {
        ros_error_oom(err);
        return NULL;
    }
    fk->fd = -1;
    fk->base.ops = &file_sink_ops;
    ros_strbuf_init(&fk->buf);
    ros_strbuf_init(&fk->tmp);
    if (file_cfg_parse(t, &fk->cfg, err) < 0)
        goto fail;
    if (file_cols_copy(&fk->cols, t) < 0 || !(fk->table = strdup(t->name ? t->name : "")))
        goto oom;
    if (fk->cfg.json) {
        fk->json_keys = calloc((size_t)(t->ncols ? t->ncols : 1), sizeof *fk->json_keys);
        if (!fk->json_keys)
            goto oom;
        for (int i = 0; i < t->ncols; i++) {
            ros_strbuf sb = ROS_STRBUF_INIT;
            rt_json_append_string(&sb, fk->cols.names[i], strlen(fk->cols.names[i]));
            ros_strbuf_appendc(&sb, ':');
            if (sb.oom) {
                ros_strbuf_free(&sb);
                goto oom;
            }
            fk->json_keys[i] = ros_strbuf_steal(&sb);
        }
    }
    /* Read-write so that fsink_prepare can look at the last byte. */
    fk->fd = open(fk->cfg.path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fk->fd < 0) {
        file_open_error(fk->cfg.path, true, err);
        goto fail;
    }
    struct stat st;
    if (fstat(fk->fd, &st) < 0) {
        ros_error_set(err, ROS_ERR_IO, "could not stat file \"%s\": %s", fk->cfg.path, strerror(errno));
        goto fail;
    }
    fk->size = fk->committed = (int64_t)st.st_size;
    return &fk->base;
oom:
    ros_error_oom(err);
fail:
    fsink_close(&fk->base);
    return NULL;
}

/* Writes the buffered bytes to the file.  Returns 0 or -1 with err set (the
 * buffer is then emptied; abort() truncates what was half written). */
static int fsink_flush(file_sink *fk, ros_error *err)
{
    if (fk->buf.oom) {
        ros_strbuf_reset(&fk->buf);
        fk->buf.oom = false;
        return ros_error_oom(err);
    }
    size_t done = 0;
    while (done < fk->buf.len) {
        ssize_t w = write(fk->fd, fk->buf.data + done, fk->buf.len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            ros_strbuf_reset(&fk->buf);
            return ros_error_set(err, ROS_ERR_IO, "could not write to file \"%s\": %s", fk->cfg.path, strerror(e));
        }
        done += (size_t)w;
        fk->size += w;
    }
    ros_strbuf_reset(&fk->buf);
    return 0;
}

/* Before the first row after a commit: a header for a new CSV file, and a
 * newline when the file ends in an unfinished line. */
static int fsink_prepare(file_sink *fk, ros_error *err)
{
    if (fk->prepared)
        return 0;
    if (fk->size == 0 && fk->buf.len == 0) {
        if (fk->cfg.header && !fk->cfg.json) {
            for (int c = 0; c < fk->cols.n; c++) {
                if (c)
                    ros_strbuf_appendc(&fk->buf, fk->cfg.delim);
                fsink_csv_put(fk, fk->cols.names[c], strlen(fk->cols.names[c]));
            }
            ros_strbuf_appendc(&fk->buf, '\n');
        }
    } else if (fk->size > 0 && fk->buf.len == 0) {
        char last;
        ssize_t r = pread(fk->fd, &last, 1, fk->size - 1);
        if (r < 0)
            return ros_error_set(err, ROS_ERR_IO, "could not read file \"%s\": %s", fk->cfg.path, strerror(errno));
        if (r == 1 && last != '\n')
            ros_strbuf_appendc(&fk->buf, '\n');
    }
    fk->prepared = true;
    return 0;
}

/* Appends a CSV field, quoted when it must be. */
static void fsink_csv_put(file_sink *fk, const char *s, size_t n)
{
    bool quote = n == 0 || (n == fk->cfg.null_len && memcmp(s, fk->cfg.null_string, n) == 0) ||
                 (n == 2 && s[0] == '\\' && s[1] == '.');
    for (size_t i = 0; !quote && i < n; i++) {
        char c = s[i];
        quote = c == fk->cfg.delim || c == '"' || c == '\n' || c == '\r';
    }
    if (!quote) {
        ros_strbuf_appendn(&fk->buf, s, n);
        return;
    }
    ros_strbuf_appendc(&fk->buf, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') {
            ros_strbuf_appendn(&fk->buf, s + run, i + 1 - run);
            ros_strbuf_appendc(&fk->buf, '"');
            run = i + 1;
        }
    }
    ros_strbuf_appendn(&fk->buf, s + run, n - run);
    ros_strbuf_appendc(&fk->buf, '"');
}

/* Appends row i of v (not NULL) as a JSON value. */
static void fsink_json_value(file_sink *fk, const ros_vector *v, uint32_t i)
{
    ros_strbuf *out = &fk->buf;
    char nb[40];
    switch (v->type) {
    case ROS_TYPE_BOOL:
        ros_strbuf_append(out, ROS_VEC_BOOL(v)[i] ? "true" : "false");
        return;
    case ROS_TYPE_INT16:
    case ROS_TYPE_INT32:
    case ROS_TYPE_INT64:
        rt_format_value(v, i, out);
        return;
    case ROS_TYPE_FLOAT32:
    case ROS_TYPE_FLOAT64: {
        double d = v->type == ROS_TYPE_FLOAT32 ? ROS_VEC_F32(v)[i] : ROS_VEC_F64(v)[i];
        size_t n = v->type == ROS_TYPE_FLOAT32 ? rt_format_float(ROS_VEC_F32(v)[i], nb) : rt_format_double(d, nb);
        if (isfinite(d))
            ros_strbuf_appendn(out, nb, n);
        else
            rt_json_append_string(out, nb, n); /* JSON has no Infinity or NaN */
        return;
    }
    case ROS_TYPE_TEXT: {
        uint32_t len;
        const uint8_t *p = ros_vector_bytes(v, i, &len);
        rt_json_append_string(out, len ? (const char *)p : "", len);
        return;
    }
    case ROS_TYPE_BYTEA:
        ros_strbuf_reset(&fk->tmp);
        rt_format_value(v, i, &fk->tmp);
        rt_json_append_string(out, ros_strbuf_cstr(&fk->tmp), fk->tmp.len);
        return;
    case ROS_TYPE_FLOAT32_ARRAY: {
        uint32_t len;
        const uint8_t *p = ros_vector_bytes(v, i, &len);
        ros_strbuf_appendc(out, '[');
        for (uint32_t k = 0; k + 4 <= len; k += 4) {
            float f;
            memcpy(&f, p + k, 4);
            if (k)
                ros_strbuf_appendc(out, ',');
            size_t n = rt_format_float(f, nb);
            if (isfinite(f))
                ros_strbuf_appendn(out, nb, n);
            else
                rt_json_append_string(out, nb, n);
        }
        ros_strbuf_appendc(out, ']');
        return;
    }
    case ROS_TYPE_NULL:
        break;
    }
    ros_strbuf_append(out, "null");
}

static int fsink_write(rt_sink *sink, const ros_batch *b, ros_error *err)
{
    file_sink *fk = (file_sink *)sink;
    if ((int)b->ncols != fk->cols.n)
        return ros_error_set(err, ROS_ERR_INTERNAL, "batch has %u columns, table \"%s\" has %d", b->ncols, fk->table,
                             fk->cols.n);
    for (int c = 0; c < fk->cols.n; c++) {
        const ros_vector *v = &b->cols[c];
        if (v->type != fk->cols.types[c] || v->len < b->nrows)
            return ros_error_set(err, ROS_ERR_INTERNAL, "batch column %d does not match table \"%s\"", c, fk->table);
        if (fk->cols.not_null[c] && v->validity) {
            for (uint32_t i = 0; i < b->nrows; i++)
                if (ros_vector_is_null(v, i))
                    return ros_error_set(err, RT_ERR_NOT_NULL,
                                         "null value in column \"%s\" of relation \"%s\" violates not-null constraint",
                                         fk->cols.names[c], fk->table);
        }
    }
    if (b->nrows == 0)
        return 0;
    if (fsink_prepare(fk, err) < 0)
        return -1;
    for (uint32_t i = 0; i < b->nrows; i++) {
        if (fk->cfg.json)
            ros_strbuf_appendc(&fk->buf, '{');
        for (int c = 0; c < fk->cols.n; c++) {
            const ros_vector *v = &b->cols[c];
            bool null = ros_vector_is_null(v, i);
            if (fk->cfg.json) {
                if (c)
                    ros_strbuf_appendc(&fk->buf, ',');
                ros_strbuf_append(&fk->buf, fk->json_keys[c]);
                if (null)
                    ros_strbuf_appendn(&fk->buf, "null", 4);
                else
                    fsink_json_value(fk, v, i);
                continue;
            }
            if (c)
                ros_strbuf_appendc(&fk->buf, fk->cfg.delim);
            if (null) {
                ros_strbuf_appendn(&fk->buf, fk->cfg.null_string, fk->cfg.null_len);
            } else if (v->type == ROS_TYPE_TEXT) {
                uint32_t len;
                const uint8_t *p = ros_vector_bytes(v, i, &len);
                fsink_csv_put(fk, len ? (const char *)p : "", len);
            } else {
                ros_strbuf_reset(&fk->tmp);
                rt_format_value(v, i, &fk->tmp);
                if (fk->tmp.oom)
                    return ros_error_oom(err);
                fsink_csv_put(fk, ros_strbuf_cstr(&fk->tmp), fk->tmp.len);
            }
        }
        ros_strbuf_append(&fk->buf, fk->cfg.json ? "}\n" : "\n");
        if (fk->buf.len >= FILE_SINK_FLUSH && fsink_flush(fk, err) < 0)
            return -1;
    }
    if (fk->buf.oom || fk->tmp.oom) {
        fk->tmp.oom = false;
        return fsink_flush(fk, err); /* reports out of memory */
    }
    return 0;
}

static int fsink_commit(rt_sink *sink, ros_error *err)
{
    file_sink *fk = (file_sink *)sink;
    if (fsink_flush(fk, err) < 0)
        return -1;
    if (fk->size != fk->committed && fsync(fk->fd) < 0)
        return ros_error_set(err, ROS_ERR_IO, "could not fsync file \"%s\": %s", fk->cfg.path, strerror(errno));
    fk->committed = fk->size;
    fk->prepared = false;
    return 0;
}

static void fsink_abort(rt_sink *sink)
{
    file_sink *fk = (file_sink *)sink;
    ros_strbuf_reset(&fk->buf);
    fk->buf.oom = false;
    if (fk->fd >= 0 && fk->size != fk->committed) {
        /* Best effort: if truncation fails the rows stay, and a reader sees
         * them; there is no one to report it to. */
        if (ftruncate(fk->fd, fk->committed) == 0)
            fk->size = fk->committed;
    }
    fk->prepared = false;
}

static void fsink_close(rt_sink *sink)
{
    file_sink *fk = (file_sink *)sink;
    if (!fk)
        return;
    fsink_abort(sink);
    if (fk->fd >= 0)
        close(fk->fd);
    for (int i = 0; fk->json_keys && i < fk->cols.n; i++)
        free(fk->json_keys[i]);
    free(fk->json_keys);
    file_cols_free(&fk->cols);
    file_cfg_free(&fk->cfg);
    free(fk->table);
    ros_strbuf_free(&fk->buf);
    ros_strbuf_free(&fk->tmp);
    free(fk);
}
