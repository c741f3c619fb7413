/*
 * lex.c
 *    Tokens of a statement, from libpg_query's scanner.
 *
 * The extension grammar, the statement router and a few corners of the
 * libpg_query converter (was an option value quoted?) need tokens.  Rather
 * than keep a second lexer in step with PostgreSQL's quoting rules (dollar
 * quotes, E'' strings, nested comments) we ask PostgreSQL's own scanner
 * (pg_query_scan) and keep a compact copy of its answer in the arena: class,
 * byte range and whether the word is reserved.  Comments are dropped.
 */
#include "sql_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

static sql_tok_class classify(const PgQuery__ScanToken *tok, const char *text);

/* ------------------------------------------------------------------ */
/* Scanning */

int sql_lex(const char *text, ros_arena *arena, sql_tokens *out, ros_error *err)
{
    out->text = text;
    out->toks = NULL;
    out->n = 0;

    PgQueryScanResult res = pg_query_scan(text);
    if (res.error) {
        ros_error_set(err, ROS_ERR_SYNTAX, "%s", res.error->message);
        ros_error_position(err, res.error->cursorpos);
        pg_query_free_scan_result(res);
        return -1;
    }
    PgQuery__ScanResult *scan =
        pg_query__scan_result__unpack(NULL, res.pbuf.len, (const uint8_t *)res.pbuf.data);
    if (!scan) {
        pg_query_free_scan_result(res);
        return ros_error_set(err, ROS_ERR_INTERNAL, "could not read the scanner's output");
    }

    int rc = 0;
    out->toks = ROS_ARENA_ARRAY(arena, sql_token, scan->n_tokens + 1);
    if (!out->toks) {
        rc = ros_error_oom(err);
        goto done;
    }
    for (size_t i = 0; i < scan->n_tokens; i++) {
        const PgQuery__ScanToken *st = scan->tokens[i];
        if (st->token == PG_QUERY__TOKEN__SQL_COMMENT || st->token == PG_QUERY__TOKEN__C_COMMENT)
            continue;
        sql_token *t = &out->toks[out->n++];
        t->cls = classify(st, text);
        t->start = st->start;
        t->end = st->end;
        t->reserved = st->keyword_kind == PG_QUERY__KEYWORD_KIND__RESERVED_KEYWORD;
    }

done:
    pg_query__scan_result__free_unpacked(scan, NULL);
    pg_query_free_scan_result(res);
    return rc;
}

static sql_tok_class classify(const PgQuery__ScanToken *tok, const char *text)
{
    if (tok->keyword_kind != PG_QUERY__KEYWORD_KIND__NO_KEYWORD)
        return SQL_TOK_WORD;
    switch (tok->token) {
    case PG_QUERY__TOKEN__IDENT:
        return text[tok->start] == '"' ? SQL_TOK_QIDENT : SQL_TOK_WORD;
    case PG_QUERY__TOKEN__SCONST:
        return SQL_TOK_STRING;
    case PG_QUERY__TOKEN__ICONST:
        return SQL_TOK_INT;
    case PG_QUERY__TOKEN__FCONST:
        return SQL_TOK_FLOAT;
    default:
        return tok->token > 0 && tok->token < 256 ? SQL_TOK_PUNCT : SQL_TOK_OTHER;
    }
}

/* ------------------------------------------------------------------ */
/* Token accessors */

bool sql_tok_is_word(const sql_tokens *t, int i, const char *w)
{
    if (i < 0 || i >= t->n || t->toks[i].cls != SQL_TOK_WORD)
        return false;
    size_t len = (size_t)(t->toks[i].end - t->toks[i].start);
    return strlen(w) == len && strncasecmp(t->text + t->toks[i].start, w, len) == 0;
}

bool sql_tok_is_punct(const sql_tokens *t, int i, char c)
{
    return i >= 0 && i < t->n && t->toks[i].cls == SQL_TOK_PUNCT && t->text[t->toks[i].start] == c;
}

