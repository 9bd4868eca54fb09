/* Callgrind client requests for pytest-perfgate's instruction counting.
 *
 * Compiled on first use with the system C compiler and loaded with ctypes
 * (probes/instructions.py). Each request is a few no-op instructions when the
 * process is not running under Valgrind.
 */
#include <valgrind/callgrind.h>

int perfgate_running_on_valgrind(void) { return (int)RUNNING_ON_VALGRIND; }
void perfgate_start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
void perfgate_stop_instrumentation(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void perfgate_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
void perfgate_zero_stats(void) { CALLGRIND_ZERO_STATS; }
void perfgate_dump_stats_at(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
