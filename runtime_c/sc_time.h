/* A monotonic clock in seconds. */
#ifndef SC_TIME_H
#define SC_TIME_H

#include <time.h>

static inline double sc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
