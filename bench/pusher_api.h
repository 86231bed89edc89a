/*
 * pusher_api.h: the Pusher protocol pieces that fanout and pusher_bench share: the
 * WebSocket path, the pong message, and signed HTTP API requests (HMAC-SHA256 auth_signature,
 * MD5 body_md5). Needs libcrypto: link with -lcrypto. Header only; define PROG first (see common.h).
 */
#ifndef BENCH_PUSHER_API_H
#define BENCH_PUSHER_API_H

#include "common.h"

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED /* the plain SHA256/MD5 calls: no provider lookups per call */
#endif
#include <openssl/md5.h>
#include <openssl/sha.h>

/* The WebSocket path of app KEY, as a printf format. */
#define PUSHER_WS_PATH "/app/%s?protocol=7&client=bench&version=1"

static const char pusher_pong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";

/* HMAC-SHA256 with the app secret: the inner and outer hashes keyed once, copied per message. */
static SHA256_CTX hmac_inner, hmac_outer;

static inline void hmac_init(const char *secret) {
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

/* Lower-case hex of p[0..n) into out[2n + 1]. */
static inline void to_hex(const uint8_t *p, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) { out[2 * i] = digits[p[i] >> 4]; out[2 * i + 1] = digits[p[i] & 15]; }
    out[2 * n] = 0;
}

/* hex(HMAC-SHA256(secret, msg)) into out[65]. */
static inline void hmac_hex(const void *msg, size_t n, char *out) {
    uint8_t inner[32], mac[32];
    SHA256_CTX c = hmac_inner;
    SHA256_Update(&c, msg, n);
    SHA256_Final(inner, &c);
    c = hmac_outer;
    SHA256_Update(&c, inner, 32);
    SHA256_Final(mac, &c);
    to_hex(mac, 32, out);
}

/* hex(MD5(p)) into out[33]. */
static inline void md5_hex(const void *p, size_t n, char *out) {
    uint8_t d[16];
    MD5(p, n, d);
    to_hex(d, 16, out);
}

/* The auth_signature of a request: hex HMAC of "METHOD\nPATH\nQUERY" (the query's
 * parameters sorted, auth_signature left out), into sig[65]. */
static inline void pusher_signature(char *sig, const char *method, const char *path, const char *query) {
    char sts[1024];
    int sl = snprintf(sts, sizeof sts, "%s\n%s\n%s", method, path, query);
    hmac_hex(sts, sl < (int)sizeof sts ? (size_t)sl : sizeof sts - 1, sig);
}

/* The head of a signed POST /apps/APP_ID/events whose body is body[0..bl), into out[cap]:
 * its length, as snprintf counts it (>= cap: it did not fit). */
static inline int pusher_events_head(char *out, size_t cap, const char *app_id, const char *key, long long timestamp,
                                     const char *body, size_t bl, const char *host, int port) {
    char md5[33], query[256], path[128], sig[65];
    md5_hex(body, bl, md5);
    snprintf(query, sizeof query, "auth_key=%s&auth_timestamp=%lld&auth_version=1.0&body_md5=%s", key, timestamp, md5);
    snprintf(path, sizeof path, "/apps/%s/events", app_id);
    pusher_signature(sig, "POST", path, query);
    return snprintf(out, cap,
                    "POST %s?%s&auth_signature=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                    path, query, sig, host, port, bl);
}

#endif
