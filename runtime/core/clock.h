/*
 * clock.h
 *    Milliseconds: monotonic (timeouts, backoff) and wall-clock (deadlines
 *    that cross processes, such as a frame's deadline).
 */
#ifndef ROS_CLOCK_H
#define ROS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t ros_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t ros_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* ROS_CLOCK_H */
