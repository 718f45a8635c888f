/* edits.h - the edits stored in a sense database, as the model applies them.
 *
 * The sense store keeps every edit as a row (senses/store.h); this header is the one
 * thing generate and eval need: the composed effect of all edits in force, as the
 * model's SenseEdits (model/backpack.h), checked against the model they were made for.
 */
#ifndef BP_SENSE_EDITS_H
#define BP_SENSE_EDITS_H

#include "../model/backpack.h"

/* Loads the edits in force from db_path for model m. Fails (naming the file) when the
 * database is not a sense database, or was exported from another model (shape or
 * weights-hash mismatch). On success out->items is owned by the caller: free with
 * sense_edits_free. */
int sense_edits_load(const char *db_path, const Backpack *m, SenseEdits *out, BpError *err);
void sense_edits_free(SenseEdits *edits);

#endif
