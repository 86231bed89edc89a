/*
 * loadgen: a WebSocket / HTTP load generator for Bridge's benchmarks.
 *
 * One thread, one epoll instance, loopback only, no dependencies beyond libc.
 * Every mode is bounded in count and in time (--deadline, default 60 s).
 *
 *   loadgen idle      --port P [--connections N] [--hold S]
 *   loadgen echo      --port P [--connections C] [--window W] [--size S] [--duration D]
 *   loadgen handshake --port P [--inflight K] [--duration D]
 *
 * Results are printed on stdout as key=value lines; progress goes to stderr.
 * Build: gcc -O2 -Wall -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { MODE_IDLE, MODE_ECHO, MODE_HANDSHAKE };
enum state { ST_FREE, ST_CONNECTING, ST_UPGRADING, ST_OPEN };

/* The key and accept value of RFC 6455 §1.3: one fixed key keeps the client
 * free of SHA-1 while the server still does the full computation. */
static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char ws_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct conn {
    int fd;
    uint32_t gen;
    uint8_t state;
    uint8_t want_out;  /* output pending, waiting for EPOLLOUT */
    uint32_t inlen;
    uint32_t outoff, outlen;
    uint32_t inflight; /* echo: messages sent, not yet echoed */
    uint32_t ring_head;
    uint64_t start_ns; /* handshake: when connect() was called */
    uint8_t *in;
    uint8_t *out;
    uint64_t *sent_ns; /* echo: send times, ring of `window` entries */
};

static struct {
    enum mode mode;
    const char *host;
    int port;
    const char *path;
    long connections;
    long window;
    long size;
    double duration;
    double warmup;
    double hold;
    double deadline;
    long inflight;
    int src_first;   /* source addresses start at 127.0.0.<src_first> */
    int src_count;   /* rotate over this many source addresses (0 = by per_src) */
    long per_src;    /* idle: connections per source address */
    int quiet;
    long watch_pid;  /* report this process's CPU use over the measured window */
    int touch;       /* idle: exchange one echo per connection before it counts as up */
} opt = {
    .host = "127.0.0.1", .port = 0, .path = "/echo", .connections = 0, .window = 1,
    .size = 32, .duration = 10, .warmup = 1, .hold = 10, .deadline = 60, .inflight = 0,
    .src_first = 2, .src_count = 0, .per_src = 5000,
};

static int epfd = -1;
static struct conn *conns;
static long nconns;
static uint32_t incap, outcap;
static uint64_t now_ns, deadline_ns;
static volatile sig_atomic_t stop_signal;
static struct sockaddr_in dst;
static char request[512];
static size_t request_len;
static uint8_t *payload_template;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Counters. */
static long n_awaiting_echo;
static long n_open, n_failed, n_dropped, n_connecting, n_started, n_errors, n_pings;
static uint64_t n_msgs_total;

/* Latency histogram: 1 µs buckets up to 100 ms, plus one overflow bucket. */
#define HIST_BUCKETS 100000
static uint64_t hist[HIST_BUCKETS + 1];
static uint64_t hist_count, hist_max_us;
static int recording;

static uint64_t clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rng32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}

static void hist_add(uint64_t ns) {
    uint64_t us = ns / 1000;
    if (us > hist_max_us) hist_max_us = us;
    hist[us < HIST_BUCKETS ? us : HIST_BUCKETS]++;
    hist_count++;
}

static uint64_t hist_pct(double p) {
    if (hist_count == 0) return 0;
    uint64_t want = (uint64_t)(p * (double)hist_count);
    if (want >= hist_count) want = hist_count - 1;
    uint64_t seen = 0;
    for (int i = 0; i <= HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen > want) return i < HIST_BUCKETS ? (uint64_t)i : hist_max_us;
    }
    return hist_max_us;
}

