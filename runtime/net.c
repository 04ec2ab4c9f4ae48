#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util.h"

int net_parse_addr(const char *s, const char *default_host, char *host, int *port, char *err)
{
    const char *colon = strrchr(s, ':');
    const char *port_s = colon ? colon + 1 : s;
    size_t host_len = colon ? (size_t)(colon - s) : 0;
    if (!colon && !default_host)
        return seterr(err, "address '%s': expected HOST:PORT, e.g. 127.0.0.1:9000", s);
    if (colon && s[0] == '[' && host_len >= 2 && s[host_len - 1] == ']') { /* [v6]:port */
        s++;
        host_len -= 2;
    }
    if (colon && host_len == 0)
        return seterr(err, "address '%s': missing host before ':'", s);
    if (host_len >= NET_HOST_MAX) return seterr(err, "address '%s': host name too long", s);
    char *end;
    errno = 0;
    long p = strtol(port_s, &end, 10);
    if (!*port_s || *end || errno || p < 0 || p > 65535)
        return seterr(err, "address '%s': port '%s' is not a number in 0..65535", s, port_s);
    if (colon) {
        memcpy(host, s, host_len);
        host[host_len] = '\0';
    } else {
        snprintf(host, NET_HOST_MAX, "%s", default_host);
    }
    *port = (int)p;
    return 0;
}

static void tune_socket(int fd, double send_timeout_s)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (send_timeout_s > 0) {
        struct timeval tv = {.tv_sec = (time_t)send_timeout_s,
                             .tv_usec = (suseconds_t)((send_timeout_s - (double)(time_t)send_timeout_s) * 1e6)};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
}

static struct addrinfo *resolve(const char *host, int port, int passive, char *err)
{
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = passive ? AI_PASSIVE : 0};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc) {
        seterr(err, "address %s:%d: %s", host, port, gai_strerror(rc));
        return NULL;
    }
    return res;
}

int net_connect(const char *host, int port, double send_timeout_s, char *err)
{
    struct addrinfo *res = resolve(host, port, 0, err);
    if (!res) return -1;
    int fd = -1, last_errno = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            last_errno = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) return seterr(err, "connect %s:%d: %s", host, port, strerror(last_errno));
    tune_socket(fd, send_timeout_s);
    return fd;
}

int net_listen(const char *host, int port, int *bound_port, char *err)
{
    struct addrinfo *res = resolve(host, port, 1, err);
    if (!res) return -1;
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        freeaddrinfo(res);
        return seterr(err, "socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4) < 0) {
        int e = errno;
        freeaddrinfo(res);
        close(fd);
        return seterr(err, "listen on %s:%d: %s", host, port, strerror(e));
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int net_accept(int listen_fd, int timeout_ms, double send_timeout_s, char *err)
{
    struct pollfd p = {.fd = listen_fd, .events = POLLIN};
    int pr;
    do pr = poll(&p, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr < 0) return seterr(err, "poll: %s", strerror(errno));
    if (pr == 0) return seterr(err, "no client connected within %d ms", timeout_ms);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return seterr(err, "accept: %s", strerror(errno));
    tune_socket(fd, send_timeout_s);
    return fd;
}

int net_send_all(int fd, const void *buf, size_t len, char *err)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return seterr(err, "send: peer does not read (send timed out)");
            return seterr(err, "send: %s", strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
