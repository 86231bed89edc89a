/*
 * pusher_bench: Pusher-protocol load generator for Bridge's benchmarks.
 *
 * One thread, one epoll instance, loopback only. Links libcrypto for SHA-256
 * (HMAC signatures of API requests and presence auth) and MD5 (body_md5).
 * Every mode is bounded in count and in time (--deadline, default 120 s).
 *
 *   pusher_bench channels --port P [--connections 10000] [--group-size 10] [--rates 2000,5000,...]
 *   pusher_bench presence --port P [--connections 5000] [--per-conn 10] [--rooms 1000] [--duration 10]
 *   pusher_bench api      --port P [--http-conns 1] [--depth 1] [--subscribers 0|1] [--duration 5]
 *
 * channels: N WebSocket connections, connection i subscribed to `user-<i>` and
 *   `group-<i/G>`; events are published through the signed HTTP API to random
 *   channels at each open-loop rate of --rates for --step seconds, then closed
 *   loop with --http-conns x --depth requests in flight. Each event carries its
 *   intended send time; latency is publish-to-delivery.
 * presence: N connections x K presence channels `presence-room-<r>`; then
 *   --inflight members at a time leave and re-join (unsubscribe + subscribe with
 *   a freshly signed channel_data); a join counts when its subscription_succeeded
 *   arrives. At the end a --leave-frac share of memberships leave for good, every
 *   connection's pusher:ping is answered (so the server has handled everything),
 *   and GET /apps/ID/channels?filter_by_prefix=presence-&info=user_count must
 *   agree with the client's member count for every room.
 * api: closed-loop signed POST /apps/ID/events to one channel with 0 or 1
 *   subscribers, on --http-conns keep-alive connections with --depth requests
 *   pipelined on each.
 *
 * Results are key=value lines on stdout; progress and errors go to stderr.
 * Build: gcc -O2 -Wall -o pusher_bench pusher_bench.c -lcrypto
 */
#define _GNU_SOURCE
#define OPENSSL_SUPPRESS_DEPRECATED /* the plain SHA256/MD5 calls: no provider lookups per call */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/md5.h>
#include <openssl/sha.h>
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

enum mode { MODE_CHANNELS, MODE_PRESENCE, MODE_API };
enum kind { K_WS, K_HTTP };
enum state { ST_FREE, ST_CONNECTING, ST_UPGRADING, ST_WAIT_EST, ST_OPEN };

static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ==";           /* RFC 6455 §1.3 */
static const char ws_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

#define MAX_BUF (16u << 20)

struct req { uint64_t t; uint32_t expect; uint32_t kind; }; /* one outstanding HTTP request */
enum req_kind { R_PUBLISH, R_CHANNELS };

struct conn {
    int fd;
    uint32_t gen;
    uint8_t kind, state, dirty, want_out;
    uint8_t busy;          /* presence: a leave + join in flight */
    int8_t busy_slot;
    uint16_t pending_subs; /* subscribe requests not yet acknowledged */
    uint32_t subs_mask;    /* presence: slots currently subscribed */
    uint32_t pong_wanted;
    char sid[32];
    uint8_t *in, *out;
    uint32_t inlen, incap, outoff, outlen, outcap;
    struct req *ring; /* HTTP: outstanding requests in order */
    uint32_t ring_head, nout, ringcap;
    uint64_t op_start;
};

static struct {
    enum mode mode;
    const char *host;
    int port;
    const char *app_id, *key, *secret;
    long connections;
    long group_size;
    double group_frac;
    const char *rates;
    double step;
    double closed_secs;
    long http_conns;
    long depth;
    long queue_cap; /* channels open loop: most requests queued per HTTP connection */
    long per_conn, rooms;
    long inflight;
    double leave_frac;
    double duration, warmup, deadline;
    long subscribers;
    int src_first;
    long per_src;
    long connect_inflight;
    long watch_pid;
    int server_cpu, client_cpu; /* report how busy these CPUs were (-1: not) */
    long payload;
    int quiet;
} opt = {
    .host = "127.0.0.1", .app_id = "1", .key = "app-key", .secret = "app-secret",
    .connections = 0, .group_size = 10, .group_frac = 0.5, .rates = "2000,5000,10000,15000,20000,30000",
    .step = 2, .closed_secs = 2, .http_conns = 0, .depth = 0, .queue_cap = 64, .per_conn = 10, .rooms = 1000,
    .inflight = 64, .leave_frac = 0.1, .duration = 0, .warmup = 1, .deadline = 120, .subscribers = 0,
    .src_first = 2, .per_src = 5000, .connect_inflight = 256, .payload = 64, .server_cpu = -1, .client_cpu = -1,
};

static int epfd = -1;
static struct conn *conns;
static long nconns, nws, http_first; /* WebSocket connections first, then HTTP ones */
static long *dirty_list;
static long ndirty;
static uint64_t now_ns, deadline_ns;
static long now_wall;
static volatile sig_atomic_t stop_signal;
static struct sockaddr_in dst;
static char upgrade_req[512];
static size_t upgrade_len;
static char pad[4096];
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* counters */
static long n_open, n_failed, n_dropped, n_connecting, n_started, n_ready, n_errors, n_pings, n_pongs;
static long n_sub_errors, n_pusher_errors, n_bad_channel, n_unexpected;
static uint64_t n_sent, n_accepted, n_non200, n_skipped, n_delivered, n_expected;
static uint64_t n_member_added, n_member_removed, n_joins, n_leaves;
static uint64_t n_setup_msgs;
static int server_gone;

/* ---- small helpers ------------------------------------------------------- */

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

static double rng01(void) { return (double)rng32() / 4294967296.0; }

static void die(const char *what) {
    fprintf(stderr, "pusher_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void on_signal(int sig) { (void)sig; stop_signal = 1; }

/* Latency histogram: 1 µs buckets below 100 ms, 1 ms buckets from 100 ms to 100 s. */
#define H_FINE 100000
#define H_COARSE 100000
struct hist { uint64_t b[H_FINE + H_COARSE + 1]; uint64_t count, max_us; };
static struct hist h_deliver, h_http, h_join;

static void hist_reset(struct hist *h) { memset(h, 0, sizeof *h); }

static void hist_add(struct hist *h, int64_t ns) {
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
    if (us > h->max_us) h->max_us = us;
    uint64_t i = us < H_FINE ? us : H_FINE + (us - H_FINE) / 1000;
    if (i > H_FINE + H_COARSE) i = H_FINE + H_COARSE;
    h->b[i]++;
    h->count++;
}

static uint64_t hist_pct(const struct hist *h, double p) {
    if (!h->count) return 0;
    uint64_t want = (uint64_t)(p * (double)h->count), seen = 0;
    if (want >= h->count) want = h->count - 1;
    for (uint64_t i = 0; i <= H_FINE + H_COARSE; i++) {
        seen += h->b[i];
        if (seen > want) {
            if (i == H_FINE + H_COARSE) return h->max_us;
            return i < H_FINE ? i : H_FINE + (i - H_FINE) * 1000;
        }
    }
    return h->max_us;
}

static void hist_print(const char *prefix, const struct hist *h) {
    printf("%s_samples=%llu\n%s_p50_us=%llu\n%s_p99_us=%llu\n%s_p999_us=%llu\n%s_max_us=%llu\n",
           prefix, (unsigned long long)h->count, prefix, (unsigned long long)hist_pct(h, 0.5),
           prefix, (unsigned long long)hist_pct(h, 0.99), prefix, (unsigned long long)hist_pct(h, 0.999),
           prefix, (unsigned long long)h->max_us);
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
    char *p = strrchr(buf, ')');
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

/* /proc/stat times of one CPU: [0] busy (everything but idle and iowait), [1] irq + softirq, [2] total. */
static int cpu_times(int cpu, unsigned long long out[3]) {
    char want[16], line[512];
    int wl = snprintf(want, sizeof want, "cpu%d ", cpu);
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, (size_t)wl)) continue;
        unsigned long long v[8] = {0};
        if (sscanf(line + wl, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) >= 7) {
            out[2] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
            out[0] = out[2] - v[3] - v[4];
            out[1] = v[5] + v[6];
            found = 0;
        }
        break;
    }
    fclose(f);
    return found;
}

