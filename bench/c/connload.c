/*
 * connload: PostgreSQL connection-rate load generator (router-only benchmarks).
 *
 * Keeps <concurrency> connections in flight for <seconds> (after <warmup> seconds not counted).
 * Each connection: connect(), send a StartupMessage (user, database), read until ReadyForQuery,
 * send Terminate, close, and start the next one. Latency = connect() call to ReadyForQuery.
 * An ErrorResponse, EOF or a stall over 5 s counts as an error. Single thread, epoll.
 *
 * usage: connload <port> <concurrency> <seconds> <warmup> <user> <database> [<count>]
 * With <count> (> 0), opens exactly <count> connections after the warm-up and stops when they are
 * done (<seconds> is then only a cap): fixed work for instruction counts (bench/icount.sh). Use
 * <warmup> 0 there, so that no connection of the warm-up is still in flight.
 * prints one JSON object on stdout.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { IDLE = 0, CONNECTING, READING };

struct slot {
  int fd;
  int state;
  double t0;
  int len;
  unsigned char buf[4096];
};

static double cpu_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t be32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static unsigned char pkt[512];
static size_t pktlen;
static struct sockaddr_in addr;
static int ep;
static struct slot *slots;
static int nslots;

static long ok_count = 0, err_count = 0, err_connect = 0, err_refused = 0, err_eof = 0, err_stall = 0;
static double *lat = NULL;
static size_t nlat = 0, caplat = 0;
static int measuring = 0;
static long opened = 0; /* connections opened while measuring (the <count> mode stops at <count>) */
/* CONNLOAD_UNIQUE=1: every connection's application_name differs ("c" + 7 hex digits of a counter,
   as long as "connload"), so no two StartupMessages are alike (a verdict memo's miss-heavy load). */
static int unique = 0;
static size_t appname_at = 0;
static unsigned long sent_count = 0;

static void open_slot(int i) {
  struct slot *s = &slots[i];
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s->fd < 0) { perror("socket"); exit(1); }
  int one = 1;
  setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  s->t0 = now();
  s->len = 0;
  int r = connect(s->fd, (struct sockaddr *)&addr, sizeof addr);
  if (r < 0 && errno != EINPROGRESS) {
    close(s->fd);
    s->fd = -1;
    s->state = IDLE;
    if (measuring) { err_count++; err_connect++; }
    return;
  }
  s->state = CONNECTING;
  if (measuring) opened++;
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i};
  epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void finish(int i, int ok, long *reason) {
  struct slot *s = &slots[i];
  if (ok) {
    static const unsigned char term[] = {'X', 0, 0, 0, 4};
    (void)send(s->fd, term, sizeof term, MSG_NOSIGNAL);
  }
  epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
  close(s->fd);
  s->fd = -1;
  s->state = IDLE;
  if (!measuring) return;
  if (ok) {
    ok_count++;
    if (nlat == caplat) {
      caplat = caplat ? caplat * 2 : 65536;
      lat = realloc(lat, caplat * sizeof *lat);
      if (!lat) { perror("realloc"); exit(1); }
    }
    lat[nlat++] = now() - s->t0;
  } else {
    err_count++;
    if (reason) (*reason)++;
  }
}

