/* SPDX-License-Identifier: MIT */
#include <string.h>

#include <plist/plist.h>

#include "machine-id.h"

#define MAX_FILE  (4u << 20) /* machine identifiers and VM configs are small */
#define MAX_DEPTH 16

static const char *const id_keys[] = { "machineId", "machineIdentifier", "MachineIdentifier" };

static bool ecid_from_plist_bytes(const uint8_t *data, size_t len, uint64_t *ecid, int depth);

static bool ecid_from_node(plist_t node, uint64_t *ecid, int depth)
{
    plist_t item;

    if (!node || depth > MAX_DEPTH || plist_get_node_type(node) != PLIST_DICT) {
        return false;
    }
    item = plist_dict_get_item(node, "ECID");
    if (item && plist_get_node_type(item) == PLIST_UINT) {
        plist_get_uint_val(item, ecid);
        return true;
    }
    for (size_t k = 0; k < sizeof(id_keys) / sizeof(id_keys[0]); k++) {
        item = plist_dict_get_item(node, id_keys[k]);
        if (!item) {
            continue;
        }
        if (plist_get_node_type(item) == PLIST_DATA) {
            char *bytes = NULL;
            uint64_t n = 0;
            bool ok;

            plist_get_data_val(item, &bytes, &n);
            ok = bytes && ecid_from_plist_bytes((const uint8_t *)bytes, n, ecid, depth + 1);
            free(bytes);
            if (ok) {
                return true;
            }
        } else if (plist_get_node_type(item) == PLIST_STRING) {
            char *s = NULL;
            gsize n = 0;
            guchar *bytes;
            bool ok = false;

            plist_get_string_val(item, &s);
            if (s) {
                bytes = g_base64_decode(s, &n);
                ok = bytes && ecid_from_plist_bytes(bytes, n, ecid, depth + 1);
                g_free(bytes);
                free(s);
            }
            if (ok) {
                return true;
            }
        }
    }
    /* UTM and others nest the identifier: look one level down everywhere. */
    {
        plist_dict_iter it = NULL;
        char *key = NULL;
        plist_t val = NULL;
        bool found = false;

        plist_dict_new_iter(node, &it);
        if (!it) {
            return false;
        }
        for (;;) {
            plist_dict_next_item(node, it, &key, &val);
            if (!val) {
                break;
            }
            free(key);
            key = NULL;
            if (plist_get_node_type(val) == PLIST_DICT && ecid_from_node(val, ecid, depth + 1)) {
                found = true;
                break;
            }
        }
        free(key);
        free(it);
        return found;
    }
}

static bool ecid_from_plist_bytes(const uint8_t *data, size_t len, uint64_t *ecid, int depth)
{
    plist_t root = NULL;
    bool ok;

    if (len < 8 || len > MAX_FILE || depth > MAX_DEPTH) {
        return false;
    }
    plist_from_memory((const char *)data, (uint32_t)len, &root);
    if (!root) {
        return false;
    }
    ok = ecid_from_node(root, ecid, depth);
    plist_free(root);
    return ok;
}

/*
 * JSON: just enough to read the top-level string members of an object.
 * Values that are not strings are skipped, nesting and all.
 */
struct json {
    const char *p, *end;
};

static void json_ws(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->p++;
    }
}

/* A string at j->p (after the opening quote is checked); NULL on bad input. */
static GString *json_string(struct json *j)
{
    GString *s;

    if (j->p >= j->end || *j->p != '"') {
        return NULL;
    }
    j->p++;
    s = g_string_new(NULL);
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            if (j->p >= j->end) {
                break;
            }
            c = *j->p++;
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'u':
                /* Only needed for keys and base64 text: keep it as a placeholder. */
                if (j->end - j->p < 4) {
                    g_string_free(s, TRUE);
                    return NULL;
                }
                j->p += 4;
                c = '?';
                break;
            default:
                break; /* \" \\ \/ */
            }
        }
        g_string_append_c(s, c);
    }
    if (j->p >= j->end) {
        g_string_free(s, TRUE);
        return NULL;
    }
    j->p++;
    return s;
}

