/*
 * main.c
 *    rosql, the interactive SQL shell: options and modes.
 *
 * rosql [options] [DBFILE] opens DBFILE (created if missing; a transient
 * database without one) and then either runs the -c/-f actions in the
 * order given, or reads statements from standard input when that is not a
 * terminal, or starts the interactive loop (repl.c).  Scripts stop at the
 * first error with exit status 1; see shell/README.md.
 */
#include "shell.h"

#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/core/error.h"

/* One -c or -f, kept in command-line order. */
typedef struct action {
    bool is_file;
    const char *arg;
} action;

static void usage(FILE *out);
static int run_command(shell *sh, const char *text);

static void usage(FILE *out)
{
    fprintf(out,
            "rosql is the interactive terminal for rosql databases.\n"
            "\n"
            "Usage:\n"
            "  rosql [OPTION]... [DBFILE]\n"
            "\n"
            "Without DBFILE a transient database is used and removed at exit.\n"
            "\n"
            "Options:\n"
            "  -c, --command=SQL        run SQL (one or more statements, or one\n"
            "                           backslash command) and exit; repeatable\n"
            "  -f, --file=FILE          run statements from FILE (\"-\": standard input)\n"
            "                           and exit; repeatable, in order with -c\n"
            "  -F, --format=FORMAT      output format: table (default), csv, json\n"
            "      --csv                same as --format=csv\n"
            "      --json               same as --format=json (one object per row)\n"
            "  -x, --expanded           expanded table output (as \\x)\n"
            "  -q, --quiet              no command tags, banner or messages\n"
            "  -V, --version            print the version and exit\n"
            "  -?, --help               print this help and exit\n"
            "\n"
            "Statements are read from standard input when it is not a terminal and\n"
            "no -c or -f is given.  Outside the interactive shell the first error\n"
            "stops rosql with exit status 1.\n"
            "\n"
            "Environment:\n"
            "  ROSQL_HISTORY            history file (default ~/.rosql_history)\n");
}

/* -c: a backslash command, or SQL. */
static int run_command(shell *sh, const char *text)
{
    const char *p = text + strspn(text, " \t\n");
    if (*p != '\\')
        return sh_run_sql(sh, text);
    ros_strbuf query = ROS_STRBUF_INIT;
    int rc = meta_run(sh, p, &query);
    ros_strbuf_free(&query);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"command", required_argument, NULL, 'c'},
        {"file", required_argument, NULL, 'f'},
        {"format", required_argument, NULL, 'F'},
        {"csv", no_argument, NULL, 1},
        {"json", no_argument, NULL, 2},
        {"expanded", no_argument, NULL, 'x'},
        {"quiet", no_argument, NULL, 'q'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, '?'},
        {NULL, 0, NULL, 0},
    };
    shell sh;
    memset(&sh, 0, sizeof sh);
    pr_init(&sh.pr);

    /* at most argc actions: a fixed array avoids a cleanup path for the
     * early exits below */
    action actions[argc > 0 ? argc : 1];
    int nactions = 0;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:f:F:xqV?", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
        case 'f':
            actions[nactions].is_file = opt == 'f';
            actions[nactions].arg = optarg;
            nactions++;
            break;
        case 'F':
            if (!pr_format_parse(optarg, &sh.pr.format)) {
                sh_error("invalid output format \"%s\" (table, csv or json)", optarg);
                return 1;
            }
            break;
        case 1: sh.pr.format = PR_CSV; break;
        case 2: sh.pr.format = PR_JSON; break;
        case 'x': sh.pr.expanded = PR_X_ON; break;
        case 'q': sh.pr.quiet = true; break;
        case 'V':
            printf("rosql %s\n", ROSQL_VERSION);
            return 0;
        case '?':
            if (optopt == 0 || optopt == '?') {
                /* -? or --help (getopt reports unknown long options with optopt 0 too) */
                if (strcmp(argv[optind - 1], "-?") == 0 || strcmp(argv[optind - 1], "--help") == 0) {
                    usage(stdout);
                    return 0;
                }
                sh_error("unrecognized option \"%s\"", argv[optind - 1]);
            } else if (strchr("cfF", optopt)) {
                sh_error("option requires an argument -- '%c'", optopt);
            } else {
                sh_error("invalid option -- '%c'", optopt);
            }
            fprintf(stderr, "Try \"rosql --help\" for more information.\n");
            return 1;
        }
    }
    if (optind < argc)
        sh.dbpath = argv[optind++];
    if (optind < argc) {
        sh_error("extra command-line argument \"%s\" ignored", argv[optind]);
    }

    /* The prompt names the database by its file's base name. */
    if (sh.dbpath) {
        char *copy = strdup(sh.dbpath);
        const char *base = copy ? basename(copy) : sh.dbpath;
        snprintf(sh.name, sizeof sh.name, "%s", base);
        char *dot = strrchr(sh.name, '.');
        if (dot && dot != sh.name)
            *dot = '\0'; /* mydb.rosql -> mydb */
        free(copy);
    } else {
        snprintf(sh.name, sizeof sh.name, "rosql");
    }

    ros_error err;
    ros_error_clear(&err);
    sh.session = ros_session_open(sh.dbpath, &err);
    if (!sh.session) {
        ros_strbuf sb = ROS_STRBUF_INIT;
        ros_error_format(&err, NULL, &sb);
        fprintf(stderr, "rosql: could not open database%s%s%s\n%s", sh.dbpath ? " \"" : "",
                sh.dbpath ? sh.dbpath : "", sh.dbpath ? "\"" : "", ros_strbuf_cstr(&sb));
        ros_strbuf_free(&sb);
        return 1;
    }

    int status = 0;
    if (nactions > 0) {
        sh_signals_install(&sh);
        for (int i = 0; i < nactions && !sh.quit; i++) {
            int rc = actions[i].is_file ? sh_run_file(&sh, actions[i].arg) : run_command(&sh, actions[i].arg);
            if (rc < 0) {
                status = 1;
                break;
            }
        }
    } else if (!isatty(STDIN_FILENO)) {
        sh_signals_install(&sh);
        status = sh_run_stream(&sh, stdin) < 0 ? 1 : 0;
    } else {
        sh.interactive = true;
        sh_signals_install(&sh);
        status = repl_run(&sh);
    }

    fflush(stdout);
    ros_session_close(sh.session);
    pr_reset(&sh.pr);
    free(sh.pr.scratch);
    return status;
}
