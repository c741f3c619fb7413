/*
 * proxy.h
 *    The Proxy operator (proxy.c): a function computed by a service.
 */
#ifndef RT_PROXY_H
#define RT_PROXY_H

#include "runtime/exec/exec.h"

typedef struct rt_proxy rt_proxy;

/* Connects to the service of proxy node p (starting the coordinator when
 * none runs).  NULL with err set on failure. */
rt_proxy *rt_proxy_open(rt_exec_ctx *ctx, const plan_node *p, ros_error *err);

/*
 * Next output batch into out (initialised with p's output types): 1 with a
 * batch, 0 at the end, -1 with err set.  check(check_arg, err) is called
 * while waiting (cancel, statement timeout) and stops the operator when it
 * returns < 0.
 */
int rt_proxy_next(rt_proxy *px, rt_op *child, ros_batch *out, int (*check)(void *, ros_error *), void *check_arg,
                  ros_error *err);

void rt_proxy_free(rt_proxy *px);

/* Checkpoint state (see rt_op_snapshot): the rows taken from the child and
 * not yet emitted, with their requests (ids, rows) and the results already
 * received.  A restore re-sends the unanswered requests under the same ids,
 * so a service answers them from its cache or from the running original. */
struct rt_wbuf;
struct rt_rbuf;
int rt_proxy_snapshot(rt_proxy *px, struct rt_wbuf *w, ros_error *err);
int rt_proxy_restore(rt_proxy *px, struct rt_rbuf *r, ros_error *err);
void rt_proxy_get_stats(const rt_proxy *px, rt_proxy_stats *st);

/* Rows given the on_error treatment ('null' or 'skip') so far. */
uint64_t rt_proxy_failed_rows(const rt_proxy *px);

#endif /* RT_PROXY_H */
