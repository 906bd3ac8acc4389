/* A tiny preforking server with known copy-on-write, for `measure`'s tests.
 *
 *   prefork_server PORT WORKERS PRELOAD_PAGES DIRTY_PAGES
 *
 * The master writes PRELOAD_PAGES pages of an anonymous mapping, binds
 * 127.0.0.1:PORT, forks WORKERS workers and listens only once every worker
 * has written DIRTY_PAGES of the inherited pages: when the port opens, the
 * tree is complete. Each worker then answers every connection with a line.
 * The master re-forks a worker that dies (the replacement dirties its pages
 * too). A worker names itself `srv-worker` once its pages are written.
 * With PREFORK_NODUMP set, workers make themselves non-dumpable: their
 * memory is unreadable in /proc to an unprivileged user, even their owner.
 * With PREFORK_HUGE_MIB=N, each worker also maps an anonymous region of N
 * MiB aligned to 2 MiB, asks for transparent huge pages on it
 * (MADV_HUGEPAGE) and writes every page of it, before the port opens. With
 * PREFORK_PIDS=FILE, the master writes its pid and its workers' to FILE
 * (on one line, through a rename) before the port opens.
 * With PREFORK_DAEMON set, it first daemonises as daemon(3) does (fork,
 * the parent exits 0, setsid, fork again, the first child exits, stdio on
 * /dev/null), so the server runs outside the tree and session it started
 * in. Nothing calls malloc after the fork; output is write(2) from stack
 * buffers.
 *
 *   prefork_server client PORT REQUESTS
 *
 * A load client: REQUESTS connections, one line read from each, then a
 * summary in wrk's words (`Requests/sec:` is not its last line).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *region;
static long page;
static long dirty;
static int listener;
static pid_t master;
static long huge_mib;

static void say(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t r = write(1, buf, (size_t)n);
        (void)r;
    }
}

static void die(const char *what) {
    say("prefork_server: %s: %s\n", what, strerror(errno));
    _exit(1);
}

/* An aligned region of huge_mib MiB on huge pages, as far as the kernel
 * gives them: madvise may fail (THP disabled), leaving small pages. */
static void touch_huge(void) {
    size_t len = (size_t)huge_mib << 20, align = (size_t)2 << 20;
    char *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    char *aligned = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    (void)madvise(aligned, len, MADV_HUGEPAGE);
    for (size_t off = 0; off < len; off += (size_t)page)
        aligned[off] = 3;
}

/* PREFORK_PIDS: the master's pid and its workers', written to a temporary
 * file renamed over FILE, so a reader never sees half of it. */
static void write_pids(const char *file, const pid_t *pids, int workers) {
    char tmp[4096], line[64 * 12 + 16];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp)
        die("PREFORK_PIDS is too long");
    int n = snprintf(line, sizeof line, "%d", (int)master);
    for (int i = 0; i < workers; i++)
        n += snprintf(line + n, sizeof line - n, " %d", (int)pids[i]);
    n += snprintf(line + n, sizeof line - n, "\n");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n || close(fd) != 0)
        die("PREFORK_PIDS");
    if (rename(tmp, file) != 0)
        die("rename PREFORK_PIDS");
}

static void worker(int ready) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != master)
        _exit(1);
    if (getenv("PREFORK_NODUMP"))
        prctl(PR_SET_DUMPABLE, 0);
    for (long i = 0; i < dirty; i++)
        region[i * page] = 2;
    if (huge_mib > 0)
        touch_huge();
    /* Tells the tests (through /proc/PID/comm) that its pages are written. */
    prctl(PR_SET_NAME, "srv-worker");
    if (ready >= 0) {
        if (write(ready, "r", 1) != 1)
            _exit(1);
        close(ready);
    }
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c < 0)
            continue;
        ssize_t r = write(c, "hello\n", 6);
        (void)r;
        close(c);
    }
}

static pid_t spawn(int ready) {
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        worker(ready);
    return pid;
}

static int client(int port, long requests) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < requests; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0)
            die("connect");
        char line[16];
        if (read(s, line, sizeof line) != 6)
            die("read");
        close(s);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    say("Running %ld requests @ 127.0.0.1:%d\n", requests, port);
    say("  %ld requests in %.3fs\n", requests, secs);
    say("Requests/sec:   %.2f\n", requests / secs);
    say("Transfer/sec:   %.2fKB\n", requests * 6 / secs / 1024);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "client") == 0)
        return client(atoi(argv[2]), atol(argv[3]));
    if (argc != 5) {
        say("usage: prefork_server PORT WORKERS PRELOAD_PAGES DIRTY_PAGES\n");
        return 2;
    }
    int port = atoi(argv[1]), workers = atoi(argv[2]);
    long preload = atol(argv[3]);
    dirty = atol(argv[4]);
    if (workers < 1 || workers > 64 || dirty > preload)
        return 2;
    if (getenv("PREFORK_DAEMON")) {
        pid_t p = fork();
        if (p < 0)
            die("fork");
        if (p > 0)
            _exit(0);
        if (setsid() < 0)
            die("setsid");
        p = fork();
        if (p < 0)
            die("fork");
        if (p > 0)
            _exit(0);
        int null = open("/dev/null", O_RDWR);
        if (null < 0)
            die("open /dev/null");
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
    page = sysconf(_SC_PAGESIZE);
    master = getpid();
    if (getenv("PREFORK_HUGE_MIB"))
        huge_mib = atol(getenv("PREFORK_HUGE_MIB"));

    region = mmap(NULL, preload * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        die("mmap");
    for (long i = 0; i < preload; i++)
        memset(region + i * page, 1, page);

    listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0)
        die("bind");

    pid_t pids[64];
    int ready[2];
    if (pipe(ready) != 0)
        die("pipe");
    for (int i = 0; i < workers; i++)
        pids[i] = spawn(ready[1]);
    close(ready[1]);
    for (int i = 0; i < workers; i++) {
        char c;
        if (read(ready[0], &c, 1) != 1)
            die("a worker did not start");
    }
    close(ready[0]);
    if (getenv("PREFORK_PIDS"))
        write_pids(getenv("PREFORK_PIDS"), pids, workers);
    if (listen(listener, 128) != 0)
        die("listen");
    say("master %d listening on %d with %d workers\n", (int)master, port, workers);

    for (;;) {
        int status;
        pid_t dead = wait(&status);
        if (dead < 0) {
            if (errno == EINTR)
                continue;
            die("wait");
        }
        for (int i = 0; i < workers; i++)
            if (pids[i] == dead) {
                pids[i] = spawn(-1);
                say("worker %d died, replaced by %d\n", (int)dead, (int)pids[i]);
            }
    }
}
