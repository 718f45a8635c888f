/* tokenizer.h - GPT-2 byte-level BPE: load (vocab.json + merges.txt, the Hugging Face
 * names), encode, decode, and train a new one on a corpus.
 *
 * Encoding equals GPT-2's reference encoder token for token: the GPT-2 pre-tokenizer
 * regex through PCRE2 (UTF, Unicode properties), then byte-to-unicode mapping and BPE
 * merges by rank. "<|endoftext|>" in the text is the special token, when the vocabulary
 * has it. decode(encode(s)) == s for every byte string, valid UTF-8 or not.
 *
 * Rules beyond GPT-2 (which only ever saw valid UTF-8):
 *  - Ill-formed UTF-8: the regex runs with PCRE2_MATCH_INVALID_UTF, so an ill-formed
 *    byte sequence matches nothing and the valid text around it is pre-tokenized as
 *    usual; each maximal run of bytes the regex skips becomes one pre-token, BPE'd from
 *    its single-byte tokens like any other. No byte is lost or replaced.
 *  - "<|endoftext|>" is split off before the regex (as Hugging Face's GPT-2 tokenizer
 *    does; OpenAI's encoder.py and the npm gpt-3-encoder encode it as plain text).
 * Loading is strict: vocab.json must map every key to a distinct id in 0..N-1, spell
 *    keys in the byte-to-unicode alphabet and have a token for each of the 256 bytes;
 *    every merges.txt line ("#version" first line and trailing blank lines allowed)
 *    must be two vocabulary tokens separated by one space whose concatenation is also
 *    in the vocabulary. Errors name the file and the key or line.
 * tokenizer_encode is safe to call from several threads (it serializes on a lock: the
 * pre-token cache is shared).
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

/* The bytes of ids[0..n) concatenated into a malloc'ed, NUL-terminated buffer (*len
 * excludes the NUL). Fails on an id out of range. */
int tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, char **out, size_t *len,
                     BpError *err);

/* Number of merges loaded from merges.txt. */
int tokenizer_n_merges(const Tokenizer *t);

/* Trains a byte-level BPE of vocab_size ids (>= 257: 256 bytes + <|endoftext|> + merges)
 * on the files, with the GPT-2 pre-tokenizer, deterministically, and writes
 * out_dir/vocab.json and out_dir/merges.txt atomically.
 * Ids: 0..255 the single bytes in GPT-2's order (so they equal GPT-2's ids), then one
 * per merge in merge order, then "<|endoftext|>" last. Documents are split on
 * "<|endoftext|>" as in tokenize (text/docstream.h); words are the pre-tokens of the
 * GPT-2 regex, counted; each step merges the adjacent pair with the highest count over
 * all words, ties broken by the smaller (left id, right id); pair counts are updated
 * incrementally in the words that hold the merged pair. Training stops early (fewer ids)
 * when no pair is left. A merge whose result already exists as a token (same bytes by
 * another pair) is recorded but takes no new id. */
int tokenizer_train(const char *const *files, int n_files, int vocab_size, const char *out_dir,
                    int verbose, BpError *err);

#endif
