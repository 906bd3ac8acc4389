/* A process for `inspect`'s tests: T threads each malloc (so glibc gives
 * each its own arena, up to its limit), then F forked children (which keep
 * the arenas' heaps); all wait until killed.
 * Usage: threads_then_fork T F */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *run(void *arg) {
    (void)arg;
    for (int i = 0; i < 100; i++) {
        void *volatile p = malloc(1000);
        (void)p;
    }
    for (;;)
        pause();
    return 0;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    int forks = argc > 2 ? atoi(argv[2]) : 0;
    pthread_t t;
    for (int i = 0; i < threads; i++)
        pthread_create(&t, 0, run, 0);
    sleep(1);
    for (int i = 0; i < forks; i++)
        if (fork() == 0)
            for (;;)
                pause();
    /* Ready: every thread has allocated, every child is forked. */
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
