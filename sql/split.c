/*
 * split.c
 *    Splitting a script into statements, and telling the interactive shell
 *    whether what it has read so far ends a statement.
 *
 * libpg_query's scanner-based splitter does the work: it knows where strings,
 * comments and dollar quotes begin and end, and it does not need the
 * statements to be valid PostgreSQL (the parser-based one fails on rosql's
 * extension statements).  We then trim each piece to its first and last real
 * token, so a span starts at a keyword and leading comments and blank lines
 * do not count, and drop pieces that hold no token at all.  Tokens the
 * splitter leaves out (it skips statements that do not start with a keyword
 * it knows) become statements too, so no input is ever dropped silently.
 */
#include "sql_int.h"

#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

/* ------------------------------------------------------------------ */
/* sql_split */

static int span_cmp(const void *a, const void *b)
{
    const sql_span *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

int sql_split(const char *script, sql_span **spans, int *n, ros_error *err)
{
    *spans = NULL;
    *n = 0;

    PgQuerySplitResult res = pg_query_split_with_scanner(script);
    if (res.error) {
        ros_error_set(err, ROS_ERR_SYNTAX, "%s", res.error->message);
        ros_error_position(err, res.error->cursorpos);
        pg_query_free_split_result(res);
        return -1;
    }

    /* Tokens of the whole script locate the first and last real token of
     * each piece. */
    ros_arena arena;
    ros_arena_init(&arena);
    sql_tokens toks;
    int rc = sql_lex(script, &arena, &toks, err);
    if (rc < 0)
        goto done;

    /* one span per statement at most: every statement has a token */
    sql_span *out = malloc(sizeof(sql_span) * (size_t)(toks.n + res.n_stmts + 1));
    bool *covered = calloc((size_t)toks.n + 1, sizeof(bool));
    if (!out || !covered) {
        free(out);
        free(covered);
        rc = ros_error_oom(err);
        goto done;
    }
    int count = 0;
    for (int i = 0; i < res.n_stmts; i++) {
        int from = res.stmts[i]->stmt_location;
        int to = from + res.stmts[i]->stmt_len;
        int first = sql_tok_at(&toks, from);
        int last = -1;
        for (int k = first; k < toks.n && toks.toks[k].start < to; k++) {
            covered[k] = true;
            if (!sql_tok_is_punct(&toks, k, ';'))
                last = k;
        }
        if (last < 0)
            continue; /* empty or only comments */
        while (sql_tok_is_punct(&toks, first, ';'))
            first++;
        out[count].offset = toks.toks[first].start;
        out[count].length = toks.toks[last].end - toks.toks[first].start;
        count++;
    }
    /*
     * The scanner-based splitter silently leaves out a statement that does
     * not start with a keyword it knows ("SELEC 1", "oops;").  Never lose
     * input: tokens no span covers become statements of their own, cut at
     * top-level semicolons, and the parser then reports them properly.
     */
    for (int k = 0; k < toks.n;) {
        if (covered[k] || sql_tok_is_punct(&toks, k, ';')) {
            k++;
            continue;
        }
        int first = k, last = k, depth = 0;
        for (; k < toks.n && !covered[k]; k++) {
            if (sql_tok_is_punct(&toks, k, '('))
                depth++;
            else if (sql_tok_is_punct(&toks, k, ')') && depth > 0)
                depth--;
            else if (depth == 0 && sql_tok_is_punct(&toks, k, ';'))
                break;
            last = k;
        }
        out[count].offset = toks.toks[first].start;
        out[count].length = toks.toks[last].end - toks.toks[first].start;
        count++;
    }
    free(covered);
    qsort(out, (size_t)count, sizeof(sql_span), span_cmp);
    *spans = out;
    *n = count;

done:
    ros_arena_free(&arena);
    pg_query_free_split_result(res);
    return rc;
}

/* ------------------------------------------------------------------ */
/* sql_is_complete */

/*
 * Complete when the last token is a semicolon outside parentheses.  Text the
 * scanner rejects is incomplete when the problem is an unterminated quote or
 * comment (more lines will close it); any other scanner error is reported
 * once the user ends the line with a semicolon, so the shell does not wait
 * forever.
 */
bool sql_is_complete(const char *text)
{
    ros_arena arena;
    ros_arena_init(&arena);
    ros_error err;
    ros_error_clear(&err);
    sql_tokens toks;
    bool complete = false;

    if (sql_lex(text, &arena, &toks, &err) < 0) {
        if (strncmp(err.message, "unterminated", 12) != 0) {
            size_t len = strlen(text);
            while (len > 0 && strchr(" \t\r\n\f", text[len - 1]))
                len--;
            complete = len > 0 && text[len - 1] == ';';
        }
        goto done;
    }
    int depth = 0;
    for (int i = 0; i < toks.n; i++) {
        if (sql_tok_is_punct(&toks, i, '(') || sql_tok_is_punct(&toks, i, '['))
            depth++;
        else if ((sql_tok_is_punct(&toks, i, ')') || sql_tok_is_punct(&toks, i, ']')) && depth > 0)
            depth--;
    }
    complete = toks.n > 0 && depth == 0 && sql_tok_is_punct(&toks, toks.n - 1, ';');

done:
    ros_arena_free(&arena);
    return complete;
}
