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
/* lab/ */
int cmd_induction(int argc, char **argv);     /* induction data|train|eval: the induction-head lab */
/* tui/ */
int cmd_browse(int argc, char **argv);

/* Prints "backpack: <msg>" on stderr and returns 1: `return cli_error(err.msg);`. */
int cli_error(const char *msg);

#endif
