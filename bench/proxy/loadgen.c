// Fixed-rate, open-loop HTTP/1.1 load generator in C: the same schedule, framing, arguments and
// JSON output as loadgen.js, but each request leaves at its own scheduled time.
//
// Why a second one: loadgen.js can only start requests from a 1 ms timer, so at 8,000 req/s they
// leave in bursts of eight, and every hop then handles eight requests per wake-up. Here each
// request leaves at its own time (epoll_pwait2's timeout is in nanoseconds), which is what "a
// fixed rate" means, and what independent clients look like. It is not cheaper: measured on a
// 2-vCPU guest it spent more CPU per request than loadgen.js, because it too wakes once per
// request; it reports its own CPU per request ("generatorCpuUs") so a run shows what it took
// from the CPUs it shares with the upstream and the proxy under test.
//
// Requests are scheduled at t0 + i/rate regardless of how fast answers come back, and each
// latency is measured from its *intended* send time (no coordinated omission). Every latency
// is kept and sorted at the end, so percentiles are exact.
//
// Build: cc -O2 -o loadgen loadgen.c (bench/proxy/run.js does this itself, into bench/proxy/tmp).
// Usage: loadgen --url http://HOST:PORT/PATH --rate R [--duration S] [--warmup S] [--connections N]
//                [--trace FILE]
// --trace writes each measured request's scheduled time and latency (ms), one per line, to
// FILE: when the slow ones happened tells a stall (all requests late together) from queueing.
// Prints one JSON line with the measured window's results; exit 2 on bad arguments.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 16384
#define LINE_MAX_LEN 256

enum { S_HEAD, S_BODY, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_CRLF, S_TRAILERS };

typedef struct {
  int fd;
  int connected;
  long current; // schedule index of the request in flight, -1 if idle
  int state;
  long remaining;
  int status;
  char head[HEAD_MAX];
  size_t head_len;
  char line[LINE_MAX_LEN];
  size_t line_len;
} conn_t;

static const char *url_text;
static char host[256], port_text[16], target[2048];
static struct sockaddr_storage addr;
static socklen_t addr_len;
static char request[4096];
static size_t request_len;

static double rate, duration_s = 10, warmup_s = 3;
static int connections = 50;
static long warmup_count, measured_count, total_count;
static double interval_ns;
static int64_t t0;

static double *latencies;
static double *intended_ms; // with --trace: each recorded request's scheduled time after t0
static const char *trace_path;
static long recorded, errors, non2xx, issued, answered;
static unsigned long long bytes;

static conn_t *conns;
static int *idle_stack;
static int idle_len;
static long *pending; // ring of schedule indexes due but without an idle connection
static long pending_head, pending_tail;
static int ep;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage(const char *why) {
  fprintf(stderr, "loadgen: %s\nusage: loadgen --url http://HOST:PORT/PATH --rate R [--duration S] "
                  "[--warmup S] [--connections N] [--trace FILE]\n", why);
  exit(2);
}

static double number_arg(const char *name, const char *text, double min) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end != '\0' || !isfinite(v) || v < min) {
    char msg[300];
    snprintf(msg, sizeof msg, "%s must be a number >= %g, got \"%s\"", name, min, text);
    usage(msg);
  }
  return v;
}

static void parse_url(const char *u) {
  if (strncmp(u, "http://", 7) != 0) usage("--url must start with http://");
  const char *p = u + 7;
  const char *slash = strchr(p, '/');
  size_t authority_len = slash ? (size_t)(slash - p) : strlen(p);
  if (authority_len == 0 || authority_len >= sizeof host) usage("--url has no host, or a too long one");
  char authority[256];
  memcpy(authority, p, authority_len);
  authority[authority_len] = '\0';
  char *colon = strrchr(authority, ':');
  if (colon) {
    *colon = '\0';
    snprintf(port_text, sizeof port_text, "%s", colon + 1);
  } else {
    snprintf(port_text, sizeof port_text, "80");
  }
  snprintf(host, sizeof host, "%s", authority);
  if (snprintf(target, sizeof target, "%s", slash ? slash : "/") >= (int)sizeof target)
    usage("--url path is too long");
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
  int rc = getaddrinfo(host, port_text, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "loadgen: cannot resolve %s:%s: %s\n", host, port_text, gai_strerror(rc));
    exit(2);
  }
  memcpy(&addr, res->ai_addr, res->ai_addrlen);
  addr_len = res->ai_addrlen;
  freeaddrinfo(res);
  // Same request bytes as loadgen.js: the Host header carries the port as written in the URL.
  request_len = (size_t)snprintf(request, sizeof request,
                                 "GET %s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: dotslash-bench\r\n\r\n",
                                 target, (int)authority_len, p);
}

