#include "util/pages.hpp"

#include <cerrno>
#include <new>
#include <utility>

#include <sys/mman.h>

namespace bitnet {

namespace {

size_t mapped_length(size_t bytes) {
  return (bytes + kHugePage - 1) / kHugePage * kHugePage;
}

} // namespace

void* map_huge(size_t bytes) {
  const size_t len = mapped_length(bytes);
  // Mapped one huge page longer, then trimmed to the aligned part: every boundary is a
  // multiple of kHugePage, so of any base page size.
  void* raw =
      mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  char* const at = static_cast<char*>(raw);
  const auto base = reinterpret_cast<uintptr_t>(at);
  char* const p = at + ((base + kHugePage - 1) / kHugePage * kHugePage - base);
  if (p > at) munmap(at, static_cast<size_t>(p - at));
  munmap(p + len, static_cast<size_t>(at + kHugePage - p));
  madvise(p, len, MADV_HUGEPAGE); // advice only: without THP the pages stay small
  return p;
}

void unmap_huge(void* p, size_t bytes) noexcept {
  munmap(p, mapped_length(bytes));
}

ZeroedPages::ZeroedPages(uint64_t bytes) {
  if (bytes == 0) return;
  p_ = map_huge(static_cast<size_t>(bytes));
  len_ = mapped_length(static_cast<size_t>(bytes));
}

ZeroedPages::ZeroedPages(ZeroedPages&& o) noexcept
    : p_(std::exchange(o.p_, nullptr)), len_(std::exchange(o.len_, 0)) {}

ZeroedPages& ZeroedPages::operator=(ZeroedPages&& o) noexcept {
  ZeroedPages old(std::move(*this));
  p_ = std::exchange(o.p_, nullptr);
  len_ = std::exchange(o.len_, 0);
  return *this;
}

void ZeroedPages::populate() {
  // EINVAL: a kernel before 5.14. Any other failure (ENOMEM) leaves the pages to be backed as
  // they are first written, as without populate().
  if (!p_ || madvise(p_, len_, MADV_POPULATE_WRITE) == 0 || errno != EINVAL) return;
  volatile char* const p = static_cast<char*>(p_); // zeros stay zeros
  for (size_t i = 0; i < len_; i += 4096)
    p[i] = 0;
}

ZeroedPages::~ZeroedPages() {
  if (p_) munmap(p_, len_);
}

} // namespace bitnet
