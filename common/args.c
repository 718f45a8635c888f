#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int arg_int(const char *flag, const char *s, long min, long max, int *out, BpError *err) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return bp_fail(err, "%s: expected an integer from %ld to %ld, got '%s'", flag, min, max, s);
    *out = (int)v;
    return 0;
}

int arg_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out, BpError *err) {
    char *end;
    errno = 0;
    /* strtoull accepts "-1" as a huge number: refuse signs. */
    unsigned long long v = (*s >= '0' && *s <= '9') ? strtoull(s, &end, 10) : 0;
    if (!(*s >= '0' && *s <= '9') || errno || *end || v < min || v > max)
        return bp_fail(err, "%s: expected an integer from %llu to %llu, got '%s'", flag,
                       (unsigned long long)min, (unsigned long long)max, s);
    *out = (uint64_t)v;
    return 0;
}

int arg_double(const char *flag, const char *s, double min, double max, double *out, BpError *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return bp_fail(err, "%s: expected a number from %g to %g, got '%s'", flag, min, max, s);
    *out = v;
    return 0;
}

int arg_float(const char *flag, const char *s, double min, double max, float *out, BpError *err) {
    double v;
    if (arg_double(flag, s, min, max, &v, err) != 0) return -1;
    *out = (float)v;
    return 0;
}

static const ArgOption *find_option(const ArgSpec *spec, const char *name) {
    for (const ArgOption *o = spec->options; o && o->name; o++)
        if (o->type != ARG_SECTION && !strcmp(o->name, name)) return o;
    return NULL;
}

static int set_value(const ArgOption *o, const char *v, BpError *err) {
    switch (o->type) {
    case ARG_STRING: *(const char **)o->value = v; return 0;
    case ARG_INT: return arg_int(o->name, v, (long)o->min, (long)o->max, o->value, err);
    case ARG_U64:
        return arg_u64(o->name, v, (uint64_t)o->min, o->max > 0 ? (uint64_t)o->max : UINT64_MAX,
                       o->value, err);
    case ARG_FLOAT: return arg_float(o->name, v, o->min, o->max, o->value, err);
    case ARG_DOUBLE: return arg_double(o->name, v, o->min, o->max, o->value, err);
    default: return bp_fail(err, "%s: takes no value", o->name);
    }
}

int args_parse(const ArgSpec *spec, int argc, char **argv, BpError *err) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            args_print_help(spec, stdout);
            return ARGS_HELP;
        }
    if (spec->n_positional) *spec->n_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1]) {
            const ArgOption *o = find_option(spec, a);
            if (!o) return bp_fail(err, "%s: unknown option '%s' (backpack %s --help)", spec->command, a, spec->command);
            if (o->type == ARG_FLAG) {
                *(int *)o->value = 1;
            } else {
                if (i + 1 >= argc) return bp_fail(err, "%s: %s needs a value", spec->command, a);
                if (set_value(o, argv[++i], err) != 0) return bp_error_prefix(err, "%s", spec->command);
            }
            if (spec->given) *spec->given |= o->given_bit;
        } else if (spec->positional && *spec->n_positional < spec->max_positional) {
            spec->positional[(*spec->n_positional)++] = a;
        } else {
            return bp_fail(err, "%s: unexpected argument '%s'", spec->command, a);
        }
    }
    return 0;
}

void args_print_help(const ArgSpec *spec, FILE *out) {
    fputs(spec->synopsis, out);
    int width = 0;
    for (const ArgOption *o = spec->options; o && o->name; o++) {
        if (o->type == ARG_SECTION || !o->help) continue;
        int w = (int)strlen(o->name) + (o->meta ? 1 + (int)strlen(o->meta) : 0);
        if (w > width) width = w;
    }
    int any = 0;
    for (const ArgOption *o = spec->options; o && o->name; o++) {
        if (o->type == ARG_SECTION) {
            fprintf(out, "\n%s\n", o->name);
            any = 1;
            continue;
        }
        if (!o->help) continue;
        if (!any) fputs("\noptions:\n", out), any = 1;
        char left[128];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->meta ? " " : "", o->meta ? o->meta : "");
        fprintf(out, "  %-*s  %s\n", width, left, o->help);
    }
}
