/* metrics.c - metrics.jsonl, line by line, with jansson. */
#include "metrics.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"

typedef struct {
    double **cols;
    int n_cols, n, cap;
} Columns;

static int push_row(Columns *c, const double *row) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 256;
        for (int k = 0; k < c->n_cols; k++) {
            double *p = realloc(c->cols[k], sizeof *p * (size_t)cap);
            if (!p) return -1;
            c->cols[k] = p;
        }
        c->cap = cap;
    }
    for (int k = 0; k < c->n_cols; k++) c->cols[k][c->n] = row[k];
    c->n++;
    return 0;
}

/* A number under key; missing keys give NaN when optional, else fail. */
static int get_number(json_t *obj, const char *key, int optional, double *out, const char **problem) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = NAN;
        if (optional) return 0;
        *problem = "missing";
        return -1;
    }
    /* A diverged step logs its loss or norm as nan/inf (printf's %g), read as null. */
    int may_diverge = !strcmp(key, "loss") || !strcmp(key, "grad_norm") || !strcmp(key, "val_loss");
    if (json_is_null(v) && may_diverge) {
        *out = NAN;
        return 0;
    }
    if (!json_is_number(v)) {
        *problem = "not a number";
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

/* The trainer prints a non-finite value as nan, -nan, inf or -inf (printf's %g), which
 * is not JSON: each such bare value after a ':' becomes null, in place. "-nan" and
 * "-inf" have null's length; "nan" and "inf" take the space the trainer writes before
 * them (without one they are left for the parser to reject). */
static void nonfinite_to_null(char *line) {
    for (char *p = strchr(line, ':'); p; p = strchr(p + 1, ':')) {
        char *v = p + 1;
        while (*v == ' ') v++;
        char *w = v + (*v == '-');
        if (strncmp(w, "nan", 3) && strncmp(w, "inf", 3)) continue;
        char *end = w + 3;
        if (*end && *end != ',' && *end != '}' && *end != ' ') continue;
        size_t rest = strlen(end);
        if (w == v) {   /* "nan" -> "null": one byte longer, take it from the space before */
            if (v == p + 1) continue;   /* no space to take: leave it, the parser names it */
            v--;
        }
        memcpy(v, "null", 4);
        memmove(v + 4, end, rest + 1);
    }
}

void run_metrics_free(RunMetrics *m) {
    free(m->step), free(m->tokens), free(m->elapsed), free(m->loss), free(m->lr), free(m->grad_norm);
    free(m->val_step), free(m->val_tokens), free(m->val_elapsed), free(m->val_loss);
    memset(m, 0, sizeof *m);
}

int run_metrics_read(const char *path, RunMetrics *out, BpError *err) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    if (read_file(path, &text, &len, err) != 0) return -1;
    if (len == 0) {
        free(text);
        return bp_fail(err, "%s: empty file (no step has been logged)", path);
    }
    if (memchr(text, '\0', len)) {
        free(text);
        return bp_fail(err, "%s: contains NUL bytes, not a metrics file", path);
    }
    Columns train = {.cols = (double *[]){NULL, NULL, NULL, NULL, NULL, NULL}, .n_cols = 6};
    Columns val = {.cols = (double *[]){NULL, NULL, NULL, NULL}, .n_cols = 4};
    int rc = -1, line_no = 0;
    for (char *line = text; line < text + len;) {
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        int last = !end;
        if (!end) end = text + len;
        *end = '\0';
        line_no++;
        char *next = end + 1;
        const char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) {
            line = next;
            continue;
        }
        json_error_t jerr;
        nonfinite_to_null(line);
        json_t *obj = json_loads(line, 0, &jerr);
        const char *problem = NULL, *key = NULL;
        if (!obj || !json_is_object(obj)) {
            problem = obj ? "not a JSON object" : jerr.text;
        } else {
            double row[6];
            static const char *train_keys[] = {"step", "tokens", "elapsed", "loss", "lr", "grad_norm"};
            static const char *val_keys[] = {"step", "tokens", "elapsed", "val_loss"};
            int is_train = json_object_get(obj, "loss") != NULL;
            int is_val = json_object_get(obj, "val_loss") != NULL;
            if (!is_train && !is_val) {
                problem = "neither \"loss\" nor \"val_loss\"";
            } else {
                const char **keys = is_train ? train_keys : val_keys;
                int n_keys = is_train ? 6 : 4;
                for (int k = 0; k < n_keys && !problem; k++) {
                    /* tokens and elapsed are optional: older runs may lack them */
                    int optional = k == 1 || k == 2;
                    if (get_number(obj, keys[k], optional, &row[k], &problem) != 0) key = keys[k];
                }
                if (!problem && push_row(is_train ? &train : &val, row) != 0) {
                    json_decref(obj);
                    bp_fail(err, "%s: out of memory", path);
                    goto done;
                }
            }
        }
        json_decref(obj);
        if (problem) {
            if (last) {
                snprintf(out->note, sizeof out->note, "%s:%d: incomplete last line skipped (%s)", path,
                         line_no, problem);
                break;
            }
            if (key) bp_fail(err, "%s:%d: \"%s\" %s", path, line_no, key, problem);
            else bp_fail(err, "%s:%d: %s", path, line_no, problem);
            goto done;
        }
        line = next;
    }
    if (train.n == 0 && val.n == 0) {
        if (out->note[0]) bp_fail(err, "%s", out->note);
        else bp_fail(err, "%s: no metrics lines", path);
        goto done;
    }
    rc = 0;
done:
    out->step = train.cols[0], out->tokens = train.cols[1], out->elapsed = train.cols[2];
    out->loss = train.cols[3], out->lr = train.cols[4], out->grad_norm = train.cols[5];
    out->n = train.n;
    out->val_step = val.cols[0], out->val_tokens = val.cols[1], out->val_elapsed = val.cols[2];
    out->val_loss = val.cols[3];
    out->n_val = val.n;
    free(text);
    if (rc != 0) run_metrics_free(out);
    return rc;
}
