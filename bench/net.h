/*
 * net.h: loopback client sockets, epoll, non-blocking reads and writes, the WebSocket
 * client side (upgrade request and response, masked frames out, server frames in) and
 * HTTP/1.1 response heads, shared by loadgen, fanout and pusher_bench. Header only;
 * define PROG first (see common.h).
 */
#ifndef BENCH_NET_H
#define BENCH_NET_H

#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- epoll ------------------------------------------------------------------- */

static int epfd = -1;

static inline void ep_open(void) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
}

static inline void ep_ctl(int op, int fd, uint32_t events, uint64_t tag) {
    struct epoll_event ev = {.events = events, .data.u64 = tag};
    if (epoll_ctl(epfd, op, fd, &ev) < 0) die("epoll_ctl");
}

/* epoll_wait, then now_ns refreshed: the number of events, 0 if a signal came first. */
static inline int ep_wait(struct epoll_event *evs, int max, int timeout_ms) {
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    now_ns = clock_ns();
    if (n < 0) {
        if (errno == EINTR) return 0;
        die("epoll_wait");
    }
    return n;
}

/* The tag of a reusable connection slot: its index and, above, its generation, so that an
 * event left over for a slot that was closed (and perhaps reused) is told apart. */
static inline uint64_t slot_tag(uint32_t gen, uint32_t idx) { return ((uint64_t)gen << 32) | idx; }
static inline uint32_t tag_slot(uint64_t tag) { return (uint32_t)tag; }
static inline uint32_t tag_gen(uint64_t tag) { return (uint32_t)(tag >> 32); }

/* ---- sockets --------------------------------------------------------------- */

static struct sockaddr_in dst; /* the server */

/* Sets dst to host:port; the host must be a 127.x.x.x address, or exit 2. */
static inline void set_loopback_dst(const char *host, int port) {
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1 || (ntohl(dst.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, PROG ": --host must be a 127.x.x.x address, got \"%s\"\n", host);
        exit(2);
    }
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
}

/* A non-blocking TCP socket with TCP_NODELAY and SO_LINGER 0 (close sends an RST: no
 * TIME_WAIT pile-up between runs), bound to the source address 127.0.0.SRC unless SRC is
 * 0, registered with epoll for `events` under `tag`, its connect to `to` under way. With a
 * source address the port is picked at connect() by the whole 4-tuple, so one source
 * address carries far more than one ephemeral range's worth of connections. Returns the
 * socket, or -1 with errno set and *step naming the call that failed (nothing left open). */
static inline int tcp_start_to(const struct sockaddr_in *to, int src, uint32_t events, uint64_t tag, const char **step) {
    *step = "socket";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int ok = 1;
    if (src) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl((127u << 24) | (uint32_t)src)};
        *step = "bind";
        ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    }
    if (ok) {
        ep_ctl(EPOLL_CTL_ADD, fd, events, tag);
        *step = "connect";
        ok = connect(fd, (const struct sockaddr *)to, sizeof *to) == 0 || errno == EINPROGRESS;
    }
    if (ok) return fd;
    int e = errno;
    close(fd); /* which also takes it out of the epoll set */
    errno = e;
    return -1;
}

/* tcp_start_to the server, dst. */
static inline int tcp_start(int src, uint32_t events, uint64_t tag, const char **step) {
    return tcp_start_to(&dst, src, events, tag, step);
}

/* A socket's pending error (SO_ERROR): after EPOLLOUT on a connecting socket, 0 if it connected. */
static inline int sock_error(int fd) {
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
    return err;
}

/* Why a connect failed, for a message, once epoll reported an error or a hangup. */
static inline const char *connect_failure(int fd) {
    int err = sock_error(fd);
    return err ? strerror(err) : "connect failed";
}

/* Reads up to n bytes: the count, 0 if there is nothing now (EINTR is retried), or -1 with
 * *why saying how the connection ended. */
static inline ssize_t sock_read(int fd, void *buf, size_t n, const char **why) {
    for (;;) {
        ssize_t r = read(fd, buf, n);
        if (r > 0) return r;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return 0;
        *why = r == 0 ? "server closed the connection" : strerror(errno);
        return -1;
    }
}

/* Drops the first n bytes of buf[0..*len): input that was consumed, or output that was sent. */
static inline void buf_consume(uint8_t *buf, uint32_t *len, uint32_t n) {
    if (!n) return;
    memmove(buf, buf + n, *len - n);
    *len -= n;
}

/* Writes buf[*off, *len) as far as the socket takes it, advancing *off: 1 when all is
 * written (the buffer then emptied: *off = *len = 0), 0 when the rest must wait for
 * EPOLLOUT, -1 with *why on an error. */
