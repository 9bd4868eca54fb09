/* Callgrind client requests, and a deterministic allocator, for pytest-perfgate's
 * instruction counting.
 *
 * Compiled on first use with the system C compiler and loaded with ctypes
 * (probes/callgrind.py). Each request is a few no-op instructions when the
 * process is not running under Valgrind.
 *
 * The allocator: how many instructions CPython's allocator and glibc's malloc
 * execute for a request depends on what the process allocated before (free
 * chunks to sort, pools to take or give back, whether a realloc grows in place
 * or copies), so the count of the same call moved by up to 19% between runs.
 * While a measurement is counted, perfgate_alloc_begin() routes the MEM and OBJ
 * domains (every Python object, list and dict storage) to a segregated-fit
 * allocator over one reserved region: each measurement is an epoch that starts
 * with empty free lists and the bump pointer on a fresh megabyte, so the same
 * sequence of requests gets blocks at the same offsets and costs the same
 * instructions, whatever ran before. Outside counting the hooks only forward to
 * CPython's allocator; blocks of the region are told apart by address.
 *
 * Memory: a past epoch's freed blocks are never reused (that would make the next
 * epoch depend on it). Instead its pages that hold no live block are given back to
 * the system (madvise) once it is two epochs old (what its test kept is mostly
 * gone by then), all of them once its last block is freed; and the epochs form a stack: a
 * new one starts where the last one with live blocks ends. The region is reserved,
 * not committed; only the pages in use cost memory.
 * The hooks are called with the GIL held (as these two domains require), and so
 * are the functions below (loaded with ctypes.PyDLL).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <valgrind/callgrind.h>

int perfgate_running_on_valgrind(void) { return (int)RUNNING_ON_VALGRIND; }
void perfgate_start_instrumentation(void) { CALLGRIND_START_INSTRUMENTATION; }
void perfgate_stop_instrumentation(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void perfgate_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
void perfgate_zero_stats(void) { CALLGRIND_ZERO_STATS; }
void perfgate_dump_stats_at(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }

/* Python's allocator interface (stable since 3.5), declared here so the helper
 * builds without Python's development headers. */
typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
} PyMemAllocatorEx;
enum { PYMEM_DOMAIN_MEM = 1, PYMEM_DOMAIN_OBJ = 2 };
extern void PyMem_GetAllocator(int domain, PyMemAllocatorEx *allocator);
extern void PyMem_SetAllocator(int domain, PyMemAllocatorEx *allocator);

#define EPOCH_ALIGNMENT ((size_t)1 << 20) /* see perfgate_alloc_begin */
#define HEADER 16                      /* before each block: its class and epoch */
#define SMALL_LIMIT 1024               /* classes of 16 bytes up to here, then 4 per power of two */
#define CLASSES (SMALL_LIMIT / 16 + 1 + 4 * 54)

typedef struct {
    uint32_t size_class;
    uint32_t epoch; /* its epoch's place on the stack (a popped one has no blocks left) */
    uint64_t dead;  /* 1 once freed for good; fresh and given-back memory reads 0 */
} BlockHeader;

#define MAX_EPOCHS (1 << 20)

typedef struct {
    char *start;   /* where its first block is */
    char *end;     /* where its last block ends, once it is not the current one */
    uint64_t live; /* its blocks not freed yet */
    int trimmed;   /* its pages without live blocks given back */
    int released;  /* all its pages given back */
} Epoch;

static char *region, *region_end, *bump;
static void *free_blocks[CLASSES];
static Epoch epochs[MAX_EPOCHS]; /* a stack, oldest first; the top is the current one */
static uint32_t epoch_count;
static int routing;
static PyMemAllocatorEx forwarded[3]; /* CPython's allocators, by domain */

static size_t class_capacity(uint32_t size_class) {
    if (size_class <= SMALL_LIMIT / 16) return (size_t)size_class * 16;
    uint32_t step = size_class - SMALL_LIMIT / 16 - 1; /* 0 is (1024, 1280] */
    size_t power = (size_t)SMALL_LIMIT << (step / 4);
    return power + (power / 4) * (step % 4 + 1);
}

