/* A master that maps N pages, writes them all, forks one child, and blocks.
 * The child then writes K of the pages (mode "write"), reads all of them
 * (mode "read"), does nothing (mode "none") or maps K new pages of its own
 * and writes them (mode "new"), says so, and blocks too. Nothing here calls
 * malloc after the fork, so the only pages the child copies are the K it
 * writes, plus its stack.
 *
 * The N pages are (KIND, default "anon"): a private anonymous mapping
 * ("anon"); the brk heap grown with sbrk ("heap"); an array on the main
 * thread's stack ("stack"); a private mapping of a file of N pages
 * ("file", an unlinked temporary file in $TMPDIR or /tmp), which the
 * master's writes turn into private copies of its own.
 *
 * usage: cow_child N K write|read|none|new [anon|heap|stack|file]
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

static char *file_pages(long bytes) {
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/cow_child.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) return MAP_FAILED;
    unlink(path);
    if (ftruncate(fd, bytes)) return MAP_FAILED;
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    return p;
}

static char *heap_pages(long bytes, long ps) {
    /* The break need not be page-aligned: start at the next page. */
    unsigned long cur = (unsigned long)sbrk(0);
    unsigned long start = (cur + ps - 1) & ~(unsigned long)(ps - 1);
    if (sbrk(start - cur + bytes) == (void *)-1) return MAP_FAILED;
    return (char *)start;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) return 2;
    long n = atol(argv[1]), k = atol(argv[2]);
    const char *mode = argv[3];
    const char *kind = argc == 5 ? argv[4] : "anon";
    long ps = sysconf(_SC_PAGESIZE);
    int on_stack = !strcmp(kind, "stack");
    /* The stack's pages live in main's frame for the whole run. */
    char stack_area[on_stack ? n * ps + ps : 1];
    volatile char *p;
    if (!strcmp(kind, "anon"))
        p = mmap(NULL, n * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    else if (!strcmp(kind, "heap"))
        p = heap_pages(n * ps, ps);
    else if (on_stack)
        p = (char *)(((unsigned long)stack_area + ps - 1) & ~(unsigned long)(ps - 1));
    else if (!strcmp(kind, "file"))
        p = file_pages(n * ps);
    else
        return 2;
    if (p == MAP_FAILED) return 3;
    /* 4 KiB pages, whatever the THP setting (the stack is not touched:
     * madvise would split its mapping). */
    if (!on_stack) madvise((void *)p, n * ps, MADV_NOHUGEPAGE);
    for (long i = 0; i < n; i++) p[i * ps] = 1;
    pid_t c = fork();
    if (c < 0) return 4;
    char line[128], b;
    if (c == 0) {
        long sum = 0;
        if (!strcmp(mode, "write")) for (long i = 0; i < k; i++) p[i * ps] = 2;
        if (!strcmp(mode, "read")) for (long i = 0; i < n; i++) sum += p[i * ps];
        if (!strcmp(mode, "new")) {
            volatile char *q = mmap(NULL, k * ps, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (q == MAP_FAILED) _exit(5);
            madvise((void *)q, k * ps, MADV_NOHUGEPAGE);
            for (long i = 0; i < k; i++) q[i * ps] = 3;
        }
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
