/*
 * webhooks_bench: webhook delivery benchmark for Bridge.
 *
 * One process, one thread, one epoll instance, loopback only; it is both ends of
 * the webhook path:
 *   - the event generator: C WebSocket clients, client k subscribed to
 *     `private-bench-<k>` (signed auth), sending client events
 *     {"event":"client-x","channel":"private-bench-<k>","data":{"t":<ns>,"i":<seq>}}
 *     at a steady open-loop rate (a timerfd schedule, round robin over clients);
 *   - the receiver: an HTTP/1.1 keep-alive server answering every request with
 *     `200 OK, Content-Length: 0`. It checks each webhook's X-Pusher-Signature,
 *     records X-Bridge-Webhook-Id in a bitmap (duplicates, gaps), counts
 *     `"name":"client_event"` per body, and takes each event's t (CLOCK_MONOTONIC
 *     at its scheduled send) and i (its sequence number: a bitmap finds missing and
 *     duplicate events) out of the event's data string.
 *
 * Rates are stepped (--rates); after each step every client sends pusher:ping
 * (the pong means the server has read all its events), then the tool waits
 * until every accepted event has arrived and GET /webhooks/status shows nothing
 * pending, within --drain seconds. Server CPU comes from /proc/PID/stat.
 *
 *   webhooks_bench run --port P [--recv-port R | --no-webhooks] [--clients 16]
 *                      [--rates 250,500,...] [--step 3] [--drain 5] [--refine] [--watch-pid PID] ...
 *   webhooks_bench free-port            prints a free loopback TCP port
 *   webhooks_bench fsync-probe --dir D  times 128-byte appends + fdatasync in D
 *
 * Results are key=value lines on stdout; progress and problems go to stderr.
 * Exit status: 0 all delivered and checked, 4 something missing, duplicated or
 * malformed, 3 the deadline hit, 1 setup failed, 2 bad arguments.
 * Build: gcc -O2 -Wall -Wextra -o webhooks_bench webhooks_bench.c -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* ---- options ------------------------------------------------------------ */

static struct {
    const char *host;
    int port, recv_port;
    const char *key, *secret;
    int clients;
    const char *rates;
    double step, drain, final_wait, deadline;
    long watch_pid;
    int server_cpu, client_cpu;
    int no_webhooks;
    double sustain_p99_ms, sustain_tail_ms;
    int keep_going; /* do not stop the ladder at the first unsustained step */
    int refine;     /* after the first unsustained step, drain and try the midpoint rate */
    long tick_us;
    long out_cap;
    const char *dir;
    long count;
    int quiet;
} opt = {
    .host = "127.0.0.1", .key = "app-key", .secret = "app-secret", .clients = 16,
    .rates = "250,500,1000,2000,4000,8000,16000,32000", .step = 3, .drain = 5, .final_wait = 15,
    .deadline = 120, .server_cpu = -1, .client_cpu = -1, .sustain_p99_ms = 250, .sustain_tail_ms = 100, .tick_us = 200,
    .out_cap = 1 << 20, .count = 200,
};

