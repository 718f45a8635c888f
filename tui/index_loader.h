/* index_loader.h - loads the sense store's nearest-neighbour index in the background.
 *
 * The index holds every sense vector normalized (V x k x d floats: 2.5 GB and a few
 * seconds for the published small shape), so loading it on the first visit of a sense
 * screen would freeze that keypress. Instead a thread opens a second, read-only
 * SenseStore on the same database and loads the index into it while the user reads
 * other screens; once it reports ready, that store belongs to the UI thread, which uses
 * it only for store_nearest (a store is used by one thread at a time: before ready only
 * the loader touches it, after ready only the UI). store_nearest reads the edits in
 * force from the database on every call, so edits saved through the main store are
 * seen.
 */
#ifndef BP_TUI_INDEX_LOADER_H
#define BP_TUI_INDEX_LOADER_H

#include "../senses/store.h"

typedef struct IndexLoader IndexLoader;

typedef enum { INDEX_LOADING = 0, INDEX_READY = 1, INDEX_FAILED = -1 } IndexState;

/* Starts loading the index of db_path in a thread. NULL when out of memory or when
 * the thread cannot start (then callers fall back to loading in the foreground). */
IndexLoader *index_loader_start(const char *db_path);
/* The state now; *fraction (may be NULL) gets the part loaded. */
IndexState index_loader_poll(IndexLoader *l, double *fraction);
/* Blocks until the loader finishes (the scripted mode: deterministic screens). */
IndexState index_loader_wait(IndexLoader *l);
/* After INDEX_READY: the store with the index, for store_nearest. NULL otherwise. */
SenseStore *index_loader_store(IndexLoader *l);
/* After INDEX_FAILED: the loader's one-line error. */
const char *index_loader_error(IndexLoader *l);
/* Frees the loader. wait = 1 joins a thread still loading; wait = 0 leaves it to die
 * with the process (quitting must not wait seconds for a load nobody needs). */
void index_loader_free(IndexLoader *l, int wait);

#endif
