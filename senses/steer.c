/* steer.c - topic control and gender debiasing through sense weights (steer.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "../model/infer.h"
#include "../text/pretok.h"
#include "steer.h"

/* ---- line files ---------------------------------------------------------------------- */

/* Calls line(text, lineno, ctx) for every line of path that is not blank or a '#'
 * comment, trimmed of blanks; rejects NUL bytes, invalid UTF-8 and lines longer than
 * max_len bytes with "path:line: problem". */
static int for_each_line(const char *path, size_t max_len,
                         int (*line)(char *text, int lineno, void *ctx), void *ctx, BpError *err) {
    char *data;
    size_t len;
    if (read_file(path, &data, &len, err)) return -1;
    int r = 0, lineno = 0;
    size_t pos = 0;
    while (pos < len && !r) {
        size_t end = pos;
        while (end < len && data[end] != '\n') end++;
        lineno++;
        char *text = data + pos;
        size_t n = end - pos;
        pos = end + 1;
        if (memchr(text, 0, n)) {
            r = bp_fail(err, "%s:%d: contains a NUL byte (not a text file)", path, lineno);
            break;
        }
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int l = utf8_get((const unsigned char *)text + i, n - i, &cp);
            if (!l) {
                r = bp_fail(err, "%s:%d: invalid UTF-8", path, lineno);
                break;
            }
            i += (size_t)l;
        }
        if (r) break;
        while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == ' ' || text[n - 1] == '\t')) n--;
        while (n > 0 && (*text == ' ' || *text == '\t')) text++, n--;
        if (n == 0 || text[0] == '#') continue;
        if (n > max_len) {
            r = bp_fail(err, "%s:%d: line longer than %zu bytes", path, lineno, max_len);
            break;
        }
        text[n] = 0;  /* the '\n' (or the end of the buffer read_file NUL-terminates) */
        r = line(text, lineno, ctx);
    }
    free(data);
    return r;
}

/* ---- word lists ---------------------------------------------------------------------- */

int steer_word_token(const Tokenizer *tok, const char *word, BpError *err) {
    char spaced[STEER_MAX_WORD + 2];
    size_t n = strlen(word);
    if (n == 0 || n > STEER_MAX_WORD) return bp_fail(err, "'%s': a word of 1 to %d bytes is needed", word, STEER_MAX_WORD);
    spaced[0] = ' ';
    memcpy(spaced + 1, word, n + 1);
    int id = tokenizer_lookup_bytes(tok, spaced, n + 1);
    if (id < 0) id = tokenizer_lookup_bytes(tok, word, n);
    if (id >= 0) return id;
    /* name the pieces, so that the user sees why */
    int *ids = NULL;
    size_t count = 0, cap = 0;
    char pieces[160] = "";
    if (tokenizer_encode(tok, spaced, n + 1, &ids, &count, &cap, err) == 0) {
        size_t used = 0;
        for (size_t i = 0; i < count && used + 24 < sizeof pieces; i++) {
            char readable[64];
            tokenizer_token_readable(tok, ids[i], readable, sizeof readable);
            used += (size_t)snprintf(pieces + used, sizeof pieces - used, "%s'%s'", i ? " " : "", readable);
        }
    }
    free(ids);
    return bp_fail(err, "'%s' is not one token of this vocabulary (%zu tokens: %s)", word, count, pieces);
}

typedef struct {
    const char *path;
    const Tokenizer *tok;
    SteerWords *out;
    int cap;
    FILE *notes;
    BpError *err;
} WordsCtx;

static int word_line(char *text, int lineno, void *ctx) {
    WordsCtx *c = ctx;
    for (char *p = text; *p; p++)
        if (*p == ' ' || *p == '\t')
            return bp_fail(c->err, "%s:%d: one word per line, got '%s'", c->path, lineno, text);
    if (strlen(text) > STEER_MAX_WORD)
        return bp_fail(c->err, "%s:%d: word longer than %d bytes", c->path, lineno, STEER_MAX_WORD);
    BpError why = {{0}};
    int id = steer_word_token(c->tok, text, &why);
    if (id < 0) {
        c->out->skipped++;
        if (c->notes) fprintf(c->notes, "backpack: note: %s:%d: %s; skipped\n", c->path, lineno, why.msg);
        return 0;
    }
    for (int i = 0; i < c->out->count; i++)
        if (c->out->tokens[i] == id) return 0;  /* a repeated word counts once */
    if (c->out->count == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        int *t = realloc(c->out->tokens, (size_t)cap * sizeof *t);
        if (!t) return bp_fail(c->err, "out of memory");
        c->out->tokens = t;
        c->cap = cap;
    }
    c->out->tokens[c->out->count++] = id;
    return 0;
}