static uint32_t class_of(size_t size) {
    if (size <= SMALL_LIMIT) return size == 0 ? 1 : (uint32_t)((size + 15) / 16);
    unsigned bits = 63 - (unsigned)__builtin_clzl(size - 1); /* size - 1 < 2^(bits+1) */
    size_t power = (size_t)1 << bits;
    uint32_t quarter = (uint32_t)((size - 1 - power) / (power / 4));
    return SMALL_LIMIT / 16 + 1 + (bits - 10) * 4 + quarter;
}

static int in_region(const void *block) {
    return (const char *)block >= region && (const char *)block < region_end;
}

static BlockHeader *header_of(void *block) { return (BlockHeader *)((char *)block - HEADER); }

/* A block of the current epoch for `size` bytes, or NULL (not routing, region full). */
static void *take(size_t size) {
    if (!routing || size > (size_t)(region_end - region) / 4) return NULL;
    uint32_t size_class = class_of(size);
    if (size_class >= CLASSES) return NULL;
    Epoch *current = &epochs[epoch_count - 1];
    void *block = free_blocks[size_class];
    if (block != NULL) {
        free_blocks[size_class] = *(void **)block;
        current->live++;
        return block;
    }
    size_t needed = HEADER + class_capacity(size_class);
    if ((size_t)(region_end - bump) < needed) return NULL;
    BlockHeader *header = (BlockHeader *)bump;
    bump += needed;
    header->size_class = size_class;
    header->epoch = epoch_count - 1;
    current->live++;
    return (char *)header + HEADER;
}

static void give_back(void *block) {
    BlockHeader *header = header_of(block);
    /* The same instructions whichever epoch: the count of a free must not depend on
     * how many epochs are on the stack. */
    epochs[header->epoch].live--;
    if (header->epoch != epoch_count - 1) { /* a past epoch's block: not reused */
        header->dead = 1;
        return;
    }
    *(void **)block = free_blocks[header->size_class];
    free_blocks[header->size_class] = block;
}

static void *hook_malloc(void *ctx, size_t size) {
    void *block = take(size);
    if (block != NULL) return block;
    PyMemAllocatorEx *next = ctx;
    return next->malloc(next->ctx, size);
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize) {
    if (elsize != 0 && nelem > SIZE_MAX / elsize) return NULL;
    void *block = take(nelem * elsize);
    if (block != NULL) return memset(block, 0, nelem * elsize);
    PyMemAllocatorEx *next = ctx;
    return next->calloc(next->ctx, nelem, elsize);
}

static void *hook_realloc(void *ctx, void *ptr, size_t new_size) {
    PyMemAllocatorEx *next = ctx;
    if (ptr == NULL) return hook_malloc(ctx, new_size);
    if (!in_region(ptr)) return next->realloc(next->ctx, ptr, new_size);
    size_t capacity = class_capacity(header_of(ptr)->size_class);
    if (new_size <= capacity) return ptr;
    void *moved = take(new_size);
    if (moved == NULL) moved = next->malloc(next->ctx, new_size);
    if (moved == NULL) return NULL;
    memcpy(moved, ptr, capacity);
    give_back(ptr);
    return moved;
}

static void hook_free(void *ctx, void *ptr) {
    if (ptr == NULL) return;
    if (in_region(ptr)) {
        give_back(ptr);
        return;
    }
    PyMemAllocatorEx *next = ctx;
    next->free(next->ctx, ptr);
}

/* Reserve the region (the largest of 256, 64, 16 and 4 GiB the system grants) and
 * wrap CPython's MEM and OBJ allocators; 0 on success. */
