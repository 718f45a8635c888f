/* compat.h - do a tokenizer and token files fit a model? One check for every command
 * that brings them together (eval --text, generate, train), so that they agree.
 *
 * A tokenizer fits a model when every id it can produce is a row of the model's
 * embedding (its vocabulary may be smaller: a model may have padding rows, as
 * stanfordnlp/backpack-gpt2 has 50264 for GPT-2's 50257). A token file fits a
 * tokenizer when it was made by it (tokfile_check_tokenizer). eval --data checks its
 * token file against the model's own tokenizer when the model directory has one. */
#ifndef BP_TRAIN_COMPAT_H
#define BP_TRAIN_COMPAT_H

#include "../common/error.h"
#include "../text/tokenizer.h"

/* Loads the tokenizer of dir and checks that it fits a model of model_vocab ids. */
int compat_load_tokenizer(Tokenizer **tok, const char *dir, int model_vocab, BpError *err);

/* The token file at path was made by the tokenizer of tokenizer_dir, and that
 * tokenizer fits a model of model_vocab ids (0: not checked). */
int compat_check_tokfile(const char *path, const char *tokenizer_dir, int model_vocab, BpError *err);

/* PREFIX.train.tok and PREFIX.val.tok were made by the tokenizer of tokenizer_dir, and
 * that tokenizer fits a model of model_vocab ids (0: not known yet, not checked). */
int compat_check_data(const char *data_prefix, const char *tokenizer_dir, int model_vocab, BpError *err);

#endif
