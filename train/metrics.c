/* metrics.c - metrics.jsonl (see metrics.h). */
#include "metrics.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fileio.h"

int metrics_init(Metrics *mt, const char *out_dir, BpError *err) {
    memset(mt, 0, sizeof *mt);
    return path_join(mt->path, sizeof mt->path, out_dir, TRAIN_METRICS_FILE, err);
}

int metrics_open(Metrics *mt, BpError *err) {
    metrics_close(mt);
    mt->fp = fopen(mt->path, "a");
    if (!mt->fp) return bp_fail_errno(err, "%s: cannot open", mt->path);
    return 0;
}

void metrics_close(Metrics *mt) {
    if (mt->fp) fclose(mt->fp);
    mt->fp = NULL;
}

int metrics_rewind(Metrics *mt, const char *resume_dir, uint64_t bytes, BpError *err) {
    char src[4096];
    if (path_join(src, sizeof src, resume_dir, TRAIN_METRICS_FILE, err) != 0) return -1;
    if (strcmp(src, mt->path) != 0 && file_exists(src) && !file_exists(mt->path))
        if (copy_file_atomic(src, mt->path, err) != 0) return -1;
    struct stat st;
    if (stat(mt->path, &st) == 0 && (uint64_t)st.st_size > bytes)
        if (truncate(mt->path, (off_t)bytes) != 0)
            return bp_fail_errno(err, "%s: cannot truncate", mt->path);
    return 0;
}

uint64_t metrics_bytes(Metrics *mt) {
    if (mt->fp) fflush(mt->fp);
    struct stat st;
    return stat(mt->path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

void metrics_step(Metrics *mt, const StepReport *r) {
    if (!mt->fp) return;
    fprintf(mt->fp,
            "{\"step\": %llu, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.9g, \"tokens\": %llu, "
            "\"elapsed\": %.3f, \"tokens_per_s\": %.1f}\n",
            (unsigned long long)r->step, r->loss, r->lr, r->grad_norm,
            (unsigned long long)r->tokens, r->elapsed, r->tokens_per_s);
}

void metrics_eval(Metrics *mt, uint64_t step, double val_loss, uint64_t tokens, double elapsed) {
    if (!mt->fp) return;
    fprintf(mt->fp,
            "{\"step\": %llu, \"val_loss\": %.9g, \"val_ppl\": %.9g, \"tokens\": %llu, \"elapsed\": %.3f}\n",
            (unsigned long long)step, val_loss, exp(val_loss), (unsigned long long)tokens, elapsed);
    fflush(mt->fp);
}