char *sql_tok_text(const sql_tokens *t, int i, ros_arena *arena)
{
    return ros_arena_strndup(arena, t->text + t->toks[i].start,
                             (size_t)(t->toks[i].end - t->toks[i].start));
}

char *sql_tok_ident(const sql_tokens *t, int i, ros_arena *arena)
{
    const sql_token *tok = &t->toks[i];
    const char *s = t->text + tok->start;
    size_t len = (size_t)(tok->end - tok->start);
    if (tok->cls != SQL_TOK_QIDENT)
        return sql_lower(ros_arena_strndup(arena, s, len));
    /* "a""b" -> a"b */
    char *out = ros_arena_alloc(arena, len);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t k = 1; k + 1 < len; k++) {
        out[o++] = s[k];
        if (s[k] == '"' && s[k + 1] == '"')
            k++;
    }
    out[o] = '\0';
    return out;
}

/* Resolves one backslash escape of an E'' string at s[*k] (just past the
 * backslash) into out; advances *k past it. */
static size_t unescape_backslash(const char *s, size_t len, size_t *k, char *out)
{
    char c = s[*k];
    (*k)++;
    switch (c) {
    case 'n': *out = '\n'; return 1;
    case 't': *out = '\t'; return 1;
    case 'r': *out = '\r'; return 1;
    case 'b': *out = '\b'; return 1;
    case 'f': *out = '\f'; return 1;
    case 'x': {
        int v = 0, digits = 0;
        while (digits < 2 && *k < len && isxdigit((unsigned char)s[*k])) {
            char h = s[(*k)++];
            v = v * 16 + (isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
            digits++;
        }
        *out = (char)v;
        return 1;
    }
    default:
        if (c >= '0' && c <= '7') {
            int v = c - '0', digits = 1;
            while (digits < 3 && *k < len && s[*k] >= '0' && s[*k] <= '7') {
                v = v * 8 + (s[(*k)++] - '0');
                digits++;
            }
            *out = (char)v;
            return 1;
        }
        *out = c;
        return 1;
    }
}

char *sql_tok_string(const sql_tokens *t, int i, ros_arena *arena)
{
    const sql_token *tok = &t->toks[i];
    const char *s = t->text + tok->start;
    size_t len = (size_t)(tok->end - tok->start);
    char *out = ros_arena_alloc(arena, len + 1);
    if (!out)
        return NULL;
    size_t o = 0;

    if (s[0] == '$') {
        /* $tag$ ... $tag$ */
        const char *tag_end = memchr(s + 1, '$', len - 1);
        size_t tag = tag_end ? (size_t)(tag_end - s) + 1 : 1;
        if (len >= 2 * tag) {
            memcpy(out, s + tag, len - 2 * tag);
            o = len - 2 * tag;
        }
        out[o] = '\0';
        return out;
    }

    /* 'a''b', E'a\nb', N'x', and 'a'\n'b' continuations */
    size_t k = 0;
    bool escapes = false;
    if (s[k] == 'E' || s[k] == 'e') {
        escapes = true;
        k++;
    } else if (s[k] == 'N' || s[k] == 'n') {
        k++;
    }
    while (k < len && s[k] == '\'') {
        k++; /* opening quote */
        while (k < len) {
            if (s[k] == '\'') {
                if (k + 1 < len && s[k + 1] == '\'') {
                    out[o++] = '\'';
                    k += 2;
                    continue;
                }
                k++; /* closing quote */
                break;
            }
            if (escapes && s[k] == '\\' && k + 1 < len) {
                k++;
                o += unescape_backslash(s, len, &k, out + o);
                continue;
            }
            out[o++] = s[k++];
        }
        while (k < len && s[k] != '\'')
            k++; /* whitespace between continued strings */
    }
    out[o] = '\0';
    return out;
}

int sql_tok_at(const sql_tokens *t, int off)
{
    int lo = 0, hi = t->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t->toks[mid].start < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
