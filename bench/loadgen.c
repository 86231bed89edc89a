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
 * With --tls [--ca FILE] every connection does a full TLS 1.3 handshake first (wss://).
 * Results are printed on stdout as key=value lines; progress goes to stderr.
 * Build: gcc -O2 -Wall -o loadgen loadgen.c -lssl -lcrypto (it includes common.h, net.h and tls.h beside it)
 */
#define _GNU_SOURCE
#define PROG "loadgen"
#include "net.h"
#include "tls.h"

enum mode { MODE_IDLE, MODE_ECHO, MODE_HANDSHAKE };
enum state { ST_FREE, ST_CONNECTING, ST_TLS, ST_UPGRADING, ST_OPEN };

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
    SSL *ssl;          /* with --tls, from the TCP connect on */
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
    int tls;         /* wss://: a full TLS 1.3 handshake before the upgrade */
    const char *ca_file;
} opt = {
    .host = "127.0.0.1", .port = 0, .path = "/echo", .connections = 0, .window = 1,
    .size = 32, .duration = 10, .warmup = 1, .hold = 10, .deadline = 60, .inflight = 0,
    .src_first = 2, .src_count = 0, .per_src = 5000,
};

static struct conn *conns;
static long nconns;
static uint32_t incap, outcap;
static char request[512];
static size_t request_len;
static uint8_t *payload_template;

/* Counters. */
static long n_awaiting_echo;
static long n_open, n_failed, n_dropped, n_connecting, n_started, n_errors, n_pings;
static uint64_t n_msgs_total;

/* Latency: 1 µs buckets up to 100 ms, plus one overflow bucket (overflow_max, set in main). */
static struct us_hist lat;
static int recording;

/* CPU use of this process and of --watch-pid over the measured window. */
static struct cpu_pair cpu_mark_at;

static void cpu_mark(void) { cpu_mark_at = cpu_pair_mark(opt.watch_pid); }

static void cpu_report(const char *prefix, double secs) { cpu_pair_print(prefix, cpu_mark_at, opt.watch_pid, secs); }

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
        "  --tls                  TLS 1.3 first (wss://), a full handshake on every connection\n"
        "  --ca FILE              with --tls: check the server's certificate against this CA (default: no check)\n"
        "  --quiet                no progress lines\n");
}

static void parse_args(int argc, char **argv) {
    static const struct option longopts[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"path", 1, 0, 'P'},
        {"connections", 1, 0, 'c'}, {"window", 1, 0, 'w'}, {"size", 1, 0, 's'},
        {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'W'}, {"hold", 1, 0, 'H'},
        {"inflight", 1, 0, 'k'}, {"src-first", 1, 0, 'f'}, {"src-count", 1, 0, 'n'},
        {"per-src", 1, 0, 'e'}, {"deadline", 1, 0, 'D'}, {"quiet", 0, 0, 'q'},
        {"watch-pid", 1, 0, 'x'}, {"touch", 0, 0, 't'}, {"tls", 0, 0, 'T'}, {"ca", 1, 0, 'C'},
        {"help", 0, 0, '?'}, {0, 0, 0, 0},
    };
    static const char *const modes[] = {"idle", "echo", "handshake"}; /* in enum mode's order */
    opt.mode = (enum mode)parse_mode(argc, argv, modes, 3, usage);
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
        case 'T': opt.tls = 1; break;
        case 'C': opt.ca_file = optarg; break;
        case 'x': opt.watch_pid = (long)parse_num("--watch-pid", optarg, 1, 1 << 30); break;
        default: usage(stderr); exit(2);
        }
    }
    no_more_args(argc, argv);
    if (!opt.port) { fprintf(stderr, "loadgen: --port is required\n"); exit(2); }
    if (opt.ca_file && !opt.tls) { fprintf(stderr, "loadgen: --ca needs --tls\n"); exit(2); }
    if (!opt.connections) opt.connections = opt.mode == MODE_IDLE ? 1000 : 1;
    if (!opt.inflight) opt.inflight = opt.mode == MODE_HANDSHAKE ? 32 : 256;
    if (!opt.src_count)
        opt.src_count = opt.mode == MODE_IDLE ? (int)((opt.connections + opt.per_src - 1) / opt.per_src) : 8;
    if (opt.src_first + opt.src_count - 1 > 254) { fprintf(stderr, "loadgen: source addresses past 127.0.0.254\n"); exit(2); }
    set_loopback_dst(opt.host, opt.port);
}

/* ---- buffers and frames ------------------------------------------------ */

/* Room for n more bytes in c->out, moving what is still unsent to the front if need be. */
static int out_room(struct conn *c, size_t n) {
    if (c->outlen + n > outcap && c->outoff) {
        buf_consume(c->out, &c->outlen, c->outoff);
        c->outoff = 0;
    }
    return c->outlen + n > outcap ? -1 : 0;
}

