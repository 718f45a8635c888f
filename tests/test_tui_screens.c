/* The sense browser: what its screens show, driven by keys on the in-memory canvas,
 * on a tiny model and database built here; then the real binary ($BACKPACK) for the
 * scripted mode, bad input, and one session under tmux (tests/tui_tmux.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../model/checkpoint.h"
#include "../model/infer.h"
#include "../senses/store.h"
#include "../text/tokenizer.h"
#include "../tui/app.h"
#include "../tui/screen_edit.h"
#include "../tui/screen_prompt.h"
#include "../tui/screen_run.h"
#include "../tui/screen_sense.h"
#include "../tui/screen_word.h"
#include "../tui/canvas.h"
#include "../tui/keys.h"
#include "fixture.h"

static char model_dir[300], other_dir[300], db_path[300], tok_dir[300];
/* the model again, as a training run's directory: with metrics.jsonl (run_dir) and with
 * a broken one (bad_run_dir) */
static char run_dir[300], bad_run_dir[300];
/* models whose context is shorter than the greedy continuation, and their databases */
static const int small_contexts[] = {1, 4};
#define N_SMALL (sizeof small_contexts / sizeof small_contexts[0])
static char small_model[N_SMALL][300], small_db[N_SMALL][300];
static int have_fixture;

/* ---- the fixture: a hand-made byte-level BPE, a tiny random model, its database --------- */

/* GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest are moved
 * to U+0100 and up. */
static void byte_to_utf8(int b, char *out) {
    int cp;
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
        cp = b;
    } else {
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
        cp = 256 + n;
    }
    int len = utf8_encode(cp, out);
    out[len] = 0;
}

/* Words that become single tokens, built by left-to-right merges. */
static const char *fixture_words[] = {" bank", " band", " river", " money", " the", " caf\xc3\xa9",
                                      " \xe6\x97\xa5\xe6\x9c\xac", " is", " a"};
#define N_FIXTURE_WORDS (sizeof fixture_words / sizeof fixture_words[0])

/* The byte-unicode form of bytes s[0..n). */
static void mapped(const char *s, size_t n, char *out) {
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        char c[8];
        byte_to_utf8((unsigned char)s[i], c);
        strcat(out, c);
    }
}

static int write_tokenizer(const char *dir) {
    BpError err = {0};
    if (make_dirs(dir, &err) != 0) return -1;
    char *vocab = malloc(1 << 16), *merges = malloc(1 << 16);
    char entries[64][64];
    int n_entries = 0;
    strcpy(vocab, "{");
    strcpy(merges, "#version: 0.2\n");
    int id = 0;
    for (int b = 0; b < 256; b++) {
        char c[8], esc[16];
        byte_to_utf8(b, c);
        snprintf(esc, sizeof esc, "%s", !strcmp(c, "\"") ? "\\\"" : !strcmp(c, "\\") ? "\\\\" : c);
        sprintf(vocab + strlen(vocab), "%s\"%s\": %d", id ? ", " : "", esc, id);
        id++;
    }
    for (size_t w = 0; w < N_FIXTURE_WORDS; w++) {
        const char *word = fixture_words[w];
        size_t len = strlen(word);
        /* merge the first two characters, then add one UTF-8 character at a time */
        size_t prefix = 0;
        {
            int cp;
            prefix = (size_t)utf8_decode(word, len, &cp);
        }
        while (prefix < len) {
            int cp;
            size_t next = (size_t)utf8_decode(word + prefix, len - prefix, &cp);
            char left[64], right[64], joined[64];
            mapped(word, prefix, left);
            mapped(word + prefix, next, right);
            /* a multi-byte character first merges its own bytes */
            if (next > 1) {
                char a[16], b[16];
                mapped(word + prefix, 1, a);
                for (size_t q = 1; q < next; q++) {
                    mapped(word + prefix + q, 1, b);
                    char ab[32];
                    snprintf(ab, sizeof ab, "%s%s", a, b);
                    int seen = 0;
                    for (int e = 0; e < n_entries; e++) seen |= !strcmp(entries[e], ab);
                    if (!seen) {
                        sprintf(merges + strlen(merges), "%s %s\n", a, b);
                        sprintf(vocab + strlen(vocab), ", \"%s\": %d", ab, id++);
                        strcpy(entries[n_entries++], ab);
                    }
                    strcpy(a, ab);
                }
            }
            snprintf(joined, sizeof joined, "%s%s", left, right);
            int seen = 0;
            for (int e = 0; e < n_entries; e++) seen |= !strcmp(entries[e], joined);
            if (!seen) {
                sprintf(merges + strlen(merges), "%s %s\n", left, right);
                sprintf(vocab + strlen(vocab), ", \"%s\": %d", joined, id++);
                strcpy(entries[n_entries++], joined);
            }
            prefix += next;
        }
    }
    sprintf(vocab + strlen(vocab), ", \"<|endoftext|>\": %d}", id++);
    char path[512];
    int rc = 0;
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    rc |= write_file_atomic(path, vocab, strlen(vocab), &err);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    rc |= write_file_atomic(path, merges, strlen(merges), &err);
    free(vocab);
    free(merges);
    return rc ? -1 : id;
}

