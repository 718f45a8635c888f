/* senses_fixture.h - what the sense suites share: a tiny random Backpack (V = 288,
 * d = 16, k = 4) exported to a database in a temporary directory, with a tiny byte-level
 * BPE tokenizer written by the test (" bank" = 259, " river" = 264, " money" = 269,
 * " the" = 272, " cat" = 275, " dog" = 278, "bank" = 281, padding past 282); a command
 * runner that captures its output. Included by one suite each (static definitions). */
#ifndef BP_TESTS_SENSES_FIXTURE_H
#define BP_TESTS_SENSES_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../model/infer.h"
#include "../senses/edits.h"
#include "../senses/stats.h"
#include "../senses/store.h"

enum { V = 288, D = 16, K = 4, TOP = 20, EXPORT_CHUNK = 37 /* does not divide V */ };

static char tmpdir[256], tokdir[300], dbpath[300];
static Backpack model;   /* the exported model */
static float *senses;    /* (V, K, D) from backpack_compute_senses */

/* ---- fixture: a GPT-2 style vocab.json + merges.txt --------------------------------- */

static inline void byte_to_unicode(int b, char *out) {
    /* GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256+n. */
    static int table[256], built = 0;
    if (!built) {
        int n = 0;
        for (int i = 0; i < 256; i++) {
            int printable = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF);
            table[i] = printable ? i : 256 + n++;
        }
        built = 1;
    }
    int cp = table[b];
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static inline void encode_bytes(const char *raw, char *out) {
    out[0] = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        char u[4];
        byte_to_unicode(*p, u);
        strcat(out, u);
    }
}

/* merges as raw byte strings: each pair makes a new token */
static const char *MERGES[][2] = {
    {" ", "b"}, {" b", "a"}, {" ba", "n"}, {" ban", "k"},
    {" ", "r"}, {"i", "v"}, {" r", "iv"}, {"e", "r"}, {" riv", "er"},
    {" ", "m"}, {"o", "n"}, {" m", "on"}, {"e", "y"}, {" mon", "ey"},
    {" ", "t"}, {"h", "e"}, {" t", "he"},
    {" ", "c"}, {"a", "t"}, {" c", "at"},
    {" ", "d"}, {"o", "g"}, {" d", "og"},
    {"b", "a"}, {"ba", "n"}, {"ban", "k"},
};
enum { N_MERGES = sizeof MERGES / sizeof MERGES[0] };

static inline void write_tokenizer(const char *dir) {
    char path[400];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{");
    for (int b = 0; b < 256; b++) {
        char u[4];
        byte_to_unicode(b, u);
        fprintf(f, "%s\"%s%s\": %d", b ? ", " : "", u[0] == '"' || u[0] == '\\' ? "\\" : "", u, b);
    }
    for (int i = 0; i < N_MERGES; i++) {
        char joined[64], enc[256];
        snprintf(joined, sizeof joined, "%s%s", MERGES[i][0], MERGES[i][1]);
        encode_bytes(joined, enc);
        fprintf(f, ", \"%s\": %d", enc, 256 + i);
    }
    fprintf(f, ", \"<|endoftext|>\": %d}", 256 + N_MERGES);
    fclose(f);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#version: 0.2\n");
    for (int i = 0; i < N_MERGES; i++) {
        char a[64], b[64];
        encode_bytes(MERGES[i][0], a);
        encode_bytes(MERGES[i][1], b);
        fprintf(f, "%s %s\n", a, b);
    }
    fclose(f);
}

static inline void build_model(Backpack *m, uint64_t seed) {
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = V, .n_embd = D, .n_layer = 1, .n_head = 2,
                        .num_senses = K, .n_positions = 16, .sense_intermediate_scale = 4};
    BpError err = {0};
    assert_int_equal(backpack_build(m, &c, &err), 0);
    backpack_init_weights(m, seed);
    /* Larger E and F_2 than the 0.02 init, so that logits and their changes are O(1) and
     * a 1e-4 tolerance means something. */
    for (size_t i = 0; i < (size_t)V * D; i++) m->params.wte[i] *= 50.0f;
    for (size_t i = 0; i < (size_t)4 * D * K * D; i++) m->params.sense_final_projw[i] *= 50.0f;
}

