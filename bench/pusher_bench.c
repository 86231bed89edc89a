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
 *   pusher_bench broadcast --port P | --ports P1,P2,... [--subscribers 1000] [--rate 50] [--duration 8]
 *                          [--window 16] [--closed 5] [--cpu-pid PID]...
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
 * broadcast: N subscribers of one channel, spread round-robin over the nodes of
 *   --ports (subscriber i on node i mod K); events are published to the first node
 *   only, so on a cluster they reach the other nodes' subscribers through the
 *   cluster adapter. After a probe event has reached every subscriber: open loop at
 *   --rate for --duration, then closed loop with --window events in flight for
 *   --closed seconds (an event is in flight until its 200 and all N deliveries have
 *   arrived). Latency overall and per node; CPU of every --cpu-pid per phase.
 *
 * --ports P1,P2,... (any mode): WebSocket connections go round-robin to these
 * ports (nodes); HTTP requests go to the first.
 *
 * Results are key=value lines on stdout; progress and errors go to stderr.
 * Build: gcc -O2 -Wall -o pusher_bench pusher_bench.c -lcrypto (it includes common.h, net.h and pusher_api.h beside it)
 */
#define _GNU_SOURCE
#define PROG "pusher_bench"
#include "net.h"
#include "pusher_api.h"

enum mode { MODE_CHANNELS, MODE_PRESENCE, MODE_API, MODE_BROADCAST };
enum kind { K_WS, K_HTTP };
enum state { ST_FREE, ST_CONNECTING, ST_UPGRADING, ST_WAIT_EST, ST_OPEN };

#define MAX_BUF (16u << 20)
#define MAX_NODES 8
#define MAX_CPU_PIDS 8

struct req { uint64_t t, seq; uint32_t expect; uint32_t kind; }; /* one outstanding HTTP request */
enum req_kind { R_PUBLISH, R_CHANNELS };

struct conn {
    int fd;
    uint32_t gen;
    uint8_t kind, state, dirty, want_out;
    uint8_t busy;          /* presence: a leave + join in flight */
    uint8_t node;          /* index in --ports of the server it is connected to */
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
    int nports, ports[MAX_NODES]; /* --ports: WebSocket connections round-robin over these */
    const char *channel;          /* broadcast: the channel */
    double rate, drain;           /* broadcast: open-loop events/s; seconds to wait for stragglers */
    long window;                  /* broadcast: events in flight in closed loop */
    int ncpu_pids;
    long cpu_pids[MAX_CPU_PIDS];  /* report these processes' CPU time per phase */
} opt = {
    .host = "127.0.0.1", .app_id = "1", .key = "app-key", .secret = "app-secret",
    .connections = 0, .group_size = 10, .group_frac = 0.5, .rates = "2000,5000,10000,15000,20000,30000",
    .step = 2, .closed_secs = 2, .http_conns = 0, .depth = 0, .queue_cap = 64, .per_conn = 10, .rooms = 1000,
    .inflight = 64, .leave_frac = 0.1, .duration = 0, .warmup = 1, .deadline = 120, .subscribers = 0,
    .src_first = 2, .per_src = 5000, .connect_inflight = 256, .payload = 64, .server_cpu = -1, .client_cpu = -1,
    .channel = "broadcast-bench", .rate = 50, .drain = 5, .window = 16,
};

static struct conn *conns;
static long nconns, nws, http_first; /* WebSocket connections first, then HTTP ones */
static long *dirty_list;
static long ndirty;
static long now_wall;
static char upgrade_req[MAX_NODES][512]; /* one per node: its Host header */
static size_t upgrade_len[MAX_NODES];
static struct sockaddr_in node_addr[MAX_NODES];
static char pad[4096];

/* counters */
static long n_open, n_failed, n_dropped, n_connecting, n_started, n_ready, n_errors, n_pings, n_pongs;
static long n_sub_errors, n_pusher_errors, n_bad_channel, n_unexpected;
static uint64_t n_sent, n_accepted, n_non200, n_skipped, n_delivered, n_expected;
static uint64_t n_member_added, n_member_removed, n_joins, n_leaves;
static uint64_t n_setup_msgs;
static int server_gone;

/* Latency histograms: 1 µs buckets below 100 ms, 1 ms buckets from 100 ms to 100 s. */
static struct us_hist h_deliver, h_http, h_join;

/* /proc/stat times of one CPU: [0] busy (everything but idle and iowait), [1] irq + softirq, [2] total, [3] steal. */
static int cpu_times(int cpu, unsigned long long out[4]) {
    char line[512];
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        struct cpu_stat s;
        if (cpu_stat_parse(line, &s) != cpu) continue;
        out[2] = cpu_stat_total(&s);
        out[0] = out[2] - s.idle - s.iowait;
        out[1] = s.irq + s.softirq;
        out[3] = s.steal;
        found = 0;
    }
    fclose(f);
    return found;
}

struct cpu_mark {
    struct cpu_pair p;
    uint64_t t;
    unsigned long long cpu[4], ccpu[4];
    int cpu_ok, ccpu_ok;
    double pid_cpu[MAX_CPU_PIDS], others;
};

