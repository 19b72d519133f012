/*
 * fakepg: a fake PostgreSQL server that answers at once, for router-only benchmarks.
 *
 * Reads a length-prefixed first packet. SSLRequest/GSSENCRequest -> 'N' and reads the next one;
 * CancelRequest -> close; StartupMessage -> AuthenticationOk + ReadyForQuery('I'). Afterwards any
 * Terminate ('X') or EOF closes the connection; other messages are ignored. Single thread, epoll.
 *
 * usage: fakepg <port> [address]      (listens on 127.0.0.1 unless an IPv4 address is given, e.g.
 *                                     0.0.0.0 inside a container)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFSZ 16384
#define MAXFD 65536

struct conn {
  int started; /* 1 once ReadyForQuery was sent */
  int len;
  unsigned char buf[BUFSZ];
};

static struct conn *conns[MAXFD];
static volatile sig_atomic_t stop_flag = 0;
static void on_sig(int s) { (void)s; stop_flag = 1; }

static uint32_t be32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void close_conn(int ep, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(conns[fd]);
  conns[fd] = NULL;
}

static const unsigned char READY[] = {
    'R', 0, 0, 0, 8, 0, 0, 0, 0,  /* AuthenticationOk */
    'Z', 0, 0, 0, 5, 'I'          /* ReadyForQuery idle */
};

/* returns 0 to keep the connection, -1 to close it */
static int process(int fd, struct conn *c) {
  for (;;) {
    if (!c->started) {
      if (c->len < 8) return 0;
      uint32_t plen = be32(c->buf);
      if (plen < 8 || plen > BUFSZ) return -1;
      if ((uint32_t)c->len < plen) return 0;
      uint32_t code = be32(c->buf + 4);
      if (code == 80877103u || code == 80877104u) { /* SSL / GSSENC request */
        if (send(fd, "N", 1, MSG_NOSIGNAL) != 1) return -1;
      } else if (code == 80877102u) { /* CancelRequest */
        return -1;
      } else {
        if (send(fd, READY, sizeof READY, MSG_NOSIGNAL) != (ssize_t)sizeof READY) return -1;
        c->started = 1;
      }
      memmove(c->buf, c->buf + plen, c->len - plen);
      c->len -= plen;
    } else {
      if (c->len < 5) return 0;
      if (c->buf[0] == 'X') return -1;
      uint32_t mlen = be32(c->buf + 1) + 1;
      if (mlen < 5 || mlen > BUFSZ) return -1;
      if ((uint32_t)c->len < mlen) return 0;
      memmove(c->buf, c->buf + mlen, c->len - mlen);
      c->len -= mlen;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: fakepg <port> [address]\n"); return 2; }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_sig);
  signal(SIGINT, on_sig);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (argc > 2 && inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) { fprintf(stderr, "fakepg: bad address %s\n", argv[2]); return 2; }
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) { perror("fakepg: bind/listen"); return 1; }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event evs[256];
  while (!stop_flag) {
    int n = epoll_wait(ep, evs, 256, 500);
    if (n < 0) { if (errno == EINTR) continue; perror("epoll_wait"); return 1; }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (cfd < 0) break;
          if (cfd >= MAXFD) { close(cfd); continue; }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conns[cfd] = calloc(1, sizeof(struct conn));
          struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = cfd};
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
        }
        continue;
      }
      struct conn *c = conns[fd];
      if (c == NULL) continue;
      ssize_t r = recv(fd, c->buf + c->len, BUFSZ - c->len, 0);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        close_conn(ep, fd);
        continue;
      }
      c->len += (int)r;
      if (process(fd, c) < 0) close_conn(ep, fd);
      else if (c->len == BUFSZ) close_conn(ep, fd);
    }
  }
  return 0;
}
