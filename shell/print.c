/*
 * print.c
 *    The shell's result printer: a ros_result_sink writing psql's aligned
 *    table (plain or expanded), psql --csv, or JSON lines.
 *
 * Values arrive as column batches and are turned into text with
 * ros_format_value, so every format shows PostgreSQL's spelling of a value.
 * The aligned format buffers rendered cells to learn column widths (see
 * print.h for the limit); CSV and JSON stream each row as it comes.
 */
#include "print.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "runtime/core/strbuf.h"

static int pr_begin(void *arg, int ncols, const char *const *names, const ros_type *types);
static int pr_batch(void *arg, const ros_batch *b);
static int pr_end(void *arg, const char *tag);
static void pr_notice(void *arg, const char *message);
static void pr_progress(void *arg, const char *line);

static int utf8_next(const char *s, size_t n, size_t *i);
static int char_width(int cp);
static void render_cell(const char *s, size_t n, ros_strbuf *out);
static int text_width(const char *s, size_t n, int *lines);
static bool type_right_aligned(ros_type t);
static void put_spaces(FILE *f, int n);
static const char *line_at(const char *s, const char *end, const char **next);

static int table_buffer_row(printer *p, const ros_batch *b, uint32_t row);
static void table_flush(printer *p);
static void table_print_header(printer *p);
static void table_print_row(printer *p, const pr_cell *cells);
static void expanded_print_record(printer *p, const pr_cell *cells, uint64_t recno);
static int terminal_columns(FILE *f);

static void csv_print_field(FILE *f, const char *s, size_t n);
static void json_print_string(FILE *f, const char *s, size_t n);
static void json_print_value(printer *p, const ros_vector *v, uint32_t row);

/* ---------------------------------------------------------------- */
/* Set-up */

void pr_init(printer *p)
{
    memset(p, 0, sizeof *p);
    p->out = stdout;
    p->err = stderr;
    p->format = PR_TABLE;
    p->expanded = PR_X_OFF;
}

void pr_reset(printer *p)
{
    for (int i = 0; i < p->ncols; i++)
        free(p->names[i]);
    free(p->names);
    free(p->types);
    free(p->widths);
    free(p->vwidths);
    free(p->cells);
    free(p->text);
    p->names = NULL;
    p->types = NULL;
    p->widths = NULL;
    p->vwidths = NULL;
    p->cells = NULL;
    p->text = NULL;
    p->ncols = 0;
    p->nbuffered = p->cells_cap = 0;
    p->text_len = p->text_cap = 0;
    p->nrows = 0;
    p->has_rows = p->streaming = p->use_expanded = p->oom = false;
}

ros_result_sink pr_sink(printer *p)
{
    ros_result_sink s = {p, pr_begin, pr_batch, pr_end, pr_notice, pr_progress};
    return s;
}

bool pr_format_parse(const char *name, pr_format *out)
{
    if (strcmp(name, "table") == 0 || strcmp(name, "aligned") == 0)
        *out = PR_TABLE;
    else if (strcmp(name, "csv") == 0)
        *out = PR_CSV;
    else if (strcmp(name, "json") == 0)
        *out = PR_JSON;
    else
        return false;
    return true;
}

/* ---------------------------------------------------------------- */
/* Text measuring */

/* Decodes the UTF-8 character at s[*i] and advances *i; returns the code
 * point, or the byte itself for a malformed sequence. */