/* ---- time, exits ---------------------------------------------------------- */

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fatal(const char *what) {
    fprintf(stderr, "webhooks_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    if (opt.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("webhooks_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static volatile sig_atomic_t got_signal;
static void on_signal(int s) { (void)s; got_signal = 1; }

static uint64_t start_ns, hard_deadline_ns;
static int deadline_hit;

static int out_of_time(void) {
    if (got_signal || mono_ns() >= hard_deadline_ns) { deadline_hit = 1; return 1; }
    return 0;
}

/* ---- growable byte buffer: live bytes are [off, len) ---------------------- */

struct buf { char *p; size_t off, len, cap; };

static void buf_room(struct buf *b, size_t more) {
    if (b->off && b->off == b->len) b->off = b->len = 0;
    if (b->len + more <= b->cap) return;
    if (b->off) { /* slide the live bytes down before growing */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap) return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    if (cap > (64u << 20)) { fprintf(stderr, "webhooks_bench: a buffer passed 64 MiB\n"); exit(1); }
    char *p = realloc(b->p, cap);
    if (!p) fatal("realloc");
    b->p = p;
    b->cap = cap;
}

static void buf_put(struct buf *b, const void *d, size_t n) {
    buf_room(b, n);
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static size_t buf_live(const struct buf *b) { return b->len - b->off; }

/* ---- HMAC-SHA256 with the app secret, keyed once ------------------------------ */

static EVP_MD *sha256;
static EVP_MD_CTX *hm_inner, *hm_outer, *hm_work;

static void hmac_setup(const char *secret) {
    unsigned char k[64] = {0}, pad[64];
    size_t kl = strlen(secret);
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha256) { fprintf(stderr, "webhooks_bench: no SHA256 in libcrypto\n"); exit(1); }
    if (kl > 64) { unsigned int l; EVP_Digest(secret, kl, k, &l, sha256, NULL); }
    else memcpy(k, secret, kl);
    hm_inner = EVP_MD_CTX_new();
    hm_outer = EVP_MD_CTX_new();
    hm_work = EVP_MD_CTX_new();
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    EVP_DigestInit_ex(hm_inner, sha256, NULL);
    EVP_DigestUpdate(hm_inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    EVP_DigestInit_ex(hm_outer, sha256, NULL);
    EVP_DigestUpdate(hm_outer, pad, 64);
}

static void hmac_hex(const void *msg, size_t n, char out[65]) {
    static const char hx[] = "0123456789abcdef";
    unsigned char d[32];
    unsigned int l;
    EVP_MD_CTX_copy_ex(hm_work, hm_inner);
    EVP_DigestUpdate(hm_work, msg, n);
    EVP_DigestFinal_ex(hm_work, d, &l);
    EVP_MD_CTX_copy_ex(hm_work, hm_outer);
    EVP_DigestUpdate(hm_work, d, 32);
    EVP_DigestFinal_ex(hm_work, d, &l);
    for (int i = 0; i < 32; i++) { out[2 * i] = hx[d[i] >> 4]; out[2 * i + 1] = hx[d[i] & 15]; }
    out[64] = 0;
}

/* ---- latency histogram: exact below 128 µs, then 64 buckets per power of two ------ */

#define LH_BUCKETS (128 + 40 * 64)
struct lhist { uint64_t n[LH_BUCKETS]; uint64_t count, max; };

static int lh_index(uint64_t us) {
    if (us < 128) return (int)us;
    int msb = 63 - __builtin_clzll(us), shift = msb - 6;
    int i = 128 + (shift - 1) * 64 + (int)((us >> shift) - 64);
    return i < LH_BUCKETS ? i : LH_BUCKETS - 1;
}

static uint64_t lh_value(int i) { /* the middle of bucket i */
    if (i < 128) return (uint64_t)i;
    int shift = (i - 128) / 64 + 1;
    uint64_t m = (uint64_t)((i - 128) % 64 + 64);
    return (m << shift) + ((1ull << shift) >> 1);
}

static void lh_add(struct lhist *h, int64_t ns) {
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
    h->n[lh_index(us)]++;
    h->count++;
    if (us > h->max) h->max = us;
}

static uint64_t lh_pct(const struct lhist *h, double p) {
    if (!h->count) return 0;
    uint64_t rank = (uint64_t)(p * (double)h->count), seen = 0;
    if (rank >= h->count) return h->max;
    for (int i = 0; i < LH_BUCKETS; i++) {
        seen += h->n[i];
        if (seen > rank) { uint64_t v = lh_value(i); return v > h->max ? h->max : v; }
    }
    return h->max;
}

/* ---- CPU accounting ---------------------------------------------------------------- */

static double proc_cpu_s(long pid) { /* utime + stime of a process, seconds; -1 when gone */
    char path[64], b[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return -1;
    b[n] = 0;
    char *p = strrchr(b, ')');
    if (!p) return -1;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    unsigned long long ut, st;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kib(long pid) {
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) { v = strtol(line + 6, NULL, 10); break; }
    fclose(f);
    return v;
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* One CPU's jiffies from /proc/stat: j[0] busy (all but idle, iowait and steal), j[1] irq +
 * softirq (loopback TCP work shows there), j[2] steal, j[3] total. */
static int core_jiffies(int cpu, unsigned long long j[4]) {
    char want[24], line[512];
    if (cpu < 0) return -1;
    int wl = snprintf(want, sizeof want, "cpu%d ", cpu), ok = -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, (size_t)wl)) continue;
        unsigned long long v[8] = {0};
        if (sscanf(line + wl, "%llu %llu %llu %llu %llu %llu %llu %llu", v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7) >= 5) {
            j[3] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
            j[0] = j[3] - v[3] - v[4] - v[7];
            j[1] = v[5] + v[6];
            j[2] = v[7];
            ok = 0;
        }
        break;
    }
    fclose(f);
    return ok;
}

/* The server's CPU time (all its threads, exited ones included) in seconds: its process CPU
 * clock, ns resolution; /proc/PID/stat (10 ms ticks) if that clock cannot be read. */
static clockid_t server_clock;
static int server_clock_ok;

static double server_cpu_s(void) {
    if (!opt.watch_pid) return -1;
    struct timespec ts;
    if (server_clock_ok && clock_gettime(server_clock, &ts) == 0) return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (server_clock_ok && proc_cpu_s(opt.watch_pid) < 0) return -1; /* gone */
    return proc_cpu_s(opt.watch_pid);
}

struct cpu_snap { uint64_t t; double server, self; unsigned long long sj[4], cj[4]; int s_ok, c_ok; };

static struct cpu_snap cpu_snap(void) {
    struct cpu_snap s = {0};
    s.t = mono_ns();
    s.server = server_cpu_s();
    s.self = self_cpu_s();
    s.s_ok = core_jiffies(opt.server_cpu, s.sj) == 0;
    s.c_ok = core_jiffies(opt.client_cpu, s.cj) == 0;
    return s;
}

/* ---- sockets ------------------------------------------------------------------------- */

static int epfd, timer_fd;
static struct sockaddr_in server_addr;

enum { T_WS = 1, T_STATUS, T_LISTEN, T_RECV, T_TIMER };

struct tagged { int type; };

static void ep_set(int fd, void *ptr, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    if (epoll_ctl(epfd, op, fd, &ev) < 0) fatal("epoll_ctl");
}

static int tcp_connect(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fatal("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Writes what it can of b; 1 if bytes are left (wait for EPOLLOUT), -1 on error. */
static int flush_buf(int fd, struct buf *b) {
    while (buf_live(b)) {
        ssize_t n = write(fd, b->p + b->off, buf_live(b));
        if (n > 0) { b->off += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 1;
        return -1;
    }
    b->off = b->len = 0;
    return 0;
}

/* Reads once into b; bytes read, 0 at EOF, -1 on error, -2 when nothing was there. */
static ssize_t fill_buf(int fd, struct buf *b) {
    buf_room(b, 65536);
    ssize_t n = read(fd, b->p + b->len, b->cap - b->len);
    if (n > 0) { b->len += (size_t)n; return n; }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -2;
    return n < 0 ? -1 : 0;
}

/* ---- counters ------------------------------------------------------------------------- */

static uint64_t next_seq;          /* event sequence numbers handed out */
static uint8_t *seq_seen;          /* bitmap over sequence numbers */
static uint64_t seq_limit;
static uint8_t *id_seen;           /* bitmap over webhook ids */
#define ID_LIMIT (1ull << 24)
static uint64_t id_min = UINT64_MAX, id_max, id_over_limit;

static uint64_t n_sent, n_skipped, n_refused, n_delivered, n_dup_events, n_unknown_seq;
static uint64_t n_webhooks, n_retries, n_dup_ids, n_bad_sig, n_malformed, n_bad_channel, n_events_in_bodies;
static uint64_t n_recv_conns, n_recv_bad_requests;
static long n_ws_failed, n_pusher_errors, n_sub_errors, n_unexpected, n_pongs_pending, n_ready;
static long n_other_errors_logged;
static uint64_t last_arrival_ns;

/* The step being measured: its sequence range and what arrived for it. */
struct step {
    double rate;
    uint64_t total, seq0, seq1, sent, skipped, refused;
    uint64_t delivered, webhooks, delivered_in_window;
    uint64_t t0, t_end, t_processed, t_delivered, t_idle, last_arrival;
    struct lhist lat;
    uint32_t tl_webhooks[64], tl_events[64];
};
static struct step cur;
static int step_active; /* arrivals count toward cur */

/* ---- the WebSocket clients ---------------------------------------------------------- */

enum { WS_CONNECTING, WS_UPGRADING, WS_WAIT_EST, WS_SUBSCRIBING, WS_READY, WS_DEAD };

struct ws {
    int type, fd, idx, state;
    int want_out, dirty;
    struct buf in, out;
    char sid[64];
};

static struct ws *wss;
static int *dirty_ws, n_dirty;
static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ=="; /* RFC 6455 §1.3: its accept value is known */
static const char ws_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
static uint32_t mask_state = 0x12345678;

static void ws_dirty(struct ws *c) {
    if (!c->dirty) { c->dirty = 1; dirty_ws[n_dirty++] = c->idx; }
}

static void ws_fail(struct ws *c, const char *why) {
    if (c->state == WS_DEAD) return;
    if (n_ws_failed++ < 5) fprintf(stderr, "webhooks_bench: client %d: %s\n", c->idx, why);
    if (c->state >= WS_READY) n_ready--;
    close(c->fd);
    c->fd = -1;
    c->state = WS_DEAD;
}

/* A masked text (or other) frame into the client's output. */
static void ws_frame(struct ws *c, int opcode, const char *payload, size_t n) {
    buf_room(&c->out, n + 14);
    unsigned char *d = (unsigned char *)c->out.p + c->out.len, *s = d;
    *d++ = (unsigned char)(0x80 | opcode);
    if (n < 126) *d++ = (unsigned char)(0x80 | n);
    else if (n < 65536) { *d++ = 0x80 | 126; *d++ = (unsigned char)(n >> 8); *d++ = (unsigned char)n; }
    else { *d++ = 0x80 | 127; for (int i = 7; i >= 0; i--) *d++ = (unsigned char)((uint64_t)n >> (8 * i)); }
    mask_state = mask_state * 1664525u + 1013904223u;
    unsigned char m[4] = {(unsigned char)(mask_state >> 24), (unsigned char)(mask_state >> 16), (unsigned char)(mask_state >> 8), (unsigned char)mask_state};
    memcpy(d, m, 4);
    d += 4;
    for (size_t i = 0; i < n; i++) d[i] = (unsigned char)payload[i] ^ m[i & 3];
    c->out.len += (size_t)(d - s) + n;
    ws_dirty(c);
}

static void ws_text(struct ws *c, const char *s, size_t n) { ws_frame(c, 1, s, n); }

static void ws_flush(struct ws *c) {
    if (c->state == WS_DEAD || c->state == WS_CONNECTING) return;
    int r = flush_buf(c->fd, &c->out);
    if (r < 0) { ws_fail(c, "write failed"); return; }
    if (r == 1 && !c->want_out) { c->want_out = 1; ep_set(c->fd, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD); }
    if (r == 0 && c->want_out) { c->want_out = 0; ep_set(c->fd, c, EPOLLIN, EPOLL_CTL_MOD); }
}

static void flush_dirty(void) {
    for (int i = 0; i < n_dirty; i++) {
        struct ws *c = &wss[dirty_ws[i]];
        c->dirty = 0;
        if (!c->want_out) ws_flush(c);
    }
    n_dirty = 0;
}

/* The string value of "key":"..." in p[0..n). */
static int json_str(const char *p, size_t n, const char *key, const char **v, size_t *vl) {
    char pat[48];
    int pl = snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = memmem(p, n, pat, (size_t)pl);
    if (!s) return 0;
    s += pl;
    const char *e = s, *end = p + n;
    while (e < end && *e != '"') e += *e == '\\' ? 2 : 1;
    if (e >= end) return 0;
    *v = s;
    *vl = (size_t)(e - s);
    return 1;
}

static int is(const char *v, size_t n, const char *lit) { return strlen(lit) == n && !memcmp(v, lit, n); }

static void ws_subscribe(struct ws *c) {
    char chan[48], sts[128], sig[65], msg[320];
    snprintf(chan, sizeof chan, "private-bench-%d", c->idx);
    int sl = snprintf(sts, sizeof sts, "%s:%s", c->sid, chan);
    hmac_hex(sts, (size_t)sl, sig);
    int ml = snprintf(msg, sizeof msg, "{\"event\":\"pusher:subscribe\",\"data\":{\"auth\":\"%s:%s\",\"channel\":\"%s\"}}", opt.key, sig, chan);
    ws_text(c, msg, (size_t)ml);
    c->state = WS_SUBSCRIBING;
}

static void ws_message(struct ws *c, const char *p, size_t n) {
    const char *ev;
    size_t evl;
    if (!json_str(p, n, "event", &ev, &evl)) { n_unexpected++; return; }
    if (is(ev, evl, "pusher:connection_established")) {
        const char *s = memmem(p, n, "socket_id\\\":\\\"", 14);
        if (!s || c->state != WS_WAIT_EST) { ws_fail(c, "bad pusher:connection_established"); return; }
        s += 14;
        size_t k = 0;
        while (s + k < p + n && s[k] != '\\' && k < sizeof c->sid - 1) k++;
        memcpy(c->sid, s, k);
        c->sid[k] = 0;
        ws_subscribe(c);
    } else if (is(ev, evl, "pusher_internal:subscription_succeeded")) {
        if (c->state == WS_SUBSCRIBING) { c->state = WS_READY; n_ready++; }
        else n_unexpected++;
    } else if (is(ev, evl, "pusher:pong")) {
        n_pongs_pending--;
    } else if (is(ev, evl, "pusher:ping")) {
        static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
        ws_text(c, pong, sizeof pong - 1);
    } else if (is(ev, evl, "pusher:error")) {
        const char *code = memmem(p, n, "\"code\":", 7);
        long v = code ? strtol(code + 7, NULL, 10) : 0;
        if (v == 4301) { n_refused++; if (step_active) cur.refused++; }
        else n_pusher_errors++;
        if (v != 4301 || n_refused == 1)
            if (n_other_errors_logged++ < 5) fprintf(stderr, "webhooks_bench: client %d: %.*s\n", c->idx, (int)(n > 300 ? 300 : n), p);
    } else if (is(ev, evl, "pusher:subscription_error")) {
        n_sub_errors++;
        if (n_other_errors_logged++ < 5) fprintf(stderr, "webhooks_bench: client %d: %.*s\n", c->idx, (int)(n > 300 ? 300 : n), p);
    } else {
        n_unexpected++;
        if (n_unexpected <= 3) fprintf(stderr, "webhooks_bench: unexpected frame: %.*s\n", (int)(n > 200 ? 200 : n), p);
    }
}

static void ws_frames(struct ws *c) {
    struct buf *b = &c->in;
    while (buf_live(b) >= 2) {
        unsigned char *p = (unsigned char *)b->p + b->off;
        size_t have = buf_live(b), h = 2;
        int op = p[0] & 0x0f, fin = p[0] & 0x80;
        uint64_t len = p[1] & 0x7f;
        if (p[1] & 0x80) { ws_fail(c, "masked frame from the server"); return; }
        if (len == 126) { if (have < 4) return; len = (uint64_t)p[2] << 8 | p[3]; h = 4; }
        else if (len == 127) {
            if (have < 10) return;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
            h = 10;
        }
        if (len > (16u << 20)) { ws_fail(c, "frame over 16 MiB"); return; }
        if (have < h + len) return;
        const char *pl = (const char *)p + h;
        b->off += h + len;
        if (op == 1 && fin) ws_message(c, pl, (size_t)len);
        else if (op == 9) ws_frame(c, 10, pl, (size_t)len);
        else if (op == 8) { ws_fail(c, "the server closed the connection"); return; }
        else if (op != 10) n_unexpected++;
        if (c->state == WS_DEAD) return;
    }
}

static void ws_event(struct ws *c, uint32_t events) {
    if (c->state == WS_DEAD) return;
    if (c->state == WS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) { errno = err; ws_fail(c, strerror(err)); return; }
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /app/%s?protocol=7&client=webhooks-bench&version=1 HTTP/1.1\r\nHost: %s:%d\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                         opt.key, opt.host, opt.port, ws_key);
        buf_put(&c->out, req, (size_t)n);
        c->state = WS_UPGRADING;
        c->want_out = 1; /* registered with EPOLLOUT: ws_flush sets EPOLLIN once written */
        ws_flush(c);
        return;
    }
    if (events & EPOLLOUT) ws_flush(c);
    if (c->state == WS_DEAD || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    ssize_t r = fill_buf(c->fd, &c->in);
    if (r == -2) return;
    if (r <= 0) { ws_fail(c, r == 0 ? "the server closed the connection" : "read failed"); return; }
    if (c->state == WS_UPGRADING) {
        char *end = memmem(c->in.p + c->in.off, buf_live(&c->in), "\r\n\r\n", 4);
        if (!end) return;
        size_t hl = (size_t)(end - (c->in.p + c->in.off)) + 4;
        if (memcmp(c->in.p + c->in.off, "HTTP/1.1 101", 12) || !memmem(c->in.p + c->in.off, hl, ws_accept, sizeof ws_accept - 1)) {
            ws_fail(c, "the upgrade was refused");
            return;
        }
        c->in.off += hl;
        c->state = WS_WAIT_EST;
    }
    ws_frames(c);
}

/* ---- GET /webhooks/status on a keep-alive connection to the server ---------------- */

static struct {
    int type, fd, connected, waiting, want_out;
    struct buf in, out;
    uint64_t answers;
    long pending, in_flight, queued, dead, outbox_bytes;
    char body[512];
} st = {.type = T_STATUS, .fd = -1};

static void status_close(void) {
    if (st.fd >= 0) close(st.fd);
    st.fd = -1;
    st.connected = st.waiting = st.want_out = 0;
    st.in.off = st.in.len = st.out.off = st.out.len = 0;
}

static long json_num(const char *body, const char *key) {
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(body, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

static void status_send(void) {
    if (st.waiting) return;
    if (st.fd < 0) {
        st.fd = tcp_connect();
        if (st.fd < 0) return;
        ep_set(st.fd, &st, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
        st.want_out = 1;
    }
    char req[1024];  /* the endpoint wants a credential: the app's key:secret */
    int n = snprintf(req, sizeof req, "GET /webhooks/status HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s:%s\r\n\r\n",
                     opt.host, opt.port, opt.key, opt.secret);
    if (n < 0 || (size_t)n >= sizeof req) { fprintf(stderr, "webhooks_bench: --key/--secret too long\n"); exit(2); }
    buf_put(&st.out, req, (size_t)n);
    st.waiting = 1;
    if (st.connected) {
        int r = flush_buf(st.fd, &st.out);
        if (r < 0) status_close();
        else if (r == 1 && !st.want_out) { st.want_out = 1; ep_set(st.fd, &st, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD); }
    }
}

static void status_event(uint32_t events) {
    if (st.fd < 0) return;
    if (events & EPOLLOUT) {
        if (!st.connected) {
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(st.fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err) { status_close(); return; }
            st.connected = 1;
        }
        int r = flush_buf(st.fd, &st.out);
        if (r < 0) { status_close(); return; }
        if (r == 0) { st.want_out = 0; ep_set(st.fd, &st, EPOLLIN, EPOLL_CTL_MOD); }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    ssize_t r = fill_buf(st.fd, &st.in);
    if (r == -2) return;
    if (r <= 0) { status_close(); return; }
    char *h = st.in.p + st.in.off, *end = memmem(h, buf_live(&st.in), "\r\n\r\n", 4);
    if (!end) return;
    size_t hl = (size_t)(end - h) + 4;
    char *cl = memmem(h, hl, "ontent-Length:", 14);
    if (!cl) cl = memmem(h, hl, "ontent-length:", 14);
    long blen = cl ? strtol(cl + 14, NULL, 10) : 0;
    if (buf_live(&st.in) < hl + (size_t)blen) return;
    size_t keep = (size_t)blen < sizeof st.body - 1 ? (size_t)blen : sizeof st.body - 1;
    memcpy(st.body, h + hl, keep);
    st.body[keep] = 0;
    st.in.off += hl + (size_t)blen;
    st.pending = json_num(st.body, "pending");
    st.in_flight = json_num(st.body, "in_flight");
    st.queued = json_num(st.body, "waiting");
    st.dead = json_num(st.body, "dead");
    st.outbox_bytes = json_num(st.body, "outbox_bytes");
    st.waiting = 0;
    st.answers++;
}

/* ---- the webhook receiver ------------------------------------------------------------ */

struct rconn { int type, fd, dead, want_out; struct buf in, out; struct rconn *next_dead; };
static int listen_fd = -1;
static struct { int type; } listener = {T_LISTEN}, timer_tag = {T_TIMER};
static struct rconn *dead_list;

static void rconn_close(struct rconn *c) {
    if (c->dead) return;
    close(c->fd);
    c->dead = 1;
    c->next_dead = dead_list;
    dead_list = c;
}

static void free_dead(void) {
    while (dead_list) {
        struct rconn *c = dead_list;
        dead_list = c->next_dead;
        free(c->in.p);
        free(c->out.p);
        free(c);
    }
}

static void recv_accept(void) {
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct rconn *c = calloc(1, sizeof *c);
        if (!c) fatal("calloc");
        c->type = T_RECV;
        c->fd = fd;
        ep_set(fd, c, EPOLLIN, EPOLL_CTL_ADD);
        n_recv_conns++;
    }
}

/* A header's value within the head h[0..hl): case-insensitive name at a line start. */
static int header(const char *h, size_t hl, const char *name, const char **v, size_t *vl) {
    size_t nl = strlen(name);
    const char *p = memchr(h, '\n', hl), *end = h + hl;
    while (p && p + 1 < end) {
        p++;
        if ((size_t)(end - p) > nl + 1 && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *s = p + nl + 1, *e;
            while (s < end && (*s == ' ' || *s == '\t')) s++;
            e = memchr(s, '\r', (size_t)(end - s));
            if (!e) return 0;
            *v = s;
            *vl = (size_t)(e - s);
            return 1;
        }
        p = memchr(p, '\n', (size_t)(end - p));
    }
    return 0;
}

static uint64_t num_at(const char *s, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (uint64_t)(s[i] - '0');
    return v;
}

/* One webhook body: count and check its client_event entries. */
static void on_webhook(const char *body, size_t n, uint64_t now) {
    static const char marker[] = "\"name\":\"client_event\"";
    const char *end = body + n, *p = memmem(body, n, marker, sizeof marker - 1);
    uint64_t events = 0;
    while (p) {
        const char *next = memmem(p + 1, (size_t)(end - p - 1), marker, sizeof marker - 1);
        const char *lim = next ? next : end;
        events++;
        /* the event's data is a JSON string: {\"t\":<ns>,\"i\":<seq>} */
        const char *tp = memmem(p, (size_t)(lim - p), "\\\"t\\\":", 6);
        const char *ip = memmem(p, (size_t)(lim - p), "\\\"i\\\":", 6);
        const char *cp = memmem(p, (size_t)(lim - p), "\"channel\":\"private-bench-", 25);
        if (!tp || !ip) { n_malformed++; p = next; continue; }
        uint64_t t = num_at(tp + 6, (size_t)(lim - tp - 6)), seq = num_at(ip + 6, (size_t)(lim - ip - 6));
        if (!cp || num_at(cp + 25, (size_t)(lim - cp - 25)) != seq % (uint64_t)opt.clients) n_bad_channel++;
        if (seq >= next_seq || seq >= seq_limit) { n_unknown_seq++; p = next; continue; }
        if (seq_seen[seq >> 3] & (1u << (seq & 7))) { n_dup_events++; p = next; continue; }
        seq_seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
        n_delivered++;
        if (step_active && seq >= cur.seq0 && seq < cur.seq1) {
            cur.delivered++;
            cur.last_arrival = now;
            if (now <= cur.t_end || !cur.t_end) cur.delivered_in_window++;
            lh_add(&cur.lat, (int64_t)(now - t));
        }
        p = next;
    }
    n_events_in_bodies += events;
    if (!events) n_malformed++;
    if (step_active) {
        cur.webhooks++;
        uint64_t sec = (now - cur.t0) / 1000000000ull;
        if (sec < 64) { cur.tl_webhooks[sec]++; cur.tl_events[sec] += (uint32_t)events; }
    }
    last_arrival_ns = now;
}

static void recv_requests(struct rconn *c) {
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    int answered = 0;
    for (;;) {
        char *h = c->in.p + c->in.off;
        size_t have = buf_live(&c->in);
        char *he = memmem(h, have, "\r\n\r\n", 4);
        if (!he) {
            if (have > 65536) { n_recv_bad_requests++; rconn_close(c); return; }
            break;
        }
        size_t hl = (size_t)(he - h) + 4;
        const char *v;
        size_t vl;
        if (!header(h, hl, "Content-Length", &v, &vl)) { n_recv_bad_requests++; rconn_close(c); return; }
        size_t blen = (size_t)num_at(v, vl);
        if (have < hl + blen) { buf_room(&c->in, hl + blen - have); break; }
        uint64_t now = mono_ns();
        const char *body = h + hl;
        n_webhooks++;
        if (header(h, hl, "X-Bridge-Webhook-Attempt", &v, &vl) && num_at(v, vl) > 1) n_retries++;
        if (header(h, hl, "X-Bridge-Webhook-Id", &v, &vl)) {
            uint64_t id = num_at(v, vl);
            if (id < id_min) id_min = id;
            if (id > id_max) id_max = id;
            if (id >= ID_LIMIT) id_over_limit++;
            else if (id_seen[id >> 3] & (1u << (id & 7))) n_dup_ids++;
            else id_seen[id >> 3] |= (uint8_t)(1u << (id & 7));
        } else n_recv_bad_requests++;
        char sig[65];
        hmac_hex(body, blen, sig);
        if (!header(h, hl, "X-Pusher-Signature", &v, &vl) || vl != 64 || memcmp(v, sig, 64)) n_bad_sig++;
        on_webhook(body, blen, now);
        c->in.off += hl + blen;
        buf_put(&c->out, ok, sizeof ok - 1);
        answered = 1;
    }
    if (answered && !c->want_out) {
        int r = flush_buf(c->fd, &c->out);
        if (r < 0) { rconn_close(c); return; }
        if (r == 1) { c->want_out = 1; ep_set(c->fd, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD); }
    }
}

static void recv_event(struct rconn *c, uint32_t events) {
    if (c->dead) return;
    if (events & EPOLLOUT) {
        int r = flush_buf(c->fd, &c->out);
        if (r < 0) { rconn_close(c); return; }
        if (r == 0) { c->want_out = 0; ep_set(c->fd, c, EPOLLIN, EPOLL_CTL_MOD); }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
    ssize_t r = fill_buf(c->fd, &c->in);
    if (r == -2) return;
    if (r <= 0) { rconn_close(c); return; } /* curl closed it: fine, it reconnects */
    recv_requests(c);
}

/* ---- sending events on the schedule ------------------------------------------------- */

static void send_due(uint64_t now) {
    if (!step_active || cur.sent + cur.skipped >= cur.total) return;
    uint64_t due = (uint64_t)((double)(now - cur.t0) * cur.rate / 1e9) + 1;
    if (due > cur.total) due = cur.total;
    char msg[192];
    while (cur.sent + cur.skipped < due) {
        uint64_t k = cur.sent + cur.skipped, seq = cur.seq0 + k;
        uint64_t at = cur.t0 + (uint64_t)((double)k * 1e9 / cur.rate);
        struct ws *c = &wss[seq % (uint64_t)opt.clients];
        if (c->state != WS_READY || buf_live(&c->out) > (size_t)opt.out_cap) { cur.skipped++; n_skipped++; continue; }
        int n = snprintf(msg, sizeof msg,
                         "{\"event\":\"client-x\",\"channel\":\"private-bench-%d\",\"data\":{\"t\":%llu,\"i\":%llu}}",
                         c->idx, (unsigned long long)at, (unsigned long long)seq);
        ws_text(c, msg, (size_t)n);
        cur.sent++;
        n_sent++;
    }
    next_seq = cur.seq0 + cur.sent + cur.skipped;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void loop_once(int timeout_ms) {
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, timeout_ms);
    if (n < 0 && errno != EINTR) fatal("epoll_wait");
    for (int i = 0; i < n; i++) {
        struct tagged *t = evs[i].data.ptr;
        switch (t->type) {
        case T_WS: ws_event((struct ws *)t, evs[i].events); break;
        case T_STATUS: status_event(evs[i].events); break;
        case T_LISTEN: recv_accept(); break;
        case T_RECV: recv_event((struct rconn *)t, evs[i].events); break;
        case T_TIMER: {
            uint64_t ticks;
            if (read(timer_fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) fatal("read timerfd");
            send_due(mono_ns());
            break;
        }
        }
    }
    flush_dirty();
    free_dead();
}

/* Runs the loop until done() or the absolute time `until`; 1 if done() came true. */
static int wait_for(int (*done)(void), uint64_t until) {
    for (;;) {
        if (done && done()) return 1;
        uint64_t now = mono_ns();
        if (now >= until || out_of_time()) return 0;
        uint64_t ms = (until - now) / 1000000 + 1;
        loop_once(ms > 10 ? 10 : (int)ms);
    }
}

static void timer_arm(long us) {
    struct itimerspec its = {0};
    if (us) {
        its.it_interval.tv_sec = us / 1000000;
        its.it_interval.tv_nsec = (us % 1000000) * 1000;
        its.it_value = its.it_interval;
    }
    if (timerfd_settime(timer_fd, 0, &its, NULL) < 0) fatal("timerfd_settime");
}

/* Waits for the status answer to a fresh request; 1 if it came. */
static uint64_t status_want;
static int status_answered(void) { return st.answers >= status_want || st.fd < 0; }
static int status_fresh(uint64_t until) {
    status_want = st.answers + 1;
    status_send();
    wait_for(status_answered, until);
    return st.answers >= status_want;
}

static int outbox_idle(void) { return st.pending == 0 && st.in_flight == 0 && st.queued == 0; }

/* Polls GET /webhooks/status until nothing is pending, in flight or waiting. */
static int wait_outbox_idle(uint64_t until) {
    for (;;) {
        if (status_fresh(until) && outbox_idle()) return 1;
        if (!wait_for(NULL, mono_ns() + 20000000ull) && out_of_time()) return 0;
        if (mono_ns() >= until) return 0;
    }
}

static int all_ready(void) { return n_ready + n_ws_failed >= opt.clients; }
static int pongs_in(void) { return n_pongs_pending <= 0; }
static uint64_t want_delivered;
static int delivered_enough(void) { return n_delivered >= want_delivered; }
static int step_delivered(void) { return cur.delivered + cur.refused >= cur.sent; }

static void ping_all(void) {
    static const char ping[] = "{\"event\":\"pusher:ping\",\"data\":{}}";
    for (int i = 0; i < opt.clients; i++)
        if (wss[i].state == WS_READY) { ws_text(&wss[i], ping, sizeof ping - 1); n_pongs_pending++; }
    flush_dirty();
}

/* ---- run ------------------------------------------------------------------------------------ */

static double pct_of(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0; }

static void print_cpu(const char *p, struct cpu_snap a, struct cpu_snap b) {
    double secs = (double)(b.t - a.t) / 1e9;
    if (secs <= 0) return;
    if (a.server >= 0 && b.server >= 0) printf("%s_server_cpu_pct=%.0f\n", p, pct_of(b.server - a.server, secs));
    printf("%s_loadgen_cpu_pct=%.0f\n", p, pct_of(b.self - a.self, secs));
    static const char *what[3] = {"busy", "irq", "steal"};
    for (int i = 0; i < 3; i++) {
        if (a.s_ok && b.s_ok && b.sj[3] > a.sj[3])
            printf("%s_server_core_%s_pct=%.0f\n", p, what[i], pct_of((double)(b.sj[i] - a.sj[i]), (double)(b.sj[3] - a.sj[3])));
        if (a.c_ok && b.c_ok && b.cj[3] > a.cj[3])
            printf("%s_loadgen_core_%s_pct=%.0f\n", p, what[i], pct_of((double)(b.cj[i] - a.cj[i]), (double)(b.cj[3] - a.cj[3])));
    }
}

static int run_step(int k, double rate) {
    char p[24];
    snprintf(p, sizeof p, "step%d", k);
    memset(&cur, 0, sizeof cur);
    cur.rate = rate;
    cur.total = (uint64_t)(rate * opt.step + 0.5);
    cur.seq0 = next_seq;
    cur.seq1 = next_seq + cur.total;
    if (cur.seq1 > seq_limit) { fprintf(stderr, "webhooks_bench: sequence space exhausted\n"); return -1; }
    say("step %d: %.0f events/s for %.1f s", k, rate, opt.step);
    struct cpu_snap a = cpu_snap();
    cur.t0 = a.t;
    step_active = 1;
    timer_arm(opt.tick_us);
    send_due(mono_ns());
    flush_dirty();
    uint64_t end = cur.t0 + (uint64_t)(opt.step * 1e9);
    while (!out_of_time()) {
        uint64_t now = mono_ns();
        if (now >= end && cur.sent + cur.skipped >= cur.total) break;
        loop_once(1);
    }
    timer_arm(0);
    struct cpu_snap b = cpu_snap();
    cur.t_end = b.t;
    uint64_t drain_end = cur.t_end + (uint64_t)(opt.drain * 1e9);
    ping_all();
    int processed = wait_for(pongs_in, drain_end);
    cur.t_processed = mono_ns();
    int delivered = 1, idle = 1;
    if (!opt.no_webhooks) {
        delivered = wait_for(step_delivered, drain_end);
        cur.t_delivered = mono_ns();
        idle = wait_outbox_idle(drain_end);
    }
    cur.t_idle = mono_ns();
    struct cpu_snap c = cpu_snap();
    step_active = 0;

    double secs = (double)(cur.t_end - cur.t0) / 1e9;
    uint64_t accepted = cur.sent - cur.refused;
    printf("%s_rate=%.0f\n%s_seconds=%.3f\n%s_offered=%llu\n%s_sent=%llu\n%s_skipped=%llu\n%s_refused=%llu\n", p, rate, p, secs, p,
           (unsigned long long)cur.total, p, (unsigned long long)cur.sent, p, (unsigned long long)cur.skipped, p, (unsigned long long)cur.refused);
    printf("%s_accepted=%llu\n%s_accepted_per_sec=%.0f\n", p, (unsigned long long)accepted, p, (double)accepted / secs);
    printf("%s_processed=%d\n%s_processed_ms=%.1f\n", p, processed, p, (double)(cur.t_processed - cur.t_end) / 1e6);
    print_cpu(p, a, b);
    if (c.server >= 0 && a.server >= 0 && accepted)
        printf("%s_server_cpu_us_per_event=%.2f\n%s_server_cpu_s_total=%.3f\n", p, (c.server - a.server) * 1e6 / (double)accepted, p, c.server - a.server);
    if (!opt.no_webhooks) {
        /* rate over the window, or until the last arrival when that was later */
        uint64_t span = cur.last_arrival > cur.t_end ? cur.last_arrival - cur.t0 : cur.t_end - cur.t0;
        printf("%s_webhooks=%llu\n%s_events_delivered=%llu\n%s_events_missing=%lld\n", p, (unsigned long long)cur.webhooks, p,
               (unsigned long long)cur.delivered, p, (long long)accepted - (long long)cur.delivered);
        printf("%s_webhooks_per_sec=%.0f\n%s_events_per_sec=%.0f\n%s_events_in_window_per_sec=%.0f\n", p,
               (double)cur.webhooks * 1e9 / (double)span, p, (double)cur.delivered * 1e9 / (double)span, p,
               (double)cur.delivered_in_window / secs);
        printf("%s_events_per_webhook=%.1f\n", p, cur.webhooks ? (double)cur.delivered / (double)cur.webhooks : 0);
        printf("%s_all_delivered=%d\n%s_last_arrival_after_end_ms=%.1f\n%s_outbox_idle=%d\n%s_outbox_idle_after_end_ms=%.1f\n", p, delivered, p,
               cur.last_arrival > cur.t_end ? (double)(cur.last_arrival - cur.t_end) / 1e6 : 0.0, p, idle, p,
               (double)(cur.t_idle - cur.t_end) / 1e6);
        printf("%s_lat_samples=%llu\n%s_lat_p50_us=%llu\n%s_lat_p99_us=%llu\n%s_lat_p999_us=%llu\n%s_lat_max_us=%llu\n", p,
               (unsigned long long)cur.lat.count, p, (unsigned long long)lh_pct(&cur.lat, 0.5), p, (unsigned long long)lh_pct(&cur.lat, 0.99),
               p, (unsigned long long)lh_pct(&cur.lat, 0.999), p, (unsigned long long)cur.lat.max);
        printf("%s_status=%s\n", p, st.body);
        int last = -1;
        for (int i = 0; i < 64; i++) if (cur.tl_webhooks[i]) last = i;
        printf("%s_timeline=", p);
        for (int i = 0; i <= last; i++) printf("%s%u/%u", i ? " " : "", cur.tl_webhooks[i], cur.tl_events[i]);
        printf("\n");
    }
    if (opt.watch_pid) printf("%s_server_rss_kib=%ld\n", p, proc_rss_kib(opt.watch_pid));
    int sustained = processed && cur.skipped == 0 && cur.refused == 0;
    if (!opt.no_webhooks)
        sustained = sustained && delivered && idle && (double)lh_pct(&cur.lat, 0.99) < opt.sustain_p99_ms * 1000 &&
                    (cur.last_arrival <= cur.t_end || (double)(cur.last_arrival - cur.t_end) <= opt.sustain_tail_ms * 1e6);
    printf("%s_sustained=%d\n", p, sustained);
    fflush(stdout);
    say("step %d: accepted %llu, %s", k, (unsigned long long)accepted,
        opt.no_webhooks ? (sustained ? "all processed" : "NOT processed in time")
                        : (sustained ? "all delivered" : "not sustained"));
    return sustained;
}

static int run_bench(void) {
    /* rates */
    double rates[64];
    int nrates = 0;
    for (const char *s = opt.rates; *s && nrates < 64;) {
        char *e;
        double r = strtod(s, &e);
        if (e == s || r <= 0) { fprintf(stderr, "webhooks_bench: bad --rates \"%s\"\n", opt.rates); return 2; }
        rates[nrates++] = r;
        s = *e == ',' ? e + 1 : e;
        if (*e && *e != ',') { fprintf(stderr, "webhooks_bench: bad --rates \"%s\"\n", opt.rates); return 2; }
    }
    uint64_t total = (uint64_t)opt.clients;
    double top = 0;
    for (int i = 0; i < nrates; i++) { total += (uint64_t)(rates[i] * opt.step + 1); if (rates[i] > top) top = rates[i]; }
    total += (uint64_t)(top * opt.step + 1); /* the refinement step */
    seq_limit = total + 16;
    seq_seen = calloc(seq_limit / 8 + 1, 1);
    id_seen = calloc(ID_LIMIT / 8, 1);
    if (!seq_seen || !id_seen) fatal("calloc");

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) fatal("epoll_create1");
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd < 0) fatal("timerfd_create");
    ep_set(timer_fd, &timer_tag, EPOLLIN, EPOLL_CTL_ADD);

    if (!opt.no_webhooks) {
        listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listen_fd < 0) fatal("socket");
        int one = 1;
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.recv_port)};
        inet_pton(AF_INET, opt.host, &a.sin_addr);
        if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0) {
            fprintf(stderr, "webhooks_bench: the receiver cannot bind %s:%d: %s\n", opt.host, opt.recv_port, strerror(errno));
            return 1;
        }
        if (listen(listen_fd, 512) < 0) fatal("listen");
        ep_set(listen_fd, &listener, EPOLLIN, EPOLL_CTL_ADD);
    }

    /* connect and subscribe every client */
    uint64_t t_setup = mono_ns();
    wss = calloc((size_t)opt.clients, sizeof *wss);
    dirty_ws = calloc((size_t)opt.clients, sizeof *dirty_ws);
    if (!wss || !dirty_ws) fatal("calloc");
    for (int i = 0; i < opt.clients; i++) {
        struct ws *c = &wss[i];
        c->type = T_WS;
        c->idx = i;
        c->fd = tcp_connect();
        if (c->fd < 0) { c->state = WS_DEAD; n_ws_failed++; continue; }
        c->state = WS_CONNECTING;
        ep_set(c->fd, c, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
    }
    if (!wait_for(all_ready, mono_ns() + 10000000000ull) || n_ws_failed) {
        fprintf(stderr, "webhooks_bench: only %ld of %d clients subscribed\n", n_ready, opt.clients);
        return 1;
    }
    printf("setup_clients=%d\nsetup_ms=%.1f\n", opt.clients, (double)(mono_ns() - t_setup) / 1e6);

    /* one probe event per client must come back as a webhook: the whole path works */
    memset(&cur, 0, sizeof cur);
    cur.rate = 1e9;
    cur.total = (uint64_t)opt.clients;
    cur.seq0 = next_seq;
    cur.seq1 = next_seq + cur.total;
    cur.t0 = mono_ns();
    step_active = 1;
    send_due(cur.t0 + 1000000000ull);
    step_active = 0;
    flush_dirty();
    ping_all();
    if (!wait_for(pongs_in, mono_ns() + 5000000000ull)) { fprintf(stderr, "webhooks_bench: no pong within 5 s\n"); return 1; }
    if (!opt.no_webhooks) {
        want_delivered = (uint64_t)opt.clients;
        if (!wait_for(delivered_enough, mono_ns() + 10000000000ull)) {
            fprintf(stderr, "webhooks_bench: %llu of %d probe events came back as webhooks within 10 s\n", (unsigned long long)n_delivered, opt.clients);
            return 1;
        }
        if (!wait_outbox_idle(mono_ns() + 5000000000ull)) fprintf(stderr, "webhooks_bench: outbox not idle after the probe: %s\n", st.body);
        printf("probe_ms=%.1f\n", (double)(mono_ns() - cur.t0) / 1e6);
    }

    /* the server's own CPU use with nothing to do, for scale */
    struct cpu_snap i0 = cpu_snap();
    wait_for(NULL, i0.t + 1000000000ull);
    print_cpu("idle", i0, cpu_snap());

    int steps = 0, rc = 0;
    double best = 0;
    for (int i = 0; i < nrates && !out_of_time(); i++) {
        int s = run_step(++steps, rates[i]);
        if (s < 0) { rc = 1; break; }
        if (s) { if (rates[i] > best) best = rates[i]; continue; }
        if (opt.keep_going) continue;
        if (opt.refine && i > 0 && best == rates[i - 1]) {
            /* the backlog of the failed step goes first, then the rate halfway between */
            double mid = (rates[i - 1] + rates[i]) / 2;
            uint64_t until = mono_ns() + (uint64_t)(opt.final_wait * 1e9);
            int drained = 1;
            if (!opt.no_webhooks) {
                want_delivered = n_sent - n_refused;
                drained = wait_for(delivered_enough, until) && wait_outbox_idle(until);
            }
            if (drained) {
                printf("step%d_refine=1\n", steps + 1);
                int r = run_step(++steps, mid);
                if (r < 0) { rc = 1; break; }
                if (r) best = mid;
            } else {
                say("the backlog did not drain within %.0f s: no refinement step", opt.final_wait);
            }
        }
        break;
    }
    printf("steps=%d\nbest_sustained_rate=%.0f\n", steps, best);

    /* everything accepted must arrive, and the outbox must empty */
    uint64_t accepted_total = n_sent - n_refused;
    if (!opt.no_webhooks) {
        uint64_t t = mono_ns(), until = t + (uint64_t)(opt.final_wait * 1e9);
        want_delivered = accepted_total;
        int all = wait_for(delivered_enough, until);
        int idle = wait_outbox_idle(until);
        printf("final_wait_ms=%.1f\nfinal_all_delivered=%d\nfinal_outbox_idle=%d\nfinal_status=%s\n", (double)(mono_ns() - t) / 1e6, all, idle, st.body);
        wait_for(NULL, mono_ns() + 200000000ull); /* late duplicates would show up here */
    }
    uint64_t missing_ids = 0;
    if (id_max >= id_min && id_max < ID_LIMIT)
        for (uint64_t id = id_min; id <= id_max; id++) if (!(id_seen[id >> 3] & (1u << (id & 7)))) missing_ids++;
    printf("events_sent=%llu\nevents_skipped=%llu\nevents_refused=%llu\nevents_accepted=%llu\n", (unsigned long long)n_sent,
           (unsigned long long)n_skipped, (unsigned long long)n_refused, (unsigned long long)accepted_total);
    if (!opt.no_webhooks) {
        printf("events_delivered=%llu\nevents_missing=%lld\nevents_duplicated=%llu\nevents_unknown=%llu\nevents_in_bodies=%llu\n",
               (unsigned long long)n_delivered, (long long)accepted_total - (long long)n_delivered, (unsigned long long)n_dup_events,
               (unsigned long long)n_unknown_seq, (unsigned long long)n_events_in_bodies);
        printf("webhooks_received=%llu\nwebhook_retries=%llu\nwebhook_duplicate_ids=%llu\nwebhook_id_min=%llu\nwebhook_id_max=%llu\nwebhook_ids_missing=%llu\n",
               (unsigned long long)n_webhooks, (unsigned long long)n_retries, (unsigned long long)n_dup_ids,
               (unsigned long long)(id_min == UINT64_MAX ? 0 : id_min), (unsigned long long)id_max, (unsigned long long)missing_ids);
        printf("bad_signatures=%llu\nmalformed_bodies=%llu\nbad_channel=%llu\nbad_requests=%llu\nreceiver_connections=%llu\n",
               (unsigned long long)n_bad_sig, (unsigned long long)n_malformed, (unsigned long long)n_bad_channel,
               (unsigned long long)n_recv_bad_requests, (unsigned long long)n_recv_conns);
    }
    printf("clients_failed=%ld\npusher_errors=%ld\nsubscription_errors=%ld\nunexpected_frames=%ld\n", n_ws_failed, n_pusher_errors,
           n_sub_errors, n_unexpected);
    if (opt.watch_pid && proc_cpu_s(opt.watch_pid) < 0) printf("server_gone=1\n");
    printf("server_cpu_source=%s\n", server_clock_ok ? "process CPU clock" : "/proc/PID/stat");
    if (deadline_hit) return 3;
    if (rc) return rc;
    int bad = n_ws_failed || n_pusher_errors || n_sub_errors;
    if (!opt.no_webhooks)
        bad = bad || n_delivered != accepted_total || n_dup_events || n_unknown_seq || n_dup_ids || n_bad_sig || n_malformed ||
              n_bad_channel || n_recv_bad_requests || missing_ids || id_over_limit;
    return bad ? 4 : 0;
}

/* ---- small modes -------------------------------------------------------------------------- */

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &al) < 0) fatal("free-port");
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Appends of 128 bytes, each followed by fdatasync, as an outbox with --webhook-fsync always does. */
static int fsync_probe(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/fsync-probe.tmp", opt.dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fatal(path);
    uint64_t *t = calloc((size_t)opt.count, sizeof *t);
    char rec[128];
    memset(rec, 'x', sizeof rec);
    uint64_t t0 = mono_ns();
    for (long i = 0; i < opt.count; i++) {
        uint64_t a = mono_ns();
        if (pwrite(fd, rec, sizeof rec, (off_t)i * (off_t)sizeof rec) != (ssize_t)sizeof rec) fatal("pwrite");
        if (fdatasync(fd) < 0) fatal("fdatasync");
        t[i] = (mono_ns() - a) / 1000;
    }
    double secs = (double)(mono_ns() - t0) / 1e9;
    close(fd);
    unlink(path);
    qsort(t, (size_t)opt.count, sizeof *t, cmp_u64);
    printf("fsync_count=%ld\nfsync_per_sec=%.0f\nfsync_p50_us=%llu\nfsync_p99_us=%llu\nfsync_max_us=%llu\n", opt.count,
           (double)opt.count / secs, (unsigned long long)t[opt.count / 2], (unsigned long long)t[opt.count * 99 / 100],
           (unsigned long long)t[opt.count - 1]);
    free(t);
    return 0;
}

/* ---- arguments ---------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fputs("usage: webhooks_bench run --port P [--recv-port R | --no-webhooks] [options]\n"
          "       webhooks_bench free-port\n"
          "       webhooks_bench fsync-probe --dir D [--count 200]\n"
          "  --host 127.0.0.1       server and receiver address (loopback only)\n"
          "  --key K --secret S     the app's key and secret (app-key, app-secret)\n"
          "  --clients N            WebSocket clients, client k on private-bench-<k> (16)\n"
          "  --rates R1,R2,...      client events per second, one step each (250,...,32000)\n"
          "  --step S               seconds per step (3)\n"
          "  --drain S              after a step: longest wait for deliveries and an idle outbox (5)\n"
          "  --final-wait S         at the end: longest wait for everything accepted (15)\n"
          "  --sustain-p99-ms MS    a step is sustained only with p99 latency under this (250)\n"
          "  --sustain-tail-ms MS   ...and its last event arriving within this after the step's end (100)\n"
          "  --keep-going           run every step, not only up to the first unsustained one\n"
          "  --refine               after the first unsustained step: drain, then try the rate halfway back\n"
          "  --tick-us US           send schedule granularity (200)\n"
          "  --out-cap B            unsent bytes per client past which an event is skipped (1 MiB)\n"
          "  --watch-pid PID        the server: CPU from /proc/PID/stat, RSS\n"
          "  --server-cpu N --client-cpu N   report how busy these CPUs were\n"
          "  --deadline S           hard limit on the whole run (120)\n"
          "  --quiet                no progress lines\n",
          f);
}

static double num(const char *what, const char *s, double lo, double hi) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || e == s || *e || v < lo || v > hi) {
        fprintf(stderr, "webhooks_bench: %s must be a number in [%g, %g], got \"%s\"\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    static const struct option lo[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"recv-port", 1, 0, 'r'}, {"key", 1, 0, 'K'}, {"secret", 1, 0, 'S'},
        {"clients", 1, 0, 'c'}, {"rates", 1, 0, 'R'}, {"step", 1, 0, 's'}, {"drain", 1, 0, 'd'}, {"final-wait", 1, 0, 'F'},
        {"sustain-p99-ms", 1, 0, 'L'}, {"sustain-tail-ms", 1, 0, 'T'}, {"keep-going", 0, 0, 'k'}, {"tick-us", 1, 0, 't'}, {"out-cap", 1, 0, 'o'},
        {"watch-pid", 1, 0, 'w'}, {"server-cpu", 1, 0, 'u'}, {"client-cpu", 1, 0, 'U'}, {"deadline", 1, 0, 'x'},
        {"no-webhooks", 0, 0, 'n'}, {"refine", 0, 0, 'f'}, {"dir", 1, 0, 'D'}, {"count", 1, 0, 'C'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, '?'},
        {0, 0, 0, 0},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(argc < 2 ? stderr : stdout); return argc < 2 ? 2 : 0; }
    const char *mode = argv[1];
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = (int)num("--port", optarg, 1, 65535); break;
        case 'r': opt.recv_port = (int)num("--recv-port", optarg, 1, 65535); break;
        case 'K': opt.key = optarg; break;
        case 'S': opt.secret = optarg; break;
        case 'c': opt.clients = (int)num("--clients", optarg, 1, 10000); break;
        case 'R': opt.rates = optarg; break;
        case 's': opt.step = num("--step", optarg, 0.2, 600); break;
        case 'd': opt.drain = num("--drain", optarg, 0.1, 600); break;
        case 'F': opt.final_wait = num("--final-wait", optarg, 0, 600); break;
        case 'L': opt.sustain_p99_ms = num("--sustain-p99-ms", optarg, 1, 600000); break;
        case 'T': opt.sustain_tail_ms = num("--sustain-tail-ms", optarg, 0, 600000); break;
        case 'k': opt.keep_going = 1; break;
        case 't': opt.tick_us = (long)num("--tick-us", optarg, 20, 100000); break;
        case 'o': opt.out_cap = (long)num("--out-cap", optarg, 1024, 1 << 26); break;
        case 'w': opt.watch_pid = (long)num("--watch-pid", optarg, 1, 1 << 30); break;
        case 'u': opt.server_cpu = (int)num("--server-cpu", optarg, 0, 4095); break;
        case 'U': opt.client_cpu = (int)num("--client-cpu", optarg, 0, 4095); break;
        case 'x': opt.deadline = num("--deadline", optarg, 1, 3600); break;
        case 'n': opt.no_webhooks = 1; break;
        case 'f': opt.refine = 1; break;
        case 'D': opt.dir = optarg; break;
        case 'C': opt.count = (long)num("--count", optarg, 1, 100000); break;
        case 'q': opt.quiet = 1; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) { fprintf(stderr, "webhooks_bench: unexpected argument \"%s\"\n", argv[optind]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "free-port")) return free_port();
    if (!strcmp(mode, "fsync-probe")) {
        if (!opt.dir) { fprintf(stderr, "webhooks_bench: fsync-probe needs --dir\n"); return 2; }
        return fsync_probe();
    }
    if (strcmp(mode, "run")) { fprintf(stderr, "webhooks_bench: unknown mode \"%s\"\n", mode); return 2; }
    if (!opt.port) { fprintf(stderr, "webhooks_bench: --port is required\n"); return 2; }
    if (!opt.no_webhooks && !opt.recv_port) { fprintf(stderr, "webhooks_bench: --recv-port or --no-webhooks is required\n"); return 2; }
    if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1 || (ntohl(server_addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "webhooks_bench: --host must be a 127.x.x.x address\n");
        return 2;
    }
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt.port);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    hmac_setup(opt.secret);
    if (opt.watch_pid) server_clock_ok = clock_getcpuclockid((pid_t)opt.watch_pid, &server_clock) == 0;
    start_ns = mono_ns();
    hard_deadline_ns = start_ns + (uint64_t)(opt.deadline * 1e9);
    int rc = run_bench();
    printf("run_seconds=%.1f\nexit_status=%d\n", (double)(mono_ns() - start_ns) / 1e9, rc);
    return rc;
}