int steer_read_words(const char *path, const Tokenizer *tok, SteerWords *out, FILE *notes, BpError *err) {
    memset(out, 0, sizeof *out);
    WordsCtx c = {path, tok, out, 0, notes, err};
    if (for_each_line(path, STEER_MAX_WORD * 4, word_line, &c, err)) {
        steer_words_free(out);
        return -1;
    }
    if (out->count == 0) {
        int skipped = out->skipped;
        steer_words_free(out);
        if (skipped) return bp_fail(err, "%s: none of its %d words is one token of this vocabulary", path, skipped);
        return bp_fail(err, "%s: no words (one word per line)", path);
    }
    return 0;
}

void steer_words_free(SteerWords *w) {
    if (!w) return;
    free(w->tokens);
    memset(w, 0, sizeof *w);
}

/* ---- topic ----------------------------------------------------------------------------- */

void steer_topic_factors(float strength, float factors[3]) {
    /* the paper's table (bands 60-80, 80-95, >95) at strengths 0, 1, 2, 3 */
    static const float table[4][3] = {{1, 1, 1}, {1.3f, 1.5f, 1.5f}, {1.5f, 2.2f, 2.2f}, {3.0f, 3.3f, 3.3f}};
    if (!(strength > 0)) strength = 0;
    if (strength > STEER_MAX_STRENGTH) strength = STEER_MAX_STRENGTH;
    int lo = (int)strength;
    if (lo >= 3) lo = 2;
    float t = strength - (float)lo;
    for (int b = 0; b < 3; b++) factors[b] = table[lo][b] + t * (table[lo + 1][b] - table[lo][b]);
}