struct cpu_mark { double self, server; uint64_t t; unsigned long long cpu[3], ccpu[3]; int cpu_ok, ccpu_ok; };

static struct cpu_mark cpu_mark(void) {
    struct cpu_mark m = {self_cpu_s(), opt.watch_pid ? proc_cpu_s(opt.watch_pid) : -1, clock_ns(), {0, 0, 0}, {0, 0, 0}, 0, 0};
    if (opt.server_cpu >= 0) m.cpu_ok = cpu_times(opt.server_cpu, m.cpu) == 0;
    if (opt.client_cpu >= 0) m.ccpu_ok = cpu_times(opt.client_cpu, m.ccpu) == 0;
    return m;
}

static void cpu_print(const char *prefix, struct cpu_mark m, uint64_t end_ns) {
    double secs = (double)(end_ns - m.t) / 1e9;
    if (secs <= 0) return;
    printf("%s_loadgen_cpu_pct=%.0f\n", prefix, 100.0 * (self_cpu_s() - m.self) / secs);
    if (opt.watch_pid && m.server >= 0) {
        double s = proc_cpu_s(opt.watch_pid);
        if (s >= 0) printf("%s_server_cpu_pct=%.0f\n", prefix, 100.0 * (s - m.server) / secs);
        else server_gone = 1;
    }
    unsigned long long c[3];
    if (m.cpu_ok && cpu_times(opt.server_cpu, c) == 0 && c[2] > m.cpu[2]) {
        /* The server's CPU as a whole: with IRQ time accounting, softirq work (loopback TCP
         * receive processing) shows here and not in the process's own times. */
        double tot = (double)(c[2] - m.cpu[2]);
        printf("%s_server_core_busy_pct=%.0f\n%s_server_core_irq_pct=%.0f\n", prefix, 100.0 * (double)(c[0] - m.cpu[0]) / tot,
               prefix, 100.0 * (double)(c[1] - m.cpu[1]) / tot);
    }
    if (m.ccpu_ok && cpu_times(opt.client_cpu, c) == 0 && c[2] > m.ccpu[2])
        printf("%s_loadgen_core_busy_pct=%.0f\n", prefix, 100.0 * (double)(c[0] - m.ccpu[0]) / (double)(c[2] - m.ccpu[2]));
}

/* ---- crypto ---------------------------------------------------------------- */

static SHA256_CTX hmac_inner, hmac_outer; /* keyed once with the app secret */

static void hmac_init(const char *secret) {
    uint8_t k[64] = {0}, ip[64], op[64];
    size_t kl = strlen(secret);
    if (kl > 64) SHA256((const uint8_t *)secret, kl, k);
    else memcpy(k, secret, kl);
    for (int i = 0; i < 64; i++) { ip[i] = k[i] ^ 0x36; op[i] = k[i] ^ 0x5c; }
    SHA256_Init(&hmac_inner);
    SHA256_Update(&hmac_inner, ip, 64);
    SHA256_Init(&hmac_outer);
    SHA256_Update(&hmac_outer, op, 64);
}

static const char hexd[] = "0123456789abcdef";

static void to_hex(const uint8_t *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) { out[2 * i] = hexd[p[i] >> 4]; out[2 * i + 1] = hexd[p[i] & 15]; }
    out[2 * n] = 0;
}

/* hex(HMAC-SHA256(secret, msg)) into out[65]. */
static void hmac_hex(const void *msg, size_t n, char *out) {
    uint8_t inner[32], mac[32];
    SHA256_CTX c = hmac_inner;
    SHA256_Update(&c, msg, n);
    SHA256_Final(inner, &c);
    c = hmac_outer;
    SHA256_Update(&c, inner, 32);
    SHA256_Final(mac, &c);
    to_hex(mac, 32, out);
}

static void md5_hex(const void *p, size_t n, char *out) {
    uint8_t d[16];
    MD5(p, n, d);
    to_hex(d, 16, out);
}

/* ---- buffers --------------------------------------------------------------- */

static void grow(uint8_t **p, uint32_t *cap, uint64_t need) {
    if (need <= *cap) return;
    uint64_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    if (c > MAX_BUF) { fprintf(stderr, "pusher_bench: buffer past %u bytes\n", MAX_BUF); exit(1); }
    uint8_t *q = realloc(*p, c);
    if (!q) die("realloc");
    *p = q;
    *cap = (uint32_t)c;
}

static void mark_dirty(struct conn *c) {
    if (!c->dirty) { c->dirty = 1; dirty_list[ndirty++] = c - conns; }
}

static uint8_t *out_reserve(struct conn *c, size_t n) {
    if (c->outoff == c->outlen) c->outoff = c->outlen = 0;
    else if (c->outoff > c->outcap / 2) {
        memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
        c->outlen -= c->outoff;
        c->outoff = 0;
    }
    grow(&c->out, &c->outcap, (uint64_t)c->outlen + n);
    return c->out + c->outlen;
}

static void queue_raw(struct conn *c, const void *p, size_t n) {
    memcpy(out_reserve(c, n), p, n);
    c->outlen += (uint32_t)n;
    mark_dirty(c);
}

/* A masked client frame (RFC 6455 §5.2, §5.3). */
static void queue_frame(struct conn *c, int opcode, const void *payload, size_t len) {
    uint8_t *d = out_reserve(c, len + 14), *start = d;
    *d++ = (uint8_t)(0x80 | opcode);
    if (len < 126) *d++ = (uint8_t)(0x80 | len);
    else if (len < 65536) { *d++ = 0x80 | 126; *d++ = (uint8_t)(len >> 8); *d++ = (uint8_t)len; }
    else { *d++ = 0x80 | 127; for (int i = 7; i >= 0; i--) *d++ = (uint8_t)((uint64_t)len >> (8 * i)); }
    uint32_t key = rng32();
    uint8_t m[4];
    memcpy(m, &key, 4);
    memcpy(d, m, 4);
    d += 4;
    const uint8_t *s = payload;
    for (size_t i = 0; i < len; i++) d[i] = s[i] ^ m[i & 3];
    c->outlen += (uint32_t)(d - start + len);
    mark_dirty(c);
}

static void queue_text(struct conn *c, const char *s, size_t n) { queue_frame(c, 0x1, s, n); }

/* ---- connections ----------------------------------------------------------- */

static uint64_t tag(struct conn *c) { return ((uint64_t)c->gen << 32) | (uint64_t)(c - conns); }

static void conn_close(struct conn *c) {
    if (c->state == ST_FREE) return;
    if (c->state == ST_OPEN || c->state == ST_WAIT_EST) n_open--;
    else n_connecting--;
    close(c->fd); /* SO_LINGER 0: an RST, no TIME_WAIT */
    c->fd = -1;
    c->state = ST_FREE;
    c->gen++;
    c->inlen = c->outoff = c->outlen = 0;
    c->want_out = 0;
}

static void conn_fail(struct conn *c, const char *why) {
    if (c->state == ST_OPEN || c->state == ST_WAIT_EST) n_dropped++;
    else n_failed++;
    if (n_failed + n_dropped <= 5)
        fprintf(stderr, "pusher_bench: %s connection %ld: %s\n", c->kind == K_WS ? "ws" : "http", (long)(c - conns), why);
    conn_close(c);
}

