/* SPDX-License-Identifier: MIT */
/* What tests and the fuzzer reach of the vhost-user-blk back end beyond the public API. */
#ifndef VMAPPLE_VHOST_USER_BLK_INTERNAL_H
#define VMAPPLE_VHOST_USER_BLK_INTERNAL_H

#include <stdbool.h>

#include "core.h"
#include "vhost-user.h"
#include "libvmapple/vhost-user-blk.h"

/*
 * vmapple_vhost_user_blk_create() with, when `inline_sync` is set, no ring
 * threads and synchronous engines: vm_vhu_run_inline() runs the rings on the
 * calling thread, deterministically (the fuzzer).
 */
VM_HIDDEN int vm_vhost_user_blk_create_ex(const vmapple_host_ops *ops, void *opaque,
                                          const vmapple_vhost_user_blk_options *opts,
                                          bool inline_sync, vmapple_vhost_user_blk **out);

/* The protocol layer behind a back end (attach, step, run_inline). */
VM_HIDDEN struct vm_vhu *vm_vhost_user_blk_protocol(vmapple_vhost_user_blk *be);

#endif /* VMAPPLE_VHOST_USER_BLK_INTERNAL_H */
