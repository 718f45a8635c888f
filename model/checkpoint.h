/* checkpoint.h - a model on disk, in the Hugging Face layout of
 * stanfordnlp/backpack-gpt2, so published weights load here and ours load in PyTorch:
 *
 *   DIR/config.json          n_embd, n_layer, n_head, n_positions, num_senses,
 *                            sense_intermediate_scale, vocab_size, layer_norm_epsilon,
 *                            scale_attn_by_inverse_layer_idx, activation_function,
 *                            model_type ("backpack-gpt2", or "gpt2" for the baseline)
 *   DIR/model.safetensors    float32, the tensor names and layouts of the spec
 *   DIR/vocab.json, DIR/merges.txt   the tokenizer (copied from the tokenizer directory)
 *   DIR/<anything else>      written by the caller through CheckpointExtraWriter (the
 *                            trainer's train_state.bin)
 *
 * Saving builds the whole directory beside DIR and swaps it in with one rename
 * (fileio.h dir_stage/dir_commit): a kill at any moment leaves the previous checkpoint
 * complete and loadable. Loading validates everything and names the bad key or tensor.
 */
#ifndef BP_CHECKPOINT_H
#define BP_CHECKPOINT_H

#include "backpack.h"

/* Writes extra files into the staging directory before the swap. */
typedef int (*CheckpointExtraWriter)(const char *staging_dir, void *ctx, BpError *err);

/* tokenizer_dir may be NULL (no tokenizer files copied); extra may be NULL. */
int checkpoint_save(const Backpack *m, const char *dir, const char *tokenizer_dir,
                    CheckpointExtraWriter extra, void *ctx, BpError *err);

/* Reads DIR/config.json into c (validated). */
int checkpoint_read_config(const char *dir, BackpackConfig *c, BpError *err);

/* Builds m from DIR (config.json + model.safetensors). On failure m is left freed. */
int checkpoint_load(Backpack *m, const char *dir, BpError *err);

#endif