static int conn_start(struct conn *c, int src_last_octet) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { fprintf(stderr, "pusher_bench: socket: %s\n", strerror(errno)); n_failed++; return -1; }
    int one = 1;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)src_last_octet);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        fprintf(stderr, "pusher_bench: bind 127.0.0.%d: %s\n", src_last_octet, strerror(errno));
        close(fd);
        n_failed++;
        return -1;
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->inlen = c->outoff = c->outlen = 0;
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

static void flush_dirty(void) {
    for (long i = 0; i < ndirty; i++) {
        struct conn *c = &conns[dirty_list[i]];
        c->dirty = 0;
        if (c->state != ST_FREE && c->state != ST_CONNECTING && !c->want_out) conn_flush(c);
    }
    ndirty = 0;
}

/* ---- JSON bits ---------------------------------------------------------------- */

/* The string value of the first `"key":"` in p[0..n), unescaped quotes ending it. */
static int str_field(const uint8_t *p, size_t n, const char *key, const uint8_t **val, size_t *vlen) {
    char pat[64];
    int pl = snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const uint8_t *s = memmem(p, n, pat, (size_t)pl);
    if (!s) return 0;
    s += pl;
    const uint8_t *e = s, *end = p + n;
    while (e < end && *e != '"') e += (*e == '\\') ? 2 : 1;
    if (e >= end) return 0;
    *val = s;
    *vlen = (size_t)(e - s);
    return 1;
}

static int eq(const uint8_t *v, size_t n, const char *s) { return strlen(s) == n && !memcmp(v, s, n); }

/* ---- scenario state ------------------------------------------------------------- */

static long *room_believed;       /* presence: members the client believes each room has */
static int churning;              /* presence: start new leave/join operations */
static long churn_inflight_now;
static int publishing_closed;     /* channels/api: refill on each response */
static long rr_next;              /* round robin over HTTP connections */
static char *channels_body;       /* the GET /channels response */
static size_t channels_body_len;
static int channels_status;

static const char *api_channel(void) { return opt.subscribers ? "api-bench" : "api-nobody"; }

static long room_of(long conn, long slot) { return (conn * opt.per_conn + slot) % opt.rooms; }

static void presence_subscribe(struct conn *c, long slot) {
    long i = c - conns, room = room_of(i, slot);
    char chan[64], cdata[128], sts[320], sig[65], msg[640];
    snprintf(chan, sizeof chan, "presence-room-%ld", room);
    /* A fresh user_info each time: a newly signed channel_data, as a backend would issue. */
    int cl = snprintf(cdata, sizeof cdata, "{\"user_id\":\"u%ld\",\"user_info\":{\"v\":%u}}", i, rng32() % 1000000);
    int sl = snprintf(sts, sizeof sts, "%s:%s:%.*s", c->sid, chan, cl, cdata);
    hmac_hex(sts, (size_t)sl, sig);
    /* channel_data goes inside the JSON as a string: the same bytes, quotes escaped. */
    char esc[256];
    size_t el = 0;
    for (int k = 0; k < cl; k++) { if (cdata[k] == '"') esc[el++] = '\\'; esc[el++] = cdata[k]; }
    esc[el] = 0;
    int ml = snprintf(msg, sizeof msg,
                  "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"%s:%s\",\"channel_data\":\"%s\"}}",
                  chan, opt.key, sig, esc);
    queue_text(c, msg, (size_t)ml);
    c->pending_subs++;
}

static void presence_unsubscribe(struct conn *c, long slot) {
    char msg[160];
    int ml = snprintf(msg, sizeof msg, "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"presence-room-%ld\"}}",
                      room_of(c - conns, slot));
    queue_text(c, msg, (size_t)ml);
}

static void public_subscribe(struct conn *c, const char *chan) {
    char msg[160];
    int ml = snprintf(msg, sizeof msg, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\"}}", chan);
    queue_text(c, msg, (size_t)ml);
    c->pending_subs++;
}

static void on_established(struct conn *c) {
    long i = c - conns;
    char chan[64];
    switch (opt.mode) {
    case MODE_CHANNELS:
        snprintf(chan, sizeof chan, "user-%ld", i);
        public_subscribe(c, chan);
        snprintf(chan, sizeof chan, "group-%ld", i / opt.group_size);
        public_subscribe(c, chan);
        break;
    case MODE_PRESENCE:
        for (long s = 0; s < opt.per_conn; s++) presence_subscribe(c, s);
        break;
    case MODE_API:
        public_subscribe(c, api_channel());
        break;
    }
}

static void churn_start_one(void);

static void on_subscribed(struct conn *c, const uint8_t *chan, size_t clen) {
    long i = c - conns;
    if (!c->pending_subs) { n_unexpected++; return; }
    c->pending_subs--;
    if (opt.mode == MODE_PRESENCE) {
        long room;
        if (clen < 14 || memcmp(chan, "presence-room-", 14) != 0) { n_bad_channel++; return; }
        room = strtol((const char *)chan + 14, NULL, 10);
        if (c->busy) {
            if (room != room_of(i, c->busy_slot)) { n_bad_channel++; return; }
            c->busy = 0;
            churn_inflight_now--;
            n_joins++;
            n_leaves++;
            hist_add(&h_join, (int64_t)(now_ns - c->op_start));
            if (churning) churn_start_one();
            return;
        }
        long slot = -1;
        for (long s = 0; s < opt.per_conn; s++) if (room_of(i, s) == room) slot = s;
        if (slot < 0) { n_bad_channel++; return; }
        c->subs_mask |= 1u << slot;
        room_believed[room]++;
        n_setup_msgs++;
    }
    if (c->pending_subs == 0 && c->busy == 0) n_ready++;
}

static void on_event_delivery(struct conn *c, const uint8_t *p, size_t n) {
    const uint8_t *v;
    size_t vl;
    long i = c - conns;
    if (!str_field(p, n, "data", &v, &vl) || vl < 3 || v[0] != 't' || v[1] != '=') { n_unexpected++; return; }
    uint64_t t = strtoull((const char *)v + 2, NULL, 10);
    hist_add(&h_deliver, (int64_t)(now_ns - t));
    n_delivered++;
    if (!str_field(p, n, "channel", &v, &vl)) { n_bad_channel++; return; }
    char want[64];
    if (opt.mode == MODE_CHANNELS) {
        if (vl > 5 && !memcmp(v, "user-", 5)) snprintf(want, sizeof want, "user-%ld", i);
        else snprintf(want, sizeof want, "group-%ld", i / opt.group_size);
    } else {
        snprintf(want, sizeof want, "%s", api_channel());
    }
    if (!eq(v, vl, want)) n_bad_channel++;
}