static void conn_open(conn_t *c) {
  c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    perror("loadgen: socket");
    exit(1);
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->connected = 0;
  c->current = -1;
  if (connect(c->fd, (struct sockaddr *)&addr, addr_len) != 0 && errno != EINPROGRESS) {
    perror("loadgen: connect");
    exit(1);
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_send(conn_t *c, long index) {
  c->current = index;
  c->state = S_HEAD;
  c->head_len = 0;
  c->line_len = 0;
  // The socket is idle, so its send buffer is empty and a short request goes out whole.
  ssize_t n = write(c->fd, request, request_len);
  (void)n; // a failed write shows up as EOF/error on read, which fails the request
}

static void conn_next(conn_t *c) {
  if (pending_head < pending_tail) {
    conn_send(c, pending[pending_head++]);
  } else {
    c->current = -1;
    idle_stack[idle_len++] = (int)(c - conns);
  }
}

static void conn_finish(conn_t *c, int ok) {
  long index = c->current;
  c->current = -1;
  answered++;
  if (index >= warmup_count) {
    if (!ok) {
      errors++;
    } else {
      if (c->status < 200 || c->status > 299) non2xx++;
      if (recorded < measured_count) {
        int64_t intended = t0 + (int64_t)((double)index * interval_ns);
        if (intended_ms) intended_ms[recorded] = (double)(intended - t0) / 1e6;
        latencies[recorded++] = (double)(now_ns() - intended) / 1e6;
      }
    }
  }
}

static void conn_done(conn_t *c) {
  conn_finish(c, 1);
  conn_next(c);
}

static void conn_closed(conn_t *c) {
  for (int i = 0; i < idle_len; i++) {
    if (idle_stack[i] == (int)(c - conns)) {
      idle_stack[i] = idle_stack[--idle_len];
      break;
    }
  }
  if (c->current != -1) {
    conn_finish(c, 0);
    if (errors <= 3) fprintf(stderr, "loadgen: connection closed with a request in flight\n");
  }
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  // Replace the connection while there is work left.
  if (issued < total_count || pending_head < pending_tail) conn_open(c);
}

/** Case-insensitive search for a header line's value in a response head (NUL-terminated). */
static const char *header_value(const char *head, const char *name) {
  size_t n = strlen(name);
  for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
      const char *v = p + 3 + n;
      while (*v == ' ' || *v == '\t') v++;
      return v;
    }
  }
  return NULL;
}

