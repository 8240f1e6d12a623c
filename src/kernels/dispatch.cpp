// Run-time choice of the kernel variant: CPU feature detection (x86 CPUID + XCR0, Arm HWCAP),
// BITNET_ISA / select_isa(), and the process-wide table pointer.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "bitnet/error.hpp"
#include "kernels/variants.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace bitnet::kernels {
namespace {

struct CpuFeatures {
  bool avx2 = false;    // AVX2 + FMA + F16C, with YMM state saved by the OS
  bool avxvnni = false; // AVX2 and the VEX-encoded 256-bit vpdpbusd (AVX-VNNI)
  bool avx512 = false;  // AVX-512 F+BW+VL+VNNI, with ZMM state saved by the OS
  bool amx = false;     // AVX-512 and AMX-TILE+INT8, the tile state granted to this process
  bool neon = false;
  bool dotprod = false;
  std::string model;
};

#if defined(__x86_64__) || defined(_M_X64)
uint64_t read_xcr0() {
  uint32_t lo = 0;
  uint32_t hi = 0;
  // Raw xgetbv: the intrinsic would need -mxsave on this portable TU.
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

std::string x86_brand() {
  std::array<uint32_t, 12> regs{};
  unsigned max_ext = __get_cpuid_max(0x80000000u, nullptr);
  if (max_ext < 0x80000004u) return "x86-64";
  for (unsigned i = 0; i < 3; ++i)
    __get_cpuid(0x80000002u + i, &regs[i * 4], &regs[i * 4 + 1], &regs[i * 4 + 2],
                &regs[i * 4 + 3]);
  std::string brand(reinterpret_cast<const char*>(regs.data()), sizeof regs);
  brand.erase(brand.find_last_not_of(std::string_view("\0 ", 2)) + 1);
  brand.erase(0, brand.find_first_not_of(' '));
  return brand;
}

// The CPU as the OS names it: /proc/cpuinfo's first "model name", which llama-bench's cpu_info
// also reports. Virtual machines may show there a name other than CPUID's brand string, the
// fallback.
std::string x86_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    const auto start = colon == std::string::npos ? colon : line.find_first_not_of(' ', colon + 1);
    if (start != std::string::npos) return line.substr(start);
    break;
  }
  return x86_brand();
}

// Linux hands out the 8 KiB of tile state only to a process that asks for it
// (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); a tile instruction without it
// raises SIGILL.
bool tile_state_granted() {
#if defined(__linux__)
  constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  f.model = x86_model();
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12);
  const bool osxsave = c & (1u << 27);
  const bool avx = c & (1u << 28);
  const bool f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;   // XMM + YMM state
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6; // plus opmask, ZMM0-15 hi, ZMM16-31
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned max_subleaf = a;
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16);
  const bool avx512bw = b & (1u << 30);
  const bool avx512vl = b & (1u << 31);
  const bool avx512vnni = c & (1u << 11);
  const bool amx_tile = d & (1u << 24);
  const bool amx_int8 = d & (1u << 25);
  bool avx_vnni = false;
  if (max_subleaf >= 1) {
    __cpuid_count(7, 1, a, b, c, d);
    avx_vnni = a & (1u << 4);
  }
  f.avx2 = avx2 && fma && f16c && os_ymm;
  f.avxvnni = f.avx2 && avx_vnni;
  f.avx512 = f.avx2 && avx512f && avx512bw && avx512vl && avx512vnni && os_zmm;
  const bool os_tiles = (xcr0 & 0x60000) == 0x60000; // XTILECFG + XTILEDATA
  f.amx = f.avx512 && amx_tile && amx_int8 && os_tiles && tile_state_granted();
  return f;
}
#elif defined(__aarch64__)
CpuFeatures detect() {
  CpuFeatures f;
  f.model = "aarch64";
  f.neon = true; // Advanced SIMD is mandatory in Armv8-A
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f.dotprod = (hwcap & HWCAP_ASIMDDP) != 0;
#endif
  return f;
}
#else
CpuFeatures detect() {
  return CpuFeatures{.model = "unknown CPU"};
}
#endif

const CpuFeatures& features() {
  static const CpuFeatures f = detect();
  return f;
}

// Best last within each architecture: dispatch prefers avx512 to avxvnni when a CPU has both,
// and amx to avx512.
constexpr std::array kAllIsas{Isa::scalar, Isa::avx2, Isa::avxvnni,     Isa::avx512,
                              Isa::amx,    Isa::neon, Isa::neon_dotprod};