static void on_text(struct conn *c, const uint8_t *p, size_t n) {
    const uint8_t *ev, *ch;
    size_t evl, chl = 0;
    if (!str_field(p, n, "event", &ev, &evl)) { n_unexpected++; return; }
    if (eq(ev, evl, "ev")) { on_event_delivery(c, p, n); return; }
    if (eq(ev, evl, "pusher_internal:member_added")) { n_member_added++; return; }
    if (eq(ev, evl, "pusher_internal:member_removed")) { n_member_removed++; return; }
    if (eq(ev, evl, "pusher_internal:subscription_succeeded")) {
        if (!str_field(p, n, "channel", &ch, &chl)) { n_unexpected++; return; }
        on_subscribed(c, ch, chl);
        return;
    }
    if (eq(ev, evl, "pusher:connection_established")) {
        const uint8_t *s = memmem(p, n, "socket_id\\\":\\\"", 14);
        if (!s || c->state != ST_WAIT_EST) { conn_fail(c, "bad connection_established"); return; }
        s += 14;
        size_t k = 0;
        while (s + k < p + n && s[k] != '\\' && k < sizeof c->sid - 1) k++;
        memcpy(c->sid, s, k);
        c->sid[k] = 0;
        c->state = ST_OPEN;
        on_established(c);
        return;
    }
    if (eq(ev, evl, "pusher:ping")) {
        static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
        queue_text(c, pong, sizeof pong - 1);
        n_pings++;
        return;
    }
    if (eq(ev, evl, "pusher:pong")) {
        if (c->pong_wanted) { c->pong_wanted--; n_pongs++; }
        return;
    }
    if (eq(ev, evl, "pusher:subscription_error") || eq(ev, evl, "pusher:error")) {
        if (ev[7] == 's') n_sub_errors++;
        else n_pusher_errors++;
        if (n_sub_errors + n_pusher_errors <= 5)
            fprintf(stderr, "pusher_bench: connection %ld: %.*s\n", (long)(c - conns), (int)(n > 300 ? 300 : n), (const char *)p);
        return;
    }
    n_unexpected++;
    if (n_unexpected <= 3) fprintf(stderr, "pusher_bench: unexpected frame: %.*s\n", (int)(n > 200 ? 200 : n), (const char *)p);
}

/* ---- WebSocket and HTTP input ------------------------------------------------------------ */

static long parse_upgrade(struct conn *c) {
    uint8_t *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end) return c->inlen > 8192 ? -1 : 0;
    long headlen = end - c->in + 4;
    if (c->inlen < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0) return -1;
    uint8_t *a = memmem(c->in, (size_t)headlen, ws_accept, strlen(ws_accept));
    return a ? headlen : -1;
}

static int parse_frames(struct conn *c) {
    uint32_t pos = 0;
    while (c->inlen - pos >= 2) {
        uint8_t *p = c->in + pos;
        int fin = p[0] & 0x80, op = p[0] & 0x0f;
        if (p[1] & 0x80) { conn_fail(c, "server frame is masked"); return -1; }
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
        if (len > MAX_BUF / 2) { conn_fail(c, "server frame too large"); return -1; }
        if (c->inlen - pos < h + len) { grow(&c->in, &c->incap, h + len + pos); break; }
        uint8_t *pl = p + h;
        switch (op) {
        case 0x9: n_pings++; queue_frame(c, 0xA, pl, (size_t)len); break;
        case 0xA: break;
        case 0x8: conn_fail(c, "server sent close"); return -1;
        case 0x1:
            if (!fin) { n_errors++; break; }
            on_text(c, pl, (size_t)len);
            if (c->state == ST_FREE) return -1;
            break;
        default: n_errors++;
        }
        pos += h + (uint32_t)len;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->inlen - pos);
        c->inlen -= pos;
    }
    return 0;
}

static void publish_on(struct conn *c);

static void on_http_response(struct conn *c, int status, const uint8_t *body, size_t blen) {
    if (!c->nout) { n_unexpected++; return; }
    struct req r = c->ring[c->ring_head];
    c->ring_head = (c->ring_head + 1) % c->ringcap;
    c->nout--;
    if (r.kind == R_CHANNELS) {
        channels_status = status;
        free(channels_body);
        channels_body = malloc(blen + 1);
        memcpy(channels_body, body, blen);
        channels_body[blen] = 0;
        channels_body_len = blen;
        return;
    }
    hist_add(&h_http, (int64_t)(now_ns - r.t));
    if (status == 200) {
        n_accepted++;
        n_expected += r.expect;
    } else {
        n_non200++;
        if (n_non200 <= 3) fprintf(stderr, "pusher_bench: HTTP %d: %.*s\n", status, (int)(blen > 300 ? 300 : blen), (const char *)body);
    }
    if (publishing_closed && !stop_signal) publish_on(c);
}

static int parse_http(struct conn *c) {
    uint32_t pos = 0;
    for (;;) {
        uint8_t *p = c->in + pos;
        size_t avail = c->inlen - pos;
        uint8_t *end = memmem(p, avail, "\r\n\r\n", 4);
        if (!end) break;
        size_t headlen = (size_t)(end - p) + 4;
        if (avail < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0) { conn_fail(c, "bad HTTP response"); return -1; }
        int status = atoi((const char *)p + 9);
        long cl = -1;
        for (uint8_t *l = memchr(p, '\n', headlen); l && l < end; l = memchr(l + 1, '\n', (size_t)(end - l))) {
            if (!strncasecmp((const char *)l + 1, "content-length:", 15)) cl = strtol((const char *)l + 16, NULL, 10);
        }
        if (cl < 0) { conn_fail(c, "HTTP response without Content-Length"); return -1; }
        if (avail < headlen + (size_t)cl) { grow(&c->in, &c->incap, pos + headlen + (size_t)cl); break; }
        on_http_response(c, status, p + headlen, (size_t)cl);
        if (c->state == ST_FREE) return -1;
        pos += (uint32_t)(headlen + (size_t)cl);
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->inlen - pos);
        c->inlen -= pos;
    }
    return 0;
}

static void on_readable(struct conn *c) {
    for (;;) {
        if (c->inlen == c->incap) grow(&c->in, &c->incap, (uint64_t)c->incap + 1);
        size_t want = c->incap - c->inlen;
        ssize_t n = read(c->fd, c->in + c->inlen, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n <= 0) { conn_fail(c, n == 0 ? "server closed the connection" : strerror(errno)); return; }
        c->inlen += (uint32_t)n;
        if (c->kind == K_HTTP) {
            if (parse_http(c) < 0) return;
        } else {
            if (c->state == ST_UPGRADING) {
                long used = parse_upgrade(c);
                if (used < 0) { conn_fail(c, "bad upgrade response"); return; }
                if (used == 0) continue;
                memmove(c->in, c->in + used, c->inlen - (uint32_t)used);
                c->inlen -= (uint32_t)used;
                c->state = ST_WAIT_EST;
                n_connecting--;
                n_open++;
            }
            if (parse_frames(c) < 0) return;
        }
        if ((size_t)n < want) break;
    }
}

static void on_writable(struct conn *c) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) { conn_fail(c, strerror(err)); return; }
        if (c->kind == K_WS) {
            c->state = ST_UPGRADING;
            queue_raw(c, upgrade_req, upgrade_len);
        } else {
            c->state = ST_OPEN;
            n_connecting--;
            n_open++;
        }
    }
    c->want_out = 0;
    if (c->outlen > c->outoff) conn_flush(c);
}

static int run_loop_once(int timeout_ms) {
    static struct epoll_event evs[1024];
    flush_dirty();
    int n = epoll_wait(epfd, evs, 1024, timeout_ms);
    now_ns = clock_ns();
    now_wall = (long)time(NULL);
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
    flush_dirty();
    return n;
}

static int ms_until(uint64_t t) {
    if (t <= now_ns) return 0;
    uint64_t ms = (t - now_ns + 999999) / 1000000;
    return ms > 100 ? 100 : (int)ms;
}

static int past_deadline(void) {
    if (now_ns < deadline_ns) return 0;
    fprintf(stderr, "pusher_bench: hard deadline of %.0f s reached\n", opt.deadline);
    printf("deadline_exceeded=1\n");
    return 1;
}

static int server_alive(void) {
    if (!opt.watch_pid) return 1;
    if (proc_cpu_s(opt.watch_pid) < 0) { server_gone = 1; return 0; }
    return 1;
}

/* ---- HTTP requests ------------------------------------------------------------------- */

