/* jemalloc's arena count, as allocbench reads it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

int main(void) {
  mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
  if (mallctl == NULL) return 1;
  free(malloc(1)); /* initialise jemalloc */
  unsigned narenas = 0;
  size_t len = sizeof(narenas);
  if (mallctl("arenas.narenas", &narenas, &len, NULL, 0) != 0) return 1;
  printf("%u\n", narenas);
  return 0;
}
