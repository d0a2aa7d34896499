/*
 * etcd_fixture.h — a throwaway single-member etcd for tests.
 *
 *   etcd_fixture f;
 *   int rc = etcd_fixture_start(&f);   0 up, 1 etcd not installed (skip), -1 failed
 *   ... talk to f.endpoint ("http://127.0.0.1:PORT") ...
 *   etcd_fixture_pause(&f);  etcd_fixture_resume(&f);   SIGSTOP / SIGCONT
 *   etcd_fixture_stop(&f);             SIGTERM, SIGKILL after 5 s, reap, rm -rf dir
 *
 * and two kinds of dead endpoint: etcd_fixture_free_port() (connections
 * refused) and etcd_blackhole_open() (connections hang).
 *
 * The member listens on two free loopback ports (found by binding port 0),
 * keeps its data in a mkdtemp directory under $TMPDIR (or /tmp), and writes
 * its output to DIR/etcd.log, whose tail is printed when start fails.  The
 * binary is $CAIRN_ETCD_BIN if set, else /usr/bin/etcd.  The child asks the
 * kernel to SIGKILL it if the test process dies, so a crashed test leaves
 * no etcd behind.
 *
 * Header-only (static functions), Linux, single-threaded test processes.
 */
#ifndef CAIRN_ETCD_FIXTURE_H
#define CAIRN_ETCD_FIXTURE_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ETCD_FIXTURE_START_MS 10000
#define ETCD_FIXTURE_STOP_MS 5000

typedef struct etcd_fixture {
    pid_t pid;              /* 0 when not running */
    int client_port, peer_port;
    char dir[256];          /* temp dir holding data/ and etcd.log */
    char endpoint[64];      /* "http://127.0.0.1:<client_port>" */
} etcd_fixture;

static inline long etcd_fixture_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void etcd_fixture_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Binds a loopback socket to port 0 and returns it (the port stays ours
 * while it is open), or -1.  *port gets the port. */
static inline int etcd_fixture_hold_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A loopback port that nothing listens on right now (connections to it are
 * refused), or -1. */
static inline int etcd_fixture_free_port(void)
{
    int port = -1;
    int fd = etcd_fixture_hold_port(&port);
    if (fd < 0) return -1;
    close(fd);
    return port;
}

/* A loopback port where connect() hangs, as to a host that drops packets:
 * a listener that never accepts, its accept queue filled by a few pending
 * connections, so the kernel drops further SYNs. */
typedef struct etcd_blackhole {
    int fds[4]; /* the listener, then the fillers */
    int port;
} etcd_blackhole;

static inline int etcd_blackhole_open(etcd_blackhole *b)
{
    b->port = -1;
    for (size_t i = 0; i < 4; i++) b->fds[i] = -1;
    b->fds[0] = etcd_fixture_hold_port(&b->port);
    if (b->fds[0] < 0 || listen(b->fds[0], 0) != 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)b->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (size_t i = 1; i < 4; i++) {
        b->fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (b->fds[i] < 0) return -1;
        if (connect(b->fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) return -1;
    }
    etcd_fixture_sleep_ms(50); /* let the handshakes that can complete do so */
    return 0;
}

static inline void etcd_blackhole_close(etcd_blackhole *b)
{
    for (size_t i = 0; i < 4; i++)
        if (b->fds[i] >= 0) close(b->fds[i]);
}

static inline int etcd_fixture_rm_cb(const char *path, const struct stat *st, int flag,
                                     struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* One GET /health over a raw socket; 1 when etcd says healthy. */
static inline int etcd_fixture_healthy(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct timeval tv = {0, 500000}; /* also bounds connect() on Linux */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        static const char req[] = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if (write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1)) {
            char resp[2048];
            size_t got = 0;
            ssize_t r;
            while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
                got += (size_t)r;
            resp[got] = '\0';
            ok = strstr(resp, " 200 ") && strstr(resp, "\"health\":\"true\"");
        }
    }
    close(fd);
    return ok;
}

static inline void etcd_fixture_print_log(const etcd_fixture *f)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/etcd.log", f->dir);
    FILE *fp = fopen(path, "r");
    if (!fp) return;
    static char tail[4096];
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, size > (long)sizeof(tail) - 1 ? size - (long)sizeof(tail) + 1 : 0, SEEK_SET);
    size_t n = fread(tail, 1, sizeof(tail) - 1, fp);
    tail[n] = '\0';
    fclose(fp);
    fprintf(stderr, "---- tail of %s ----\n%s\n----\n", path, tail);
}