bool compiled(Isa isa) {
  switch (isa) {
  case Isa::scalar:
    return true;
#if defined(__x86_64__) || defined(_M_X64)
  case Isa::avx2:
  case Isa::avxvnni:
  case Isa::avx512:
  case Isa::amx:
    return true;
#elif defined(__aarch64__)
  case Isa::neon:
  case Isa::neon_dotprod:
    return true;
#endif
  default:
    return false;
  }
}

bool supported(Isa isa) {
  const CpuFeatures& f = features();
  switch (isa) {
  case Isa::scalar:
    return true;
  case Isa::avx2:
    return f.avx2;
  case Isa::avxvnni:
    return f.avxvnni;
  case Isa::avx512:
    return f.avx512;
  case Isa::amx:
    return f.amx;
  case Isa::neon:
    return f.neon;
  case Isa::neon_dotprod:
    return f.neon && f.dotprod;
  }
  return false;
}

std::string isa_list(const std::vector<Isa>& isas) {
  std::vector<const char*> names;
  for (Isa isa : isas)
    names.push_back(to_string(isa));
  return fmt::format("{}", fmt::join(names, ", "));
}

bool available(Isa isa) {
  return compiled(isa) && supported(isa);
}

[[noreturn]] void throw_unavailable(std::string_view name) {
  throw Error(ErrorKind::invalid_argument,
              fmt::format("ISA '{}' is not available on this CPU (available: {})", name,
                          isa_list(available_isas())));
}

Isa parse_available(std::string_view name) {
  for (Isa isa : kAllIsas) {
    if (name != to_string(isa)) continue;
    if (available(isa)) return isa;
    throw_unavailable(name);
  }
  throw Error(ErrorKind::invalid_argument,
              fmt::format("unknown ISA '{}' (available on this CPU: {})", name,
                          isa_list(available_isas())));
}

std::mutex g_select_mutex;
std::atomic<const Table*> g_table{nullptr};

void install(Isa isa, const char* why) {
  const Table& t = table_for(isa);
  g_table.store(&t, std::memory_order_release);
  spdlog::info("kernels: {} ({}; CPU: {})", to_string(isa), why, cpu_description());
}

} // namespace

const char* to_string(Isa isa) noexcept {
  switch (isa) {
  case Isa::scalar:
    return "scalar";
  case Isa::avx2:
    return "avx2";
  case Isa::avxvnni:
    return "avxvnni";
  case Isa::avx512:
    return "avx512";
  case Isa::amx:
    return "amx";
  case Isa::neon:
    return "neon";
  case Isa::neon_dotprod:
    return "neon_dotprod";
  }
  return "unknown";
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (compiled(isa)) out.push_back(isa);
  return out;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (available(isa)) out.push_back(isa);
  return out;
}

const Table& table_for(Isa isa) {
  if (!available(isa)) throw_unavailable(to_string(isa));
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
  case Isa::avx2:
    return table_avx2();
  case Isa::avxvnni:
    return table_avxvnni();
  case Isa::avx512:
    return table_avx512();
  case Isa::amx:
    return table_amx();
#elif defined(__aarch64__)
  case Isa::neon:
    return table_neon();
  case Isa::neon_dotprod:
    return table_neon_dotprod();
#endif
  default:
    return table_scalar();
  }
}

const Table& table() {
  if (const Table* t = g_table.load(std::memory_order_acquire)) return *t;
  std::lock_guard lock(g_select_mutex);
  if (const Table* t = g_table.load(std::memory_order_acquire)) return *t;
  const char* env = std::getenv("BITNET_ISA");
  install(isa_for_environment(env), env != nullptr && *env != '\0' ? "forced by BITNET_ISA"
                                                                   : "best for this CPU");
  return *g_table.load(std::memory_order_acquire);
}

Isa isa_for_environment(const char* bitnet_isa) {
  if (bitnet_isa != nullptr && *bitnet_isa != '\0') return parse_available(bitnet_isa);
  return available_isas().back();
}

void select_isa(std::string_view name) {
  const Isa isa = parse_available(name);
  std::lock_guard lock(g_select_mutex);
  install(isa, "forced");
}

std::string cpu_description() {
  const CpuFeatures& f = features();
  std::vector<const char*> feats;
  if (f.avx2) feats.push_back("avx2+fma+f16c");
  if (f.avxvnni) feats.push_back("avx_vnni");
  if (f.avx512) feats.push_back("avx512f+bw+vl+vnni");
  if (f.amx) feats.push_back("amx-tile+int8");
  if (f.neon) feats.push_back("neon");
  if (f.dotprod) feats.push_back("dotprod");
  if (feats.empty()) return f.model;
  return fmt::format("{} [{}]", f.model, fmt::join(feats, " "));
}

} // namespace bitnet::kernels
