// Large zero-filled buffers on transparent huge pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace bitnet {

inline constexpr size_t kHugePage = size_t{2} << 20;

// `bytes` (> 0) of zero-filled anonymous memory aligned to kHugePage and advised as huge pages,
// the mapping's length rounded up to kHugePage; throws std::bad_alloc. unmap_huge(p, bytes)
// with the same bytes unmaps it.
void* map_huge(size_t bytes);
void unmap_huge(void* p, size_t bytes) noexcept;

// `bytes` of anonymous memory that reads as zeros, each page backed only once written (an
// unused tail costs no memory). It is aligned to kHugePage and advised as huge pages
// (MADV_HUGEPAGE: Debian's default THP mode serves only advised ranges), so reading it costs
// one TLB entry per 2 MiB instead of per 4 KiB: decode at depth 2048 reads 157 MB of KV cache
// in rows of a few KiB spread over all of it. Where THP is on, memory is backed 2 MiB at a
// time. Throws std::bad_alloc when the mapping fails. Move-only.
class ZeroedPages {
public:
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

// The allocator of the forward pass's scratch vectors. Buffers from 1 MiB (a prefill batch's
// activations, the attention's key tiles and score rows, a batched head step's bounds) are
// mapped on huge pages (map_huge), as ZeroedPages: every layer streams them, and on 4 KiB pages
// pp512 ran 1.03-1.08x and pp2048 1.04-1.08x slower (2-vCPU VM, alternated). Smaller ones are
// aligned to 64 bytes: the dots' 32- and 64-byte loads of queries and probabilities then never
// straddle two cache lines (decode attention from cache took ≈12% longer on AVX2 with malloc's
// 16-byte alignment).
template <class T> struct ScratchAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  static constexpr size_t kMapped = size_t{1} << 20;
  ScratchAllocator() = default;
  template <class U> ScratchAllocator(const ScratchAllocator<U>&) {}
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    return static_cast<T*>(bytes >= kMapped ? map_huge(bytes) : ::operator new(bytes, kAlign));
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) >= kMapped)
      unmap_huge(p, n * sizeof(T));
    else
      ::operator delete(p, kAlign);
  }
  bool operator==(const ScratchAllocator&) const = default;
};

template <class T> using ScratchVector = std::vector<T, ScratchAllocator<T>>;

} // namespace bitnet
