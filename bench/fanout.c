/*
 * fanout: publish-to-subscriber fan-out benchmark client for Bridge and nchan.
 *
 * Opens N WebSocket subscribers on one channel, then publishes over HTTP
 * keep-alive at a steady open-loop rate R for D seconds. Every message carries
 * its intended send time (CLOCK_MONOTONIC ns); every subscriber parses it on
 * receipt and records the publish-to-receive latency in a log-linear histogram.
 *
 *   fanout --target bridge|nchan --port P --subscribers N --rate R --duration D
 *          [--size 100] [--publishers 8] [--warmup 1] [--drain 5] [--channel bench]
 *          [--server-pid PID]... [--deadline 60] [--tls [--ca FILE]] [--hold S]
 *
 * With --tls every connection, subscriber and publisher, speaks TLS (wss://, https://);
 * --hold S only connects the subscribers and holds them idle (for memory per connection).
 * One thread, one epoll instance, loopback only. Bounded in count (N, R*D) and in
 * time (--deadline). Results are key=value lines on stdout; progress on stderr.
 * Build: gcc -O2 -Wall -o fanout fanout.c -lssl -lcrypto (it includes common.h, net.h, tls.h and pusher_api.h beside it)
 */
#define _GNU_SOURCE
#define PROG "fanout"
#include "net.h"
#include "pusher_api.h"
#include "tls.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/timerfd.h>

enum target { T_BRIDGE, T_NCHAN };
enum sub_state { S_FREE, S_CONNECTING, S_TLS, S_UPGRADING, S_ESTABLISHING, S_SUBSCRIBING, S_READY };
enum pub_state { P_FREE, P_CONNECTING, P_TLS, P_IDLE, P_BUSY };

#define OUTCAP 512        /* per subscriber: upgrade request, subscribe frame, pongs */
#define SCRATCH (256 * 1024)
#define PUB_INCAP 16384
#define MAX_WATCH 4
#define TAG_TIMER 0xffffffffull
#define TAG_PUB (1ull << 40)

struct sub {
    int fd;
    uint8_t state;
    uint16_t leftlen;  /* bytes of an incomplete frame kept from the last read */
    uint16_t outlen;   /* bytes waiting for EPOLLOUT */
    uint32_t next_seq; /* the sequence number expected next */
    uint8_t *left;
    uint8_t *out;
    SSL *ssl;          /* with --tls, from the TCP connect on */
};

struct pub {
    int fd;
    uint8_t state;
    uint32_t inlen;
    uint32_t outoff, outlen;
    uint64_t sent_ns;
    uint8_t in[PUB_INCAP];
    uint8_t *out;
    SSL *ssl;
};

static struct {
    enum target target;
    const char *host;
    int port;
    long subscribers;
    double rate;
    double duration;
    double warmup;
    double drain;
    double deadline;
    long size;
    long publishers;
    long inflight;
    int src_first;
    long per_src;
    const char *channel;
    const char *app_id, *app_key, *app_secret;
    long watch[MAX_WATCH];
    int nwatch;
    int quiet;
    int tls;
    const char *ca_file;
    double hold;
} opt = {
    .target = T_NCHAN, .host = "127.0.0.1", .subscribers = 1000, .rate = 10, .duration = 10,
    .warmup = 1, .drain = 5, .deadline = 60, .size = 100, .publishers = 8, .inflight = 256,
    .src_first = 2, .per_src = 5000, .channel = "bench",
    .app_id = "1", .app_key = "app-key", .app_secret = "app-secret",
};

static int tfd = -1;
static struct sub *subs;
static struct pub *pubs;
static uint32_t leftcap;
static uint8_t *scratch;
static char sub_request[512];
static size_t sub_request_len;
static char run_id[16];

/* Counters. */
static long n_started, n_connecting, n_ready, n_failed, n_dropped, n_next;
static long n_errors, n_pings, n_pusher_pings, n_foreign, n_gaps, n_out_of_order;
static long n_pub_ok, n_pub_err, n_pub_reconnects;
static uint64_t n_probe_received;         /* deliveries of the readiness probe (seq 0) */
static uint64_t n_recv_measured, n_recv_all;
static uint64_t first_measured_seq = ~0ull; /* deliveries of seq >= this are measured */
static uint64_t last_recv_ns;

/* ---- histogram: log-linear, 128 sub-buckets per power of two (< 0.8% wide) ---- */

#define SUB_BITS 7
#define SUB_COUNT (1 << SUB_BITS)
#define HBUCKETS ((64 - SUB_BITS + 1) * SUB_COUNT)

struct hist {
    uint64_t b[HBUCKETS];
    uint64_t count, max, min, sum;
};

static int hist_index(uint64_t v) {
    if (v < SUB_COUNT) return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - SUB_BITS;
    return (shift + 1) * SUB_COUNT + (int)((v >> shift) & (SUB_COUNT - 1));
}

/* The lowest value of a bucket and its width. */
static uint64_t hist_low(int i, uint64_t *width) {
    if (i < SUB_COUNT) { *width = 1; return (uint64_t)i; }
    int shift = i / SUB_COUNT - 1;
    *width = 1ull << shift;
    return ((uint64_t)(SUB_COUNT + i % SUB_COUNT)) << shift;
}

static void hist_add(struct hist *h, uint64_t v) {
    h->b[hist_index(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max) h->max = v;
    if (h->count == 1 || v < h->min) h->min = v;
}

/* The value at quantile q: the middle of its bucket, clamped to [min, max]. */
static uint64_t hist_q(const struct hist *h, double q) {
    if (!h->count) return 0;
    uint64_t want = (uint64_t)(q * (double)h->count);
    if (want >= h->count) want = h->count - 1;
    uint64_t seen = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        seen += h->b[i];
        if (seen > want) {
            uint64_t w, lo = hist_low(i, &w), v = lo + w / 2;
            if (v > h->max) v = h->max;
            if (v < h->min) v = h->min;
            return v;
        }
    }
    return h->max;
}

static struct hist lat;     /* publish-to-receive, ns */
static struct hist pub_lat; /* HTTP publish request to response, ns */

/* ---- CPU and memory ------------------------------------------------------- */

/* The sum of f over the watched servers; -1 if one of them is gone. */
static double watched_sum(double (*f)(long)) {
    double t = 0;
    for (int i = 0; i < opt.nwatch; i++) {
        double v = f(opt.watch[i]);
        if (v < 0) return -1;
        t += v;
    }
    return t;
}