static bool json_skip_value(struct json *j, int depth)
{
    json_ws(j);
    if (j->p >= j->end || depth > 64) {
        return false;
    }
    if (*j->p == '"') {
        GString *s = json_string(j);
        if (!s) {
            return false;
        }
        g_string_free(s, TRUE);
        return true;
    }
    if (*j->p == '{' || *j->p == '[') {
        char close = *j->p == '{' ? '}' : ']';
        bool object = *j->p == '{';

        j->p++;
        json_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return true;
        }
        for (;;) {
            if (object) {
                GString *k = json_string(j);
                if (!k) {
                    return false;
                }
                g_string_free(k, TRUE);
                json_ws(j);
                if (j->p >= j->end || *j->p++ != ':') {
                    return false;
                }
            }
            if (!json_skip_value(j, depth + 1)) {
                return false;
            }
            json_ws(j);
            if (j->p >= j->end) {
                return false;
            }
            if (*j->p == ',') {
                j->p++;
                json_ws(j);
                continue;
            }
            if (*j->p == close) {
                j->p++;
                return true;
            }
            return false;
        }
    }
    /* number, true, false, null */
    while (j->p < j->end && !strchr(",}] \t\r\n", *j->p)) {
        j->p++;
    }
    return true;
}

static bool ecid_from_json(const char *name, const uint8_t *data, size_t len, uint64_t *ecid,
                           bool *is_json, GError **error)
{
    struct json j = { (const char *)data, (const char *)data + len };
    bool found_key = false;

    *is_json = false;
    json_ws(&j);
    if (j.p >= j.end || *j.p != '{') {
        return false;
    }
    *is_json = true;
    j.p++;
    json_ws(&j);
    while (j.p < j.end && *j.p != '}') {
        GString *key = json_string(&j);
        bool wanted = false;

        if (!key) {
            break;
        }
        for (size_t k = 0; k < sizeof(id_keys) / sizeof(id_keys[0]); k++) {
            wanted |= !strcmp(key->str, id_keys[k]);
        }
        g_string_free(key, TRUE);
        json_ws(&j);
        if (j.p >= j.end || *j.p++ != ':') {
            break;
        }
        json_ws(&j);
        if (wanted && j.p < j.end && *j.p == '"') {
            GString *val = json_string(&j);
            gsize n = 0;
            guchar *bytes;

            found_key = true;
            if (!val) {
                break;
            }
            bytes = g_base64_decode(val->str, &n);
            g_string_free(val, TRUE);
            if (bytes && ecid_from_plist_bytes(bytes, n, ecid, 1)) {
                g_free(bytes);
                return true;
            }
            g_free(bytes);
        } else if (!json_skip_value(&j, 1)) {
            break;
        }
        json_ws(&j);
        if (j.p < j.end && *j.p == ',') {
            j.p++;
            json_ws(&j);
        }
    }
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                found_key ? "%s: its machineId is not a base64 property list with an ECID"
                          : "%s: a JSON file without a machineId or machineIdentifier string",
                name);
    return false;
}

bool machine_id_from_data(const char *name, const uint8_t *data, size_t len, uint64_t *ecid,
                          GError **error)
{
    bool is_json;

    if (len >= 6 &&
        (!memcmp(data, "bplist", 6) || !memcmp(data, "<?xml", 5) || !memcmp(data, "<plist", 6))) {
        if (ecid_from_plist_bytes(data, len, ecid, 0)) {
            return true;
        }
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: a property list without an ECID integer (directly, or in a "
                    "machineId/MachineIdentifier entry)",
                    name);
        return false;
    }
    if (ecid_from_json(name, data, len, ecid, &is_json, error)) {
        return true;
    }
    if (!is_json) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: neither a property list (binary or XML) nor a JSON object", name);
    }
    return false;
}

bool machine_id_from_file(const char *path, uint64_t *ecid, GError **error)
{
    gchar *data = NULL;
    gsize len = 0;
    GError *err = NULL;
    bool ok;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        g_set_error(error, G_FILE_ERROR, err->code, "%s", err->message);
        g_error_free(err);
        return false;
    }
    if (len > MAX_FILE) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: %zu bytes; a machine identifier or VM configuration is at most 4 MiB",
                    path, (size_t)len);
        g_free(data);
        return false;
    }
    ok = machine_id_from_data(path, (const uint8_t *)data, len, ecid, error);
    g_free(data);
    return ok;
}