/* CPU seconds (user + system) of a process, from /proc/PID/stat fields 14-15. */
static double proc_cpu_s(long pid) {
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

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double cpu_mark_self, cpu_mark_server;

static void cpu_mark(void) {
    cpu_mark_self = self_cpu_s();
    cpu_mark_server = opt.watch_pid ? proc_cpu_s(opt.watch_pid) : -1;
}

static void cpu_report(const char *prefix, double secs) {
    if (secs <= 0) return;
    printf("%s_loadgen_cpu_pct=%.0f\n", prefix, 100.0 * (self_cpu_s() - cpu_mark_self) / secs);
    if (opt.watch_pid && cpu_mark_server >= 0) {
        double now = proc_cpu_s(opt.watch_pid);
        if (now >= 0) printf("%s_server_cpu_pct=%.0f\n", prefix, 100.0 * (now - cpu_mark_server) / secs);
    }
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_signal(int sig) { (void)sig; stop_signal = 1; }

static void usage(FILE *f) {
    fprintf(f,
        "usage: loadgen idle|echo|handshake --port P [options]\n"
        "  --host 127.0.0.1       server address (loopback only)\n"
        "  --port P               server port (required)\n"
        "  --path /echo           WebSocket path\n"
        "  --connections N        idle: connections to hold (1000); echo: connections (1)\n"
        "  --window W             echo: messages in flight per connection (1)\n"
        "  --size S               echo: payload bytes per message (32)\n"
        "  --duration D           echo/handshake: measured seconds (10)\n"
        "  --warmup S             echo/handshake: unmeasured seconds first (1)\n"
        "  --hold S               idle: seconds to hold once all are up (10)\n"
        "  --inflight K           connects/handshakes in flight (idle 256, handshake 32)\n"
        "  --src-first X          first source address 127.0.0.X (2)\n"
        "  --src-count N          source addresses to rotate over (idle: N/per-src; else 8)\n"
        "  --per-src N            idle: connections per source address (5000)\n"
        "  --touch                idle: send one --size message per connection and await its echo\n"
        "  --deadline S           hard limit on the whole run (60)\n"
        "  --watch-pid PID        echo/handshake: report that process's CPU use while measuring\n"
        "  --quiet                no progress lines\n");
}

static double parse_num(const char *name, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "loadgen: %s must be a number in [%g, %g], got \"%s\"\n", name, lo, hi, s);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv) {
    static const struct option longopts[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"path", 1, 0, 'P'},
        {"connections", 1, 0, 'c'}, {"window", 1, 0, 'w'}, {"size", 1, 0, 's'},
        {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'W'}, {"hold", 1, 0, 'H'},
        {"inflight", 1, 0, 'k'}, {"src-first", 1, 0, 'f'}, {"src-count", 1, 0, 'n'},
        {"per-src", 1, 0, 'e'}, {"deadline", 1, 0, 'D'}, {"quiet", 0, 0, 'q'},
        {"watch-pid", 1, 0, 'x'}, {"touch", 0, 0, 't'}, {"help", 0, 0, '?'}, {0, 0, 0, 0},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        exit(argc < 2 ? 2 : 0);
    }
    if (!strcmp(argv[1], "idle")) opt.mode = MODE_IDLE;
    else if (!strcmp(argv[1], "echo")) opt.mode = MODE_ECHO;
    else if (!strcmp(argv[1], "handshake")) opt.mode = MODE_HANDSHAKE;
    else { fprintf(stderr, "loadgen: unknown mode \"%s\"\n", argv[1]); exit(2); }
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = (int)parse_num("--port", optarg, 1, 65535); break;
        case 'P': opt.path = optarg; break;
        case 'c': opt.connections = (long)parse_num("--connections", optarg, 1, 1000000); break;
        case 'w': opt.window = (long)parse_num("--window", optarg, 1, 4096); break;
        case 's': opt.size = (long)parse_num("--size", optarg, 0, 1 << 20); break;
        case 'd': opt.duration = parse_num("--duration", optarg, 0.1, 3600); break;
        case 'W': opt.warmup = parse_num("--warmup", optarg, 0, 3600); break;
        case 'H': opt.hold = parse_num("--hold", optarg, 0, 3600); break;
        case 'k': opt.inflight = (long)parse_num("--inflight", optarg, 1, 100000); break;
        case 'f': opt.src_first = (int)parse_num("--src-first", optarg, 1, 254); break;
        case 'n': opt.src_count = (int)parse_num("--src-count", optarg, 1, 254); break;
        case 'e': opt.per_src = (long)parse_num("--per-src", optarg, 1, 28000); break;
        case 'D': opt.deadline = parse_num("--deadline", optarg, 0.1, 3600); break;
        case 'q': opt.quiet = 1; break;
        case 't': opt.touch = 1; break;
        case 'x': opt.watch_pid = (long)parse_num("--watch-pid", optarg, 1, 1 << 30); break;
        default: usage(stderr); exit(2);
        }
    }
    if (optind != argc) { fprintf(stderr, "loadgen: unexpected argument \"%s\"\n", argv[optind]); exit(2); }
    if (!opt.port) { fprintf(stderr, "loadgen: --port is required\n"); exit(2); }
    if (!opt.connections) opt.connections = opt.mode == MODE_IDLE ? 1000 : 1;
    if (!opt.inflight) opt.inflight = opt.mode == MODE_HANDSHAKE ? 32 : 256;
    if (!opt.src_count)
        opt.src_count = opt.mode == MODE_IDLE ? (int)((opt.connections + opt.per_src - 1) / opt.per_src) : 8;
    if (opt.src_first + opt.src_count - 1 > 254) { fprintf(stderr, "loadgen: source addresses past 127.0.0.254\n"); exit(2); }
    if (inet_pton(AF_INET, opt.host, &dst.sin_addr) != 1 || (ntohl(dst.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: --host must be a 127.x.x.x address, got \"%s\"\n", opt.host);
        exit(2);
    }
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)opt.port);
}

