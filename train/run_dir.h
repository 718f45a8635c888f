/* run_dir.h - the output directory of a run. Every save replaces the directory whole
 * (model/checkpoint.h), so whatever else the user keeps in it (notes, a plots/
 * subdirectory, symbolic links) has to be carried into each new checkpoint: the trainer
 * passes run_dir_carry_over as part of the save. */
#ifndef BP_RUN_DIR_H
#define BP_RUN_DIR_H

#include "../common/error.h"

/* A new run may write into a missing directory (created) or an existing one that does
 * not already hold a model. */
int run_dir_check_new(const char *dir, BpError *err);

/* Recreates in staging every entry of dir that is not a checkpoint file (the model's and
 * the trainer's own files, which the save writes afresh) and not already in staging:
 * subdirectories are rebuilt entry by entry, everything else (regular files, symbolic
 * links, FIFOs) is hard-linked, or copied when it is a regular file that cannot be
 * linked. Nothing in dir is modified, so a failed save loses nothing. */
int run_dir_carry_over(const char *dir, const char *staging, BpError *err);

#endif
