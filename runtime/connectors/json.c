/*
 * json.c
 *    A strict, small JSON parser (RFC 8259) for one object per line, and a
 *    string escaper for writing.
 *
 * Only the top-level object's members are reported; nested arrays and
 * objects are checked for syntax and handed over as their text (the file
 * connector reads real[] from an array's text).  Nesting depth is limited so
 * a hostile line cannot exhaust the stack.
 */
#include "runtime/connectors/json.h"

#include <stdint.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

/* Parser state for one line. */
typedef struct json_parser {
    const char *s;          /* input */
    size_t n;               /* input length */
    size_t pos;             /* next byte */
    ros_strbuf *scratch;    /* decoded strings */
    const char *why;        /* first syntax error, or NULL */
    size_t at;              /* its offset */
} json_parser;

static void json_ws(json_parser *p);
static int json_fail(json_parser *p, const char *why);
static int json_string(json_parser *p, bool decode);
static int json_hex4(json_parser *p, uint32_t *out);
static int json_number(json_parser *p);
static int json_literal(json_parser *p, const char *word);
static int json_value(json_parser *p, rt_json_value *v, int depth);
static void json_put_utf8(ros_strbuf *sb, uint32_t cp);

static void json_ws(json_parser *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Records the first syntax error; returns -1. */
static int json_fail(json_parser *p, const char *why)
{
    if (!p->why) {
        p->why = why;
        p->at = p->pos;
    }
    return -1;
}

static void json_put_utf8(ros_strbuf *sb, uint32_t cp)
{
    char b[4];
    size_t k;
    if (cp < 0x80) {
        b[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    ros_strbuf_appendn(sb, b, k);
}

/* Reads 4 hex digits at pos. */
static int json_hex4(json_parser *p, uint32_t *out)
{
    if (p->n - p->pos < 4)
        return json_fail(p, "Unicode escape must be followed by 4 hexadecimal digits.");
    uint32_t cp = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        int d = (c >= '0' && c <= '9') ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0)
            return json_fail(p, "Unicode escape must be followed by 4 hexadecimal digits.");
        cp = cp << 4 | (uint32_t)d;
    }
    p->pos += 4;
    *out = cp;
    return 0;
}

/* Parses a string at pos (on the opening quote); with decode, appends its
 * decoded bytes to scratch. */
static int json_string(json_parser *p, bool decode)
{
    p->pos++; /* opening quote */
    for (;;) {
        size_t run = p->pos;
        while (p->pos < p->n) {
            unsigned char c = (unsigned char)p->s[p->pos];
            if (c == '"' || c == '\\' || c < 0x20)
                break;
            p->pos++;
        }
        if (decode && p->pos > run)
            ros_strbuf_appendn(p->scratch, p->s + run, p->pos - run);
        if (p->pos >= p->n)
            return json_fail(p, "The input string ended unexpectedly.");
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return 0;
        }
        if (c < 0x20)
            return json_fail(p, "Control characters must be escaped in strings.");
        /* backslash */
        if (p->pos + 1 >= p->n)
            return json_fail(p, "The input string ended unexpectedly.");
        char e = p->s[p->pos + 1];
        p->pos += 2;
        char out;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (json_hex4(p, &cp) < 0)
                return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return json_fail(p, "Unicode low surrogate must follow a high surrogate.");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return json_fail(p, "Unicode low surrogate must follow a high surrogate.");
                p->pos += 2;
                if (json_hex4(p, &lo) < 0)
                    return -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return json_fail(p, "Unicode low surrogate must follow a high surrogate.");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (decode)
                json_put_utf8(p->scratch, cp);
            continue;
        }
        default:
            p->pos -= 1;
            return json_fail(p, "Escape sequence is invalid.");
        }
        if (decode)
            ros_strbuf_appendc(p->scratch, out);
    }
}

/* Checks a number's syntax at pos: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number(json_parser *p)
{
    const char *s = p->s;
    size_t i = p->pos, n = p->n;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return json_fail(p, "Token is invalid.");
    if (i < n && s[i] == '.') {
        i++;
        if (!(i < n && s[i] >= '0' && s[i] <= '9'))
            return json_fail(p, "Token is invalid.");
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!(i < n && s[i] >= '0' && s[i] <= '9'))
            return json_fail(p, "Token is invalid.");
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    p->pos = i;
    return 0;
}

static int json_literal(json_parser *p, const char *word)
{
    size_t k = strlen(word);
    if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k) != 0)
        return json_fail(p, "Token is invalid.");
    p->pos += k;
    return 0;
}

/* Parses any value at pos.  Strings are decoded into scratch only at depth 0
 * (member values); nested values are only checked. */
