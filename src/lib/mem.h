/*
 * mem.h — allocation with accounting.
 *
 * Every heap object the keyspace owns is allocated here so that INFO can
 * report used memory and `maxmemory` can be enforced.  Allocation failure
 * aborts with a message (a store that silently drops a write on ENOMEM is
 * worse than one that stops); the OOM policy the user sees is maxmemory.
 */
#ifndef CAIRN_MEM_H
#define CAIRN_MEM_H

#include <stddef.h>

void *cairn_malloc(size_t n);
void *cairn_calloc(size_t count, size_t n);
void *cairn_realloc(void *p, size_t n);
void cairn_free(void *p);
char *cairn_strndup(const char *s, size_t n);

/* Bytes currently allocated through this module (usable sizes). */
size_t cairn_mem_used(void);
/* The allocator's usable size of `p` (0 for NULL). */
size_t cairn_mem_size(void *p);

#endif