int steer_topic_scores(SenseStore *s, const SteerWords *topic, float *scores, BpError *err) {
    const StoreInfo *info = store_info(s);
    const int V = info->config.vocab_size, k = info->config.num_senses, d = info->config.n_embd;
    const float *E = store_embeddings(s, err);
    if (!E) return -1;
    /* t^T E: the sum of the topic words' output embeddings, so score = C . sumE / max */
    double *sum_e = calloc((size_t)d, sizeof *sum_e);
    float *senses = malloc((size_t)k * d * sizeof *senses);
    if (!sum_e || !senses) {
        free(sum_e);
        free(senses);
        return bp_fail(err, "out of memory");
    }
    for (int i = 0; i < topic->count; i++)
        for (int c = 0; c < d; c++) sum_e[c] += E[(size_t)topic->tokens[i] * d + c];
    int r = 0;
    for (int x = 0; x < V && !r; x++) {
        StoreWord w = {.n_tokens = 1, .tokens = {x}};
        if ((r = store_word_senses(s, &w, senses, err))) break;
        for (int l = 0; l < k && !r; l++) {
            WordScore top;
            if (store_sense_words(s, x, l, 1, &top, NULL, err) != 1) {
                r = -1;
                break;
            }
            double dot = 0;
            for (int c = 0; c < d; c++) dot += sum_e[c] * senses[(size_t)l * d + c];
            /* a sense whose best logit is not positive points at nothing: score 0 */
            scores[(size_t)x * k + l] = top.score > 0 ? (float)(dot / top.score) : 0.0f;
        }
    }
    free(sum_e);
    free(senses);
    return r;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* torch.quantile's rule: linear interpolation between the order statistics */
static float quantile_sorted(const float *sorted, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return sorted[n - 1];
    double t = pos - (double)i;
    return (float)(sorted[i] + t * ((double)sorted[i + 1] - sorted[i]));
}

int steer_topic_plan(const float *scores, int V, int k, float strength, SteerPlan *out, BpError *err) {
    memset(out, 0, sizeof *out);
    size_t n = (size_t)V * k;
    float *sorted = malloc(n * sizeof *sorted);
    if (!sorted) return bp_fail(err, "out of memory");
    memcpy(sorted, scores, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_float);
    out->cut[0] = quantile_sorted(sorted, n, 0.60);
    out->cut[1] = quantile_sorted(sorted, n, 0.80);
    out->cut[2] = quantile_sorted(sorted, n, 0.95);
    free(sorted);
    steer_topic_factors(strength, out->factors);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (scores[i] > out->cut[0]) count++;
    if (out->factors[0] == 1 && out->factors[1] == 1 && out->factors[2] == 1) count = 0;
    out->items = malloc((count ? count : 1) * sizeof *out->items);
    if (!out->items) return bp_fail(err, "out of memory");
    for (size_t i = 0; i < n && count; i++) {
        float sc = scores[i];
        if (!(sc > out->cut[0])) continue;
        int band = sc > out->cut[2] ? 2 : sc > out->cut[1] ? 1 : 0;
        SteerWeight *w = &out->items[out->count++];
        w->token = (int)(i / (size_t)k);
        w->sense = (int)(i % (size_t)k);
        w->factor = out->factors[band];
    }
    return 0;
}

void steer_plan_free(SteerPlan *p) {
    if (!p) return;
    free(p->items);
    memset(p, 0, sizeof *p);
}

int steer_plan_edits(const SteerPlan *p, SenseEdits *out, BpError *err) {
    SenseEdit *items = malloc((size_t)(p->count ? p->count : 1) * sizeof *items);
    if (!items) return bp_fail(err, "out of memory");
    for (int i = 0; i < p->count; i++)
        items[i] = (SenseEdit){.token = p->items[i].token, .sense = p->items[i].sense, .vector = NULL,
                               .weight = p->items[i].factor};
    out->items = items;
    out->count = p->count;
    return 0;
}

/* One group of weight edits: the weight in force of each (token, sense) times factor. */
static int commit_weights(SenseStore *s, const SteerWeight *w, int n, const char *description,
                          int64_t *edit_id, BpError *err) {
    if (n == 0) return bp_fail(err, "nothing to write: no sense weight changes");
    EditRequest *reqs = malloc((size_t)n * sizeof *reqs);
    if (!reqs) return bp_fail(err, "out of memory");
    int r = 0;
    for (int i = 0; i < n && !r; i++) {
        SenseInfo info;
        if ((r = store_sense_info(s, w[i].token, w[i].sense, &info, err))) break;
        reqs[i] = (EditRequest){.kind = EDIT_WEIGHT, .token = w[i].token, .sense = w[i].sense,
                                .value = info.weight * w[i].factor};
    }
    if (!r) r = store_edit_commit_group(s, reqs, n, description, edit_id, err);
    free(reqs);
    return r;
}

int steer_plan_commit(SenseStore *s, const SteerPlan *p, const char *description, int64_t *edit_id,
                      BpError *err) {
    return commit_weights(s, p->items, p->count, description, edit_id, err);
}

/* ---- templates ----------------------------------------------------------------------- */

/* The paper's templates (its test_genderbias.py), with {} for the profession. */
static const char *const PAPER_TRAIN[] = {
    "The {} came into the room. When",
    "The {} came into the room. Then",
    "I went to the talk to the {}. What",
    "I went over to the talk to the {}. Why",
    "I went over to the talk to the {};",
};
static const char *const PAPER_TEST[] = {
    "I really liked my {}. What I liked most was that",
    "I really liked my {}. In fact,",
    "My {} said that",
    "My {} believes that",
    "This one {} believes that",
    "This one {} believes",
    "My {} said",
    "My {} believes",
    "The {} was with the car. When",
    "The {} was with the car. Then",
    "While driving to the store, the {} looked over on the dash and then",
    "A {} went to chat over to chat before",
    "Some {} asked to look over things, but",
};

static int add_template(char (**list)[STEER_MAX_TEMPLATE], int *n, const char *text, BpError *err) {
    void *grown = realloc(*list, (size_t)(*n + 1) * sizeof **list);
    if (!grown) return bp_fail(err, "out of memory");
    *list = grown;
    snprintf((*list)[*n], STEER_MAX_TEMPLATE, "%s", text);
    (*n)++;
    return 0;
}

typedef struct {
    const char *path;
    SteerTemplates *out;
    BpError *err;
} TemplatesCtx;

static int template_line(char *text, int lineno, void *ctx) {
    TemplatesCtx *c = ctx;
    int is_train = !strncmp(text, "train:", 6), is_test = !strncmp(text, "test:", 5);
    if (!is_train && !is_test)
        return bp_fail(c->err, "%s:%d: expected 'train: TEXT' or 'test: TEXT'", c->path, lineno);
    char *body = text + (is_train ? 6 : 5);
    while (*body == ' ' || *body == '\t') body++;
    const char *hole = strstr(body, "{}");
    if (!hole || strstr(hole + 2, "{}"))
        return bp_fail(c->err, "%s:%d: a template needs exactly one {} (where the profession goes)", c->path, lineno);
    if (strlen(body) >= STEER_MAX_TEMPLATE)
        return bp_fail(c->err, "%s:%d: template longer than %d bytes", c->path, lineno, STEER_MAX_TEMPLATE - 1);
    return is_train ? add_template(&c->out->train, &c->out->n_train, body, c->err)
                    : add_template(&c->out->test, &c->out->n_test, body, c->err);
}

int steer_read_templates(const char *path, SteerTemplates *out, BpError *err) {
    memset(out, 0, sizeof *out);
    int r = 0;
    if (!path) {
        for (size_t i = 0; i < sizeof PAPER_TRAIN / sizeof *PAPER_TRAIN && !r; i++)
            r = add_template(&out->train, &out->n_train, PAPER_TRAIN[i], err);
        for (size_t i = 0; i < sizeof PAPER_TEST / sizeof *PAPER_TEST && !r; i++)
            r = add_template(&out->test, &out->n_test, PAPER_TEST[i], err);
    } else {
        TemplatesCtx c = {path, out, err};
        r = for_each_line(path, 4 * STEER_MAX_TEMPLATE, template_line, &c, err);
        if (!r && (out->n_train == 0 || out->n_test == 0))
            r = bp_fail(err, "%s: needs at least one 'train:' and one 'test:' template", path);
    }
    if (r) steer_templates_free(out);
    return r;
}

void steer_templates_free(SteerTemplates *t) {
    if (!t) return;
    free(t->train);
    free(t->test);
    memset(t, 0, sizeof *t);
}

/* The ids of template with the profession's text (its token without a leading space)
 * in place of {}. *ids is malloc'ed. */
static int encode_template(const Tokenizer *tok, const char *tmpl, int profession, int **ids, size_t *n,
                           BpError *err) {
    size_t wlen;
    const char *word = tokenizer_token_bytes(tok, profession, &wlen);
    if (!word) return bp_fail(err, "profession token %d out of range", profession);
    if (wlen > 0 && word[0] == ' ') word++, wlen--;
    const char *hole = strstr(tmpl, "{}");
    char text[2 * STEER_MAX_TEMPLATE + STEER_MAX_WORD];
    int len = snprintf(text, sizeof text, "%.*s%.*s%s", (int)(hole - tmpl), tmpl, (int)wlen, word, hole + 2);
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    if (tokenizer_encode(tok, text, (size_t)len, ids, n, &cap, err)) return -1;
    return 0;
}

/* The ids of a (template, profession) pair, and whether it can be measured: the
 * profession is its own token there and the text fits the context. */
static int pair_ids(const Tokenizer *tok, const char *tmpl, int profession, int n_positions, int **ids, size_t *n,
                    int *usable, BpError *err) {
    if (encode_template(tok, tmpl, profession, ids, n, err)) return -1;
    int found = 0;
    for (size_t j = 0; j < *n; j++) found += (*ids)[j] == profession;
    *usable = found && *n > 0 && *n <= (size_t)n_positions;
    return 0;
}

/* ---- debiasing ----------------------------------------------------------------------- */

/* Feeds ids[0..n) and returns the logits after the last. */
static const float *run_prompt(InferState *st, const int *ids, int n, BpError *err) {
    infer_reset(st);
    for (int i = 0; i + 1 < n; i++)
        if (infer_feed(st, ids[i], err)) return NULL;
    return infer_step(st, ids[n - 1], err);
}

int steer_bias_pairs(const Backpack *m, const Tokenizer *tok, const SteerWords *professions,
                     char (*templates)[STEER_MAX_TEMPLATE], int n_templates, int he, int she, BiasPairs *out,
                     FILE *notes, BpError *err) {
    memset(out, 0, sizeof *out);
    const BackpackConfig *c = &m->config;
    if (c->arch != ARCH_BACKPACK) return bp_fail(err, "sense weights need a Backpack model (this one is a Transformer)");
    const int k = c->num_senses, d = c->n_embd, V = c->vocab_size;
    if (he < 0 || he >= V || she < 0 || she >= V) return bp_fail(err, "pronoun token out of range");
    int total = professions->count * n_templates;
    out->pairs = calloc((size_t)(total ? total : 1), sizeof *out->pairs);
    out->storage = malloc((size_t)(total ? total : 1) * k * sizeof(float));
    float *g = malloc((size_t)d * sizeof *g);
    InferState st;
    int built = 0, r = 0;
    if (!out->pairs || !out->storage || !g) r = bp_fail(err, "out of memory");
    if (!r && !(r = infer_build(&st, m, c->n_positions, err))) built = 1;
    out->k = k;
    if (!r)
        for (int i = 0; i < d; i++) g[i] = m->params.wte[(size_t)he * d + i] - m->params.wte[(size_t)she * d + i];
    for (int p = 0; p < professions->count && !r; p++) {
        for (int t = 0; t < n_templates && !r; t++) {
            int *ids, usable;
            size_t n;
            if ((r = pair_ids(tok, templates[t], professions->tokens[p], c->n_positions, &ids, &n, &usable, err)))
                break;
            if (!usable) {
                if (notes) {
                    char readable[64];
                    fprintf(notes, "backpack: note: '%s' in \"%s\": not its own token there, or too long; pair skipped\n",
                            tokenizer_token_readable(tok, professions->tokens[p], readable, sizeof readable),
                            templates[t]);
                }
                free(ids);
                continue;
            }
            const float *logits = run_prompt(&st, ids, (int)n, err);
            if (!logits) {
                free(ids);
                r = -1;
                break;
            }
            BiasPair *bp = &out->pairs[out->count];
            bp->profession = professions->tokens[p];
            bp->gap = logits[he] - logits[she];
            bp->delta = out->storage + (size_t)out->count * k;
            const float *alpha = infer_alpha(&st), *senses = infer_context_senses(&st);
            for (int l = 0; l < k; l++) {
                double sum = 0;
                for (size_t j = 0; j < n; j++) {
                    if (ids[j] != bp->profession) continue;
                    const float *v = senses + ((size_t)j * k + l) * d;
                    double dot = 0;
                    for (int i = 0; i < d; i++) dot += (double)g[i] * v[i];
                    sum += alpha[(size_t)l * st.max_len + j] * dot;
                }
                bp->delta[l] = (float)sum;
            }
            out->count++;
            free(ids);
        }
    }
    free(g);
    if (built) infer_free(&st);
    if (!r && out->count == 0) r = bp_fail(err, "no (profession, template) pair could be measured");
    if (r) steer_bias_pairs_free(out);
    return r;
}

void steer_bias_pairs_free(BiasPairs *p) {
    if (!p) return;
    free(p->pairs);
    free(p->storage);
    memset(p, 0, sizeof *p);
}

double steer_bias(const BiasPairs *p, int sense, double w) {
    double sum = 0;
    for (int i = 0; i < p->count; i++) {
        double gap = p->pairs[i].gap;
        if (sense >= 0) gap += (w - 1) * p->pairs[i].delta[sense];
        sum += exp(fabs(gap));
    }
    return p->count ? sum / p->count : 1.0;
}

int steer_pick_sense(const BiasPairs *train) {
    int best = 0;
    double best_mean = -1;
    for (int l = 0; l < train->k; l++) {
        double sum = 0;
        for (int i = 0; i < train->count; i++) sum += fabs(train->pairs[i].delta[l]);
        if (sum > best_mean) best_mean = sum, best = l;
    }
    return best;
}

double steer_fit_weight(double (*f)(double w, void *ctx), void *ctx, double reg) {
    const double step = 0.01;
    const int n = (int)(STEER_MAX_WEIGHT / step + 0.5);
    double best_w = 1, best = f(1, ctx);
    for (int i = 0; i <= n; i++) {
        double w = i * step, v = f(w, ctx) + reg * fabs(1 - w);
        if (v < best) best = v, best_w = w;
    }
    /* golden section on the grid cell either side of the best point */
    const double phi = 0.6180339887498949;
    double a = fmax(0, best_w - step), b = fmin(STEER_MAX_WEIGHT, best_w + step);
    double x1 = b - phi * (b - a), x2 = a + phi * (b - a);
    double f1 = f(x1, ctx) + reg * fabs(1 - x1), f2 = f(x2, ctx) + reg * fabs(1 - x2);
    for (int it = 0; it < 40; it++) {
        if (f1 < f2) {
            b = x2, x2 = x1, f2 = f1;
            x1 = b - phi * (b - a);
            f1 = f(x1, ctx) + reg * fabs(1 - x1);
        } else {
            a = x1, x1 = x2, f1 = f2;
            x2 = a + phi * (b - a);
            f2 = f(x2, ctx) + reg * fabs(1 - x2);
        }
    }
    double w = f1 < f2 ? x1 : x2, v = fmin(f1, f2);
    return v < best ? w : best_w;
}

typedef struct {
    const BiasPairs *pairs;
    int sense;
} SenseFitCtx;

static double sense_bias_at(double w, void *ctx) {
    const SenseFitCtx *c = ctx;
    return steer_bias(c->pairs, c->sense, w);
}

double steer_fit_sense_weight(const BiasPairs *train, int sense, double reg) {
    SenseFitCtx c = {train, sense};
    return steer_fit_weight(sense_bias_at, &c, reg);
}

int steer_debias_commit(SenseStore *s, const SteerWords *professions, int sense, double w,
                        const char *description, int64_t *edit_id, BpError *err) {
    SteerWeight *items = malloc((size_t)professions->count * sizeof *items);
    if (!items) return bp_fail(err, "out of memory");
    for (int i = 0; i < professions->count; i++)
        items[i] = (SteerWeight){professions->tokens[i], sense, (float)w};
    int r = commit_weights(s, items, professions->count, description, edit_id, err);
    free(items);
    return r;
}

/* ---- full-forward bias and the Transformer baseline ----------------------------------- */

int steer_bias_forward(const Backpack *m, const Tokenizer *tok, const SteerWords *professions,
                       char (*templates)[STEER_MAX_TEMPLATE], int n_templates, int he, int she,
                       double *bias, BpError *err) {
    InferState st;
    if (infer_build(&st, m, m->config.n_positions, err)) return -1;
    double sum = 0;
    int count = 0, r = 0;
    for (int p = 0; p < professions->count && !r; p++)
        for (int t = 0; t < n_templates && !r; t++) {
            int *ids, usable;
            size_t n;
            if ((r = pair_ids(tok, templates[t], professions->tokens[p], m->config.n_positions, &ids, &n, &usable,
                              err)))
                break;
            if (usable) {
                const float *logits = run_prompt(&st, ids, (int)n, err);
                if (!logits) r = -1;
                else {
                    sum += exp(fabs((double)logits[he] - logits[she]));
                    count++;
                }
            }
            free(ids);
        }
    infer_free(&st);
    if (r) return -1;
    if (!count) return bp_fail(err, "no (profession, template) pair could be measured");
    *bias = sum / count;
    return 0;
}

typedef struct {
    Backpack *m;
    const Tokenizer *tok;
    const SteerWords *professions;
    char (*templates)[STEER_MAX_TEMPLATE];
    int n_templates, he, she;
    const float *saved;     /* (count, d) the professions' original rows */
    const double *g;        /* (d) E[she] - E[he] */
    double gg;
    int failed;
    BpError *err;
} ProjectionCtx;

static void set_projection(ProjectionCtx *c, double w) {
    const int d = c->m->config.n_embd;
    for (int p = 0; p < c->professions->count; p++) {
        float *row = c->m->params.wte + (size_t)c->professions->tokens[p] * d;
        const float *e = c->saved + (size_t)p * d;
        double dot = 0;
        for (int i = 0; i < d; i++) dot += e[i] * c->g[i];
        double coef = (1 - w) * dot / c->gg;
        for (int i = 0; i < d; i++) row[i] = (float)(e[i] - coef * c->g[i]);
    }
}

static void restore_rows(ProjectionCtx *c) {
    const int d = c->m->config.n_embd;
    for (int p = 0; p < c->professions->count; p++)
        memcpy(c->m->params.wte + (size_t)c->professions->tokens[p] * d, c->saved + (size_t)p * d,
               (size_t)d * sizeof(float));
}

static double projection_bias_at(double w, void *ctx) {
    ProjectionCtx *c = ctx;
    if (c->failed) return INFINITY;
    set_projection(c, w);
    double bias;
    int r = steer_bias_forward(c->m, c->tok, c->professions, c->templates, c->n_templates, c->he, c->she, &bias,
                               c->err);
    restore_rows(c);
    if (r) {
        c->failed = 1;
        return INFINITY;
    }
    return bias;
}

int steer_projection_baseline(Backpack *m, const Tokenizer *tok, const SteerWords *professions,
                              const SteerTemplates *t, int he, int she, double reg, ProjectionResult *out,
                              BpError *err) {
    const int d = m->config.n_embd;
    float *saved = malloc((size_t)professions->count * d * sizeof *saved);
    double *g = malloc((size_t)d * sizeof *g);
    if (!saved || !g) {
        free(saved);
        free(g);
        return bp_fail(err, "out of memory");
    }
    double gg = 0;
    for (int i = 0; i < d; i++) {
        g[i] = (double)m->params.wte[(size_t)she * d + i] - m->params.wte[(size_t)he * d + i];
        gg += g[i] * g[i];
    }
    for (int p = 0; p < professions->count; p++)
        memcpy(saved + (size_t)p * d, m->params.wte + (size_t)professions->tokens[p] * d, (size_t)d * sizeof(float));
    int r = 0;
    if (gg == 0) r = bp_fail(err, "the two pronouns have the same embedding: no direction to project out");
    ProjectionCtx c = {m, tok, professions, t->train, t->n_train, he, she, saved, g, gg, 0, err};
    if (!r) {
        out->train_before = projection_bias_at(1, &c);
        out->weight = steer_fit_weight(projection_bias_at, &c, reg);
        out->train_after = projection_bias_at(out->weight, &c);
        c.templates = t->test;
        c.n_templates = t->n_test;
        out->bias_before = projection_bias_at(1, &c);
        out->bias_after = projection_bias_at(out->weight, &c);
        if (c.failed) r = -1;
    }
    restore_rows(&c);
    free(saved);
    free(g);
    return r;
}

/* ---- topic measure ------------------------------------------------------------------- */

typedef struct {
    const char *path;
    const Tokenizer *tok;
    int **ids;
    int *lens;
    int n, cap;
    BpError *err;
} PromptsCtx;

static int prompt_line(char *text, int lineno, void *ctx) {
    PromptsCtx *c = ctx;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        int **ids = realloc(c->ids, (size_t)cap * sizeof *ids);
        if (ids) c->ids = ids;
        int *lens = realloc(c->lens, (size_t)cap * sizeof *lens);
        if (lens) c->lens = lens;
        if (!ids || !lens) return bp_fail(c->err, "out of memory");
        c->cap = cap;
    }
    size_t n = 0, cap = 0;
    int *ids = NULL;
    if (tokenizer_encode(c->tok, text, strlen(text), &ids, &n, &cap, c->err)) {
        free(ids);
        return bp_fail(c->err, "%s:%d: cannot encode the prompt", c->path, lineno);
    }
    c->ids[c->n] = ids;
    c->lens[c->n++] = (int)n;
    return 0;
}

