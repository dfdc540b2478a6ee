#ifndef MUSTER_CSQLITE_SHIM_H
#define MUSTER_CSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import.
static inline void (*muster_sqlite_transient(void))(void *) { return SQLITE_TRANSIENT; }

/// Turns off SQLite's memory statistics, whose global mutex every allocation takes
/// (sqlite3_config is variadic, which Swift cannot call). Must run before the first open;
/// returns SQLITE_MISUSE, harmlessly, once SQLite is initialised.
static inline int muster_sqlite_disable_memstatus(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
#endif