/* ---- buffers and frames ------------------------------------------------ */

static int queue_out(struct conn *c, const void *p, size_t n) {
    if (c->outlen + n > outcap) {
        if (c->outoff) {
            memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
            c->outlen -= c->outoff;
            c->outoff = 0;
        }
        if (c->outlen + n > outcap) return -1;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += (uint32_t)n;
    return 0;
}

/* A client frame: FIN, opcode, masked payload (RFC 6455 §5.2, §5.3). */
static int queue_frame(struct conn *c, int opcode, const uint8_t *payload, size_t len) {
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t key = rng32();
    uint8_t m[4];
    memcpy(m, &key, 4);
    memcpy(hdr + h, m, 4);
    h += 4;
    if (c->outlen + h + len > outcap && c->outoff) {
        memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
        c->outlen -= c->outoff;
        c->outoff = 0;
    }
    if (c->outlen + h + len > outcap) return -1;
    memcpy(c->out + c->outlen, hdr, h);
    uint8_t *dstp = c->out + c->outlen + h;
    for (size_t i = 0; i < len; i++) dstp[i] = payload[i] ^ m[i & 3];
    c->outlen += (uint32_t)(h + len);
    return 0;
}

/* ---- connection lifecycle ---------------------------------------------- */

static uint64_t tag(struct conn *c) { return ((uint64_t)c->gen << 32) | (uint64_t)(c - conns); }

static void conn_close(struct conn *c) {
    if (c->state == ST_FREE) return;
    if (c->state == ST_OPEN) n_open--;
    else n_connecting--;
    if (opt.mode == MODE_IDLE) n_awaiting_echo -= c->inflight;
    /* SO_LINGER 0 was set at creation: close sends RST, leaving no TIME_WAIT. */
    close(c->fd);
    c->fd = -1;
    c->state = ST_FREE;
    c->gen++;
    c->inlen = c->outoff = c->outlen = c->inflight = c->ring_head = 0;
    c->want_out = 0;
}

static void conn_fail(struct conn *c, const char *why) {
    if (c->state == ST_OPEN) n_dropped++;
    else n_failed++;
    if (!opt.quiet && (n_failed + n_dropped) <= 5)
        fprintf(stderr, "loadgen: connection %ld: %s\n", (long)(c - conns), why);
    conn_close(c);
}

static int src_addr_for(long index) {
    if (opt.mode == MODE_IDLE) return opt.src_first + (int)((index / opt.per_src) % opt.src_count);
    return opt.src_first + (int)(index % opt.src_count);
}

static int conn_start(struct conn *c, long index) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (!opt.quiet) fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
        n_failed++;
        return -1;
    }
    int one = 1;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Pick the port at connect() time, by the whole 4-tuple: lets each source
     * address carry far more than one ephemeral range's worth of connections. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)src_addr_for(index));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        if (!opt.quiet) fprintf(stderr, "loadgen: bind: %s\n", strerror(errno));
        close(fd);
        n_failed++;
        return -1;
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->start_ns = now_ns;
    n_connecting++;
    n_started++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = tag(c)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        conn_fail(c, strerror(errno));
        return -1;
    }
    return 0;
}

