#ifndef MUSTER_CRESOLV_SHIM_H
#define MUSTER_CRESOLV_SHIM_H
/* glibc's stub resolver (libresolv, shipped with libc6-dev), for `muster mail doctor`.
   struct __res_state is a union-laden struct that Swift cannot fill in comfortably, so
   this one fixed-signature function does the whole query: a resolver state of its own
   (thread-safe: res_ninit, never the global _res), the time-out and try count set, the
   search list off, optionally one IPv4 server in place of /etc/resolv.conf's, and the
   raw answer (header, question, records) copied into `answer` for MusterKit to parse.
   UDP first; glibc retries over TCP when the answer comes back truncated. */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Returns the answer's length, or -1 with *error set: ETIMEDOUT (no answer in time),
   EPROTO (the servers answered, but only with SERVFAIL, NOTIMP or REFUSED: glibc drops
   such answers and reports ETIMEDOUT too, so a failure that comes back before the first
   try's time-out ran out is told apart by the clock), ECONNREFUSED (the server refused
   the connection), EINVAL (a bad server address or name), ENOMEM, or whatever res_nsend
   left in errno. */
static inline int muster_dns_query(const char *server_ipv4, int port, int timeout_seconds, int attempts,
                                   const char *name, int type, unsigned char *answer, int answer_size, int *error) {
    *error = 0;
    struct __res_state *state = calloc(1, sizeof *state);
    if (state == NULL) { *error = ENOMEM; return -1; }
    if (res_ninit(state) != 0) { *error = errno != 0 ? errno : EIO; free(state); return -1; }
    state->retrans = timeout_seconds > 0 ? timeout_seconds : 1;
    state->retry = attempts > 0 ? attempts : 1;
    state->options &= ~(RES_DNSRCH | RES_DEFNAMES);
    if (server_ipv4 != NULL) {
        struct in_addr address;
        if (inet_pton(AF_INET, server_ipv4, &address) != 1 || port <= 0 || port > 65535) {
            res_nclose(state); free(state); *error = EINVAL; return -1;
        }
        state->nscount = 1;
        memset(&state->nsaddr_list[0], 0, sizeof state->nsaddr_list[0]);
        state->nsaddr_list[0].sin_family = AF_INET;
        state->nsaddr_list[0].sin_addr = address;
        state->nsaddr_list[0].sin_port = htons((unsigned short)port);
    }
    unsigned char query[NS_PACKETSZ];
    int length = res_nmkquery(state, ns_o_query, name, ns_c_in, type, NULL, 0, NULL, query, sizeof query);
    if (length < 0) { res_nclose(state); free(state); *error = EINVAL; return -1; }
    struct timespec started, ended;
    clock_gettime(CLOCK_MONOTONIC, &started);
    errno = 0;
    int received = res_nsend(state, query, length, answer, answer_size);
    if (received < 0) {
        *error = errno != 0 ? errno : ETIMEDOUT;
        clock_gettime(CLOCK_MONOTONIC, &ended);
        double elapsed = (double)(ended.tv_sec - started.tv_sec) + (double)(ended.tv_nsec - started.tv_nsec) / 1e9;
        if (*error == ETIMEDOUT && elapsed < (double)state->retrans * 0.9) *error = EPROTO;
    }
    res_nclose(state);
    free(state);
    return received;
}

#endif
