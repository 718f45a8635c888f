/* screen_edits.h - the edits screen: the edits stored in the database. */
#ifndef BP_TUI_SCREEN_EDITS_H
#define BP_TUI_SCREEN_EDITS_H

#include "screen.h"

typedef struct {
    EditRecord *records;
    int count;
    ListView list;
} EditsScreen;

extern const ScreenClass edits_screen;

#endif
