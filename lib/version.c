/* SPDX-License-Identifier: MIT */
#include "core.h"

VMAPPLE_API uint32_t vmapple_version(void)
{
    return VMAPPLE_VERSION_NUMBER;
}

VMAPPLE_API const char *vmapple_version_string(void)
{
    return VMAPPLE_VERSION_STRING;
}
