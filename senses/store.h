/* store.h - the sense store: every word's k sense vectors in an SQLite database, the
 * queries people ask of them, and the edits that steer the model.
 *
 * A sense database is written once by store_export (`backpack export`) from a model and
 * then read by `backpack senses/nearest/similarity`, the browser (tui/) and
 * sense_edits_load (edits.h). It is self-contained: it holds the vocabulary, the
 * tokenizer files and the embedding matrix E (wte), so that everything here works
 * without the model: top-word scores and nearest neighbours of EDITED senses are
 * recomputed from E and the stored vectors.
 *
 * The file format (tables, meta keys, what a vector and weight "in force" are) is
 * described once, in docs/sense-database.md.
 *
 * Words typed by a user (store_resolve_word): "#123" is token id 123; a word that starts
 * with a space is looked up exactly; a bare word is looked up as " word" (the usual
 * mid-sentence GPT-2 token) and then as "word". Failing that, " word" is encoded with
 * the stored tokenizer into several tokens: the word's sense l is then the AVERAGE of
 * its tokens' sense-l vectors in force (the paper's rule for multi-token words);
 * queries say so. Edits need a single token.
 *
 * Threads: a SenseStore is used by one thread at a time. Errors: every function that
 * can fail returns 0 / -1 and writes one line into err (error.h).
 */
#ifndef BP_SENSE_STORE_H
#define BP_SENSE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../model/backpack.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_APPLICATION_ID 0x42504b53  /* "BPKS" */
#define STORE_MIN_TOP_N 20               /* export keeps at least this many words per list */
#define STORE_MAX_WORD_TOKENS 16         /* a typed word may span at most this many tokens */
#define STORE_BUSY_TIMEOUT_MS 5000       /* how long to wait for a locked database */

typedef struct SenseStore SenseStore;

/* Called now and then with the fraction done (0..1) by long operations. */
typedef void (*StoreProgress)(double fraction, void *ctx);

/* ---- export ------------------------------------------------------------------------ */

typedef struct {
    int top_n;                 /* words per top/bottom list; 0 = STORE_MIN_TOP_N */
    int chunk_words;           /* words per sense-network chunk; 0 = automatic */
    int force;                 /* replace an existing sense database (any model) */
    int exact_scan;            /* score every word of every sense exactly instead of through
                                  the int8 screen: the same lists, the reference for tests */
    const char *model_dir;     /* recorded in meta; may be NULL */
    StoreProgress progress;    /* may be NULL */
    void *progress_ctx;
} ExportOptions;

/* Computes C(x) for every word with backpack_compute_senses (m->edits must be NULL),
 * their norms and top/bottom words, and writes db_path. The database is built under a
 * temporary name beside db_path in one transaction and renamed into place, so an
 * interrupted export leaves no complete-looking database. An existing db_path is
 * replaced only with opts->force and only if it is a sense database (never another
 * file); without force the error says whose model it holds. tokenizer_dir holds
 * vocab.json + merges.txt (copied into the database); it may be NULL, and then the
 * tokens are named "<id N>" and multi-token words cannot be resolved. */
int store_export(const Backpack *m, const char *tokenizer_dir, const char *db_path,
                 const ExportOptions *opts, BpError *err);

/* ---- opening ----------------------------------------------------------------------- */

typedef enum { STORE_READ_ONLY = 0, STORE_READ_WRITE = 1 } StoreMode;

/* Opens and validates a sense database: it must exist, be SQLite with our
 * application_id, our schema version and a complete export. Loads the vocabulary
 * (milliseconds); E and the nearest-neighbour index are loaded on first use. */
int store_open(SenseStore **out, const char *path, StoreMode mode, BpError *err);
void store_close(SenseStore *s);
/* How long a locked database is waited for (default STORE_BUSY_TIMEOUT_MS) before a
 * call fails with "database is locked". */
void store_set_busy_timeout(SenseStore *s, int ms);

typedef struct {
    BackpackConfig config;     /* of the exporting model: V = config.vocab_size, etc. */
    char weights_hash[17];     /* backpack_weights_hash of the exporting model */
    int schema_version;
    int top_n;                 /* words per stored list */
    double created;            /* unix time of the export */
    char model_dir[512];       /* as given to export, may be empty */
    char path[512];            /* of the database */
} StoreInfo;

const StoreInfo *store_info(const SenseStore *s);
/* 0 if the database was exported from m (same config shape and weights hash), else
 * -1 with "<db>: exported from another model (...)". */
int store_check_model(const SenseStore *s, const Backpack *m, BpError *err);

/* ---- vocabulary -------------------------------------------------------------------- */

