/* SPDX-License-Identifier: MIT */
/**
 * @file libvmapple.h
 * The one header a libvmapple consumer includes.
 *
 * libvmapple implements the Apple-specific devices of the "vmapple" virtual
 * machine as device objects behind a stable C ABI; the host supplies guest
 * memory, interrupts and the bus through vmapple_host_ops. See README.md.
 */
#ifndef LIBVMAPPLE_LIBVMAPPLE_H
#define LIBVMAPPLE_LIBVMAPPLE_H

#include "common.h"
#include "host.h"
#include "device.h"
#include "platform.h"
#include "bus.h"
#include "blockdev.h"
#include "pci.h"
#include "aes.h"
#include "bdif.h"
#include "cfg.h"
#include "pvpanic.h"
#include "xhci.h"
#include "dma-backend.h"
#include "apple-dma-pci.h"
#include "vfio-apple.h"
#include "virtio-blk.h"

#endif /* LIBVMAPPLE_LIBVMAPPLE_H */
