// C++ operator new and delete reach the preloaded allocator: libstdc++
// implements them with malloc, free and aligned_alloc.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef bool (*mi_owns_fn)(const void *);
typedef void *(*sn_end_fn)(void *);

// The allocator's own answer to "is this your block?".
static bool owned(void *p) {
  if (auto mallctl = reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl"))) {
    unsigned arena;
    size_t len = sizeof(arena);
    return mallctl("arenas.lookup", &arena, &len, &p, sizeof(p)) == 0;
  }
  if (auto owns = reinterpret_cast<mi_owns_fn>(dlsym(RTLD_DEFAULT, "mi_is_in_heap_region")))
    return owns(p);
  // snmalloc: the end of the block that holds p, which only its page map
  // knows (0 for memory it does not own).
  if (auto end = reinterpret_cast<sn_end_fn>(dlsym(RTLD_DEFAULT, "__malloc_end_pointer")))
    return reinterpret_cast<char *>(end(p)) > static_cast<char *>(p);
  return false;
}

#define CHECK(cond)                                            \
  do {                                                         \
    if (!(cond)) {                                             \
      std::printf("FAILED line %d: %s\n", __LINE__, #cond);    \
      return 1;                                                \
    }                                                          \
  } while (0)

struct alignas(256) Wide {
  char bytes[256];
};

int main() {
  int *one = new int(42);
  CHECK(owned(one) && *one == 42);
  delete one;

  auto *many = new long[1000]();
  CHECK(owned(many) && many[999] == 0);
  delete[] many;

  auto *wide = new Wide[3];
  CHECK(owned(wide) && reinterpret_cast<uintptr_t>(wide) % 256 == 0);
  delete[] wide;

  std::vector<std::string> words;
  for (int i = 0; i < 10000; i++) words.push_back(std::string(i % 100 + 20, 'x'));
  CHECK(owned(words.data()) && owned(words.back().data()));
  std::map<int, std::unique_ptr<std::vector<int>>> tree;
  for (int i = 0; i < 1000; i++) tree[i] = std::make_unique<std::vector<int>>(i, i);
  CHECK(tree[999]->size() == 999 && (*tree[999])[998] == 999);

  std::puts("OK");
  return 0;
}
