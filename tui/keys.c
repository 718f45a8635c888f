/* keys.c - key names and the scripted-key parser (keys.h). */
#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "canvas.h"

static const struct {
    const char *name;
    int key;
} key_names[] = {
    {"Enter", BK_ENTER}, {"CR", BK_ENTER},     {"Esc", BK_ESC},       {"Up", BK_UP},
    {"Down", BK_DOWN},   {"Left", BK_LEFT},    {"Right", BK_RIGHT},   {"PgUp", BK_PGUP},
    {"PgDn", BK_PGDN},   {"Home", BK_HOME},    {"End", BK_END},       {"BS", BK_BACKSPACE},
    {"Del", BK_DELETE},  {"Tab", BK_TAB},      {"S-Tab", BK_BTAB},    {"Space", ' '},
    {"lt", '<'},
};

int keys_parse(const char *script, KeyEvent **events, int *count, BpError *err) {
    size_t len = strlen(script), cap = len + 1;
    KeyEvent *ev = calloc(cap, sizeof *ev);   /* never more events than bytes */
    int n = 0;
    if (!ev) return bp_fail(err, "--keys: out of memory");
    for (size_t i = 0; i < len;) {
        if (script[i] != '<') {
            int cp;
            int k = utf8_decode(script + i, len - i, &cp);
            if (cp < 0) {
                free(ev);
                return bp_fail(err, "--keys: invalid UTF-8 at offset %zu", i);
            }
            if (cp == '\n' || cp == '\r') {  /* a newline in a keys file is not a key */
                i += (size_t)k;
                continue;
            }
            ev[n++].key = cp;
            i += (size_t)k;
            continue;
        }
        const char *close = memchr(script + i, '>', len - i);
        size_t name_len = close ? (size_t)(close - (script + i + 1)) : 0;
        char name[40];
        if (!close || name_len == 0 || name_len >= sizeof name) {
            free(ev);
            return bp_fail(err, "--keys: '<' at offset %zu does not start a key name "
                                "(write <lt> for a literal '<')", i);
        }
        memcpy(name, script + i + 1, name_len);
        name[name_len] = 0;
        int key = -1;
        for (size_t j = 0; j < sizeof key_names / sizeof key_names[0]; j++)
            if (!strcasecmp(name, key_names[j].name)) key = key_names[j].key;
        if (key < 0 && name_len == 3 && (name[0] == 'C' || name[0] == 'c') && name[1] == '-' &&
            ((name[2] >= 'a' && name[2] <= 'z') || (name[2] >= 'A' && name[2] <= 'Z')))
            key = BK_CTRL(name[2]);
        int rows = 0, cols = 0;
        if (key < 0 && !strncasecmp(name, "Resize:", 7)) {
            char tail;
            if (sscanf(name + 7, "%dx%d%c", &cols, &rows, &tail) == 2 && cols > 0 && rows > 0 &&
                cols <= 1000 && rows <= 1000)
                key = BK_RESIZE;
        }
        if (key < 0) {
            free(ev);
            return bp_fail(err, "--keys: unknown key <%s> at offset %zu", name, i);
        }
        ev[n].key = key;
        ev[n].rows = rows;
        ev[n].cols = cols;
        n++;
        i += name_len + 2;
    }
    *events = ev;
    *count = n;
    return 0;
}

const char *bk_key_name(int key, char *out, size_t out_size) {
    if (out_size == 0) return out;
    if (key >= BK_SPECIAL) {
        for (size_t j = 0; j < sizeof key_names / sizeof key_names[0]; j++)
            if (key_names[j].key == key) {
                snprintf(out, out_size, "%s", key_names[j].name);
                return out;
            }
        if (key == BK_RESIZE) {
            snprintf(out, out_size, "Resize");
            return out;
        }
        snprintf(out, out_size, "key-%d", key - BK_SPECIAL);
        return out;
    }
    if (key == ' ') {
        snprintf(out, out_size, "Space");
        return out;
    }
    if (key > 0 && key < 0x20) {
        snprintf(out, out_size, "C-%c", 'a' + key - 1);
        return out;
    }
    if (key == 0x7f) {
        snprintf(out, out_size, "BS");
        return out;
    }
    char utf8[5] = {0};
    int n = utf8_encode(key, utf8);
    if (n == 0 || out_size <= (size_t)n) {
        snprintf(out, out_size, "?");
        return out;
    }
    memcpy(out, utf8, (size_t)n);
    out[n] = 0;
    return out;
}
