/*
 * repl.c
 *    The interactive loop: line editing, history, tab completion, Ctrl-C.
 *
 * libedit is used through its native interface (<histedit.h>), not its
 * readline emulation: el_set(EL_GETCFN) lets the shell read the keys
 * itself, so a Ctrl-C at the prompt (SIGINT interrupting read()) becomes an
 * ordinary key bound to "discard this input" instead of needing a
 * siglongjmp out of the library; completion and history are per-EditLine
 * objects rather than readline's globals.
 */
#include "shell.h"

#include <ctype.h>
#include <errno.h>
#include <histedit.h>
#include <limits.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <wchar.h>

#include "sql/parser.h"

#define REPL_HISTORY_SIZE 500
#define REPL_KEY_INTERRUPT L'\003' /* what read_key hands libedit for ^C */

/* libedit callbacks get only the EditLine; this is the rest of the state. */
typedef struct repl {
    shell *sh;
    EditLine *el;
    History *hist;
    char history_path[PATH_MAX];
    bool have_history;
    bool continuation;      /* a statement is being continued */
    bool interrupted;       /* ^C ended the current line */
    char prompt[160];
} repl;

static repl *repl_self;

static char *repl_prompt(EditLine *el);
static int repl_read_key(EditLine *el, wchar_t *wc);
static unsigned char repl_interrupt(EditLine *el, int ch);
static unsigned char repl_complete(EditLine *el, int ch);
static void repl_history_open(repl *r);
static void repl_history_add(repl *r, const char *text);

/* ---------------------------------------------------------------- */
/* Prompt and keys */

static char *repl_prompt(EditLine *el)
{
    repl *r = repl_self;
    snprintf(r->prompt, sizeof r->prompt, "%s%s ", r->sh->name, r->continuation ? "->" : "=>");
    return r->prompt;
}

/*
 * Reads one key for libedit.  SIGINT makes read() fail with EINTR (the
 * handler is installed without SA_RESTART while we sit at the prompt); the
 * interrupt is then passed on as ^C, bound to repl_interrupt.  Returns 1
 * with a character, 0 at end of input, -1 on a read error.
 */
static int repl_read_key(EditLine *el, wchar_t *wc)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    unsigned char first = 0;
    bool partial = false;
    for (;;) {
        if (sh_sigint) {
            sh_sigint = 0;
            *wc = REPL_KEY_INTERRUPT;
            return 1;
        }
        char c;
        ssize_t got = read(STDIN_FILENO, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            return 0;
        if (!partial)
            first = (unsigned char)c;
        wchar_t w;
        size_t k = mbrtowc(&w, &c, 1, &st); /* one byte at a time: st keeps the rest */
        if (k == (size_t)-2) {
            partial = true;
            continue;
        }
        if (k == (size_t)-1) {
            *wc = first; /* not valid in this locale: pass the byte on */
            return 1;
        }
        *wc = k == 0 ? L'\0' : w;
        return 1;
    }
}

/* ^C: give up the line and whatever statement was being continued. */
static unsigned char repl_interrupt(EditLine *el, int ch)
{
    repl_self->interrupted = true;
    return CC_NEWLINE;
}

/* ---------------------------------------------------------------- */
/* Completion */

typedef struct completion {
    char **items;
    size_t n, cap;
} completion;

static void completion_add(completion *c, const char *word, const char *prefix, size_t plen, bool lower)
{
    if (strncasecmp(word, prefix, plen) != 0)
        return;
    for (size_t i = 0; i < c->n; i++)
        if (strcasecmp(c->items[i], word) == 0)
            return;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 32;
        char **ni = realloc(c->items, ncap * sizeof *ni);
        if (!ni)
            return;
        c->items = ni;
        c->cap = ncap;
    }
    char *copy = strdup(word);
    if (!copy)
        return;
    if (lower)
        for (char *p = copy; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    c->items[c->n++] = copy;
}