static void conn_flush(struct conn *c) {
    while (c->outoff < c->outlen) {
        ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
        if (n > 0) { c->outoff += (uint32_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) { c->want_out = 1; return; }
        conn_fail(c, n < 0 ? strerror(errno) : "write returned 0");
        return;
    }
    c->outoff = c->outlen = 0;
    c->want_out = 0;
}

static void echo_send(struct conn *c) {
    if (queue_frame(c, 0x1, payload_template, (size_t)opt.size) < 0) {
        n_errors++;
        return;
    }
    c->sent_ns[(c->ring_head + c->inflight) % (uint32_t)opt.window] = now_ns;
    c->inflight++;
}

static void on_open(struct conn *c);

/* Returns bytes consumed, 0 if the head is incomplete, -1 on a bad response. */
static long parse_upgrade(struct conn *c) {
    uint8_t *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end) return c->inlen >= incap ? -1 : 0;
    long headlen = end - c->in + 4;
    if (c->inlen < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0) return -1;
    int accept_ok = 0;
    char *line = memchr(c->in, '\n', (size_t)headlen);
    while (line && (uint8_t *)line < end) {
        line++;
        char *eol = memchr(line, '\r', (size_t)(end + 2 - (uint8_t *)line));
        if (!eol) break;
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && colon - line == 20 && !strncasecmp(line, "sec-websocket-accept", 20)) {
            char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            accept_ok = (size_t)(ve - v) == strlen(ws_accept) && !memcmp(v, ws_accept, strlen(ws_accept));
        }
        line = memchr(line, '\n', (size_t)(end + 2 - (uint8_t *)line));
    }
    return accept_ok ? headlen : -1;
}