/** Feeds received bytes through the response framer; returns -1 on a malformed response. */
static int conn_data(conn_t *c, const char *buf, size_t len) {
  if (c->current == -1) return 0;
  if (c->current >= warmup_count) bytes += len;
  size_t pos = 0;
  while (pos < len && c->current != -1) {
    if (c->state == S_HEAD) {
      size_t take = len - pos;
      if (c->head_len + take > HEAD_MAX - 1) take = HEAD_MAX - 1 - c->head_len;
      memcpy(c->head + c->head_len, buf + pos, take);
      size_t before = c->head_len;
      c->head_len += take;
      c->head[c->head_len] = '\0';
      char *end = memmem(c->head, c->head_len, "\r\n\r\n", 4);
      if (!end) {
        if (c->head_len >= HEAD_MAX - 1) return -1;
        pos += take;
        continue;
      }
      size_t head_end = (size_t)(end - c->head) + 4;
      pos += head_end - before;
      *end = '\0';
      c->status = c->head_len >= 12 ? atoi(c->head + 9) : 0;
      const char *te = header_value(c->head, "transfer-encoding");
      const char *cl = header_value(c->head, "content-length");
      c->line_len = 0;
      if (te && strcasestr(te, "chunked")) {
        c->state = S_CHUNK_SIZE;
      } else {
        c->remaining = cl ? atol(cl) : 0;
        c->state = S_BODY;
        if (c->remaining == 0) conn_done(c);
      }
    } else if (c->state == S_BODY || c->state == S_CHUNK_DATA || c->state == S_CHUNK_CRLF) {
      size_t take = (size_t)c->remaining < len - pos ? (size_t)c->remaining : len - pos;
      c->remaining -= (long)take;
      pos += take;
      if (c->remaining == 0) {
        if (c->state == S_BODY) {
          conn_done(c);
        } else if (c->state == S_CHUNK_DATA) {
          c->remaining = 2;
          c->state = S_CHUNK_CRLF;
        } else {
          c->state = S_CHUNK_SIZE;
        }
      }
    } else { // S_CHUNK_SIZE or S_TRAILERS: one line at a time
      const char *nl = memchr(buf + pos, '\n', len - pos);
      size_t take = nl ? (size_t)(nl - (buf + pos)) : len - pos;
      if (c->line_len + take >= LINE_MAX_LEN) return -1;
      memcpy(c->line + c->line_len, buf + pos, take);
      c->line_len += take;
      pos += take;
      if (!nl) continue;
      pos++; // the '\n'
      while (c->line_len > 0 && (c->line[c->line_len - 1] == '\r' || c->line[c->line_len - 1] == ' '))
        c->line_len--;
      c->line[c->line_len] = '\0';
      size_t was = c->line_len;
      c->line_len = 0;
      if (c->state == S_TRAILERS) {
        if (was == 0) conn_done(c);
      } else {
        long size = strtol(c->line, NULL, 16);
        if (size == 0) {
          c->state = S_TRAILERS;
        } else {
          c->remaining = size;
          c->state = S_CHUNK_DATA;
        }
      }
    }
  }
  return 0;
}

/** Starts every request whose scheduled time has come. */
static void pump(int64_t now) {
  long due = (long)floor((double)(now - t0) / interval_ns) + 1;
  if (due > total_count) due = total_count;
  while (issued < due) {
    if (idle_len > 0) conn_send(&conns[idle_stack[--idle_len]], issued);
    else pending[pending_tail++] = issued;
    issued++;
  }
}