int steer_read_prompts(const char *path, const Tokenizer *tok, int ***ids, int **lens, int *n, BpError *err) {
    PromptsCtx c = {path, tok, NULL, NULL, 0, 0, err};
    int r = 0;
    if (!path) {
        int eot = tokenizer_eot(tok);
        if (eot < 0) return bp_fail(err, "the vocabulary has no <|endoftext|>: give --prompts FILE");
        c.ids = malloc(sizeof *c.ids);
        c.lens = malloc(sizeof *c.lens);
        int *one = malloc(sizeof *one);
        if (!c.ids || !c.lens || !one) r = bp_fail(err, "out of memory");
        else {
            one[0] = eot;
            c.ids[0] = one;
            c.lens[0] = 1;
            c.n = 1;
            one = NULL;
        }
        free(one);
    } else {
        r = for_each_line(path, 4 * STEER_MAX_TEMPLATE, prompt_line, &c, err);
        if (!r && c.n == 0) r = bp_fail(err, "%s: no prompts (one per line)", path);
    }
    if (r) {
        steer_prompts_free(c.ids, c.lens, c.n);
        return -1;
    }
    *ids = c.ids;
    *lens = c.lens;
    *n = c.n;
    return 0;
}

void steer_prompts_free(int **ids, int *lens, int n) {
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
}