static int push_req(struct conn *c, uint64_t t, uint32_t expect, uint32_t kind) {
    if (c->nout == c->ringcap) return -1;
    c->ring[(c->ring_head + c->nout) % c->ringcap] = (struct req){t, expect, kind};
    c->nout++;
    return 0;
}

static void send_publish(struct conn *c, const char *chan, uint32_t expect, uint64_t t) {
    char body[5200], q[256], sts[320], sig[65], md5[33];
    int bl = snprintf(body, sizeof body, "{\"name\":\"ev\",\"channel\":\"%s\",\"data\":\"t=%llu;%s\"}",
                      chan, (unsigned long long)t, pad);
    md5_hex(body, (size_t)bl, md5);
    int ql = snprintf(q, sizeof q, "auth_key=%s&auth_timestamp=%ld&auth_version=1.0&body_md5=%s", opt.key, now_wall, md5);
    int sl = snprintf(sts, sizeof sts, "POST\n/apps/%s/events\n%.*s", opt.app_id, ql, q);
    hmac_hex(sts, (size_t)sl, sig);
    char head[640];
    int hl = snprintf(head, sizeof head,
                      "POST /apps/%s/events?%s&auth_signature=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
                      opt.app_id, q, sig, opt.host, opt.port, bl);
    uint8_t *d = out_reserve(c, (size_t)(hl + bl));
    memcpy(d, head, (size_t)hl);
    memcpy(d + hl, body, (size_t)bl);
    c->outlen += (uint32_t)(hl + bl);
    mark_dirty(c);
    push_req(c, t, expect, R_PUBLISH);
    n_sent++;
}

static long group_members(long g) {
    long first = g * opt.group_size, left = opt.connections - first;
    return left < opt.group_size ? left : opt.group_size;
}

/* One publish on connection c (which has room in its ring), to a target of the scenario. */
static void publish_at(struct conn *c, uint64_t t) {
    char chan[64];
    if (opt.mode == MODE_API) { send_publish(c, api_channel(), opt.subscribers ? 1 : 0, t); return; }
    long i = (long)(rng32() % (uint32_t)opt.connections);
    if (rng01() < opt.group_frac) {
        long g = i / opt.group_size;
        snprintf(chan, sizeof chan, "group-%ld", g);
        send_publish(c, chan, (uint32_t)group_members(g), t);
    } else {
        snprintf(chan, sizeof chan, "user-%ld", i);
        send_publish(c, chan, 1, t);
    }
}

static void publish_on(struct conn *c) {
    if (c->state == ST_OPEN && c->nout < c->ringcap) publish_at(c, now_ns);
}

/* Open loop: the next HTTP connection with fewer than queue_cap outstanding, or NULL. */
static struct conn *pick_http(long cap) {
    for (long k = 0; k < opt.http_conns; k++) {
        struct conn *c = &conns[http_first + (rr_next++ % opt.http_conns)];
        if (c->state == ST_OPEN && c->nout < (uint32_t)cap) return c;
    }
    return NULL;
}

static void send_channels_query(struct conn *c) {
    char q[256], sts[320], sig[65], head[768];
    int ql = snprintf(q, sizeof q, "auth_key=%s&auth_timestamp=%ld&auth_version=1.0&filter_by_prefix=presence-&info=user_count",
                      opt.key, now_wall);
    int sl = snprintf(sts, sizeof sts, "GET\n/apps/%s/channels\n%.*s", opt.app_id, ql, q);
    hmac_hex(sts, (size_t)sl, sig);
    int hl = snprintf(head, sizeof head, "GET /apps/%s/channels?%s&auth_signature=%s HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
                      opt.app_id, q, sig, opt.host, opt.port);
    queue_raw(c, head, (size_t)hl);
    push_req(c, now_ns, 0, R_CHANNELS);
}

/* ---- setup --------------------------------------------------------------------------- */

/* Opens every connection (WebSocket ones: upgrade, established, subscriptions acknowledged).
 * Returns 0 when all are ready. */
static int setup(void) {
    long next = 0, http_next = 0;
    uint64_t t0 = now_ns, last_report = now_ns;
    for (;;) {
        while (http_next < opt.http_conns) {
            struct conn *c = &conns[http_first + http_next++];
            conn_start(c, 1);
        }
        while (next < nws && n_connecting < opt.connect_inflight && !stop_signal) {
            struct conn *c = &conns[next];
            conn_start(c, opt.src_first + (int)(next / opt.per_src));
            next++;
        }
        long http_open = 0;
        for (long k = 0; k < opt.http_conns; k++) http_open += conns[http_first + k].state == ST_OPEN;
        if (n_ready >= nws && http_open == opt.http_conns) break;
        if (n_failed || n_dropped) { fprintf(stderr, "pusher_bench: %ld connections failed during setup\n", n_failed + n_dropped); return 1; }
        if (stop_signal || past_deadline()) return 1;
        run_loop_once(50);
        if (now_ns - last_report > 2000000000ull) {
            last_report = now_ns;
            if (!server_alive()) { fprintf(stderr, "pusher_bench: the server is gone\n"); return 1; }
            if (!opt.quiet) fprintf(stderr, "setup: open=%ld ready=%ld connecting=%ld\n", n_open, n_ready, n_connecting);
        }
    }
    double secs = (double)(now_ns - t0) / 1e9;
    printf("setup_connections=%ld\nsetup_ws_connections=%ld\nsetup_http_connections=%ld\nsetup_seconds=%.2f\n",
           n_open, n_open - opt.http_conns, opt.http_conns, secs);
    return 0;
}

/* Waits until pred() or `secs`; returns 1 if pred() held. */
static int wait_until(int (*pred)(void), double secs) {
    uint64_t end = now_ns + (uint64_t)(secs * 1e9);
    while (!pred()) {
        if (now_ns >= end || stop_signal || past_deadline()) return pred();
        run_loop_once(ms_until(end));
    }
    return 1;
}

static int http_idle(void) {
    for (long k = 0; k < opt.http_conns; k++) if (conns[http_first + k].nout) return 0;
    return 1;
}

static int drained(void) { return http_idle() && n_delivered >= n_expected; }

/* ---- channels ------------------------------------------------------------------------------ */

struct snap { uint64_t sent, accepted, non200, skipped, delivered, expected, t; };

static struct snap snap_now(void) {
    return (struct snap){n_sent, n_accepted, n_non200, n_skipped, n_delivered, n_expected, now_ns};
}

static void print_step(const char *p, struct snap a, struct snap b, struct cpu_mark m, double offered) {
    double secs = (double)(b.t - a.t) / 1e9;
    printf("%s_seconds=%.3f\n", p, secs);
    if (offered > 0) printf("%s_offered_per_sec=%.0f\n", p, offered);
    printf("%s_sent_per_sec=%.0f\n%s_accepted_per_sec=%.0f\n%s_deliveries_per_sec=%.0f\n",
           p, (double)(b.sent - a.sent) / secs, p, (double)(b.accepted - a.accepted) / secs,
           p, (double)(b.delivered - a.delivered) / secs);
    printf("%s_accepted=%llu\n%s_non200=%llu\n%s_skipped=%llu\n", p, (unsigned long long)(b.accepted - a.accepted),
           p, (unsigned long long)(b.non200 - a.non200), p, (unsigned long long)(b.skipped - a.skipped));
    cpu_print(p, m, b.t);
}