static double rss_kib(long pid) { return (double)proc_rss_kib(pid); }
static double watched_cpu_s(void) { return watched_sum(proc_cpu_s); }
static long watched_rss_kib(void) { return (long)watched_sum(rss_kib); }

/* Per-CPU jiffies from /proc/stat: tasks (user + nice + system), interrupts (irq + softirq),
 * steal (taken by the hypervisor) and the total. Returns the CPU count. */
#define MAX_CPUS 64
struct cpu_jiffies { unsigned long long task, intr, steal, total; };

static int cpu_times(struct cpu_jiffies c[MAX_CPUS]) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        struct cpu_stat s;
        int id = cpu_stat_parse(line, &s);
        if (id < 0 || id >= MAX_CPUS) continue;
        c[id].task = s.user + s.nice + s.system;
        c[id].intr = s.irq + s.softirq;
        c[id].steal = s.steal;
        c[id].total = cpu_stat_total(&s);
        if (id + 1 > n) n = id + 1;
    }
    fclose(f);
    return n;
}

/* CPU seconds used by every other user-space process on the machine: utime + stime +
 * cutime + cstime of each process that is neither this one nor a watched server, kernel
 * threads left out. Over a window the delta counts short-lived processes too, once their
 * parent has reaped them (their time moves into the parent's cutime/cstime). */
static double foreign_cpu_s(void) { return others_cpu_s(opt.watch, opt.nwatch); }

static void usage(FILE *f) {
    fprintf(f,
        "usage: fanout --target bridge|nchan --port P [options]\n"
        "  --host 127.0.0.1     server address (loopback only)\n"
        "  --subscribers N      WebSocket subscribers on the channel (1000)\n"
        "  --rate R             messages published per second, open loop (10)\n"
        "  --duration D         measured publishing seconds (10)\n"
        "  --warmup S           publishing seconds at the same rate before measuring (1)\n"
        "  --drain S            at most this long after the last publish for deliveries (5)\n"
        "  --size B             payload bytes per message, >= 64 (100)\n"
        "  --publishers K       HTTP keep-alive publisher connections, one request each in flight (8)\n"
        "  --channel NAME       channel name (bench)\n"
        "  --inflight K         subscriber connects in flight (256)\n"
        "  --src-first X        subscribers bind to 127.0.0.X, X+1, ... (2)\n"
        "  --per-src N          subscribers per source address (5000)\n"
        "  --app-id/--app-key/--app-secret   bridge credentials (1, app-key, app-secret)\n"
        "  --server-pid PID     report this process's CPU and RSS (repeatable, summed)\n"
        "  --deadline S         hard limit on the whole run (60)\n"
        "  --tls                subscribers and publishers speak TLS (wss://, https://)\n"
        "  --ca FILE            with --tls: check the server's certificate against this CA (default: no check)\n"
        "  --hold S             connect the subscribers, hold them idle S seconds, publish nothing\n"
        "  --quiet              no progress lines\n");
}