static void completion_add_objects(completion *c, shell *sh, char kind, const char *prefix, size_t plen)
{
    char **names = ros_session_object_names(sh->session, kind);
    if (!names)
        return;
    for (char **p = names; *p; p++) {
        completion_add(c, *p, prefix, plen, false);
        free(*p);
    }
    free(names);
}

static int completion_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Tab: completes the word before the cursor from the SQL keywords (in the
 * case the user is typing: lower case unless the word so far has capitals)
 * and the names of tables, functions and services; after a backslash at the
 * start of the line, from the backslash commands.  One match is inserted
 * whole; several extend to their common prefix, or are listed.
 */
static unsigned char repl_complete(EditLine *el, int ch)
{
    repl *r = repl_self;
    const LineInfo *li = el_line(el);
    const char *start = li->cursor;
    while (start > li->buffer && (isalnum((unsigned char)start[-1]) || start[-1] == '_' || start[-1] == '\\' ||
                                  (unsigned char)start[-1] >= 0x80))
        start--;
    size_t plen = (size_t)(li->cursor - start);
    char prefix[256];
    if (plen >= sizeof prefix)
        return CC_ERROR;
    memcpy(prefix, start, plen);
    prefix[plen] = '\0';

    completion c = {NULL, 0, 0};
    if (prefix[0] == '\\') {
        for (const char *const *m = meta_names(); *m; m++)
            completion_add(&c, *m, prefix, plen, false);
    } else {
        bool lower = true;
        for (size_t i = 0; i < plen; i++)
            if (isupper((unsigned char)prefix[i]))
                lower = false;
        completion_add_objects(&c, r->sh, 't', prefix, plen);
        completion_add_objects(&c, r->sh, 'f', prefix, plen);
        completion_add_objects(&c, r->sh, 's', prefix, plen);
        if (plen > 0) /* every keyword at once would be noise */
            for (const char *const *k = sql_keywords(); k && *k; k++)
                completion_add(&c, *k, prefix, plen, lower);
    }

    unsigned char rc = CC_REFRESH_BEEP;
    if (c.n == 1) {
        el_deletestr(el, (int)plen);
        el_insertstr(el, c.items[0]);
        el_insertstr(el, " ");
        rc = CC_REFRESH;
    } else if (c.n > 1) {
        qsort(c.items, c.n, sizeof *c.items, completion_cmp);
        /* common prefix (case-insensitive, spelled as the first match) */
        size_t common = strlen(c.items[0]);
        for (size_t i = 1; i < c.n; i++) {
            size_t k = 0;
            while (k < common && c.items[i][k] &&
                   tolower((unsigned char)c.items[i][k]) == tolower((unsigned char)c.items[0][k]))
                k++;
            common = k;
        }
        if (common > plen) {
            el_deletestr(el, (int)plen);
            char *head = strndup(c.items[0], common);
            if (head) {
                el_insertstr(el, head);
                free(head);
            }
            rc = CC_REFRESH;
        } else {
            /* list the candidates in columns, then redraw the prompt */
            size_t width = 0;
            for (size_t i = 0; i < c.n; i++)
                if (strlen(c.items[i]) > width)
                    width = strlen(c.items[i]);
            width += 2;
            size_t per_line = width < 80 ? 80 / width : 1;
            fputc('\n', stdout);
            for (size_t i = 0; i < c.n; i++) {
                fprintf(stdout, "%-*s", (int)width, c.items[i]);
                if ((i + 1) % per_line == 0 || i + 1 == c.n)
                    fputc('\n', stdout);
            }
            fflush(stdout);
            rc = CC_REDISPLAY;
        }
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.items[i]);
    free(c.items);
    return rc;
}

/* ---------------------------------------------------------------- */
/* History */

