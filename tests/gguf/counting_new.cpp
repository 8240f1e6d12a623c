// A global operator new/delete that counts the bytes allocated (test_memory.cpp).
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {

std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};

void count(void* p, int64_t sign) {
  const int64_t live = g_live.fetch_add(sign * static_cast<int64_t>(malloc_usable_size(p))) +
                       sign * static_cast<int64_t>(malloc_usable_size(p));
  int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
}

} // namespace

int64_t allocated_bytes() {
  return g_live.load();
}
void reset_peak() {
  g_peak = g_live.load();
}
int64_t peak_bytes() {
  return g_peak.load();
}

void* operator new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (!p) throw std::bad_alloc();
  count(p, 1);
  return p;
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  if (!p) return;
  count(p, -1);
  std::free(p);
}
void operator delete[](void* p) noexcept {
  operator delete(p);
}
void operator delete(void* p, std::size_t) noexcept {
  operator delete(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  operator delete(p);
}
