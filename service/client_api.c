/*
 * client_api.c
 *    The C-function API of include/rosql/client.h over a service client.
 *
 * A ros_client wraps one svc_client and numbers its calls (seq 1, 2, ...).
 * Each ros_call is the tag of its svc_client request, so a finished request
 * finds its call directly, whichever call is being waited for: a result
 * that arrives while another call waits (or while submit drains a slot) is
 * parked on its own ros_call.  Calls abandoned with ros_call_free while
 * running are freed when their result arrives, or with the client.
 *
 * Like svc_client, a ros_client is used by one thread at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rosql/client.h>

#include "service/client.h"

typedef enum call_state {
    CALL_RUNNING, /* submitted, no result yet */
    CALL_DONE,    /* result parked in res */
    CALL_TAKEN    /* result handed out by ros_call_wait */
} call_state;

struct ros_call {
    ros_client *cl;
    uint64_t seq;
    call_state state;
    bool abandoned;          /* freed by the user while running */
    svc_result res;          /* CALL_DONE */
    ros_call *prev, *next;   /* every live call of the client */
};

struct ros_client {
    svc_client *svc;
    uint64_t next_seq;
    ros_call *calls;
};

static void set_errbuf(char *errbuf, size_t errlen, const char *msg);
static void call_unlink(ros_call *call);
static void deliver(svc_result *res);
static int batch_copy(ros_batch *dst, const ros_batch *src);

/* ---------------------------------------------------------------- */
/* Helpers */

static void set_errbuf(char *errbuf, size_t errlen, const char *msg)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "%s", msg);
}

