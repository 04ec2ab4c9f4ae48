/* TCP over POSIX sockets: addresses, connect, listen/accept, whole-buffer sends. */
#ifndef STEPFUSE_NET_H
#define STEPFUSE_NET_H

#include <stddef.h>

#define NET_HOST_MAX 256

/* "HOST:PORT" (or "[v6]:PORT"); with default_host, a bare "PORT" is accepted too. */
int net_parse_addr(const char *s, const char *default_host, char *host, int *port, char *err);

/* Connected TCP socket with TCP_NODELAY and a send timeout, or -1 with err
 * ("connect 127.0.0.1:9: Connection refused"). */
int net_connect(const char *host, int port, double send_timeout_s, char *err);

/* Listening socket on host:port (port 0 = ephemeral); *bound_port gets the real port. */
int net_listen(const char *host, int port, int *bound_port, char *err);

/* Accept one connection, waiting at most timeout_ms (<0: forever); -1 with err on timeout
 * or error. The socket gets TCP_NODELAY and the send timeout. */
int net_accept(int listen_fd, int timeout_ms, double send_timeout_s, char *err);

/* Send all of buf (no SIGPIPE); -1 with err when the peer is gone or the send times out. */
int net_send_all(int fd, const void *buf, size_t len, char *err);

#endif
