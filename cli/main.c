/* backpack - Backpack language models and their sense vectors, with git-style
 * subcommands. This file only dispatches; each command is a cmd_<group>.c beside it
 * that parses its options and calls the module that does the job. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"corpus-brown", cmd_corpus_brown, "turn the tagged Brown corpus into plain text"},
    {"tokenizer", cmd_tokenizer, "train a GPT-2 byte-level BPE tokenizer (tokenizer train ...)"},
    {"tokenize", cmd_tokenize, "encode text files into token files for training"},
    {"init", cmd_init, "write a randomly initialized model checkpoint"},
    {"train", cmd_train, "train a Backpack (or Transformer) model; --resume continues"},
    {"eval", cmd_eval, "mean loss and perplexity of a model on a token file or text"},
    {"generate", cmd_generate, "generate text from a prompt (streams tokens)"},
    {"layers", cmd_layers, "a model's blocks skipped, reordered, in parallel: loss per plan"},
    {"export", cmd_export, "write every word's sense vectors to an SQLite database"},
    {"senses", cmd_senses, "show the senses of a word: top and bottom words of each"},
    {"nearest", cmd_nearest, "nearest words by the cosine of a sense"},
    {"similarity", cmd_similarity, "Spearman correlation with human word-similarity scores"},
    {"edit", cmd_edit, "edit a sense (scale, weight, replace, copy, reset, undo)"},
    {"edits", cmd_edits, "list the edits stored in a sense database"},
    {"steer", cmd_steer, "topic control and gender debiasing by sense weights (steer topic|debias|measure)"},
    {"browse", cmd_browse, "the sense browser (ncurses)"},
    {"plot", cmd_plot, "pictures of training runs (loss, lr, gradient norm) and of senses"},
    {"geometry", cmd_geometry, "angles in high dimensions: random directions, senses, memory"},
    {"induction", cmd_induction, "the induction-head lab: synthetic data, simplified model, eval"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: backpack <command> [options]   (backpack <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "backpack: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
