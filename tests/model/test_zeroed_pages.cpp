// ZeroedPages (util/pages.hpp), the KV cache's memory, and ScratchAllocator's large buffers:
// zero-filled, aligned to and advised as transparent huge pages, unmapped when released.
// Expected values come from the kernel: /proc/self/smaps names the advice (VmFlags "hg"), msync
// fails with ENOMEM on unmapped pages, mincore reports which pages are backed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "util/pages.hpp"

namespace bitnet {
namespace {

bool mapped(const void* p) {
  errno = 0;
  return msync(const_cast<void*>(p), 1, MS_ASYNC) == 0 || errno != ENOMEM;
}

// The VmFlags line of the mapping that holds p, from /proc/self/smaps.
std::string vm_flags(const void* p) {
  const auto at = reinterpret_cast<uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' '))
      inside = lo <= at && at < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      return line;
  }
  return {};
}

TEST(ZeroedPages, ZeroFilledAlignedAdvisedAndWritableOverTheirWholeLength) {
  for (uint64_t bytes : {uint64_t{1}, uint64_t{4095}, uint64_t{4097}, uint64_t{2 << 20} - 1,
                         uint64_t{2 << 20}, uint64_t{2 << 20} + 1, uint64_t{5'000'000}}) {
    ZeroedPages pages(bytes);
    auto* p = static_cast<unsigned char*>(pages.data());
    ASSERT_NE(p, nullptr) << bytes;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePage, 0u) << bytes;
    for (uint64_t i = 0; i < bytes; ++i)
      ASSERT_EQ(p[i], 0) << bytes << " bytes, byte " << i;
    std::memset(p, 0xA5, bytes);
    EXPECT_EQ(p[bytes - 1], 0xA5) << bytes;
    EXPECT_NE(vm_flags(p).find(" hg"), std::string::npos)
        << bytes << " bytes: not advised as huge pages: " << vm_flags(p);
  }
}

// populate() backs every page at once (mincore: the kernel's residency of each page) and the
// memory still reads as zeros.
TEST(ZeroedPages, PopulateBacksEveryPage) {
  const uint64_t bytes = 5'000'000;
  ZeroedPages pages(bytes);
  const size_t page = 4096, len = (bytes + page - 1) / page * page;
  std::vector<unsigned char> resident(len / page);
  ASSERT_EQ(mincore(pages.data(), len, resident.data()), 0);
  EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; }),
            0);
  pages.populate();
  ASSERT_EQ(mincore(pages.data(), len, resident.data()), 0);
  EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; }),
            static_cast<std::ptrdiff_t>(resident.size()));
  const auto* p = static_cast<const unsigned char*>(pages.data());
  for (uint64_t i = 0; i < bytes; ++i)
    ASSERT_EQ(p[i], 0) << "byte " << i;
}

TEST(ZeroedPages, MovesOwnershipAndUnmapsOnRelease) {
  ZeroedPages a(3 << 20);
  void* const p = a.data();
  static_cast<char*>(p)[100] = 7;
  ZeroedPages b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(static_cast<char*>(b.data())[100], 7);
  b = ZeroedPages(4096); // the old mapping goes
  EXPECT_FALSE(mapped(p));
  void* const q = b.data();
  EXPECT_TRUE(mapped(q));
  { ZeroedPages gone(std::move(b)); }
  EXPECT_FALSE(mapped(q));
}

// ScratchAllocator: from 1 MiB a vector's buffer is a huge-page mapping (aligned, advised,
// unmapped when the vector lets it go); below, a 64-byte aligned heap block.
TEST(ScratchAllocator, MapsLargeBuffersOnHugePagesAndAlignsSmallOnesToCacheLines) {
  for (size_t n :
       {size_t{1}, size_t{1000}, (size_t{1} << 18) - 1, size_t{1} << 18, size_t{3'000'000}}) {
    ScratchVector<float> v(n, 1.5f);
    const bool large = n * sizeof(float) >= (size_t{1} << 20);
    const auto at = reinterpret_cast<uintptr_t>(v.data());
    EXPECT_EQ(at % 64, 0u) << n;
    EXPECT_EQ(v[n - 1], 1.5f) << n;
    if (large) {
      EXPECT_EQ(at % kHugePage, 0u) << n;
      EXPECT_NE(vm_flags(v.data()).find(" hg"), std::string::npos)
          << n << " floats: not advised as huge pages: " << vm_flags(v.data());
      const void* const p = v.data();
      v = ScratchVector<float>();
      EXPECT_FALSE(mapped(p)) << n;
    }
  }
}

} // namespace
} // namespace bitnet
