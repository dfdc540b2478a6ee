#ifndef MUSTER_CCMARK_SHIM_H
#define MUSTER_CCMARK_SHIM_H
#include <cmark.h>
#include <stdlib.h>

/* Option bits are macros; expose them as typed values. */
static inline int muster_cmark_opt_unsafe(void) { return CMARK_OPT_UNSAFE; }
static inline int muster_cmark_opt_default(void) { return CMARK_OPT_DEFAULT; }
#endif
