/* tokenizer.h - GPT-2 byte-level BPE: load (vocab.json + merges.txt, the Hugging Face
 * names), encode, decode, and train a new one on a corpus.
 *
 * Encoding equals GPT-2's reference encoder token for token: the GPT-2 pre-tokenizer
 * regex through PCRE2 (UTF, Unicode properties), then byte-to-unicode mapping and BPE
 * merges by rank. "<|endoftext|>" in the text is the special token, when the vocabulary
 * has it. decode(encode(s)) == s for every byte string, valid UTF-8 or not.
 */
#ifndef BP_TOKENIZER_H
#define BP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

typedef struct Tokenizer Tokenizer;

/* Loads DIR/vocab.json and DIR/merges.txt. */
int tokenizer_load(Tokenizer **out, const char *dir, BpError *err);
void tokenizer_free(Tokenizer *t);

/* Number of ids (the largest id + 1). */
int tokenizer_vocab_size(const Tokenizer *t);
/* Id of "<|endoftext|>", or -1 if the vocabulary has none. */
int tokenizer_eot(const Tokenizer *t);

/* Appends the ids of text[0..len) to a growable array (*ids, *n, *cap: realloc'ed). */
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids, size_t *n,
                     size_t *cap, BpError *err);

/* The raw bytes of one token (not NUL-terminated), or NULL for an id out of range. */
const char *tokenizer_token_bytes(const Tokenizer *t, int id, size_t *len);

/* The vocabulary string of a token as in vocab.json (byte-to-unicode form, e.g. "Ġthe"). */
const char *tokenizer_token_string(const Tokenizer *t, int id);

/* A readable form of a token's bytes for display: valid UTF-8 is copied, newline and
 * tab become "\n" and "\t", any other control or invalid byte "\xNN". (A leading-space
 * marker is the display's choice, not done here.) Returns out, always NUL-terminated. */
char *tokenizer_token_readable(const Tokenizer *t, int id, char *out, size_t out_size);

/* Looks a token up by its raw bytes; -1 when there is no such single token. */
int tokenizer_lookup_bytes(const Tokenizer *t, const char *bytes, size_t len);

/* Trains a byte-level BPE of vocab_size ids (>= 257: 256 bytes + <|endoftext|> + merges)
 * on the files, with the GPT-2 pre-tokenizer, deterministically, and writes
 * out_dir/vocab.json and out_dir/merges.txt atomically. */
int tokenizer_train(const char *const *files, int n_files, int vocab_size, const char *out_dir,
                    int verbose, BpError *err);

#endif
