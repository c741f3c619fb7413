/*
 * spawn.c
 *    Processes and paths of the coordinator: the run directory, finding the
 *    rosd binary, starting processes detached with their output in a log
 *    file, and talking to a coordinator (starting it when none runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "runtime/core/clock.h"
#include "service/client.h"
#include "service/coordinator.h"
#include "service/spawn.h"

/* sun_path holds 108 bytes; keep room for "/coord.pub" and instance names. */
#define IPC_DIR_MAX 60

int svc_run_dir(const char *db_path, char *out, size_t n)
{
    char abs[PATH_MAX];
    const char *p = db_path;
    if (db_path[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return -1;
        if ((size_t)snprintf(abs, sizeof abs, "%s/%s", cwd, db_path) >= sizeof abs)
            return -1;
        p = abs;
    }
    if (strlen(p) + sizeof ".run" - 1 <= IPC_DIR_MAX) {
        if ((size_t)snprintf(out, n, "%s.run", p) >= n)
            return -1;
        return 0;
    }
    /* too long for ipc:// paths: a directory named after a hash of the path */
    uint64_t h = 1469598103934665603ull;
    for (const char *c = p; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 30)
        tmp = "/tmp";
    if ((size_t)snprintf(out, n, "%s/rosql-%016llx.run", tmp, (unsigned long long)h) >= n)
        return -1;
    return 0;
}

static int run_url(const char *db_path, const char *name, char *out, size_t n)
{
    char dir[PATH_MAX];
    if (svc_run_dir(db_path, dir, sizeof dir) < 0)
        return -1;
    return (size_t)snprintf(out, n, "ipc://%s/%s", dir, name) >= n ? -1 : 0;
}

int svc_coord_ctl_url(const char *db_path, char *out, size_t n) { return run_url(db_path, "coord.ctl", out, n); }
int svc_coord_pub_url(const char *db_path, char *out, size_t n) { return run_url(db_path, "coord.pub", out, n); }

int svc_find_rosd(char *out, size_t n)
{
    const char *env = getenv("ROSQL_ROSD");
    if (env && *env) {
        if ((size_t)snprintf(out, n, "%s", env) >= n)
            return -1;
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            /* next to the caller (installed, or rosd itself), then the build tree */
            static const char *const rel[] = {"rosd", "../service/rosd", "service/rosd"};
            for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                if ((size_t)snprintf(out, n, "%s/%s", self, rel[i]) < n && access(out, X_OK) == 0)
                    return 0;
            }
        }
    }
    const char *path = getenv("PATH");
    if (path) {
        char *copy = strdup(path);
        for (char *save = NULL, *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
            if ((size_t)snprintf(out, n, "%s/rosd", d) < n && access(out, X_OK) == 0) {
                free(copy);
                return 0;
            }
        }
        free(copy);
    }
    return -1;
}

int svc_mkdir_p(const char *dir)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof buf, "%s", dir) >= sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

