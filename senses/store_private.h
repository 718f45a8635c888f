/* store_private.h - what the files of senses/ share (store_open.c, store_vocab.c,
 * store_query.c, store_nearest.c, export.c, store_edits.c); not an API. */
#ifndef BP_SENSE_STORE_PRIVATE_H
#define BP_SENSE_STORE_PRIVATE_H

#include <sqlite3.h>

#include "../text/hashmap.h"
#include "store.h"

typedef struct NearIndex NearIndex;

struct SenseStore {
    sqlite3 *db;
    int lock_fd;               /* the database file, flock(LOCK_SH) held (store_file.c) */
    StoreMode mode;
    int busy_timeout_ms;
    StoreInfo info;
    int V, d, k;
    /* vocabulary: strings in one pool */
    char *pool;
    size_t *tok_string;        /* (V) offsets into pool */
    size_t *tok_text;          /* (V) */
    size_t *tok_bytes;         /* (V) */
    size_t *tok_bytes_len;     /* (V) */
    ByteMap by_bytes;          /* token bytes -> id */
    int *by_text;              /* (V) ids sorted by readable text without a leading space */
    void *tokenizer;           /* Tokenizer*, loaded on first multi-token word */
    char tokenizer_dir[512];   /* temporary directory it was materialized in */
    int tokenizer_failed;
    float *wte;                /* (V, d) once loaded */
    NearIndex *near;           /* the nearest-neighbour index once loaded (store_index.c) */
    char export_id[40];        /* meta export_id, "" in databases of earlier versions */
    sqlite3_stmt *st_vector;   /* SELECT vector FROM senses WHERE id=? */
    sqlite3_stmt *st_info;     /* SELECT norm FROM senses WHERE id=? */
    sqlite3_stmt *st_lists;    /* SELECT top_ids, top_scores, bottom_ids, bottom_scores */
    sqlite3_stmt *st_edited;   /* SELECT weight, vector FROM edited_senses WHERE ... */
    sqlite3_stmt *st_wte;      /* SELECT vector FROM wte WHERE id=? */
};

/* "path: sqlite message" into err; returns -1. */
int store_sql_fail(const SenseStore *s, BpError *err, const char *what);
/* Reads a float32 BLOB of exactly n floats (little-endian host assumed: x86-64). */
int blob_to_floats(const void *blob, int bytes, float *out, int n);

/* store_file.c: the lock protocol described there. store_lock_open opens path and takes
 * the shared lock; store_lock_still_current says whether path still names the file fd
 * has open; store_lock_for_replace takes the exclusive lock without waiting (*fd = -1
 * and 0 when path does not exist; fails with "is open in another backpack process");
 * store_unlock releases either. */
int store_lock_open(const char *path, int *fd, BpError *err);
int store_lock_still_current(int fd, const char *path);
int store_lock_for_replace(const char *path, int *fd, BpError *err);
void store_unlock(int fd);
/* Whether the file's SQLite header says WAL mode (databases of earlier backpacks). */
int store_header_is_wal(const char *path);
/* Removes path and its -wal, -shm and -journal. */
void store_remove_db_files(const char *path);
/* Removes "<db>.tmp-<pid>" files (and their -wal/-shm/-journal) beside db_path whose
 * process is gone: the leftovers of killed exports. Nothing else: files of running
 * processes, and names that are not exactly this pattern, stay. */
void store_remove_stale_temporaries(const char *db_path);

/* store_vocab.c: loads the tokens table into the fields above (store_open), and frees
 * them with the tokenizer (store_close). */
int store_load_vocab(SenseStore *s, BpError *err);
void store_free_vocab(SenseStore *s);

/* store_index.c: the nearest-neighbour index file "<db>.index" (format there). */
void store_free_index(SenseStore *s);
int near_index_path(const char *db_path, char *out, size_t size);
void near_index_free(NearIndex *x);
/* One sense's rows of the index: V rows of d_pad int8 and their constants. */
typedef struct {
    const int8_t *q;
    const int32_t *q_sum;
    const float *scale, *resid, *norm;
    int d_pad;
} NearRows;
void near_index_rows(const NearIndex *x, int sense, NearRows *out);
/* Export builds the index of the vectors it writes: add every (word, sense) once
 * (scratch: d floats), then write it beside db_path. */
typedef struct IndexBuilder IndexBuilder;
IndexBuilder *index_builder_new(int V, int k, int d);
void index_builder_add(IndexBuilder *b, int word, int sense, const float *vector, float *scratch);
int index_builder_write(IndexBuilder *b, const char *db_path, const char *weights_hash, const char *export_id,
                        BpError *err);
void index_builder_free(IndexBuilder *b);
/* x / |x|_2 in float (0 for a zero vector): the normalization of every cosine here. */
void store_normalize(const float *x, int d, float *out);

/* State in force of one sense: vector (d) and weight. */
int store_state(SenseStore *s, int token, int sense, float *vector, float *weight, BpError *err);
/* Row E[id] into out (d floats), from memory when loaded, else from the database. */
int store_wte_row(SenseStore *s, int id, float *out, BpError *err);

/* Selects the n highest and n lowest of scores[0..V) (ties: lower id first). top and
 * bottom may be NULL. */
void select_extremes(const float *scores, int V, int n, WordScore *top, WordScore *bottom);

/* The score of a word for a vector: fl32 of the double sum of the float products, in a
 * fixed order (independent of BLAS and threads). Every stored and recomputed top/bottom
 * list ranks by it. */
float store_exact_score(const float *e, const float *c, int d);

/* export_screen.c: the top and bottom words of many vectors through an int8 screen,
 * equal to score_extremes_exact's lists for each vector (the proof is there). */
typedef struct ScoreScreen ScoreScreen;
ScoreScreen *score_screen_build(const float *E, int V, int d, BpError *err);
void score_screen_free(ScoreScreen *g);
/* For each of the rows vectors C[r] (d floats), the n highest words into top + r * n and
 * the n lowest into bottom + r * n (either may be NULL). Threads: OpenMP. */
int score_screen_extremes(const ScoreScreen *g, const float *E, const float *C, int rows, int n, WordScore *top,
                          WordScore *bottom, BpError *err);
/* The reference: every word's exact score into scores (V), then select_extremes. */
void score_extremes_exact(const float *E, int V, int d, const float *c, int n, WordScore *top, WordScore *bottom,
                          float *scores);

/* The n largest values pushed so far, as a min-heap (heap[0] is the n-th largest once
 * *size == n). */
void float_heap_push(float *heap, int *size, int n, float x);

/* Opens a database file and checks it is a complete sense database of our schema;
 * used by store_open and by export (to refuse overwriting other files). */
int store_validate_db(sqlite3 *db, const char *path, BpError *err);

#endif
