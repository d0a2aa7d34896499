#include "lib/mem.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Relaxed: a gauge, read by INFO and the maxmemory check on the loop thread;
 * helper threads may allocate too. */
static atomic_size_t used;

static void oom(size_t n)
{
    fprintf(stderr, "cairn: out of memory allocating %zu bytes\n", n);
    abort();
}

size_t cairn_mem_size(void *p) { return p ? malloc_usable_size(p) : 0; }

void *cairn_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    atomic_fetch_add_explicit(&used, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *cairn_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) oom(count * n);
    atomic_fetch_add_explicit(&used, malloc_usable_size(p), memory_order_relaxed);
    return p;
}

void *cairn_realloc(void *p, size_t n)
{
    size_t old = cairn_mem_size(p);
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    atomic_fetch_add_explicit(&used, malloc_usable_size(q), memory_order_relaxed);
    atomic_fetch_sub_explicit(&used, old, memory_order_relaxed);
    return q;
}

void cairn_free(void *p)
{
    if (!p) return;
    atomic_fetch_sub_explicit(&used, malloc_usable_size(p), memory_order_relaxed);
    free(p);
}

char *cairn_strndup(const char *s, size_t n)
{
    char *d = cairn_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

size_t cairn_mem_used(void) { return atomic_load_explicit(&used, memory_order_relaxed); }
