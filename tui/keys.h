/* keys.h - the browser's key codes, their names, and the scripted-key syntax.
 *
 * A key is a Unicode code point (typed text, 'q', Ctrl-X as 0x18) or one of the
 * special codes below, which lie above U+10FFFF so that they never collide with text.
 * The ncurses front end maps KEY_* codes onto these; the scripted mode parses them
 * from text:
 *
 *   plain UTF-8 text     each character is one key ("ban" is b, a, n)
 *   <Enter> <CR>         Enter          <Esc>            Escape
 *   <Up> <Down> <Left> <Right>          <PgUp> <PgDn>    <Home> <End>
 *   <BS>                 Backspace      <Del>            Delete
 *   <Tab> <S-Tab>        Tab, Shift-Tab <Space>          ' '
 *   <lt>                 a literal '<'  <C-x>            Ctrl-x (x a letter)
 *   <Resize:COLSxROWS>   the terminal changes size (memory canvas only)
 *
 * Names are case-insensitive. A '<' not starting one of these names is an error, so a
 * typo in a test script fails loudly instead of typing "<Entr>".
 */
#ifndef BP_TUI_KEYS_H
#define BP_TUI_KEYS_H

#include <stddef.h>

#include "../common/error.h"

enum {
    BK_NONE = 0,
    BK_SPECIAL = 0x110000,
    BK_ENTER = BK_SPECIAL,
    BK_ESC,
    BK_UP,
    BK_DOWN,
    BK_LEFT,
    BK_RIGHT,
    BK_PGUP,
    BK_PGDN,
    BK_HOME,
    BK_END,
    BK_BACKSPACE,
    BK_DELETE,
    BK_TAB,
    BK_BTAB,
    BK_RESIZE,        /* the terminal was resized */
    BK_SPECIAL_END
};

#define BK_CTRL(c) ((c) & 0x1f)

/* One scripted event: a key, or for BK_RESIZE the new size. */
typedef struct {
    int key;
    int rows, cols;   /* BK_RESIZE only */
} KeyEvent;

/* Parses the syntax above into a malloc'ed array of events. On error names the
 * offending text and its offset. */
int keys_parse(const char *script, KeyEvent **events, int *count, BpError *err);

/* A key's name for the help screen and for --each-key headers: "q", "Enter", "C-u",
 * "PgDn". Returns out (NUL-terminated). */
const char *bk_key_name(int key, char *out, size_t out_size);

#endif
