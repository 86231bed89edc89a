/*
 * hostile: the attackers of bench/hostile.sh, one process, one thread, one epoll instance.
 *
 *   hostile --port P [--duration S] [--only a,b] [--skip a,b] [--scale F] [--watch-pid PID]
 *
 * Runs every attack below at once against one Bridge server for --duration seconds, each
 * with a fixed number of connection slots and a fixed rate (both times --scale), so the
 * load is bounded in connections, in rate and in time. A slot whose connection ends is
 * opened again (after 100 ms), so each attack keeps its pressure for the whole run.
 *
 *   nonreader  WebSocket clients of app 1 that subscribe to the fan-out's channel and flood
 *              WebSocket pings (125 B payload) and pusher:ping messages, and never read a byte
 *              (SO_RCVBUF 4 KiB): the server's slow-consumer bound must cut them.
 *   pingflood  WebSocket clients of app 2 that read, sending pings and pusher:ping as fast as
 *              their rate allows.
 *   churn      WebSocket clients of app 2 that subscribe to and unsubscribe from random
 *              channels (a pair per operation).
 *   malformed  a fresh WebSocket (app 2) per operation that sends one bad frame (reserved
 *              opcode, unmasked, invalid UTF-8, 2^63-1 or 2^64-1 length, a header above the
 *              frame limit, RSV bits, a 126-byte ping, a lone continuation, a 1-byte close,
 *              invalid JSON); the server must close it (counted) within 10 s.
 *   slowloris  HTTP request heads sent one byte per second, never finished; how long the
 *              server holds each one is recorded.
 *   bigbody    POST /apps/1/events with a Content-Length far above the body limit (1e9, 1e15,
 *              an overflowing number, a negative one, two different ones, a huge chunk size);
 *              the server must answer (status counted) or close within 10 s.
 *   badsig     HTTP API requests to apps 1 and 2 with random auth_signature values.
 *   badtime    HTTP API requests with absurd auth_timestamp values (-2^63, 2^63-1, 2^64, 1e30,
 *              empty, not a number, ...), on app 1 with random signatures and on app 2 with
 *              correct ones (a tenant knows its own secret), also on terminate_connections.
 *
 * App 1 is app-key/app-secret (the fan-out's app), app 2 hostile-key/hostile-secret.
 * Results are key=value lines on stdout (hostile_<attack>_<counter>=N); progress every 10 s
 * and errors go to stderr. With --watch-pid the run stops as soon as that process is gone
 * (server_gone=1, server_gone_after_s=S).
 * Build: gcc -O2 -Wall -o hostile hostile.c -lcrypto (it includes common.h, net.h and pusher_api.h beside it)
 */
#define _GNU_SOURCE
#define PROG "hostile"
#include "net.h"
#include "pusher_api.h"

enum attack { A_NONREADER, A_PINGFLOOD, A_CHURN, A_MALFORMED, A_SLOWLORIS, A_BIGBODY, A_BADSIG, A_BADTIME, N_ATTACKS };

/* kind: how a slot uses its connection. KEEP: opened once and used for many operations;
 * ONESHOT: an operation is a whole connection (connect, one bad thing, wait for the end). */
enum kind { KEEP, ONESHOT };
enum proto { WS, HTTP };

struct attack_def {
    const char *name;
    enum kind kind;
    enum proto proto;
    long slots;  /* connections at once */
    double rate; /* operations per second, all slots together */
};

static struct attack_def attacks[N_ATTACKS] = {
    [A_NONREADER] = {"nonreader", KEEP, WS, 25, 25000}, /* ~80 KB/s of replies each: past the kernel buffers and the bound in ~1 min */
    [A_PINGFLOOD] = {"pingflood", KEEP, WS, 50, 5000},
    [A_CHURN] = {"churn", KEEP, WS, 50, 2000},
    [A_MALFORMED] = {"malformed", ONESHOT, WS, 20, 50},
    [A_SLOWLORIS] = {"slowloris", KEEP, HTTP, 200, 200}, /* one byte per second per connection */
    [A_BIGBODY] = {"bigbody", ONESHOT, HTTP, 10, 20},
    [A_BADSIG] = {"badsig", KEEP, HTTP, 10, 200},
    [A_BADTIME] = {"badtime", KEEP, HTTP, 10, 100},
};
static int enabled[N_ATTACKS];

/* ---- counters: per attack, by name ------------------------------------------------------ */

#define MAX_COUNTERS 128
struct counter { char name[40]; uint64_t n; };
static struct counter counters[N_ATTACKS][MAX_COUNTERS];
static int ncounters[N_ATTACKS];