static int utf8_next(const char *s, size_t n, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[*i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len <= 1 || *i + (size_t)len > n) {
        (*i)++;
        return c;
    }
    int cp = c & (0x7f >> len);
    for (int k = 1; k < len; k++) {
        if ((u[*i + k] & 0xC0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = (cp << 6) | (u[*i + k] & 0x3f);
    }
    *i += (size_t)len;
    return cp;
}

/*
 * Terminal columns of one character.  A small table rather than wcwidth():
 * the result must not depend on the locale the shell was started in, or the
 * table borders would move between a UTF-8 and a C locale.
 */
static int char_width(int cp)
{
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) || (cp >= 0x1DC0 && cp <= 0x1DFF) ||
        (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
        (cp >= 0xFE20 && cp <= 0xFE2F))
        return 0;
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) || (cp >= 0x3041 && cp <= 0x33FF) ||
        (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
        (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

int pr_display_width(const char *s, size_t n)
{
    int w = 0;
    size_t i = 0;
    while (i < n) {
        int cp = utf8_next(s, n, &i);
        w += cp == '\t' ? 8 - w % 8 : char_width(cp);
    }
    return w;
}

/*
 * Rewrites a value for the aligned format as psql shows it: tabs expanded
 * to the next multiple of 8 columns, \r and other control characters as
 * \r and \xNN; newlines stay (each starts a line of the cell).
 */
static void render_cell(const char *s, size_t n, ros_strbuf *out)
{
    int col = 0;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        int cp = utf8_next(s, n, &i);
        if (cp == '\n') {
            ros_strbuf_appendc(out, '\n');
            col = 0;
        } else if (cp == '\t') {
            int to = 8 - col % 8;
            for (int k = 0; k < to; k++)
                ros_strbuf_appendc(out, ' ');
            col += to;
        } else if (cp == '\r') {
            ros_strbuf_append(out, "\\r");
            col += 2;
        } else if (cp < 0x20 || cp == 0x7f) {
            ros_strbuf_appendf(out, "\\x%02x", cp);
            col += 4;
        } else {
            ros_strbuf_appendn(out, s + start, i - start);
            col += char_width(cp);
        }
    }
}

/* Width of the widest line of rendered text; *lines gets the line count. */
static int text_width(const char *s, size_t n, int *lines)
{
    int w = 0;
    int count = 1;
    const char *end = s + n;
    const char *line = s;
    for (;;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *stop = nl ? nl : end;
        int lw = pr_display_width(line, (size_t)(stop - line));
        if (lw > w)
            w = lw;
        if (!nl)
            break;
        count++;
        line = nl + 1;
    }
    if (lines)
        *lines = count;
    return w;
}

/* Returns the line starting at s (up to '\n' or end) and sets *next to the
 * following line, or NULL when this was the last one. */
static const char *line_at(const char *s, const char *end, const char **next)
{
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    *next = nl ? nl + 1 : NULL;
    return nl ? nl : end;
}

/* psql right-aligns numbers and left-aligns everything else. */
static bool type_right_aligned(ros_type t)
{
    return t == ROS_TYPE_INT16 || t == ROS_TYPE_INT32 || t == ROS_TYPE_INT64 || t == ROS_TYPE_FLOAT32 ||
           t == ROS_TYPE_FLOAT64;
}

/* The buffered text; "" before anything was buffered (all values empty). */
static const char *pr_text(const printer *p)
{
    return p->text ? p->text : "";
}

static void put_spaces(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputc(' ', f);
}

static void put_dashes(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputc('-', f);
}

/* ---------------------------------------------------------------- */
/* Sink callbacks */

static int pr_begin(void *arg, int ncols, const char *const *names, const ros_type *types)
{
    printer *p = arg;
    pr_reset(p);
    p->has_rows = true;
    p->ncols = ncols;
    p->names = calloc((size_t)(ncols ? ncols : 1), sizeof *p->names);
    p->types = calloc((size_t)(ncols ? ncols : 1), sizeof *p->types);
    p->widths = calloc((size_t)(ncols ? ncols : 1), sizeof *p->widths);
    p->vwidths = calloc((size_t)(ncols ? ncols : 1), sizeof *p->vwidths);
    if (!p->names || !p->types || !p->widths || !p->vwidths) {
        p->oom = true;
        p->ncols = 0;
        return 1;
    }
    for (int i = 0; i < ncols; i++) {
        ros_strbuf sb = ROS_STRBUF_INIT;
        render_cell(names[i], strlen(names[i]), &sb);
        p->names[i] = sb.oom ? NULL : ros_strbuf_steal(&sb);
        if (!p->names[i]) {
            ros_strbuf_free(&sb);
            p->names[i] = strdup("");
            if (!p->names[i]) {
                p->oom = true;
                return 1;
            }
        }
        p->types[i] = types[i];
        p->widths[i] = text_width(p->names[i], strlen(p->names[i]), NULL);
    }
    if (p->format == PR_CSV) {
        for (int i = 0; i < ncols; i++) {
            if (i > 0)
                fputc(',', p->out);
            csv_print_field(p->out, names[i], strlen(names[i]));
        }
        fputc('\n', p->out);
    }
    return 0;
}

static int pr_batch(void *arg, const ros_batch *b)
{
    printer *p = arg;
    if (p->oom || (int)b->ncols != p->ncols)
        return 1;
    for (uint32_t r = 0; r < b->nrows; r++) {
        p->nrows++;
        if (p->format == PR_TABLE) {
            if (table_buffer_row(p, b, r) < 0) {
                p->oom = true;
                return 1;
            }
            continue;
        }
        if (p->format == PR_CSV) {
            for (uint32_t c = 0; c < b->ncols; c++) {
                if (c > 0)
                    fputc(',', p->out);
                p->scratch_len = 0;
                int rc = ros_format_value(&b->cols[c], r, &p->scratch, &p->scratch_len, &p->scratch_cap);
                if (rc < 0) {
                    p->oom = true;
                    return 1;
                }
                if (rc == 0)
                    csv_print_field(p->out, p->scratch, p->scratch_len);
            }
            fputc('\n', p->out);
        } else {
            fputc('{', p->out);
            for (uint32_t c = 0; c < b->ncols; c++) {
                if (c > 0)
                    fputc(',', p->out);
                json_print_string(p->out, p->names[c], strlen(p->names[c]));
                fputc(':', p->out);
                json_print_value(p, &b->cols[c], r);
            }
            fputs("}\n", p->out);
        }
    }
    return 0;
}

static int pr_end(void *arg, const char *tag)
{
    printer *p = arg;
    if (p->has_rows) {
        if (p->format == PR_TABLE && !p->oom) {
            table_flush(p);
            if (p->use_expanded) {
                if (p->nrows == 0)
                    fputs("(0 rows)\n", p->out);
            } else if (!p->no_footer) {
                fprintf(p->out, "(%llu %s)\n", (unsigned long long)p->nrows, p->nrows == 1 ? "row" : "rows");
            }
            fputc('\n', p->out);
        }
    } else if (tag && tag[0] && !p->quiet && p->format != PR_JSON) {
        /* JSON lines carry rows only: a tag would not parse as JSON */
        fprintf(p->out, "%s\n", tag);
    }
    p->title = NULL;
    p->no_footer = false;
    fflush(p->out);
    pr_reset(p);
    return 0;
}

static void pr_notice(void *arg, const char *message)
{
    printer *p = arg;
    fflush(p->out);
    fprintf(p->err, "NOTICE:  %s\n", message);
}

/* A foreground job's progress: one line rewritten in place on a terminal,
 * nothing otherwise (scripts and pipes get only the result). */
static void pr_progress(void *arg, const char *line)
{
    printer *p = arg;
    if (!isatty(fileno(p->err)))
        return;
    if (line)
        fprintf(p->err, "\r%s\033[K", line);
    else
        fprintf(p->err, "\r\033[K");
    fflush(p->err);
}

/* ---------------------------------------------------------------- */
/* Aligned table */

/* Renders row `row` of b into the buffer (flushing when full); -1 on
 * allocation failure. */
static int table_buffer_row(printer *p, const ros_batch *b, uint32_t row)
{
    if (p->nbuffered == p->cells_cap) {
        size_t ncap = p->cells_cap ? p->cells_cap * 2 : 256;
        pr_cell *nc = realloc(p->cells, ncap * (size_t)(p->ncols ? p->ncols : 1) * sizeof *nc);
        if (!nc)
            return -1;
        p->cells = nc;
        p->cells_cap = ncap;
    }
    pr_cell *cells = p->cells + p->nbuffered * (size_t)p->ncols;
    ros_strbuf sb = ROS_STRBUF_INIT;
    for (int c = 0; c < p->ncols; c++) {
        p->scratch_len = 0;
        int rc = ros_format_value(&b->cols[c], row, &p->scratch, &p->scratch_len, &p->scratch_cap);
        if (rc < 0)
            goto fail;
        if (rc == 1) {
            cells[c].off = 0;
            cells[c].len = -1;
            continue;
        }
        ros_strbuf_reset(&sb);
        render_cell(p->scratch, p->scratch_len, &sb);
        if (sb.oom)
            goto fail;
        size_t n = sb.len;
        if (p->text_len + n > p->text_cap) {
            size_t ncap = p->text_cap ? p->text_cap : 4096;
            while (ncap < p->text_len + n)
                ncap *= 2;
            char *nt = realloc(p->text, ncap);
            if (!nt)
                goto fail;
            p->text = nt;
            p->text_cap = ncap;
        }
        if (n)
            memcpy(p->text + p->text_len, sb.data, n);
        cells[c].off = (uint32_t)p->text_len;
        cells[c].len = (int32_t)n;
        p->text_len += n;
        if (!p->streaming) {
            int w = text_width(sb.data ? sb.data : "", n, NULL);
            if (w > p->widths[c])
                p->widths[c] = w;
            if (w > p->vwidths[c])
                p->vwidths[c] = w;
        }
    }
    ros_strbuf_free(&sb);
    p->nbuffered++;
    if (p->nbuffered >= PR_BUFFER_ROWS || p->text_len >= PR_BUFFER_BYTES)
        table_flush(p);
    return 0;
fail:
    ros_strbuf_free(&sb);
    return -1;
}

static int terminal_columns(FILE *f)
{
    struct winsize ws;
    if (isatty(fileno(f)) && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

/* Prints the buffered rows (and the header, the first time) and empties the
 * buffer; later rows print with the widths known now. */
static void table_flush(printer *p)
{
    if (!p->streaming) {
        int total = 0;
        for (int c = 0; c < p->ncols; c++)
            total += p->widths[c] + 3;
        p->use_expanded = p->expanded == PR_X_ON;
        if (p->expanded == PR_X_AUTO) {
            int cols = terminal_columns(p->out);
            p->use_expanded = cols > 0 && total - 1 > cols;
        }
        if (p->title) {
            int tw = pr_display_width(p->title, strlen(p->title));
            if (!p->use_expanded && total - 1 > tw)
                put_spaces(p->out, (total - 1 - tw) / 2);
            fprintf(p->out, "%s\n", p->title);
        }
        if (!p->use_expanded)
            table_print_header(p);
        p->streaming = true;
    }
    uint64_t first = p->nrows - p->nbuffered + 1;
    for (size_t r = 0; r < p->nbuffered; r++) {
        const pr_cell *cells = p->cells + r * (size_t)p->ncols;
        if (p->use_expanded)
            expanded_print_record(p, cells, first + r);
        else
            table_print_row(p, cells);
    }
    p->nbuffered = 0;
    p->text_len = 0;
}

static void table_print_header(printer *p)
{
    const char **cur = calloc((size_t)(p->ncols ? p->ncols : 1), sizeof *cur);
    if (!cur)
        return;
    for (int c = 0; c < p->ncols; c++)
        cur[c] = p->names[c];
    bool more = true;
    while (more) {
        more = false;
        for (int c = 0; c < p->ncols; c++) {
            const char *next = NULL;
            int w = 0;
            const char *seg = cur[c];
            const char *stop = seg;
            if (seg) {
                stop = line_at(seg, seg + strlen(seg), &next);
                w = pr_display_width(seg, (size_t)(stop - seg));
            }
            int left = (p->widths[c] - w) / 2;
            fputc(' ', p->out);
            put_spaces(p->out, left);
            if (seg)
                fwrite(seg, 1, (size_t)(stop - seg), p->out);
            put_spaces(p->out, p->widths[c] - w - left);
            fputc(next ? '+' : ' ', p->out);
            if (c < p->ncols - 1)
                fputc('|', p->out);
            cur[c] = next;
            if (next)
                more = true;
        }
        fputc('\n', p->out);
    }
    free(cur);
    for (int c = 0; c < p->ncols; c++) {
        if (c > 0)
            fputc('+', p->out);
        put_dashes(p->out, p->widths[c] + 2);
    }
    fputc('\n', p->out);
}

/* One row, over as many lines as its tallest cell; a cell that goes on
 * below ends its line with '+' as psql marks it. */
static void table_print_row(printer *p, const pr_cell *cells)
{
    const char *curs[64];
    const char **cur = p->ncols <= 64 ? curs : calloc((size_t)p->ncols, sizeof *cur);
    if (!cur)
        return;
    for (int c = 0; c < p->ncols; c++)
        cur[c] = cells[c].len < 0 ? NULL : pr_text(p) + cells[c].off;
    bool more = true;
    while (more) {
        more = false;
        for (int c = 0; c < p->ncols; c++) {
            bool last = c == p->ncols - 1;
            const char *seg = cur[c];
            const char *next = NULL;
            const char *stop = seg;
            int w = 0;
            if (seg) {
                const char *end = pr_text(p) + cells[c].off + cells[c].len;
                stop = line_at(seg, end, &next);
                w = pr_display_width(seg, (size_t)(stop - seg));
            }
            int pad = p->widths[c] - w;
            if (pad < 0)
                pad = 0;
            fputc(' ', p->out);
            bool right = type_right_aligned(p->types[c]);
            if (last) {
                if (seg) {
                    if (right)
                        put_spaces(p->out, pad);
                    fwrite(seg, 1, (size_t)(stop - seg), p->out);
                    if (next) {
                        if (!right)
                            put_spaces(p->out, pad);
                        fputc('+', p->out);
                    }
                }
            } else {
                if (right)
                    put_spaces(p->out, pad);
                if (seg)
                    fwrite(seg, 1, (size_t)(stop - seg), p->out);
                if (!right)
                    put_spaces(p->out, pad);
                fputc(next ? '+' : ' ', p->out);
                fputc('|', p->out);
            }
            cur[c] = next;
            if (next)
                more = true;
        }
        fputc('\n', p->out);
    }
    if (cur != curs)
        free(cur);
}

/* One record of psql's expanded display (\x):
 *     -[ RECORD 1 ]-+------
 *     name          | value */
static void expanded_print_record(printer *p, const pr_cell *cells, uint64_t recno)
{
    int namew = 0, valw = 0;
    for (int c = 0; c < p->ncols; c++) {
        int w = text_width(p->names[c], strlen(p->names[c]), NULL);
        if (w > namew)
            namew = w;
        if (p->vwidths[c] > valw)
            valw = p->vwidths[c];
    }
    char label[48];
    int ll = snprintf(label, sizeof label, "-[ RECORD %llu ]", (unsigned long long)recno);
    fputs(label, p->out);
    if (ll <= namew + 1) {
        put_dashes(p->out, namew + 1 - ll);
        fputc('+', p->out);
        put_dashes(p->out, valw + 1);
    } else {
        put_dashes(p->out, namew + valw + 3 - ll);
    }
    fputc('\n', p->out);
    for (int c = 0; c < p->ncols; c++) {
        const char *name = p->names[c];
        int nw = pr_display_width(name, strlen(name));
        const char *seg = cells[c].len < 0 ? NULL : pr_text(p) + cells[c].off;
        const char *end = seg ? seg + cells[c].len : NULL;
        bool first = true;
        do {
            if (first) {
                fputs(name, p->out);
                put_spaces(p->out, namew - nw);
            } else {
                put_spaces(p->out, namew);
            }
            fputs(" | ", p->out);
            const char *next = NULL;
            if (seg) {
                const char *stop = line_at(seg, end, &next);
                fwrite(seg, 1, (size_t)(stop - seg), p->out);
                if (next) {
                    put_spaces(p->out, valw - pr_display_width(seg, (size_t)(stop - seg)));
                    fputc('+', p->out);
                }
            }
            fputc('\n', p->out);
            seg = next;
            first = false;
        } while (seg);
    }
}

/* ---------------------------------------------------------------- */
/* CSV and JSON */

/* psql --csv: quoted only when the field holds a comma, quote, CR or LF. */
static void csv_print_field(FILE *f, const char *s, size_t n)
{
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        fwrite(s, 1, n, f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            fputc('"', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}

static void json_print_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

/* A formatted number as JSON: digits as they are, NaN and the infinities
 * (which JSON cannot spell) as strings. */
static void json_print_number(FILE *f, const char *s, size_t n)
{
    if ((n == 3 && memcmp(s, "NaN", 3) == 0) || (n >= 8 && memcmp(s + n - 8, "Infinity", 8) == 0))
        json_print_string(f, s, n);
    else
        fwrite(s, 1, n, f);
}

static void json_print_value(printer *p, const ros_vector *v, uint32_t row)
{
    p->scratch_len = 0;
    int rc = ros_format_value(v, row, &p->scratch, &p->scratch_len, &p->scratch_cap);
    if (rc != 0) {
        if (rc < 0)
            p->oom = true;
        fputs("null", p->out);
        return;
    }
    const char *s = p->scratch;
    size_t n = p->scratch_len;
    switch (v->type) {
    case ROS_TYPE_BOOL:
        fputs(s[0] == 't' ? "true" : "false", p->out);
        break;
    case ROS_TYPE_INT16:
    case ROS_TYPE_INT32:
    case ROS_TYPE_INT64:
    case ROS_TYPE_FLOAT32:
    case ROS_TYPE_FLOAT64:
        json_print_number(p->out, s, n);
        break;
    case ROS_TYPE_FLOAT32_ARRAY: {
        /* "{1,2.5}" -> [1,2.5] */
        fputc('[', p->out);
        size_t i = 1;
        while (i + 1 < n) {
            size_t j = i;
            while (j + 1 < n && s[j] != ',')
                j++;
            if (i > 1)
                fputc(',', p->out);
            json_print_number(p->out, s + i, j - i);
            i = j + 1;
        }
        fputc(']', p->out);
        break;
    }
    default:
        json_print_string(p->out, s, n);
    }
}