static int run_channels(void) {
    if (setup()) return 1;
    char prefix[64];
    int step = 0, rc = 0;
    const char *r = opt.rates;
    double total_secs = 0;
    uint64_t total_accepted0 = n_accepted;
    while (r && *r && !stop_signal) {
        double rate = strtod(r, NULL);
        r = strchr(r, ',');
        if (r) r++;
        if (rate <= 0) continue;
        step++;
        snprintf(prefix, sizeof prefix, "channels_step%d", step);
        hist_reset(&h_deliver);
        hist_reset(&h_http);
        struct snap a = snap_now();
        struct cpu_mark m = cpu_mark();
        uint64_t interval = (uint64_t)(1e9 / rate), next_t = now_ns, end = now_ns + (uint64_t)(opt.step * 1e9);
        while (now_ns < end && !stop_signal) {
            while (next_t <= now_ns && next_t < end) {
                struct conn *c = pick_http(opt.queue_cap);
                if (c) publish_at(c, next_t);
                else n_skipped++;
                next_t += interval;
            }
            if (past_deadline()) { rc = 3; break; }
            run_loop_once(ms_until(next_t < end ? next_t : end));
        }
        struct snap b = snap_now();
        print_step(prefix, a, b, m, rate);
        total_secs += (double)(b.t - a.t) / 1e9;
        int ok = wait_until(drained, 3);
        char hp[80];
        snprintf(hp, sizeof hp, "%s_delivery", prefix);
        hist_print(hp, &h_deliver);
        snprintf(hp, sizeof hp, "%s_http", prefix);
        hist_print(hp, &h_http);
        printf("%s_drained=%d\n", prefix, ok);
        if (!opt.quiet)
            fprintf(stderr, "channels step %d: offered %.0f/s, accepted %.0f/s, deliveries %.0f/s, p50 %llu us, p99 %llu us\n",
                    step, rate, (double)(b.accepted - a.accepted) / ((double)(b.t - a.t) / 1e9),
                    (double)(b.delivered - a.delivered) / ((double)(b.t - a.t) / 1e9),
                    (unsigned long long)hist_pct(&h_deliver, 0.5), (unsigned long long)hist_pct(&h_deliver, 0.99));
        if (rc || !server_alive()) break;
    }
    printf("channels_steps=%d\n", step);
    if (opt.closed_secs > 0 && !rc && !stop_signal && server_alive()) {
        /* Closed loop: depth requests in flight on every HTTP connection. */
        hist_reset(&h_deliver);
        hist_reset(&h_http);
        struct snap a = snap_now();
        struct cpu_mark m = cpu_mark();
        publishing_closed = 1;
        for (long k = 0; k < opt.http_conns; k++)
            for (long d = 0; d < opt.depth; d++) publish_on(&conns[http_first + k]);
        uint64_t end = now_ns + (uint64_t)(opt.closed_secs * 1e9);
        while (now_ns < end && !stop_signal) {
            if (past_deadline()) { rc = 3; break; }
            run_loop_once(ms_until(end));
        }
        publishing_closed = 0;
        struct snap b = snap_now();
        print_step("channels_closed", a, b, m, 0);
        total_secs += (double)(b.t - a.t) / 1e9;
        int ok = wait_until(drained, 3);
        hist_print("channels_closed_delivery", &h_deliver);
        hist_print("channels_closed_http", &h_http);
        printf("channels_closed_inflight=%ld\nchannels_closed_drained=%d\n", opt.http_conns * opt.depth, ok);
        if (!opt.quiet)
            fprintf(stderr, "channels closed loop (%ld in flight): accepted %.0f/s, deliveries %.0f/s\n", opt.http_conns * opt.depth,
                    (double)(b.accepted - a.accepted) / ((double)(b.t - a.t) / 1e9),
                    (double)(b.delivered - a.delivered) / ((double)(b.t - a.t) / 1e9));
    }
    wait_until(drained, 3);
    printf("channels_publish_seconds=%.2f\nchannels_accepted_total=%llu\n", total_secs,
           (unsigned long long)(n_accepted - total_accepted0));
    printf("channels_deliveries_expected=%llu\nchannels_deliveries_received=%llu\nchannels_deliveries_missing=%lld\n",
           (unsigned long long)n_expected, (unsigned long long)n_delivered, (long long)n_expected - (long long)n_delivered);
    return rc;
}

/* ---- presence ------------------------------------------------------------------------------ */

static void churn_start_one(void) {
    for (int tries = 0; tries < 16; tries++) {
        long i = (long)(rng32() % (uint32_t)nws);
        struct conn *c = &conns[i];
        if (c->busy || c->state != ST_OPEN || !c->subs_mask) continue;
        long slot;
        do slot = (long)(rng32() % (uint32_t)opt.per_conn); while (!(c->subs_mask & (1u << slot)));
        presence_unsubscribe(c, slot);
        presence_subscribe(c, slot);
        c->busy = 1;
        c->busy_slot = (int8_t)slot;
        c->op_start = now_ns;
        churn_inflight_now++;
        return;
    }
}

static int churn_idle(void) { return churn_inflight_now == 0; }

static long pongs_left;
static int pongs_done(void) {
    long left = 0;
    for (long i = 0; i < nws; i++) left += conns[i].pong_wanted;
    pongs_left = left;
    return left == 0;
}

static int query_done(void) { return channels_status != 0; }

