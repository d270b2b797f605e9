/* SPDX-License-Identifier: MIT */
/*
 * The host side of the self-test report: the firmware's UART output split
 * into lines, "@@ " lines parsed into checks (selftest.h has the format),
 * and the verdict and summary table built from them.
 */
#ifndef VMM_REPORT_H
#define VMM_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <glib.h>

struct report_check {
    char device[32];
    char name[48];
    bool pass;
    char detail[200];
};

struct report {
    GArray *checks; /* struct report_check */
    bool ended;
    unsigned end_passed, end_failed;
    char panic[96]; /* "<device> <check>" the firmware panicked on */
    unsigned malformed;
    GString *line;
    /* Called for each complete line; check is set for "@@ check" lines. */
    void (*on_line)(void *opaque, const char *line, const struct report_check *check);
    void *opaque;
};

void report_init(struct report *r,
                 void (*on_line)(void *, const char *, const struct report_check *), void *opaque);
void report_free(struct report *r);
void report_feed(struct report *r, const char *buf, size_t len);
/* Deliver a last line without a newline. */
void report_flush(struct report *r);

unsigned report_failed(const struct report *r);
unsigned report_passed(const struct report *r);
/* Number of checks reported for a device. */
unsigned report_device_checks(const struct report *r, const char *device);
const struct report_check *report_first_failure(const struct report *r);

/* Device names of the report for SELFTEST_DEV_* bits. */
const char *report_device_name(uint64_t selftest_bit);

#endif /* VMM_REPORT_H */