static int queue_out(struct conn *c, const void *p, size_t n) {
    if (out_room(c, n) < 0) return -1;
    memcpy(c->out + c->outlen, p, n);
    c->outlen += (uint32_t)n;
    return 0;
}

static int queue_frame(struct conn *c, int opcode, const uint8_t *payload, size_t len) {
    if (out_room(c, ws_frame_size(len)) < 0) return -1;
    c->outlen += (uint32_t)ws_encode_frame(c->out + c->outlen, opcode, payload, len);
    return 0;
}

/* ---- connection lifecycle ---------------------------------------------- */

static void conn_close(struct conn *c) {
    if (c->state == ST_FREE) return;
    if (c->state == ST_OPEN) n_open--;
    else n_connecting--;
    if (opt.mode == MODE_IDLE) n_awaiting_echo -= c->inflight;
    /* SO_LINGER 0 was set at creation: close sends RST, leaving no TIME_WAIT (and,
     * over TLS, no close_notify: both servers see the same abrupt end). */
    if (c->ssl) { SSL_free(c->ssl); c->ssl = NULL; }
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
    const char *step;
    uint64_t tag = slot_tag(c->gen, (uint32_t)(c - conns));
    int fd = tcp_start(src_addr_for(index), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, tag, &step);
    if (fd < 0) {
        if (!opt.quiet) fprintf(stderr, "loadgen: %s: %s\n", step, strerror(errno));
        n_failed++;
        return -1;
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->start_ns = now_ns;
    n_connecting++;
    n_started++;
    return 0;
}

static void conn_flush(struct conn *c) {
    const char *why;
    int r = c->ssl ? tls_flush(c->ssl, c->out, &c->outoff, &c->outlen, &why)
                   : sock_flush(c->fd, c->out, &c->outoff, &c->outlen, &why);
    if (r < 0) conn_fail(c, why);
    else c->want_out = r == 0;
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

/* Parses server frames in c->in; returns -1 if the connection must go. */
static int parse_frames(struct conn *c) {
    uint32_t pos = 0;
    for (;;) {
        struct ws_frame f;
        int r = ws_decode_frame(c->in + pos, c->inlen - pos, &f);
        if (r < 0) { conn_fail(c, "server frame is masked"); return -1; }
        if (f.head && f.len + f.head > incap) { conn_fail(c, "server frame larger than buffer"); return -1; }
        if (!r) break;
        const uint8_t *pl = f.payload;
        switch (f.op) {
        case 0x9: /* ping → pong with the same payload, RFC 6455 §5.5.3 */
            n_pings++;
            if (queue_frame(c, 0xA, pl, (size_t)f.len) < 0) n_errors++;
            break;
        case 0xA:
            break;
        case 0x8:
            conn_fail(c, "server sent close");
            return -1;
        case 0x1:
        case 0x2:
            if (!f.fin || f.len != (uint64_t)opt.size || c->inflight == 0 ||
                (opt.size && memcmp(pl, payload_template, (size_t)f.len) != 0)) {
                n_errors++;
                break;
            }
            if (opt.mode == MODE_IDLE) { /* the --touch echo */
                c->inflight--;
                n_awaiting_echo--;
                break;
            }
            if (recording) {
                us_hist_add(&lat, (int64_t)(now_ns - c->sent_ns[c->ring_head]));
                n_msgs_total++;
            }
            c->ring_head = (c->ring_head + 1) % (uint32_t)opt.window;
            c->inflight--;
            if (!stop_signal) echo_send(c);
            break;
        default:
            n_errors++;
        }
        pos += (uint32_t)(f.head + f.len);
    }
    buf_consume(c->in, &c->inlen, pos);
    return 0;
}

/* One step of the TLS handshake; once it is complete, the upgrade request goes out. */
static void tls_step(struct conn *c) {
    const char *why;
    int want_write;
    int r = tls_handshake(c->ssl, &want_write, &why);
    if (r < 0) { conn_fail(c, why); return; }
    if (r == 0) return; /* edge-triggered for both directions: the next edge steps on */
    c->state = ST_UPGRADING;
    if (queue_out(c, request, request_len) < 0) { conn_fail(c, "output buffer full"); return; }
    conn_flush(c);
}

static void on_readable(struct conn *c) {
    if (c->state == ST_TLS) { tls_step(c); return; }
    /* Edge-triggered: read until a short read (over TLS: until OpenSSL finds the socket
     * empty). Bounded because the server only ever sends what we asked for (echoes, one
     * 101) plus its pings. */
    for (;;) {
        if (c->inlen >= incap) { conn_fail(c, "input buffer full"); return; }
        size_t want = incap - c->inlen;
        const char *why = "";
        int drained = 0;
        ssize_t n = c->ssl ? tls_read(c->ssl, c->in + c->inlen, want, &drained, &why)
                           : sock_read(c->fd, c->in + c->inlen, want, &why);
        if (n == 0) break;
        if (n < 0) { conn_fail(c, why); return; }
        c->inlen += (uint32_t)n;
        if (c->state == ST_UPGRADING) {
            long used = ws_upgrade_response(c->in, c->inlen, incap - 1);
            if (used < 0) {
                char buf[64];
                conn_fail(c, ws_upgrade_error(buf, c->in, c->inlen));
                return;
            }
            if (used == 0) continue;
            buf_consume(c->in, &c->inlen, (uint32_t)used);
            on_open(c);
            if (c->state != ST_OPEN) return;
        }
        if (c->state == ST_OPEN && parse_frames(c) < 0) return;
        if (c->ssl ? drained : (size_t)n < want) break; /* short read: the socket is drained */
    }
    if (c->state != ST_FREE && c->outlen > c->outoff) conn_flush(c);
}

static void on_writable(struct conn *c) {
    if (c->state == ST_CONNECTING) {
        int err = sock_error(c->fd);
        if (err) { conn_fail(c, strerror(err)); return; }
        if (opt.tls) {
            c->ssl = tls_attach(c->fd, 0);
            if (!c->ssl) { conn_fail(c, "SSL_new failed"); return; }
            c->state = ST_TLS;
        } else {
            c->state = ST_UPGRADING;
            if (queue_out(c, request, request_len) < 0) { conn_fail(c, "output buffer full"); return; }
        }
    }
    if (c->state == ST_TLS) { tls_step(c); return; }
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
            us_hist_add(&lat, (int64_t)(now_ns - c->start_ns));
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
    int n = ep_wait(evs, 1024, timeout_ms);
    for (int i = 0; i < n; i++) {
        struct conn *c = &conns[tag_slot(evs[i].data.u64)];
        uint32_t gen = tag_gen(evs[i].data.u64), e = evs[i].events;
        if (c->gen != gen || c->state == ST_FREE) continue;
        if (e & EPOLLOUT) on_writable(c);
        if (c->gen != gen || c->state == ST_FREE) continue;
        if (c->state == ST_CONNECTING) {
            if (e & (EPOLLHUP | EPOLLERR)) conn_fail(c, connect_failure(c->fd));
        } else if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            on_readable(c);
        }
    }
    return n;
}

static int ms_until(uint64_t t) { return ms_until_cap(t, 1000); }

static int past_deadline(void) { return deadline_passed("deadline_exceeded", opt.deadline); }

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
           (unsigned long long)us_hist_pct(&lat, 0.50), (unsigned long long)us_hist_pct(&lat, 0.99),
           (unsigned long long)us_hist_pct(&lat, 0.999), (unsigned long long)lat.max_us);
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
           (unsigned long long)us_hist_pct(&lat, 0.50), (unsigned long long)us_hist_pct(&lat, 0.99));
    printf("handshake_failed=%ld\n", n_failed - failed_at_start);
    cpu_report("handshake", secs);
    return rc;
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);

    rlim_t nofile = raise_nofile_limit();
    nconns = opt.mode == MODE_HANDSHAKE ? opt.inflight : opt.connections;
    if ((rlim_t)nconns + 16 > nofile) {
        fprintf(stderr, "loadgen: %ld connections need more than the open-file limit %llu; use several processes\n",
                nconns, (unsigned long long)nofile);
        return 2;
    }
    install_signals();
    if (opt.tls) tls_setup(opt.ca_file, opt.host, 1);

    request_len = ws_upgrade_request(request, sizeof request, opt.path, opt.host, opt.port);
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
    rng_seed();
    lat.overflow_max = 1;

    conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) die("calloc");
    for (long i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        conns[i].in = malloc(incap);
        conns[i].out = malloc(outcap);
        if (opt.mode == MODE_ECHO || opt.touch) conns[i].sent_ns = calloc((size_t)opt.window, sizeof(uint64_t));
        if (!conns[i].in || !conns[i].out) die("malloc");
    }
    ep_open();

    deadline_start(opt.deadline);
    int rc;
    switch (opt.mode) {
    case MODE_IDLE: rc = run_idle(); break;
    case MODE_ECHO: rc = run_echo(); break;
    default: rc = run_handshake(); break;
    }
    for (long i = 0; i < nconns; i++) if (conns[i].state != ST_FREE) conn_close(&conns[i]);
    return rc;
}
