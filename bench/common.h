/*
 * common.h: the plumbing that loadgen, fanout and pusher_bench share: the clock and
 * the run's deadline, a small PRNG, signals and the open-file limit, option parsing,
 * CPU and RSS samples from /proc (also of every other process), and a microsecond latency histogram.
 *
 * Header only (static inline), so each program stays one `gcc` call on its own .c file.
 * Define PROG, the program's name for messages, before including it. net.h (sockets,
 * epoll, WebSocket, HTTP) and pusher_api.h (Pusher signing, -lcrypto) build on it.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef PROG
#error "define PROG, the program's name for messages, before including common.h"
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- process ------------------------------------------------------------- */

static uint64_t now_ns;      /* CLOCK_MONOTONIC, refreshed after every epoll_wait */
static uint64_t deadline_ns; /* the hard limit of the whole run */
static volatile sig_atomic_t stop_signal;

static inline void die(const char *what) {
    fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
    exit(1);
}

static inline uint64_t clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64: masking keys, random picks. Seeded per process by rng_seed(). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline uint32_t rng32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static inline double rng01(void) { return (double)rng32() / 4294967296.0; }

static inline void rng_seed(void) { rng_state ^= (uint64_t)getpid() << 20 ^ clock_ns(); }

static inline void on_stop_signal(int sig) { (void)sig; stop_signal = 1; }

/* SIGINT and SIGTERM end the run at the next loop pass; SIGPIPE is ignored. */
static inline void install_signals(void) {
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Raises the soft open-file limit to the hard one; returns the limit now in force. */
static inline rlim_t raise_nofile_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

/* Starts the clock and the hard deadline `secs` from now. */
static inline void deadline_start(double secs) {
    now_ns = clock_ns();
    deadline_ns = now_ns + (uint64_t)(secs * 1e9);
}

/* 1 once the deadline has passed, after saying so on stderr and as `key=1` on stdout. */
static inline int deadline_passed(const char *key, double secs) {
    if (now_ns < deadline_ns) return 0;
    fprintf(stderr, PROG ": hard deadline of %g s reached\n", secs);
    printf("%s=1\n", key);
    return 1;
}

/* An epoll_wait timeout: milliseconds from now_ns until t, rounded up, at most cap. */
static inline int ms_until_cap(uint64_t t, int cap) {
    if (t <= now_ns) return 0;
    uint64_t ms = (t - now_ns + 999999) / 1000000;
    return ms > (uint64_t)cap ? cap : (int)ms;
}

/* ---- options ------------------------------------------------------------- */

/* A number in [lo, hi] for option `name`, or exit 2. */
static inline double parse_num(const char *name, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, PROG ": %s must be a number in [%g, %g], got \"%s\"\n", name, lo, hi, s);
        exit(2);
    }
    return v;
}

/* `PROG MODE --options...`: the index of argv[1] in names[0..n), getopt set to go on
 * from argv[2]. No mode: usage on stderr, exit 2; --help or -h: usage, exit 0. */
static inline int parse_mode(int argc, char **argv, const char *const *names, int n, void (*usage)(FILE *)) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        exit(argc < 2 ? 2 : 0);
    }
    for (int i = 0; i < n; i++) {
        if (!strcmp(argv[1], names[i])) {
            optind = 2;
            return i;
        }
    }
    fprintf(stderr, PROG ": unknown mode \"%s\"\n", argv[1]);
    exit(2);
}

/* After getopt: no operand may be left. */
static inline void no_more_args(int argc, char **argv) {
    if (optind != argc) { fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]); exit(2); }
}

/* ---- CPU and memory, from /proc ------------------------------------------- */

/* CPU seconds (user + system) of a process, from /proc/PID/stat fields 14-15; -1 if it is gone. */
static inline double proc_cpu_s(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of a process in KiB; -1 if it is gone. */
static inline long proc_rss_kib(long pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) { v = strtol(line + 6, NULL, 10); break; }
    fclose(f);
    return v;
}

/* CPU seconds (user + system, and that of reaped children) of every process on the machine but
 * this one and the `nskip` in skip[], kernel threads left out: what else ran while we measured.
 * -1 if /proc cannot be read. */
static inline double others_cpu_s(const long *skip, int nskip) {
    DIR *d = opendir("/proc");
    if (!d) return -1;
    struct dirent *e;
    unsigned long long ticks = 0;
    long self = (long)getpid();
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        long pid = strtol(e->d_name, NULL, 10);
        int skipped = pid == self;
        for (int i = 0; i < nskip; i++) skipped |= pid == skip[i];
        if (skipped) continue;
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        if (!p) continue;
        unsigned long flags = 0;
        unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %lu %*u %*u %*u %*u %llu %llu %llu %llu", &flags, &ut, &st, &cut, &cst) != 5) continue;
        if (flags & 0x00200000) continue; /* PF_KTHREAD */
        ticks += ut + st + cut + cst;
    }
    closedir(d);
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static inline double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* One CPU's line of /proc/stat, in jiffies (steal is 0 on kernels that have no such column). */
struct cpu_stat { unsigned long long user, nice, system, idle, iowait, irq, softirq, steal; };

