/* SPDX-License-Identifier: MIT */
/* Parsing the self-test firmware's report lines. */
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "selftest.h"

#define MAX_LINE 1024 /* a longer guest line is cut; the guest cannot grow our memory */

void report_init(struct report *r,
                 void (*on_line)(void *, const char *, const struct report_check *), void *opaque)
{
    memset(r, 0, sizeof(*r));
    r->checks = g_array_new(FALSE, TRUE, sizeof(struct report_check));
    r->line = g_string_new(NULL);
    r->on_line = on_line;
    r->opaque = opaque;
}

void report_free(struct report *r)
{
    if (r->checks) {
        g_array_free(r->checks, TRUE);
    }
    if (r->line) {
        g_string_free(r->line, TRUE);
    }
    memset(r, 0, sizeof(*r));
}

/* Copy the next space-separated word of *p into buf. */
static bool next_word(const char **p, char *buf, size_t len)
{
    const char *s = *p;
    size_t n = 0;

    while (*s == ' ') {
        s++;
    }
    if (!*s) {
        return false;
    }
    while (*s && *s != ' ') {
        if (n + 1 < len) {
            buf[n++] = *s;
        }
        s++;
    }
    buf[n] = 0;
    while (*s == ' ') {
        s++;
    }
    *p = s;
    return true;
}

static void parse_line(struct report *r, const char *line)
{
    const char *p = line + 3;
    char word[64];
    struct report_check c;

    if (!next_word(&p, word, sizeof(word))) {
        r->malformed++;
        return;
    }
    if (!strcmp(word, "check")) {
        char verdict[8];
        memset(&c, 0, sizeof(c));
        if (!next_word(&p, c.device, sizeof(c.device)) || !next_word(&p, c.name, sizeof(c.name)) ||
            !next_word(&p, verdict, sizeof(verdict)) ||
            (strcmp(verdict, "pass") && strcmp(verdict, "FAIL"))) {
            r->malformed++;
            return;
        }
        c.pass = !strcmp(verdict, "pass");
        g_strlcpy(c.detail, p, sizeof(c.detail));
        g_array_append_val(r->checks, c);
        if (r->on_line) {
            r->on_line(r->opaque, line,
                       &g_array_index(r->checks, struct report_check, r->checks->len - 1));
        }
        return;
    }
    if (!strcmp(word, "begin") || !strcmp(word, "skip")) {
        /* Known lines the verdict does not use: they only reach on_line. */
    } else if (!strcmp(word, "panic")) {
        g_strlcpy(r->panic, p, sizeof(r->panic));
    } else if (!strcmp(word, "end")) {
        r->ended = sscanf(p, "%u %u", &r->end_passed, &r->end_failed) == 2;
    } else {
        r->malformed++;
    }
    if (r->on_line) {
        r->on_line(r->opaque, line, NULL);
    }
}

static void deliver(struct report *r)
{
    char *line = r->line->str;
    size_t n = r->line->len;

    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n')) {
        line[--n] = 0;
    }
    if (!strncmp(line, "@@ ", 3)) {
        parse_line(r, line);
    } else if (r->on_line) {
        r->on_line(r->opaque, line, NULL);
    }
    g_string_truncate(r->line, 0);
}

void report_feed(struct report *r, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];

        if (c == '\n') {
            deliver(r);
        } else if (c != '\r' && r->line->len < MAX_LINE) {
            /* Control characters from the guest are not passed to the terminal. */
            g_string_append_c(r->line, (c >= 0x20 && c != 0x7f) || c == '\t' ? c : '?');
        }
    }
}

void report_flush(struct report *r)
{
    if (r->line->len) {
        deliver(r);
    }
}

unsigned report_failed(const struct report *r)
{
    unsigned n = 0;
    for (guint i = 0; i < r->checks->len; i++) {
        n += !g_array_index(r->checks, struct report_check, i).pass;
    }
    return n;
}

unsigned report_passed(const struct report *r)
{
    return r->checks->len - report_failed(r);
}

unsigned report_device_checks(const struct report *r, const char *device)
{
    unsigned n = 0;
    for (guint i = 0; i < r->checks->len; i++) {
        n += !strcmp(g_array_index(r->checks, struct report_check, i).device, device);
    }
    return n;
}

const struct report_check *report_first_failure(const struct report *r)
{
    for (guint i = 0; i < r->checks->len; i++) {
        const struct report_check *c = &g_array_index(r->checks, struct report_check, i);
        if (!c->pass) {
            return c;
        }
    }
    return NULL;
}

const char *report_device_name(uint64_t bit)
{
    switch (bit) {
    case SELFTEST_DEV_UART:
        return "uart";
    case SELFTEST_DEV_GIC:
        return "gic";
    case SELFTEST_DEV_CFG:
        return "cfg";
    case SELFTEST_DEV_BDIF:
        return "bdif";
    case SELFTEST_DEV_AES:
        return "aes";
    case SELFTEST_DEV_PVPANIC:
        return "pvpanic";
    case SELFTEST_DEV_PCI_HOST:
        return "pci";
    case SELFTEST_DEV_VBLK_ROOT:
        return "virtio-blk-root";
    case SELFTEST_DEV_VBLK_AUX:
        return "virtio-blk-aux";
    case SELFTEST_DEV_DMA_PCI:
        return "apple-dma-pci";
    default:
        return NULL;
    }
}
