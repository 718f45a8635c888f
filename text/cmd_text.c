/* cmd_text.c - placeholder while the text commands are being written. */
#include "../cli/commands.h"

int cmd_tokenizer(int argc, char **argv) { (void)argc; (void)argv; return cli_error("tokenizer: not yet implemented"); }
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; return cli_error("tokenize: not yet implemented"); }
int cmd_corpus_brown(int argc, char **argv) { (void)argc; (void)argv; return cli_error("corpus-brown: not yet implemented"); }
