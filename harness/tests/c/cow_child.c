/* A master that maps N pages, writes them all, forks one child, and blocks.
 * The child then writes K of the pages (mode "write"), reads all of them
 * (mode "read") or does nothing (mode "none"), says so, and blocks too.
 * Nothing here calls malloc after the fork, so the only pages the child
 * copies are the K it writes, plus its stack.
 *
 * usage: cow_child N K write|read|none
 * prints: "master PID CHILD ADDR" then (from the child) "child ready SUM"
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *s) { (void)!write(1, s, strlen(s)); }

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    long n = atol(argv[1]), k = atol(argv[2]);
    const char *mode = argv[3];
    long ps = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 3;
    /* 4 KiB pages, whatever the THP setting. */
    madvise((void *)p, n * ps, MADV_NOHUGEPAGE);
    for (long i = 0; i < n; i++) p[i * ps] = 1;
    pid_t c = fork();
    if (c < 0) return 4;
    char line[128], b;
    if (c == 0) {
        long sum = 0;
        if (!strcmp(mode, "write")) for (long i = 0; i < k; i++) p[i * ps] = 2;
        if (!strcmp(mode, "read")) for (long i = 0; i < n; i++) sum += p[i * ps];
        snprintf(line, sizeof line, "child ready %ld\n", sum);
        say(line);
        (void)!read(0, &b, 1);
        _exit(0);
    }
    snprintf(line, sizeof line, "master %d %d %lx\n", getpid(), c, (unsigned long)p);
    say(line);
    (void)!read(0, &b, 1);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    return 0;
}
