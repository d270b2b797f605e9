/* SPDX-License-Identifier: MIT */
/**
 * @file pvpanic.h
 * pvpanic over MMIO (VMAPPLE_DEVICE_PVPANIC), the device Linux knows as
 * "qemu,pvpanic-mmio".
 *
 * A 2-byte MMIO window at 0x2007_0000 (region "pvpanic", no interrupt).
 * Reads at any offset return the set of events the device supports (a
 * 2-byte read: the same value zero-extended). A write delivers the events
 * whose bits it sets: each supported one is counted and reported to the host
 * through the options' event callback, and logged; unsupported bits are
 * ignored (and logged once per device).
 *
 * The device does nothing itself: the host decides what an event means
 * (pause, dump, reset, power off). Reports never depend on the host's log
 * callback: a host without one still gets every event through the event
 * callback and vmapple_pvpanic_get_counts().
 */
#ifndef LIBVMAPPLE_PVPANIC_H
#define LIBVMAPPLE_PVPANIC_H

#include "device.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Base and size of the pvpanic window in the vmapple map. */
#define VMAPPLE_PVPANIC_BASE 0x20070000ULL
#define VMAPPLE_PVPANIC_SIZE 0x2ULL

/** pvpanic event bits. */
enum {
    /** The guest panicked. */
    VMAPPLE_PVPANIC_PANICKED = 1u << 0,
    /** The guest loaded a crash kernel and will reboot by itself. */
    VMAPPLE_PVPANIC_CRASH_LOADED = 1u << 1,
    /** The guest asks to be powered off. */
    VMAPPLE_PVPANIC_SHUTDOWN = 1u << 2
};

/** Every event bit this library knows. */
#define VMAPPLE_PVPANIC_ALL_EVENTS \
    (VMAPPLE_PVPANIC_PANICKED | VMAPPLE_PVPANIC_CRASH_LOADED | VMAPPLE_PVPANIC_SHUTDOWN)
/** The supported set when the options leave it 0. */
#define VMAPPLE_PVPANIC_DEFAULT_EVENTS (VMAPPLE_PVPANIC_PANICKED | VMAPPLE_PVPANIC_CRASH_LOADED)

/**
 * The host's event callback: @p events holds the supported bits of one guest
 * write (never 0). Called on the thread that performed the write, before
 * vmapple_device_write() returns, with the opaque pointer given to
 * vmapple_pvpanic_create(). It must not call back into the device.
 */
typedef void (*vmapple_pvpanic_event_fn)(void *opaque, uint32_t events);

/** Options of vmapple_pvpanic_create(). */
typedef struct vmapple_pvpanic_options {
    uint32_t size; /**< sizeof, set by VMAPPLE_PVPANIC_OPTIONS_INIT */
    /**
     * The events the device supports (what reads return), a non-empty subset
     * of VMAPPLE_PVPANIC_ALL_EVENTS; 0 (default) means
     * VMAPPLE_PVPANIC_DEFAULT_EVENTS (PANICKED | CRASH_LOADED). Add
     * VMAPPLE_PVPANIC_SHUTDOWN to let the guest ask for power-off.
     */
    uint32_t events;
    /**
     * Called for every guest write that carries supported events. Optional
     * but strongly recommended: without it the host learns of a panic only
     * from its log and vmapple_pvpanic_get_counts().
     */
    vmapple_pvpanic_event_fn event;
} vmapple_pvpanic_options;

#define VMAPPLE_PVPANIC_OPTIONS_INIT VMAPPLE_SIZED_INIT(vmapple_pvpanic_options)

/**
 * How many times the guest reported each event since the device was created
 * (reset does not clear them; load restores the saved counts). The caller
 * sets size with VMAPPLE_PVPANIC_COUNTS_INIT; the library fills the fields
 * that size covers.
 */
typedef struct vmapple_pvpanic_counts {
    uint32_t size;      /**< sizeof(vmapple_pvpanic_counts) as the caller knows it */
    uint32_t supported; /**< the supported event set */
    uint64_t panicked;
    uint64_t crash_loaded;
    uint64_t shutdown;
    /** Guest writes that carried at least one unsupported bit. */
    uint64_t unsupported_writes;
} vmapple_pvpanic_counts;

#define VMAPPLE_PVPANIC_COUNTS_INIT VMAPPLE_SIZED_INIT(vmapple_pvpanic_counts)

/**
 * Create a pvpanic device. Needs no host callbacks (log is used when given).
 *
 * @param opts NULL for defaults (PANICKED | CRASH_LOADED, no event callback).
 * @param[out] out the new device.
 * @return 0; -EINVAL for a NULL @p out, a bad options or host ops struct, or
 *         events naming bits outside VMAPPLE_PVPANIC_ALL_EVENTS
 *         (vmapple_last_error() names the option); -ENOMEM.
 */
VMAPPLE_API int vmapple_pvpanic_create(const vmapple_host_ops *ops, void *opaque,
                                       const vmapple_pvpanic_options *opts, vmapple_device **out);

/**
 * Read the event counts of a pvpanic device.
 * @param[in,out] counts size set by the caller (VMAPPLE_PVPANIC_COUNTS_INIT).
 * @return 0; -EINVAL for NULL arguments, a size too small to hold the first
 *         field after it, or a device that is not a pvpanic.
 */
VMAPPLE_API int vmapple_pvpanic_get_counts(const vmapple_device *dev,
                                           vmapple_pvpanic_counts *counts);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMAPPLE_PVPANIC_H */
