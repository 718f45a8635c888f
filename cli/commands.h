/* commands.h - the subcommands of the `backpack` binary. Each takes (argc, argv) with
 * argv[0] the subcommand name, parses its options with one table (common/args.h),
 * calls the module that does the job, and returns the exit status: 0, 1 for a failure
 * (cli_error), 2 for a usage error (cli_usage_error). Every error is one line
 * "backpack: <message>" on stderr. */
#ifndef BP_COMMANDS_H
#define BP_COMMANDS_H

#include "../common/args.h"
#include "../model/backpack.h"

/* cmd_text.c */
int cmd_tokenizer(int argc, char **argv);     /* tokenizer train|encode|decode ... */
int cmd_tokenize(int argc, char **argv);      /* tokenize --tokenizer DIR --out PREFIX FILES... */
int cmd_corpus_brown(int argc, char **argv);  /* corpus-brown --out FILE DIR: tagged Brown -> text */
/* cmd_train.c */
int cmd_init(int argc, char **argv);          /* init --out DIR: a randomly initialized model */
int cmd_train(int argc, char **argv);
/* cmd_eval.c, cmd_generate.c */
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
/* cmd_layers.c */
int cmd_layers(int argc, char **argv);        /* layers --model DIR --data F.tok: the plan sweep */
/* The --layers PLAN of eval and generate: parses text (NULL: none) for m into plan and
 * sets m->plan. Returns 0, or prints the usage error ("--layers: '0,,1': empty step at
 * character 3") and returns its exit status. */
int cli_layers(const char *text, Backpack *m, LayerPlan *plan);
/* Loads the model in dir into m for command cmd, with --context N (0: the model's
 * n_positions) checked against it and set. Returns 0, or prints the error and returns
 * its exit status (m is then freed). */
int cli_load_model(const char *cmd, const char *dir, int *context, Backpack *m);
/* cmd_senses.c */
int cmd_export(int argc, char **argv);
int cmd_senses(int argc, char **argv);
int cmd_nearest(int argc, char **argv);
int cmd_similarity(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_edits(int argc, char **argv);
/* cmd_induction.c (the work in lab/) */
int cmd_induction(int argc, char **argv);     /* induction data|train|eval: the induction-head lab */
/* cmd_steer.c */
int cmd_steer(int argc, char **argv);         /* steer topic|debias|measure: steering by sense weights */
/* cmd_browse.c */
int cmd_browse(int argc, char **argv);
/* cmd_plot.c (pictures through plot/) */
int cmd_plot(int argc, char **argv);
/* cmd_geometry.c (senses/geometry.h) */
int cmd_geometry(int argc, char **argv);

/* Prints "backpack: <msg>" on stderr and returns 1: `return cli_error(err.msg);`. */
int cli_error(const char *msg);
/* The same for a usage error (bad or missing option): returns 2. */
int cli_usage_error(const char *msg);
/* Parses argv by spec. Returns -1 when the command should go on; otherwise the exit
 * status to return at once: 0 after --help, 2 after a usage error (printed). */
int cli_parse(const ArgSpec *spec, int argc, char **argv);

#endif
