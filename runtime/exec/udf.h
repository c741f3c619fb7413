/*
 * udf.h
 *    Loading and calling user C functions (include/rosql/udf.h).
 *
 * A library is opened with dlopen() and the named symbol must be a
 * `const ros_udf` whose ABI version, argument and result types match the
 * declaration; anything else is an error at CREATE FUNCTION time.  Loaded
 * functions are cached per session, so init (a model load) runs once per
 * process, and fini runs when the session closes.
 */
#ifndef RT_UDF_H
#define RT_UDF_H

#include <rosql/udf.h>

#include "catalog/catalog.h"
#include "planner/plan.h"
#include "runtime/core/error.h"

struct plan_udf {
    char *name;              /* SQL name, for messages */
    char *library;           /* resolved path */
    char *symbol;
    void *handle;            /* dlopen handle */
    const ros_udf *desc;     /* the exported descriptor */
    ros_func_ctx fctx;       /* context handed to the function */
    char *options_text;      /* fctx.options storage */
    bool inited;             /* init has run (or there is none) */
    struct rt_udf_cache *cache; /* the cache holding it (service clients), or NULL */
    plan_udf *next;          /* cache list */
};

/* A service client handed to C functions (ctx->host->get_client). */
typedef struct rt_host_client {
    char *service;
    ros_client *client;
    struct rt_host_client *next;
} rt_host_client;

/* A per-session cache of loaded functions, and of the service clients they
 * asked for. */
typedef struct rt_udf_cache {
    plan_udf *head;
    const char *db_path;     /* database of the session: finds its coordinator */
    rt_host_client *clients;
} rt_udf_cache;

/*
 * Opens library and checks that symbol is a ros_udf matching nargs/arg_types/
 * ret_type.  On success returns the loaded function (not cached; free with
 * rt_udf_unload); NULL with err set on failure:
 *   `could not load library "x": <dlerror>` (ROS_ERR_UNDEFINED_FILE),
 *   `could not find function "s" in file "x"` (ROS_ERR_UNDEFINED_FUNCTION),
 *   `function "s" in file "x" does not match its declaration` with a detail.
 */
plan_udf *rt_udf_load(const char *name, const char *library, const char *symbol, int nargs,
                      const ros_type *arg_types, ros_type ret_type, const char *options, ros_error *err);
void rt_udf_unload(plan_udf *u);

/* Returns the cached function for f, loading it on first use. */
plan_udf *rt_udf_cache_get(rt_udf_cache *c, const cat_function *f, ros_error *err);
/* Runs fini of every cached function and unloads them. */
void rt_udf_cache_clear(rt_udf_cache *c);

/*
 * Calls u on n rows.  Runs init on first call.  out must be empty with the
 * function's result type.  Checks that the function produced exactly n rows.
 * Returns 0 or -1 with err set (`function f failed: <its message>`).
 */
int rt_udf_call(plan_udf *u, const ros_vector *const *args, uint32_t n, ros_vector *out, ros_error *err);

#endif /* RT_UDF_H */