int store_vocab_size(const SenseStore *s);
/* Readable text of a token (" the", "\n" shown as "\\n"), or "" out of range. */
const char *store_token_text(const SenseStore *s, int id);
/* The vocab.json string ("Ġthe"), or "" out of range. */
const char *store_token_string(const SenseStore *s, int id);
/* Raw bytes (not NUL-terminated), NULL out of range. */
const char *store_token_bytes(const SenseStore *s, int id, size_t *len);
/* Token with exactly these bytes, or -1. */
int store_lookup_bytes(const SenseStore *s, const char *bytes, size_t len);

/* A word as typed by a user, resolved by the rule at the top of this file. */
typedef struct {
    int n_tokens;                         /* 1 for a single token */
    int tokens[STORE_MAX_WORD_TOKENS];
    char text[128];                       /* what was typed */
} StoreWord;
/* Fails for an unknown word with "unknown word 'X'; closest: ' Y', ' Z', ..." (the
 * closest vocabulary entries), and for words longer than STORE_MAX_WORD_TOKENS. */
int store_resolve_word(SenseStore *s, const char *word, StoreWord *out, BpError *err);
/* (The first word that needs the tokenizer loads it from the database: ~0.2 s once for
 * GPT-2's vocabulary; single tokens are looked up in a hash table in microseconds.) */
/* Like store_resolve_word but fails unless the word is one token; returns the id. */
int store_resolve_token(SenseStore *s, const char *word, int *token, BpError *err);

/* Type-ahead: up to max ids whose readable text starts with prefix, ignoring a leading
 * space of both (so "ban" finds " bank" and "band"), shortest first, then by id.
 * Returns the number written. */
int store_prefix_search(const SenseStore *s, const char *prefix, int *ids, int max);
/* Up to max ids closest to word by edit distance of the readable text (leading space
 * ignored), closest first. Returns the number written. */
int store_closest_tokens(const SenseStore *s, const char *word, int *ids, int max);

/* ---- senses -------------------------------------------------------------------------- */

typedef struct {
    int id;                    /* vocabulary id */
    float score;               /* E[id] . vector (top/bottom words) or a cosine (nearest) */
} WordScore;

typedef struct {
    int token, sense;
    float norm;                /* |C(x)_l| in force */
    float exported_norm;       /* |C(x)_l| as exported */
    float weight;              /* in force, 1 = unedited */
    int vector_edited;         /* the vector in force differs from the exported one */
} SenseInfo;

int store_sense_info(SenseStore *s, int token, int sense, SenseInfo *out, BpError *err);

typedef enum { STORE_IN_FORCE = 0, STORE_EXPORTED = 1 } StoreVersion;
/* The sense vector C(x)_l (d floats) into out. */
int store_sense_vector(SenseStore *s, int token, int sense, StoreVersion which, float *out,
                       BpError *err);
/* All k senses of a resolved word (k * d floats), averaged over its tokens. */
int store_word_senses(SenseStore *s, const StoreWord *w, float *out, BpError *err);

/* The n highest (top, descending) and n lowest (bottom, ascending) words of E C(x)_l
 * for the vector in force, ties to the lower id; each score is the float rounding of
 * the double sum of the float products, exactly as export ranks them. Uses the stored
 * lists when the sense is unedited and n <= top_n, else recomputes from E (V dot
 * products in double: tens of ms for the small shape).
 * top or bottom may be NULL. Returns the number written to each (min(n, V)). */
int store_sense_words(SenseStore *s, int token, int sense, int n, WordScore *top,
                      WordScore *bottom, BpError *err);
/* The same for any vector (d floats), e.g. an edit preview or a multi-token average. */
int store_score_vector(SenseStore *s, const float *vector, int n, WordScore *top,
                       WordScore *bottom, BpError *err);

/* E (V x d, row-major), loaded on first call (the small shape: 154 MB, ~0.3 s) and owned
 * by the store. NULL on failure. */
const float *store_embeddings(SenseStore *s, BpError *err);

/* ---- nearest neighbours ------------------------------------------------------------ */

/* Opens the index used by store_nearest: the file "<db>.index" beside the database
 * (an int8 copy of every exported sense vector, normalized; senses/store_index.c),
 * written by export. Opening a valid one is an mmap (milliseconds, whatever the shape);
 * one that is missing, or stale (another export: weights hash and export id are
 * checked), is rebuilt from the database (seconds at the published shape: progress is
 * reported) and written for the next process when the directory is writable. Called
 * implicitly by store_nearest; the browser calls it in a background thread. */
int store_load_index(SenseStore *s, StoreProgress progress, void *ctx, BpError *err);