/* 1 = ReadyForQuery seen, -1 = error, 0 = need more */
static int parse(struct slot *s, long **reason) {
  int off = 0;
  while (s->len - off >= 5) {
    unsigned char type = s->buf[off];
    uint32_t mlen = be32(s->buf + off + 1) + 1;
    if (type == 'E') { *reason = &err_refused; return -1; }
    if ((int)mlen > (int)sizeof s->buf) { *reason = &err_refused; return -1; }
    if (s->len - off < (int)mlen) break;
    if (type == 'Z') return 1;
    off += (int)mlen;
  }
  memmove(s->buf, s->buf + off, s->len - off);
  s->len -= off;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: connload <port> <concurrency> <seconds> <warmup> <user> <database> [<count>]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int port = atoi(argv[1]);
  nslots = atoi(argv[2]);
  double seconds = atof(argv[3]), warmup = atof(argv[4]);
  const char *user = argv[5], *db = argv[6];
  long count = argc > 7 ? atol(argv[7]) : 0;

  /* StartupMessage 3.0: user, database, application_name */
  size_t o = 8;
  const char *kv[] = {"user", user, "database", db, "application_name", "connload"};
  const char *u = getenv("CONNLOAD_UNIQUE");
  unique = u != NULL && strcmp(u, "1") == 0;
  for (int k = 0; k < 6; k++) {
    size_t l = strlen(kv[k]) + 1;
    if (k == 5) appname_at = o;
    memcpy(pkt + o, kv[k], l);
    o += l;
  }
  pkt[o++] = 0;
  pktlen = o;
  pkt[0] = (unsigned char)(o >> 24); pkt[1] = (unsigned char)(o >> 16);
  pkt[2] = (unsigned char)(o >> 8); pkt[3] = (unsigned char)o;
  pkt[4] = 0; pkt[5] = 3; pkt[6] = 0; pkt[7] = 0;

  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  ep = epoll_create1(0);
  slots = calloc((size_t)nslots, sizeof *slots);
  double start = now(), mstart = start + warmup, end = mstart + seconds;
  double cpu0 = 0;
  if (warmup <= 0) { measuring = 1; cpu0 = cpu_self(); }
  for (int i = 0; i < nslots; i++) { slots[i].fd = -1; if (!(count > 0 && i >= count)) open_slot(i); }

  struct epoll_event evs[256];
  for (;;) {
    double t = now();
    if (!measuring && t >= mstart) { measuring = 1; mstart = t; end = t + seconds; cpu0 = cpu_self(); }
    if (t >= end || (count > 0 && measuring && ok_count + err_count >= count)) break;
    int n = epoll_wait(ep, evs, 256, 50);
    if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
    for (int k = 0; k < n; k++) {
      int i = (int)evs[k].data.u32;
      struct slot *s = &slots[i];
      if (s->fd < 0) continue;
      if (s->state == CONNECTING) {
        if (evs[k].events & (EPOLLERR | EPOLLHUP)) { finish(i, 0, &err_connect); continue; }
        if (evs[k].events & EPOLLOUT) {
          if (unique) { char name[9]; snprintf(name, sizeof name, "c%07lx", sent_count++ & 0xfffffffUL); memcpy(pkt + appname_at, name, 8); }
          if (send(s->fd, pkt, pktlen, MSG_NOSIGNAL) != (ssize_t)pktlen) { finish(i, 0, &err_connect); continue; }
          s->state = READING;
          struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i};
          epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
        }
        if (!(evs[k].events & EPOLLIN)) continue;
      }
      ssize_t r = recv(s->fd, s->buf + s->len, sizeof s->buf - (size_t)s->len, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) { finish(i, 0, &err_eof); continue; }
      s->len += (int)r;
      long *reason = NULL;
      int p = parse(s, &reason);
      if (p == 1) finish(i, 1, NULL);
      else if (p < 0) finish(i, 0, reason);
    }
    t = now();
    for (int i = 0; i < nslots; i++) {
      if (slots[i].state != IDLE && t - slots[i].t0 > 5.0) finish(i, 0, &err_stall);
      if (slots[i].state == IDLE && !(count > 0 && measuring && opened >= count)) open_slot(i);
    }
  }
  double elapsed = now() - mstart;
  double cpu = cpu_self() - cpu0;
  for (int i = 0; i < nslots; i++) if (slots[i].fd >= 0) close(slots[i].fd);

  double p50 = 0, p90 = 0, p99 = 0, mean = 0, mx = 0;
  if (nlat > 0) {
    qsort(lat, nlat, sizeof *lat, cmpd);
    p50 = lat[(size_t)(0.50 * (double)(nlat - 1))];
    p90 = lat[(size_t)(0.90 * (double)(nlat - 1))];
    p99 = lat[(size_t)(0.99 * (double)(nlat - 1))];
    mx = lat[nlat - 1];
    for (size_t i = 0; i < nlat; i++) mean += lat[i];
    mean /= (double)nlat;
  }
  printf("{\"ok\":%ld,\"errors\":%ld,\"errConnect\":%ld,\"errRefused\":%ld,\"errEof\":%ld,\"errStall\":%ld,"
         "\"cpuSeconds\":%.3f,\"seconds\":%.3f,\"rate\":%.1f,\"p50Ms\":%.4f,\"p90Ms\":%.4f,\"p99Ms\":%.4f,\"meanMs\":%.4f,\"maxMs\":%.4f}\n",
         ok_count, err_count, err_connect, err_refused, err_eof, err_stall, cpu, elapsed,
         (double)ok_count / elapsed, p50 * 1e3, p90 * 1e3, p99 * 1e3, mean * 1e3, mx * 1e3);
  return 0;
}
