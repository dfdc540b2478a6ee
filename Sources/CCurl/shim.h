#ifndef MUSTER_CCURL_SHIM_H
#define MUSTER_CCURL_SHIM_H
#include <curl/curl.h>
#include <sys/types.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call.
   These typed, fixed-signature wrappers are the only way MusterKit reaches them. */

typedef size_t (*muster_curl_data_callback)(char *buffer, size_t size, size_t nitems, void *userdata);

static inline CURLcode muster_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode muster_curl_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode muster_curl_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode muster_curl_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode muster_curl_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/* For CURLOPT_READFUNCTION (read callback). */
static inline CURLcode muster_curl_setopt_read_callback(CURL *handle, CURLoption option, muster_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

/* For CURLOPT_HEADERFUNCTION / CURLOPT_WRITEFUNCTION (SMTP server replies arrive as headers). */
static inline CURLcode muster_curl_setopt_write_callback(CURL *handle, CURLoption option, muster_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

typedef int (*muster_curl_debug_callback)(CURL *handle, curl_infotype type, char *data, size_t size, void *userdata);

static inline CURLcode muster_curl_setopt_debug_callback(CURL *handle, muster_curl_debug_callback value) {
    return curl_easy_setopt(handle, CURLOPT_DEBUGFUNCTION, value);
}

static inline CURLcode muster_curl_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode muster_curl_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode muster_curl_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode muster_curl_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

/* CURLINFO_ACTIVESOCKET writes a curl_socket_t, not a long. */
static inline CURLcode muster_curl_getinfo_socket(CURL *handle, curl_socket_t *value) {
    return curl_easy_getinfo(handle, CURLINFO_ACTIVESOCKET, value);
}

/* curl_multi_setopt is variadic too. */
static inline CURLMcode muster_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

#endif
