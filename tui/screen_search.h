/* screen_search.h - the search screen: type-ahead over the vocabulary. */
#ifndef BP_TUI_SCREEN_SEARCH_H
#define BP_TUI_SCREEN_SEARCH_H

#include "screen.h"

#define SEARCH_MAX 500          /* results kept */

typedef struct {
    LineEdit input;
    int ids[SEARCH_MAX];
    int count;
    int closest;                /* 1: no prefix matched; ids are the closest words */
    ListView list;
} SearchScreen;

extern const ScreenClass search_screen;

/* Opens the next (+1) or previous (-1) result from any screen (the global n and N). */
void search_step(SearchScreen *sv, Ui *ui, int direction);

#endif
