/*
 * builtin.c
 *    The registry of built-in handlers (builtin:NAME).
 */
#include "service/builtin/builtin.h"

#include <string.h>

#include "service/builtin/builtin_int.h"

static const svc_builtin *const builtins[] = {
    &svc_builtin_echo,
    &svc_builtin_delay,
    &svc_builtin_embed,
    &svc_builtin_cosine,
};

const svc_builtin *svc_builtin_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i]->name, name) == 0)
            return builtins[i];
    return NULL;
}