static int run_presence(void) {
    if (opt.per_conn > 32 || opt.per_conn > opt.rooms) { fprintf(stderr, "pusher_bench: --per-conn must be <= 32 and <= --rooms\n"); return 2; }
    room_believed = calloc((size_t)opt.rooms, sizeof *room_believed);
    uint64_t added0 = n_member_added;
    if (setup()) return 1;
    printf("presence_rooms=%ld\npresence_subscriptions=%llu\npresence_setup_member_added=%llu\n", opt.rooms,
           (unsigned long long)n_setup_msgs, (unsigned long long)(n_member_added - added0));
    int rc = 0;

    hist_reset(&h_join);
    uint64_t added_a = n_member_added, removed_a = n_member_removed;
    struct cpu_mark m = cpu_mark();
    uint64_t t0 = now_ns, end = now_ns + (uint64_t)(opt.duration * 1e9);
    churning = 1;
    for (long k = 0; k < opt.inflight; k++) churn_start_one();
    uint64_t next_report = now_ns + 2000000000ull;
    while (now_ns < end && !stop_signal) {
        if (past_deadline()) { rc = 3; break; }
        /* Top up when a pick found no idle connection. */
        while (churn_inflight_now < opt.inflight) { long before = churn_inflight_now; churn_start_one(); if (churn_inflight_now == before) break; }
        run_loop_once(ms_until(end));
        if (now_ns >= next_report) {
            next_report = now_ns + 2000000000ull;
            if (!server_alive()) { rc = 1; break; }
            if (!opt.quiet) fprintf(stderr, "presence: %llu joins so far, %ld in flight\n", (unsigned long long)n_joins, churn_inflight_now);
        }
    }
    churning = 0;
    uint64_t t1 = now_ns;
    uint64_t joins = n_joins, leaves = n_leaves;
    double secs = (double)(t1 - t0) / 1e9;
    printf("presence_seconds=%.3f\npresence_inflight=%ld\n", secs, opt.inflight);
    printf("presence_joins=%llu\npresence_leaves=%llu\n", (unsigned long long)joins, (unsigned long long)leaves);
    printf("presence_joins_per_sec=%.0f\npresence_leaves_per_sec=%.0f\npresence_joins_leaves_per_sec=%.0f\n",
           (double)joins / secs, (double)leaves / secs, (double)(joins + leaves) / secs);
    printf("presence_member_added_per_sec=%.0f\npresence_member_removed_per_sec=%.0f\n",
           (double)(n_member_added - added_a) / secs, (double)(n_member_removed - removed_a) / secs);
    cpu_print("presence", m, t1);
    int idle = wait_until(churn_idle, 10);
    hist_print("presence_join", &h_join);
    printf("presence_churn_finished=%d\n", idle);

    /* Some members leave for good; then every connection's ping must be answered, which
     * (frames being handled in order) means the server has handled every unsubscribe. */
    long left_for_good = 0;
    for (long i = 0; i < nws; i++) {
        struct conn *c = &conns[i];
        if (c->state != ST_OPEN) continue;
        for (long s = 0; s < opt.per_conn; s++) {
            if ((c->subs_mask & (1u << s)) && rng01() < opt.leave_frac) {
                presence_unsubscribe(c, s);
                c->subs_mask &= ~(1u << s);
                room_believed[room_of(i, s)]--;
                left_for_good++;
            }
        }
        static const char ping[] = "{\"event\":\"pusher:ping\",\"data\":{}}";
        queue_text(c, ping, sizeof ping - 1);
        c->pong_wanted++;
    }
    int pongs = wait_until(pongs_done, 15);
    printf("presence_left_for_good=%ld\npresence_pongs_missing=%ld\n", left_for_good, pongs_left);

    /* The server's member counts against the client's. */
    struct conn *h = &conns[http_first];
    channels_status = 0;
    uint64_t q0 = now_ns;
    send_channels_query(h);
    int answered = wait_until(query_done, 10);
    printf("presence_query_status=%d\npresence_query_us=%llu\npresence_query_bytes=%zu\n", channels_status,
           (unsigned long long)((now_ns - q0) / 1000), channels_body_len);
    long mismatches = 0, checked = 0, listed = 0, believed_total = 0, server_total = 0;
    if (answered && channels_status == 200 && channels_body) {
        for (const char *p = strstr(channels_body, "\"presence-"); p; p = strstr(p + 1, "\"presence-")) listed++;
        for (long room = 0; room < opt.rooms; room++) {
            char pat[80];
            snprintf(pat, sizeof pat, "\"presence-room-%ld\":{\"user_count\":", room);
            const char *p = strstr(channels_body, pat);
            long got = p ? strtol(p + strlen(pat), NULL, 10) : 0;
            believed_total += room_believed[room];
            server_total += got;
            checked++;
            if (got != room_believed[room]) {
                if (++mismatches <= 5) fprintf(stderr, "pusher_bench: presence-room-%ld: server says %ld members, client believes %ld\n",
                                                 room, got, room_believed[room]);
            }
        }
    } else {
        fprintf(stderr, "pusher_bench: GET channels answered %d: %.300s\n", channels_status, channels_body ? channels_body : "");
        mismatches = -1;
    }
    printf("presence_rooms_checked=%ld\npresence_rooms_listed=%ld\npresence_count_mismatches=%ld\n", checked, listed, mismatches);
    printf("presence_members_believed=%ld\npresence_members_server=%ld\n", believed_total, server_total);
    printf("presence_verified=%d\n", mismatches == 0 && pongs && idle ? 1 : 0);
    return rc ? rc : (mismatches == 0 && pongs && idle ? 0 : 1);
}

/* ---- api ------------------------------------------------------------------------------------ */

static int run_api(void) {
    if (setup()) return 1;
    int rc = 0;
    publishing_closed = 1;
    for (long k = 0; k < opt.http_conns; k++)
        for (long d = 0; d < opt.depth; d++) publish_on(&conns[http_first + k]);
    uint64_t warm_end = now_ns + (uint64_t)(opt.warmup * 1e9), end = warm_end + (uint64_t)(opt.duration * 1e9);
    while (now_ns < warm_end && !stop_signal && !past_deadline()) run_loop_once(ms_until(warm_end));
    hist_reset(&h_http);
    hist_reset(&h_deliver);
    struct snap a = snap_now();
    struct cpu_mark m = cpu_mark();
    while (now_ns < end && !stop_signal) {
        if (past_deadline()) { rc = 3; break; }
        run_loop_once(ms_until(end));
    }
    publishing_closed = 0;
    struct snap b = snap_now();
    printf("api_connections=%ld\napi_depth=%ld\napi_subscribers=%ld\n", opt.http_conns, opt.depth, opt.subscribers);
    double secs = (double)(b.t - a.t) / 1e9;
    printf("api_seconds=%.3f\napi_requests_per_sec=%.0f\napi_non200=%llu\napi_deliveries_per_sec=%.0f\n", secs,
           (double)(b.accepted - a.accepted) / secs, (unsigned long long)(b.non200 - a.non200),
           (double)(b.delivered - a.delivered) / secs);
    cpu_print("api", m, b.t);
    hist_print("api_http", &h_http);
    int ok = wait_until(drained, 3);
    printf("api_drained=%d\napi_deliveries_missing=%lld\n", ok, (long long)n_expected - (long long)n_delivered);
    return rc ? rc : (n_non200 ? 1 : 0);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
        "usage: pusher_bench channels|presence|api --port P [options]\n"
        "  --host 127.0.0.1        server address (loopback only)\n"
        "  --app-id 1 --key app-key --secret app-secret\n"
        "  --connections N         WebSocket connections (channels 10000, presence 5000, api: --subscribers)\n"
        "  --group-size G          channels: members of each group channel (10)\n"
        "  --group-frac F          channels: share of publishes to group channels (0.5)\n"
        "  --rates R1,R2,...       channels: open-loop publish rates, one step each\n"
        "  --step S                channels: seconds per rate step (2)\n"
        "  --closed S              channels: seconds of closed loop after the steps (2; 0 = none)\n"
        "  --http-conns H          HTTP keep-alive connections (channels 16, presence 1, api 1)\n"
        "  --depth D               requests pipelined per HTTP connection in closed loop (channels 16, api 1)\n"
        "  --queue-cap Q           channels open loop: most requests queued per HTTP connection (64)\n"
        "  --per-conn K            presence: channels per connection (10)\n"
        "  --rooms R               presence: presence channels (1000)\n"
        "  --inflight K            presence: leave+join operations in flight (64)\n"
        "  --leave-frac F          presence: share of members that leave for good before the check (0.1)\n"
        "  --duration D            presence/api: measured seconds (presence 10, api 5)\n"
        "  --warmup S              api: unmeasured seconds first (1)\n"
        "  --subscribers 0|1       api: subscribers of the channel published to (0)\n"
        "  --payload B             bytes of padding in each event's data (64)\n"
        "  --src-first X           WebSocket source addresses start at 127.0.0.X (2)\n"
        "  --per-src N             WebSocket connections per source address (5000)\n"
        "  --deadline S            hard limit on the whole run (120)\n"
        "  --watch-pid PID         report that process's CPU use; stop if it dies\n"
        "  --server-cpu N          also report how busy CPU N was (all processes, irq and softirq)\n"
        "  --client-cpu N          the same for the CPU this load generator runs on\n"
        "  --quiet                 no progress lines\n");
}

