/*
 * snap.h — snapshots: the whole keyspace of a node at one LSN, in one file.
 *
 * A snapshot bounds recovery (load it, then replay the log after its LSN)
 * and lets a new or lagging replica catch up when the log no longer reaches
 * back far enough (DESIGN.md, Replication invariant 6).
 *
 * File format (all integers little-endian):
 *
 *   Header, 40 bytes:
 *   | off | size | field                                              |
 *   |   0 |    8 | magic "CAIRNSNP"                                   |
 *   |   8 |    4 | format version (SNAP_VERSION)                      |
 *   |  12 |    4 | configuration version of the entry at LSN (repl)   |
 *   |  16 |    8 | LSN: the snapshot holds every write up to this one |
 *   |  24 |    8 | creation time, unix ms (i64)                       |
 *   |  32 |    8 | XXH3-64 of bytes 0..31                             |
 *
 *   Then one entry per key, in no particular order:
 *   | size | field                                                     |
 *   |    1 | type: 1 = string, 2 = hash                                |
 *   |    8 | expiry, unix ms (i64); INT64_MIN (KS_NO_EXPIRE) = none    |
 *   |    4 | key length k                                              |
 *   |    k | key                                                       |
 *   string:                                                          |
 *   |    4 | value length v                                            |
 *   |    v | value                                                     |
 *   hash:                                                            |
 *   |    4 | field count n, then n times:                              |
 *   |    4 |   field length f                                          |
 *   |    f |   field                                                   |
 *   |    4 |   value length v                                          |
 *   |    v |   value                                                   |
 *
 *   Then the trailer:
 *   | size | field                                                     |
 *   |    1 | end marker, 0xFF                                          |
 *   |    8 | number of entries                                         |
 *   |    8 | XXH3-64 of every byte before this field (header included) |
 *
 * A snapshot is written under "<path>.tmp" and renamed into place, so `path`
 * always holds either the previous complete snapshot or the new one.  There
 * is therefore no "torn" snapshot: any damage is corruption.
 */
#ifndef CAIRN_SNAP_H
#define CAIRN_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/keyspace.h"

#define SNAP_VERSION 1u
#define SNAP_HDR_SIZE 40u

/* Write every entry of ks (expired ones included: expiry is the loader's
 * business) to `path` atomically: write "<path>.tmp" through a 64 KB
 * buffer, fsync it, rename it over `path`, fsync the directory.  `lsn` is
 * the last write ks reflects and `version` the configuration version
 * that wrote it (replication's (LSN, version) entry identity); `now_ms` is recorded as the creation time.
 *
 * Safe in a forked child: it uses only plain syscalls and the allocator (no
 * threads, no event loop, no logging), and it does not modify ks.
 * Returns 0, or -errno (the temporary file is removed), or CAIRN_ELIMIT if a
 * key, value or field count does not fit the format's 32-bit lengths. */
int snap_write(const char *path, ks_t *ks, uint64_t lsn, uint32_t version, int64_t now_ms);

/* Load the snapshot at `path` into ks, which must be empty (asserted).
 * Returns 0 with *lsn set to the snapshot's LSN; -ENOENT if there is no such
 * file (or another -errno on an I/O error); CAIRN_ECORRUPT on any damage,
 * with "<path>: <what> at offset N" in msg (msg may be NULL).  Damage may be
 * found only by the final checksum, after keys have been inserted: on any
 * error the caller discards ks (ks_flush or ks_destroy).  Keys whose expiry
 * has passed are loaded like the others; the node expires them. */
int snap_load(const char *path, ks_t *ks, uint64_t *lsn, uint32_t *version, char *msg, size_t msglen);

#endif
