/*
 * cp_internal.h - helpers shared between the C files of the POSIX core.
 * Not part of the cffi interface (that is childproc.h alone).
 */
#ifndef CP_INTERNAL_H
#define CP_INTERNAL_H

#include <stddef.h>
#include "childproc.h"

/* A read chunk: Node's spawnSync reads 64 KiB at a time, and its maxBuffer
 * rule ("output is not truncated, whole chunks are kept") depends on it. */
#define CP_READ_CHUNK (64 * 1024)

/* spawn_posix.c */
/* A cp_spawn_req flag of the C side only: the caller will not watch the
 * child through a pidfd, so cp_spawn need not open one (run_sync's untimed
 * runs, which end in a blocking waitpid).  Far from the public CP_SPAWN_*. */
#define CP__SPAWN_NO_PIDFD (1 << 30)
int cp__open_pidfd(int pid);               /* -1 where the kernel has none */

/* pipe_posix.c */
int cp__pipe(int fds[2]);                  /* close-on-exec from birth   */
int cp__socketpair(int fds[2]);            /* AF_UNIX stream, likewise   */
int cp__set_nonblock(int fd, int on);
void cp__close(int *fd);                   /* close and mark -1, keeps errno */
/* Read one chunk of at most CP_READ_CHUNK bytes from fd, appending to out.
 * Returns bytes read, 0 at EOF, or -errno (-EAGAIN when nothing is ready). */
long cp__read_append(int fd, cp_output *out);

#endif
