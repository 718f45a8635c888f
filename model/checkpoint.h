/* checkpoint.h - a model on disk, in the Hugging Face layout of
 * stanfordnlp/backpack-gpt2, so published weights load here and ours load in PyTorch:
 *
 *   DIR/config.json          n_embd, n_layer, n_head, n_positions, num_senses,
 *                            sense_intermediate_scale, vocab_size, layer_norm_epsilon,
 *                            scale_attn_by_inverse_layer_idx, activation_function,
 *                            model_type ("backpack-gpt2", or "gpt2" for the baseline),
 *                            and attention (docs/synthesizer.md) unless it is "dot"
 *   DIR/model.safetensors    float32, the tensor names and layouts of the spec
 *   DIR/vocab.json, DIR/merges.txt   the tokenizer (copied from the tokenizer directory)
 *   DIR/<anything else>      written by the caller through CheckpointExtraWriter (the
 *                            trainer's train_state.bin)
 *
 * Saving builds the whole directory beside DIR and swaps it in with one rename
 * (fileio.h dir_stage/dir_commit): a kill at any moment leaves the previous checkpoint
 * complete and loadable. config.json gets the keys above plus "architectures"
 * (["BackpackGPT2LMHeadModel"], or ["GPT2LMHeadModel"] with tie_word_embeddings true);
 * model.safetensors carries __metadata__ {"format": "pt"} as transformers expects.
 *
 * Loading validates everything and names the bad key or tensor, in one line:
 *   config.json   every key above must be present with the right type and range (an
 *                 integer where one is due, k and H dividing d, ...); the values that
 *                 would change the computation must be the ones implemented:
 *                 layer_norm_epsilon 1e-5, scale_attn_by_inverse_layer_idx true,
 *                 activation_function "gelu_new" (or its alias "gelu_pytorch_tanh"),
 *                 tie_word_embeddings true and n_inner null or 4d when present. Other
 *                 keys (dropouts, auto_map, torch_dtype, ...) are ignored.
 *   weights       safetensors.h checks the file itself; then every parameter tensor of
 *                 the config must be present, F32 (F16 and BF16 are widened to float32
 *                 on load), with exactly the configured shape; any other tensor is an
 *                 error, except the aliases of the tied embeddings (lm_head.weight,
 *                 backpack.word_embeddings.weight, backpack.position_embeddings.weight)
 *                 and GPT-2's attention-mask buffers (*.attn.bias, *.attn.masked_bias),
 *                 which are ignored. For "gpt2", names without the "transformer."
 *                 prefix (files saved from GPT2Model) are accepted too.
 *                 Every value must be finite: a NaN or an infinity is an error naming
 *                 the tensor and the element.
 * The whole tensor table is checked before any data is read, and the data is read
 * straight into the parameter allocation (no second copy of the weights).
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