static inline int export_to(const Backpack *m, const char *path, int force, BpError *err) {
    ExportOptions o = {.top_n = TOP, .force = force, .chunk_words = EXPORT_CHUNK};
    return store_export(m, tokdir, path, &o, err);
}

static inline int group_setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bp-test-senses-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(tokdir, sizeof tokdir, "%s/tok", tmpdir);
    BpError err = {0};
    if (make_dirs(tokdir, &err)) return -1;
    write_tokenizer(tokdir);
    build_model(&model, 1234);
    senses = malloc((size_t)V * K * D * sizeof(float));
    /* in the export's chunks: the sense network's sgemm rounds differently for other
     * batch sizes, and the round trip is checked bit for bit */
    int ids[EXPORT_CHUNK];
    for (int start = 0; start < V; start += EXPORT_CHUNK) {
        int n = V - start < EXPORT_CHUNK ? V - start : EXPORT_CHUNK;
        for (int i = 0; i < n; i++) ids[i] = start + i;
        backpack_compute_senses(&model, ids, n, senses + (size_t)start * K * D);
    }
    snprintf(dbpath, sizeof dbpath, "%s/senses.db", tmpdir);
    if (export_to(&model, dbpath, 0, &err)) {
        fprintf(stderr, "export: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static inline int group_teardown(void **state) {
    (void)state;
    backpack_free(&model);
    free(senses);
    remove_tree(tmpdir);
    return 0;
}

static inline SenseStore *open_rw(void) {
    SenseStore *s = NULL;
    BpError err = {0};
    if (store_open(&s, dbpath, STORE_READ_WRITE, &err)) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(s);
    return s;
}

/* The cosine of two D-vectors, in double. */
static inline double cosine_d(const float *a, const float *b) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < D; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

/* The paper's replace edit of sense l of word x, computed independently in double:
 * C' = C - (C.E[r] / |E[r]|^2) E[r] + (C.E[r] / |E[a]|^2) E[a], replacing word r by a. */
static inline void expected_replace(int x, int l, int r, int a, double out[D]) {
    const float *c = senses + ((size_t)x * K + l) * D;
    const float *er = model.params.wte + (size_t)r * D, *ea = model.params.wte + (size_t)a * D;
    double cr = 0, rr = 0, aa = 0;
    for (int i = 0; i < D; i++) {
        cr += (double)c[i] * er[i];
        rr += (double)er[i] * er[i];
        aa += (double)ea[i] * ea[i];
    }
    const double coef = cr / rr;
    for (int i = 0; i < D; i++) out[i] = c[i] - coef * er[i] + coef * rr / aa * ea[i];
}

/* Undoes every edit in force so that each test starts from the export. */
static inline void undo_all(SenseStore *s) {
    BpError err;
    while (store_edit_undo(s, 0, NULL, &err) == 0) {}
    SenseEdits e;
    assert_int_equal(store_sense_edits(s, &e, &err), 0);
    assert_int_equal(e.count, 0);
}

static inline void read_into(const char *path, char *buf, size_t size) {
    char *data;
    size_t len;
    buf[0] = 0;
    if (read_file(path, &data, &len, NULL) == 0) {
        snprintf(buf, size, "%s", data);
        free(data);
    }
}

/* Runs a command with stderr captured into msg and stdout into out (NULL: dropped). */
static inline int run_captured_out(int (*cmd)(int, char **), int argc, char **argv, char *msg, size_t size, char *out,
                            size_t out_size) {
    char err_path[400], out_path[400];
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", tmpdir);
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", tmpdir);
    fflush(stderr);
    fflush(stdout);
    int saved = dup(2), saved_out = dup(1);
    int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    fd = open(out ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    close(fd);
    int rc = cmd(argc, argv);
    fflush(stderr);
    fflush(stdout);
    dup2(saved, 2);
    close(saved);
    dup2(saved_out, 1);
    close(saved_out);
    read_into(err_path, msg, size);
    if (out) read_into(out_path, out, out_size);
    return rc;
}

static inline int run_captured(int (*cmd)(int, char **), int argc, char **argv, char *msg, size_t size) {
    return run_captured_out(cmd, argc, argv, msg, size, NULL, 0);
}

#endif
