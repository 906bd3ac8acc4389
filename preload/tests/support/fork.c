/* fork while other threads allocate, then allocate and free in parent and
   child, with threads on both sides. A deadlock ends in SIGALRM. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond)                                           \
  do {                                                        \
    if (!(cond)) {                                            \
      printf("FAILED line %d: %s\n", __LINE__, #cond);        \
      fflush(stdout);                                         \
      _exit(1);                                               \
    }                                                         \
  } while (0)

static atomic_int stop;

/* Allocates and frees blocks of varied sizes, checking each one. */
static void churn(unsigned seed, int rounds) {
  enum { SLOTS = 64 };
  unsigned char *slot[SLOTS] = {0};
  size_t size[SLOTS] = {0};
  for (int r = 0; rounds < 0 ? !atomic_load(&stop) : r < rounds; r++) {
    seed = seed * 1103515245u + 12345u;
    int i = (int)((seed >> 8) % SLOTS);
    if (slot[i] != NULL) {
      CHECK(slot[i][0] == (unsigned char)i && slot[i][size[i] - 1] == (unsigned char)i);
      free(slot[i]);
    }
    /* mostly small blocks, every 16th up to 256 KiB */
    size[i] = 1 + (seed >> 4) % ((seed & 0xf0) == 0 ? 262144 : 4096);
    slot[i] = malloc(size[i]);
    CHECK(slot[i] != NULL);
    memset(slot[i], i, size[i]);
  }
  for (int i = 0; i < SLOTS; i++) free(slot[i]);
}

static void *forever(void *arg) {
  churn((unsigned)(uintptr_t)arg, -1);
  return NULL;
}

static void *briefly(void *arg) {
  churn((unsigned)(uintptr_t)arg, 1000);
  return NULL;
}

int main(void) {
  alarm(60);
  enum { KEPT = 1000, THREADS = 2, FORKS = 10 };
  static char *kept[KEPT];
  for (int i = 0; i < KEPT; i++) {
    kept[i] = malloc(100 + i);
    CHECK(kept[i] != NULL);
    memset(kept[i], i & 0x7f, 100 + i);
  }

  pthread_t busy[THREADS];
  for (int t = 0; t < THREADS; t++)
    CHECK(pthread_create(&busy[t], NULL, forever, (void *)(uintptr_t)(t + 1)) == 0);

  for (int f = 0; f < FORKS; f++) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      alarm(60);
      for (int i = 0; i < KEPT; i++) CHECK(kept[i][99 + i] == (i & 0x7f));
      for (int i = 0; i < KEPT; i += 2) free(kept[i]);
      pthread_t t[2];
      for (int k = 0; k < 2; k++)
        CHECK(pthread_create(&t[k], NULL, briefly, (void *)(uintptr_t)(100 + k)) == 0);
      churn(7, 1000);
      for (int k = 0; k < 2; k++) CHECK(pthread_join(t[k], NULL) == 0);
      _exit(0);
    }
    churn((unsigned)f, 200);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      printf("FAILED child %d: status 0x%x\n", f, status);
      return 1;
    }
  }

  atomic_store(&stop, 1);
  for (int t = 0; t < THREADS; t++) CHECK(pthread_join(busy[t], NULL) == 0);
  for (int i = 0; i < KEPT; i++) {
    CHECK(kept[i][99 + i] == (i & 0x7f));
    free(kept[i]);
  }
  puts("OK");
  return 0;
}
