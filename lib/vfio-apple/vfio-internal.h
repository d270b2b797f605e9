/* SPDX-License-Identifier: MIT */
/* Internal interfaces shared by the files of lib/vfio-apple. */
#ifndef VMAPPLE_VFIO_INTERNAL_H
#define VMAPPLE_VFIO_INTERNAL_H

#include <pthread.h>

#include "core.h"

struct vmapple_dma_backend {
    int refs; /* atomic */
    vmapple_dma_ops ops;
    void *opaque;
    const char *name;
    pthread_mutex_t lock;
    uint32_t max_mappings, mappings;
    uint64_t max_bytes, bytes;
    uint64_t failed_maps;
    char last_error[VM_ERROR_LEN];
};

/* Take a reference on a DMA backend (a device keeps one). */
VM_HIDDEN void vm_dma_backend_ref(vmapple_dma_backend *dma);
/* The backend's name in log lines and errors ("identity", "sim-dart", "host"). */
VM_HIDDEN const char *vm_dma_backend_name(const vmapple_dma_backend *dma);
/* Create a backend from callbacks (copied as the library knows them), with limits. */
VM_HIDDEN int vm_dma_backend_new(const vmapple_dma_ops *ops, void *opaque, const char *name,
                                 uint32_t max_mappings, uint64_t max_bytes,
                                 vmapple_dma_backend **out);

/*
 * A batch of maps and unmaps under one acquisition of the backend's lock
 * (apple-dma-pci processes a whole command page this way). The _locked
 * calls behave as vmapple_dma_backend_map()/_unmap() without the argument
 * checks for NULL; map_locked also leaves the range check to its caller.
 */
VM_HIDDEN void vm_dma_backend_lock(vmapple_dma_backend *dma);
VM_HIDDEN void vm_dma_backend_unlock(vmapple_dma_backend *dma);
VM_HIDDEN int vm_dma_backend_unmap_locked(vmapple_dma_backend *dma, uint64_t gpa, uint64_t len,
                                          uint64_t bus_addr, uint64_t bus_len);

/* Why a map was refused before the backend was asked (cold: kept out of batch loops). */
VM_HIDDEN __attribute__((noinline, cold)) int
vm_dma_backend_map_refused(vmapple_dma_backend *dma, uint64_t gpa, uint64_t len);
/* The backend failed, or answered a range no guest may be given. */
VM_HIDDEN __attribute__((noinline, cold)) int vm_dma_backend_map_failed(vmapple_dma_backend *dma,
                                                                        int ret, uint64_t gpa,
                                                                        uint64_t len, uint64_t addr,
                                                                        uint64_t blen);

/*
 * Inline: apple-dma-pci calls it once per entry of a batch. The caller has
 * checked that [gpa, gpa + len) is not empty and does not wrap.
 */
static inline int vm_dma_backend_map_locked(vmapple_dma_backend *dma, uint64_t gpa, void *host,
                                            uint64_t len, uint32_t flags, uint64_t *bus_addr,
                                            uint64_t *bus_len)
{
    uint64_t addr = 0, blen = 0;
    int ret;

    if (vm_unlikely((dma->max_mappings && dma->mappings >= dma->max_mappings) ||
                    (dma->max_bytes && len > dma->max_bytes - dma->bytes))) {
        return vm_dma_backend_map_refused(dma, gpa, len);
    }
    ret = dma->ops.map(dma->opaque, gpa, host, len, flags, &addr, &blen);
    if (vm_unlikely(ret != 0 || blen == 0 || blen > len || !vm_range_ok(addr, blen))) {
        return vm_dma_backend_map_failed(dma, ret, gpa, len, addr, blen);
    }
    dma->mappings++;
    dma->bytes += len;
    *bus_addr = addr;
    *bus_len = blen;
    return 0;
}

/* Take a reference on a vfio backend (a passthrough function keeps one). */
VM_HIDDEN void vm_vfio_backend_ref(vmapple_vfio_backend *backend);

/*
 * The libpciaccess backend's operations (vfio-pciaccess.c). Returns
 * -ENOTSUP when built without libpciaccess.
 */
VM_HIDDEN int vm_pciaccess_open(const vmapple_vfio_pciaccess_options *opts,
                                vmapple_vfio_backend **out);

#endif /* VMAPPLE_VFIO_INTERNAL_H */
