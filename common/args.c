#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

const char *arg_value(int argc, char **argv, int *i, BpError *err) {
    if (*i + 1 >= argc) {
        bp_fail(err, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

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
