/*
 * nng_bench.c
 *    Baselines of the service benchmark (bench/service_bench.py):
 *
 *    nng_bench naive URL ROWS
 *        What a user without rosql writes: one blocking request per row to a
 *        running service instance (one bigint per frame).  Prints rows/s.
 *
 *    nng_bench raw ROWS_PER_MSG MSGS INFLIGHT
 *        Raw nng REQ/REP over ipc:// in one process: a REP server that
 *        sends every message straight back, and INFLIGHT client threads
 *        exchanging messages of the size of a rosql request frame of
 *        ROWS_PER_MSG bigints.  Prints bytes/s (both directions counted).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "service/frame.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int naive(const char *url, long rows)
{
    nng_socket s;
    if (nng_req0_open(&s) != 0 || nng_dial(s, url, NULL, 0) != 0) {
        fprintf(stderr, "cannot dial %s\n", url);
        return 1;
    }
    ros_vector col;
    ros_vector_init(&col, ROS_TYPE_INT64);
    ros_batch b = {1, 1, &col};
    double t0 = now_s();
    for (long i = 0; i < rows; i++) {
        ros_vector_reset(&col);
        ros_vector_append_i64(&col, i);
        svc_frame_header h;
        svc_request_id id = {0x4242, 1, (uint64_t)i};
        svc_frame_header_init(&h, SVC_KIND_REQUEST, &id);
        h.flags |= SVC_FLAG_VOLATILE; /* never a cache hit */
        uint8_t *buf;
        size_t len;
        ros_error err = {0};
        if (svc_frame_encode(&h, &b, 0, &buf, &len, &err) < 0 || nng_send(s, buf, len, 0) != 0) {
            fprintf(stderr, "send failed\n");
            return 1;
        }
        free(buf);
        char *reply;
        size_t rlen;
        if (nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC) != 0) {
            fprintf(stderr, "recv failed\n");
            return 1;
        }
        svc_frame f;
        if (svc_frame_decode((uint8_t *)reply, rlen, 0, &f, &err) < 0 || f.h.kind != SVC_KIND_RESPONSE ||
            ROS_VEC_I64(&f.batch.cols[0])[0] != i) {
            fprintf(stderr, "bad answer for row %ld\n", i);
            return 1;
        }
        svc_frame_clear(&f);
        nng_free(reply, rlen);
    }
    double dt = now_s() - t0;
    printf("%.1f\n", rows / dt);
    ros_vector_free(&col);
    nng_close(s);
    return 0;
}

typedef struct raw_arg {
    const char *url;
    size_t size;
    long msgs;
} raw_arg;

static void *raw_server(void *p)
{
    nng_socket s = *(nng_socket *)p;
    for (;;) {
        nng_msg *m;
        if (nng_recvmsg(s, &m, 0) != 0)
            return NULL;
        if (nng_sendmsg(s, m, 0) != 0)
            nng_msg_free(m);
    }
}

static void *raw_client(void *p)
{
    raw_arg *a = p;
    nng_socket s;
    if (nng_req0_open(&s) != 0 || nng_dial(s, a->url, NULL, 0) != 0)
        return (void *)1;
    char *buf = calloc(1, a->size);
    for (long i = 0; i < a->msgs; i++) {
        char *reply;
        size_t rlen;
        if (nng_send(s, buf, a->size, 0) != 0 || nng_recv(s, &reply, &rlen, NNG_FLAG_ALLOC) != 0)
            return (void *)1;
        nng_free(reply, rlen);
    }
    free(buf);
    nng_close(s);
    return NULL;
}

static int raw(long rows_per_msg, long msgs, int inflight)
{
    char url[128];
    snprintf(url, sizeof url, "ipc:///tmp/rosql-nng-bench-%d.ipc", (int)getpid());
    nng_socket rep;
    if (nng_rep0_open_raw(&rep) != 0 || nng_listen(rep, url, NULL, 0) != 0) {
        fprintf(stderr, "cannot listen on %s\n", url);
        return 1;
    }
    nng_socket_set_size(rep, NNG_OPT_RECVMAXSZ, 0);
    /* the size of a rosql request frame of rows_per_msg bigints */
    ros_vector col;
    ros_vector_init(&col, ROS_TYPE_INT64);
    for (long i = 0; i < rows_per_msg; i++)
        ros_vector_append_i64(&col, i);
    ros_batch b = {1, (uint32_t)rows_per_msg, &col};
    svc_frame_header h;
    svc_frame_header_init(&h, SVC_KIND_REQUEST, NULL);
    size_t size = svc_frame_size(&h, &b);
    ros_vector_free(&col);

    pthread_t srv[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&srv[i], NULL, raw_server, &rep);
    pthread_t *cl = calloc((size_t)inflight, sizeof *cl);
    raw_arg a = {url, size, msgs / inflight};
    double t0 = now_s();
    for (int i = 0; i < inflight; i++)
        pthread_create(&cl[i], NULL, raw_client, &a);
    for (int i = 0; i < inflight; i++)
        pthread_join(cl[i], NULL);
    double dt = now_s() - t0;
    printf("%.1f %zu\n", 2.0 * (double)size * (double)a.msgs * inflight / dt, size);
    nng_close(rep);
    unlink(url + 6);
    free(cl);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "naive") == 0)
        return naive(argv[2], atol(argv[3]));
    if (argc == 5 && strcmp(argv[1], "raw") == 0)
        return raw(atol(argv[2]), atol(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: nng_bench naive URL ROWS | nng_bench raw ROWS_PER_MSG MSGS INFLIGHT\n");
    return 2;
}
