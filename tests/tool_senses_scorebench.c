/* tool_senses_scorebench - the export's score product for a slice of the vocabulary,
 * old and new side by side, on a randomly initialized model. Not a test: prints times.
 *
 *   tool_senses_scorebench [--vocab V] [--d D] [--senses K] [--words W] [--top N] [--seed S]
 *
 * Defaults: the published small shape (V 50264, d 768, k 16) and the first 256 words
 * (4096 sense vectors, 1/196 of an export). For those vectors it times
 *   sgemm     the float product alone (rows x d x V): the floor of the old export
 *   old       sgemm + a scan of every row for its top and bottom lists (export before the screen)
 *   new       the int8 screen and the exact scores of its candidates (export_screen.c),
 *             plus, once, building the int8 copy of E
 * and checks the new lists against the exact scan (every score exact) on the first
 * 256 vectors, and counts the rows where the old float lists differ from them.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../model/backpack.h"
#include "../senses/store_private.h"

/* CPU seconds of the process: on a shared machine, less disturbed than wall time. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int same_lists(const WordScore *a, const WordScore *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i].id != b[i].id || a[i].score != b[i].score) return 0;
    return 1;
}

static int same_ids(const WordScore *a, const WordScore *b, int n) {
    for (int i = 0; i < n; i++)
        if (a[i].id != b[i].id) return 0;
    return 1;
}

int main(int argc, char **argv) {
    BackpackConfig c = {ARCH_BACKPACK, 50264, 768, 1, 12, 16, 64, 4, ATTN_DOT, 0};
    int words = 256, n = STORE_MIN_TOP_N;
    unsigned long long seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i];
        long v = strtol(argv[i + 1], NULL, 10);
        if (!strcmp(f, "--vocab")) c.vocab_size = (int)v;
        else if (!strcmp(f, "--d")) c.n_embd = (int)v;
        else if (!strcmp(f, "--senses")) c.num_senses = (int)v;
        else if (!strcmp(f, "--words")) words = (int)v;
        else if (!strcmp(f, "--top")) n = (int)v;
        else if (!strcmp(f, "--seed")) seed = (unsigned long long)v;
        else {
            fprintf(stderr, "scorebench: unknown option '%s'\n", f);
            return 2;
        }
    }
    c.n_head = c.n_embd % 12 == 0 ? 12 : 2;
    Backpack m;
    BpError err = {0};
    if (backpack_build(&m, &c, &err)) {
        fprintf(stderr, "scorebench: %s\n", err.msg);
        return 1;
    }
    backpack_init_weights(&m, seed);
    const int V = c.vocab_size, d = c.n_embd, k = c.num_senses, rows = words * k;
    const float *E = m.params.wte;
    float *C = malloc((size_t)rows * d * sizeof(float));
    float *scores = malloc((size_t)rows * V * sizeof(float));
    WordScore *top_old = malloc((size_t)rows * n * sizeof(WordScore)), *bot_old = malloc((size_t)rows * n * sizeof(WordScore));
    WordScore *top_new = malloc((size_t)rows * n * sizeof(WordScore)), *bot_new = malloc((size_t)rows * n * sizeof(WordScore));
    int *tokens = malloc(words * sizeof(int));
    if (!C || !scores || !top_old || !bot_old || !top_new || !bot_new || !tokens) {
        fprintf(stderr, "scorebench: out of memory\n");
        return 1;
    }
    for (int i = 0; i < words; i++) tokens[i] = i;
    backpack_compute_senses(&m, tokens, words, C);
    const double flops = 2.0 * rows * (double)d * V;

    double t0 = omp_get_wtime(), c0 = cpu_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, V, d, 1.0f, C, d, E, d, 0.0f, scores, V);
    const double t_sgemm = omp_get_wtime() - t0, c_sgemm = cpu_now() - c0;
    t0 = omp_get_wtime();
    c0 = cpu_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, V, d, 1.0f, C, d, E, d, 0.0f, scores, V);
#pragma omp parallel for schedule(dynamic, 4)
    for (int r = 0; r < rows; r++)
        select_extremes(scores + (size_t)r * V, V, n, top_old + (size_t)r * n, bot_old + (size_t)r * n);
    const double t_old = omp_get_wtime() - t0, c_old = cpu_now() - c0;

    t0 = omp_get_wtime();
    ScoreScreen *g = score_screen_build(E, V, d, &err);
    const double t_build = omp_get_wtime() - t0;
    if (!g) {
        fprintf(stderr, "scorebench: %s\n", err.msg);
        return 1;
    }
    t0 = omp_get_wtime();
    c0 = cpu_now();
    if (score_screen_extremes(g, E, C, rows, n, top_new, bot_new, &err)) {
        fprintf(stderr, "scorebench: %s\n", err.msg);
        return 1;
    }
    const double t_new = omp_get_wtime() - t0, c_new = cpu_now() - c0;

    /* the exact scan on the first rows; the old lists against it on every row */
    const int checked = rows < 256 ? rows : 256;
    int wrong = 0, old_differs = 0;
    WordScore *top_ref = malloc(n * sizeof(WordScore)), *bot_ref = malloc(n * sizeof(WordScore));
    for (int r = 0; r < checked; r++) {
        score_extremes_exact(E, V, d, C + (size_t)r * d, n, top_ref, bot_ref, scores);
        if (!same_lists(top_ref, top_new + (size_t)r * n, n) || !same_lists(bot_ref, bot_new + (size_t)r * n, n)) wrong++;
    }
    for (int r = 0; r < rows; r++)
        if (!same_ids(top_old + (size_t)r * n, top_new + (size_t)r * n, n) ||
            !same_ids(bot_old + (size_t)r * n, bot_new + (size_t)r * n, n))
            old_differs++;
    printf("scorebench V=%d d=%d k=%d: %d vectors (%d words), top %d, threads %d\n", V, d, k, rows, words, n,
           omp_get_max_threads());
    printf("  sgemm alone                           %8.3f s wall %8.3f s CPU  (%.1f GFLOP/s wall)\n", t_sgemm,
           c_sgemm, flops / t_sgemm / 1e9);
    printf("  old (sgemm + scan)                    %8.3f s wall %8.3f s CPU\n", t_old, c_old);
    printf("  new (int8 screen + exact candidates)  %8.3f s wall %8.3f s CPU\n", t_new, c_new);
    printf("  new / sgemm floor: %.3f wall, %.3f CPU; old / new: %.2fx wall, %.2fx CPU (int8 copy of E, once: %.3f s)\n",
           t_new / t_sgemm, c_new / c_sgemm, t_old / t_new, c_old / c_new, t_build);
    printf("  new lists equal the exact scan on %d/%d vectors checked; old float lists differ from the new"
           " in %d of %d vectors (near ties under float rounding)\n",
           checked - wrong, checked, old_differs, rows);
    score_screen_free(g);
    free(top_ref);
    free(bot_ref);
    free(C);
    free(scores);
    free(top_old);
    free(bot_old);
    free(top_new);
    free(bot_new);
    free(tokens);
    backpack_free(&m);
    return wrong ? 1 : 0;
}
