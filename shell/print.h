/*
 * print.h
 *    Output formats of the rosql shell: psql's aligned table (and its
 *    expanded form), psql --csv, and JSON lines.
 *
 * A printer is a ros_result_sink: the engine hands it a result's columns,
 * then its rows a batch at a time, then the command tag.  The aligned
 * format needs every column's width before it prints the first row, so it
 * buffers a result's rows (formatted as text) up to PR_BUFFER_ROWS rows or
 * PR_BUFFER_BYTES bytes; past that it prints what it holds with the widths
 * found so far and streams the remaining rows with those widths (a later,
 * wider value then pushes its row out of line, as psql's FETCH_COUNT does).
 */
#ifndef SHELL_PRINT_H
#define SHELL_PRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <rosql/rosql.h>

#define PR_BUFFER_ROWS 10000
#define PR_BUFFER_BYTES (8u << 20)

typedef enum pr_format {
    PR_TABLE, /* psql's aligned format */
    PR_CSV,   /* psql --csv */
    PR_JSON   /* one JSON object per row and line */
} pr_format;

typedef enum pr_expanded {
    PR_X_OFF,
    PR_X_ON,
    PR_X_AUTO /* expanded when the table is wider than the terminal */
} pr_expanded;

/* One buffered cell: a range of the printer's text, or NULL. */
typedef struct pr_cell {
    uint32_t off;   /* byte offset into printer.text */
    int32_t len;    /* bytes; -1 for NULL */
} pr_cell;

typedef struct printer {
    /* settings */
    FILE *out;             /* results and tags */
    FILE *err;             /* notices */
    pr_format format;
    pr_expanded expanded;
    bool quiet;            /* no command tags */
    const char *title;     /* printed above the next table, then cleared */
    bool no_footer;        /* no "(N rows)" for the next table (\d NAME) */

    /* the result being received */
    bool has_rows;         /* begin() was called for this statement */
    int ncols;
    char **names;          /* ncols column names */
    ros_type *types;       /* ncols column types */
    int *widths;           /* display width of each column so far */
    int *vwidths;          /* the same over values only (expanded display) */
    pr_cell *cells;        /* buffered rows, ncols cells each */
    size_t nbuffered;      /* rows in cells */
    size_t cells_cap;      /* rows allocated in cells */
    char *text;            /* bytes of buffered cells */
    size_t text_len, text_cap;
    uint64_t nrows;        /* rows received in all */
    bool streaming;        /* header printed: rows go out as they come */
    bool use_expanded;     /* decided at the first flush */
    bool oom;              /* an allocation failed: the statement is cancelled */
    char *scratch;         /* ros_format_value buffer */
    size_t scratch_len, scratch_cap;
} printer;

/* Sets up p with defaults (table, expanded off, stdout/stderr). */
void pr_init(printer *p);
/* Frees what the current result holds; p stays usable. */
void pr_reset(printer *p);

/* A sink that prints into p; valid while p lives. */
ros_result_sink pr_sink(printer *p);

/* Display width of n bytes of UTF-8 text (East Asian wide characters count
 * 2, combining marks 0, tabs up to the next multiple of 8). */
int pr_display_width(const char *s, size_t n);

/* Parses "table", "csv" or "json" (also "aligned"); false if unknown. */
bool pr_format_parse(const char *name, pr_format *out);

#endif /* SHELL_PRINT_H */
