/* Which object defines each malloc-family symbol, and the allocator's own
   answer to "who are you" and "do you own this block". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static const char *object_of(const char *name) {
  void *sym = dlsym(RTLD_DEFAULT, name);
  Dl_info info;
  if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
    return "(none)";
  return info.dli_fname;
}

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef int (*mi_version_fn)(void);
typedef _Bool (*mi_owns_fn)(const void *);
typedef const char *(*sn_version_fn)(void);
typedef void *(*sn_end_fn)(void *);

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) printf("symbol %s %s\n", argv[i], object_of(argv[i]));

  void *block = malloc(100);
  mallctl_fn mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
  if (mallctl != NULL) {
    const char *version = NULL;
    size_t len = sizeof(version);
    if (mallctl("version", &version, &len, NULL, 0) == 0)
      printf("jemalloc %s\n", version);
    unsigned arena;
    len = sizeof(arena);
    printf("owns %d\n", mallctl("arenas.lookup", &arena, &len, &block, sizeof(block)) == 0);
  }
  mi_version_fn mi_version = (mi_version_fn)dlsym(RTLD_DEFAULT, "mi_version");
  mi_owns_fn mi_owns = (mi_owns_fn)dlsym(RTLD_DEFAULT, "mi_is_in_heap_region");
  if (mi_version != NULL && mi_owns != NULL) {
    printf("mimalloc %d\n", mi_version());
    printf("owns %d\n", (int)mi_owns(block));
  }
  /* snmalloc has no version call: allocbench's library exports one. */
  sn_version_fn sn_version = (sn_version_fn)dlsym(RTLD_DEFAULT, "allocbench_snmalloc_version");
  sn_end_fn sn_end = (sn_end_fn)dlsym(RTLD_DEFAULT, "__malloc_end_pointer");
  if (sn_version != NULL && sn_end != NULL) {
    printf("snmalloc %s\n", sn_version());
    char *end = sn_end(block);
    printf("owns %d\n", end >= (char *)block + 100 && end <= (char *)block + 4096);
  }
  free(block);
  return 0;
}
