/* SPDX-License-Identifier: MIT */
/* Test images for the self-test firmware, and checks on user images. */
#ifndef VMM_IMAGES_H
#define VMM_IMAGES_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#define IMAGE_VZ_HEADER_SIZE 0x4000u /* the header VZ keeps in front of the aux volume */

/*
 * Write a self-test image of @p bytes (a multiple of 512) to @p path: a
 * header in sector 0, the pattern up to the last MiB (or the last eighth of
 * a small image), zeros in the scratch area after it. With
 * @p vz_header, a 16 KiB header of zeros goes in front, like an untrimmed
 * VZ aux file (for testing the detection).
 */
bool image_create(const char *path, uint32_t kind, uint64_t bytes, uint64_t seed, bool vz_header,
                  GError **error);

/*
 * Does the file at @p path look like an untrimmed VZ aux image (the 16 KiB
 * VZ header still in front of the volume)? Two signs are checked: a
 * self-test image header at 0x4000 instead of 0, and the binary-plist ECID
 * record ("\x04ECID\x02\x08") that VZ aux images carry at file offset
 * 0x6c804 (an empirical location found by the macosvm project; it is at
 * 0x68804 once the header is trimmed). @p why says which sign was found.
 * @return true when a sign was found; false otherwise or when unreadable.
 */
bool image_has_vz_header(const char *path, const char **why);

#endif /* VMM_IMAGES_H */
