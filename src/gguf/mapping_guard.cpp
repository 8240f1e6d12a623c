#include "gguf/mapping_guard.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "bitnet/error.hpp"

namespace bitnet::gguf {
namespace {

// The handler only reads these (atomics and a message written before its range is
// published), so it stays async-signal-safe.
struct Slot {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  char message[512];
  std::size_t length = 0;
  bool used = false; // guarded by g_mutex
};

constexpr int kSlots = 64;
Slot g_slots[kSlots];
std::mutex g_mutex;
struct sigaction g_previous {};
int g_exit_code = 4;

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (const Slot& s : g_slots) {
    const uintptr_t begin = s.begin.load(std::memory_order_acquire);
    if (begin != 0 && addr >= begin && addr < s.end.load(std::memory_order_acquire)) {
      const ssize_t ignored = ::write(STDERR_FILENO, s.message, s.length);
      (void)ignored;
      ::_exit(g_exit_code);
    }
  }
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) {
    g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  } else {
    ::signal(SIGBUS, SIG_DFL); // the default action: return and fault again
  }
}

void install_once() {
  static const bool installed = [] {
    g_exit_code = exit_code(ErrorKind::format);
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return ::sigaction(SIGBUS, &sa, &g_previous) == 0;
  }();
  (void)installed;
}

} // namespace

MappingGuard::MappingGuard(const void* begin, std::size_t size, const std::string& path) {
  if (begin == nullptr || size == 0) return;
  install_once();
  std::lock_guard lock(g_mutex);
  for (int i = 0; i < kSlots; ++i) {
    Slot& s = g_slots[i];
    if (s.used) continue;
    const std::string line = fmt::format(
        "bitnet: error: {}: the file changed or was truncated while in use (bus error reading "
        "it)\n",
        path);
    s.length = std::min(line.size(), sizeof s.message);
    std::memcpy(s.message, line.data(), s.length);
    s.message[s.length - 1] = '\n';
    s.used = true;
    s.end.store(reinterpret_cast<uintptr_t>(begin) + size, std::memory_order_release);
    s.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    slot_ = i;
    return;
  }
}

MappingGuard::~MappingGuard() {
  if (slot_ < 0) return;
  std::lock_guard lock(g_mutex);
  Slot& s = g_slots[slot_];
  s.begin.store(0, std::memory_order_release);
  s.end.store(0, std::memory_order_release);
  s.used = false;
}

MappingGuard::MappingGuard(MappingGuard&& other) noexcept : slot_(std::exchange(other.slot_, -1)) {}

MappingGuard& MappingGuard::operator=(MappingGuard&& other) noexcept {
  std::swap(slot_, other.slot_);
  return *this;
}

} // namespace bitnet::gguf