/* Parses server frames in c->in; returns -1 if the connection must go. */
static int parse_frames(struct conn *c) {
    uint32_t pos = 0;
    while (c->inlen - pos >= 2) {
        uint8_t *p = c->in + pos;
        int fin = p[0] & 0x80, op = p[0] & 0x0f;
        if (p[1] & 0x80) { conn_fail(c, "server frame is masked"); return -1; } /* RFC 6455 §5.1 */
        uint64_t len = p[1] & 0x7f;
        uint32_t h = 2;
        if (len == 126) {
            if (c->inlen - pos < 4) break;
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (c->inlen - pos < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (len + h > incap) { conn_fail(c, "server frame larger than buffer"); return -1; }
        if (c->inlen - pos < h + len) break;
        uint8_t *pl = p + h;
        switch (op) {
        case 0x9: /* ping → pong with the same payload, RFC 6455 §5.5.3 */
            n_pings++;
            if (queue_frame(c, 0xA, pl, (size_t)len) < 0) n_errors++;
            break;
        case 0xA:
            break;
        case 0x8:
            conn_fail(c, "server sent close");
            return -1;
        case 0x1:
        case 0x2:
            if (!fin || len != (uint64_t)opt.size || c->inflight == 0 ||
                (opt.size && memcmp(pl, payload_template, (size_t)len) != 0)) {
                n_errors++;
                break;
            }
            if (opt.mode == MODE_IDLE) { /* the --touch echo */
                c->inflight--;
                n_awaiting_echo--;
                break;
            }
            if (recording) {
                hist_add(now_ns - c->sent_ns[c->ring_head]);
                n_msgs_total++;
            }
            c->ring_head = (c->ring_head + 1) % (uint32_t)opt.window;
            c->inflight--;
            if (!stop_signal) echo_send(c);
            break;
        default:
            n_errors++;
        }
        pos += h + (uint32_t)len;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->inlen - pos);
        c->inlen -= pos;
    }
    return 0;
}

static void on_readable(struct conn *c) {
    /* Edge-triggered: read until a short read. Bounded because the server only
     * ever sends what we asked for (echoes, one 101) plus its pings. */
    for (;;) {
        if (c->inlen >= incap) { conn_fail(c, "input buffer full"); return; }
        size_t want = incap - c->inlen;
        ssize_t n = read(c->fd, c->in + c->inlen, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) { conn_fail(c, n == 0 ? "server closed the connection" : strerror(errno)); return; }
        c->inlen += (uint32_t)n;
        if (c->state == ST_UPGRADING) {
            long used = parse_upgrade(c);
            if (used < 0) {
                char buf[64];
                size_t l = c->inlen < 40 ? c->inlen : 40;
                memcpy(buf, c->in, l);
                buf[l] = 0;
                for (size_t i = 0; i < l; i++) if (buf[i] == '\r' || buf[i] == '\n') buf[i] = ' ';
                conn_fail(c, buf[0] ? buf : "bad upgrade response");
                return;
            }
            if (used == 0) continue;
            memmove(c->in, c->in + used, c->inlen - (uint32_t)used);
            c->inlen -= (uint32_t)used;
            on_open(c);
            if (c->state != ST_OPEN) return;
        }
        if (c->state == ST_OPEN && parse_frames(c) < 0) return;
        if ((size_t)n < want) break; /* short read: the socket is drained */
    }
    if (c->state != ST_FREE && c->outlen > c->outoff) conn_flush(c);
}

static void on_writable(struct conn *c) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) { conn_fail(c, strerror(err)); return; }
        c->state = ST_UPGRADING;
        if (queue_out(c, request, request_len) < 0) { conn_fail(c, "output buffer full"); return; }
    }
    if (c->outlen > c->outoff) conn_flush(c);
}

/* ---- modes ------------------------------------------------------------- */

static long next_index;   /* next connection to start (idle/echo: also its slot) */
static long n_handshakes; /* handshake mode: completed while recording */
static uint64_t measure_start_ns, measure_end_ns;

static void on_open(struct conn *c) {
    n_connecting--;
    n_open++;
    c->state = ST_OPEN;
    if (opt.mode == MODE_IDLE && opt.touch) {
        echo_send(c);
        n_awaiting_echo++;
    }
    if (opt.mode == MODE_HANDSHAKE) {
        if (recording) {
            n_handshakes++;
            hist_add(now_ns - c->start_ns);
        }
        conn_close(c);
    }
}

static void start_more(void) {
    if (opt.mode == MODE_HANDSHAKE) {
        if (stop_signal || now_ns >= measure_end_ns) return;
        for (long i = 0; i < nconns; i++)
            if (conns[i].state == ST_FREE) conn_start(&conns[i], next_index++);
        return;
    }
    while (next_index < opt.connections && n_connecting < opt.inflight && !stop_signal) {
        long i = next_index++;
        conn_start(&conns[i], i);
    }
}

static int run_loop_once(int timeout_ms) {
    static struct epoll_event evs[1024];
    int n = epoll_wait(epfd, evs, 1024, timeout_ms);
    now_ns = clock_ns();
    if (n < 0) {
        if (errno == EINTR) return 0;
        die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
        uint32_t idx = (uint32_t)evs[i].data.u64, gen = (uint32_t)(evs[i].data.u64 >> 32);
        struct conn *c = &conns[idx];
        if (c->gen != gen || c->state == ST_FREE) continue;
        uint32_t e = evs[i].events;
        if (e & EPOLLOUT) on_writable(c);
        if (c->gen != gen || c->state == ST_FREE) continue;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            if (c->state == ST_CONNECTING && (e & (EPOLLHUP | EPOLLERR))) {
                int err = 0;
                socklen_t l = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                conn_fail(c, err ? strerror(err) : "connect failed");
                continue;
            }
            if (c->state != ST_CONNECTING) on_readable(c);
        }
    }
    return n;
}