static void handle(struct epoll_event *ev) {
  static char buf[256 * 1024];
  conn_t *c = ev->data.ptr;
  if (!c->connected) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (ev->events & (EPOLLERR | EPOLLHUP))) {
      fprintf(stderr, "loadgen: connect to %s:%s failed: %s\n", host, port_text, strerror(err ? err : ECONNREFUSED));
      exit(1);
    }
    c->connected = 1;
    struct epoll_event in = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &in);
    if (t0 != 0) conn_next(c);
    else idle_stack[idle_len++] = (int)(c - conns);
    return;
  }
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n > 0) {
      if (conn_data(c, buf, (size_t)n) != 0) {
        conn_closed(c);
        return;
      }
      if ((size_t)n < sizeof buf) return;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    conn_closed(c); // EOF or error
    return;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void print_pct(const char *name, double p, int last) {
  if (recorded == 0) {
    printf("\"%s\":null%s", name, last ? "" : ",");
    return;
  }
  long i = (long)ceil(p * (double)recorded) - 1;
  if (i >= recorded) i = recorded - 1;
  if (i < 0) i = 0;
  printf("\"%s\":%.3f%s", name, latencies[i], last ? "" : ",");
}

int main(int argc, char **argv) {
  const char *rate_text = NULL;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage("every option takes a value");
    const char *k = argv[i], *v = argv[++i];
    if (strcmp(k, "--url") == 0) url_text = v;
    else if (strcmp(k, "--rate") == 0) rate_text = v;
    else if (strcmp(k, "--duration") == 0) duration_s = number_arg("--duration", v, 0.001);
    else if (strcmp(k, "--warmup") == 0) warmup_s = number_arg("--warmup", v, 0);
    else if (strcmp(k, "--connections") == 0) {
      double n = number_arg("--connections", v, 1);
      if (n > 65535) usage("--connections must be at most 65535");
      connections = (int)n;
    }
    else if (strcmp(k, "--trace") == 0) trace_path = v;
    else {
      char msg[300];
      snprintf(msg, sizeof msg, "unknown option %s", k);
      usage(msg);
    }
  }
  if (!url_text || !rate_text) usage("--url and --rate are required");
  rate = number_arg("--rate", rate_text, 0.001);
  parse_url(url_text);
  // Wake-ups land within 1 us of the asked time instead of the default 50 us slack.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

  // Every measured latency is kept: bound the schedule so the arrays fit in memory.
  if ((warmup_s + duration_s) * rate > 1e9) usage("--rate x (--warmup + --duration) must be at most 1e9 requests");
  interval_ns = 1e9 / rate;
  warmup_count = (long)floor(warmup_s * rate);
  measured_count = (long)ceil(duration_s * rate);
  total_count = warmup_count + measured_count;
  latencies = malloc(sizeof(double) * (size_t)measured_count);
  pending = malloc(sizeof(long) * (size_t)total_count);
  conns = calloc((size_t)connections, sizeof(conn_t));
  idle_stack = malloc(sizeof(int) * (size_t)connections);
  if (trace_path) intended_ms = malloc(sizeof(double) * (size_t)measured_count);
  if (!latencies || !pending || !conns || !idle_stack || (trace_path && !intended_ms)) {
    fprintf(stderr, "loadgen: out of memory for %ld requests\n", total_count);
    return 1;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event events[256];

  // Let the connections open before the clock starts (at most 5 s).
  for (int i = 0; i < connections; i++) conn_open(&conns[i]);
  int64_t open_deadline = now_ns() + 5000000000LL;
  while (idle_len < connections && now_ns() < open_deadline) {
    int n = epoll_wait(ep, events, 256, 10);
    for (int i = 0; i < n; i++) handle(&events[i]);
  }

  t0 = now_ns();
  int64_t end_at = t0 + (int64_t)((double)total_count * interval_ns) + 5000000000LL;
  for (;;) {
    int64_t now = now_ns();
    pump(now);
    // Stop when everything was answered, or 5 s after the schedule ended (the rest count as errors).
    if ((issued >= total_count && answered >= total_count) || now > end_at) break;
    int64_t wait = 20000000; // 20 ms once everything is issued
    if (issued < total_count) {
      int64_t next = t0 + (int64_t)((double)issued * interval_ns);
      wait = next > now ? next - now : 0;
    }
    struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    int n = epoll_pwait2(ep, events, 256, &ts, NULL);
    if (n < 0 && errno != EINTR) {
      perror("loadgen: epoll_pwait2");
      return 1;
    }
    for (int i = 0; i < n; i++) handle(&events[i]);
  }
  long unanswered = total_count - answered;
  long missing = measured_count - recorded - errors;
  if (missing > 0) errors += missing;

  if (trace_path) {
    // In completion order: scheduled time (ms after the clock started) and latency (ms).
    FILE *f = fopen(trace_path, "w");
    if (!f) {
      fprintf(stderr, "loadgen: cannot write --trace %s: %s\n", trace_path, strerror(errno));
      return 1;
    }
    for (long i = 0; i < recorded; i++) fprintf(f, "%.3f %.3f\n", intended_ms[i], latencies[i]);
    fclose(f);
  }
  qsort(latencies, (size_t)recorded, sizeof(double), cmp_double);
  printf("{\"url\":\"%s\",\"targetRate\":%g,\"achievedRate\":%ld,\"connections\":%d,\"durationS\":%g,"
         "\"completed\":%ld,\"expected\":%ld,\"errors\":%ld,\"non2xx\":%ld,\"unanswered\":%ld,"
         "\"bytes\":%llu,\"latencyMs\":{",
         url_text, rate, (long)llround((double)recorded / duration_s), connections, duration_s, recorded,
         measured_count, errors, non2xx, unanswered, bytes);
  print_pct("p50", 0.5, 0);
  print_pct("p90", 0.9, 0);
  print_pct("p99", 0.99, 0);
  print_pct("p999", 0.999, 0);
  print_pct("max", 1.0, 1);
  // The generator's own CPU per request sent (warm-up included): what it takes from the CPUs it
  // shares with the upstream and the proxy under test.
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu_us = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  printf("},\"generatorCpuUs\":%.1f,\"generator\":\"loadgen.c\"}\n", issued > 0 ? cpu_us / (double)issued : 0.0);
  return 0;
}