static double num(const char *name, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "pusher_bench: %s must be a number in [%g, %g], got \"%s\"\n", name, lo, hi, s);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv) {
    static const struct option lo[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"app-id", 1, 0, 'A'}, {"key", 1, 0, 'K'}, {"secret", 1, 0, 'S'},
        {"connections", 1, 0, 'c'}, {"group-size", 1, 0, 'g'}, {"group-frac", 1, 0, 'G'}, {"rates", 1, 0, 'r'},
        {"step", 1, 0, 's'}, {"closed", 1, 0, 'C'}, {"http-conns", 1, 0, 'H'}, {"depth", 1, 0, 'd'},
        {"queue-cap", 1, 0, 'Q'}, {"per-conn", 1, 0, 'k'}, {"rooms", 1, 0, 'R'}, {"inflight", 1, 0, 'i'},
        {"leave-frac", 1, 0, 'L'}, {"duration", 1, 0, 'D'}, {"warmup", 1, 0, 'W'}, {"subscribers", 1, 0, 'b'},
        {"payload", 1, 0, 'P'}, {"src-first", 1, 0, 'f'}, {"per-src", 1, 0, 'e'}, {"deadline", 1, 0, 'x'},
        {"watch-pid", 1, 0, 'w'}, {"server-cpu", 1, 0, 'u'}, {"client-cpu", 1, 0, 'U'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, '?'}, {0, 0, 0, 0},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(argc < 2 ? stderr : stdout); exit(argc < 2 ? 2 : 0); }
    if (!strcmp(argv[1], "channels")) opt.mode = MODE_CHANNELS;
    else if (!strcmp(argv[1], "presence")) opt.mode = MODE_PRESENCE;
    else if (!strcmp(argv[1], "api")) opt.mode = MODE_API;
    else { fprintf(stderr, "pusher_bench: unknown mode \"%s\"\n", argv[1]); exit(2); }
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = (int)num("--port", optarg, 1, 65535); break;
        case 'A': opt.app_id = optarg; break;
        case 'K': opt.key = optarg; break;
        case 'S': opt.secret = optarg; break;
        case 'c': opt.connections = (long)num("--connections", optarg, 1, 1000000); break;
        case 'g': opt.group_size = (long)num("--group-size", optarg, 1, 100000); break;
        case 'G': opt.group_frac = num("--group-frac", optarg, 0, 1); break;
        case 'r': opt.rates = optarg; break;
        case 's': opt.step = num("--step", optarg, 0.1, 600); break;
        case 'C': opt.closed_secs = num("--closed", optarg, 0, 600); break;
        case 'H': opt.http_conns = (long)num("--http-conns", optarg, 1, 1000); break;
        case 'd': opt.depth = (long)num("--depth", optarg, 1, 1024); break;
        case 'Q': opt.queue_cap = (long)num("--queue-cap", optarg, 1, 4096); break;
        case 'k': opt.per_conn = (long)num("--per-conn", optarg, 1, 32); break;
        case 'R': opt.rooms = (long)num("--rooms", optarg, 1, 1000000); break;
        case 'i': opt.inflight = (long)num("--inflight", optarg, 1, 100000); break;
        case 'L': opt.leave_frac = num("--leave-frac", optarg, 0, 1); break;
        case 'D': opt.duration = num("--duration", optarg, 0.1, 3600); break;
        case 'W': opt.warmup = num("--warmup", optarg, 0, 600); break;
        case 'b': opt.subscribers = (long)num("--subscribers", optarg, 0, 1); break;
        case 'P': opt.payload = (long)num("--payload", optarg, 0, 4000); break;
        case 'f': opt.src_first = (int)num("--src-first", optarg, 2, 254); break;
        case 'e': opt.per_src = (long)num("--per-src", optarg, 1, 28000); break;
        case 'x': opt.deadline = num("--deadline", optarg, 1, 3600); break;
        case 'w': opt.watch_pid = (long)num("--watch-pid", optarg, 1, 1 << 30); break;
        case 'u': opt.server_cpu = (int)num("--server-cpu", optarg, 0, 4095); break;
        case 'U': opt.client_cpu = (int)num("--client-cpu", optarg, 0, 4095); break;
        case 'q': opt.quiet = 1; break;
        default: usage(stderr); exit(2);
        }
    }
    if (optind != argc) { fprintf(stderr, "pusher_bench: unexpected argument \"%s\"\n", argv[optind]); exit(2); }
    if (!opt.port) { fprintf(stderr, "pusher_bench: --port is required\n"); exit(2); }
    if (inet_pton(AF_INET, opt.host, &dst.sin_addr) != 1 || (ntohl(dst.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "pusher_bench: --host must be a 127.x.x.x address\n");
        exit(2);
    }
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)opt.port);
    switch (opt.mode) {
    case MODE_CHANNELS:
        if (!opt.connections) opt.connections = 10000;
        if (!opt.http_conns) opt.http_conns = 16;
        if (!opt.depth) opt.depth = 16;
        nws = opt.connections;
        break;
    case MODE_PRESENCE:
        if (!opt.connections) opt.connections = 5000;
        if (!opt.http_conns) opt.http_conns = 1;
        if (!opt.duration) opt.duration = 10;
        nws = opt.connections;
        break;
    case MODE_API:
        if (!opt.http_conns) opt.http_conns = 1;
        if (!opt.depth) opt.depth = 1;
        if (!opt.duration) opt.duration = 5;
        nws = opt.subscribers;
        opt.connections = nws;
        break;
    }
    if (opt.src_first + (nws ? (nws - 1) / opt.per_src : 0) > 254) { fprintf(stderr, "pusher_bench: source addresses past 127.0.0.254\n"); exit(2); }
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    getrlimit(RLIMIT_NOFILE, &rl);
    nconns = nws + opt.http_conns;
    http_first = nws;
    if ((rlim_t)nconns + 16 > rl.rlim_cur) {
        fprintf(stderr, "pusher_bench: %ld connections need more than the open-file limit %llu\n", nconns, (unsigned long long)rl.rlim_cur);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    upgrade_len = (size_t)snprintf(upgrade_req, sizeof upgrade_req,
        "GET /app/%s?protocol=7&client=bench&version=1 HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
        opt.key, opt.host, opt.port, ws_key);
    for (long i = 0; i < opt.payload; i++) pad[i] = (char)('a' + i % 26);
    pad[opt.payload] = 0;
    hmac_init(opt.secret);
    rng_state ^= (uint64_t)getpid() << 20 ^ clock_ns();

    conns = calloc((size_t)nconns, sizeof *conns);
    dirty_list = calloc((size_t)nconns, sizeof *dirty_list);
    if (!conns || !dirty_list) die("calloc");
    uint32_t ringcap = (uint32_t)(opt.queue_cap > opt.depth ? opt.queue_cap : opt.depth) + 4;
    for (long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->fd = -1;
        c->kind = i < nws ? K_WS : K_HTTP;
        grow(&c->in, &c->incap, c->kind == K_WS ? 2048 : 16384);
        grow(&c->out, &c->outcap, c->kind == K_WS ? 1024 : 16384);
        if (c->kind == K_HTTP) {
            c->ringcap = ringcap;
            c->ring = calloc(ringcap, sizeof *c->ring);
        }
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    now_ns = clock_ns();
    now_wall = (long)time(NULL);
    deadline_ns = now_ns + (uint64_t)(opt.deadline * 1e9);

    int rc;
    switch (opt.mode) {
    case MODE_CHANNELS: rc = run_channels(); break;
    case MODE_PRESENCE: rc = run_presence(); break;
    default: rc = run_api(); break;
    }
    printf("connections_failed=%ld\nconnections_dropped=%ld\nerrors=%ld\nunexpected_frames=%ld\nbad_channel=%ld\n",
           n_failed, n_dropped, n_errors, n_unexpected, n_bad_channel);
    printf("subscription_errors=%ld\npusher_errors=%ld\nserver_pings=%ld\nmember_added=%llu\nmember_removed=%llu\n",
           n_sub_errors, n_pusher_errors, n_pings, (unsigned long long)n_member_added, (unsigned long long)n_member_removed);
    if (server_gone || !server_alive()) printf("server_gone=1\n");
    for (long i = 0; i < nconns; i++) if (conns[i].state != ST_FREE) conn_close(&conns[i]);
    if (!rc && (n_dropped || n_failed || n_errors || n_bad_channel || n_sub_errors || n_pusher_errors)) rc = 1;
    return rc;
}