/* $ROSQL_HISTORY, else ~/.rosql_history; none when HOME is unset too. */
static void repl_history_open(repl *r)
{
    HistEvent ev;
    r->hist = history_init();
    if (!r->hist)
        return;
    history(r->hist, &ev, H_SETSIZE, REPL_HISTORY_SIZE);
    history(r->hist, &ev, H_SETUNIQUE, 1);
    el_set(r->el, EL_HIST, history, r->hist);

    const char *env = getenv("ROSQL_HISTORY");
    const char *home = getenv("HOME");
    int n = -1;
    if (env && env[0])
        n = snprintf(r->history_path, sizeof r->history_path, "%s", env);
    else if (home && home[0])
        n = snprintf(r->history_path, sizeof r->history_path, "%s/.rosql_history", home);
    if (n <= 0 || (size_t)n >= sizeof r->history_path)
        return;
    r->have_history = true;
    history(r->hist, &ev, H_LOAD, r->history_path); /* a missing file is fine */
}

static void repl_history_add(repl *r, const char *text)
{
    HistEvent ev;
    if (!r->hist || !text[0])
        return;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        n--;
    char *entry = strndup(text, n);
    if (!entry)
        return;
    history(r->hist, &ev, H_ENTER, entry);
    free(entry);
}

/* ---------------------------------------------------------------- */
/* The loop */

int repl_run(shell *sh)
{
    repl r;
    memset(&r, 0, sizeof r);
    r.sh = sh;
    repl_self = &r;
    setlocale(LC_CTYPE, ""); /* libedit needs the terminal's encoding */

    r.el = el_init("rosql", stdin, stdout, stderr);
    if (!r.el) {
        sh_error("could not initialise line editing");
        return 1;
    }
    el_set(r.el, EL_EDITOR, "emacs");
    el_set(r.el, EL_PROMPT, repl_prompt);
    el_set(r.el, EL_GETCFN, repl_read_key);
    el_set(r.el, EL_ADDFN, "rosql-complete", "complete a keyword or name", repl_complete);
    el_set(r.el, EL_BIND, "^I", "rosql-complete", NULL);
    el_set(r.el, EL_ADDFN, "rosql-interrupt", "discard the input", repl_interrupt);
    el_set(r.el, EL_BIND, "^C", "rosql-interrupt", NULL);
    el_source(r.el, NULL); /* ~/.editrc, as other libedit programs */
    repl_history_open(&r);

    if (!sh->pr.quiet)
        printf("rosql %s\nType \"\\?\" for help.\n\n", ROSQL_VERSION);

    ros_strbuf query = ROS_STRBUF_INIT;
    while (!sh->quit) {
        r.continuation = query.len > 0;
        r.interrupted = false;
        sh_signals_at_prompt(true);
        int count = 0;
        const char *line = el_gets(r.el, &count);
        sh_signals_at_prompt(false);
        if (r.interrupted) {
            /* libedit leaves the cursor on the abandoned line */
            fputc('\n', stdout);
            fflush(stdout);
            ros_strbuf_reset(&query);
            continue;
        }
        if (!line) {
            if (count < 0 && errno == EINTR)
                continue;
            if (!sh->pr.quiet)
                printf("\\q\n"); /* psql echoes the implied \q at EOF */
            break;
        }
        char *copy = strdup(line);
        if (!copy)
            break;
        size_t n = strlen(copy);
        while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == '\r'))
            copy[--n] = '\0';

        const char *p = copy + strspn(copy, " \t");
        if (*p == '\\') {
            repl_history_add(&r, copy);
            meta_run(sh, p, &query);
        } else if (*p || query.len > 0) {
            ros_strbuf_append(&query, copy);
            ros_strbuf_appendc(&query, '\n');
            if (sql_is_complete(ros_strbuf_cstr(&query))) {
                repl_history_add(&r, ros_strbuf_cstr(&query));
                sh_run_sql(sh, ros_strbuf_cstr(&query));
                ros_strbuf_reset(&query);
            } else if (query.oom) {
                sh_error("out of memory");
                ros_strbuf_reset(&query);
            }
        }
        free(copy);
    }
    ros_strbuf_free(&query);

    if (r.have_history) {
        HistEvent ev;
        if (history(r.hist, &ev, H_SAVE, r.history_path) < 0)
            sh_error("could not save history to \"%s\"", r.history_path);
    }
    if (r.hist)
        history_end(r.hist);
    el_end(r.el);
    repl_self = NULL;
    return 0;
}
