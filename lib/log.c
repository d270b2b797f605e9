/* SPDX-License-Identifier: MIT */
/* Logging through the host, with a per-device rate limit for guest errors. */
#include <stdio.h>
#include <time.h>

#include "core.h"

uint64_t (*vm_clock_hook)(void);

uint64_t vm_clock_ns(void)
{
    struct timespec ts;

    if (vm_clock_hook) {
        return vm_clock_hook();
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

VMAPPLE_API const char *vmapple_log_level_name(int level)
{
    switch (level) {
    case VMAPPLE_LOG_ERROR:
        return "error";
    case VMAPPLE_LOG_WARNING:
        return "warning";
    case VMAPPLE_LOG_GUEST_ERROR:
        return "guest-error";
    case VMAPPLE_LOG_INFO:
        return "info";
    case VMAPPLE_LOG_DEBUG:
        return "debug";
    default:
        return "unknown";
    }
}

__attribute__((format(printf, 4, 0))) static void
log_v(vmapple_device *dev, int level, const char *suffix, const char *fmt, va_list ap)
{
    char msg[512];
    int n;

    n = snprintf(msg, sizeof(msg), "%s: ", dev->name);
    if (n < 0 || (size_t)n >= sizeof(msg)) {
        return;
    }
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    if (suffix) {
        size_t len = strlen(msg);
        snprintf(msg + len, sizeof(msg) - len, "%s", suffix);
    }
    dev->ops.log(dev->opaque, level, msg);
}

void vm_log(vmapple_device *dev, int level, const char *fmt, ...)
{
    va_list ap;

    if (!dev->ops.log) {
        return;
    }
    va_start(ap, fmt);
    log_v(dev, level, NULL, fmt, ap);
    va_end(ap);
}

/*
 * A token bucket: VM_RATELIMIT_BURST lines at once, then one per
 * VM_RATELIMIT_INTERVAL_NS. Lines dropped in between are counted and the
 * count is reported with the next line that passes.
 */
static bool ratelimit_allow(struct vm_ratelimit *rl, uint64_t *suppressed)
{
    uint64_t now = vm_clock_ns();

    if (!rl->primed) {
        rl->primed = true;
        rl->tokens = VM_RATELIMIT_BURST;
        rl->last_refill_ns = now;
    }
    if (now > rl->last_refill_ns) {
        uint64_t refill = (now - rl->last_refill_ns) / VM_RATELIMIT_INTERVAL_NS;
        if (refill > 0) {
            uint64_t t = rl->tokens + refill;
            rl->tokens = t > VM_RATELIMIT_BURST ? VM_RATELIMIT_BURST : (uint32_t)t;
            rl->last_refill_ns += refill * VM_RATELIMIT_INTERVAL_NS;
        }
    }
    if (rl->tokens == 0) {
        rl->suppressed++;
        return false;
    }
    rl->tokens--;
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}

void vm_log_ratelimited(vmapple_device *dev, int level, const char *fmt, ...)
{
    va_list ap;
    uint64_t suppressed = 0;
    char suffix[64];

    if (!dev->ops.log || !ratelimit_allow(&dev->ratelimit, &suppressed)) {
        return;
    }
    if (suppressed) {
        snprintf(suffix, sizeof(suffix), " (%llu similar messages suppressed)",
                 (unsigned long long)suppressed);
    }
    va_start(ap, fmt);
    log_v(dev, level, suppressed ? suffix : NULL, fmt, ap);
    va_end(ap);
}