static int ms_until(uint64_t t) {
    if (t <= now_ns) return 0;
    uint64_t ms = (t - now_ns + 999999) / 1000000;
    return ms > 1000 ? 1000 : (int)ms;
}

static int past_deadline(void) {
    if (now_ns < deadline_ns) return 0;
    fprintf(stderr, "loadgen: hard deadline of %.1f s reached\n", opt.deadline);
    printf("deadline_exceeded=1\n");
    return 1;
}

static int run_idle(void) {
    uint64_t next_report = now_ns + 1000000000ull;
    int all_up = 0;
    uint64_t hold_end = 0;
    int rc = 0;
    for (;;) {
        start_more();
        if (!all_up && next_index >= opt.connections && n_connecting == 0 && n_awaiting_echo == 0) {
            all_up = 1;
            hold_end = now_ns + (uint64_t)(opt.hold * 1e9);
            printf("idle_connections=%ld\nidle_failed=%ld\n", n_open, n_failed);
            fflush(stdout);
        }
        if (stop_signal || (all_up && now_ns >= hold_end)) break;
        if (past_deadline()) { rc = 3; break; }
        run_loop_once(all_up ? ms_until(hold_end) : 100);
        if (!opt.quiet && now_ns >= next_report) {
            fprintf(stderr, "idle: open=%ld connecting=%ld failed=%ld dropped=%ld pings=%ld\n",
                    n_open, n_connecting, n_failed, n_dropped, n_pings);
            next_report = now_ns + 1000000000ull;
        }
    }
    printf("idle_open_at_end=%ld\nidle_dropped=%ld\nidle_pings_answered=%ld\n", n_open, n_dropped, n_pings);
    return rc;
}

static int run_echo(void) {
    int rc = 0;
    /* Phase 1: open every connection. */
    while (n_open + n_failed < opt.connections && !stop_signal) {
        start_more();
        if (past_deadline()) return 3;
        run_loop_once(100);
    }
    if (n_failed) { fprintf(stderr, "loadgen: %ld connections failed\n", n_failed); printf("echo_failed=%ld\n", n_failed); return 1; }
    /* Phase 2: fill every window; echoes refill them. */
    for (long i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        for (long w = 0; w < opt.window; w++) echo_send(c);
        conn_flush(c);
    }
    uint64_t warm_end = now_ns + (uint64_t)(opt.warmup * 1e9);
    measure_end_ns = warm_end + (uint64_t)(opt.duration * 1e9);
    while (!stop_signal && now_ns < measure_end_ns) {
        if (past_deadline()) { rc = 3; break; }
        if (!recording && now_ns >= warm_end) { recording = 1; measure_start_ns = now_ns; cpu_mark(); }
        run_loop_once(ms_until(recording ? measure_end_ns : warm_end));
        if (n_open < opt.connections) { fprintf(stderr, "loadgen: connection lost during echo\n"); rc = 1; break; }
    }
    if (!recording) measure_start_ns = now_ns;
    recording = 0;
    double secs = (double)(now_ns - measure_start_ns) / 1e9;
    printf("echo_connections=%ld\necho_window=%ld\necho_size=%ld\n", opt.connections, opt.window, opt.size);
    printf("echo_seconds=%.3f\necho_msgs=%llu\n", secs, (unsigned long long)n_msgs_total);
    printf("echo_msgs_per_sec=%.0f\n", secs > 0 ? (double)n_msgs_total / secs : 0.0);
    printf("echo_latency_p50_us=%llu\necho_latency_p99_us=%llu\necho_latency_p999_us=%llu\necho_latency_max_us=%llu\n",
           (unsigned long long)hist_pct(0.50), (unsigned long long)hist_pct(0.99),
           (unsigned long long)hist_pct(0.999), (unsigned long long)hist_max_us);
    printf("echo_errors=%ld\necho_dropped=%ld\n", n_errors, n_dropped);
    cpu_report("echo", secs);
    return rc ? rc : (n_errors ? 1 : 0);
}

