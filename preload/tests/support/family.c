/* The malloc family keeps its C (glibc) semantics. Prints OK, or the first
   failed check and exits 1. Sizes are volatile so that the compiler cannot
   fold or warn about the overflow cases. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (!(cond)) {                                                        \
      printf("FAILED line %d: %s (errno %d)\n", __LINE__, #cond, errno); \
      exit(1);                                                            \
    }                                                                     \
  } while (0)

static volatile size_t huge = SIZE_MAX;
static volatile size_t half = SIZE_MAX / 2 + 1;
static volatile size_t two = 2;

static int aligned(const void *p, size_t a) { return ((uintptr_t)p % a) == 0; }

static int all(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

int main(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);

  /* malloc, free, malloc_usable_size */
  unsigned char *p = malloc(100);
  CHECK(p != NULL && aligned(p, 16));
  CHECK(malloc_usable_size(p) >= 100);
  memset(p, 0xab, 100);
  free(p);
  free(NULL);
  CHECK(malloc_usable_size(NULL) == 0);
  p = malloc(0);
  CHECK(p != NULL);
  free(p);
  errno = 0;
  CHECK(malloc(huge) == NULL && errno == ENOMEM);

  /* calloc zeroes, also memory that was dirty before; overflow fails */
  p = malloc(1 << 20);
  CHECK(p != NULL);
  memset(p, 0xff, 1 << 20);
  free(p);
  p = calloc(1 << 10, 1 << 10);
  CHECK(p != NULL && all(p, 1 << 20, 0));
  free(p);
  p = calloc(100, 3);
  CHECK(p != NULL && all(p, 300, 0));
  free(p);
  errno = 0;
  CHECK(calloc(half, two) == NULL && errno == ENOMEM);

  /* realloc keeps contents, NULL is malloc, failure leaves the block */
  p = realloc(NULL, 64);
  CHECK(p != NULL && malloc_usable_size(p) >= 64);
  for (int i = 0; i < 64; i++) p[i] = (unsigned char)i;
  p = realloc(p, 100000);
  CHECK(p != NULL);
  for (int i = 0; i < 64; i++) CHECK(p[i] == (unsigned char)i);
  p = realloc(p, 10);
  CHECK(p != NULL);
  for (int i = 0; i < 10; i++) CHECK(p[i] == (unsigned char)i);
  errno = 0;
  CHECK(realloc(p, huge) == NULL && errno == ENOMEM);
  for (int i = 0; i < 10; i++) CHECK(p[i] == (unsigned char)i);
  CHECK(realloc(p, 0) == NULL); /* glibc: frees p */

  /* reallocarray */
  p = reallocarray(NULL, 10, 10);
  CHECK(p != NULL && malloc_usable_size(p) >= 100);
  memset(p, 7, 100);
  p = reallocarray(p, 1000, 10);
  CHECK(p != NULL && all(p, 100, 7));
  errno = 0;
  CHECK(reallocarray(p, half, two) == NULL && errno == ENOMEM);
  CHECK(all(p, 100, 7));
  free(p);

  /* posix_memalign */
  for (size_t a = sizeof(void *); a <= ((size_t)1 << 21); a <<= 1) {
    void *q = NULL;
    CHECK(posix_memalign(&q, a, 100) == 0 && q != NULL && aligned(q, a));
    memset(q, 1, 100);
    free(q);
  }
  void *sentinel = &page, *q = sentinel;
  CHECK(posix_memalign(&q, 0, 8) == EINVAL && q == sentinel);
  CHECK(posix_memalign(&q, 3 * sizeof(void *), 8) == EINVAL && q == sentinel);
  CHECK(posix_memalign(&q, sizeof(void *) / 2, 8) == EINVAL && q == sentinel);
  CHECK(posix_memalign(&q, 4096 + 8, 8) == EINVAL && q == sentinel);
  CHECK(posix_memalign(&q, 64, huge) == ENOMEM && q == sentinel);
  CHECK(posix_memalign(&q, 64, 0) == 0);
  free(q);

  /* aligned_alloc: power-of-two alignments, any size */
  q = aligned_alloc(64, 100);
  CHECK(q != NULL && aligned(q, 64));
  free(q);
  q = aligned_alloc(1, 3);
  CHECK(q != NULL);
  free(q);
  q = aligned_alloc(65536, 65536);
  CHECK(q != NULL && aligned(q, 65536));
  free(q);
  errno = 0;
  CHECK(aligned_alloc(48, 96) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(aligned_alloc(0, 8) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(aligned_alloc(64, huge) == NULL && errno == ENOMEM);

  /* memalign rounds an alignment up to a power of two, as glibc does */
  q = memalign(4096, 10);
  CHECK(q != NULL && aligned(q, 4096));
  free(q);
  q = memalign(48, 10);
  CHECK(q != NULL && aligned(q, 64));
  free(q);
  q = memalign(0, 10);
  CHECK(q != NULL);
  free(q);
  errno = 0;
  CHECK(memalign(half + 1, 8) == NULL && errno == EINVAL);

  /* valloc and pvalloc align to the page; pvalloc rounds the size up */
  q = valloc(10);
  CHECK(q != NULL && aligned(q, page));
  free(q);
  q = pvalloc(1);
  CHECK(q != NULL && aligned(q, page) && malloc_usable_size(q) >= page);
  memset(q, 1, page);
  free(q);
  q = pvalloc(page + 1);
  CHECK(q != NULL && aligned(q, page) && malloc_usable_size(q) >= 2 * page);
  free(q);
  errno = 0;
  CHECK(pvalloc(huge - 10) == NULL && errno == ENOMEM);

  /* glibc's own allocations (strdup, stdio buffers) come from the same
     allocator: its malloc_usable_size and free accept them */
  char *s = strdup("allocbench");
  CHECK(s != NULL && malloc_usable_size(s) >= 11);
  free(s);
  char *line = NULL;
  size_t cap = 0;
  FILE *f = fmemopen("one line\n", 9, "r");
  CHECK(f != NULL && getline(&line, &cap, f) == 9);
  CHECK(malloc_usable_size(line) >= cap);
  free(line);
  fclose(f);

  /* many sizes at once, every byte checked */
  enum { N = 4000 };
  static unsigned char *blocks[N];
  for (size_t i = 0; i < N; i++) {
    size_t n = 1 + (i * 7919) % 20000;
    blocks[i] = malloc(n);
    CHECK(blocks[i] != NULL);
    memset(blocks[i], (int)(i & 0xff), n);
  }
  for (size_t i = 0; i < N; i += 2) {
    free(blocks[i]);
    blocks[i] = NULL;
  }
  for (size_t i = 1; i < N; i += 2)
    CHECK(all(blocks[i], 1 + (i * 7919) % 20000, (unsigned char)(i & 0xff)));
  for (size_t i = 1; i < N; i += 2) free(blocks[i]);

  puts("OK");
  return 0;
}
