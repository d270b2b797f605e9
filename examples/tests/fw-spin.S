/* SPDX-License-Identifier: MIT */
/* A firmware that never ends: only --timeout stops it. */
    .text
    .global _start
_start:
    b       .
