/* screen_help.h - the help screen: every key, built from the live key tables. */
#ifndef BP_TUI_SCREEN_HELP_H
#define BP_TUI_SCREEN_HELP_H

#include "screen.h"

typedef struct {
    ListView list;
} HelpScreen;

extern const ScreenClass help_screen;

#endif
