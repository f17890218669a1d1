/* Exponential backoff with full jitter, honouring the server's Retry-After. */
#include <errno.h>
#include <sys/random.h>
#include <time.h>

#include "kc_internal.h"

int64_t kc_backoff_delay_ms(const struct kc_backoff *b, unsigned attempt, int code,
                            int64_t retry_after_s, uint64_t random)
{
    int64_t base = b ? b->base_ms : 0, cap = b ? b->cap_ms : 0, ceiling, delay;
    double u;

    if (base <= 0)
        base = 0;
    if (cap < base)
        cap = base;
    /* base * 2^attempt, stopping at the cap before it could overflow */
    ceiling = base;
    for (unsigned i = 0; i < attempt && ceiling < cap; i++)
        ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
    if (ceiling > cap)
        ceiling = cap;
    u = (double)(random >> 11) / 9007199254740992.0; /* 2^53: u in [0, 1) */
    delay = (int64_t)(u * ((double)ceiling + 1.0));
    if (delay > ceiling) /* rounding for ceilings near 2^53 */
        delay = ceiling;
    if (retry_after_s > 0 && (code == 429 || code >= 500)) {
        int64_t server_ms = retry_after_s > INT64_MAX / 1000 ? INT64_MAX : retry_after_s * 1000;
        if (server_ms > delay)
            delay = server_ms;
    }
    return delay;
}

uint64_t kc_random_u64(void)
{
    uint64_t v;
    struct timespec ts;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
        return v;
    /* no entropy yet (early boot): the clock is enough to spread retries */
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    v = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15u;
    return v;
}