static double log_softmax_at(const float *logits, int V, int t) {
    float mx = logits[0];
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[t] - mx - log(sum);
}

int steer_measure_topic(const Backpack *m, const SenseEdits *edits, const SteerWords *topic,
                        int *const *prompts, const int *prompt_lens, int n_prompts,
                        const TopicMeasureConfig *cfg, TopicMeasure *out, BpError *err) {
    memset(out, 0, sizeof *out);
    const int V = m->config.vocab_size, ctx = m->config.n_positions;
    InferState gen, plain;
    if (infer_build(&gen, m, ctx, err)) return -1;
    if (infer_build(&plain, m, ctx, err)) {
        infer_free(&gen);
        return -1;
    }
    infer_set_edits(&gen, edits);
    infer_set_edits(&plain, NULL);
    unsigned char *is_topic = calloc((size_t)V, 1);
    int *text = malloc((size_t)ctx * sizeof *text);
    int r = 0, hits = 0;
    long scored = 0;
    double nll = 0;
    if (!is_topic || !text) r = bp_fail(err, "out of memory");
    for (int i = 0; !r && i < topic->count; i++) is_topic[topic->tokens[i]] = 1;
    Rng rng;
    rng_seed(&rng, cfg->seed);
    SamplerConfig sc = {.temperature = cfg->temperature, .top_k = 0, .top_p = cfg->top_p};
    const int eot = cfg->eot;
    for (int p = 0; p < n_prompts && !r; p++) {
        int n = prompt_lens[p];
        if (n < 1 || n >= ctx) {
            r = bp_fail(err, "prompt %d: %d tokens, the context holds %d", p + 1, n, ctx);
            break;
        }
        for (int sample = 0; sample < cfg->samples && !r; sample++) {
            const float *logits = run_prompt(&gen, prompts[p], n, err);
            int len = 0, hit = 0;
            while (logits && len < cfg->max_tokens && n + len < ctx) {
                int t = sample_token(logits, V, &sc, &rng);
                if (t < 0) {
                    r = bp_fail(err, "out of memory");
                    break;
                }
                text[len++] = t;
                hit |= is_topic[t];
                if (t == eot || n + len >= ctx) break;
                logits = infer_step(&gen, t, err);
            }
            if (!logits) r = -1;
            if (r) break;
            hits += hit;
            out->generations++;
            /* fluency: the same tokens under the unedited model */
            const float *pl = run_prompt(&plain, prompts[p], n, err);
            for (int i = 0; pl && i < len; i++) {
                nll -= log_softmax_at(pl, V, text[i]);
                scored++;
                if (i + 1 < len) pl = infer_step(&plain, text[i], err);
            }
            if (!pl) r = -1;
        }
    }
    free(is_topic);
    free(text);
    infer_free(&gen);
    infer_free(&plain);
    if (r) return -1;
    out->hit_share = out->generations ? (double)hits / out->generations : 0;
    out->perplexity = scored ? exp(nll / scored) : 0;
    return 0;
}