static int json_value(json_parser *p, rt_json_value *v, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return json_fail(p, "Nesting is too deep.");
    json_ws(p);
    if (p->pos >= p->n)
        return json_fail(p, "The input string ended unexpectedly.");
    size_t start = p->pos;
    v->in_scratch = false;
    v->off = start;
    char c = p->s[p->pos];
    switch (c) {
    case '"':
        if (depth == 0) {
            v->kind = RT_JSON_STRING;
            v->in_scratch = true;
            v->off = p->scratch->len;
            if (json_string(p, true) < 0)
                return -1;
            v->len = p->scratch->len - v->off;
            return 0;
        }
        v->kind = RT_JSON_STRING;
        if (json_string(p, false) < 0)
            return -1;
        break;
    case '{':
    case '[': {
        char close = c == '{' ? '}' : ']';
        v->kind = c == '{' ? RT_JSON_OBJECT : RT_JSON_ARRAY;
        p->pos++;
        json_ws(p);
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            break;
        }
        for (;;) {
            rt_json_value inner;
            if (c == '{') {
                json_ws(p);
                if (p->pos >= p->n || p->s[p->pos] != '"')
                    return json_fail(p, "Expected string.");
                if (json_string(p, false) < 0)
                    return -1;
                json_ws(p);
                if (p->pos >= p->n || p->s[p->pos] != ':')
                    return json_fail(p, "Expected \":\".");
                p->pos++;
            }
            if (json_value(p, &inner, depth + 1) < 0)
                return -1;
            json_ws(p);
            if (p->pos < p->n && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->n && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return json_fail(p, c == '{' ? "Expected \",\" or \"}\"." : "Expected \",\" or \"]\".");
        }
        break;
    }
    case 't':
        v->kind = RT_JSON_TRUE;
        if (json_literal(p, "true") < 0)
            return -1;
        break;
    case 'f':
        v->kind = RT_JSON_FALSE;
        if (json_literal(p, "false") < 0)
            return -1;
        break;
    case 'n':
        v->kind = RT_JSON_NULL;
        if (json_literal(p, "null") < 0)
            return -1;
        break;
    default:
        v->kind = RT_JSON_NUMBER;
        if (json_number(p) < 0)
            return -1;
        break;
    }
    v->len = p->pos - start;
    return 0;
}

int rt_json_parse_object(const char *s, size_t n, ros_strbuf *scratch, rt_json_member_fn fn, void *arg,
                         const char **why, size_t *at)
{
    json_parser p = {s, n, 0, scratch, NULL, 0};
    ros_strbuf_reset(scratch);
    int rc = -1;
    json_ws(&p);
    if (p.pos >= n || s[p.pos] != '{') {
        json_fail(&p, "Expected an object.");
        goto done;
    }
    p.pos++;
    json_ws(&p);
    if (p.pos < n && s[p.pos] == '}') {
        p.pos++;
    } else {
        for (;;) {
            json_ws(&p);
            if (p.pos >= n || s[p.pos] != '"') {
                json_fail(&p, "Expected string.");
                goto done;
            }
            size_t koff = scratch->len;
            if (json_string(&p, true) < 0)
                goto done;
            size_t klen = scratch->len - koff;
            json_ws(&p);
            if (p.pos >= n || s[p.pos] != ':') {
                json_fail(&p, "Expected \":\".");
                goto done;
            }
            p.pos++;
            rt_json_value v;
            if (json_value(&p, &v, 0) < 0)
                goto done;
            if (scratch->oom)
                return -3;
            if (fn(arg, scratch->data ? scratch->data + koff : "", klen, &v) < 0)
                return -2;
            json_ws(&p);
            if (p.pos < n && s[p.pos] == ',') {
                p.pos++;
                continue;
            }
            if (p.pos < n && s[p.pos] == '}') {
                p.pos++;
                break;
            }
            json_fail(&p, "Expected \",\" or \"}\".");
            goto done;
        }
    }
    json_ws(&p);
    if (p.pos != n) {
        json_fail(&p, "Expected end of input.");
        goto done;
    }
    rc = 0;
done:
    if (scratch->oom)
        return -3;
    if (rc < 0) {
        *why = p.why;
        *at = p.at;
    }
    return rc;
}

void rt_json_append_string(ros_strbuf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    ros_strbuf_appendc(out, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ros_strbuf_appendn(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': ros_strbuf_appendn(out, "\\\"", 2); break;
        case '\\': ros_strbuf_appendn(out, "\\\\", 2); break;
        case '\n': ros_strbuf_appendn(out, "\\n", 2); break;
        case '\r': ros_strbuf_appendn(out, "\\r", 2); break;
        case '\t': ros_strbuf_appendn(out, "\\t", 2); break;
        case '\b': ros_strbuf_appendn(out, "\\b", 2); break;
        case '\f': ros_strbuf_appendn(out, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            ros_strbuf_appendn(out, u, 6);
        }
        }
    }
    ros_strbuf_appendn(out, s + run, n - run);
    ros_strbuf_appendc(out, '"');
}