static void call_unlink(ros_call *call)
{
    ros_client *cl = call->cl;
    if (call->prev)
        call->prev->next = call->next;
    else
        cl->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

/* Parks a finished request on its call (or drops it if abandoned). */
static void deliver(svc_result *res)
{
    ros_call *call = res->tag;
    if (call->abandoned) {
        svc_result_clear(res);
        call_unlink(call);
        free(call);
        return;
    }
    call->res = *res;
    memset(res, 0, sizeof *res);
    call->state = CALL_DONE;
}

/* Deep copy of src's rows into dst (one memcpy per buffer).  Returns 0, or
 * -1 out of memory with dst empty.  src has passed svc_frame_batch_size. */
static int batch_copy(ros_batch *dst, const ros_batch *src)
{
    memset(dst, 0, sizeof *dst);
    uint32_t n = src->nrows;
    dst->nrows = n;
    if (src->ncols == 0)
        return 0;
    dst->cols = calloc(src->ncols, sizeof *dst->cols);
    if (!dst->cols)
        return -1;
    dst->ncols = src->ncols;
    for (uint32_t c = 0; c < src->ncols; c++) {
        const ros_vector *s = &src->cols[c];
        ros_vector *d = &dst->cols[c];
        ros_vector_init(d, s->type);
        if (n == 0)
            continue;
        size_t vb = ((size_t)n + 7) / 8;
        if (s->validity) {
            if (!(d->validity = malloc(vb)))
                goto oom;
            memcpy(d->validity, s->validity, vb);
        }
        if (ros_type_is_varlen(s->type)) {
            uint32_t base = s->offsets[0], len = s->offsets[n] - base;
            if (!(d->offsets = malloc(((size_t)n + 1) * sizeof(uint32_t))))
                goto oom;
            for (uint32_t i = 0; i <= n; i++)
                d->offsets[i] = s->offsets[i] - base;
            if (len) {
                if (!(d->data = malloc(len)))
                    goto oom;
                memcpy(d->data, s->data + base, len);
            }
            d->data_len = d->data_cap = len;
        } else if (ros_type_width(s->type)) {
            size_t bytes = (size_t)n * ros_type_width(s->type);
            if (!(d->values = malloc(bytes)))
                goto oom;
            memcpy(d->values, s->values, bytes);
        }
        d->len = d->cap = n;
    }
    return 0;
oom:
    svc_batch_free(dst);
    return -1;
}

/* ---------------------------------------------------------------- */
/* Host side */

ros_client *svc_ros_client_wrap(svc_client *c)
{
    ros_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->svc = c;
    return cl;
}

void svc_ros_client_free(ros_client *cl)
{
    if (!cl)
        return;
    svc_client_close(cl->svc);
    while (cl->calls) {
        ros_call *call = cl->calls;
        cl->calls = call->next;
        svc_result_clear(&call->res);
        free(call);
    }
    free(cl);
}

/* ---------------------------------------------------------------- */
/* Function side */

ros_call *ros_client_submit(ros_client *c, const char *method, const ros_batch *args,
                            char *errbuf, size_t errlen)
{
    if (!c || !args) {
        set_errbuf(errbuf, errlen, "no client or no arguments");
        return NULL;
    }
    if (svc_frame_batch_size(args) == SIZE_MAX) {
        set_errbuf(errbuf, errlen, "invalid argument batch: a column is shorter than the batch or lacks a buffer");
        return NULL;
    }
    ros_call *call = calloc(1, sizeof *call);
    ros_batch copy;
    if (!call || batch_copy(&copy, args) < 0) {
        free(call);
        set_errbuf(errbuf, errlen, "out of memory");
        return NULL;
    }
    call->cl = c;
    call->seq = ++c->next_seq;
    call->state = CALL_RUNNING;
    for (;;) {
        ros_error err;
        ros_error_clear(&err);
        int rc = svc_client_submit(c->svc, call->seq, method, SVC_FLAG_ORDERED, &copy, call, &err);
        if (rc == 0)
            break;
        if (rc < 0) {
            set_errbuf(errbuf, errlen, err.message);
            svc_batch_free(&copy);
            free(call);
            return NULL;
        }
        /* In-flight limit: take one finished call off the client. */
        svc_result res;
        if (svc_client_poll(c->svc, -1, &res) != 1) {
            set_errbuf(errbuf, errlen, "service client is full but has nothing outstanding");
            svc_batch_free(&copy);
            free(call);
            return NULL;
        }
        deliver(&res);
    }
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    return call;
}

int ros_call_wait(ros_call *call, int timeout_ms, ros_vector *out, char *errbuf, size_t errlen)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!call || !out) {
        set_errbuf(errbuf, errlen, "no call or no output vector");
        return -1;
    }
    if (call->state == CALL_TAKEN) {
        set_errbuf(errbuf, errlen, "the result of this call was already taken");
        return -1;
    }
    svc_client *svc = call->cl->svc;
    /* Poll in slices so that a deadline is kept even when other calls'
     * results arrive first. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (call->state == CALL_RUNNING) {
        int wait = -1;
        if (timeout_ms >= 0) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            long spent = (long)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
            wait = spent >= timeout_ms ? 0 : (int)(timeout_ms - spent);
        }
        svc_result res;
        int rc = svc_client_poll(svc, wait, &res);
        if (rc == 1) {
            deliver(&res);
            continue;
        }
        if (rc == 0) {
            if (wait == 0)
                return 1;
            continue;
        }
        set_errbuf(errbuf, errlen, "call is not outstanding on its client");
        return -1;
    }
    call->state = CALL_TAKEN;
    if (!call->res.ok) {
        set_errbuf(errbuf, errlen, call->res.error.message);
        svc_result_clear(&call->res);
        return -1;
    }
    *out = call->res.out;
    memset(&call->res.out, 0, sizeof call->res.out);
    svc_result_clear(&call->res);
    return 0;
}

void ros_call_free(ros_call *call)
{
    if (!call)
        return;
    if (call->state == CALL_RUNNING) {
        call->abandoned = true; /* deliver() frees it */
        return;
    }
    svc_result_clear(&call->res);
    call_unlink(call);
    free(call);
}

int ros_client_call(ros_client *c, const char *method, const ros_batch *args, ros_vector *out,
                    char *errbuf, size_t errlen)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!out) {
        set_errbuf(errbuf, errlen, "no output vector");
        return -1;
    }
    ros_call *call = ros_client_submit(c, method, args, errbuf, errlen);
    if (!call)
        return -1;
    int rc = ros_call_wait(call, -1, out, errbuf, errlen);
    ros_call_free(call);
    return rc == 0 ? 0 : -1;
}
