// OpenSSL's libcrypto: digests, HMAC, base64, constant-time comparison, CSPRNG.
#ifndef BRIDGE_COPENSSL_SHIM_H
#define BRIDGE_COPENSSL_SHIM_H
#include <openssl/sha.h>
#include <openssl/md5.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#endif
