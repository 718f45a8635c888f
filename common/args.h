/* args.h - command-line option values for every command: each parser
 * checks the whole string and the range, and names the flag in its error
 * ("--batch: expected an integer from 1 to 65536, got 'x'"). */
#ifndef BP_ARGS_H
#define BP_ARGS_H

#include <stdint.h>

#include "../common/error.h"

/* The value of flag argv[*i] (argv[*i + 1], advancing *i), or NULL with err set. */
const char *arg_value(int argc, char **argv, int *i, BpError *err);

int arg_int(const char *flag, const char *s, long min, long max, int *out, BpError *err);
int arg_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out, BpError *err);
int arg_float(const char *flag, const char *s, double min, double max, float *out, BpError *err);
int arg_double(const char *flag, const char *s, double min, double max, double *out, BpError *err);

#endif
