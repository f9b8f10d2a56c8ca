/*
 * _floor_common.h - what every C floor of benchmarks/compare shares: the
 * clock, RSS, the ballast, the batch loop of the runner's protocol, and
 * grow_pipe for the floors that move bytes through a pipe.
 *
 * A floor defines `static int op(char **args)` (0 on success) and
 * `#include`s this file, which supplies main():
 *
 *   PROGRAM OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB [ARGS...]
 *
 * WARMUP_OPS untimed ops (or WARMUP_MS, whichever ends first), then up to OPS
 * timed ops, stopping early once MAX_MS have passed (at least one timed op
 * always runs).  BALLAST_MIB > 0: malloc + memset that much first.  ARGS are
 * the workload's arguments, handed to op() as a NULL-terminated array.
 *
 * Prints one line of JSON on stdout:
 *   {"samples_ns":[...],"rss_kib":N,"base_rss_kib":N,"hwm_kib":N,
 *    "ballast_mib":M,"failures":0}
 * and exits 1 if any op failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The pipe grown to 1 MiB (F_SETPIPE_SZ), as childproc grows a pipe that
 * bulk output keeps full: fewer wake-ups on both sides.  -DPLAIN_PIPE keeps
 * the kernel's default (64 KiB).  A refusal (the per-user pipe quota) just
 * leaves the pipe as it is.  (Inline: the floors that move no bytes
 * leave it unused.) */
static inline void grow_pipe(int fd) {
#ifndef PLAIN_PIPE
    fcntl(fd, F_SETPIPE_SZ, 1 << 20);
#else
    (void)fd;
#endif
}

static int op(char **args);

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t klen = strlen(key);
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kib = atol(line + klen + 1);
            break;
        }
    fclose(f);
    return kib;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB [ARGS...]\n", argv[0]);
        return 2;
    }
    long ops = atol(argv[1]);
    int64_t max_ns = (int64_t)(atof(argv[2]) * 1e6);
    long warmup = atol(argv[3]);
    int64_t warmup_ns = (int64_t)(atof(argv[4]) * 1e6);
    long ballast_mib = atol(argv[5]);
    char **args = argv + 6;
    if (ops < 1)
        ops = 1;

    char *ballast = NULL;
    if (ballast_mib > 0) {
        size_t n = (size_t)ballast_mib << 20;
        ballast = malloc(n);
        if (!ballast) {
            fprintf(stderr, "cannot allocate %ld MiB\n", ballast_mib);
            return 2;
        }
        memset(ballast, 1, n);
    }

    long base_rss = status_kib("VmRSS");
    long failures = 0;
    int64_t t_end = now_ns() + warmup_ns;
    for (long i = 0; i < warmup && now_ns() < t_end; i++)
        if (op(args) != 0)
            failures++;

    int64_t *samples = malloc(sizeof *samples * (size_t)ops);
    long n = 0;
    int64_t t_stop = now_ns() + max_ns;
    while (n < ops) {
        int64_t t0 = now_ns();
        int st = op(args);
        int64_t t1 = now_ns();
        if (st != 0)
            failures++;
        samples[n++] = t1 - t0;
        if (t1 >= t_stop)
            break;
    }

    printf("{\"samples_ns\":[");
    for (long i = 0; i < n; i++)
        printf(i ? ",%lld" : "%lld", (long long)samples[i]);
    printf("],\"rss_kib\":%ld,\"base_rss_kib\":%ld,\"hwm_kib\":%ld,\"ballast_mib\":%ld,\"failures\":%ld}\n",
           status_kib("VmRSS"), base_rss, status_kib("VmHWM"), ballast_mib, failures);
    fflush(stdout);
    if (ballast && ballast[((size_t)ballast_mib << 20) - 1] != 1)
        return 3;
    free(samples);
    free(ballast);
    return failures ? 1 : 0;
}