static uint64_t *counter(int a, const char *name) {
    for (int i = 0; i < ncounters[a]; i++)
        if (!strcmp(counters[a][i].name, name)) return &counters[a][i].n;
    static uint64_t overflow; /* more names than slots: counted nowhere rather than crash */
    if (ncounters[a] == MAX_COUNTERS) return &overflow;
    struct counter *c = &counters[a][ncounters[a]++];
    snprintf(c->name, sizeof c->name, "%s", name);
    return &c->n;
}
static void count(int a, const char *name) { (*counter(a, name))++; }
static void countf(int a, const char *fmt, long v) {
    char name[40];
    snprintf(name, sizeof name, fmt, v);
    count(a, name);
}
static void count_max(int a, const char *name, uint64_t v) {
    uint64_t *p = counter(a, name);
    if (v > *p) *p = v;
}
static void count_add(int a, const char *name, uint64_t v) { *counter(a, name) += v; }

/* ---- connection slots --------------------------------------------------------------------- */

enum state { ST_IDLE, ST_CONNECTING, ST_UPGRADING, ST_OPEN, ST_WAIT_END };

struct conn {
    int fd;
    uint32_t gen;
    uint8_t attack, state, want_out, variant;
    uint64_t opened_ns, next_ns; /* next_ns: IDLE: reconnect at; WAIT_END: give up at */
    uint64_t slow_pos;           /* slowloris: bytes of the endless head sent */
    uint32_t http_pending;       /* HTTP: requests without a response yet */
    double tokens;               /* operations this slot may still do now */
    uint8_t *in, *out;
    uint32_t inlen, incap, outoff, outlen, outcap;
};

#define IN_CAP (64u << 10)
#define OUT_CAP (256u << 10) /* an attacker never queues more than this: skips instead */

static struct conn *conns;
static long nconns;
static long first_slot[N_ATTACKS + 1];

static struct {
    int port;
    double duration, deadline, scale;
    long watch_pid;
} opt = {.duration = 60, .deadline = 0, .scale = 1};

static char ws_path1[128], ws_path2[128];
static uint64_t start_ns;
static int server_gone;

/* The watched process still runs: /proc/PID/stat exists and its state is not Z (a zombie:
 * it died and its parent, the bench script, has not reaped it yet) or X. */
static int alive(void) {
    if (!opt.watch_pid) return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", opt.watch_pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *r = strrchr(buf, ')');
    return !(r && r[1] == ' ' && (r[2] == 'Z' || r[2] == 'X'));
}

static void slot_close(struct conn *c, uint64_t reopen_after_ns) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->gen++;
    c->state = ST_IDLE;
    c->inlen = c->outoff = c->outlen = 0;
    c->http_pending = 0;
    c->want_out = 0;
    c->next_ns = now_ns + reopen_after_ns;
}

/* The server ended the connection (EOF, reset, or an error on write). */
static void ended_by_server(struct conn *c, const char *why) {
    int a = c->attack;
    uint64_t held_ms = (now_ns - c->opened_ns) / 1000000;
    count(a, "closed_by_server");
    count_max(a, "held_max_ms", held_ms);
    count_add(a, "held_total_ms", held_ms);
    if (c->state == ST_CONNECTING) count(a, "connect_failed");
    if (why && strstr(why, "reset")) count(a, "closed_by_reset");
    if (attacks[a].kind == ONESHOT && c->state == ST_WAIT_END) countf(a, "variant%ld_closed", c->variant);
    slot_close(c, 100000000ull);
}

static uint8_t *out_reserve(struct conn *c, size_t n) {
    if (c->outlen + n > c->outcap) {
        if (c->outoff) { buf_consume(c->out, &c->outlen, c->outoff); c->outoff = 0; }
        if (c->outlen + n > c->outcap) return NULL;
    }
    return c->out + c->outlen;
}

static void flush(struct conn *c) {
    const char *why = NULL;
    int r = sock_flush(c->fd, c->out, &c->outoff, &c->outlen, &why);
    if (r < 0) { ended_by_server(c, why); return; }
    int want = r == 0;
    if (want != c->want_out) {
        c->want_out = (uint8_t)want;
        uint32_t ev = EPOLLRDHUP | (c->attack == A_NONREADER ? 0 : EPOLLIN) | (want ? EPOLLOUT : 0);
        ep_ctl(EPOLL_CTL_MOD, c->fd, ev, slot_tag(c->gen, (uint32_t)(c - conns)));
    }
}

