/* commands.h - the subcommands of the `backpack` binary. Each lives in the module
 * that owns its job and takes (argc, argv) with argv[0] the subcommand name; it prints
 * its own errors as one line "backpack: <message>" and returns the exit status. */
#ifndef BP_COMMANDS_H
#define BP_COMMANDS_H

/* text/ */
int cmd_tokenizer(int argc, char **argv);     /* tokenizer train --vocab-size N --out DIR FILES... */
int cmd_tokenize(int argc, char **argv);      /* tokenize --tokenizer DIR --out PREFIX FILES... */
int cmd_corpus_brown(int argc, char **argv);  /* corpus-brown --out FILE DIR: tagged Brown -> text */
/* train/ (init, train); cli/ (eval, generate: they may load edits from senses/) */
int cmd_init(int argc, char **argv);          /* init --out DIR: a randomly initialized model */
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
/* senses/ */
int cmd_export(int argc, char **argv);
int cmd_senses(int argc, char **argv);
int cmd_nearest(int argc, char **argv);
int cmd_similarity(int argc, char **argv);
int cmd_edit(int argc, char **argv);
int cmd_edits(int argc, char **argv);
/* tui/ */
int cmd_browse(int argc, char **argv);
/* cli/ (plot/ draws) */
int cmd_plot(int argc, char **argv);          /* plot RUN_DIR... --out FILE | --term; plot senses */
int cmd_geometry(int argc, char **argv);      /* geometry random|senses|memory (senses/geometry.h) */

/* Prints "backpack: <msg>" on stderr and returns 1: `return cli_error(err.msg);`. */
int cli_error(const char *msg);

#endif
