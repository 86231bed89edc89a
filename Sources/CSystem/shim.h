// Linux APIs that Glibc's Swift module does not export: epoll, eventfd, timerfd, accept4.
// No _GNU_SOURCE here: it would change shared structs (fd_set) and clash with the Glibc module.
#ifndef BRIDGE_CSYSTEM_SHIM_H
#define BRIDGE_CSYSTEM_SHIM_H
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

// accept4 is declared by <sys/socket.h> only under _GNU_SOURCE; the address is never needed.
extern int accept4(int fd, void *addr, void *addrlen, int flags);
static inline int bridge_accept4(int fd, int flags) {
    return accept4(fd, 0, 0, flags);
}

// epoll_event is packed on x86_64; build and read it in C.
static inline struct epoll_event bridge_epoll_event(uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return ev;
}
static inline uint32_t bridge_epoll_event_events(const struct epoll_event *ev) { return ev->events; }
static inline uint64_t bridge_epoll_event_data(const struct epoll_event *ev) { return ev->data.u64; }
#endif