/* Parses a line of /proc/stat: the CPU number of a "cpuN ..." line, or -1 for any other line. */
static inline int cpu_stat_parse(const char *line, struct cpu_stat *s) {
    int id;
    if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') return -1;
    *s = (struct cpu_stat){0};
    if (sscanf(line + 3, "%d %llu %llu %llu %llu %llu %llu %llu %llu", &id, &s->user, &s->nice, &s->system, &s->idle,
               &s->iowait, &s->irq, &s->softirq, &s->steal) < 8)
        return -1;
    return id;
}

static inline unsigned long long cpu_stat_total(const struct cpu_stat *s) {
    return s->user + s->nice + s->system + s->idle + s->iowait + s->irq + s->softirq + s->steal;
}

/* CPU time of this process and of a watched server over a measured window. */
struct cpu_pair { double self, server; };

/* The starting point: server is -1 when pid is 0 or the process is gone. */
static inline struct cpu_pair cpu_pair_mark(long pid) {
    struct cpu_pair m = {self_cpu_s(), pid ? proc_cpu_s(pid) : -1};
    return m;
}

/* Prints PREFIX_loadgen_cpu_pct and, for a watched server, PREFIX_server_cpu_pct, as % of
 * one core over `secs` since the mark. Returns -1 if the server has gone since then. */
static inline int cpu_pair_print(const char *prefix, struct cpu_pair m, long pid, double secs) {
    if (secs <= 0) return 0;
    printf("%s_loadgen_cpu_pct=%.0f\n", prefix, 100.0 * (self_cpu_s() - m.self) / secs);
    if (pid && m.server >= 0) {
        double now = proc_cpu_s(pid);
        if (now < 0) return -1;
        printf("%s_server_cpu_pct=%.0f\n", prefix, 100.0 * (now - m.server) / secs);
    }
    return 0;
}

/* ---- latency histogram ---------------------------------------------------- */

/* Microseconds: 1 µs buckets below 100 ms, then 1 ms buckets up to 100 s, or, with
 * overflow_max set, one overflow bucket whose percentiles are the maximum. A percentile is
 * the low edge of its bucket. Zeroed (in .bss: 1.6 MB each) it is ready to use. */
#define US_HIST_FINE 100000
#define US_HIST_COARSE 100000

struct us_hist {
    int overflow_max;
    uint64_t count, max_us;
    uint64_t b[US_HIST_FINE + US_HIST_COARSE + 1];
};

/* The index of the last bucket, the one that takes everything past the range. */
static inline uint64_t us_hist_last(const struct us_hist *h) {
    return h->overflow_max ? US_HIST_FINE : US_HIST_FINE + US_HIST_COARSE;
}

static inline void us_hist_clear(struct us_hist *h) {
    int overflow_max = h->overflow_max;
    memset(h, 0, sizeof *h);
    h->overflow_max = overflow_max;
}

static inline void us_hist_add(struct us_hist *h, int64_t ns) {
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0, last = us_hist_last(h);
    if (us > h->max_us) h->max_us = us;
    uint64_t i = us < US_HIST_FINE ? us : US_HIST_FINE + (us - US_HIST_FINE) / 1000;
    h->b[i < last ? i : last]++;
    h->count++;
}

static inline uint64_t us_hist_pct(const struct us_hist *h, double p) {
    if (!h->count) return 0;
    uint64_t want = (uint64_t)(p * (double)h->count), seen = 0, last = us_hist_last(h);
    if (want >= h->count) want = h->count - 1;
    for (uint64_t i = 0; i <= last; i++) {
        seen += h->b[i];
        if (seen > want) {
            if (i == last) return h->max_us;
            return i < US_HIST_FINE ? i : US_HIST_FINE + (i - US_HIST_FINE) * 1000;
        }
    }
    return h->max_us;
}

/* PREFIX_samples, PREFIX_p50_us, _p99_us, _p999_us and _max_us lines. */
static inline void us_hist_print(const char *prefix, const struct us_hist *h) {
    printf("%s_samples=%llu\n%s_p50_us=%llu\n%s_p99_us=%llu\n%s_p999_us=%llu\n%s_max_us=%llu\n",
           prefix, (unsigned long long)h->count, prefix, (unsigned long long)us_hist_pct(h, 0.5),
           prefix, (unsigned long long)us_hist_pct(h, 0.99), prefix, (unsigned long long)us_hist_pct(h, 0.999),
           prefix, (unsigned long long)h->max_us);
}

#endif