static inline int sock_flush(int fd, const uint8_t *buf, uint32_t *off, uint32_t *len, const char **why) {
    while (*off < *len) {
        ssize_t n = write(fd, buf + *off, *len - *off);
        if (n > 0) { *off += (uint32_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        *why = n < 0 ? strerror(errno) : "write returned 0";
        return -1;
    }
    *off = *len = 0;
    return 1;
}

/* ---- WebSocket (RFC 6455), client side ------------------------------------------ */

/* The key and accept value of RFC 6455 §1.3: one fixed key keeps the client free of
 * SHA-1 while the server still does the full computation. */
static const char ws_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
static const char ws_accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/* The upgrade request for `path`: its length, which is >= cap if it did not fit. */
static inline size_t ws_upgrade_request(char *buf, size_t cap, const char *path, const char *host, int port) {
    int n = snprintf(buf, cap,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host, port, ws_key);
    return n < 0 ? cap : (size_t)n;
}

/* The server's answer in p[0..n): the length of a complete "101" head whose
 * Sec-WebSocket-Accept is right, 0 if the head is not complete yet and n <= max_head,
 * -1 for anything else. */
static inline long ws_upgrade_response(const uint8_t *p, size_t n, size_t max_head) {
    const uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) return n > max_head ? -1 : 0;
    size_t headlen = (size_t)(end - p) + 4;
    if (n < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) return -1;
    const char *line = memchr(p, '\n', headlen);
    while (line && (const uint8_t *)line < end) {
        line++;
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - (const uint8_t *)line));
        if (!eol) break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && colon - line == 20 && !strncasecmp(line, "sec-websocket-accept", 20)) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            size_t al = sizeof ws_accept - 1;
            return (size_t)(ve - v) == al && !memcmp(v, ws_accept, al) ? (long)headlen : -1;
        }
        line = memchr(line, '\n', (size_t)(end + 2 - (const uint8_t *)line));
    }
    return -1;
}

/* Why an upgrade failed, for a message: the response's first 40 bytes on one line. */
static inline const char *ws_upgrade_error(char buf[64], const uint8_t *p, size_t n) {
    size_t l = n < 40 ? n : 40;
    memcpy(buf, p, l);
    buf[l] = 0;
    for (size_t i = 0; i < l; i++) if (buf[i] == '\r' || buf[i] == '\n') buf[i] = ' ';
    return buf[0] ? buf : "bad upgrade response";
}

/* The size of a client frame with a len-byte payload (at most len + 14). */
static inline size_t ws_frame_size(size_t len) { return len + (len < 126 ? 2 : len < 65536 ? 4 : 10) + 4; }

/* Writes a client frame at d: FIN, opcode, a fresh masking key and the masked payload
 * (RFC 6455 §5.2, §5.3). d needs ws_frame_size(len) bytes; returns that size. */
static inline size_t ws_encode_frame(uint8_t *d, int opcode, const void *payload, size_t len) {
    uint8_t *start = d;
    *d++ = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        *d++ = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        *d++ = 0x80 | 126;
        *d++ = (uint8_t)(len >> 8);
        *d++ = (uint8_t)len;
    } else {
        *d++ = 0x80 | 127;
        for (int i = 7; i >= 0; i--) *d++ = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t key = rng32();
    uint8_t m[4];
    memcpy(m, &key, 4);
    memcpy(d, m, 4);
    d += 4;
    const uint8_t *s = payload;
    for (size_t i = 0; i < len; i++) d[i] = s[i] ^ m[i & 3];
    return (size_t)(d - start) + len;
}

/* A server frame: header length, payload length, and the payload once complete. */
struct ws_frame {
    int fin, op;
    size_t head;
    uint64_t len;
    const uint8_t *payload;
};

/* Decodes the frame at p[0..n): 1 when it is complete, 0 when more bytes are needed (f->head
 * is 0 while the header itself is incomplete; after that, head and len are set), -1 if it is
 * masked, which a server's frame must not be (RFC 6455 §5.1). */
static inline int ws_decode_frame(const uint8_t *p, size_t n, struct ws_frame *f) {
    f->head = 0;
    if (n < 2) return 0;
    if (p[1] & 0x80) return -1;
    f->fin = p[0] & 0x80;
    f->op = p[0] & 0x0f;
    uint64_t len = p[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
        if (n < 4) return 0;
        len = ((uint64_t)p[2] << 8) | p[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10) return 0;
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
        h = 10;
    }
    f->head = h;
    f->len = len;
    f->payload = p + h;
    return n - h >= len;
}

/* ---- HTTP/1.1 responses -------------------------------------------------------- */

struct http_head {
    int status;
    long content_length; /* -1 if absent */
    int chunked, close;  /* Transfer-Encoding: chunked, Connection: close */
};

/* Parses the response head at p[0..n): its length with *h filled, 0 if it is not complete
 * yet, -1 if it is not an HTTP/1.x response. */
static inline long http_response_head(const uint8_t *p, size_t n, struct http_head *h) {
    const uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t headlen = (size_t)(end - p) + 4;
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0) return -1;
    h->status = atoi((const char *)p + 9);
    h->content_length = -1;
    h->chunked = h->close = 0;
    const char *line = memchr(p, '\n', headlen);
    while (line && (const uint8_t *)line < end) {
        line++;
        const char *eol = memchr(line, '\r', (size_t)(end + 2 - (const uint8_t *)line));
        if (!eol) break;
        size_t ll = (size_t)(eol - line);
        if (ll > 15 && !strncasecmp(line, "content-length:", 15)) h->content_length = strtol(line + 15, NULL, 10);
        else if (ll > 18 && !strncasecmp(line, "transfer-encoding:", 18) && memmem(line, ll, "chunked", 7)) h->chunked = 1;
        else if (ll > 11 && !strncasecmp(line, "connection:", 11) && memmem(line, ll, "close", 5)) h->close = 1;
        line = memchr(line, '\n', (size_t)(end + 2 - (const uint8_t *)line));
    }
    return (long)headlen;
}

#endif
