/*
 * tls.h: the client side of TLS for the bench clients (OpenSSL's libssl; link -lssl -lcrypto).
 * Non-blocking SSL objects on the sockets of net.h: a handshake that is stepped from the
 * event loop, and reads and writes with the same contract as sock_read and sock_flush, so
 * that a client keeps one code path and picks the TLS or the plain call per connection.
 *
 * Every handshake is a full one: the client keeps no session cache and never offers a
 * session, so a server's tickets are received and dropped. Header only; define PROG first.
 */
#ifndef BENCH_TLS_H
#define BENCH_TLS_H

#include "net.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static SSL_CTX *tls_ctx;

/* Application-data records received by the connections that count them, and their bytes
 * on the wire (5-byte header included): how a server packs what it sends. */
static uint64_t tls_records_in, tls_record_bytes_in;

/* OpenSSL's message callback sees every record header read (RFC 8446 §5.1: type, version,
 * length); in TLS 1.3 every protected record has the outer type application_data (23). */
static void tls_count_record(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg) {
    (void)version, (void)ssl, (void)arg;
    const uint8_t *h = buf;
    if (write_p || content_type != SSL3_RT_HEADER || len < 5 || h[0] != SSL3_RT_APPLICATION_DATA) return;
    tls_records_in++;
    tls_record_bytes_in += 5u + ((unsigned)h[3] << 8 | h[4]);
}

/* The client context: TLS 1.2 and 1.3 (only 1.3 with tls13_only), ALPN http/1.1 as a
 * browser would also offer, and, with a CA file, the server's chain checked against it
 * and its certificate against the IP address `host`; without one, no verification. */
static inline void tls_setup(const char *ca_file, const char *host, int tls13_only) {
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx) { fprintf(stderr, PROG ": SSL_CTX_new failed\n"); exit(1); }
    SSL_CTX_set_min_proto_version(tls_ctx, tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
    /* Partial writes and a moving buffer: the clients keep unsent bytes in their own
     * buffers and shift them; idle connections hand their record buffers back. */
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    /* Read ahead: one read() takes in as many records as the socket holds, instead of
     * a header and then a body per record; tls_read therefore reads until OpenSSL finds
     * the socket empty, since what it buffered would raise no epoll event. */
    SSL_CTX_set_read_ahead(tls_ctx, 1);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(tls_ctx, alpn, sizeof alpn - 1);
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(tls_ctx, ca_file, NULL) != 1) {
            fprintf(stderr, PROG ": cannot load the CA file %s\n", ca_file);
            exit(2);
        }
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(tls_ctx), host);
    } else {
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    }
}

/* A client SSL object on the connected socket fd; count_records makes it add to
 * tls_records_in. NULL if OpenSSL has no memory. */
static inline SSL *tls_attach(int fd, int count_records) {
    SSL *s = SSL_new(tls_ctx);
    if (!s) return NULL;
    SSL_set_fd(s, fd);
    SSL_set_connect_state(s);
    if (count_records) SSL_set_msg_callback(s, tls_count_record);
    return s;
}

/* Why an SSL call failed, for a message. */
static inline const char *tls_failure(int err) {
    static char buf[160];
    unsigned long e = ERR_peek_last_error();
    if (e) {
        ERR_error_string_n(e, buf, sizeof buf);
        ERR_clear_error();
        return buf;
    }
    if (err == SSL_ERROR_ZERO_RETURN) return "server sent close_notify";
    if (err == SSL_ERROR_SYSCALL) return errno ? strerror(errno) : "server closed the connection";
    snprintf(buf, sizeof buf, "SSL error %d", err);
    return buf;
}

/* One step of the handshake: 1 when it is complete, 0 while it waits for the socket
 * (*want_write: to become writable, else readable), -1 with *why. */
static inline int tls_handshake(SSL *s, int *want_write, const char **why) {
    ERR_clear_error();
    int r = SSL_do_handshake(s);
    if (r == 1) return 1;
    int err = SSL_get_error(s, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        *want_write = err == SSL_ERROR_WANT_WRITE;
        return 0;
    }
    *why = tls_failure(err);
    return -1;
}

/* Reads up to n bytes as sock_read does: the count, 0 if there is nothing now, or -1 with
 * *why. It goes on until OpenSSL finds the socket empty (*drained = 1) or buf is full
 * (*drained = 0: call again, data may wait inside OpenSSL where epoll does not see it). */
static inline ssize_t tls_read(SSL *s, uint8_t *buf, size_t n, int *drained, const char **why) {
    size_t got = 0;
    *drained = 0;
    while (got < n) {
        size_t r;
        ERR_clear_error();
        if (SSL_read_ex(s, buf + got, n - got, &r)) { got += r; continue; }
        int err = SSL_get_error(s, 0);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) { *drained = 1; break; }
        if (got) break; /* hand over what came first; the failure repeats on the next call */
        *why = tls_failure(err);
        return -1;
    }
    return (ssize_t)got;
}

/* Why the last tls_write failed with EIO. */
static const char *tls_write_failure = "";

/* write(2)'s contract over TLS: the bytes taken (a partial write ends on a record), or -1
 * with errno EAGAIN when the socket is full, else EIO (and tls_write_failure says why). */
static inline ssize_t tls_write(SSL *s, const void *p, size_t n) {
    size_t w;
    ERR_clear_error();
    if (SSL_write_ex(s, p, n, &w)) return (ssize_t)w;
    int err = SSL_get_error(s, 0);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
        errno = EAGAIN;
        return -1;
    }
    tls_write_failure = tls_failure(err);
    errno = EIO;
    return -1;
}

/* sock_flush over TLS: 1 when buf[*off, *len) is all written (then emptied), 0 when the
 * rest must wait for the socket, -1 with *why. */
static inline int tls_flush(SSL *s, const uint8_t *buf, uint32_t *off, uint32_t *len, const char **why) {
    while (*off < *len) {
        ssize_t n = tls_write(s, buf + *off, *len - *off);
        if (n > 0) { *off += (uint32_t)n; continue; }
        if (errno == EAGAIN) return 0;
        *why = tls_write_failure;
        return -1;
    }
    *off = *len = 0;
    return 1;
}

#endif
