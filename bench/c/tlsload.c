/*
 * tlsload: TLS handshake-rate load generator for PostgreSQL ports (bench/run.sh tls).
 *
 * <concurrency> threads, each in a loop for <warmup> + <seconds> seconds: connect(), then either
 * send an SSLRequest and read the one-byte answer (must be 'S'), or (mode "direct") start TLS at
 * once with ALPN "postgresql" (PostgreSQL 17 sslnegotiation=direct); a full TLS handshake (no
 * session resumption, no tickets, certificate not verified: the client's cost stays small), then
 * close_notify and close(). Nothing after the handshake: no StartupMessage, so a router never
 * routes; what is measured is accepting the connection, the negotiation byte and TLS termination.
 * Latency = connect() call to handshake done. Errors: refused, EOF, a non-'S' answer, a failed
 * handshake.
 *
 * usage: tlsload <port> <concurrency> <seconds> <warmup> <sslrequest|direct> [servername]
 * prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 400000

static int port;
static int direct_tls;
static const char *servername;
static double t_start, t_measure, t_end;
static SSL_CTX *ctx;

struct worker {
  pthread_t tid;
  long ok, errors, err_connect, err_answer, err_handshake;
  double *lat;
  long nlat;
  char last_error[160];
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static const unsigned char ssl_request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
static const unsigned char alpn[] = {10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'};

/* One connection; 0 on success, else which kind of error (1 connect, 2 answer, 3 handshake). */
static int once(struct worker *w) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 1;
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    snprintf(w->last_error, sizeof w->last_error, "connect: %s", strerror(errno));
    close(fd);
    return 1;
  }
  if (!direct_tls) {
    unsigned char answer = 0;
    if (write(fd, ssl_request, sizeof ssl_request) != (ssize_t)sizeof ssl_request || read(fd, &answer, 1) != 1 || answer != 'S') {
      snprintf(w->last_error, sizeof w->last_error, "SSLRequest answered 0x%02x (%s)", answer, strerror(errno));
      close(fd);
      return 2;
    }
  }
  SSL *ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (servername != NULL) SSL_set_tlsext_host_name(ssl, servername);
  if (direct_tls) SSL_set_alpn_protos(ssl, alpn, sizeof alpn);
  int rc = SSL_connect(ssl);
  if (rc != 1) {
    unsigned long e = ERR_get_error();
    snprintf(w->last_error, sizeof w->last_error, "handshake: %s", e ? ERR_error_string(e, NULL) : "eof/timeout");
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return 3;
  }
  SSL_shutdown(ssl); /* close_notify; the server's is not awaited */
  SSL_free(ssl);
  close(fd);
  return 0;
}

static void *run(void *arg) {
  struct worker *w = arg;
  for (;;) {
    double t0 = now();
    if (t0 >= t_end) break;
    int r = once(w);
    double t1 = now();
    if (t0 < t_measure) continue; /* warm-up */
    if (r == 0) {
      w->ok++;
      if (w->nlat < MAX_SAMPLES) w->lat[w->nlat++] = (t1 - t0) * 1000.0;
    } else {
      w->errors++;
      if (r == 1) w->err_connect++;
      else if (r == 2) w->err_answer++;
      else w->err_handshake++;
      if (r == 1) usleep(1000);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: tlsload <port> <concurrency> <seconds> <warmup> <sslrequest|direct> [servername]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  port = atoi(argv[1]);
  int conc = atoi(argv[2]);
  double seconds = atof(argv[3]);
  double warmup = atof(argv[4]);
  direct_tls = strcmp(argv[5], "direct") == 0;
  servername = argc > 6 ? argv[6] : NULL;

  ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

  struct worker *ws = calloc((size_t)conc, sizeof *ws);
  for (int i = 0; i < conc; i++) ws[i].lat = malloc(sizeof(double) * MAX_SAMPLES);
  double cpu0 = cpu_self();
  t_start = now();
  t_measure = t_start + warmup;
  t_end = t_measure + seconds;
  for (int i = 0; i < conc; i++) pthread_create(&ws[i].tid, NULL, run, &ws[i]);
  for (int i = 0; i < conc; i++) pthread_join(ws[i].tid, NULL);
  double elapsed = now() - t_measure;
  double cpu = cpu_self() - cpu0;

  long ok = 0, errors = 0, ec = 0, ea = 0, eh = 0, n = 0;
  const char *last = "";
  for (int i = 0; i < conc; i++) {
    ok += ws[i].ok;
    errors += ws[i].errors;
    ec += ws[i].err_connect;
    ea += ws[i].err_answer;
    eh += ws[i].err_handshake;
    n += ws[i].nlat;
    if (ws[i].last_error[0]) last = ws[i].last_error;
  }
  double *all = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  long k = 0;
  double sum = 0, max = 0;
  for (int i = 0; i < conc; i++)
    for (long j = 0; j < ws[i].nlat; j++) {
      all[k++] = ws[i].lat[j];
      sum += ws[i].lat[j];
      if (ws[i].lat[j] > max) max = ws[i].lat[j];
    }
  qsort(all, (size_t)n, sizeof(double), cmpd);
#define PCT(p) (n > 0 ? all[(long)((double)(n - 1) * (p))] : 0.0)
  char esc[200];
  size_t o = 0;
  for (const char *c = last; *c && o + 2 < sizeof esc; c++) {
    if (*c == '"' || *c == '\\') esc[o++] = '\\';
    esc[o++] = (*c >= 32 && *c < 127) ? *c : '?';
  }
  esc[o] = 0;
  printf("{\"ok\":%ld,\"errors\":%ld,\"errConnect\":%ld,\"errAnswer\":%ld,\"errHandshake\":%ld,\"seconds\":%.3f,\"rate\":%.1f,"
         "\"cpuSeconds\":%.3f,\"p50Ms\":%.3f,\"p90Ms\":%.3f,\"p99Ms\":%.3f,\"meanMs\":%.3f,\"maxMs\":%.3f,\"lastError\":\"%s\"}\n",
         ok, errors, ec, ea, eh, elapsed, ok / elapsed, cpu, PCT(0.5), PCT(0.9), PCT(0.99), n > 0 ? sum / (double)n : 0.0, max, esc);
  return 0;
}
