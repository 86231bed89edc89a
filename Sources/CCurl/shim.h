// libcurl for Swift. Swift cannot call C variadic functions, so each
// curl_easy_setopt / curl_easy_getinfo / curl_multi_setopt argument kind gets a
// typed wrapper; the compiler then checks the argument type that curl's varargs cannot.
#ifndef BRIDGE_CCURL_SHIM_H
#define BRIDGE_CCURL_SHIM_H
#include <curl/curl.h>

static inline CURLcode bridge_curl_easy_setopt_long(CURL *easy, CURLoption option, long value) {
    return curl_easy_setopt(easy, option, value);
}

static inline CURLcode bridge_curl_easy_setopt_ptr(CURL *easy, CURLoption option, const void *value) {
    return curl_easy_setopt(easy, option, value);
}

static inline CURLcode bridge_curl_easy_setopt_off_t(CURL *easy, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(easy, option, value);
}

// CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION.
static inline CURLcode bridge_curl_easy_setopt_write_callback(CURL *easy, CURLoption option, curl_write_callback callback) {
    return curl_easy_setopt(easy, option, callback);
}

static inline CURLcode bridge_curl_easy_getinfo_long(CURL *easy, CURLINFO info, long *value) {
    return curl_easy_getinfo(easy, info, value);
}

static inline CURLcode bridge_curl_easy_getinfo_string(CURL *easy, CURLINFO info, char **value) {
    return curl_easy_getinfo(easy, info, value);
}

static inline CURLMcode bridge_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

static inline CURLMcode bridge_curl_multi_setopt_ptr(CURLM *multi, CURLMoption option, const void *value) {
    return curl_multi_setopt(multi, option, value);
}

// CURLMOPT_SOCKETFUNCTION.
static inline CURLMcode bridge_curl_multi_setopt_socket_callback(CURLM *multi, CURLMoption option, curl_socket_callback callback) {
    return curl_multi_setopt(multi, option, callback);
}

// CURLMOPT_TIMERFUNCTION.
static inline CURLMcode bridge_curl_multi_setopt_timer_callback(CURLM *multi, CURLMoption option, curl_multi_timer_callback callback) {
    return curl_multi_setopt(multi, option, callback);
}

#endif
