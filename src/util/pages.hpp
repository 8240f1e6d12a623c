// Large zero-filled buffers on transparent huge pages.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitnet {

// `bytes` of anonymous memory that reads as zeros, each page backed only once written (an
// unused tail costs no memory). It is aligned to kHugePage and advised as huge pages
// (MADV_HUGEPAGE: Debian's default THP mode serves only advised ranges), so reading it costs
// one TLB entry per 2 MiB instead of per 4 KiB: decode at depth 2048 reads 157 MB of KV cache
// in rows of a few KiB spread over all of it. Where THP is on, memory is backed 2 MiB at a
// time. Throws std::bad_alloc when the mapping fails. Move-only.
class ZeroedPages {
public:
  static constexpr size_t kHugePage = size_t{2} << 20;

  ZeroedPages() = default;
  explicit ZeroedPages(uint64_t bytes);
  ZeroedPages(ZeroedPages&& o) noexcept;
  ZeroedPages& operator=(ZeroedPages&& o) noexcept;
  ZeroedPages(const ZeroedPages&) = delete;
  ZeroedPages& operator=(const ZeroedPages&) = delete;
  ~ZeroedPages();

  void* data() const { return p_; }
  // Backs every page now (MADV_POPULATE_WRITE; a write per page where the kernel lacks it), so
  // that first use pays no page faults. On a VM, memory the host has never backed can take
  // seconds (1.26 GB: 9.8 s the first time, 0.1-0.4 s later): a server backs its slots' caches
  // at start, as llama.cpp clears its cache when it makes a context.
  void populate();

private:
  void* p_ = nullptr;
  size_t len_ = 0; // of the mapping: bytes rounded up to kHugePage
};

} // namespace bitnet