/* Queues n bytes; 0 when the slot's output is full (the operation is skipped). */
static int put(struct conn *c, const void *p, size_t n) {
    uint8_t *d = out_reserve(c, n);
    if (!d) { count(c->attack, "skipped_output_full"); return 0; }
    memcpy(d, p, n);
    c->outlen += (uint32_t)n;
    return 1;
}

static int put_frame(struct conn *c, int opcode, const void *payload, size_t len) {
    uint8_t *d = out_reserve(c, ws_frame_size(len));
    if (!d) { count(c->attack, "skipped_output_full"); return 0; }
    c->outlen += (uint32_t)ws_encode_frame(d, opcode, payload, len);
    return 1;
}

static int put_text(struct conn *c, const char *s) { return put_frame(c, 1, s, strlen(s)); }

/* ---- opening connections ---------------------------------------------------------------- */

/* tcp_start with a 4 KiB receive buffer, set before connect() so that the window the
 * server sees is small from the start: a non-reader's output then backs up into the
 * server's own queue after a few kilobytes instead of filling megabytes of socket buffers. */
static int tcp_start_small_rcvbuf(int src, uint32_t events, uint64_t tag) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1, small = 4096;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl((127u << 24) | (uint32_t)src)};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { close(fd); return -1; }
    ep_ctl(EPOLL_CTL_ADD, fd, events, tag);
    if (connect(fd, (const struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) { close(fd); return -1; }
    return fd;
}

static void slot_open(struct conn *c) {
    int a = c->attack;
    const char *step;
    /* Sources 127.0.0.40 and up: apart from the fan-out's subscribers (127.0.0.2 and up). */
    int src = 40 + (int)((c - conns) % 8);
    uint32_t ev = EPOLLOUT | EPOLLRDHUP | (a == A_NONREADER ? 0 : EPOLLIN);
    c->gen++;
    int fd = a == A_NONREADER ? tcp_start_small_rcvbuf(src, ev, slot_tag(c->gen, (uint32_t)(c - conns)))
                              : tcp_start(src, ev, slot_tag(c->gen, (uint32_t)(c - conns)), &step);
    if (fd < 0) {
        count(a, "connect_failed");
        c->next_ns = now_ns + 1000000000ull;
        return;
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->want_out = 1;
    c->opened_ns = now_ns;
    c->inlen = c->outoff = c->outlen = 0;
    c->http_pending = 0;
    c->slow_pos = 0;
    c->tokens = 0;
    count(a, "connections");
}

static const char *ws_path_of(int a) { return a == A_NONREADER ? ws_path1 : ws_path2; }

static void queue_upgrade(struct conn *c) {
    char req[512];
    size_t n = ws_upgrade_request(req, sizeof req, ws_path_of(c->attack), "127.0.0.1", opt.port);
    put(c, req, n);
}

/* ---- the operations ---------------------------------------------------------------------- */

static const char *subscribe_fmt = "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\"}}";
static const char pusher_ping[] = "{\"event\":\"pusher:ping\",\"data\":{}}";

static uint64_t op_seq;

/* One ping of either kind, alternating: a WebSocket ping with a 125-byte payload (the most
 * a control frame carries) or a pusher:ping message. */
static int op_ping(struct conn *c) {
    if (op_seq++ & 1) return put_text(c, pusher_ping);
    uint8_t payload[125];
    memset(payload, 'p', sizeof payload);
    return put_frame(c, 9, payload, sizeof payload);
}

static int op_churn(struct conn *c) {
    char ch[48], msg[160];
    snprintf(ch, sizeof ch, "churn-%u", rng32() % 1000);
    snprintf(msg, sizeof msg, subscribe_fmt, ch);
    if (!put_text(c, msg)) return 0;
    snprintf(msg, sizeof msg, "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"%s\"}}", ch);
    return put_text(c, msg);
}

/* The malformed frames, by variant. Each must make the server close the connection, except
 * the last two (bad JSON: a pusher:error and the connection stays), which end by our close. */
#define N_MALFORMED 12
static const char *const malformed_names[N_MALFORMED] = {
    "reserved opcode 0x3", "unmasked text frame", "invalid UTF-8 text", "length 2^63-1", "length 2^64-1 (MSB set)",
    "header of a 1 MiB + 1 frame", "RSV1-3 set", "126-byte ping", "continuation without a start", "1-byte close payload",
    "invalid JSON", "subscribe with a 100 KB channel name",
};

static void op_malformed(struct conn *c) {
    uint8_t f[32];
    uint8_t mask[4] = {1, 2, 3, 4};
    size_t n = 0;
    switch (c->variant) {
    case 0: put_frame(c, 3, "x", 1); return;
    case 1: f[0] = 0x81; f[1] = 2; f[2] = 'h'; f[3] = 'i'; n = 4; break;
    case 2: put_frame(c, 1, "\xc3\x28\xff\xfe", 4); return;
    case 3: case 4: case 5: {
        uint64_t len = c->variant == 3 ? 0x7fffffffffffffffull : c->variant == 4 ? 0xffffffffffffffffull : (1u << 20) + 1;
        f[0] = 0x82; f[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++) f[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        memcpy(f + 10, mask, 4);
        n = 14;
        break;
    }
    case 6: f[0] = 0xf1; f[1] = 0x81; memcpy(f + 2, mask, 4); f[6] = 'x' ^ 1; n = 7; break;
    case 7: {
        uint8_t p[126];
        memset(p, 'q', sizeof p);
        put_frame(c, 9, p, sizeof p);
        return;
    }
    case 8: put_frame(c, 0, "tail", 4); return;
    case 9: put_frame(c, 8, "\x03", 1); return;
    case 10: put_text(c, "{\"event\":\"pusher:subscribe\",\"data\":{{{{"); return;
    default: {
        size_t len = 100000;
        char *m = malloc(len + 64);
        if (!m) die("malloc");
        int h = snprintf(m, 64, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"");
        memset(m + h, 'c', len);
        memcpy(m + h + len, "\"}}", 4);
        put_text(c, m);
        free(m);
        return;
    }
    }
    put(c, f, n);
}

/* The endless slowloris head: a request line, then header lines that never end the head. */
static char slow_byte(uint64_t i) {
    static const char prefix[] = "GET /apps/1/channels?auth_key=app-key HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    static const char line[] = "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    if (i < sizeof prefix - 1) return prefix[i];
    return line[(i - (sizeof prefix - 1)) % (sizeof line - 1)];
}

static const char *const bigbody_lengths[] = {
    "Content-Length: 1000000000\r\n", "Content-Length: 1000000000000000\r\n",
    "Content-Length: 99999999999999999999999999\r\n", "Content-Length: -1\r\n",
    "Content-Length: 10\r\nContent-Length: 2000000000\r\n", "Transfer-Encoding: chunked\r\n",
};
static const char *const bigbody_names[] = {
    "Content-Length 1e9", "Content-Length 1e15", "Content-Length 1e26 (overflows 64 bits)", "Content-Length -1",
    "Content-Length 10 and 2e9", "chunked, chunk size 2^64-1",
};
#define N_BIGBODY 6

static void op_bigbody(struct conn *c) {
    char head[512];
    static uint8_t body[64 << 10];
    if (!body[0]) memset(body, '{', sizeof body);
    int n = snprintf(head, sizeof head,
                     "POST /apps/1/events?auth_key=app-key&auth_timestamp=%ld&auth_version=1.0&auth_signature=0 HTTP/1.1\r\n"
                     "Host: 127.0.0.1\r\nContent-Type: application/json\r\n%s\r\n",
                     (long)time(NULL), bigbody_lengths[c->variant]);
    put(c, head, (size_t)n);
    if (c->variant == 5) put(c, "ffffffffffffffff\r\n", 18);
    put(c, body, sizeof body);
    c->http_pending = 1;
}

static const char *const absurd_times[] = {
    "-9223372036854775808", "9223372036854775807", "-9223372036854775807", "18446744073709551616",
    "1000000000000000000000000000000", "-1", "0", "", "abc", "1e18", "0x7fffffffffffffff", "%2d1",
};
#define N_ABSURD (sizeof absurd_times / sizeof absurd_times[0])

static void rand_hex(char *out, int n) {
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) out[i] = d[rng32() & 15];
    out[n] = 0;
}

/* One API request with a bad signature (badsig) or an absurd timestamp (badtime). */
static void op_badapi(struct conn *c) {
    char req[1024], sig[65], query[512], path[96];
    const char *method = "GET", *body = "";
    int app = rng32() & 1 ? 1 : 2, route = (int)(rng32() % 3);
    const char *key = app == 1 ? "app-key" : "hostile-key";
    char ts[64];
    if (c->attack == A_BADTIME) snprintf(ts, sizeof ts, "%s", absurd_times[rng32() % N_ABSURD]);
    else snprintf(ts, sizeof ts, "%ld", (long)time(NULL));
    static const char ev_body[] = "{\"name\":\"x\",\"channel\":\"hostile\",\"data\":\"{}\"}";
    char md5[33];
    switch (route) {
    case 0: snprintf(path, sizeof path, "/apps/%d/channels", app); break;
    case 1: snprintf(path, sizeof path, "/apps/%d/events", app); method = "POST"; body = ev_body; break;
    default: snprintf(path, sizeof path, "/apps/%d/users/u%u/terminate_connections", app, rng32() % 100); method = "POST"; body = "{}"; break;
    }
    if (*method == 'P') {
        md5_hex(body, strlen(body), md5);
        snprintf(query, sizeof query, "auth_key=%s&auth_timestamp=%s&auth_version=1.0&body_md5=%s", key, ts, md5);
    } else {
        snprintf(query, sizeof query, "auth_key=%s&auth_timestamp=%s&auth_version=1.0", key, ts);
    }
    if (c->attack == A_BADTIME && app == 2) pusher_signature(sig, method, path, query); /* hmac keyed with app 2's secret */
    else rand_hex(sig, 64);
    int n = snprintf(req, sizeof req, "%s %s?%s&auth_signature=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, query, sig, strlen(body), body);
    if (n > 0 && (size_t)n < sizeof req && put(c, req, (size_t)n)) {
        c->http_pending++;
        c->next_ns = now_ns + 10000000000ull; /* answer by */
    }
}

/* One operation of slot c's attack, when it is open. 0: skipped (nothing queued). */
static int do_op(struct conn *c) {
    switch (c->attack) {
    case A_NONREADER: case A_PINGFLOOD: return op_ping(c);
    case A_CHURN: return op_churn(c);
    case A_SLOWLORIS: {
        char b = slow_byte(c->slow_pos++);
        return put(c, &b, 1);
    }
    case A_BADSIG: case A_BADTIME:
        if (c->http_pending) { count(c->attack, "skipped_waiting_response"); return 0; }
        op_badapi(c);
        return 1;
    default: return 0;
    }
}

/* The connection is open (and upgraded, for WebSocket): what each attack does first. */
static void on_ready(struct conn *c) {
    int a = c->attack;
    c->state = ST_OPEN;
    if (attacks[a].kind == ONESHOT) count(a, "ops");
    switch (a) {
    case A_MALFORMED:
        c->variant = (uint8_t)(rng32() % N_MALFORMED);
        countf(a, "variant%ld_sent", c->variant);
        op_malformed(c);
        c->state = ST_WAIT_END;
        c->next_ns = now_ns + 10000000000ull;
        break;
    case A_BIGBODY:
        c->variant = (uint8_t)(rng32() % N_BIGBODY);
        countf(a, "variant%ld_sent", c->variant);
        op_bigbody(c);
        c->state = ST_WAIT_END;
        c->next_ns = now_ns + 10000000000ull;
        break;
    default: break;
    }
}

/* ---- input ------------------------------------------------------------------------------- */

static void on_ws_text(struct conn *c, const uint8_t *p, size_t n) {
    int a = c->attack;
    if (memmem(p, n, "\"pusher:connection_established\"", 31)) { count(a, "established"); return; }
    if (memmem(p, n, "\"pusher:pong\"", 13)) { count(a, "pusher_pongs"); return; }
    if (memmem(p, n, "subscription_succeeded", 22)) { count(a, "subscribed"); return; }
    if (memmem(p, n, "\"pusher:ping\"", 13)) { put_text(c, pusher_pong); return; }
    if (memmem(p, n, "\"pusher:error\"", 14) || memmem(p, n, "subscription_error", 18)) {
        /* "code":N, its quotes perhaps escaped (data is a JSON string in some errors) */
        const uint8_t *code = memmem(p, n, "code", 4);
        long v = 0;
        if (code) {
            const uint8_t *q = code + 4, *e = p + n;
            while (q < e && (*q == '"' || *q == '\\' || *q == ':' || *q == ' ')) q++;
            if (q < e && (*q < '0' || *q > '9')) v = -1; /* "code":null */
            while (q < e && *q >= '0' && *q <= '9' && v < 100000) v = v * 10 + (*q++ - '0');
        }
        if (v < 0) count(a, "pusher_error_null");
        else countf(a, "pusher_error_%ld", v);
        if (a == A_MALFORMED && c->state == ST_WAIT_END) { /* the bad-JSON variants: answered, the connection may stay */
            countf(a, "variant%ld_answered_error", c->variant);
            slot_close(c, 100000000ull);
        }
        return;
    }
    count(a, "other_messages");
}

/* Parses server frames in c->in; returns -1 once the server sent a close frame, 1 when a
 * message made us close the slot. */
static int parse_ws(struct conn *c) {
    uint32_t pos = 0;
    int a = c->attack;
    for (;;) {
        struct ws_frame f;
        int r = ws_decode_frame(c->in + pos, c->inlen - pos, &f);
        if (r < 0) { count(a, "bad_server_frame"); return -1; }
        if (r == 0) {
            if (f.head && f.len > IN_CAP - 64) { count(a, "server_frame_too_big"); return -1; }
            break;
        }
        switch (f.op) {
        case 1:
            on_ws_text(c, f.payload, f.len);
            if (c->fd < 0) return 1; /* it closed the slot */
            break;
        case 9: put_frame(c, 10, f.payload, f.len); break;
        case 10: count(a, "ws_pongs"); break;
        case 8: {
            long code = f.len >= 2 ? (f.payload[0] << 8 | f.payload[1]) : 0;
            countf(a, "close_code_%ld", code);
            if (a == A_MALFORMED && c->state == ST_WAIT_END) countf(a, "variant%ld_close_frame", c->variant);
            return -1;
        }
        default: count(a, "other_frames"); break;
        }
        pos += (uint32_t)(f.head + f.len);
    }
    buf_consume(c->in, &c->inlen, pos);
    return 0;
}

/* HTTP responses in c->in: counts statuses and skips bodies. -1 when the server said close. */
static int parse_http(struct conn *c) {
    int a = c->attack;
    for (;;) {
        struct http_head h;
        long hl = http_response_head(c->in, c->inlen, &h);
        if (hl == 0) return c->inlen > IN_CAP - 1024 ? -1 : 0;
        if (hl < 0) { count(a, "bad_response"); return -1; }
        long body = h.content_length > 0 ? h.content_length : 0;
        if ((uint64_t)hl + (uint64_t)body > c->inlen) {
            if ((uint64_t)hl + (uint64_t)body > IN_CAP) { count(a, "response_too_big"); return -1; }
            return 0;
        }
        countf(a, "status_%ld", h.status);
        if (c->state == ST_WAIT_END) {
            countf(a, "variant%ld_answered", c->variant);
            count_max(a, "answer_max_ms", (now_ns - c->opened_ns) / 1000000);
        }
        if (a == A_SLOWLORIS) count_max(a, "held_until_answer_max_ms", (now_ns - c->opened_ns) / 1000000);
        buf_consume(c->in, &c->inlen, (uint32_t)(hl + body));
        if (c->http_pending) c->http_pending--;
        if (h.close) return -1;
    }
}

static void on_readable(struct conn *c) {
    for (int rounds = 0; rounds < 16; rounds++) {
        if (c->inlen == c->incap) {
            count(c->attack, "input_overflow");
            slot_close(c, 100000000ull);
            return;
        }
        const char *why = NULL;
        ssize_t r = sock_read(c->fd, c->in + c->inlen, c->incap - c->inlen, &why);
        if (r < 0) { ended_by_server(c, why); return; }
        if (r == 0) return;
        c->inlen += (uint32_t)r;
        if (c->state == ST_UPGRADING) {
            long hl = ws_upgrade_response(c->in, c->inlen, 8192);
            if (hl == 0) continue;
            if (hl < 0) {
                struct http_head h;
                if (http_response_head(c->in, c->inlen, &h) > 0) countf(c->attack, "upgrade_refused_%ld", h.status);
                else count(c->attack, "upgrade_failed");
                slot_close(c, 1000000000ull);
                return;
            }
            buf_consume(c->in, &c->inlen, (uint32_t)hl);
            on_ready(c);
        }
        int end = attacks[c->attack].proto == WS ? parse_ws(c) : parse_http(c);
        if (end < 0) { ended_by_server(c, NULL); return; }
        if (c->fd >= 0) flush(c);
        if (c->fd < 0) return;
    }
}

static void on_connected(struct conn *c) {
    int a = c->attack;
    int err = sock_error(c->fd);
    if (err) { count(a, "connect_failed"); slot_close(c, 1000000000ull); return; }
    if (attacks[a].proto == WS) {
        queue_upgrade(c);
        if (a == A_NONREADER) {
            /* It never reads, so it cannot wait for the 101: the subscribe follows the request. */
            char msg[160];
            snprintf(msg, sizeof msg, subscribe_fmt, "broadcast-bench");
            put_text(c, msg);
            c->state = ST_OPEN;
        } else {
            c->state = ST_UPGRADING;
        }
    } else {
        on_ready(c);
        if (c->state == ST_CONNECTING) c->state = ST_OPEN;
    }
    flush(c);
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void tick(double dt) {
    for (int a = 0; a < N_ATTACKS; a++) {
        if (!enabled[a]) continue;
        double per_slot = attacks[a].rate / (double)attacks[a].slots * dt;
        for (long i = first_slot[a]; i < first_slot[a + 1]; i++) {
            struct conn *c = &conns[i];
            if (c->state == ST_IDLE) {
                if (now_ns < c->next_ns) continue;
                /* ONESHOT: a new connection is an operation, paced by the rate. */
                if (attacks[a].kind == ONESHOT) {
                    c->tokens += per_slot;
                    if (c->tokens < 1) continue;
                    c->tokens -= 1;
                }
                slot_open(c);
                continue;
            }
            /* No 101 within 10 s, or no answer to an API request: the server is stuck on it. */
            if (((c->state == ST_CONNECTING || c->state == ST_UPGRADING) && now_ns - c->opened_ns > 10000000000ull) ||
                (c->state == ST_OPEN && c->http_pending && now_ns >= c->next_ns)) {
                count(a, c->state == ST_OPEN ? "no_answer_in_10s" : "no_upgrade_in_10s");
                slot_close(c, 0);
                continue;
            }
            if (c->state == ST_WAIT_END) {
                if (now_ns >= c->next_ns) {
                    countf(a, "variant%ld_not_closed_in_10s", c->variant);
                    count(a, "not_closed_in_10s");
                    slot_close(c, 0);
                }
                continue;
            }
            if (c->state != ST_OPEN || attacks[a].kind == ONESHOT) continue;
            c->tokens += per_slot;
            if (c->tokens > 4 + per_slot) c->tokens = 4 + per_slot; /* no bursts after a stall */
            int did = 0;
            while (c->tokens >= 1) {
                c->tokens -= 1;
                if (do_op(c)) { did = 1; count(a, "ops"); }
            }
            if (did) flush(c);
        }
    }
}

static void report(int final) {
    double secs = (double)(now_ns - start_ns) / 1e9;
    if (!final) {
        fprintf(stderr, "hostile: %.0f s:", secs);
        for (int a = 0; a < N_ATTACKS; a++)
            if (enabled[a]) fprintf(stderr, " %s %llu ops/%llu conns/%llu cut;", attacks[a].name,
                                    (unsigned long long)*counter(a, "ops"), (unsigned long long)*counter(a, "connections"),
                                    (unsigned long long)*counter(a, "closed_by_server"));
        fprintf(stderr, "\n");
        return;
    }
    printf("hostile_seconds=%.1f\n", secs);
    for (int a = 0; a < N_ATTACKS; a++) {
        if (!enabled[a]) continue;
        long open = 0;
        for (long i = first_slot[a]; i < first_slot[a + 1]; i++) open += conns[i].state != ST_IDLE;
        printf("hostile_%s_slots=%ld\nhostile_%s_rate=%.0f\nhostile_%s_open_at_end=%ld\n", attacks[a].name,
               first_slot[a + 1] - first_slot[a], attacks[a].name, attacks[a].rate, attacks[a].name, open);
        for (int i = 0; i < ncounters[a]; i++)
            printf("hostile_%s_%s=%llu\n", attacks[a].name, counters[a][i].name, (unsigned long long)counters[a][i].n);
    }
    printf("hostile_malformed_variants=");
    for (int v = 0; v < N_MALFORMED; v++) printf("%s%d:%s", v ? "; " : "", v, malformed_names[v]);
    printf("\nhostile_bigbody_variants=");
    for (int v = 0; v < N_BIGBODY; v++) printf("%s%d:%s", v ? "; " : "", v, bigbody_names[v]);
    printf("\n");
}

static int select_attacks(const char *list, int value) {
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int a = 0; a < N_ATTACKS; a++)
            if (!strcmp(t, attacks[a].name)) { enabled[a] = value; found = 1; }
        if (!found) { fprintf(stderr, "hostile: unknown attack \"%s\"\n", t); return -1; }
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: hostile --port P [--duration S (60)] [--only a,b] [--skip a,b] [--scale F (1)] [--watch-pid PID]\n"
               "               [--deadline S (duration + 30)] [--list]\n"
               "attacks (slots, operations/s):");
    for (int a = 0; a < N_ATTACKS; a++) fprintf(f, " %s (%ld, %.0f)", attacks[a].name, attacks[a].slots, attacks[a].rate);
    fprintf(f, "\n");
}

int main(int argc, char **argv) {
    static const struct option lo[] = {
        {"port", 1, 0, 'p'}, {"duration", 1, 0, 'D'}, {"only", 1, 0, 'o'}, {"skip", 1, 0, 's'}, {"scale", 1, 0, 'S'},
        {"watch-pid", 1, 0, 'w'}, {"deadline", 1, 0, 'x'}, {"list", 0, 0, 'l'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *only = NULL, *skip = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': opt.port = (int)parse_num("--port", optarg, 1, 65535); break;
        case 'D': opt.duration = parse_num("--duration", optarg, 1, 7200); break;
        case 'o': only = optarg; break;
        case 's': skip = optarg; break;
        case 'S': opt.scale = parse_num("--scale", optarg, 0.01, 10); break;
        case 'w': opt.watch_pid = (long)parse_num("--watch-pid", optarg, 1, 1 << 30); break;
        case 'x': opt.deadline = parse_num("--deadline", optarg, 1, 7500); break;
        case 'l': for (int a = 0; a < N_ATTACKS; a++) printf("%s\n", attacks[a].name); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    no_more_args(argc, argv);
    if (!opt.port) { usage(stderr); return 2; }
    for (int a = 0; a < N_ATTACKS; a++) enabled[a] = only == NULL;
    if (only && select_attacks(only, 1)) return 2;
    if (skip && select_attacks(skip, 0)) return 2;
    if (!opt.deadline) opt.deadline = opt.duration + 30;
    set_loopback_dst("127.0.0.1", opt.port);
    snprintf(ws_path1, sizeof ws_path1, PUSHER_WS_PATH, "app-key");
    snprintf(ws_path2, sizeof ws_path2, PUSHER_WS_PATH, "hostile-key");
    hmac_init("hostile-secret");
    rng_seed();
    install_signals();
    setvbuf(stdout, NULL, _IOLBF, 0);

    nconns = 0;
    for (int a = 0; a < N_ATTACKS; a++) {
        attacks[a].slots = (long)(attacks[a].slots * opt.scale + 0.5);
        if (attacks[a].slots < 1) attacks[a].slots = 1;
        attacks[a].rate *= opt.scale;
        first_slot[a] = nconns;
        if (enabled[a]) nconns += attacks[a].slots;
    }
    first_slot[N_ATTACKS] = nconns;
    rlim_t nofile = raise_nofile_limit();
    if ((rlim_t)nconns + 64 > nofile) { fprintf(stderr, "hostile: %ld slots need more than the open-file limit %llu\n", nconns, (unsigned long long)nofile); return 2; }
    conns = calloc((size_t)(nconns ? nconns : 1), sizeof *conns);
    if (!conns) die("calloc");
    for (int a = 0; a < N_ATTACKS; a++) {
        if (!enabled[a]) continue;
        for (long i = first_slot[a]; i < first_slot[a + 1]; i++) {
            struct conn *c = &conns[i];
            c->fd = -1;
            c->attack = (uint8_t)a;
            c->in = malloc(IN_CAP);
            c->out = malloc(OUT_CAP);
            if (!c->in || !c->out) die("malloc");
            c->incap = IN_CAP;
            c->outcap = OUT_CAP;
            /* Spread the first connections over the first second. */
            c->next_ns = clock_ns() + (uint64_t)(rng01() * 1e9);
        }
    }
    ep_open();
    deadline_start(opt.deadline);
    start_ns = now_ns;
    uint64_t end = now_ns + (uint64_t)(opt.duration * 1e9), last_tick = now_ns, next_report = now_ns + 10000000000ull,
             next_watch = now_ns;
    struct epoll_event evs[512];
    while (now_ns < end && now_ns < deadline_ns && !stop_signal) {
        int n = ep_wait(evs, 512, 10);
        for (int i = 0; i < n; i++) {
            uint32_t idx = tag_slot(evs[i].data.u64);
            if (idx >= (uint32_t)nconns) continue;
            struct conn *c = &conns[idx];
            if (c->fd < 0 || c->gen != tag_gen(evs[i].data.u64)) continue;
            uint32_t e = evs[i].events;
            if (c->state == ST_CONNECTING) {
                if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
                continue;
            }
            if ((e & EPOLLIN) && c->attack != A_NONREADER) on_readable(c);
            if (c->fd < 0) continue;
            if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
                /* A non-reader learns of the end only this way; the others read the EOF first. */
                if (c->attack == A_NONREADER || !(e & EPOLLIN)) { ended_by_server(c, (e & EPOLLERR) ? "reset" : NULL); continue; }
            }
            if (e & EPOLLOUT) flush(c);
        }
        double dt = (double)(now_ns - last_tick) / 1e9;
        if (dt >= 0.01) { tick(dt); last_tick = now_ns; }
        if (now_ns >= next_watch) {
            next_watch = now_ns + 200000000ull;
            if (!alive()) { server_gone = 1; break; }
        }
        if (now_ns >= next_report) { report(0); next_report += 10000000000ull; }
    }
    report(1);
    if (server_gone) printf("server_gone=1\nserver_gone_after_s=%.1f\n", (double)(now_ns - start_ns) / 1e9);
    return 0;
}
