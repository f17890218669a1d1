/* Exponential backoff: full jitter honouring the server's Retry-After for requests, equal jitter
 * for restarts of watches. */
#include <errno.h>
#include <sys/random.h>
#include <time.h>

#include "kc_internal.h"

/* min(cap, base * 2^attempt), with base and cap made sane (see kc_backoff_delay_ms). */
static int64_t ceiling_ms(const struct kc_backoff *b, unsigned attempt)
{
    int64_t base = b ? b->base_ms : 0, cap = b ? b->cap_ms : 0, ceiling;

    if (base <= 0)
        base = 0;
    if (cap < base)
        cap = base;
    /* base * 2^attempt, stopping at the cap before it could overflow */
    ceiling = base;
    for (unsigned i = 0; i < attempt && ceiling < cap; i++)
        ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
    return ceiling > cap ? cap : ceiling;
}

/* floor(u * (span + 1)) for u = (random >> 11) / 2^53 in [0, 1): uniform over 0..span. */
static int64_t uniform_ms(int64_t span, uint64_t random)
{
    double u = (double)(random >> 11) / 9007199254740992.0; /* 2^53 */
    int64_t v = (int64_t)(u * ((double)span + 1.0));

    return v > span ? span : v; /* rounding for spans near 2^53 */
}

int64_t kc_backoff_delay_ms(const struct kc_backoff *b, unsigned attempt, int code,
                            int64_t retry_after_s, uint64_t random)
{
    int64_t delay = uniform_ms(ceiling_ms(b, attempt), random);

    if (retry_after_s > 0 && (code == 429 || code >= 500)) {
        int64_t server_ms = retry_after_s > INT64_MAX / 1000 ? INT64_MAX : retry_after_s * 1000;
        if (server_ms > delay)
            delay = server_ms;
    }
    return delay;
}

int64_t kc_backoff_restart_delay_ms(const struct kc_backoff *b, unsigned attempt, uint64_t random)
{
    int64_t ceiling = ceiling_ms(b, attempt), half = ceiling / 2;

    return half + uniform_ms(ceiling - half, random);
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
