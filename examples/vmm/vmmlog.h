/* SPDX-License-Identifier: MIT */
/*
 * printf into a machine_config.log sink: the machine and its PCIe host log
 * through the same sink and must format their lines the same way.
 */
#ifndef VMM_VMMLOG_H
#define VMM_VMMLOG_H

#include <stdarg.h>
#include <stdio.h>

static inline void vmm_log(void (*sink)(void *opaque, int level, const char *message), void *opaque,
                           int level, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline void vmm_log(void (*sink)(void *opaque, int level, const char *message), void *opaque,
                           int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    /* No sink, no formatting: a guest can reach these paths at will. */
    if (!sink) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sink(opaque, level, msg);
}

#endif /* VMM_VMMLOG_H */