int perfgate_alloc_install(void) {
    if (region != NULL) return 0;
    void *reserved = MAP_FAILED;
    size_t size;
    for (size = (size_t)256 << 30; size >= ((size_t)4 << 30); size /= 4) {
        reserved = mmap(NULL, size + EPOCH_ALIGNMENT, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (reserved != MAP_FAILED) break;
    }
    if (reserved == MAP_FAILED) return -1;
    region = bump = (char *)(((uintptr_t)reserved + EPOCH_ALIGNMENT - 1) & ~(EPOCH_ALIGNMENT - 1));
    region_end = region + size;
    for (int domain = PYMEM_DOMAIN_MEM; domain <= PYMEM_DOMAIN_OBJ; domain++) {
        PyMem_GetAllocator(domain, &forwarded[domain]);
        PyMemAllocatorEx hooks = {&forwarded[domain], hook_malloc, hook_calloc, hook_realloc,
                                  hook_free};
        PyMem_SetAllocator(domain, &hooks);
    }
    return 0;
}

/* The pages of [from, to) that no block overlaps any more, to the system. */
static void give_pages_back(char *from, char *to) {
    uintptr_t first = ((uintptr_t)from + 4095) & ~(uintptr_t)4095;
    uintptr_t last = (uintptr_t)to & ~(uintptr_t)4095;
    if (last > first) madvise((void *)first, last - first, MADV_DONTNEED);
}

/* The current epoch ends: its free blocks are dead for good, its extent is known. */
static void close_current_epoch(void) {
    if (epoch_count == 0) return;
    for (uint32_t size_class = 0; size_class < CLASSES; size_class++) {
        for (void *block = free_blocks[size_class]; block != NULL; block = *(void **)block) {
            header_of(block)->dead = 1;
        }
    }
    memset(free_blocks, 0, sizeof free_blocks);
    epochs[epoch_count - 1].end = bump;
}

/* Give back the pages of past epochs that hold no live block: all pages of epochs
 * whose blocks are all freed, and once (walking its blocks) the dead pages of each
 * epoch two behind the current one. */
static void trim_past_epochs(void) {
    for (uint32_t index = 0; index + 2 < epoch_count; index++) {
        Epoch *epoch = &epochs[index];
        if (epoch->released) continue;
        if (epoch->live == 0) {
            give_pages_back(epoch->start, epoch->end);
            epoch->released = 1;
        } else if (!epoch->trimmed) {
            char *dead_from = epoch->start;
            for (char *at = epoch->start; at < epoch->end;) {
                BlockHeader *header = (BlockHeader *)at;
                char *next = at + HEADER + class_capacity(header->size_class);
                if (!header->dead) {
                    give_pages_back(dead_from, at);
                    dead_from = next;
                }
                at = next;
            }
            give_pages_back(dead_from, epoch->end);
            epoch->trimmed = 1;
        }
    }
}

/* A new epoch: empty free lists, the bump pointer after the last epoch that still
 * has live blocks, on a multiple of EPOCH_ALIGNMENT: addresses then agree between
 * runs in their low 20 bits, and so do the slots of dicts and sets keyed by id()
 * (json.dumps keeps one), up to a million slots. Route requests from now on. 0, or
 * -1 when the stack is full (then requests go on to CPython's allocator). */
int perfgate_alloc_begin(void) {
    close_current_epoch();
    while (epoch_count > 0 && epochs[epoch_count - 1].live == 0) {
        Epoch *top = &epochs[--epoch_count];
        give_pages_back(top->start, top->end); /* zeroed: fresh memory for the next epochs */
        bump = top->start;
    }
    trim_past_epochs();
    if (epoch_count == MAX_EPOCHS) {
        routing = 0;
        return -1;
    }
    bump = region + (((size_t)(bump - region) + EPOCH_ALIGNMENT - 1) & ~(EPOCH_ALIGNMENT - 1));
    epochs[epoch_count++] = (Epoch){bump, NULL, 0, 0, 0};
    routing = 1;
    return 0;
}

void perfgate_alloc_end(void) { routing = 0; }