static int run_handshake(void) {
    int rc = 0;
    uint64_t warm_end = now_ns + (uint64_t)(opt.warmup * 1e9);
    measure_end_ns = warm_end + (uint64_t)(opt.duration * 1e9);
    long failed_at_start = 0;
    while (!stop_signal && now_ns < measure_end_ns) {
        if (!recording && now_ns >= warm_end) {
            recording = 1;
            measure_start_ns = now_ns;
            failed_at_start = n_failed;
            cpu_mark();
        }
        start_more();
        if (past_deadline()) { rc = 3; break; }
        run_loop_once(ms_until(recording ? measure_end_ns : warm_end));
        if (n_failed > 1000 && n_failed > 10 * (n_handshakes + 1)) {
            fprintf(stderr, "loadgen: too many failures, giving up\n");
            rc = 1;
            break;
        }
    }
    if (!recording) measure_start_ns = now_ns;
    recording = 0;
    double secs = (double)(now_ns - measure_start_ns) / 1e9;
    printf("handshake_inflight=%ld\nhandshake_seconds=%.3f\nhandshakes=%ld\n", opt.inflight, secs, n_handshakes);
    printf("handshakes_per_sec=%.0f\n", secs > 0 ? (double)n_handshakes / secs : 0.0);
    printf("handshake_latency_p50_us=%llu\nhandshake_latency_p99_us=%llu\n",
           (unsigned long long)hist_pct(0.50), (unsigned long long)hist_pct(0.99));
    printf("handshake_failed=%ld\n", n_failed - failed_at_start);
    cpu_report("handshake", secs);
    return rc;
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    nconns = opt.mode == MODE_HANDSHAKE ? opt.inflight : opt.connections;
    if ((rlim_t)nconns + 16 > rl.rlim_cur) {
        fprintf(stderr, "loadgen: %ld connections need more than the open-file limit %llu; use several processes\n",
                nconns, (unsigned long long)rl.rlim_cur);
        return 2;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    request_len = (size_t)snprintf(request, sizeof request,
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
        opt.path, opt.host, opt.port, ws_key);
    if (request_len >= sizeof request) { fprintf(stderr, "loadgen: --path too long\n"); return 2; }

    uint32_t frame_max = (uint32_t)opt.size + 14;
    if (opt.mode == MODE_ECHO) {
        incap = frame_max * (uint32_t)opt.window + 4096;
        outcap = frame_max * (uint32_t)opt.window * 2 + 4096;
    } else {
        incap = frame_max + 2048;
        outcap = frame_max + 1024;
    }
    payload_template = malloc((size_t)opt.size + 1);
    for (long i = 0; i < opt.size; i++) payload_template[i] = (uint8_t)('a' + i % 26);
    rng_state ^= (uint64_t)getpid() << 20 ^ clock_ns();

    conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) die("calloc");
    for (long i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].in = malloc(incap);
        conns[i].out = malloc(outcap);
        if (opt.mode == MODE_ECHO || opt.touch) conns[i].sent_ns = calloc((size_t)opt.window, sizeof(uint64_t));
        if (!conns[i].in || !conns[i].out) die("malloc");
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");

    now_ns = clock_ns();
    deadline_ns = now_ns + (uint64_t)(opt.deadline * 1e9);
    int rc;
    switch (opt.mode) {
    case MODE_IDLE: rc = run_idle(); break;
    case MODE_ECHO: rc = run_echo(); break;
    default: rc = run_handshake(); break;
    }
    for (long i = 0; i < nconns; i++) if (conns[i].state != ST_FREE) conn_close(&conns[i]);
    return rc;
}