static int make_model(const char *dir, int vocab, uint64_t seed, int context) {
    BackpackConfig c = {.arch = ARCH_BACKPACK, .vocab_size = vocab, .n_embd = 32, .n_layer = 2,
                        .n_head = 2, .num_senses = 4, .n_positions = context, .sense_intermediate_scale = 4};
    Backpack m;
    BpError err = {0};
    if (backpack_build(&m, &c, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    backpack_init_weights(&m, seed);
    /* larger embeddings than the init's 0.02 so the senses have clear top words */
    for (int i = 0; i < vocab * c.n_embd; i++) m.params.wte[i] *= 20.0f;
    size_t S = (size_t)c.sense_intermediate_scale * c.n_embd;
    for (size_t i = 0; i < S * c.num_senses * c.n_embd; i++) m.params.sense_final_projw[i] *= 30.0f;
    int rc = checkpoint_save(&m, dir, tok_dir, NULL, NULL, &err);
    if (rc != 0) fprintf(stderr, "%s\n", err.msg);
    backpack_free(&m);
    return rc;
}

static int export_model(const char *dir, const char *db) {
    Backpack m;
    BpError err = {0};
    if (checkpoint_load(&m, dir, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    ExportOptions opts = {0};
    opts.top_n = 20;
    int rc = store_export(&m, tok_dir, db, &opts, &err);
    if (rc != 0) fprintf(stderr, "export: %s\n", err.msg);
    backpack_free(&m);
    return rc;
}

/* The run's metrics: RUN_STEPS steps of RUN_TOKENS_PER_STEP tokens, the loss falling
 * linearly from 6.0 by 0.2 a step; an evaluation every 5 steps, 0.3 above the loss. */
#define RUN_STEPS 20
#define RUN_TOKENS_PER_STEP 100
static double run_loss(int i) { return 6.0 - 0.2 * i; }
static int write_run_metrics(const char *dir) {
    char path[400], *text = malloc(1 << 14);
    size_t n = 0;
    for (int i = 0; i < RUN_STEPS; i++) {
        double tokens = (double)RUN_TOKENS_PER_STEP * (i + 1);
        n += (size_t)snprintf(text + n, (1 << 14) - n,
                              "{\"step\": %d, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.4f, "
                              "\"tokens\": %.0f, \"elapsed\": %.1f, \"tokens_per_s\": 1000}\n",
                              i + 1, run_loss(i), 1e-3 * (i + 1 < 5 ? (i + 1) / 5.0 : 1.0), 1.0 + 0.1 * i,
                              tokens, 0.1 * (i + 1));
        if ((i + 1) % 5 == 0)
            n += (size_t)snprintf(text + n, (1 << 14) - n,
                                  "{\"step\": %d, \"val_loss\": %.6f, \"val_ppl\": 1, \"tokens\": %.0f, "
                                  "\"elapsed\": %.1f}\n",
                                  i + 1, run_loss(i) + 0.3, tokens, 0.1 * (i + 1));
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    BpError err = {0};
    int rc = write_file_atomic(path, text, n, &err);
    free(text);
    return rc;
}

static int setup_fixture(void **state) {
    (void)state;
    canvas_init_locale();
    if (temp_dir_create(&tmp, "tui") != 0) return -1;
    temp_dir_path(&tmp, "tok", tok_dir, sizeof tok_dir);
    temp_dir_path(&tmp, "model", model_dir, sizeof model_dir);
    temp_dir_path(&tmp, "other", other_dir, sizeof other_dir);
    temp_dir_path(&tmp, "senses.db", db_path, sizeof db_path);
    int n_ids = write_tokenizer(tok_dir);
    if (n_ids < 0) return -1;
    int vocab = (n_ids + 7) / 8 * 8;  /* padded like GPT-2's 50264 */
    if (make_model(model_dir, vocab, 1, 64) != 0 || make_model(other_dir, vocab, 2, 64) != 0) return -1;
    int rc = export_model(model_dir, db_path);
    temp_dir_path(&tmp, "run", run_dir, sizeof run_dir);
    temp_dir_path(&tmp, "badrun", bad_run_dir, sizeof bad_run_dir);
    if (rc == 0) rc = make_model(run_dir, vocab, 1, 64);
    if (rc == 0) rc = make_model(bad_run_dir, vocab, 1, 64);
    if (rc == 0) rc = write_run_metrics(run_dir);
    for (size_t i = 0; i < N_SMALL && rc == 0; i++) {
        snprintf(small_model[i], sizeof small_model[i], "%s/c%d", tmp.path, small_contexts[i]);
        snprintf(small_db[i], sizeof small_db[i], "%s/c%d.db", tmp.path, small_contexts[i]);
        rc = make_model(small_model[i], vocab, 3, small_contexts[i]);
        if (rc == 0) rc = export_model(small_model[i], small_db[i]);
    }
    have_fixture = rc == 0;
    return rc;
}

/* ---- driving the app ---------------------------------------------------------------------- */

typedef struct {
    App app;
    Canvas *canvas;
} Session;

static Session *session_open_on(const char *db, const char *model, int rows, int cols) {
    Session *s = calloc(1, sizeof *s);
    BpError err = {0};
    if (app_open(&s->app, db, model, &err) != 0) fail_msg("%s", err.msg);
    s->app.ui.wait_for_index = 1;  /* as the scripted mode: screens do not depend on timing */
    s->canvas = canvas_memory_new(rows, cols);
    app_draw(&s->app, s->canvas);
    return s;
}

static Session *session_open(int with_model, int rows, int cols) {
    return session_open_on(db_path, with_model ? model_dir : NULL, rows, cols);
}

static void session_close(Session *s) {
    app_close(&s->app);
    canvas_destroy(s->canvas);
    free(s);
}

/* The screens' states and the model runs, to check what a screen shows against. */
static WordScreen *word_of(Session *s) { return app_screen_state(&s->app, SCREEN_WORD); }
static SenseScreen *sense_of(Session *s) { return app_screen_state(&s->app, SCREEN_SENSE); }
static PromptScreen *prompt_of(Session *s) { return app_screen_state(&s->app, SCREEN_PROMPT); }
static EditScreen *edit_of(Session *s) { return app_screen_state(&s->app, SCREEN_EDIT); }

static void press(Session *s, const char *keys) {
    KeyEvent *ev;
    int n;
    BpError err = {0};
    if (keys_parse(keys, &ev, &n, &err) != 0) fail_msg("%s", err.msg);
    for (int i = 0; i < n && !s->app.quit; i++) {
        if (ev[i].key == BK_RESIZE) canvas_memory_resize(s->canvas, ev[i].rows, ev[i].cols);
        app_key(&s->app, ev[i].key);
        model_drain(&s->app);  /* as the scripted mode: the model runs complete */
        app_draw(&s->app, s->canvas);
    }
    free(ev);
}

/* The first row containing text, or -1. */
static int row_with(Session *s, const char *text) {
    for (int r = 0; r < s->canvas->rows; r++) {
        char *line = canvas_memory_row(s->canvas, r);
        int found = strstr(line, text) != NULL;
        free(line);
        if (found) return r;
    }
    return -1;
}

static char *row_text(Session *s, int r) { return canvas_memory_row(s->canvas, r); }

/* 1 if the text drawn from display column col of row r starts with text. */
static int starts_at(Session *s, int r, int col, const char *text) {
    char *row = row_text(s, r);
    size_t len = strlen(row), i = 0;
    int x = 0;
    while (i < len && x < col) {
        int cp;
        size_t n = (size_t)utf8_decode(row + i, len - i, &cp);
        char one[8] = {0};
        memcpy(one, row + i, n);
        x += utf8_display_width(one);
        i += n;
    }
    int ok = x == col && !strncmp(row + i, text, strlen(text));
    free(row);
    return ok;
}

static void assert_shows(Session *s, const char *text) {
    if (row_with(s, text) < 0) {
        char *screen = canvas_memory_text(s->canvas);
        fail_msg("screen does not show '%s':\n%s", text, screen);
    }
}

static int token_of(Session *s, const char *word) {
    int id = -1;
    BpError err = {0};
    if (store_resolve_token(s->app.ui.store, word, &id, &err) != 0) fail_msg("%s", err.msg);
    return id;
}

/* The label the browser draws for a token. */
static const char *label_of(Session *s, int id, char *buf, size_t size) {
    return ui_word_label(&s->app.ui, id, buf, size);
}

/* ---- canvas and keys ------------------------------------------------------------------------ */

static void test_canvas_utf8(void **state) {
    (void)state;
    canvas_init_locale();
    Canvas *c = canvas_memory_new(3, 10);
    /* CJK characters take two columns, é one; clipping never splits a wide character */
    assert_int_equal(canvas_text(c, 0, 0, -1, STYLE_NORMAL, "caf\xc3\xa9"), 4);
    assert_int_equal(canvas_text(c, 1, 0, -1, STYLE_NORMAL, "\xe6\x97\xa5\xe6\x9c\xac!"), 5);
    assert_int_equal(canvas_text(c, 2, 7, -1, STYLE_PROMOTED, "\xe6\x97\xa5\xe6\x9c\xac"), 3);
    char *r0 = canvas_memory_row(c, 0), *r1 = canvas_memory_row(c, 1), *r2 = canvas_memory_row(c, 2);
    assert_string_equal(r0, "caf\xc3\xa9");
    assert_string_equal(r1, "\xe6\x97\xa5\xe6\x9c\xac!");
    assert_string_equal(r2, "       \xe6\x97\xa5");  /* the second character did not fit */
    assert_int_equal(canvas_memory_style(c, 2, 7), STYLE_PROMOTED);
    assert_int_equal(canvas_memory_style(c, 2, 6), STYLE_NORMAL);
    free(r0), free(r1), free(r2);
    /* an invalid byte and a control character are drawn as '?', a lone mark on a circle */
    canvas_clear(c);
    canvas_text(c, 0, 0, -1, STYLE_NORMAL, "a\xff" "b\x01");
    canvas_text(c, 1, 0, -1, STYLE_NORMAL, "\xcc\x81x");
    r0 = canvas_memory_row(c, 0), r1 = canvas_memory_row(c, 1);
    assert_string_equal(r0, "a?b?");
    assert_string_equal(r1, "\xe2\x97\x8c\xcc\x81x");
    assert_int_equal(utf8_display_width("\xe6\x97\xa5 e\xcc\x81"), 4);
    free(r0), free(r1);
    /* overwriting half of a wide character blanks the other half */
    canvas_clear(c);
    canvas_text(c, 0, 0, -1, STYLE_NORMAL, "\xe6\x97\xa5");
    canvas_text(c, 0, 1, -1, STYLE_NORMAL, "x");
    r0 = canvas_memory_row(c, 0);
    assert_string_equal(r0, " x");
    free(r0);
    canvas_destroy(c);
}

static void test_keys_parse(void **state) {
    (void)state;
    KeyEvent *ev;
    int n;
    BpError err = {0};
    assert_int_equal(keys_parse("/b\xc3\xa9<Enter><up><C-u><lt><Resize:70x20>x", &ev, &n, &err), 0);
    assert_int_equal(n, 9);
    assert_int_equal(ev[0].key, '/');
    assert_int_equal(ev[2].key, 0xE9);
    assert_int_equal(ev[3].key, BK_ENTER);
    assert_int_equal(ev[4].key, BK_UP);
    assert_int_equal(ev[5].key, BK_CTRL('u'));
    assert_int_equal(ev[6].key, '<');
    assert_int_equal(ev[7].key, BK_RESIZE);
    assert_int_equal(ev[7].cols, 70);
    assert_int_equal(ev[7].rows, 20);
    assert_int_equal(ev[8].key, 'x');
    free(ev);
    assert_int_equal(keys_parse("ab<Entr>", &ev, &n, &err), -1);
    assert_non_null(strstr(err.msg, "<Entr>"));
    assert_int_equal(keys_parse("a<b", &ev, &n, &err), -1);
    assert_non_null(strstr(err.msg, "<lt>"));
    char name[32];
    assert_string_equal(bk_key_name(BK_PGDN, name, sizeof name), "PgDn");
    assert_string_equal(bk_key_name(BK_CTRL('u'), name, sizeof name), "C-u");
}

/* ---- screens ---------------------------------------------------------------------------------- */

static void test_search_shows_prefix_matches(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(0, 30, 100);
    press(s, "/ban");
    assert_int_equal(s->app.ui.screen, SCREEN_SEARCH);
    /* the merges made ' ban' a token too: shortest first, then by id */
    assert_shows(s, "3 words start with 'ban'");
    int ban = token_of(s, " ban"), bank = token_of(s, "bank"), band = token_of(s, "band");
    assert_true(bank < band);
    int r_ban = row_with(s, "\xe2\x90\xa3" "ban "), r_bank = row_with(s, "\xe2\x90\xa3" "bank"),
        r_band = row_with(s, "\xe2\x90\xa3" "band");
    assert_true(r_ban > 0 && r_bank == r_ban + 1 && r_band == r_bank + 1);
    char id[16];
    snprintf(id, sizeof id, "#%d", ban);
    assert_true(starts_at(s, r_ban, 2, id));
    /* the search result opens with Down + Enter; n opens the next result, N the previous */
    press(s, "<Down><Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_WORD);
    assert_int_equal(word_of(s)->token, bank);
    press(s, "n");
    assert_int_equal(word_of(s)->token, band);
    press(s, "NN");
    assert_int_equal(word_of(s)->token, ban);
    /* an unknown word lists the closest */
    press(s, "/bxnk");
    assert_shows(s, "No word starts with 'bxnk'; the closest words:");
    session_close(s);
}

static void test_word_screen_shows_the_senses(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(0, 30, 120);
    press(s, "/bank<Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_WORD);
    int bank = token_of(s, "bank");
    char title[64], label[64];
    snprintf(title, sizeof title, "\xe2\x90\xa3" "bank  #%d", bank);
    assert_shows(s, title);
    int k = s->app.ui.k;
    assert_int_equal(k, 4);
    int title_row = row_with(s, title);
    BpError err = {0};
    for (int l = 0; l < k; l++) {
        WordScore top[3], bottom[3];
        SenseInfo si;
        assert_int_equal(store_sense_words(s->app.ui.store, bank, l, 3, top, bottom, &err), 3);
        assert_int_equal(store_sense_info(s->app.ui.store, bank, l, &si, &err), 0);
        /* sense l's row: its index, its norm, its top word first, its bottom word at half */
        int r = title_row + 2 + l;
        char *row = row_text(s, r);
        char expect[64];
        snprintf(expect, sizeof expect, "%3d", l);
        assert_true(starts_at(s, r, 1, expect));
        snprintf(expect, sizeof expect, "%7.2f", si.norm);
        assert_true(starts_at(s, r, 5, expect));
        int words_col = 14, half = (s->canvas->cols - words_col) / 2;
        assert_true(starts_at(s, r, words_col, label_of(s, top[0].id, label, sizeof label)));
        assert_true(starts_at(s, r, words_col + half, label_of(s, bottom[0].id, label, sizeof label)));
        /* the scores are signed, so the meaning is not carried by colour alone */
        snprintf(expect, sizeof expect, " %+.1f", top[0].score);
        assert_non_null(strstr(row, expect));
        assert_int_equal(canvas_memory_style(s->canvas, r, words_col), l == 0 ? STYLE_SELECTED : STYLE_PROMOTED);
        assert_int_equal(canvas_memory_style(s->canvas, r, words_col + half),
                         l == 0 ? STYLE_SELECTED : STYLE_SUPPRESSED);
        free(row);
    }
    /* the detail of the selected sense moves with the cursor */
    press(s, "jj");
    assert_shows(s, "sense 2: norm");
    session_close(s);
}

static void test_sense_screen_lists_and_jumps(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(0, 30, 120);
    int bank = token_of(s, "bank");
    press(s, "/bank<Enter>jj<Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_SENSE);
    assert_int_equal(sense_of(s)->sense, 2);
    assert_shows(s, "sense 2/4");
    BpError err = {0};
    WordScore top[5], bottom[5], near[5];
    assert_int_equal(store_sense_words(s->app.ui.store, bank, 2, 5, top, bottom, &err), 5);
    float *query = calloc((size_t)s->app.ui.k * s->app.ui.d, sizeof(float));
    assert_int_equal(store_sense_vector(s->app.ui.store, bank, 2, STORE_IN_FORCE, query + 2 * s->app.ui.d, &err), 0);
    assert_int_equal(store_nearest(s->app.ui.store, query, 2, bank, 5, near, &err), 5);
    free(query);
    int first = row_with(s, "nearest (cos of sense") + 1;
    char label[64];
    for (int i = 0; i < 5; i++) {
        /* top words in the first column, bottom words next, neighbours with cosines last */
        assert_true(starts_at(s, first + i, 1, label_of(s, top[i].id, label, sizeof label)));
        assert_true(starts_at(s, first + i, 27, label_of(s, bottom[i].id, label, sizeof label)));
        assert_true(starts_at(s, first + i, 53, label_of(s, near[i].id, label, sizeof label)));
        char *row = row_text(s, first + i), score[32];
        snprintf(score, sizeof score, " %+.2f", top[i].score);
        assert_non_null(strstr(row, score));
        snprintf(score, sizeof score, " %.3f", near[i].score);
        assert_non_null(strstr(row, score));
        free(row);
    }
    /* Tab to the nearest column, Enter jumps to that word; Backspace comes back */
    press(s, "<Tab><Tab><Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_WORD);
    assert_int_equal(word_of(s)->token, near[0].id);
    press(s, "<BS>");
    assert_int_equal(s->app.ui.screen, SCREEN_SENSE);
    assert_int_equal(sense_of(s)->token, bank);
    press(s, "h");
    assert_int_equal(s->app.ui.screen, SCREEN_WORD);
    assert_int_equal(word_of(s)->token, bank);
    assert_int_equal(word_of(s)->list.cursor, 2);
    session_close(s);
}

/* On a terminal the index loads in the background: the sense screen shows progress,
 * then the neighbours, without a key. */
static void test_index_loads_in_background(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(0, 30, 120);
    s->app.ui.wait_for_index = 0;
    s->app.ui.loader = index_loader_start(db_path);
    assert_non_null(s->app.ui.loader);
    press(s, "/bank<Enter><Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_SENSE);
    double t0 = now_seconds();
    while (sense_of(s)->near_pending && now_seconds() - t0 < 10) {
        assert_true(row_with(s, "loading the index of all senses") > 0);
        usleep(2000);
        app_draw(&s->app, s->canvas);
    }
    assert_false(sense_of(s)->near_pending);
    assert_false(sense_of(s)->near_error);
    assert_int_equal(sense_of(s)->n_near, SENSE_WORDS);
    char label[64];
    int first = row_with(s, "nearest (cos of sense") + 1;
    assert_true(starts_at(s, first, 53, label_of(s, sense_of(s)->near[0].id, label, sizeof label)));
    session_close(s);
}

static void test_prompt_explains_prediction(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(1, 30, 120);
    press(s, "pa bank is<Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_PROMPT);
    ModelRuns *pv = &s->app.runs;
    assert_int_equal(pv->n_tokens, 3);
    assert_true(pv->pred.valid);
    assert_string_equal(pv->pred.error, "");
    /* the model run directly gives the same best token and probability */
    InferState is;
    BpError err = {0};
    assert_int_equal(infer_build(&is, &s->app.runs.model, 16, &err), 0);
    const float *logits = NULL;
    for (int i = 0; i < 3; i++) logits = infer_step(&is, pv->tokens[i], &err);
    int V = s->app.runs.model.config.vocab_size, best = 0;
    double sum = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    for (int i = 0; i < V; i++) sum += exp(logits[i] - logits[best]);
    assert_int_equal(pv->pred.top[0].id, best);
    assert_float_equal(pv->pred.top[0].score, 1.0 / sum, 1e-5);
    /* the contributions of all (word, sense) pairs add up to the logit */
    assert_float_equal(pv->logit[0], logits[best], 1e-3);
    infer_free(&is);
    char label[64], line[96];
    snprintf(line, sizeof line, "%8.4f", pv->pred.top[0].score);
    int r = row_with(s, line);
    assert_true(r > 0);
    assert_true(starts_at(s, r, 2, label_of(s, best, label, sizeof label)));
    const Contribution *top_ct = &pv->contrib[0][0];
    assert_true(starts_at(s, r, 26, label_of(s, top_ct->token, label, sizeof label)));
    char *row = row_text(s, r);
    /* and the largest contribution is on the first row of the right-hand column */
    const Contribution *ct = &pv->contrib[0][0];
    snprintf(line, sizeof line, "= %+7.3f", ct->contribution);
    assert_non_null(strstr(row, line));
    free(row);
    for (int i = 1; i < pv->n_contrib[0]; i++)
        assert_true(pv->contrib[0][i - 1].contribution >= pv->contrib[0][i].contribution);
    /* Tab + Enter opens that (word, sense) */
    press(s, "<Tab><Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_SENSE);
    assert_int_equal(sense_of(s)->token, ct->token);
    assert_int_equal(sense_of(s)->sense, ct->sense);
    session_close(s);
}

/* On a terminal the model runs one token per turn between keys: the screen shows the
 * progress, keys keep working, and the result equals the drained one. */
static void test_model_runs_between_keys(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(1, 30, 120);
    press(s, "pa bank is<Enter>");
    Prediction drained = s->app.runs.pred;
    KeyEvent *ev;
    int n;
    BpError err = {0};
    assert_int_equal(keys_parse("ithe bank is<C-u>a bank is<Enter>", &ev, &n, &err), 0);
    for (int i = 0; i < n; i++) app_key(&s->app, ev[i].key);  /* no drain */
    free(ev);
    app_draw(&s->app, s->canvas);
    assert_true(model_busy(&s->app));
    assert_shows(s, "running the model: token 0/11");
    int steps = 1;
    model_work(&s->app);
    app_draw(&s->app, s->canvas);
    assert_shows(s, "running the model: token 1/11");
    app_key(&s->app, BK_TAB);  /* a key in the middle of the run */
    app_draw(&s->app, s->canvas);
    while (model_work(&s->app)) steps++;
    /* 3 prompt tokens, 7 more steps for a continuation of 8 */
    assert_int_equal(steps + 1, 3 + RUNS_CONTINUATION - 1 + 1);
    assert_false(model_busy(&s->app));
    const Prediction *p = &s->app.runs.pred;
    assert_int_equal(p->n_top, drained.n_top);
    for (int i = 0; i < p->n_top; i++) assert_int_equal(p->top[i].id, drained.top[i].id);
    assert_int_equal(p->n_continuation, RUNS_CONTINUATION);
    assert_memory_equal(p->continuation, drained.continuation, sizeof drained.continuation);
    session_close(s);
}

/* The prompt and its greedy continuation share the model's context: with a context
 * shorter than the continuation, the prompt keeps its last tokens and the continuation
 * takes what is left (at most half), never more than the context. */
static void test_prompt_fits_a_small_context(void **state) {
    (void)state;
    if (!have_fixture) skip();
    for (size_t i = 0; i < N_SMALL; i++) {
        int context = small_contexts[i], continuation = context / 2;
        Session *s = session_open_on(small_db[i], small_model[i], 30, 100);
        press(s, "pa bank is the river<Enter>");
        const ModelRuns *pv = &s->app.runs;
        assert_int_equal(pv->continuation_len, continuation);
        assert_int_equal(pv->n_tokens, context - continuation);
        /* the last tokens of the prompt are kept */
        assert_int_equal(pv->tokens[pv->n_tokens - 1], token_of(s, "river"));
        char cut[64];
        snprintf(cut, sizeof cut, "prompt cut to its last %d tokens", context - continuation);
        assert_shows(s, cut);
        assert_true(pv->pred.valid);
        assert_string_equal(pv->pred.error, "");
        assert_int_equal(pv->pred.n_continuation, continuation);
        assert_int_equal(pv->pred.n_top, RUNS_TOP_PREDICTIONS);
        session_close(s);
    }
}

/* Enter on an empty prompt line clears the prompt (and copies nothing). */
static void test_empty_prompt_clears(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(1, 30, 100);
    press(s, "p<C-x><C-x><Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_PROMPT);
    assert_int_equal(s->app.runs.n_tokens, 0);
    assert_shows(s, "Type a prompt and press Enter");
    press(s, "pa bank<Enter>");
    assert_int_equal(s->app.runs.n_tokens, 2);
    press(s, "i<C-u><Enter>");
    assert_int_equal(s->app.runs.n_tokens, 0);
    assert_false(model_busy(&s->app));
    assert_shows(s, "Type a prompt and press Enter");
    session_close(s);
}

/* `p` with no prompt opens the prompt line at once, `i` edits it later, and the help
 * says exactly that: the `i` a user types after `p` is the prompt's first letter. */
static void test_prompt_keys_match_the_help(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(1, 30, 120);
    press(s, "p");
    assert_int_equal(s->app.ui.screen, SCREEN_PROMPT);
    assert_ptr_equal(s->app.ui.input, &prompt_of(s)->input);
    press(s, "in the bank<Enter>");
    assert_string_equal(prompt_of(s)->input.text, "in the bank");
    assert_int_equal(s->app.runs.n_tokens, 4); /* i, n, " the", " bank" */
    /* with a prompt, p only shows the screen and i reopens the line with the text */
    press(s, "/bank<Enter>p");
    assert_int_equal(s->app.ui.screen, SCREEN_PROMPT);
    assert_null(s->app.ui.input);
    press(s, "i");
    assert_ptr_equal(s->app.ui.input, &prompt_of(s)->input);
    assert_string_equal(prompt_of(s)->input.text, "in the bank");
    press(s, "<Esc><Resize:120x80>?");  /* tall enough for the whole help */
    assert_int_equal(s->app.ui.screen, SCREEN_HELP);
    assert_shows(s, "the prompt screen; with no prompt yet, type one at once");
    assert_shows(s, "edit the prompt (Enter runs it, an empty one clears it)");
    session_close(s);
}

static void test_edit_before_after_save_undo(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(1, 30, 120);
    int bank = token_of(s, "bank");
    press(s, "pthe bank<Enter>/bank<Enter>e");
    assert_int_equal(s->app.ui.screen, SCREEN_EDIT);
    assert_shows(s, "no edit pending");
    /* scale sense 0 of ' bank' by 0 */
    press(s, "s0<Enter>");
    EditScreen *ev = edit_of(s);
    const Prediction *after_run = &s->app.runs.after;
    assert_true(ev->have_preview);
    assert_shows(s, "pending: ");
    assert_shows(s, "BEFORE (edits in force)");
    assert_shows(s, "AFTER (with this edit)");
    /* before = the prompt screen's prediction; after = a run with the edit in force */
    float v[64];
    BpError err = {0};
    assert_int_equal(store_sense_vector(s->app.ui.store, bank, 0, STORE_IN_FORCE, v, &err), 0);
    SenseEdit one = {bank, 0, NULL, 1.0f};
    float zero[64] = {0};
    one.vector = zero;
    SenseEdits edits = {&one, 1};
    InferState is;
    assert_int_equal(infer_build(&is, &s->app.runs.model, 16, &err), 0);
    infer_set_edits(&is, &edits);
    const float *logits = NULL;
    for (int i = 0; i < s->app.runs.n_tokens; i++) logits = infer_step(&is, s->app.runs.tokens[i], &err);
    int V = s->app.runs.model.config.vocab_size, best = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    assert_int_equal(after_run->top[0].id, best);
    infer_free(&is);
    /* both sides drawn: the row of the first prediction has two probabilities */
    char before[32], after[32];
    snprintf(before, sizeof before, "%7.4f", s->app.runs.pred.top[0].score);
    snprintf(after, sizeof after, "%7.4f", after_run->top[0].score);
    int r = row_with(s, before);
    assert_true(r > 0);
    char *row = row_text(s, r);
    char *b = strstr(row, before);
    assert_non_null(strstr(b + strlen(before), after));
    free(row);
    assert_shows(s, "greedy:");
    /* a new prompt keeps the pending edit and recomputes both sides for it */
    press(s, "pi<C-u>a bank<Enter>/bank<Enter>e");
    assert_true(ev->have_preview);
    assert_true(after_run->valid);
    assert_int_equal(after_run->key.prompt_version, s->app.runs.prompt_version);
    /* save: the header counts it, the edits list shows it; undo removes it */
    press(s, "<Enter>");
    assert_shows(s, "saved edit #");
    assert_shows(s, "edits in force: 1");
    press(s, "E");
    assert_int_equal(s->app.ui.screen, SCREEN_EDITS);
    assert_shows(s, "scale");
    assert_shows(s, "1 in force");
    press(s, "u");
    assert_shows(s, "0 in force");
    assert_shows(s, "(undone)");
    assert_shows(s, "edits in force: 0");
    /* copy: the preview's sense is the other word's, so its top words are that sense's */
    int the = token_of(s, "the");
    press(s, "/bank<Enter>jec the:1<Enter>");
    assert_int_equal(edit_of(s)->sense, 1);
    assert_true(edit_of(s)->have_preview);
    WordScore the_top[5];
    assert_int_equal(store_sense_words(s->app.ui.store, the, 1, 5, the_top, NULL, &err), 5);
    for (int i = 0; i < 5; i++) assert_int_equal(edit_of(s)->top_after[i].id, the_top[i].id);
    char label[64];
    r = row_with(s, "AFTER (with this edit)") + 2;
    assert_true(starts_at(s, r, s->canvas->cols / 2 + 1, label_of(s, the_top[0].id, label, sizeof label)));
    press(s, "d");
    /* a bad value is an error on the status line, and nothing is pending */
    press(s, "sabc<Enter>");
    assert_shows(s, "'abc' is not a number");
    assert_false(edit_of(s)->have_preview);
    press(s, "rbank:zzqqx<Enter>");
    assert_shows(s, "'zzqqx' is not one token");
    assert_false(edit_of(s)->have_preview);
    /* a pending edit can be discarded */
    press(s, "/bank<Enter>ew2<Enter>");
    assert_true(edit_of(s)->have_preview);
    press(s, "d");
    assert_false(edit_of(s)->have_preview);
    assert_shows(s, "edit discarded");
    session_close(s);
}

static void test_too_small_and_resize(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(0, 30, 100);
    press(s, "/bank<Enter><Resize:70x20>");
    assert_shows(s, "terminal too small: 70x20, need at least 80x24");
    assert_int_equal(row_with(s, "#"), -1);  /* nothing else is drawn */
    /* keys other than q do nothing while too small; growing shows the word again */
    press(s, "j<Resize:80x24>");
    assert_int_equal(word_of(s)->list.cursor, 0);
    assert_shows(s, "\xe2\x90\xa3" "bank  #");
    press(s, "<Resize:60x10>q");
    assert_true(s->app.quit);
    session_close(s);
}

static void test_without_model(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(0, 30, 100);
    assert_shows(s, "model: none");
    press(s, "p");
    assert_shows(s, "The prompt screen needs --model.");
    press(s, "/bank<Enter>e");
    assert_int_equal(s->app.ui.screen, SCREEN_EDIT);
    assert_shows(s, "The edit screen needs --model.");
    session_close(s);
}

static void test_help_is_built_from_the_key_tables(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(0, 200, 120);
    press(s, "/bank<Enter>?");
    assert_int_equal(s->app.ui.screen, SCREEN_HELP);
    /* every binding of every table appears */
    const KeyBinding *tables[] = {app_screens[SCREEN_SEARCH]->keys, app_screens[SCREEN_WORD]->keys,
                                  app_screens[SCREEN_SENSE]->keys,  app_screens[SCREEN_PROMPT]->keys,
                                  app_screens[SCREEN_EDIT]->keys,   app_screens[SCREEN_EDITS]->keys,
                                  app_screens[SCREEN_RUN]->keys,    app_global_keys};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const KeyBinding *b = tables[t]; b->action; b++) assert_shows(s, b->help);
    press(s, "?");
    assert_int_equal(s->app.ui.screen, SCREEN_WORD);
    session_close(s);
}

static void test_utf8_words_drawn(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open(0, 30, 100);
    press(s, "/caf\xc3\xa9<Enter>");
    assert_int_equal(s->app.ui.screen, SCREEN_WORD);
    assert_shows(s, "\xe2\x90\xa3" "caf\xc3\xa9  #");
    press(s, "/\xe6\x97\xa5\xe6\x9c\xac<Enter>");
    assert_shows(s, "\xe2\x90\xa3\xe6\x97\xa5\xe6\x9c\xac  #");
    session_close(s);
}

/* ---- the run screen ---------------------------------------------------------------------------- */

/* The braille dots of the cell at display column col of row r (0 for any other character). */
static unsigned braille_at(Session *s, int r, int col) {
    char *row = row_text(s, r);
    size_t len = strlen(row), i = 0;
    int x = 0;
    unsigned bits = 0;
    while (i < len && x <= col) {
        int cp;
        size_t n = (size_t)utf8_decode(row + i, len - i, &cp);
        if (x == col && cp >= 0x2800 && cp <= 0x28FF) bits = (unsigned)(cp - 0x2800);
        char one[8] = {0};
        memcpy(one, row + i, n);
        x += utf8_display_width(one);
        i += n;
    }
    free(row);
    return bits;
}

/* The number of braille cells drawn in rows [r0, r1). */
static int braille_cells(Session *s, int r0, int r1) {
    int n = 0;
    for (int r = r0; r < r1; r++)
        for (int c = 0; c < s->canvas->cols; c++) n += braille_at(s, r, c) != 0;
    return n;
}

/* Where the loss chart's plotting area is on the screen, and its ranges as drawn (the
 * tick values at the top and bottom row and the x range below the axis). */
typedef struct {
    int top, rows, left, cols;   /* cells */
    double xlo, xhi, ylo, yhi;
} ChartArea;

static ChartArea loss_chart_area(Session *s) {
    ChartArea a = {0};
    int title = row_with(s, "loss (nats/token) against tokens seen");
    assert_true(title > 0);
    a.top = title + 1;
    int axis = -1;
    for (int r = a.top; r < s->canvas->rows && axis < 0; r++) {
        char *line = row_text(s, r);
        if (strstr(line, "\xe2\x94\x94")) axis = r;  /* the axis corner */
        free(line);
    }
    assert_true(axis > a.top + 1);
    a.rows = axis - a.top;
    /* the chart is drawn from column 1: 8 columns of ticks, the axis line, the dots */
    a.left = 1 + 9;
    a.cols = s->canvas->cols - 1 - 9;
    char *top = row_text(s, a.top), *bottom = row_text(s, axis - 1), *range = row_text(s, axis + 1);
    assert_int_equal(sscanf(top, "%lf", &a.yhi), 1);
    assert_int_equal(sscanf(bottom, "%lf", &a.ylo), 1);
    assert_int_equal(sscanf(range, "%lf tokens seen %lf", &a.xlo, &a.xhi), 2);
    free(top), free(bottom), free(range);
    assert_true(a.xlo < a.xhi && a.ylo < a.yhi);
    return a;
}

/* 1 if a dot is set within one dot of where (x, y) lands. The ranges are read back
 * rounded to 4 digits, so a point may land one dot from where they put it. */
static int dot_near(Session *s, const ChartArea *a, double x, double y) {
    int dx = (int)floor((x - a->xlo) / (a->xhi - a->xlo) * (a->cols * 2 - 1) + 0.5);
    int dy = (int)floor((1 - (y - a->ylo) / (a->yhi - a->ylo)) * (a->rows * 4 - 1) + 0.5);
    static const unsigned bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
    for (int ex = -1; ex <= 1; ex++)
        for (int ey = -1; ey <= 1; ey++) {
            int px = dx + ex, py = dy + ey;
            if (px < 0 || py < 0 || px >= a->cols * 2 || py >= a->rows * 4) continue;
            if (braille_at(s, a->top + py / 4, a->left + px / 2) & bit[py % 4][px % 2]) return 1;
        }
    return 0;
}

static void test_run_screen_draws_the_curves(void **state) {
    (void)state;
    if (!have_fixture) skip();
    Session *s = session_open_on(db_path, run_dir, 30, 100);
    press(s, "R");
    assert_int_equal(s->app.ui.screen, SCREEN_RUN);
    RunScreen *rs = app_screen_state(&s->app, SCREEN_RUN);
    assert_int_equal(rs->metrics.n, RUN_STEPS);
    assert_int_equal(rs->metrics.n_val, RUN_STEPS / 5);
    assert_shows(s, "20 steps, 2000 tokens, loss 2.2; 4 evaluations, validation loss 2.5");
    assert_shows(s, "training loss");
    assert_shows(s, "validation loss");
    assert_shows(s, "learning rate against tokens seen");
    ChartArea a = loss_chart_area(s);
    /* every step's loss and every evaluation's is a dot where the ranges put it */
    for (int i = 0; i < RUN_STEPS; i++) {
        double tokens = (double)RUN_TOKENS_PER_STEP * (i + 1);
        if (!dot_near(s, &a, tokens, run_loss(i))) fail_msg("no dot for step %d", i + 1);
        if ((i + 1) % 5 == 0 && !dot_near(s, &a, tokens, run_loss(i) + 0.3))
            fail_msg("no dot for the evaluation at step %d", i + 1);
    }
    /* and nowhere the data is not: the loss falls, so the top right and the bottom left
     * corners stay empty */
    for (int r = 0; r < a.rows / 3; r++)
        for (int c = a.cols * 2 / 3; c < a.cols; c++) assert_int_equal(braille_at(s, a.top + r, a.left + c), 0);
    for (int r = a.rows * 2 / 3; r < a.rows; r++)
        for (int c = 0; c < a.cols / 3; c++) assert_int_equal(braille_at(s, a.top + r, a.left + c), 0);
    /* the first step is training loss alone (the first evaluation is 4 steps on): its
     * cells have the first series' colour */
    int dx = (int)floor((RUN_TOKENS_PER_STEP - a.xlo) / (a.xhi - a.xlo) * (a.cols * 2 - 1) + 0.5);
    int dy = (int)floor((1 - (run_loss(0) - a.ylo) / (a.yhi - a.ylo)) * (a.rows * 4 - 1) + 0.5);
    int coloured = 0;
    for (int r = dy / 4 - 1; r <= dy / 4 + 1; r++)
        for (int c = dx / 2 - 1; c <= dx / 2 + 1; c++)
            if (r >= 0 && c >= 0 && braille_at(s, a.top + r, a.left + c)) {
                assert_int_equal(canvas_memory_style(s->canvas, a.top + r, a.left + c), STYLE_PROMOTED);
                coloured++;
            }
    assert_true(coloured > 0);
    /* the lower chart: the learning rate, then g for the gradient norm */
    int lower = row_with(s, "learning rate against tokens seen");
    assert_true(lower > a.top + a.rows);
    assert_true(braille_cells(s, lower + 1, s->canvas->rows - 1) > 10);
    press(s, "g");
    assert_shows(s, "gradient norm (before clipping) against tokens seen");
    assert_int_equal(row_with(s, "learning rate against"), -1);
    /* a resize draws the chart again at the new size */
    press(s, "<Resize:140x50>");
    ChartArea big = loss_chart_area(s);
    assert_int_equal(big.cols, 140 - 10);
    assert_true(big.rows > a.rows);
    for (int i = 0; i < RUN_STEPS; i++)
        assert_true(dot_near(s, &big, (double)RUN_TOKENS_PER_STEP * (i + 1), run_loss(i)));
    /* a terminal too short for two charts keeps the loss */
    press(s, "<Resize:80x24>");
    assert_shows(s, "loss (nats/token) against tokens seen");
    ChartArea small = loss_chart_area(s);
    assert_int_equal(small.cols, 80 - 10);
    assert_true(dot_near(s, &small, RUN_TOKENS_PER_STEP, run_loss(0)));
    /* back to where the user was; the help lists the screen and its keys */
    press(s, "<BS>");
    assert_int_equal(s->app.ui.screen, SCREEN_SEARCH);
    session_close(s);
}

/* The status line, as one row of text. */
static char *status_line(Session *s) { return row_text(s, s->canvas->rows - 1); }

static void assert_run_refused(Session *s, const char *message) {
    press(s, "R");
    assert_int_equal(s->app.ui.screen, SCREEN_SEARCH);
    char *status = status_line(s);
    if (!strstr(status, message)) fail_msg("status line '%s' does not say '%s'", status, message);
    free(status);
    assert_null(strchr(s->app.ui.message, '\n'));
}

static void test_run_screen_without_metrics(void **state) {
    (void)state;
    if (!have_fixture) skip();
    char path[400];
    BpError err = {0};
    snprintf(path, sizeof path, "%s/metrics.jsonl", bad_run_dir);
    /* no model; a model that is no training run; broken logs */
    Session *s = session_open(0, 30, 100);
    assert_run_refused(s, "the run screen needs --model DIR");
    session_close(s);
    s = session_open(1, 30, 100);
    assert_run_refused(s, "has no metrics.jsonl: not a training run");
    session_close(s);
    const struct {
        const char *text, *message;
    } bad[] = {
        {"", "metrics.jsonl"},
        {"{\"step\": 1, \"loss\": 3.5, \"lr\": 0.001, \"grad_norm\": 1, \"tokens\": 10}\nnot json\n"
         "{\"step\": 2, \"loss\": 3.4, \"lr\": 0.001, \"grad_norm\": 1, \"tokens\": 20}\n",
         "metrics.jsonl:2:"},
        {"\x01\xff\xfe garbage\n", "metrics.jsonl"},
        {"[1, 2, 3]\n{}\n", "metrics.jsonl:1:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(write_file_atomic(path, bad[i].text, strlen(bad[i].text), &err), 0);
        s = session_open_on(db_path, bad_run_dir, 30, 100);
        assert_run_refused(s, bad[i].message);
        assert_true(s->app.ui.message_error);
        session_close(s);
    }
    /* a directory where the file should be */
    unlink(path);
    assert_int_equal(mkdir(path, 0700), 0);
    s = session_open_on(db_path, bad_run_dir, 30, 100);
    assert_run_refused(s, "metrics.jsonl");
    session_close(s);
    rmdir(path);
    /* a run whose log breaks while the screen shows it: r says so and keeps the charts */
    s = session_open_on(db_path, bad_run_dir, 30, 100);
    size_t first_line = (size_t)(strchr(bad[1].text, '\n') - bad[1].text) + 1;
    assert_int_equal(write_file_atomic(path, bad[1].text, first_line, &err), 0);
    press(s, "R");
    assert_int_equal(s->app.ui.screen, SCREEN_RUN);
    assert_int_equal(((RunScreen *)app_screen_state(&s->app, SCREEN_RUN))->metrics.n, 1);
    assert_true(braille_cells(s, 1, s->canvas->rows - 1) > 0);
    assert_int_equal(write_file_atomic(path, "garbage\n{}\n", 11, &err), 0);
    press(s, "r");
    assert_int_equal(s->app.ui.screen, SCREEN_RUN);
    char *status = status_line(s);
    assert_non_null(strstr(status, "metrics.jsonl:1:"));
    free(status);
    assert_shows(s, "loss (nats/token) against tokens seen");
    session_close(s);
    unlink(path);
}

/* ---- the binary ------------------------------------------------------------------------------- */

static const char *backpack_bin(void) {
    const char *b = getenv("BACKPACK");
    return b && *b && access(b, X_OK) == 0 ? b : NULL;
}

/* Runs a shell command; returns its exit status and the first line of stderr in err. */
static int run(const char *cmd, char *first_line, size_t size) {
    char full[2048], errfile[400];
    temp_dir_path(&tmp, "stderr.txt", errfile, sizeof errfile);
    snprintf(full, sizeof full, "%s 2>%s", cmd, errfile);
    int status = system(full);
    first_line[0] = 0;
    FILE *f = fopen(errfile, "r");
    if (f) {
        if (!fgets(first_line, (int)size, f)) first_line[0] = 0;
        char extra[256];
        if (fgets(extra, sizeof extra, f)) strncat(first_line, " [MORE THAN ONE LINE]", size - strlen(first_line) - 1);
        fclose(f);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* The screen after `backpack browse --db DB ARGS --screen-out FILE`, which must exit 0. */
static char *scripted_screen(const char *bin, const char *args) {
    char cmd[1500], line[512], out[400];
    temp_dir_path(&tmp, "screen.txt", out, sizeof out);
    snprintf(cmd, sizeof cmd, "%s browse --db %s %s --screen-out %s </dev/null", bin, db_path, args, out);
    int rc = run(cmd, line, sizeof line);
    if (rc != 0) fail_msg("%s: exit %d: %s", cmd, rc, line);
    char *screen;
    size_t len;
    BpError err = {0};
    if (read_file(out, &screen, &len, &err) != 0) fail_msg("%s", err.msg);
    return screen;
}

static void test_binary_scripted_mode(void **state) {
    (void)state;
    const char *bin = backpack_bin();
    if (!have_fixture || !bin) skip();
    char cmd[1500], line[512], out[400], timing[400], args[600];
    temp_dir_path(&tmp, "screen.txt", out, sizeof out);
    temp_dir_path(&tmp, "timing.txt", timing, sizeof timing);
    snprintf(args, sizeof args, "--keys '/bank<Enter>' --size 90x25 --timing %s", timing);
    char *screen = scripted_screen(bin, args);
    size_t len = strlen(screen);
    BpError err = {0};
    assert_non_null(strstr(screen, "\xe2\x90\xa3" "bank  #"));
    assert_non_null(strstr(screen, "db: senses.db"));
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += screen[i] == '\n';
    assert_int_equal(lines, 25);
    free(screen);
    assert_int_equal(read_file(timing, &screen, &len, &err), 0);
    assert_non_null(strstr(screen, "6 Enter "));
    free(screen);
    /* a symbolic link (like /dev/stderr) is written through, never replaced */
    char link[400], target[400];
    temp_dir_path(&tmp, "link.txt", link, sizeof link);
    temp_dir_path(&tmp, "target.txt", target, sizeof target);
    assert_int_equal(symlink(target, link), 0);
    snprintf(cmd, sizeof cmd, "%s browse --db %s --keys '/bank<Enter>' --screen-out %s", bin, db_path, link);
    assert_int_equal(run(cmd, line, sizeof line), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(read_file(target, &screen, &len, &err), 0);
    assert_non_null(strstr(screen, "\xe2\x90\xa3" "bank  #"));
    free(screen);
    /* keys from a file (newlines are not keys) */
    char keys_file[400];
    temp_dir_path(&tmp, "keys.txt", keys_file, sizeof keys_file);
    assert_int_equal(write_file_atomic(keys_file, "/band\n<Enter>\n", 13, &err), 0);
    snprintf(cmd, sizeof cmd, "%s browse --db %s --keys @%s --screen-out %s", bin, db_path, keys_file, out);
    assert_int_equal(run(cmd, line, sizeof line), 0);
    assert_int_equal(read_file(out, &screen, &len, &err), 0);
    assert_non_null(strstr(screen, "\xe2\x90\xa3" "band  #"));
    free(screen);
    /* --each-key: one screen per key */
    snprintf(cmd, sizeof cmd, "%s browse --db %s --keys '/b<Resize:50x10>' --screen-out %s --each-key",
             bin, db_path, out);
    assert_int_equal(run(cmd, line, sizeof line), 0);
    assert_int_equal(read_file(out, &screen, &len, &err), 0);
    assert_non_null(strstr(screen, "--- key 1: / ---"));
    assert_non_null(strstr(screen, "--- key 3: Resize ---\n"));
    assert_non_null(strstr(screen, "terminal too small: 50x10"));
    free(screen);
}

static void test_binary_bad_input(void **state) {
    (void)state;
    const char *bin = backpack_bin();
    if (!have_fixture || !bin) skip();
    char cmd[1500], line[512], path[400];
    /* a missing database */
    snprintf(cmd, sizeof cmd, "%s browse --db %s/nope.db --keys q --screen-out -", bin, tmp.path);
    assert_int_not_equal(run(cmd, line, sizeof line), 0);
    assert_non_null(strstr(line, "nope.db: No such file or directory"));
    assert_null(strstr(line, "MORE THAN ONE LINE"));
    /* a file that is not a sense database */
    temp_dir_path(&tmp, "foreign.db", path, sizeof path);
    BpError err = {0};
    assert_int_equal(write_file_atomic(path, "not sqlite at all\n", 18, &err), 0);
    snprintf(cmd, sizeof cmd, "%s browse --db %s --keys q --screen-out -", bin, path);
    assert_int_not_equal(run(cmd, line, sizeof line), 0);
    assert_non_null(strstr(line, "foreign.db"));
    assert_null(strstr(line, "MORE THAN ONE LINE"));
    /* a model the database was not exported from */
    snprintf(cmd, sizeof cmd, "%s browse --db %s --model %s --keys q --screen-out -", bin, db_path, other_dir);
    assert_int_not_equal(run(cmd, line, sizeof line), 0);
    assert_non_null(strstr(line, "another model"));
    assert_null(strstr(line, "MORE THAN ONE LINE"));
    /* not a terminal, and no scripted mode */
    snprintf(cmd, sizeof cmd, "%s browse --db %s </dev/null >/dev/null", bin, db_path);
    assert_int_not_equal(run(cmd, line, sizeof line), 0);
    assert_non_null(strstr(line, "must be a terminal"));
    /* a typo in the scripted keys */
    snprintf(cmd, sizeof cmd, "%s browse --db %s --keys '<Entr>' --screen-out -", bin, db_path);
    assert_int_not_equal(run(cmd, line, sizeof line), 0);
    assert_non_null(strstr(line, "unknown key <Entr>"));
}

static void test_binary_run_screen(void **state) {
    (void)state;
    const char *bin = backpack_bin();
    if (!have_fixture || !bin) skip();
    char args[600];
    snprintf(args, sizeof args, "--model %s --keys R --size 90x30", run_dir);
    char *screen = scripted_screen(bin, args);
    assert_non_null(strstr(screen, "loss (nats/token) against tokens seen"));
    assert_non_null(strstr(screen, " run | "));
    int braille = 0;
    for (const char *p = screen; p[0] && p[1]; p++)
        braille += (unsigned char)p[0] == 0xE2 && ((unsigned char)p[1] & 0xFC) == 0xA0;
    assert_true(braille > 20);
    assert_null(strstr(screen, "\x1b["));  /* the chart's colours became styles, not escapes */
    free(screen);
    /* without metrics.jsonl: a line in the status, exit 0 */
    snprintf(args, sizeof args, "--model %s --keys R", model_dir);
    screen = scripted_screen(bin, args);
    assert_non_null(strstr(screen, "has no metrics.jsonl"));
    free(screen);
}

static void test_binary_under_tmux(void **state) {
    (void)state;
    const char *bin = backpack_bin();
    if (!have_fixture || !bin) skip();
    if (system("command -v tmux >/dev/null 2>&1") != 0) skip();
    /* the script lives next to this file; the tests run from the repository root */
    if (access("tests/tui_tmux.sh", R_OK) != 0) skip();
    char cmd[1500], line[512];
    snprintf(cmd, sizeof cmd, "bash tests/tui_tmux.sh %s %s %s %s/tmux", bin, db_path, model_dir, tmp.path);
    int rc = run(cmd, line, sizeof line);
    if (rc != 0) fail_msg("tests/tui_tmux.sh failed (%d): %s", rc, line);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canvas_utf8),
        cmocka_unit_test(test_keys_parse),
        cmocka_unit_test(test_search_shows_prefix_matches),
        cmocka_unit_test(test_word_screen_shows_the_senses),
        cmocka_unit_test(test_sense_screen_lists_and_jumps),
        cmocka_unit_test(test_index_loads_in_background),
        cmocka_unit_test(test_prompt_explains_prediction),
        cmocka_unit_test(test_model_runs_between_keys),
        cmocka_unit_test(test_prompt_fits_a_small_context),
        cmocka_unit_test(test_empty_prompt_clears),
        cmocka_unit_test(test_prompt_keys_match_the_help),
        cmocka_unit_test(test_edit_before_after_save_undo),
        cmocka_unit_test(test_too_small_and_resize),
        cmocka_unit_test(test_without_model),
        cmocka_unit_test(test_help_is_built_from_the_key_tables),
        cmocka_unit_test(test_utf8_words_drawn),
        cmocka_unit_test(test_run_screen_draws_the_curves),
        cmocka_unit_test(test_run_screen_without_metrics),
        cmocka_unit_test(test_binary_run_screen),
        cmocka_unit_test(test_binary_scripted_mode),
        cmocka_unit_test(test_binary_bad_input),
        cmocka_unit_test(test_binary_under_tmux),
    };
    return cmocka_run_group_tests(tests, setup_fixture, temp_dir_teardown);
}