/* The processes --cpu-pid and --watch-pid name: left out of the "other processes" CPU. */
static int our_pids(long out[MAX_CPU_PIDS + 1]) {
    int n = 0;
    for (int k = 0; k < opt.ncpu_pids; k++) out[n++] = opt.cpu_pids[k];
    if (opt.watch_pid) out[n++] = opt.watch_pid;
    return n;
}

static struct cpu_mark cpu_mark(void) {
    struct cpu_mark m = {cpu_pair_mark(opt.watch_pid), clock_ns(), {0}, {0}, 0, 0, {0}, -1};
    for (int k = 0; k < opt.ncpu_pids; k++) m.pid_cpu[k] = proc_cpu_s(opt.cpu_pids[k]);
    if (opt.ncpu_pids) {
        long skip[MAX_CPU_PIDS + 1];
        m.others = others_cpu_s(skip, our_pids(skip));
    }
    if (opt.server_cpu >= 0) m.cpu_ok = cpu_times(opt.server_cpu, m.cpu) == 0;
    if (opt.client_cpu >= 0) m.ccpu_ok = cpu_times(opt.client_cpu, m.ccpu) == 0;
    return m;
}

static void cpu_print(const char *prefix, struct cpu_mark m, uint64_t end_ns) {
    double secs = (double)(end_ns - m.t) / 1e9;
    if (secs <= 0) return;
    if (cpu_pair_print(prefix, m.p, opt.watch_pid, secs) < 0) server_gone = 1;
    unsigned long long c[4];
    if (m.cpu_ok && cpu_times(opt.server_cpu, c) == 0 && c[2] > m.cpu[2]) {
        /* The server's CPU as a whole: with IRQ time accounting, softirq work (loopback TCP
         * receive processing) shows here and not in the process's own times. */
        double tot = (double)(c[2] - m.cpu[2]);
        printf("%s_server_core_busy_pct=%.0f\n%s_server_core_irq_pct=%.0f\n", prefix, 100.0 * (double)(c[0] - m.cpu[0]) / tot,
               prefix, 100.0 * (double)(c[1] - m.cpu[1]) / tot);
        if (opt.ncpu_pids) printf("%s_server_core_steal_pct=%.0f\n", prefix, 100.0 * (double)(c[3] - m.cpu[3]) / tot);
    }
    if (m.ccpu_ok && cpu_times(opt.client_cpu, c) == 0 && c[2] > m.ccpu[2]) {
        printf("%s_loadgen_core_busy_pct=%.0f\n", prefix, 100.0 * (double)(c[0] - m.ccpu[0]) / (double)(c[2] - m.ccpu[2]));
        if (opt.ncpu_pids) printf("%s_loadgen_core_steal_pct=%.0f\n", prefix, 100.0 * (double)(c[3] - m.ccpu[3]) / (double)(c[2] - m.ccpu[2]));
    }
    /* Every other user-space process on the machine (with --cpu-pid): another program competing. */
    if (m.others >= 0) {
        long skip[MAX_CPU_PIDS + 1];
        double now = others_cpu_s(skip, our_pids(skip));
        if (now >= 0) printf("%s_other_processes_cpu_pct=%.0f\n", prefix, 100.0 * (now - m.others) / secs);
    }
    /* --cpu-pid k (from 1): user + system seconds over the window and % of one core. */
    for (int k = 0; k < opt.ncpu_pids; k++) {
        double now = proc_cpu_s(opt.cpu_pids[k]);
        if (now < 0 || m.pid_cpu[k] < 0) { printf("%s_pid%d_gone=1\n", prefix, k + 1); continue; }
        printf("%s_pid%d_cpu_s=%.3f\n%s_pid%d_cpu_pct=%.0f\n", prefix, k + 1, now - m.pid_cpu[k], prefix, k + 1,
               100.0 * (now - m.pid_cpu[k]) / secs);
    }
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
        buf_consume(c->out, &c->outlen, c->outoff);
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

static void queue_frame(struct conn *c, int opcode, const void *payload, size_t len) {
    c->outlen += (uint32_t)ws_encode_frame(out_reserve(c, ws_frame_size(len)), opcode, payload, len);
    mark_dirty(c);
}

static void queue_text(struct conn *c, const char *s, size_t n) { queue_frame(c, 0x1, s, n); }

/* ---- connections ----------------------------------------------------------- */

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
    const char *step;
    uint64_t tag = slot_tag(c->gen, (uint32_t)(c - conns));
    int fd = tcp_start_to(&node_addr[c->node], src_last_octet, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, tag, &step);
    if (fd < 0) {
        fprintf(stderr, "pusher_bench: %s from 127.0.0.%d: %s\n", step, src_last_octet, strerror(errno));
        n_failed++;
        return -1;
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->inlen = c->outoff = c->outlen = 0;
    n_connecting++;
    n_started++;
    return 0;
}

static void conn_flush(struct conn *c) {
    const char *why;
    int r = sock_flush(c->fd, c->out, &c->outoff, &c->outlen, &why);
    if (r < 0) conn_fail(c, why);
    else c->want_out = r == 0;
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
    case MODE_BROADCAST:
        public_subscribe(c, opt.channel);
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
            us_hist_add(&h_join, (int64_t)(now_ns - c->op_start));
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

/* ---- broadcast: events in flight ------------------------------------------------------- */

/* Each broadcast event has a sequence number (in its data after the time); its slot counts
 * its deliveries. An event is complete once its 200 and every subscriber's copy arrived. */
#define EV_RING 65536u
struct ev_slot { uint64_t seq; uint32_t got; uint8_t acked, done; };
static struct ev_slot ev_ring[EV_RING];
static uint64_t ev_next_seq = 1;        /* 0: no event */
static long ev_open;                    /* events sent and not complete */
static uint64_t ev_completed, n_late, n_dup;
static uint64_t n_node_delivered[MAX_NODES];
static struct us_hist h_node[MAX_NODES]; /* broadcast: latency per node of the subscriber */
static uint64_t last_arrival_ns;
static int window_active;               /* broadcast closed loop: refill as events complete */

static void publish_on(struct conn *c);

static void ev_sent(uint64_t seq) {
    struct ev_slot *e = &ev_ring[seq % EV_RING];
    if (e->seq && !e->done) n_late++; /* a slot reused before its event completed (never with a sane window) */
    *e = (struct ev_slot){seq, 0, 0, 0};
    ev_open++;
}

static void ev_check(struct ev_slot *e) {
    if (e->done || !e->acked || e->got < (uint32_t)opt.subscribers) return;
    e->done = 1;
    ev_open--;
    ev_completed++;
    if (window_active && !stop_signal)
        while (ev_open < opt.window && conns[http_first].state == ST_OPEN && conns[http_first].nout < conns[http_first].ringcap)
            publish_on(&conns[http_first]);
}

static void ev_acked(uint64_t seq, int ok) {
    struct ev_slot *e = &ev_ring[seq % EV_RING];
    if (e->seq != seq || e->done) return;
    if (!ok) { e->done = 1; ev_open--; return; } /* never delivered: out of the window */
    e->acked = 1;
    ev_check(e);
}

static void ev_delivered(uint64_t seq) {
    struct ev_slot *e = &ev_ring[seq % EV_RING];
    if (e->seq != seq) { n_late++; return; }
    if (++e->got > (uint32_t)opt.subscribers) { n_dup++; return; }
    ev_check(e);
}

static void on_event_delivery(struct conn *c, const uint8_t *p, size_t n) {
    const uint8_t *v;
    size_t vl;
    long i = c - conns;
    if (!str_field(p, n, "data", &v, &vl) || vl < 3 || v[0] != 't' || v[1] != '=') { n_unexpected++; return; }
    char *rest;
    uint64_t t = strtoull((const char *)v + 2, &rest, 10);
    us_hist_add(&h_deliver, (int64_t)(now_ns - t));
    n_delivered++;
    if (opt.mode == MODE_BROADCAST) {
        us_hist_add(&h_node[c->node], (int64_t)(now_ns - t));
        n_node_delivered[c->node]++;
        last_arrival_ns = now_ns;
        if (strncmp(rest, ";s=", 3) != 0) { n_unexpected++; return; }
        ev_delivered(strtoull(rest + 3, NULL, 10));
    }
    if (!str_field(p, n, "channel", &v, &vl)) { n_bad_channel++; return; }
    char want[64];
    if (opt.mode == MODE_CHANNELS) {
        if (vl > 5 && !memcmp(v, "user-", 5)) snprintf(want, sizeof want, "user-%ld", i);
        else snprintf(want, sizeof want, "group-%ld", i / opt.group_size);
    } else if (opt.mode == MODE_BROADCAST) {
        snprintf(want, sizeof want, "%s", opt.channel);
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
        queue_text(c, pusher_pong, sizeof pusher_pong - 1);
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

static int parse_frames(struct conn *c) {
    uint32_t pos = 0;
    for (;;) {
        struct ws_frame f;
        int r = ws_decode_frame(c->in + pos, c->inlen - pos, &f);
        if (r < 0) { conn_fail(c, "server frame is masked"); return -1; }
        if (f.head && f.len > MAX_BUF / 2) { conn_fail(c, "server frame too large"); return -1; }
        if (!r) {
            if (f.head) grow(&c->in, &c->incap, f.head + f.len + pos);
            break;
        }
        switch (f.op) {
        case 0x9: n_pings++; queue_frame(c, 0xA, f.payload, (size_t)f.len); break;
        case 0xA: break;
        case 0x8: conn_fail(c, "server sent close"); return -1;
        case 0x1:
            if (!f.fin) { n_errors++; break; }
            on_text(c, f.payload, (size_t)f.len);
            if (c->state == ST_FREE) return -1;
            break;
        default: n_errors++;
        }
        pos += (uint32_t)(f.head + f.len);
    }
    buf_consume(c->in, &c->inlen, pos);
    return 0;
}

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
    us_hist_add(&h_http, (int64_t)(now_ns - r.t));
    if (r.seq) ev_acked(r.seq, status == 200);
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
        struct http_head hh;
        long hl = http_response_head(p, avail, &hh);
        if (hl == 0) break;
        if (hl < 0) { conn_fail(c, "bad HTTP response"); return -1; }
        size_t headlen = (size_t)hl;
        long cl = hh.content_length;
        if (cl < 0) { conn_fail(c, "HTTP response without Content-Length"); return -1; }
        if (avail < headlen + (size_t)cl) { grow(&c->in, &c->incap, pos + headlen + (size_t)cl); break; }
        on_http_response(c, hh.status, p + headlen, (size_t)cl);
        if (c->state == ST_FREE) return -1;
        pos += (uint32_t)(headlen + (size_t)cl);
    }
    buf_consume(c->in, &c->inlen, pos);
    return 0;
}

static void on_readable(struct conn *c) {
    for (;;) {
        if (c->inlen == c->incap) grow(&c->in, &c->incap, (uint64_t)c->incap + 1);
        size_t want = c->incap - c->inlen;
        const char *why;
        ssize_t n = sock_read(c->fd, c->in + c->inlen, want, &why);
        if (n == 0) break;
        if (n < 0) { conn_fail(c, why); return; }
        c->inlen += (uint32_t)n;
        if (c->kind == K_HTTP) {
            if (parse_http(c) < 0) return;
        } else {
            if (c->state == ST_UPGRADING) {
                long used = ws_upgrade_response(c->in, c->inlen, 8192);
                if (used < 0) { conn_fail(c, "bad upgrade response"); return; }
                if (used == 0) continue;
                buf_consume(c->in, &c->inlen, (uint32_t)used);
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
        int err = sock_error(c->fd);
        if (err) { conn_fail(c, strerror(err)); return; }
        if (c->kind == K_WS) {
            c->state = ST_UPGRADING;
            queue_raw(c, upgrade_req[c->node], upgrade_len[c->node]);
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
    int n = ep_wait(evs, 1024, timeout_ms);
    now_wall = (long)time(NULL);
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
    flush_dirty();
    return n;
}

static int ms_until(uint64_t t) { return ms_until_cap(t, 100); }

static int past_deadline(void) { return deadline_passed("deadline_exceeded", opt.deadline); }

static int server_alive(void) {
    if (!opt.watch_pid) return 1;
    if (proc_cpu_s(opt.watch_pid) < 0) { server_gone = 1; return 0; }
    return 1;
}

/* ---- HTTP requests ------------------------------------------------------------------- */

static int push_req(struct conn *c, uint64_t t, uint64_t seq, uint32_t expect, uint32_t kind) {
    if (c->nout == c->ringcap) return -1;
    c->ring[(c->ring_head + c->nout) % c->ringcap] = (struct req){t, seq, expect, kind};
    c->nout++;
    return 0;
}

static void send_publish(struct conn *c, const char *chan, uint32_t expect, uint64_t t) {
    char body[5200], head[640];
    uint64_t seq = 0;
    int bl;
    if (opt.mode == MODE_BROADCAST) {
        seq = ev_next_seq++;
        bl = snprintf(body, sizeof body, "{\"name\":\"ev\",\"channel\":\"%s\",\"data\":\"t=%llu;s=%llu;%s\"}",
                      chan, (unsigned long long)t, (unsigned long long)seq, pad);
        ev_sent(seq);
    } else {
        bl = snprintf(body, sizeof body, "{\"name\":\"ev\",\"channel\":\"%s\",\"data\":\"t=%llu;%s\"}",
                      chan, (unsigned long long)t, pad);
    }
    int hl = pusher_events_head(head, sizeof head, opt.app_id, opt.key, now_wall, body, (size_t)bl, opt.host, opt.port);
    if (hl < 0 || (size_t)hl >= sizeof head) { fprintf(stderr, "pusher_bench: request head too large\n"); exit(1); }
    uint8_t *d = out_reserve(c, (size_t)(hl + bl));
    memcpy(d, head, (size_t)hl);
    memcpy(d + hl, body, (size_t)bl);
    c->outlen += (uint32_t)(hl + bl);
    mark_dirty(c);
    push_req(c, t, seq, expect, R_PUBLISH);
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
    if (opt.mode == MODE_BROADCAST) { send_publish(c, opt.channel, (uint32_t)opt.subscribers, t); return; }
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
    char q[256], path[128], sig[65], head[768];
    snprintf(q, sizeof q, "auth_key=%s&auth_timestamp=%ld&auth_version=1.0&filter_by_prefix=presence-&info=user_count",
             opt.key, now_wall);
    snprintf(path, sizeof path, "/apps/%s/channels", opt.app_id);
    pusher_signature(sig, "GET", path, q);
    int hl = snprintf(head, sizeof head, "GET %s?%s&auth_signature=%s HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
                      path, q, sig, opt.host, opt.port);
    queue_raw(c, head, (size_t)hl);
    push_req(c, now_ns, 0, 0, R_CHANNELS);
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
        us_hist_clear(&h_deliver);
        us_hist_clear(&h_http);
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
        us_hist_print(hp, &h_deliver);
        snprintf(hp, sizeof hp, "%s_http", prefix);
        us_hist_print(hp, &h_http);
        printf("%s_drained=%d\n", prefix, ok);
        if (!opt.quiet)
            fprintf(stderr, "channels step %d: offered %.0f/s, accepted %.0f/s, deliveries %.0f/s, p50 %llu us, p99 %llu us\n",
                    step, rate, (double)(b.accepted - a.accepted) / ((double)(b.t - a.t) / 1e9),
                    (double)(b.delivered - a.delivered) / ((double)(b.t - a.t) / 1e9),
                    (unsigned long long)us_hist_pct(&h_deliver, 0.5), (unsigned long long)us_hist_pct(&h_deliver, 0.99));
        if (rc || !server_alive()) break;
    }
    printf("channels_steps=%d\n", step);
    if (opt.closed_secs > 0 && !rc && !stop_signal && server_alive()) {
        /* Closed loop: depth requests in flight on every HTTP connection. */
        us_hist_clear(&h_deliver);
        us_hist_clear(&h_http);
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
        us_hist_print("channels_closed_delivery", &h_deliver);
        us_hist_print("channels_closed_http", &h_http);
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

    us_hist_clear(&h_join);
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
    us_hist_print("presence_join", &h_join);
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
    us_hist_clear(&h_http);
    us_hist_clear(&h_deliver);
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
    us_hist_print("api_http", &h_http);
    int ok = wait_until(drained, 3);
    printf("api_drained=%d\napi_deliveries_missing=%lld\n", ok, (long long)n_expected - (long long)n_delivered);
    return rc ? rc : (n_non200 ? 1 : 0);
}

/* ---- broadcast ------------------------------------------------------------------------------ */

static void node_hists_clear(void) {
    us_hist_clear(&h_deliver);
    us_hist_clear(&h_http);
    for (int k = 0; k < opt.nports; k++) us_hist_clear(&h_node[k]);
}

/* Latency overall and per node, and deliveries per node, under PREFIX. */
static void node_hists_print(const char *prefix, const uint64_t *node_before) {
    char hp[96];
    snprintf(hp, sizeof hp, "%s_delivery", prefix);
    us_hist_print(hp, &h_deliver);
    for (int k = 0; k < opt.nports; k++) {
        snprintf(hp, sizeof hp, "%s_node%d_delivery", prefix, k + 1);
        us_hist_print(hp, &h_node[k]);
        printf("%s_node%d_deliveries=%llu\n", prefix, k + 1, (unsigned long long)(n_node_delivered[k] - node_before[k]));
    }
    snprintf(hp, sizeof hp, "%s_http", prefix);
    us_hist_print(hp, &h_http);
}

/* Open loop at opt.rate for `secs`, the publish times on a fixed schedule (a publish is
 * skipped when the connection already has queue_cap requests outstanding). Returns 3 at the deadline. */
static int broadcast_open_loop(double secs) {
    struct conn *h = &conns[http_first];
    uint64_t interval = (uint64_t)(1e9 / opt.rate), next_t = now_ns, end = now_ns + (uint64_t)(secs * 1e9);
    while (now_ns < end && !stop_signal) {
        while (next_t <= now_ns && next_t < end) {
            if (h->state == ST_OPEN && h->nout < (uint32_t)opt.queue_cap) publish_at(h, next_t);
            else n_skipped++;
            next_t += interval;
        }
        if (past_deadline()) return 3;
        run_loop_once(ms_until(next_t < end ? next_t : end));
    }
    return 0;
}

static int run_broadcast(void) {
    if (setup()) return 1;
    printf("broadcast_subscribers=%ld\nbroadcast_nodes=%d\n", opt.subscribers, opt.nports);
    int rc = 0;
    uint64_t node_before[MAX_NODES];

    /* The probe: one event must reach every subscriber, on every node, before anything is measured. */
    uint64_t p0 = now_ns;
    publish_at(&conns[http_first], now_ns);
    int probe = wait_until(drained, 10);
    printf("broadcast_probe_ok=%d\nbroadcast_probe_us=%llu\n", probe, (unsigned long long)((now_ns - p0) / 1000));
    if (!probe) {
        fprintf(stderr, "pusher_bench: the probe event reached %llu of %llu subscribers within 10 s\n",
                (unsigned long long)n_delivered, (unsigned long long)n_expected);
        return 1;
    }

    if (opt.rate > 0 && opt.duration > 0) {
        if (opt.warmup > 0) {
            if ((rc = broadcast_open_loop(opt.warmup))) return rc;
            wait_until(drained, opt.drain);
        }
        node_hists_clear();
        memcpy(node_before, n_node_delivered, sizeof node_before);
        struct snap a = snap_now();
        struct cpu_mark m = cpu_mark();
        last_arrival_ns = 0;
        rc = broadcast_open_loop(opt.duration);
        uint64_t pub_end = now_ns;
        int ok = wait_until(drained, opt.drain);
        struct snap b = snap_now();
        uint64_t until = last_arrival_ns > pub_end ? last_arrival_ns : pub_end;
        double secs = (double)(until - a.t) / 1e9;
        uint64_t deliveries = b.delivered - a.delivered, expected = b.expected - a.expected;
        printf("broadcast_open_rate=%.0f\nbroadcast_open_publish_seconds=%.3f\nbroadcast_open_seconds=%.3f\n", opt.rate,
               (double)(pub_end - a.t) / 1e9, secs);
        printf("broadcast_open_sent=%llu\nbroadcast_open_accepted=%llu\nbroadcast_open_non200=%llu\nbroadcast_open_skipped=%llu\n",
               (unsigned long long)(b.sent - a.sent), (unsigned long long)(b.accepted - a.accepted),
               (unsigned long long)(b.non200 - a.non200), (unsigned long long)(b.skipped - a.skipped));
        printf("broadcast_open_deliveries=%llu\nbroadcast_open_deliveries_expected=%llu\nbroadcast_open_deliveries_per_sec=%.0f\n",
               (unsigned long long)deliveries, (unsigned long long)expected, (double)deliveries / secs);
        printf("broadcast_open_drained=%d\nbroadcast_open_window_seconds=%.3f\n", ok, (double)(b.t - a.t) / 1e9);
        /* CPU from the first publish to the last delivery (the drain's end). */
        cpu_print("broadcast_open", m, b.t);
        node_hists_print("broadcast_open", node_before);
        if (!opt.quiet)
            fprintf(stderr, "broadcast open loop %.0f/s: %llu of %llu deliveries, %.0f/s, p50 %llu us, p99 %llu us\n", opt.rate,
                    (unsigned long long)deliveries, (unsigned long long)expected, (double)deliveries / secs,
                    (unsigned long long)us_hist_pct(&h_deliver, 0.5), (unsigned long long)us_hist_pct(&h_deliver, 0.99));
        if (rc || !ok || !server_alive()) return rc ? rc : 4;
    }

    if (opt.closed_secs > 0) {
        struct conn *h = &conns[http_first];
        node_hists_clear();
        memcpy(node_before, n_node_delivered, sizeof node_before);
        struct snap a = snap_now();
        struct cpu_mark m = cpu_mark();
        uint64_t done0 = ev_completed, end = now_ns + (uint64_t)(opt.closed_secs * 1e9);
        window_active = 1;
        while (ev_open < opt.window && h->state == ST_OPEN && h->nout < h->ringcap) publish_on(h);
        while (now_ns < end && !stop_signal) {
            if (past_deadline()) { rc = 3; break; }
            run_loop_once(ms_until(end));
        }
        window_active = 0;
        struct snap b = snap_now();
        uint64_t done = ev_completed - done0;
        double secs = (double)(b.t - a.t) / 1e9;
        printf("broadcast_closed_window=%ld\nbroadcast_closed_seconds=%.3f\n", opt.window, secs);
        printf("broadcast_closed_sent=%llu\nbroadcast_closed_accepted=%llu\nbroadcast_closed_non200=%llu\nbroadcast_closed_completed=%llu\n",
               (unsigned long long)(b.sent - a.sent), (unsigned long long)(b.accepted - a.accepted),
               (unsigned long long)(b.non200 - a.non200), (unsigned long long)done);
        printf("broadcast_closed_events_per_sec=%.0f\nbroadcast_closed_deliveries=%llu\nbroadcast_closed_deliveries_per_sec=%.0f\n",
               (double)done / secs, (unsigned long long)(b.delivered - a.delivered), (double)(b.delivered - a.delivered) / secs);
        cpu_print("broadcast_closed", m, b.t);
        node_hists_print("broadcast_closed", node_before);
        int ok = wait_until(drained, opt.drain);
        printf("broadcast_closed_drained=%d\n", ok);
        if (!opt.quiet)
            fprintf(stderr, "broadcast closed loop, %ld in flight: %.0f events/s, %.0f deliveries/s, p50 %llu us, p99 %llu us\n",
                    opt.window, (double)done / secs, (double)(b.delivered - a.delivered) / secs,
                    (unsigned long long)us_hist_pct(&h_deliver, 0.5), (unsigned long long)us_hist_pct(&h_deliver, 0.99));
        if (!rc && !ok) rc = 4;
    }
    printf("broadcast_deliveries_expected=%llu\nbroadcast_deliveries_received=%llu\nbroadcast_deliveries_missing=%lld\n",
           (unsigned long long)n_expected, (unsigned long long)n_delivered, (long long)n_expected - (long long)n_delivered);
    printf("broadcast_late=%llu\nbroadcast_duplicates=%llu\n", (unsigned long long)n_late, (unsigned long long)n_dup);
    if (!rc && (n_late || n_dup)) rc = 1;
    return rc;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
        "usage: pusher_bench channels|presence|api|broadcast --port P [options]\n"
        "  --host 127.0.0.1        server address (loopback only)\n"
        "  --ports P1,P2,...       instead of --port: nodes; WebSocket connections round-robin, HTTP to P1 (at most 8)\n"
        "  --app-id 1 --key app-key --secret app-secret\n"
        "  --connections N         WebSocket connections (channels 10000, presence 5000, api: --subscribers)\n"
        "  --group-size G          channels: members of each group channel (10)\n"
        "  --group-frac F          channels: share of publishes to group channels (0.5)\n"
        "  --rates R1,R2,...       channels: open-loop publish rates, one step each\n"
        "  --step S                channels: seconds per rate step (2)\n"
        "  --closed S              channels/broadcast: seconds of closed loop after the steps (channels 2, broadcast 0; 0 = none)\n"
        "  --http-conns H          HTTP keep-alive connections (channels 16, presence 1, api 1)\n"
        "  --depth D               requests pipelined per HTTP connection in closed loop (channels 16, api 1)\n"
        "  --queue-cap Q           channels open loop: most requests queued per HTTP connection (64)\n"
        "  --per-conn K            presence: channels per connection (10)\n"
        "  --rooms R               presence: presence channels (1000)\n"
        "  --inflight K            presence: leave+join operations in flight (64)\n"
        "  --leave-frac F          presence: share of members that leave for good before the check (0.1)\n"
        "  --duration D            presence/api/broadcast: measured seconds (presence 10, api 5, broadcast 8; broadcast 0 = no open loop)\n"
        "  --warmup S              api/broadcast: unmeasured seconds first (1)\n"
        "  --subscribers N         api: subscribers of the channel published to (0 or 1); broadcast: N (1000)\n"
        "  --channel NAME          broadcast: the channel (broadcast-bench)\n"
        "  --rate R                broadcast: open-loop events/s (50)\n"
        "  --window W              broadcast: events in flight in the closed loop (16)\n"
        "  --drain S               broadcast: most seconds to wait for the last deliveries after a phase (5)\n"
        "  --cpu-pid PID           report this process's CPU seconds per measured window (repeatable, at most 8)\n"
        "  --payload B             bytes of padding in each event's data (64)\n"
        "  --src-first X           WebSocket source addresses start at 127.0.0.X (2)\n"
        "  --per-src N             WebSocket connections per source address (5000)\n"
        "  --deadline S            hard limit on the whole run (120)\n"
        "  --watch-pid PID         report that process's CPU use; stop if it dies\n"
        "  --server-cpu N          also report how busy CPU N was (all processes, irq and softirq)\n"
        "  --client-cpu N          the same for the CPU this load generator runs on\n"
        "  --quiet                 no progress lines\n");
}

static void parse_args(int argc, char **argv) {
    static const struct option lo[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"app-id", 1, 0, 'A'}, {"key", 1, 0, 'K'}, {"secret", 1, 0, 'S'},
        {"connections", 1, 0, 'c'}, {"group-size", 1, 0, 'g'}, {"group-frac", 1, 0, 'G'}, {"rates", 1, 0, 'r'},
        {"step", 1, 0, 's'}, {"closed", 1, 0, 'C'}, {"http-conns", 1, 0, 'H'}, {"depth", 1, 0, 'd'},
        {"queue-cap", 1, 0, 'Q'}, {"per-conn", 1, 0, 'k'}, {"rooms", 1, 0, 'R'}, {"inflight", 1, 0, 'i'},
        {"leave-frac", 1, 0, 'L'}, {"duration", 1, 0, 'D'}, {"warmup", 1, 0, 'W'}, {"subscribers", 1, 0, 'b'},
        {"payload", 1, 0, 'P'}, {"src-first", 1, 0, 'f'}, {"per-src", 1, 0, 'e'}, {"deadline", 1, 0, 'x'},
        {"watch-pid", 1, 0, 'w'}, {"server-cpu", 1, 0, 'u'}, {"client-cpu", 1, 0, 'U'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, '?'},
        {"ports", 1, 0, 'o'}, {"channel", 1, 0, 'n'}, {"rate", 1, 0, 'a'}, {"window", 1, 0, 'y'}, {"drain", 1, 0, 'z'},
        {"cpu-pid", 1, 0, 'j'}, {0, 0, 0, 0},
    };
    static const char *const modes[] = {"channels", "presence", "api", "broadcast"}; /* in enum mode's order */
    opt.mode = (enum mode)parse_mode(argc, argv, modes, 4, usage);
    int ch, closed_set = 0, subs_set = 0, duration_set = 0;
    const char *ports = NULL;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = (int)parse_num("--port", optarg, 1, 65535); break;
        case 'A': opt.app_id = optarg; break;
        case 'K': opt.key = optarg; break;
        case 'S': opt.secret = optarg; break;
        case 'c': opt.connections = (long)parse_num("--connections", optarg, 1, 1000000); break;
        case 'g': opt.group_size = (long)parse_num("--group-size", optarg, 1, 100000); break;
        case 'G': opt.group_frac = parse_num("--group-frac", optarg, 0, 1); break;
        case 'r': opt.rates = optarg; break;
        case 's': opt.step = parse_num("--step", optarg, 0.1, 600); break;
        case 'C': opt.closed_secs = parse_num("--closed", optarg, 0, 600); closed_set = 1; break;
        case 'H': opt.http_conns = (long)parse_num("--http-conns", optarg, 1, 1000); break;
        case 'd': opt.depth = (long)parse_num("--depth", optarg, 1, 1024); break;
        case 'Q': opt.queue_cap = (long)parse_num("--queue-cap", optarg, 1, 4096); break;
        case 'k': opt.per_conn = (long)parse_num("--per-conn", optarg, 1, 32); break;
        case 'R': opt.rooms = (long)parse_num("--rooms", optarg, 1, 1000000); break;
        case 'i': opt.inflight = (long)parse_num("--inflight", optarg, 1, 100000); break;
        case 'L': opt.leave_frac = parse_num("--leave-frac", optarg, 0, 1); break;
        case 'D': opt.duration = parse_num("--duration", optarg, opt.mode == MODE_BROADCAST ? 0 : 0.1, 3600); duration_set = 1; break;
        case 'W': opt.warmup = parse_num("--warmup", optarg, 0, 600); break;
        case 'b': opt.subscribers = (long)parse_num("--subscribers", optarg, 0, 1000000); subs_set = 1; break;
        case 'P': opt.payload = (long)parse_num("--payload", optarg, 0, 4000); break;
        case 'f': opt.src_first = (int)parse_num("--src-first", optarg, 2, 254); break;
        case 'e': opt.per_src = (long)parse_num("--per-src", optarg, 1, 28000); break;
        case 'x': opt.deadline = parse_num("--deadline", optarg, 1, 3600); break;
        case 'w': opt.watch_pid = (long)parse_num("--watch-pid", optarg, 1, 1 << 30); break;
        case 'u': opt.server_cpu = (int)parse_num("--server-cpu", optarg, 0, 4095); break;
        case 'U': opt.client_cpu = (int)parse_num("--client-cpu", optarg, 0, 4095); break;
        case 'q': opt.quiet = 1; break;
        case 'o': ports = optarg; break;
        case 'n': opt.channel = optarg; break;
        case 'a': opt.rate = parse_num("--rate", optarg, 0, 1000000); break;
        case 'y': opt.window = (long)parse_num("--window", optarg, 1, 4096); break;
        case 'z': opt.drain = parse_num("--drain", optarg, 0, 600); break;
        case 'j':
            if (opt.ncpu_pids == MAX_CPU_PIDS) { fprintf(stderr, "pusher_bench: at most %d --cpu-pid\n", MAX_CPU_PIDS); exit(2); }
            opt.cpu_pids[opt.ncpu_pids++] = (long)parse_num("--cpu-pid", optarg, 1, 1 << 30);
            break;
        default: usage(stderr); exit(2);
        }
    }
    no_more_args(argc, argv);
    if (ports) {
        if (opt.port) { fprintf(stderr, "pusher_bench: --port and --ports together\n"); exit(2); }
        char buf[256], *save = NULL;
        snprintf(buf, sizeof buf, "%s", ports);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (opt.nports == MAX_NODES) { fprintf(stderr, "pusher_bench: at most %d --ports\n", MAX_NODES); exit(2); }
            opt.ports[opt.nports++] = (int)parse_num("--ports", t, 1, 65535);
        }
        if (!opt.nports) { fprintf(stderr, "pusher_bench: --ports is empty\n"); exit(2); }
        opt.port = opt.ports[0];
    } else {
        opt.nports = 1;
        opt.ports[0] = opt.port;
    }
    if (!opt.port) { fprintf(stderr, "pusher_bench: --port is required\n"); exit(2); }
    set_loopback_dst(opt.host, opt.port);
    for (int k = 0; k < opt.nports; k++) {
        node_addr[k] = dst;
        node_addr[k].sin_port = htons((uint16_t)opt.ports[k]);
    }
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
        if (opt.subscribers > 1) { fprintf(stderr, "pusher_bench: api: --subscribers is 0 or 1\n"); exit(2); }
        if (!opt.http_conns) opt.http_conns = 1;
        if (!opt.depth) opt.depth = 1;
        if (!opt.duration) opt.duration = 5;
        nws = opt.subscribers;
        opt.connections = nws;
        break;
    case MODE_BROADCAST:
        if (!subs_set) opt.subscribers = 1000;
        if (!closed_set) opt.closed_secs = 0;
        if (!duration_set) opt.duration = 8;
        opt.http_conns = 1; /* events are numbered in publish order on one keep-alive connection */
        if (!opt.depth) opt.depth = 1;
        nws = opt.subscribers;
        opt.connections = nws;
        break;
    }
    if (opt.src_first + (nws ? (nws - 1) / opt.per_src : 0) > 254) { fprintf(stderr, "pusher_bench: source addresses past 127.0.0.254\n"); exit(2); }
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    rlim_t nofile = raise_nofile_limit();
    nconns = nws + opt.http_conns;
    http_first = nws;
    if ((rlim_t)nconns + 16 > nofile) {
        fprintf(stderr, "pusher_bench: %ld connections need more than the open-file limit %llu\n", nconns, (unsigned long long)nofile);
        return 2;
    }
    install_signals();

    char path[256];
    snprintf(path, sizeof path, PUSHER_WS_PATH, opt.key);
    for (int k = 0; k < opt.nports; k++) {
        upgrade_len[k] = ws_upgrade_request(upgrade_req[k], sizeof upgrade_req[k], path, opt.host, opt.ports[k]);
        if (upgrade_len[k] >= sizeof upgrade_req[k]) { fprintf(stderr, "pusher_bench: --key too long\n"); return 2; }
    }
    for (long i = 0; i < opt.payload; i++) pad[i] = (char)('a' + i % 26);
    pad[opt.payload] = 0;
    hmac_init(opt.secret);
    rng_seed();

    conns = calloc((size_t)nconns, sizeof *conns);
    dirty_list = calloc((size_t)nconns, sizeof *dirty_list);
    if (!conns || !dirty_list) die("calloc");
    long rc_need = opt.queue_cap > opt.depth ? opt.queue_cap : opt.depth;
    if (opt.mode == MODE_BROADCAST && opt.window > rc_need) rc_need = opt.window;
    uint32_t ringcap = (uint32_t)rc_need + 4;
    for (long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->fd = -1;
        c->kind = i < nws ? K_WS : K_HTTP;
        c->node = (uint8_t)(i < nws ? i % opt.nports : 0);
        grow(&c->in, &c->incap, c->kind == K_WS ? 2048 : 16384);
        grow(&c->out, &c->outcap, c->kind == K_WS ? 1024 : 16384);
        if (c->kind == K_HTTP) {
            c->ringcap = ringcap;
            c->ring = calloc(ringcap, sizeof *c->ring);
        }
    }
    ep_open();
    deadline_start(opt.deadline);
    now_wall = (long)time(NULL);

    int rc;
    switch (opt.mode) {
    case MODE_CHANNELS: rc = run_channels(); break;
    case MODE_PRESENCE: rc = run_presence(); break;
    case MODE_BROADCAST: rc = run_broadcast(); break;
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