pid_t svc_spawn(char *const argv[], const char *log_path, bool detach)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid; /* parent, or -1 */
    /* child: a new session, so a Ctrl-C in a shell does not reach services */
    setsid();
    if (detach) {
        /* the coordinator: re-parented to init, never a zombie of the shell */
        pid_t g = fork();
        if (g != 0)
            _exit(g < 0 ? 1 : 0);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) {
        dup2(nul, 0);
        close(nul);
    }
    int fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    if (fd < 0)
        fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    /* close inherited descriptors (sockets, the catalog) */
    for (int i = 3; i < 1024; i++)
        close(i);
    execv(argv[0], argv);
    fprintf(stderr, "could not run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* One request/reply exchange over a fresh REQ socket. */
static int ctl_exchange(const char *url, const char *cmd, char *reply, size_t reply_len, int timeout_ms)
{
    nng_socket s;
    if (nng_req0_open(&s) != 0)
        return -1;
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
    int rv = nng_dial(s, url, NULL, 0);
    if (rv == 0)
        rv = nng_send(s, (void *)cmd, strlen(cmd) + 1, 0);
    char *buf = NULL;
    size_t len = 0;
    if (rv == 0)
        rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
    if (rv == 0) {
        if (reply && reply_len) {
            size_t k = len < reply_len - 1 ? len : reply_len - 1;
            memcpy(reply, buf, k);
            reply[k] = '\0';
        }
        nng_free(buf, len);
    }
    nng_close(s);
    return rv == 0 ? 0 : -1;
}

int svc_coord_request(const char *db_path, const char *cmd, char *reply, size_t reply_len, int timeout_ms,
                      bool start, ros_error *err)
{
    char url[PATH_MAX + 16];
    if (svc_coord_ctl_url(db_path, url, sizeof url) < 0)
        return ros_error_set(err, ROS_ERR_IO, "database path \"%s\" is too long", db_path);
    if (ctl_exchange(url, cmd, reply, reply_len, timeout_ms < 500 ? timeout_ms : 500) == 0)
        return 0;
    if (!start)
        return 1;

    /* no coordinator answers: start one (a second one started at the same
     * moment by another process exits at once: the lock decides) */
    char rosd[PATH_MAX], dir[PATH_MAX], log[PATH_MAX + 16], abs[PATH_MAX];
    if (svc_find_rosd(rosd, sizeof rosd) < 0)
        return ros_error_set(err, ROS_ERR_UNDEFINED_FILE,
                             "could not find the rosd program (set ROSQL_ROSD to its path)");
    if (svc_run_dir(db_path, dir, sizeof dir) < 0 || svc_mkdir_p(dir) < 0)
        return ros_error_set(err, ROS_ERR_IO, "could not create run directory for \"%s\": %s", db_path,
                             strerror(errno));
    if (!realpath(db_path, abs))
        return ros_error_set(err, ROS_ERR_IO, "could not resolve \"%s\": %s", db_path, strerror(errno));
    snprintf(log, sizeof log, "%s/coord.log", dir);
    char *argv[] = {rosd, (char *)"coordinator", abs, NULL};
    pid_t pid = svc_spawn(argv, log, true);
    if (pid < 0)
        return ros_error_set(err, ROS_ERR_IO, "could not start the coordinator: %s", strerror(errno));
    waitpid(pid, NULL, 0); /* the intermediate child exits at once */

    int64_t deadline = ros_mono_ms() + (timeout_ms > 0 ? timeout_ms : 5000);
    while (ros_mono_ms() < deadline) {
        if (ctl_exchange(url, cmd, reply, reply_len, 500) == 0)
            return 0;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ros_error_set(err, ROS_ERR_CONNECTION, "the coordinator of \"%s\" did not answer", db_path);
    ros_error_detail(err, "Its log is %s.", log);
    return -1;
}

svc_client *svc_coord_client(const char *db_path, const svc_client_config *cfg, bool must_exist, ros_error *err)
{
    char ctl[PATH_MAX + 16], pub[PATH_MAX + 16];
    if (svc_coord_ctl_url(db_path, ctl, sizeof ctl) < 0 || svc_coord_pub_url(db_path, pub, sizeof pub) < 0) {
        ros_error_set(err, ROS_ERR_IO, "database path \"%s\" is too long", db_path);
        return NULL;
    }
    /* the coordinator knows every service of the catalog (version 0: none);
     * asking also starts it after a crash */
    char cmd[300], reply[4096] = "";
    unsigned long long version = 0;
    snprintf(cmd, sizeof cmd, "members %.200s", cfg->service);
    if (svc_coord_request(db_path, cmd, reply, sizeof reply, 5000, true, err) < 0)
        return NULL;
    if (must_exist && (sscanf(reply, "members %*s %llu", &version) != 1 || version == 0)) {
        ros_error_set(err, ROS_ERR_UNDEFINED_OBJECT, "service \"%s\" does not exist", cfg->service);
        return NULL;
    }
    svc_client *c = svc_client_open(cfg, err);
    if (c && svc_client_subscribe(c, pub, ctl, err) < 0) {
        svc_client_close(c);
        c = NULL;
    }
    return c;
}

bool svc_rosd_process(pid_t pid, const char *command, const char *arg)
{
    if (pid <= 0 || kill(pid, 0) < 0)
        return false;
    char path[64], cmd[1024];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
    if (f)
        fclose(f);
    cmd[len] = '\0';
    /* arguments are NUL separated: rosd\0job\0DB\0ID */
    bool rosd = false, cmd_ok = !command, arg_ok = !arg;
    int n = 0;
    for (size_t k = 0; k < len; k += strlen(cmd + k) + 1, n++) {
        const char *a = cmd + k;
        if (n == 0)
            rosd = strstr(a, "rosd") != NULL;
        else if (n == 1)
            cmd_ok |= command && strcmp(a, command) == 0;
        else
            arg_ok |= arg && strcmp(a, arg) == 0;
    }
    return rosd && cmd_ok && arg_ok;
}
