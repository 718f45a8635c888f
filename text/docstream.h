/* docstream.h - reading a text corpus file as documents, in bounded memory.
 *
 * A file is a sequence of documents separated by "<|endoftext|>". One newline right
 * after a separator and one right before a separator or the end of the file are not
 * part of a document, so a separator on a line of its own (as corpus-brown writes it)
 * adds no newlines to the documents around it.
 *
 * The file is read in chunks of about DOCSTREAM_CHUNK bytes, each cut where cutting
 * cannot change the GPT-2 pre-tokenization: between an ASCII letter or digit and a
 * following space (no pre-token spans that point and no lookahead sees past it), or
 * right after a separator. So encoding the pieces one by one gives exactly the ids of
 * encoding each document whole. A stretch of DOCSTREAM_MAX_CHUNK bytes with no such
 * point (no "a " anywhere) is cut at a UTF-8 character boundary instead; only there
 * may a pre-token be split in two.
 */
#ifndef BP_TEXT_DOCSTREAM_H
#define BP_TEXT_DOCSTREAM_H

#include <stddef.h>

#include "../common/error.h"

#define DOCSTREAM_CHUNK (1u << 20)
#define DOCSTREAM_MAX_CHUNK (64u << 20)

/* piece: the next bytes of the current document (never empty); doc_end: the current
 * document ended (called for every document, empty ones included). Returning non-zero
 * stops the reading (the callback wrote err). */
typedef int (*DocPieceFn)(void *ctx, const char *text, size_t len, BpError *err);
typedef int (*DocEndFn)(void *ctx, BpError *err);

int docstream_read(const char *path, DocPieceFn piece, DocEndFn doc_end, void *ctx, BpError *err);

/* The last safe cut point in buf[0..len) (see above), or 0 when there is none. */
size_t docstream_safe_cut(const char *buf, size_t len);

#endif
