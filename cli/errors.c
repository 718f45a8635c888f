/* errors.c - what every command shares: its one-line errors and the option parser's
 * front end (commands.h). Apart from main.c so that tests can link the commands. */
#include <stdio.h>

#include "commands.h"

int cli_error(const char *msg) {
    fprintf(stderr, "backpack: %s\n", msg);
    return 1;
}

int cli_usage_error(const char *msg) {
    fprintf(stderr, "backpack: %s\n", msg);
    return 2;
}

int cli_parse(const ArgSpec *spec, int argc, char **argv) {
    BpError err = {{0}};
    int rc = args_parse(spec, argc, argv, &err);
    if (rc == ARGS_HELP) return 0;
    if (rc != 0) return cli_usage_error(err.msg);
    return -1;
}