/* SIGTERM, then SIGKILL after ETCD_FIXTURE_STOP_MS; reaps the child and
 * removes the directory.  Safe to call twice or after a failed start. */
static inline void etcd_fixture_stop(etcd_fixture *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGCONT); /* a paused etcd cannot act on SIGTERM */
        kill(f->pid, SIGTERM);
        long deadline = etcd_fixture_now_ms() + ETCD_FIXTURE_STOP_MS;
        int status;
        pid_t r;
        while ((r = waitpid(f->pid, &status, WNOHANG)) == 0 && etcd_fixture_now_ms() < deadline)
            etcd_fixture_sleep_ms(20);
        if (r == 0) {
            kill(f->pid, SIGKILL);
            while (waitpid(f->pid, &status, 0) < 0 && errno == EINTR) {}
        }
        f->pid = 0;
    }
    if (f->dir[0]) {
        nftw(f->dir, etcd_fixture_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        f->dir[0] = '\0';
    }
}

/* Returns 0 with etcd answering /health, 1 if the etcd binary is missing
 * (the caller should skip), -1 on failure (reason and log tail on stderr). */
static inline int etcd_fixture_start(etcd_fixture *f)
{
    memset(f, 0, sizeof(*f));
    const char *bin = getenv("CAIRN_ETCD_BIN");
    if (!bin || !*bin) bin = "/usr/bin/etcd";
    if (access(bin, X_OK) != 0) return 1;

    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/cairn-etcd-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        fprintf(stderr, "etcd_fixture: mkdtemp %s: %s\n", f->dir, strerror(errno));
        f->dir[0] = '\0';
        return -1;
    }
    /* Hold both ports at once so that they differ; release just before exec. */
    int cfd = etcd_fixture_hold_port(&f->client_port);
    int pfd = etcd_fixture_hold_port(&f->peer_port);
    if (cfd < 0 || pfd < 0) {
        fprintf(stderr, "etcd_fixture: no free port: %s\n", strerror(errno));
        if (cfd >= 0) close(cfd);
        if (pfd >= 0) close(pfd);
        etcd_fixture_stop(f);
        return -1;
    }
    snprintf(f->endpoint, sizeof(f->endpoint), "http://127.0.0.1:%d", f->client_port);

    char data[300], logp[300], curl[64], purl[64], cluster[96];
    snprintf(data, sizeof(data), "%s/data", f->dir);
    snprintf(logp, sizeof(logp), "%s/etcd.log", f->dir);
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", f->client_port);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", f->peer_port);
    snprintf(cluster, sizeof(cluster), "t=%s", purl);
    int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0) {
        fprintf(stderr, "etcd_fixture: open %s: %s\n", logp, strerror(errno));
        close(cfd);
        close(pfd);
        etcd_fixture_stop(f);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    close(cfd);
    close(pfd);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "etcd_fixture: fork: %s\n", strerror(errno));
        close(logfd);
        etcd_fixture_stop(f);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127); /* the parent died before prctl */
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        char *const argv[] = {(char *)bin, "--name", "t", "--data-dir", data,
                              "--listen-client-urls", curl, "--advertise-client-urls", curl,
                              "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                              "--initial-cluster", cluster, "--initial-cluster-state", "new",
                              NULL};
        execv(bin, argv);
        dprintf(2, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(logfd);
    f->pid = pid;

    long deadline = etcd_fixture_now_ms() + ETCD_FIXTURE_START_MS;
    while (etcd_fixture_now_ms() < deadline) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            f->pid = 0;
            fprintf(stderr, "etcd_fixture: etcd exited during start (status %d)\n", status);
            etcd_fixture_print_log(f);
            etcd_fixture_stop(f);
            return -1;
        }
        if (etcd_fixture_healthy(f->client_port)) return 0;
        etcd_fixture_sleep_ms(50);
    }
    fprintf(stderr, "etcd_fixture: etcd not healthy after %d ms\n", ETCD_FIXTURE_START_MS);
    etcd_fixture_print_log(f);
    etcd_fixture_stop(f);
    return -1;
}

/* Freezes etcd (SIGSTOP): connections are still accepted by the kernel but
 * nothing answers — an outage as a client sees it.  Returns 0 or -1. */
static inline int etcd_fixture_pause(etcd_fixture *f)
{
    return f->pid > 0 ? kill(f->pid, SIGSTOP) : -1;
}

static inline int etcd_fixture_resume(etcd_fixture *f)
{
    return f->pid > 0 ? kill(f->pid, SIGCONT) : -1;
}

#endif
