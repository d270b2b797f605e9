/* SPDX-License-Identifier: MIT */
/* The public header compiles as strict C99 and its initialisers work. */
#include <libvmapple/libvmapple.h>

#include <stdio.h>
#include <string.h>

static const vmapple_host_ops static_ops = VMAPPLE_HOST_OPS_INIT;

int main(void)
{
    vmapple_host_ops ops = VMAPPLE_HOST_OPS_INIT;
    vmapple_bus_range range = VMAPPLE_BUS_RANGE_INIT;
    vmapple_blockdev_file_options fo = VMAPPLE_BLOCKDEV_FILE_OPTIONS_INIT;
    vmapple_blockdev_ops bo = VMAPPLE_BLOCKDEV_OPS_INIT;
    vmapple_blockdev_options bopt = VMAPPLE_BLOCKDEV_OPTIONS_INIT;
    vmapple_aes_options aes = VMAPPLE_AES_OPTIONS_INIT;

    if (ops.size != sizeof(ops) || static_ops.size != sizeof(ops) || ops.mem_read != NULL ||
        range.size != sizeof(range) || fo.size != sizeof(fo) || fo.flags != 0 ||
        bo.size != sizeof(bo) || bopt.size != sizeof(bopt) || aes.size != sizeof(aes) ||
        aes.cbc_chain_iv != 0 || aes.builtin_keys[6].length != 0) {
        fprintf(stderr, "an _INIT macro is wrong\n");
        return 1;
    }
    if (vmapple_version() != VMAPPLE_VERSION_NUMBER ||
        strcmp(vmapple_version_string(), VMAPPLE_VERSION_STRING) != 0) {
        fprintf(stderr, "header and library versions differ\n");
        return 1;
    }
    return 0;
}
