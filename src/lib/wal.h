/*
 * wal.h — the write-ahead log: record format, segment files, recovery scan.
 *
 * A node's log is a directory of segment files named
 *
 *     wal-<first LSN, 20 digits zero-padded>.log      e.g. wal-00000000000000000001.log
 *
 * so that names sort by LSN.  A segment is a header followed by records whose
 * LSNs are consecutive, starting at the header's first LSN.
 *
 * Segment header (32 bytes, little-endian):
 *
 *   | off | size | field                                         |
 *   |   0 |    8 | magic "CAIRNWAL"                              |
 *   |   8 |    4 | format version (WAL_VERSION)                  |
 *   |  12 |    4 | reserved, 0                                   |
 *   |  16 |    8 | first LSN                                     |
 *   |  24 |    8 | XXH3-64 of bytes 0..23                        |
 *
 * Record (24-byte header + payload, little-endian):
 *
 *   | off | size | field                                                         |
 *   |   0 |    4 | header checksum (low 32 bits of XXH3-64 over bytes 4..23)     |
 *   |   4 |    4 | payload length                                                |
 *   |   8 |    8 | LSN                                                           |
 *   |  16 |    4 | payload checksum (low 32 bits of XXH3-64 of payload, seeded   |
 *   |     |      | with the LSN)                                                 |
 *   |  20 |    4 | record type / flags (reserved, 0 for now — replication will   |
 *   |     |      | add config-version records)                                   |
 *   |  24 |  len | payload (opaque bytes: the node stores a RESP-encoded command,|
 *   |     |      | or a transaction's commands back to back — node/db.h)         |
 *
 * Why two checksums: the header checksum makes the length trustworthy before
 * it is used, so a flipped bit in the length of a record in the middle of a
 * file is reported as corruption instead of being mistaken for a record that
 * runs past the end of the file (a torn tail, which recovery would silently
 * truncate, dropping every later record).  Seeding the payload checksum with
 * the LSN ties a payload to its place in the log.
 *
 * Torn tail versus corruption (DESIGN.md, Persistence: "a torn last record is
 * truncated; corruption before the tail stops the node").  A crash can leave
 * only the end of the last segment incomplete: a short header, a payload cut
 * short, a payload never written (its bytes read as zeros), or zeros from
 * preallocation.  wal_read_segment reports those as torn; any other damage is
 * CAIRN_ECORRUPT.  Precisely, at a record starting at offset `off`:
 *
 *   - fewer than 24 bytes left                              -> torn at off
 *   - header checksum fails, and every byte after the
 *     24-byte header is zero (or there is none)             -> torn at off
 *   - header checksum fails, non-zero bytes follow          -> CAIRN_ECORRUPT
 *   - valid header, LSN not the expected one                -> CAIRN_ECORRUPT
 *   - valid header, length above WAL_MAX_PAYLOAD            -> CAIRN_ECORRUPT
 *   - valid header, payload runs past the end of file       -> torn at off
 *   - payload checksum fails, and every byte after the
 *     record is zero (or the record ends at EOF)            -> torn at off
 *   - payload checksum fails, non-zero bytes follow         -> CAIRN_ECORRUPT
 *
 * Writers create a segment with wal_create_segment (the header reaches the
 * disk under a temporary name before the segment appears, so a segment file
 * never exists with a partial header after a crash), append encoded records
 * with write(), and fsync by policy.  Recovery lists the segments, reads each
 * in order, and on a torn tail truncates the last one to valid_end.
 */
#ifndef CAIRN_WAL_H
#define CAIRN_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define WAL_VERSION 1u
#define WAL_SEG_HDR_SIZE 32u
#define WAL_REC_HDR_SIZE 24u
/* Largest payload wal_read_segment accepts (2 GiB: twice Redis's 1 GB client
 * query-buffer limit, so any command a client can send fits).  A record is
 * never larger than this plus its header. */
#define WAL_MAX_PAYLOAD (UINT32_C(1) << 31)

/* ---- records (pure: no I/O) ---- */

/* One decoded record.  `payload` points into the buffer it was decoded from
 * (or the reader's buffer during a wal_read_segment callback) and is valid
 * only as long as that buffer is unchanged / the callback runs. */
