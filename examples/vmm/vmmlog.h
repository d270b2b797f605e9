/* SPDX-License-Identifier: MIT */
/*
 * printf into a machine_config.log sink: the machine and its PCIe host log
 * through the same sink and must format their lines the same way.
 */
#ifndef VMM_VMMLOG_H
#define VMM_VMMLOG_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libvmapple/common.h>

/*
 * A guest can repeat what causes a guest-error line as often as it likes,
 * so each kind of such line is logged this many times per machine and no
 * more; the last one says so.
 */
#define VMM_GUEST_ERROR_LINES 10u

static inline void vmm_vlog(void (*sink)(void *opaque, int level, const char *message),
                            void *opaque, int level, const char *capped_kind, const char *fmt,
                            va_list ap) __attribute__((format(printf, 5, 0)));
static inline void vmm_vlog(void (*sink)(void *opaque, int level, const char *message),
                            void *opaque, int level, const char *capped_kind, const char *fmt,
                            va_list ap)
{
    char msg[512];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (capped_kind) {
        /* The last line of a capped kind (vmm_guest_error) says so. */
        n = strlen(msg);
        snprintf(msg + n, sizeof(msg) - n, " (further %s are not logged)", capped_kind);
    }
    sink(opaque, level, msg);
}

static inline void vmm_log(void (*sink)(void *opaque, int level, const char *message), void *opaque,
                           int level, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline void vmm_log(void (*sink)(void *opaque, int level, const char *message), void *opaque,
                           int level, const char *fmt, ...)
{
    va_list ap;

    /* No sink, no formatting: a guest can reach these paths at will. */
    if (!sink) {
        return;
    }
    va_start(ap, fmt);
    vmm_vlog(sink, opaque, level, NULL, fmt, ap);
    va_end(ap);
}

/*
 * A VMAPPLE_LOG_GUEST_ERROR line of the kind counted in *logged, unless
 * VMM_GUEST_ERROR_LINES of that kind were logged already. @p kind names the
 * kind in the last line's note ("unmapped accesses").
 */
static inline void vmm_guest_error(void (*sink)(void *opaque, int level, const char *message),
                                   void *opaque, unsigned *logged, const char *kind,
                                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static inline void vmm_guest_error(void (*sink)(void *opaque, int level, const char *message),
                                   void *opaque, unsigned *logged, const char *kind,
                                   const char *fmt, ...)
{
    va_list ap;

    if (*logged >= VMM_GUEST_ERROR_LINES) {
        return;
    }
    ++*logged;
    if (!sink) {
        return;
    }
    va_start(ap, fmt);
    vmm_vlog(sink, opaque, VMAPPLE_LOG_GUEST_ERROR, *logged == VMM_GUEST_ERROR_LINES ? kind : NULL,
             fmt, ap);
    va_end(ap);
}

#endif /* VMM_VMMLOG_H */
