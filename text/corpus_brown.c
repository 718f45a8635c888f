#include "corpus_brown.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "../common/fileio.h"
#include "pretok.h"

void textbuf_free(TextBuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int textbuf_add(TextBuf *b, const char *s, size_t n, BpError *err) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return bp_fail(err, "corpus-brown: out of memory");
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int is_closing_punct(const char *w, size_t n) {
    if ((n == 2 && !memcmp(w, "''", 2)) || (n == 1 && w[0] == '\'')) return 1;
    for (size_t i = 0; i < n; i++)
        if (!strchr(".,;:?!)", w[i])) return 0;
    return n > 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Is every tag on the line a headline tag (ends in "-hl")? */
static int is_headline(const char *line, size_t len) {
    int words = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && is_space(line[i])) i++;
        size_t start = i;
        while (i < len && !is_space(line[i])) i++;
        if (i == start) continue;
        words++;
        if (i - start < 3 || memcmp(line + i - 3, "-hl", 3)) return 0;
    }
    return words > 0;
}

int corpus_brown_document(const char *tagged, size_t len, TextBuf *out, BpError *err) {
    int in_paragraph = 0, prev_headline = 0, space_pending = 0, any = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = tagged + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + (nl ? 1 : 0);
        size_t first = 0;
        while (first < line_len && is_space(line[first])) first++;
        if (first == line_len) continue;   /* blank */
        int headline = is_headline(line, line_len);
        if (line[0] == '\t' || headline || prev_headline || !in_paragraph) {
            if (any && textbuf_add(out, "\n\n", 2, err) != 0) return -1;
            in_paragraph = 1;
            space_pending = 0;
        }
        prev_headline = headline;
        for (size_t i = first; i < line_len;) {
            while (i < line_len && is_space(line[i])) i++;
            size_t start = i;
            while (i < line_len && !is_space(line[i])) i++;
            if (i == start) continue;
            const char *tok = line + start;
            size_t tok_len = i - start, word_len = tok_len;
            for (size_t k = tok_len; k-- > 0;)
                if (tok[k] == '/') {
                    word_len = k;
                    break;
                }
            if (word_len == 0) continue;
            const char *word = tok;
            int opening = 0, closing = is_closing_punct(word, word_len);
            if (word_len == 2 && !memcmp(word, "``", 2)) word = "\"", word_len = 1, opening = 1;
            else if (word_len == 2 && !memcmp(word, "''", 2)) word = "\"", word_len = 1;
            else if (word_len == 1 && word[0] == '(') opening = 1;
            if (space_pending && !closing && textbuf_add(out, " ", 1, err) != 0) return -1;
            if (textbuf_add(out, word, word_len, err) != 0) return -1;
            space_pending = !opening;
            any = 1;
        }
        space_pending = 1;   /* the next sentence of the paragraph */
    }
    return 0;
}

static int is_corpus_name(const char *name) {
    return strlen(name) == 4 && name[0] == 'c' && name[1] >= 'a' && name[1] <= 'r' &&
           name[2] >= '0' && name[2] <= '9' && name[3] >= '0' && name[3] <= '9';
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int corpus_brown_convert(const char *dir, const char *out_path, int *n_docs, size_t *n_bytes,
                         BpError *err) {
    *n_docs = 0;
    *n_bytes = 0;
    DIR *d = opendir(dir);
    if (!d) return bp_fail_errno(err, "%s: cannot open directory", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    int rc = -1;
    while ((ent = readdir(d)) != NULL) {
        if (!is_corpus_name(ent->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 512;
            char **grown = realloc(names, cap * sizeof *grown);
            if (!grown) {
                closedir(d);
                bp_fail(err, "%s: out of memory", dir);
                goto done;
            }
            names = grown;
        }
        names[n] = strdup(ent->d_name);
        if (!names[n]) {
            closedir(d);
            bp_fail(err, "%s: out of memory", dir);
            goto done;
        }
        n++;
    }
    closedir(d);
    if (n == 0) {
        bp_fail(err, "%s: no Brown corpus files (c[a-r][0-9][0-9]) in this directory", dir);
        goto done;
    }
    qsort(names, n, sizeof *names, compare_names);
    AtomicFile af;
    if (atomic_open(&af, out_path, err) != 0) goto done;
    TextBuf doc = {0};
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        char *data;
        size_t len;
        if (path_join(path, sizeof path, dir, names[i], err) != 0 || read_file(path, &data, &len, err) != 0)
            goto fail;
        doc.len = 0;
        int conv = corpus_brown_document(data, len, &doc, err);
        free(data);
        if (conv != 0) {
            bp_error_prefix(err, "%s", path);
            goto fail;
        }
        if (doc.len == 0) continue;
        if (*n_docs > 0 && atomic_write(&af, "\n" PRETOK_EOT_TEXT "\n", PRETOK_EOT_LEN + 2, err) != 0)
            goto fail_written;
        if (atomic_write(&af, doc.data, doc.len, err) != 0) goto fail_written;
        *n_bytes += doc.len + (*n_docs > 0 ? PRETOK_EOT_LEN + 2 : 0);
        (*n_docs)++;
    }
    if (*n_docs == 0) {
        bp_fail(err, "%s: the corpus files hold no words", dir);
        goto fail;
    }
    if (atomic_write(&af, "\n", 1, err) != 0) goto fail_written;
    *n_bytes += 1;
    textbuf_free(&doc);
    rc = atomic_commit(&af, err);
    goto done;
fail:
    atomic_abort(&af);
fail_written:   /* atomic_write already removed the temporary file */
    textbuf_free(&doc);
done:
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}
