/* args.h - the command line of every command: a declarative option table per command,
 * parsed here, with --help printed from the same table (so the help never disagrees
 * with what is parsed).
 *
 *     int batch = 16;
 *     const char *out = NULL;
 *     const ArgOption opts[] = {
 *         {"--out", ARG_STRING, &out, .meta = "DIR", .help = "where to write"},
 *         {"--batch", ARG_INT, &batch, 1, 65536, "B", "windows per batch (16)"},
 *         {0}};
 *     ArgSpec spec = {"train", "usage: backpack train ...\n", opts};
 *
 * Every value is checked whole and against its range, and an error names the flag:
 * "--batch: expected an integer from 1 to 65536, got 'x'". */
#ifndef BP_ARGS_H
#define BP_ARGS_H

#include <stdint.h>
#include <stdio.h>

#include "../common/error.h"

typedef enum {
    ARG_FLAG,     /* no value: *(int *)value = 1 */
    ARG_STRING,   /* *(const char **)value = the argument */
    ARG_INT,      /* int, in [min, max] */
    ARG_U64,      /* uint64_t, in [min, max] (max 0: no upper limit) */
    ARG_FLOAT,    /* float, finite, in [min, max] */
    ARG_DOUBLE,   /* double, finite, in [min, max] */
    ARG_SECTION,  /* not an option: a heading of the help ("model:") */
} ArgType;

typedef struct {
    const char *name;       /* "--batch", "-n"; NULL ends the table */
    ArgType type;
    void *value;
    double min, max;
    const char *meta;       /* the value's name in the help: "N", "DIR" */
    const char *help;       /* NULL: accepted but not listed (an alias) */
    unsigned given_bit;     /* OR'ed into *ArgSpec.given when the flag is present */
} ArgOption;

typedef struct {
    const char *command;         /* "train", "tokenizer train": prefixes every error */
    const char *synopsis;        /* usage lines and description, printed before the table */
    const ArgOption *options;    /* ends with a row whose name is NULL */
    const char **positional;     /* NULL: no positional arguments */
    int max_positional;          /* room in positional */
    int *n_positional;
    unsigned *given;             /* NULL or collects the given_bit of each option seen */
} ArgSpec;

/* Parses argv[1..argc) (argv[0] is the command). Returns 0, ARGS_HELP when --help or
 * -h was given (the help is printed on stdout), or -1 with err set. */
#define ARGS_HELP 1
int args_parse(const ArgSpec *spec, int argc, char **argv, BpError *err);
void args_print_help(const ArgSpec *spec, FILE *out);

/* The value parsers behind the table, for values that arrive otherwise. */
int arg_int(const char *flag, const char *s, long min, long max, int *out, BpError *err);
int arg_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out, BpError *err);
int arg_float(const char *flag, const char *s, double min, double max, float *out, BpError *err);
int arg_double(const char *flag, const char *s, double min, double max, double *out, BpError *err);

#endif