/* The n words y (other than exclude, -1 for none) with the highest cosine between
 * query and y's vectors in force: for sense >= 0, cos(query[sense], C(y)_sense);
 * for sense == -1 the minimum over senses, min_l cos(query[l], C(y)_l) (Sim_min).
 * query is (k, d) (e.g. from store_word_senses, or an edit preview); only row `sense`
 * is read when sense >= 0. A cosine is the exact score (store_sense_words) of the two
 * normalized vectors; ties go to the lower id. Exact: the int8 index screens every
 * word with a rigorous error bound and only the words that may rank are re-scored
 * from the database (store_nearest.c). Returns the number written. */
int store_nearest(SenseStore *s, const float *query, int sense, int exclude, int n,
                  WordScore *out, BpError *err);

/* Cosine of two vectors of d floats (0 when either is zero). */
float store_cosine(const float *a, const float *b, int d);

/* ---- edits ------------------------------------------------------------------------- */

typedef enum {
    EDIT_SCALE = 0,   /* C'(x)_l = value * C(x)_l */
    EDIT_WEIGHT,      /* weight'(x)_l = value: alpha_l[i, j] *= value where x_j == x */
    EDIT_COPY,        /* C'(x)_l = C(src_token)_src_sense (in force) */
    EDIT_RESET,       /* vector and weight of (x, l) back to the export */
    EDIT_REPLACE,     /* the paper's knowledge edit on every sense: old_token -> new_token */
} EditKind;

typedef struct {
    EditKind kind;
    int token;                 /* x */
    int sense;                 /* l; ignored by EDIT_REPLACE */
    float value;               /* EDIT_SCALE factor, EDIT_WEIGHT weight */
    int src_token, src_sense;  /* EDIT_COPY */
    int old_token, new_token;  /* EDIT_REPLACE: r, a */
} EditRequest;

/* One changed sense: its state in force before and after the edit. */
typedef struct {
    int token, sense;
    float weight_before, weight_after;
    float *vector_before, *vector_after;   /* (d) each */
} SenseChange;

typedef struct {
    SenseChange *changes;      /* 1, or k for EDIT_REPLACE */
    int count;
    char description[256];     /* "scale ' bank' sense 3 by 0.5" */
    float *storage;            /* private */
} EditPreview;

/* Computes what req would change, without writing (the browser's preview). Validates
 * ids, sense indices and values (finite; weight >= 0). */
int store_edit_preview(SenseStore *s, const EditRequest *req, EditPreview *out, BpError *err);
void store_edit_preview_free(EditPreview *p);

/* Applies req in one transaction (re-reading the state in force inside it): the edits
 * row, its edit_changes rows and edited_senses, or nothing. Needs STORE_READ_WRITE.
 * *edit_id (may be NULL) receives the new edit's id. */
int store_edit_commit(SenseStore *s, const EditRequest *req, int64_t *edit_id, BpError *err);

/* Applies the n requests in order as ONE edit (one edits row, all their edit_changes
 * rows, in one transaction: all or nothing), so that one undo takes them all back. Each
 * request sees the state the ones before it left (a sense may be changed twice). The
 * row's token / sense are the requests' common ones, or -1 when they differ; its kind
 * is theirs when they share one; description is stored as given (e.g. "steer topic
 * ..."). Used by senses/steer.h. */
int store_edit_commit_group(SenseStore *s, const EditRequest *reqs, int n, const char *description,
                            int64_t *edit_id, BpError *err);

/* Undoes edit `edit_id` (0 = the latest edit in force) in one transaction: restores
 * every sense it changed to its state before, bit for bit. Fails if the edit is
 * unknown or already undone, or if a later edit in force changed one of the same
 * senses (undo that one first). *undone_id (may be NULL) receives the id. */
int store_edit_undo(SenseStore *s, int64_t edit_id, int64_t *undone_id, BpError *err);

typedef struct {
    int64_t id;
    double created;            /* unix time */
    EditKind kind;
    int token, sense;          /* sense -1 for EDIT_REPLACE */
    int undone;
    char description[256];
} EditRecord;

/* Every edit, oldest first (undone ones included, marked). *out is malloc'ed. */
int store_edit_list(SenseStore *s, EditRecord **out, int *count, BpError *err);

/* The edits in force composed into the model's form (one SenseEdit per edited sense:
 * vector NULL when only the weight changed). Free with sense_edits_free (edits.h).
 * Does not check the model: see store_check_model / sense_edits_load. */
int store_sense_edits(SenseStore *s, SenseEdits *out, BpError *err);

const char *edit_kind_name(EditKind kind);

#endif