typedef struct wal_rec {
    uint64_t lsn;
    uint32_t type;
    const char *payload;
    size_t len;
} wal_rec;

/* Append one encoded record (WAL_REC_HDR_SIZE + len bytes) to `out`.
 * Precondition: len <= WAL_MAX_PAYLOAD (asserted). */
void wal_encode(cairn_buf *out, uint64_t lsn, uint32_t type, const void *payload, size_t len);

/* Decode the record at buf[0..len).  Returns
 *   0                on success: *rec filled (rec->payload points into buf),
 *                    *rec_len = bytes the record occupies;
 *   CAIRN_EAGAIN     len < WAL_REC_HDR_SIZE, or the header is valid and buf
 *                    ends inside the payload (read more and call again);
 *   CAIRN_ECORRUPT   the header or payload checksum fails;
 *   CAIRN_ELIMIT     valid header whose payload length exceeds max_payload.
 * Does not check LSN order: that is the caller's context. */
int wal_decode(const char *buf, size_t len, size_t max_payload, wal_rec *rec, size_t *rec_len);

/* ---- segment files (thin I/O) ---- */

typedef struct wal_seg {
    uint64_t first_lsn;
    char *path; /* dir + "/" + name; owned by the array */
} wal_seg;

/* List dir's segment files (exactly "wal-" + 20 digits + ".log"; anything
 * else, including leftover ".tmp" files, is ignored), sorted by first LSN.
 * Returns 0 and a cairn_malloc'd array (NULL when n is 0) that the caller
 * frees with wal_segs_free, or -errno (-ENOENT if dir does not exist). */
int wal_list(const char *dir, wal_seg **segs, size_t *n);
void wal_segs_free(wal_seg *segs, size_t n);

/* Create a new empty segment starting at first_lsn: the header is written
 * and fsync'd under "<name>.tmp", linked to its final name (failing with
 * -EEXIST if that segment exists), and the directory fsync'd.  Returns a
 * write-only fd (O_CLOEXEC) positioned at the end of the header, owned by the
 * caller, or -errno.  If path_out is not NULL, *path_out receives the
 * segment's path (cairn_malloc'd, caller frees) on success. */
int wal_create_segment(const char *dir, uint64_t first_lsn, char **path_out);

/* Outcome of reading one segment. */
typedef struct wal_scan {
    uint64_t first_lsn; /* from the header (from the file name when the header is torn) */
    uint64_t last_lsn;  /* LSN of the last good record; first_lsn - 1 if none */
    uint64_t valid_end; /* byte offset just after the last good record */
    bool torn;          /* the file ends in an incomplete record: truncate it to valid_end */
    uint64_t bad_offset; /* on CAIRN_ECORRUPT: offset of the damaged header / record */
    char msg[256];      /* on torn or an error: "<path>: <what> at offset N" */
} wal_scan;

/* Read the segment at `path`, calling fn(arg, rec) for every good record with
 * lsn > after_lsn, in LSN order (rec is valid only during the call).  fn
 * returning < 0 stops the scan and that code is returned.  Reading is
 * buffered (64 KB, grown only to hold one large record).
 *
 * Returns 0 when the segment was read to its end: res->torn tells whether it
 * ends in a torn record (see the rules at the top), in which case the caller
 * truncates the file to res->valid_end (wal_truncate) and logs res->msg.
 * valid_end == 0 means the segment header itself is incomplete: the file
 * holds nothing and the caller deletes it.  Returns CAIRN_ECORRUPT for damage
 * that is not a torn tail (res->bad_offset, res->msg name it; records before
 * it have been delivered), or -errno on an I/O error. */
int wal_read_segment(const char *path, uint64_t after_lsn,
                     int (*fn)(void *arg, const wal_rec *rec), void *arg, wal_scan *res);

/* Truncate the file at path to `size` bytes and fsync it: after a torn tail
 * (size = valid_end), or to drop a log suffix the current primary does not
 * have (DESIGN.md invariant 6; the offset after record L is the header size
 * plus WAL_REC_HDR_SIZE + len of every record up to L).  Returns 0 or
 * -errno. */
int wal_truncate(const char *path, uint64_t size);

#endif
