/* SPDX-License-Identifier: MIT */
/* Error names, the per-thread last error, and the vm_error() helpers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

static _Thread_local char thread_error[VM_ERROR_LEN];

struct errno_name {
    int err;
    const char *text;
};

/* Static strings: strerror(3) is neither thread-safe nor stable across libcs. */
static const struct errno_name errno_names[] = {
    { EPERM, "operation not permitted" },
    { ENOENT, "no such entry" },
    { EIO, "input/output error" },
    { ENXIO, "no device at this address" },
    { E2BIG, "argument too big" },
    { EBADF, "bad file descriptor" },
    { EAGAIN, "try again" },
    { ENOMEM, "out of memory" },
    { EACCES, "permission denied" },
    { EFAULT, "bad guest address" },
    { EBUSY, "device or resource busy" },
    { EEXIST, "already exists or overlaps" },
    { ENODEV, "wrong device type" },
    { EISDIR, "is a directory" },
    { EINVAL, "invalid argument" },
    { EMFILE, "too many open files" },
    { EFBIG, "file too large" },
    { ENOSPC, "no space left (buffer or volume too small)" },
    { ESPIPE, "illegal seek" },
    { EROFS, "read-only volume" },
    { ERANGE, "out of range" },
    { ENOSYS, "not implemented" },
    { ENODATA, "no data" },
    { ETIMEDOUT, "timed out" },
    { EPROTO, "protocol error" },
    { EBADMSG, "malformed or corrupt data" },
    { EOVERFLOW, "value too large" },
    { EPROTONOSUPPORT, "unsupported version" },
    { ENOTSUP, "not supported" },
    { ECANCELED, "cancelled" },
    { ENOTCONN, "not connected" },
    { ECONNRESET, "connection reset" },
    { EINTR, "interrupted" },
};

VMAPPLE_API const char *vmapple_strerror(int err)
{
    static _Thread_local char unknown[32];

    if (err == 0) {
        return "success";
    }
    if (err < 0) {
        err = err == -2147483647 - 1 ? 0 : -err;
    }
    for (size_t i = 0; i < VM_ARRAY_SIZE(errno_names); i++) {
        if (errno_names[i].err == err) {
            return errno_names[i].text;
        }
    }
    snprintf(unknown, sizeof(unknown), "unknown error %d", err);
    return unknown;
}

VMAPPLE_API const char *vmapple_last_error(void)
{
    return thread_error;
}

void vm_set_thread_error(const char *msg)
{
    snprintf(thread_error, sizeof(thread_error), "%s", msg);
}

__attribute__((format(printf, 4, 0))) static int error_v(const char *prefix, char *slot, int err,
                                                         const char *fmt, va_list ap)
{
    char msg[VM_ERROR_LEN];
    int n = 0;

    if (prefix && prefix[0]) {
        n = snprintf(msg, sizeof(msg), "%s: ", prefix);
    }
    if (n >= 0 && (size_t)n < sizeof(msg)) {
        vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    }
    vm_set_thread_error(msg);
    if (slot) {
        memcpy(slot, msg, sizeof(msg));
    }
    return err;
}

int vm_error(vmapple_device *dev, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err = error_v(dev ? dev->name : NULL, dev ? dev->last_error : NULL, err, fmt, ap);
    va_end(ap);
    return err;
}

int vm_error_named(const char *prefix, char *slot, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err = error_v(prefix, slot, err, fmt, ap);
    va_end(ap);
    return err;
}