static int channel_ok(const char *s) {
    if (!*s || strlen(s) > 160) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

static void parse_args(int argc, char **argv) {
    static const struct option longopts[] = {
        {"target", 1, 0, 'T'}, {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"subscribers", 1, 0, 'n'},
        {"rate", 1, 0, 'r'}, {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'W'}, {"drain", 1, 0, 'R'},
        {"size", 1, 0, 's'}, {"publishers", 1, 0, 'K'}, {"channel", 1, 0, 'C'}, {"inflight", 1, 0, 'k'},
        {"src-first", 1, 0, 'f'}, {"per-src", 1, 0, 'e'}, {"app-id", 1, 0, 'a'}, {"app-key", 1, 0, 'A'},
        {"app-secret", 1, 0, 'S'}, {"server-pid", 1, 0, 'x'}, {"deadline", 1, 0, 'D'}, {"quiet", 0, 0, 'q'},
        {"tls", 0, 0, 't'}, {"ca", 1, 0, 'c'}, {"hold", 1, 0, 'O'}, {"help", 0, 0, 'H'}, {0, 0, 0, 0},
    };
    int c, target_set = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'T':
            if (!strcmp(optarg, "bridge")) opt.target = T_BRIDGE;
            else if (!strcmp(optarg, "nchan")) opt.target = T_NCHAN;
            else { fprintf(stderr, "fanout: --target is bridge or nchan\n"); exit(2); }
            target_set = 1;
            break;
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = (int)parse_num("--port", optarg, 1, 65535); break;
        case 'n': opt.subscribers = (long)parse_num("--subscribers", optarg, 1, 60000); break;
        case 'r': opt.rate = parse_num("--rate", optarg, 0.1, 100000); break;
        case 'd': opt.duration = parse_num("--duration", optarg, 0.1, 3600); break;
        case 'W': opt.warmup = parse_num("--warmup", optarg, 0, 600); break;
        case 'R': opt.drain = parse_num("--drain", optarg, 0, 600); break;
        case 's': opt.size = (long)parse_num("--size", optarg, 64, 60000); break;
        case 'K': opt.publishers = (long)parse_num("--publishers", optarg, 1, 256); break;
        case 'C': opt.channel = optarg; break;
        case 'k': opt.inflight = (long)parse_num("--inflight", optarg, 1, 10000); break;
        case 'f': opt.src_first = (int)parse_num("--src-first", optarg, 2, 254); break;
        case 'e': opt.per_src = (long)parse_num("--per-src", optarg, 1, 28000); break;
        case 'a': opt.app_id = optarg; break;
        case 'A': opt.app_key = optarg; break;
        case 'S': opt.app_secret = optarg; break;
        case 'x':
            if (opt.nwatch == MAX_WATCH) { fprintf(stderr, "fanout: at most %d --server-pid\n", MAX_WATCH); exit(2); }
            opt.watch[opt.nwatch++] = (long)parse_num("--server-pid", optarg, 1, 1 << 30);
            break;
        case 'D': opt.deadline = parse_num("--deadline", optarg, 1, 3600); break;
        case 'q': opt.quiet = 1; break;
        case 't': opt.tls = 1; break;
        case 'c': opt.ca_file = optarg; break;
        case 'O': opt.hold = parse_num("--hold", optarg, 0.1, 3600); break;
        case 'H': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    no_more_args(argc, argv);
    if (!target_set || !opt.port) { usage(stderr); exit(2); }
    if (opt.ca_file && !opt.tls) { fprintf(stderr, "fanout: --ca needs --tls\n"); exit(2); }
    if (!channel_ok(opt.channel)) { fprintf(stderr, "fanout: --channel takes [A-Za-z0-9_-]{1,160}\n"); exit(2); }
    long srcs = (opt.subscribers + opt.per_src - 1) / opt.per_src;
    if (opt.src_first + srcs - 1 > 254) { fprintf(stderr, "fanout: source addresses past 127.0.0.254\n"); exit(2); }
    double msgs = opt.rate * (opt.warmup + opt.duration);
    if (msgs > 1e6) { fprintf(stderr, "fanout: rate x (warmup + duration) is capped at 1,000,000 messages\n"); exit(2); }
    set_loopback_dst(opt.host, opt.port);
}

/* ---- subscribers --------------------------------------------------------- */

static void sub_close(struct sub *s, int failed, const char *why) {
    if (s->state == S_FREE) return;
    if (s->state == S_READY) { n_ready--; if (failed) n_dropped++; }
    else { n_connecting--; if (failed) n_failed++; }
    if (failed && !opt.quiet && n_failed + n_dropped <= 5)
        fprintf(stderr, "fanout: subscriber %ld: %s\n", (long)(s - subs), why);
    if (s->ssl) { SSL_free(s->ssl); s->ssl = NULL; }
    close(s->fd);
    s->fd = -1;
    s->state = S_FREE;
    s->leftlen = s->outlen = 0;
}

static void sub_ready(struct sub *s) {
    s->state = S_READY;
    n_connecting--;
    n_ready++;
}

static ssize_t sub_write(struct sub *s, const uint8_t *p, size_t n) {
    return s->ssl ? tls_write(s->ssl, p, n) : write(s->fd, p, n);
}

/* Writes what it can now; the rest waits for EPOLLOUT. */
static void sub_send(struct sub *s, const uint8_t *p, size_t n) {
    if (s->outlen == 0) {
        ssize_t w = sub_write(s, p, n);
        if (w < 0 && errno != EAGAIN && errno != EINTR) { sub_close(s, 1, strerror(errno)); return; }
        if (w < 0) w = 0;
        p += w;
        n -= (size_t)w;
        if (n == 0) return;
    }
    if (s->outlen + n > OUTCAP) { sub_close(s, 1, "output buffer full"); return; }
    memcpy(s->out + s->outlen, p, n);
    s->outlen += (uint16_t)n;
    ep_ctl(EPOLL_CTL_MOD, s->fd, EPOLLIN | EPOLLOUT, (uint64_t)(s - subs));
}

/* A client frame: FIN, opcode, masked payload (RFC 6455 §5.2, §5.3). */
static void sub_send_frame(struct sub *s, int opcode, const uint8_t *payload, size_t len) {
    uint8_t f[OUTCAP];
    if (len > OUTCAP - 8) { sub_close(s, 1, "control payload too large"); return; }
    sub_send(s, f, ws_encode_frame(f, opcode, payload, len));
}

static void sub_start(struct sub *s, long index) {
    const char *step;
    int fd = tcp_start(opt.src_first + (int)(index / opt.per_src), EPOLLIN | EPOLLOUT, (uint64_t)index, &step);
    n_started++;
    if (fd < 0) {
        n_failed++;
        if (!opt.quiet && n_failed <= 5) fprintf(stderr, "fanout: subscriber %ld: %s\n", index, strerror(errno));
        return;
    }
    s->fd = fd;
    s->state = S_CONNECTING;
    s->leftlen = s->outlen = 0;
    s->next_seq = 0;
    n_connecting++;
}

/* Parses an unsigned decimal after `key` in [p, p+n); returns -1 if absent. */
static int find_num(const uint8_t *p, size_t n, const char *key, uint64_t *v) {
    size_t kl = strlen(key);
    const uint8_t *k = memmem(p, n, key, kl);
    if (!k) return -1;
    const uint8_t *d = k + kl, *end = p + n;
    if (d >= end || *d < '0' || *d > '9') return -1;
    uint64_t x = 0;
    while (d < end && *d >= '0' && *d <= '9') x = x * 10 + (uint64_t)(*d++ - '0');
    *v = x;
    return 0;
}

/* One of our messages: "~t=<ns> ~s=<seq> ~r=<run> ...". */
static void on_tick(struct sub *s, const uint8_t *p, size_t n) {
    uint64_t t, seq;
    const uint8_t *r = memmem(p, n, "~r=", 3);
    if (!r || (size_t)(p + n - r) < 3 + strlen(run_id) || memcmp(r + 3, run_id, strlen(run_id)) != 0) {
        n_foreign++;
        return;
    }
    if (find_num(p, n, "~t=", &t) < 0 || find_num(p, n, "~s=", &seq) < 0) { n_errors++; return; }
    n_recv_all++;
    if (seq == s->next_seq) s->next_seq++;
    else if (seq > s->next_seq) { n_gaps += (long)(seq - s->next_seq); s->next_seq = (uint32_t)seq + 1; }
    else n_out_of_order++;
    if (seq == 0) { n_probe_received++; return; }
    if (seq >= first_measured_seq) {
        n_recv_measured++;
        hist_add(&lat, now_ns > t ? now_ns - t : 0);
        last_recv_ns = now_ns;
    }
}

static void on_text(struct sub *s, const uint8_t *p, size_t n) {
    if (opt.target == T_NCHAN) { on_tick(s, p, n); return; }
    /* Pusher protocol 7: every server message is a JSON object with "event". */
    if (s->state == S_READY) {
        if (memmem(p, n, "~t=", 3)) { on_tick(s, p, n); return; }
        if (memmem(p, n, "\"pusher:ping\"", 13)) {
            n_pusher_pings++;
            sub_send_frame(s, 0x1, (const uint8_t *)pusher_pong, sizeof pusher_pong - 1);
            return;
        }
        n_foreign++;
        return;
    }
    if (memmem(p, n, "\"pusher:error\"", 14)) {
        char why[160];
        size_t l = n < sizeof why - 1 ? n : sizeof why - 1;
        memcpy(why, p, l);
        why[l] = 0;
        sub_close(s, 1, why);
        return;
    }
    if (s->state == S_ESTABLISHING && memmem(p, n, "\"pusher:connection_established\"", 31)) {
        char msg[256];
        int l = snprintf(msg, sizeof msg, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\"}}", opt.channel);
        s->state = S_SUBSCRIBING;
        sub_send_frame(s, 0x1, (const uint8_t *)msg, (size_t)l);
        return;
    }
    if (s->state == S_SUBSCRIBING && memmem(p, n, "\"pusher_internal:subscription_succeeded\"", 40)) {
        sub_ready(s);
        return;
    }
    n_foreign++;
}

/* Parses frames in [p, p+n); returns bytes consumed, or -1 if the subscriber was closed. */
static long sub_frames(struct sub *s, const uint8_t *p, size_t n) {
    size_t pos = 0;
    for (;;) {
        struct ws_frame f;
        int r = ws_decode_frame(p + pos, n - pos, &f);
        if (r < 0) { sub_close(s, 1, "server frame is masked"); return -1; }
        if (f.head && f.len + f.head > leftcap) { sub_close(s, 1, "server frame larger than --size allows"); return -1; }
        if (!r) break;
        switch (f.op) {
        case 0x1:
        case 0x2:
            if (!f.fin) { n_errors++; break; } /* fragmented: not expected from either server */
            on_text(s, f.payload, (size_t)f.len);
            break;
        case 0x9:
            n_pings++;
            sub_send_frame(s, 0xA, f.payload, (size_t)f.len);
            break;
        case 0xA:
            break;
        case 0x8:
            sub_close(s, 1, "server sent close");
            return -1;
        default:
            n_errors++;
        }
        if (s->state == S_FREE) return -1;
        pos += f.head + (size_t)f.len;
    }
    return (long)pos;
}

/* Reads once and handles the frames; returns 1 when a TLS read stopped with data still
 * inside OpenSSL, where no epoll event will announce it. */
static int sub_read_once(struct sub *s) {
    memcpy(scratch, s->left, s->leftlen);
    const char *why = "";
    int drained = 1;
    ssize_t r = s->ssl ? tls_read(s->ssl, scratch + s->leftlen, SCRATCH - s->leftlen, &drained, &why)
                       : sock_read(s->fd, scratch + s->leftlen, SCRATCH - s->leftlen, &why);
    if (r == 0) return 0;
    if (r < 0) { sub_close(s, 1, why); return 0; }
    size_t n = s->leftlen + (size_t)r, pos = 0;
    if (s->state == S_UPGRADING) {
        long used = ws_upgrade_response(scratch, n, 4096);
        if (used < 0) {
            char buf[64];
            sub_close(s, 1, ws_upgrade_error(buf, scratch, n));
            return 0;
        }
        if (used == 0) {
            if (n > leftcap) { sub_close(s, 1, "upgrade response too long"); return 0; }
            memcpy(s->left, scratch, n);
            s->leftlen = (uint16_t)n;
            return !drained;
        }
        pos = (size_t)used;
        if (opt.target == T_NCHAN) sub_ready(s);
        else s->state = S_ESTABLISHING;
    }
    long used = sub_frames(s, scratch + pos, n - pos);
    if (used < 0) return 0;
    pos += (size_t)used;
    if (n - pos > leftcap) { sub_close(s, 1, "incomplete frame too long"); return 0; }
    memcpy(s->left, scratch + pos, n - pos);
    s->leftlen = (uint16_t)(n - pos);
    return !drained;
}

/* One step of the TLS handshake; once it is complete, the upgrade request goes out. */
static void sub_tls_step(struct sub *s) {
    const char *why;
    int want_write = 0, r = tls_handshake(s->ssl, &want_write, &why);
    if (r < 0) { sub_close(s, 1, why); return; }
    if (r == 0) { ep_ctl(EPOLL_CTL_MOD, s->fd, want_write ? EPOLLIN | EPOLLOUT : EPOLLIN, (uint64_t)(s - subs)); return; }
    s->state = S_UPGRADING;
    ep_ctl(EPOLL_CTL_MOD, s->fd, EPOLLIN, (uint64_t)(s - subs));
    sub_send(s, (const uint8_t *)sub_request, sub_request_len);
}

static void sub_readable(struct sub *s) {
    if (s->state == S_TLS) { sub_tls_step(s); return; }
    /* Level-triggered: one read per wakeup; what a read leaves undone comes back, except
     * what OpenSSL holds already, which is read on here. */
    while (sub_read_once(s) && s->state != S_FREE) {}
}


static void sub_writable(struct sub *s) {
    if (s->state == S_CONNECTING) {
        int err = sock_error(s->fd);
        if (err) { sub_close(s, 1, strerror(err)); return; }
        if (opt.tls) {
            s->ssl = tls_attach(s->fd, 1);
            if (!s->ssl) { sub_close(s, 1, "SSL_new failed"); return; }
            s->state = S_TLS;
            sub_tls_step(s);
            return;
        }
        s->state = S_UPGRADING;
        ep_ctl(EPOLL_CTL_MOD, s->fd, EPOLLIN, (uint64_t)(s - subs));
        sub_send(s, (const uint8_t *)sub_request, sub_request_len);
        return;
    }
    if (s->state == S_TLS) { sub_tls_step(s); return; }
    if (s->outlen) {
        ssize_t w = sub_write(s, s->out, s->outlen);
        if (w < 0 && errno != EAGAIN && errno != EINTR) { sub_close(s, 1, strerror(errno)); return; }
        if (w > 0) {
            memmove(s->out, s->out + w, s->outlen - (size_t)w);
            s->outlen -= (uint16_t)w;
        }
    }
    if (!s->outlen) ep_ctl(EPOLL_CTL_MOD, s->fd, EPOLLIN, (uint64_t)(s - subs));
}

/* ---- publishers ---------------------------------------------------------- */

static uint32_t pub_outcap;
static uint64_t *pending;      /* intended send times of messages not yet written, by seq */
static uint64_t pend_head, pend_tail; /* seq range [head, tail) waits for a free publisher */
static uint64_t n_published;   /* requests written */
static uint64_t max_publish_lag_ns;
static uint64_t n_unsent;      /* measured messages never written: no free publisher in time */
static char *payload_buf, *body_buf;

static void pub_connect(struct pub *p) {
    const char *step;
    int fd = tcp_start(0, EPOLLIN | EPOLLOUT, TAG_PUB | (uint64_t)(p - pubs), &step);
    if (fd < 0) die("publisher socket");
    p->fd = fd;
    p->state = P_CONNECTING;
    p->inlen = p->outoff = p->outlen = 0;
}

static void pub_reset(struct pub *p, const char *why) {
    if (!opt.quiet) fprintf(stderr, "fanout: publisher %ld: %s; reconnecting\n", (long)(p - pubs), why);
    if (p->state == P_BUSY) n_pub_err++;
    if (p->ssl) { SSL_free(p->ssl); p->ssl = NULL; }
    close(p->fd);
    p->state = P_FREE;
    n_pub_reconnects++;
    if (n_pub_reconnects > 100) { fprintf(stderr, "fanout: too many publisher reconnects\n"); exit(1); }
    pub_connect(p);
}

static void pub_flush(struct pub *p) {
    const char *why;
    int r = p->ssl ? tls_flush(p->ssl, p->out, &p->outoff, &p->outlen, &why)
                   : sock_flush(p->fd, p->out, &p->outoff, &p->outlen, &why);
    if (r == 0) ep_ctl(EPOLL_CTL_MOD, p->fd, EPOLLIN | EPOLLOUT, TAG_PUB | (uint64_t)(p - pubs));
    else if (r < 0) pub_reset(p, why);
}

/* Builds and writes the request for message `seq`, stamped with its intended send time. */
static void pub_send(struct pub *p, uint64_t seq, uint64_t t_ns) {
    int pl = snprintf(payload_buf, (size_t)opt.size + 1, "~t=%llu ~s=%llu ~r=%s ",
                      (unsigned long long)t_ns, (unsigned long long)seq, run_id);
    for (long i = pl; i < opt.size; i++) payload_buf[i] = (char)('a' + i % 26);
    payload_buf[opt.size] = 0;
    int n;
    if (opt.target == T_NCHAN) {
        n = snprintf((char *)p->out, pub_outcap,
            "POST /pub/%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/plain\r\nContent-Length: %ld\r\n\r\n%s",
            opt.channel, opt.host, opt.port, opt.size, payload_buf);
    } else {
        /* Pusher HTTP API: body_md5 and an HMAC-SHA256 signature over method, path and sorted query. */
        int bl = snprintf(body_buf, (size_t)opt.size + 256, "{\"name\":\"tick\",\"channel\":\"%s\",\"data\":\"%s\"}",
                          opt.channel, payload_buf);
        n = pusher_events_head((char *)p->out, pub_outcap, opt.app_id, opt.app_key, (long long)time(NULL),
                               body_buf, (size_t)bl, opt.host, opt.port);
        if (n >= 0 && (uint32_t)(n + bl) < pub_outcap) {
            memcpy(p->out + n, body_buf, (size_t)bl);
            n += bl;
        } else {
            n = -1;
        }
    }
    if (n < 0 || (uint32_t)n >= pub_outcap) { fprintf(stderr, "fanout: request too large\n"); exit(1); }
    p->outoff = 0;
    p->outlen = (uint32_t)n;
    p->state = P_BUSY;
    p->sent_ns = now_ns;
    if (now_ns > t_ns && now_ns - t_ns > max_publish_lag_ns && seq >= first_measured_seq) max_publish_lag_ns = now_ns - t_ns;
    n_published++;
    pub_flush(p);
}

static void dispatch_pending(void) {
    for (long i = 0; i < opt.publishers && pend_head < pend_tail; i++) {
        if (pubs[i].state != P_IDLE) continue;
        pub_send(&pubs[i], pend_head, pending[pend_head]);
        pend_head++;
    }
}

/* Returns the length of a complete response in p->in (0 if incomplete, -1 if unparsable). */
static long http_response_len(const uint8_t *p, size_t n, int *status, int *close_after) {
    struct http_head hh;
    long hl = http_response_head(p, n, &hh);
    if (hl == 0) return n >= PUB_INCAP ? -1 : 0;
    if (hl < 0) return -1;
    size_t headlen = (size_t)hl;
    *status = hh.status;
    *close_after = hh.close;
    if (hh.chunked) {
        const uint8_t *z = memmem(p + headlen - 2, n - headlen + 2, "\r\n0\r\n\r\n", 7);
        if (!z) {
            /* a body that is only the last chunk */
            if (n - headlen >= 5 && !memcmp(p + headlen, "0\r\n\r\n", 5)) return (long)headlen + 5;
            return n >= PUB_INCAP ? -1 : 0;
        }
        return (long)(z - p) + 7;
    }
    size_t clen = hh.content_length < 0 ? 0 : (size_t)hh.content_length;
    if (headlen + clen > PUB_INCAP) return -1;
    return headlen + clen <= n ? (long)(headlen + clen) : 0;
}

/* One step of the TLS handshake; once it is complete, the publisher is free for requests. */
static void pub_tls_step(struct pub *p) {
    const char *why;
    int want_write = 0, r = tls_handshake(p->ssl, &want_write, &why);
    if (r < 0) { fprintf(stderr, "fanout: publisher TLS handshake: %s\n", why); exit(1); }
    uint32_t events = r == 0 && want_write ? EPOLLIN | EPOLLOUT : EPOLLIN;
    ep_ctl(EPOLL_CTL_MOD, p->fd, events, TAG_PUB | (uint64_t)(p - pubs));
    if (r == 0) return;
    p->state = P_IDLE;
    dispatch_pending();
}

static void pub_readable(struct pub *p) {
    if (p->state == P_TLS) { pub_tls_step(p); return; }
    const char *why = "";
    int drained;
    ssize_t r = p->ssl ? tls_read(p->ssl, p->in + p->inlen, PUB_INCAP - p->inlen, &drained, &why)
                       : sock_read(p->fd, p->in + p->inlen, PUB_INCAP - p->inlen, &why);
    if (r == 0) return;
    if (r < 0) { pub_reset(p, why); return; }
    p->inlen += (uint32_t)r;
    int status = 0, close_after = 0;
    long len = http_response_len(p->in, p->inlen, &status, &close_after);
    if (len < 0) { pub_reset(p, "unparsable response"); return; }
    if (len == 0) return;
    if (p->state != P_BUSY) { pub_reset(p, "response without a request"); return; }
    hist_add(&pub_lat, now_ns - p->sent_ns);
    if (status >= 200 && status < 300) n_pub_ok++;
    else {
        n_pub_err++;
        if (!opt.quiet && n_pub_err <= 5) {
            size_t l = (size_t)len < 300 ? (size_t)len : 300;
            fprintf(stderr, "fanout: publish answered %d: %.*s\n", status, (int)l, (const char *)p->in);
        }
    }
    buf_consume(p->in, &p->inlen, (uint32_t)len);
    p->state = P_IDLE;
    if (close_after) { pub_reset(p, "server asked to close"); return; }
    dispatch_pending();
}

static void pub_writable(struct pub *p) {
    if (p->state == P_CONNECTING) {
        int err = sock_error(p->fd);
        if (err) { fprintf(stderr, "fanout: publisher connect: %s\n", strerror(err)); exit(1); }
        if (opt.tls) {
            p->ssl = tls_attach(p->fd, 0);
            if (!p->ssl) { fprintf(stderr, "fanout: SSL_new failed\n"); exit(1); }
            p->state = P_TLS;
            pub_tls_step(p);
            return;
        }
        p->state = P_IDLE;
        ep_ctl(EPOLL_CTL_MOD, p->fd, EPOLLIN, TAG_PUB | (uint64_t)(p - pubs));
        dispatch_pending();
        return;
    }
    if (p->state == P_TLS) { pub_tls_step(p); return; }
    ep_ctl(EPOLL_CTL_MOD, p->fd, EPOLLIN, TAG_PUB | (uint64_t)(p - pubs));
    pub_flush(p);
}

static long pubs_idle(void) {
    long k = 0;
    for (long i = 0; i < opt.publishers; i++) k += pubs[i].state == P_IDLE;
    return k;
}

/* ---- loop ---------------------------------------------------------------- */

static uint64_t sched_start_ns; /* intended time of seq 1 */
static uint64_t seq_limit;      /* last seq to publish */
static uint64_t next_seq_to_schedule;
static int publishing;

static uint64_t sched_time(uint64_t seq) {
    return sched_start_ns + (uint64_t)((double)(seq - 1) * 1e9 / opt.rate);
}

static void arm_timer(uint64_t at_ns) {
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(at_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(at_ns % 1000000000ull);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
}

/* Queues every message whose time has come, hands them to free publishers, re-arms the timer. */
static void schedule_due(void) {
    if (!publishing) return;
    while (next_seq_to_schedule <= seq_limit && sched_time(next_seq_to_schedule) <= now_ns) {
        pending[pend_tail++] = sched_time(next_seq_to_schedule);
        next_seq_to_schedule++;
    }
    dispatch_pending();
    if (next_seq_to_schedule <= seq_limit) arm_timer(sched_time(next_seq_to_schedule));
}

static void loop_once(int timeout_ms) {
    static struct epoll_event evs[1024];
    int n = ep_wait(evs, 1024, timeout_ms);
    for (int i = 0; i < n; i++) {
        uint64_t t = evs[i].data.u64;
        uint32_t e = evs[i].events;
        if (t == TAG_TIMER) {
            uint64_t exp;
            if (read(tfd, &exp, sizeof exp) < 0) { /* spurious: nothing to read */ }
            schedule_due();
            continue;
        }
        if (t & TAG_PUB) {
            struct pub *p = &pubs[t & 0xffff];
            if (e & EPOLLOUT) pub_writable(p);
            if (p->state != P_FREE && p->state != P_CONNECTING && (e & (EPOLLIN | EPOLLHUP | EPOLLERR))) pub_readable(p);
            continue;
        }
        struct sub *s = &subs[t];
        if (s->state == S_FREE) continue;
        if (s->state == S_CONNECTING && (e & (EPOLLERR | EPOLLHUP)) && !(e & EPOLLOUT)) {
            sub_close(s, 1, "connect failed");
            continue;
        }
        if (e & EPOLLOUT) sub_writable(s);
        if (s->state == S_FREE || s->state == S_CONNECTING) continue;
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) sub_readable(s);
    }
    /* The timer may be late when the loop is busy: catch up on every pass. */
    if (publishing) schedule_due();
}

static int ms_until(uint64_t t) { return ms_until_cap(t, 200); }

static int past_deadline(void) { return deadline_passed("fanout_deadline_exceeded", opt.deadline); }

static void start_more(void) {
    while (n_next < opt.subscribers && n_connecting < opt.inflight && !stop_signal) {
        long i = n_next++;
        sub_start(&subs[i], i);
    }
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);

    rlim_t nofile = raise_nofile_limit();
    if ((rlim_t)(opt.subscribers + opt.publishers + 16) > nofile) {
        fprintf(stderr, "fanout: %ld subscribers need more than the open-file limit %llu\n",
                opt.subscribers, (unsigned long long)nofile);
        return 2;
    }
    install_signals();

    rng_seed();
    if (opt.tls) tls_setup(opt.ca_file, opt.host, 0);
    snprintf(run_id, sizeof run_id, "%08x", rng32());
    hmac_init(opt.app_secret);
    char path[256];
    if (opt.target == T_NCHAN) snprintf(path, sizeof path, "/sub/%s", opt.channel);
    else snprintf(path, sizeof path, PUSHER_WS_PATH, opt.app_key);
    sub_request_len = ws_upgrade_request(sub_request, sizeof sub_request, path, opt.host, opt.port);
    if (sub_request_len >= sizeof sub_request || sub_request_len > OUTCAP) { fprintf(stderr, "fanout: request too long\n"); return 2; }

    /* Room for one frame of ours: the payload inside the Pusher envelope, plus header. */
    leftcap = (uint32_t)opt.size + 512 + 14;
    if (leftcap < 4200) leftcap = 4200; /* also holds an incomplete 101 head */
    if (leftcap > 65535) { fprintf(stderr, "fanout: --size too large\n"); return 2; }
    scratch = malloc(SCRATCH + 16);
    subs = calloc((size_t)opt.subscribers, sizeof *subs);
    pubs = calloc((size_t)opt.publishers, sizeof *pubs);
    pub_outcap = (uint32_t)opt.size + 1024;
    payload_buf = malloc((size_t)opt.size + 1);
    body_buf = malloc((size_t)opt.size + 256);
    if (!scratch || !subs || !pubs || !payload_buf || !body_buf) die("malloc");
    for (long i = 0; i < opt.subscribers; i++) {
        subs[i].fd = -1;
        subs[i].left = malloc(leftcap);
        subs[i].out = malloc(OUTCAP);
        if (!subs[i].left || !subs[i].out) die("malloc");
    }
    for (long i = 0; i < opt.publishers; i++) {
        pubs[i].fd = -1;
        pubs[i].out = malloc(pub_outcap);
        if (!pubs[i].out) die("malloc");
    }
    uint64_t warm_msgs = (uint64_t)(opt.rate * opt.warmup + 0.5);
    uint64_t meas_msgs = (uint64_t)(opt.rate * opt.duration + 0.5);
    if (meas_msgs == 0) meas_msgs = 1;
    seq_limit = warm_msgs + meas_msgs;
    first_measured_seq = warm_msgs + 1;
    pending = calloc((size_t)seq_limit + 2, sizeof *pending);
    if (!pending) die("calloc");

    ep_open();
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0) die("timerfd_create");
    ep_ctl(EPOLL_CTL_ADD, tfd, EPOLLIN, TAG_TIMER);

    deadline_start(opt.deadline);
    int rc = 0;
    printf("fanout_target=%s\nfanout_subscribers=%ld\nfanout_rate=%g\nfanout_duration=%g\nfanout_size=%ld\nfanout_publishers=%ld\n",
           opt.target == T_NCHAN ? "nchan" : "bridge", opt.subscribers, opt.rate, opt.duration, opt.size, opt.publishers);
    printf("fanout_tls=%d\n", opt.tls);

    /* Phase 1: every subscriber connected (and, for Bridge, subscribed). */
    uint64_t t_conn0 = now_ns, next_report = now_ns + 1000000000ull;
    while (n_ready + n_failed + n_dropped < opt.subscribers && !stop_signal) {
        start_more();
        if (past_deadline()) { rc = 3; goto report; }
        loop_once(100);
        if (!opt.quiet && now_ns >= next_report) {
            fprintf(stderr, "fanout: ready=%ld connecting=%ld failed=%ld\n", n_ready, n_connecting, n_failed);
            next_report = now_ns + 1000000000ull;
        }
    }
    double connect_s = (double)(now_ns - t_conn0) / 1e9;
    printf("fanout_subscribers_ready=%ld\nfanout_subscribe_failed=%ld\nfanout_subscribe_seconds=%.3f\n", n_ready, n_failed, connect_s);
    if (n_ready == 0) { fprintf(stderr, "fanout: no subscriber is ready\n"); rc = 1; goto report; }

    /* --hold: the subscribers stay connected and idle (pings answered) until the time is
     * up or a signal comes; nothing is published. */
    if (opt.hold > 0) {
        uint64_t hold_end = now_ns + (uint64_t)(opt.hold * 1e9);
        while (!stop_signal && now_ns < hold_end) {
            if (past_deadline()) { rc = 3; break; }
            loop_once(ms_until(hold_end));
        }
        printf("fanout_held_at_end=%ld\n", n_ready);
        goto report;
    }

    /* Phase 2: publishers connect; a probe message (seq 0) must reach every subscriber. */
    for (long i = 0; i < opt.publishers; i++) pub_connect(&pubs[i]);
    while (pubs_idle() < opt.publishers && !stop_signal) {
        if (past_deadline()) { rc = 3; goto report; }
        loop_once(100);
    }
    pending[0] = now_ns;
    pend_head = 0;
    pend_tail = 1;
    dispatch_pending();
    uint64_t probe_end = now_ns + 10000000000ull;
    while (n_probe_received < (uint64_t)n_ready && now_ns < probe_end && !stop_signal) {
        if (past_deadline()) { rc = 3; goto report; }
        loop_once(ms_until(probe_end));
    }
    printf("fanout_probe_received=%llu\n", (unsigned long long)n_probe_received);
    if (n_probe_received < (uint64_t)n_ready)
        fprintf(stderr, "fanout: the probe reached %llu of %ld subscribers\n", (unsigned long long)n_probe_received, n_ready);
    while (pubs_idle() < opt.publishers && !stop_signal) { /* the probe's response */
        if (past_deadline()) { rc = 3; goto report; }
        loop_once(100);
    }
    long ready_at_start = n_ready;

    /* Phase 3: warm-up, then the measured messages, at a steady open-loop rate. */
    double cpu_self0 = 0, cpu_srv0 = -1;
    static struct cpu_jiffies cj0[MAX_CPUS], cj1[MAX_CPUS];
    double foreign0 = -1;
    uint64_t records0 = 0, record_bytes0 = 0, recv_all0 = 0;
    int ncpu = 0;
    uint64_t t_meas0 = 0, t_pub_end = 0, t_end;
    long rss_max = -1;
    sched_start_ns = now_ns + 1000000ull;
    next_seq_to_schedule = 1;
    publishing = 1;
    arm_timer(sched_start_ns);
    uint64_t sample_next = 0;
    int measuring = 0;
    uint64_t meas_start_sched = sched_time(first_measured_seq);
    uint64_t drain_end = ~0ull;
    for (;;) {
        if (stop_signal) break;
        if (past_deadline()) { rc = 3; break; }
        if (!measuring && now_ns >= meas_start_sched) {
            measuring = 1;
            t_meas0 = now_ns;
            cpu_self0 = self_cpu_s();
            cpu_srv0 = opt.nwatch ? watched_cpu_s() : -1;
            ncpu = cpu_times(cj0);
            foreign0 = foreign_cpu_s();
            records0 = tls_records_in;
            record_bytes0 = tls_record_bytes_in;
            recv_all0 = n_recv_all;
            sample_next = now_ns;
        }
        if (measuring && opt.nwatch && now_ns >= sample_next) {
            long v = watched_rss_kib();
            if (v > rss_max) rss_max = v;
            sample_next = now_ns + 250000000ull;
        }
        /* Open loop: a message still waiting for a free publisher connection 100 ms after the
         * last one was due is never sent (it counts against the delivery ratio). */
        if (publishing && next_seq_to_schedule > seq_limit && pend_head < pend_tail &&
            now_ns >= sched_time(seq_limit) + 100000000ull) {
            n_unsent = pend_tail - pend_head;
            pend_head = pend_tail;
        }
        if (publishing && next_seq_to_schedule > seq_limit && pend_head == pend_tail) {
            publishing = 0;
            t_pub_end = now_ns;
            drain_end = now_ns + (uint64_t)(opt.drain * 1e9);
        }
        if (!publishing) {
            /* Done once every message that was sent has reached every subscriber still here. */
            uint64_t sent = n_published > warm_msgs + 1 ? n_published - warm_msgs - 1 : 0;
            if (n_recv_measured >= sent * (uint64_t)n_ready && pubs_idle() == opt.publishers) break;
            if (now_ns >= drain_end) break;
        }
        loop_once(publishing ? 50 : ms_until(drain_end < now_ns + 50000000ull ? drain_end : now_ns + 50000000ull));
    }
    t_end = now_ns;
    if (!t_pub_end) t_pub_end = t_end;
    if (!measuring) { t_meas0 = t_end; cpu_self0 = self_cpu_s(); }
    {
        double win = (double)(t_end - t_meas0) / 1e9;
        double pub_win = (double)(t_pub_end - t_meas0) / 1e9;
        double cpu_self = self_cpu_s() - cpu_self0;
        double cpu_srv = (cpu_srv0 >= 0) ? watched_cpu_s() - cpu_srv0 : -1;
        long rss_end = opt.nwatch ? watched_rss_kib() : -1;
        if (rss_end > rss_max) rss_max = rss_end;
        /* Expected: every measured message that was due, sent or not, to every subscriber. */
        uint64_t published_meas = n_published > (uint64_t)warm_msgs + 1 ? n_published - warm_msgs - 1 : 0;
        uint64_t expected = (uint64_t)meas_msgs * (uint64_t)ready_at_start;
        /* deliveries/s: measured deliveries over the publishing window, or until the last one arrived if later */
        double deliv_win = pub_win;
        if (last_recv_ns > t_meas0 && (double)(last_recv_ns - t_meas0) / 1e9 > deliv_win) deliv_win = (double)(last_recv_ns - t_meas0) / 1e9;
        printf("fanout_run_id=%s\n", run_id);
        printf("fanout_scheduled=%llu\nfanout_published=%llu\nfanout_publish_unsent=%llu\n",
               (unsigned long long)meas_msgs, (unsigned long long)published_meas, (unsigned long long)n_unsent);
        printf("fanout_publish_ok=%ld\nfanout_publish_errors=%ld\n", n_pub_ok, n_pub_err);
        printf("fanout_publish_seconds=%.3f\nfanout_publish_rate_achieved=%.1f\n", pub_win,
               pub_win > 0 ? (double)published_meas / pub_win : 0.0);
        printf("fanout_publish_lag_max_us=%.0f\n", (double)max_publish_lag_ns / 1e3);
        printf("fanout_publish_http_p50_us=%.0f\nfanout_publish_http_p99_us=%.0f\nfanout_publish_http_max_us=%.0f\n",
               hist_q(&pub_lat, 0.5) / 1e3, hist_q(&pub_lat, 0.99) / 1e3, pub_lat.max / 1e3);
        printf("fanout_deliveries_expected=%llu\nfanout_deliveries_received=%llu\n",
               (unsigned long long)expected, (unsigned long long)n_recv_measured);
        printf("fanout_delivery_ratio=%.6f\n", expected ? (double)n_recv_measured / (double)expected : 0.0);
        printf("fanout_deliveries_per_sec=%.0f\n", deliv_win > 0 ? (double)n_recv_measured / deliv_win : 0.0);
        printf("fanout_latency_p50_us=%.0f\nfanout_latency_p90_us=%.0f\nfanout_latency_p99_us=%.0f\n"
               "fanout_latency_p999_us=%.0f\nfanout_latency_max_us=%.0f\nfanout_latency_mean_us=%.0f\n",
               hist_q(&lat, 0.5) / 1e3, hist_q(&lat, 0.9) / 1e3, hist_q(&lat, 0.99) / 1e3,
               hist_q(&lat, 0.999) / 1e3, lat.max / 1e3, lat.count ? (double)lat.sum / (double)lat.count / 1e3 : 0.0);
        printf("fanout_drain_seconds=%.3f\n", (double)(t_end - t_pub_end) / 1e9);
        printf("fanout_measure_seconds=%.3f\n", win);
        printf("fanout_client_cpu_pct=%.0f\n", win > 0 ? 100.0 * cpu_self / win : 0.0);
        if (cpu_srv >= 0) {
            printf("fanout_server_cpu_seconds=%.3f\nfanout_server_cpu_pct=%.0f\n", cpu_srv, win > 0 ? 100.0 * cpu_srv / win : 0.0);
            printf("fanout_server_cpu_us_per_delivery=%.3f\n", n_recv_measured ? cpu_srv * 1e6 / (double)n_recv_measured : 0.0);
        }
        /* Other programs on the machine, in % of one core over the window. */
        double foreign1 = foreign0 >= 0 ? foreign_cpu_s() : -1;
        if (foreign1 >= 0 && win > 0) printf("fanout_other_processes_cpu_pct=%.0f\n", 100.0 * (foreign1 - foreign0) / win);
        /* Whole-machine view of each core, whoever ran there: time in tasks (ours and others'),
         * in interrupts, and stolen by the hypervisor, as % of the window. */
        if (ncpu && cpu_times(cj1) == ncpu)
            for (int i = 0; i < ncpu; i++) {
                double t = (double)(cj1[i].total - cj0[i].total);
                if (t <= 0) continue;
                printf("fanout_cpu%d_task_pct=%.0f\nfanout_cpu%d_intr_pct=%.0f\nfanout_cpu%d_steal_pct=%.0f\n",
                       i, 100.0 * (double)(cj1[i].task - cj0[i].task) / t, i, 100.0 * (double)(cj1[i].intr - cj0[i].intr) / t,
                       i, 100.0 * (double)(cj1[i].steal - cj0[i].steal) / t);
            }
        if (rss_max >= 0) printf("fanout_server_rss_max_kib=%ld\nfanout_server_rss_end_kib=%ld\n", rss_max, rss_end);
        /* How the server packed its TLS output: application-data records the subscribers
         * received over the window, per delivery (of any message) and per record. */
        if (opt.tls && measuring) {
            uint64_t records = tls_records_in - records0, bytes = tls_record_bytes_in - record_bytes0;
            uint64_t deliveries = n_recv_all - recv_all0;
            printf("fanout_tls_records=%llu\nfanout_tls_record_bytes=%llu\n", (unsigned long long)records, (unsigned long long)bytes);
            printf("fanout_tls_records_per_delivery=%.3f\nfanout_tls_bytes_per_record=%.0f\n",
                   deliveries ? (double)records / (double)deliveries : 0.0, records ? (double)bytes / (double)records : 0.0);
        }
        if (n_recv_measured < expected && !rc) rc = 4;
    }
report:
    printf("fanout_subscribers_dropped=%ld\nfanout_gaps=%ld\nfanout_out_of_order=%ld\nfanout_foreign=%ld\n"
           "fanout_errors=%ld\nfanout_pings_answered=%ld\nfanout_pusher_pings_answered=%ld\n",
           n_dropped, n_gaps, n_out_of_order, n_foreign, n_errors, n_pings, n_pusher_pings);
    for (long i = 0; i < opt.subscribers; i++) if (subs[i].state != S_FREE) sub_close(&subs[i], 0, "");
    for (long i = 0; i < opt.publishers; i++) if (pubs[i].fd >= 0) close(pubs[i].fd);
    return rc;
}
