/* SPDX-License-Identifier: MIT */
/**
 * @file common.h
 * Conventions shared by every libvmapple function: export macro, error
 * reporting, log levels, and version queries.
 *
 * Error convention: every function that can fail returns 0 (or a
 * non-negative count) on success and a negative errno value on failure.
 * vmapple_strerror() names the value; the object the call was made on keeps
 * a longer message (which option, which limit) readable through its
 * *_last_error() function, and the calling thread's most recent failure is
 * also readable through vmapple_last_error(), which is the only place to
 * find the detail of a failed *_create() call.
 *
 * Programming errors of the host (a NULL object, a struct whose size field
 * is too small, an access size the ABI does not allow) return -EINVAL.
 * Nothing a guest does makes the library abort, exit or assert.
 */
#ifndef LIBVMAPPLE_COMMON_H
#define LIBVMAPPLE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <libvmapple/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * VMAPPLE_SIZED_INIT(T): the initialiser behind every *_INIT macro. It sets
 * the leading size field of T to sizeof(T) and every other field to zero,
 * without -Wmissing-field-initializers warnings in C99 or C++.
 */
#ifdef __cplusplus
} /* extern "C" */
template <typename T> inline T vmapple_sized_init_()
{
    T v = T();
    v.size = (uint32_t)sizeof(T);
    return v;
}
#define VMAPPLE_SIZED_INIT(T) (vmapple_sized_init_<T>())
extern "C" {
#else
#define VMAPPLE_SIZED_INIT(T)       \
    {                               \
        .size = (uint32_t)sizeof(T) \
    }
#endif

#if defined(VMAPPLE_BUILDING_LIBRARY) && defined(__GNUC__)
#define VMAPPLE_API __attribute__((visibility("default")))
#else
#define VMAPPLE_API
#endif

/**
 * Version of the library the program runs with, as VMAPPLE_VERSION_NUMBER
 * encodes it ((major << 16) | (minor << 8) | patch).
 */
VMAPPLE_API uint32_t vmapple_version(void);

/** Version of the library the program runs with, e.g. "1.0.0". Never NULL. */
VMAPPLE_API const char *vmapple_version_string(void);

/**
 * A short, static, English description of an error value.
 *
 * @param err a negative errno value as returned by a libvmapple function
 *            (a positive value is accepted too).
 * @return never NULL; "success" for 0, "unknown error N" for values the
 *         library does not know.
 */
VMAPPLE_API const char *vmapple_strerror(int err);

/**
 * The detailed message of the calling thread's most recent failed libvmapple
 * call, whatever object it was made on. It names the option, field or limit
 * involved, e.g. "cfg: option serial is 40 characters, the limit is 31".
 *
 * @return never NULL; "" when no call on this thread has failed. The string
 *         stays valid until the next libvmapple call on the same thread.
 */
VMAPPLE_API const char *vmapple_last_error(void);

/** Log levels passed to vmapple_host_ops.log. Lower is more severe. */
typedef enum vmapple_log_level {
    /** The host's set-up or the host system failed (I/O error, bad option). */
    VMAPPLE_LOG_ERROR = 0,
    /** Something the host should know about, not fatal. */
    VMAPPLE_LOG_WARNING = 1,
    /**
     * The guest did something invalid (bad register, malformed request).
     * Rate-limited per device so that a hostile guest cannot flood the log.
     */
    VMAPPLE_LOG_GUEST_ERROR = 2,
    /** Notable events of normal operation. */
    VMAPPLE_LOG_INFO = 3,
    /** Detail for debugging the library or a guest driver. */
    VMAPPLE_LOG_DEBUG = 4
} vmapple_log_level;

/** A name for a log level ("error", "warning", "guest-error", ...). */
VMAPPLE_API const char *vmapple_log_level_name(int level);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_COMMON_H */
