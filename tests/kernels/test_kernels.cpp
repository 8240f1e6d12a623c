// Every kernel variant the host can run against the scalar reference: integer-derived
// outputs (I2_S, Q8_0, conversions, quantization) bit-identical, float ops within a stated
// relative tolerance. Tests iterate over available_isas(), so the same binary checks NEON
// variants under qemu.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bitnet/error.hpp"
#include "kernels/kernels.hpp"
#include "kernels/variants.hpp"
#include "util/fp16.hpp"
#include "util/pages.hpp"

namespace bitnet::kernels {

#if defined(__x86_64__)
// tests/kernels/CMakeLists.txt compiles kernels_avxvnni.cpp a second time with AVX-512 VL+VNNI
// flags instead of -mavxvnni and its table renamed to this: the same vpdpbusd on ymm
// registers, EVEX-encoded, which every AVX-512 VNNI CPU runs. A CPU without AVX-VNNI checks
// the avxvnni gemm through it.
const Table& table_avxvnni_evex();
#endif

namespace {

constexpr int64_t kQ8Bytes = 34;

// Variants to compare against scalar (scalar itself included: it must equal the
// independent implementations below). Also checks that listed ISAs are really usable.
std::vector<Isa> isas_under_test() {
  return available_isas();
}

std::string isa_name(Isa isa) {
  return to_string(isa);
}

constexpr Isa kEveryIsa[] = {Isa::scalar, Isa::avx2, Isa::avxvnni,     Isa::avx512,
                             Isa::amx,    Isa::neon, Isa::neon_dotprod};

bool is_available(Isa isa) {
  const auto avail = available_isas();
  return std::find(avail.begin(), avail.end(), isa) != avail.end();
}

// The tables the gemm tests check: every available variant, plus the EVEX build of avxvnni
// where the CPU lacks AVX-VNNI but has AVX-512 VNNI.
std::vector<std::pair<std::string, const Table*>> gemm_tables() {
  std::vector<std::pair<std::string, const Table*>> out;
  for (Isa isa : isas_under_test())
    out.emplace_back(isa_name(isa), &table_for(isa));
#if defined(__x86_64__)
  if (!is_available(Isa::avxvnni) && is_available(Isa::avx512))
    out.emplace_back("avxvnni (EVEX-encoded build)", &table_avxvnni_evex());
#endif
  return out;
}

// The /proc/cpuinfo flag a variant needs, for skip messages.
const char* cpu_flag(Isa isa) {
  switch (isa) {
  case Isa::avxvnni:
    return "avx_vnni";
  case Isa::avx512:
    return "avx512_vnni";
  case Isa::amx:
    return "amx_int8";
  case Isa::neon:
    return "asimd";
  case Isa::neon_dotprod:
    return "asimddp";
  default:
    return to_string(isa);
  }
}

// Packs ternary values (-1, 0, +1) row by row into the I2_S layout of docs/gguf-format.md §3.
std::vector<uint8_t> pack_i2s(const std::vector<int8_t>& ternary, int64_t rows, int64_t k) {
  std::vector<uint8_t> packed(static_cast<size_t>(rows * k / 4), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < k; ++j) {
      const int64_t flat = r * k + j;
      const int64_t block = flat / 128;
      const int64_t in_block = flat % 128;
      const uint8_t code = static_cast<uint8_t>(ternary[static_cast<size_t>(flat)] + 1);
      packed[static_cast<size_t>(block * 32 + in_block % 32)] |=
          static_cast<uint8_t>(code << (6 - 2 * (in_block / 32)));
    }
  }
  return packed;
}

std::vector<int8_t> random_ternary(std::mt19937& rng, int64_t n) {
  std::uniform_int_distribution<int> d(-1, 1);
  std::vector<int8_t> v(static_cast<size_t>(n));
  for (auto& x : v)
    x = static_cast<int8_t>(d(rng));
  return v;
}

std::vector<int8_t> random_q(std::mt19937& rng, int64_t n, int lo = -127, int hi = 127) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<int8_t> v(static_cast<size_t>(n));
  for (auto& x : v)
    x = static_cast<int8_t>(d(rng));
  return v;
}

std::vector<float> random_floats(std::mt19937& rng, int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v)
    x = d(rng);
  return v;
}

// The straightforward formula for Σ w·q with w the ternary values, computed independently
// of any kernel, and the bitnet.cpp rescale applied to Σ code·q = Σ w·q + Σ q.
float expected_i2s(const std::vector<int8_t>& ternary, int64_t k, int64_t r, const int8_t* q,
                   float act_scale, float w_scale) {
  int64_t sum_wq = 0;
  int64_t sum_q = 0;
  for (int64_t j = 0; j < k; ++j) {
    sum_wq += ternary[static_cast<size_t>(r * k + j)] * q[j];
    sum_q += q[j];
  }
  const auto sumi = static_cast<int32_t>(sum_wq + sum_q);
  return (static_cast<float>(sumi) - static_cast<float>(sum_q)) / act_scale * w_scale;
}

void expect_bits_eq(float a, float b, const std::string& what) {
  EXPECT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b))
      << what << ": " << a << " vs " << b;
}

void expect_near_rel(float got, float want, float rel, float abs_floor, const std::string& what) {
  EXPECT_LE(std::fabs(got - want), rel * std::fabs(want) + abs_floor)
      << what << ": got " << got << " want " << want;
}

TEST(KernelDispatch, ScalarIsAlwaysAvailableAndListsAreConsistent) {
  const auto avail = available_isas();
  const auto compiled = compiled_isas();
  ASSERT_FALSE(avail.empty());
  EXPECT_EQ(avail.front(), Isa::scalar);
  for (Isa isa : avail) {
    EXPECT_NE(std::find(compiled.begin(), compiled.end(), isa), compiled.end()) << isa_name(isa);
    EXPECT_EQ(table_for(isa).isa, isa);
  }
  // The best variant is chosen by default: AMX before AVX-512 before AVX-VNNI.
  if (is_available(Isa::amx)) {
    EXPECT_EQ(avail.back(), Isa::amx);
  } else if (is_available(Isa::avx512)) {
    EXPECT_EQ(avail.back(), Isa::avx512);
  } else if (is_available(Isa::avxvnni)) {
    EXPECT_EQ(avail.back(), Isa::avxvnni);
  }
  EXPECT_FALSE(cpu_description().empty());
}

TEST(KernelDispatch, UnknownAndUnavailableIsasAreClearErrors) {
  try {
    select_isa("sse9");
    FAIL() << "unknown ISA accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("sse9"), std::string::npos) << e.what();
  }
  for (Isa isa : kEveryIsa) {
    if (is_available(isa)) continue;
    try {
      table_for(isa);
      FAIL() << "unavailable ISA " << isa_name(isa) << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_argument);
      const std::string msg = e.what();
      EXPECT_NE(msg.find("is not available on this CPU"), std::string::npos) << msg;
      EXPECT_NE(msg.find("scalar"), std::string::npos) << msg;
    }
  }
}

// BITNET_ISA is read once, when the table is first chosen; the choice itself is
// isa_for_environment(), checked here for every value without a child process (fork-based
// death tests deadlock under qemu-user). tests/cli checks that the binary honours the variable.
TEST(KernelDispatch, BitnetIsaEnvironmentForcesTheVariant) {
  for (Isa isa : isas_under_test())
    EXPECT_EQ(isa_for_environment(to_string(isa)), isa) << isa_name(isa);
  EXPECT_EQ(isa_for_environment(nullptr), available_isas().back());
  EXPECT_EQ(isa_for_environment(""), available_isas().back());
  const auto expect_refused = [](const char* value, const char* why) {
    try {
      isa_for_environment(value);
      ADD_FAILURE() << value << ": " << why;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::invalid_argument) << value;
      EXPECT_NE(std::string(e.what()).find(value), std::string::npos) << e.what();
    }
  };
  expect_refused("avx9000", "an unknown name must be refused");
  for (Isa isa : kEveryIsa)
    if (!is_available(isa))
      expect_refused(to_string(isa), "forcing a variant this CPU lacks must fail");
}

TEST(KernelDispatch, SelectIsaSwitchesTheTable) {
  for (Isa isa : isas_under_test()) {
    select_isa(isa_name(isa));
    EXPECT_EQ(table().isa, isa);
  }
}

// CPUID/XCR0 detection against the kernel's own view in /proc/cpuinfo (Linux lists a flag
// only when the OS also enables its register state).
TEST(KernelDispatch, DetectionAgreesWithProcCpuinfo) {
  const auto compiled = compiled_isas();
  if (std::find(compiled.begin(), compiled.end(), Isa::avx2) == compiled.end())
    GTEST_SKIP() << "not an x86-64 build: the /proc/cpuinfo cross-check covers x86 only";
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;)
      flags.insert(w);
    break;
  }
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags line on this system";
  const auto has = [&](const char* f) { return flags.count(f) > 0; };
  const auto avail = available_isas();
  const auto available = [&](Isa isa) {
    return std::find(avail.begin(), avail.end(), isa) != avail.end();
  };
  const bool avx2 = has("avx2") && has("fma") && has("f16c");
  EXPECT_EQ(available(Isa::avx2), avx2);
  EXPECT_EQ(available(Isa::avxvnni), avx2 && has("avx_vnni"));
  const bool avx512 = has("avx512f") && has("avx512bw") && has("avx512vl") && has("avx512_vnni");
  EXPECT_EQ(available(Isa::avx512), avx512);
  // AMX also needs Linux to grant the tile state, which a kernel older than 5.16 cannot.
  if (avx512 && has("amx_tile") && has("amx_int8"))
    EXPECT_TRUE(available(Isa::amx)) << "the CPU lists AMX but the tile state was not granted";
  else
    EXPECT_FALSE(available(Isa::amx));
}

// Independent quantize_act: the formula of docs/model-math.md §2 with std::nearbyint (the default
// rounding mode is to nearest even) instead of the magic-number trick.
void reference_quantize_act(const std::vector<float>& x, std::vector<int8_t>& q, float& scale,
                            int32_t& sum) {
  double max = 1e-5;
  for (float v : x)
    max = std::max(max, static_cast<double>(std::fabs(v)));
  scale = static_cast<float>(127.0 / max);
  sum = 0;
  q.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float prod = x[i] * scale;
    const int v = std::clamp(static_cast<int>(std::nearbyint(prod)), -128, 127);
    q[i] = static_cast<int8_t>(v);
    sum += v;
  }
}

std::vector<std::vector<float>> activation_cases(std::mt19937& rng, int64_t n) {
  std::vector<std::vector<float>> cases;
  cases.push_back(random_floats(rng, n));
  cases.push_back(random_floats(rng, n, 1000.0f));
  cases.push_back(std::vector<float>(static_cast<size_t>(n), 0.0f));  // all zero
  cases.push_back(std::vector<float>(static_cast<size_t>(n), 0.37f)); // all equal
  cases.push_back(std::vector<float>(static_cast<size_t>(n), -2.5f)); // all equal, negative
  auto outlier = random_floats(rng, n, 0.01f);
  outlier[static_cast<size_t>(n / 3)] = 1e6f; // one huge outlier
  cases.push_back(outlier);
  auto tiny = random_floats(rng, n, 1e-7f); // below the 1e-5 floor
  cases.push_back(tiny);
  // Values that land exactly on .5 after scaling: max = 127 → scale 1.
  std::vector<float> halves(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    halves[static_cast<size_t>(i)] = static_cast<float>(i % 9) - 4.5f;
  halves[0] = 127.0f;
  cases.push_back(halves);
  return cases;
}

TEST(KernelQuantizeAct, MatchesTheFormulaOnEveryIsa) {
  std::mt19937 rng(1);
  for (int64_t n : {1, 7, 8, 31, 32, 33, 47, 128, 2560, 6912}) {
    for (const auto& x : activation_cases(rng, n)) {
      std::vector<int8_t> want_q;
      float want_scale;
      int32_t want_sum;
      reference_quantize_act(x, want_q, want_scale, want_sum);
      for (Isa isa : isas_under_test()) {
        std::vector<int8_t> q(static_cast<size_t>(n));
        float scale = 0;
        int32_t sum = 0;
        table_for(isa).quantize_act(x.data(), n, q.data(), &scale, &sum);
        const std::string what = isa_name(isa) + " n=" + std::to_string(n);
        expect_bits_eq(scale, want_scale, what + " scale");
        EXPECT_EQ(sum, want_sum) << what;
        EXPECT_EQ(q, want_q) << what;
      }
    }
  }
}

TEST(KernelQuantizeAct, HalfwayCasesRoundToEven) {
  // max = 127 gives scale exactly 1, so x = 2.5 → 2, 3.5 → 4, -2.5 → -2.
  const std::vector<float> x = {127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, -0.5f, 1.5f};
  const std::vector<int8_t> want = {127, 2, 4, -2, -4, 0, 0, 2};
  for (Isa isa : isas_under_test()) {
    std::vector<int8_t> q(x.size());
    float scale;
    int32_t sum;
    table_for(isa).quantize_act(x.data(), static_cast<int64_t>(x.size()), q.data(), &scale, &sum);
    EXPECT_EQ(scale, 1.0f) << isa_name(isa);
    EXPECT_EQ(q, want) << isa_name(isa);
    EXPECT_EQ(sum, 127 + 2 + 4 - 2 - 4 + 0 + 0 + 2) << isa_name(isa);
  }
}

struct I2sCase {
  int64_t rows;
  int64_t k;
};

// k from 128 to 8192 covering every tail of the 8-block (1024-element) groups some kernels
// use, odd row counts, and the 2B-4T shapes.
std::vector<I2sCase> i2s_cases() {
  std::vector<I2sCase> cases;
  for (int64_t blocks = 1; blocks <= 17; ++blocks)
    cases.push_back({(blocks % 5) + 1, blocks * 128});
  cases.push_back({3, 2560});
  cases.push_back({5, 6912});
  cases.push_back({2, 8192});
  cases.push_back({37, 640});
  cases.push_back({39, 2560}); // gemv streams of 9 rows (19 in pairs) and rows left over
  return cases;
}

TEST(KernelI2s, GemvEqualsScalarAndTheFormula) {
  std::mt19937 rng(2);
  for (const auto& c : i2s_cases()) {
    const auto ternary = random_ternary(rng, c.rows * c.k);
    const auto packed = pack_i2s(ternary, c.rows, c.k);
    const float w_scale = 0.731f;
    for (const auto& x : activation_cases(rng, c.k)) {
      std::vector<int8_t> q(static_cast<size_t>(c.k));
      float act_scale;
      int32_t act_sum;
      table_scalar().quantize_act(x.data(), c.k, q.data(), &act_scale, &act_sum);
      for (Isa isa : isas_under_test()) {
        std::vector<float> out(static_cast<size_t>(c.rows), -1.0f);
        table_for(isa).i2s_gemv(packed.data(), w_scale, c.k, 0, c.rows, q.data(), act_scale,
                                act_sum, out.data());
        for (int64_t r = 0; r < c.rows; ++r)
          expect_bits_eq(out[static_cast<size_t>(r)],
                         expected_i2s(ternary, c.k, r, q.data(), act_scale, w_scale),
                         isa_name(isa) + " k=" + std::to_string(c.k) + " r=" + std::to_string(r));
      }
    }
  }
}

TEST(KernelI2s, GemvWritesOnlyTheRequestedRows) {
  std::mt19937 rng(3);
  const int64_t rows = 11, k = 384;
  const auto ternary = random_ternary(rng, rows * k);
  const auto packed = pack_i2s(ternary, rows, k);
  const auto q = random_q(rng, k);
  int32_t act_sum = 0;
  for (int8_t v : q)
    act_sum += v;
  for (Isa isa : isas_under_test()) {
    for (auto [r0, r1] :
         {std::pair<int64_t, int64_t>{0, 1}, {3, 8}, {10, 11}, {4, 4}, {0, 11}, {1, 10}}) {
      std::vector<float> out(static_cast<size_t>(rows), -7.0f);
      table_for(isa).i2s_gemv(packed.data(), 1.5f, k, r0, r1, q.data(), 2.0f, act_sum, out.data());
      for (int64_t r = 0; r < rows; ++r) {
        const float got = out[static_cast<size_t>(r)];
        if (r >= r0 && r < r1)
          expect_bits_eq(got, expected_i2s(ternary, k, r, q.data(), 2.0f, 1.5f), isa_name(isa));
        else
          EXPECT_EQ(got, -7.0f) << isa_name(isa) << " wrote row " << r << " outside [" << r0 << ", "
                                << r1 << ")";
      }
    }
  }
}

TEST(KernelI2s, ExtremeWeightsAndActivations) {
  std::mt19937 rng(4);
  const int64_t rows = 3, k = 8192;
  std::vector<std::vector<int8_t>> weights = {
      std::vector<int8_t>(static_cast<size_t>(rows * k), 0),
      std::vector<int8_t>(static_cast<size_t>(rows * k), 1),
      std::vector<int8_t>(static_cast<size_t>(rows * k), -1),
  };
  auto alternating = random_ternary(rng, rows * k);
  for (size_t i = 0; i < alternating.size(); ++i)
    alternating[i] = (i % 2) ? 1 : -1;
  weights.push_back(alternating);
  // Largest magnitudes: every q at -128 or 127 stresses the int16 partial sums.
  const std::vector<std::vector<int8_t>> acts = {
      std::vector<int8_t>(static_cast<size_t>(k), 127),
      std::vector<int8_t>(static_cast<size_t>(k), -128),
      std::vector<int8_t>(static_cast<size_t>(k), 0),
      random_q(rng, k, -128, 127),
  };
  for (const auto& ternary : weights) {
    const auto packed = pack_i2s(ternary, rows, k);
    for (const auto& q : acts) {
      int32_t act_sum = 0;
      for (int8_t v : q)
        act_sum += v;
      for (Isa isa : isas_under_test()) {
        std::vector<float> out(static_cast<size_t>(rows));
        table_for(isa).i2s_gemv(packed.data(), 1.0f, k, 0, rows, q.data(), 1.0f, act_sum,
                                out.data());
        for (int64_t r = 0; r < rows; ++r)
          expect_bits_eq(out[static_cast<size_t>(r)],
                         expected_i2s(ternary, k, r, q.data(), 1.0f, 1.0f), isa_name(isa));
      }
    }
  }
}

TEST(KernelI2s, Code3IsTheSameIntegerOnEveryIsa) {
  // Code 3 is never written by bitnet.cpp, but a damaged file may hold it: every variant
  // must still agree with scalar.
  std::mt19937 rng(5);
  const int64_t rows = 4, k = 2048;
  std::vector<uint8_t> packed(static_cast<size_t>(rows * k / 4));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : packed)
    b = static_cast<uint8_t>(byte(rng));
  const auto q = random_q(rng, k, -128, 127);
  std::vector<float> want(rows);
  table_scalar().i2s_gemv(packed.data(), 0.5f, k, 0, rows, q.data(), 3.0f, 11, want.data());
  for (Isa isa : isas_under_test()) {
    std::vector<float> out(rows);
    table_for(isa).i2s_gemv(packed.data(), 0.5f, k, 0, rows, q.data(), 3.0f, 11, out.data());
    for (int64_t r = 0; r < rows; ++r)
      expect_bits_eq(out[static_cast<size_t>(r)], want[static_cast<size_t>(r)], isa_name(isa));
  }
}

// The codes of a packed matrix decoded straight from the bytes (docs/gguf-format.md §3: byte j of a
// 32-byte block holds inputs j, 32 + j, 64 + j and 96 + j from the top bits down),
// independent of every kernel and defined for code 3 too.
std::vector<int8_t> decode_codes(const std::vector<uint8_t>& packed) {
  std::vector<int8_t> codes(packed.size() * 4);
  for (size_t flat = 0; flat < codes.size(); ++flat) {
    const uint8_t byte = packed[flat / 128 * 32 + flat % 32];
    codes[flat] = static_cast<int8_t>((byte >> (6 - 2 * (flat % 128 / 32))) & 3);
  }
  return codes;
}

// Σ code·q of row r, and the bitnet.cpp rescale.
float expected_from_codes(const std::vector<int8_t>& codes, int64_t k, int64_t r, const int8_t* q,
                          int32_t act_sum, float act_scale, float w_scale) {
  int64_t sumi = 0;
  for (int64_t j = 0; j < k; ++j)
    sumi += codes[static_cast<size_t>(r * k + j)] * q[j];
  return (static_cast<float>(sumi) - static_cast<float>(act_sum)) / act_scale * w_scale;
}

// Random packed bytes: codes 0..2 only (what files hold), or any byte (code 3 too).
std::vector<uint8_t> random_packed(std::mt19937& rng, int64_t rows, int64_t k, bool code3) {
  std::vector<uint8_t> packed(static_cast<size_t>(rows * k / 4));
  std::uniform_int_distribution<int> code(0, code3 ? 3 : 2);
  for (auto& b : packed)
    b = static_cast<uint8_t>(code(rng) << 6 | code(rng) << 4 | code(rng) << 2 | code(rng));
  return packed;
}

struct GemmInput {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> sum;
};

GemmInput gemm_input(std::mt19937& rng, int64_t n_tok, int64_t k, int lo = -127, int hi = 127) {
  GemmInput in{random_q(rng, n_tok * k, lo, hi), {}, {}};
  std::uniform_real_distribution<float> scale(0.5f, 4.0f);
  for (int64_t t = 0; t < n_tok; ++t) {
    in.scale.push_back(scale(rng));
    int32_t sum = 0;
    for (int64_t j = 0; j < k; ++j)
      sum += in.q[static_cast<size_t>(t * k + j)];
    in.sum.push_back(sum);
  }
  return in;
}

// Runs every variant's gemm on rows [r0, r1) into an output of ld = rows + 3 per token and
// checks each output against expected_from_codes, and that nothing else was written.
void check_gemm(const std::vector<uint8_t>& packed, int64_t rows, int64_t k, int64_t r0, int64_t r1,
                const GemmInput& in, const std::string& what) {
  const auto n_tok = static_cast<int64_t>(in.scale.size());
  const int64_t ld = rows + 3;
  const auto codes = decode_codes(packed);
  std::vector<float> want(static_cast<size_t>(n_tok * ld), -9.0f);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t r = r0; r < r1; ++r)
      want[static_cast<size_t>(t * ld + r)] =
          expected_from_codes(codes, k, r, in.q.data() + t * k, in.sum[static_cast<size_t>(t)],
                              in.scale[static_cast<size_t>(t)], 0.25f);
  const auto check = [&](const std::string& name, const std::vector<float>& out) {
    int bad = 0;
    for (size_t i = 0; i < out.size() && bad < 5; ++i) {
      if (std::bit_cast<uint32_t>(out[i]) == std::bit_cast<uint32_t>(want[i])) continue;
      ++bad;
      ADD_FAILURE() << name << " " << what << " n_tok=" << n_tok << " rows [" << r0 << ", " << r1
                    << "): token " << static_cast<int64_t>(i) / ld << " row "
                    << static_cast<int64_t>(i) % ld << ": got " << out[i] << " want " << want[i];
    }
  };
  for (const auto& [name, table] : gemm_tables()) {
    std::vector<float> out(want.size(), -9.0f);
    table->i2s_gemm(packed.data(), 0.25f, k, r0, r1, in.q.data(), in.scale.data(), in.sum.data(),
                    n_tok, out.data(), ld);
    check(name, out);
    if (!table->i2s_stage) continue;
    // The forward's way: the tokens staged once, in two parts as two threads would, into a
    // copy that starts as garbage (so the padding must be written too).
    ScratchVector<int8_t> staged(static_cast<size_t>(i2s_staged_bytes(n_tok, k)), 0x5a);
    const int64_t mid = n_tok / 3;
    table->i2s_stage(in.q.data(), 0, mid, n_tok, k, staged.data());
    table->i2s_stage(in.q.data(), mid, n_tok, n_tok, k, staged.data());
    std::fill(out.begin(), out.end(), -9.0f);
    table->i2s_gemm_staged(packed.data(), 0.25f, k, r0, r1, in.q.data(), staged.data(),
                           in.scale.data(), in.sum.data(), n_tok, out.data(), ld);
    check(name + " staged", out);
  }
}

// The gemm tiles (kernel_common.hpp i2s_gemm_panels): row counts around every variant's
// row tile (4 rows per vector on NEON, 16 on AVX2/AVX-VNNI, 32 on AVX-512 and AMX), token
// counts 1..25 (twice the largest vector token tile, 12, plus one) and around AMX's tiles of
// 16 and 32 tokens, k of odd block counts across the panel chunks (128 to 1024 inputs), and
// row sub-ranges that start and end inside a tile.
TEST(KernelI2s, GemmTilesMatchTheFormula) {
  std::mt19937 rng(6);
  std::vector<int64_t> token_counts;
  for (int64_t n_tok = 1; n_tok <= 25; ++n_tok)
    token_counts.push_back(n_tok);
  for (int64_t n_tok : {31, 32, 33, 48, 65})
    token_counts.push_back(n_tok);
  for (const auto& c : {I2sCase{1, 128}, I2sCase{15, 384}, I2sCase{17, 1152}, I2sCase{33, 640},
                        I2sCase{47, 2560}, I2sCase{65, 1664}, I2sCase{3, 6912}}) {
    const auto packed = random_packed(rng, c.rows, c.k, false);
    for (int64_t n_tok : token_counts) {
      const auto in = gemm_input(rng, n_tok, c.k);
      const std::string what = "k=" + std::to_string(c.k);
      check_gemm(packed, c.rows, c.k, 0, c.rows, in, what);
      if (c.rows > 2) check_gemm(packed, c.rows, c.k, 1, c.rows - 1, in, what);
    }
  }
}

TEST(KernelI2s, GemmRowRangesAndTokenBlocks) {
  std::mt19937 rng(7);
  const int64_t rows = 261, k = 384; // several row tiles and a partial one
  const auto packed = random_packed(rng, rows, k, false);
  const auto in = gemm_input(rng, 3, k);
  for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, 261},
                        {5, 5},
                        {7, 8},
                        {3, 40},
                        {31, 97},
                        {32, 64},
                        {200, 261},
                        {16, 257}})
    check_gemm(packed, rows, k, r0, r1, in, "k=384");
  // Past the 128-token block: a full block and a remainder of every token-tile size.
  for (int64_t n_tok : {127, 128, 129, 130, 141, 257})
    check_gemm(packed, 37, k, 0, 37, gemm_input(rng, n_tok, k), "k=384");
}

// The int16 lanes of the AVX2 tile and the int32 sums at their limits (4 tokens: AVX-512's
// row dots; 13: the vector panels; 32: AMX's tiles): every activation at -128 or 127 against all-0,
// all-(+1), all-(-1) weights and random bytes that include the never-written code 3 (the largest
// code).
TEST(KernelI2s, GemmExtremeWeightsAndActivations) {
  std::mt19937 rng(8);
  const int64_t rows = 35, k = 2048;
  std::vector<std::vector<uint8_t>> weights = {
      std::vector<uint8_t>(static_cast<size_t>(rows * k / 4), 0x55), // code 1: weight 0
      std::vector<uint8_t>(static_cast<size_t>(rows * k / 4), 0xAA), // code 2: +1
      std::vector<uint8_t>(static_cast<size_t>(rows * k / 4), 0x00), // code 0: -1
      std::vector<uint8_t>(static_cast<size_t>(rows * k / 4), 0xFF), // code 3
      random_packed(rng, rows, k, true),
  };
  for (const auto& packed : weights)
    for (int64_t n_tok : {4, 13, 32}) { // row dots, vector panels, AMX tiles
      for (int v : {127, -128, 0}) {
        GemmInput in = gemm_input(rng, n_tok, k, v, v);
        check_gemm(packed, rows, k, 0, rows, in, "constant q=" + std::to_string(v));
      }
      check_gemm(packed, rows, k, 0, rows, gemm_input(rng, n_tok, k, -128, 127), "random q");
    }
}

// --- F16 ------------------------------------------------------------------------------

std::vector<uint16_t> random_f16(std::mt19937& rng, int64_t n, float scale = 1.0f) {
  const auto f = random_floats(rng, n, scale);
  std::vector<uint16_t> h(f.size());
  for (size_t i = 0; i < f.size(); ++i)
    h[i] = fp32_to_fp16(f[i]);
  return h;
}

// Σ in double over exactly representable products: the tolerance below bounds an f32
// accumulation of k terms against it.
double exact_f16_dot(const uint16_t* a, const uint16_t* b, int64_t n, double* abs_sum) {
  double s = 0.0;
  *abs_sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double p = static_cast<double>(fp16_to_fp32(a[i])) * fp16_to_fp32(b[i]);
    s += p;
    *abs_sum += std::fabs(p);
  }
  return s;
}

// f32 accumulation error is at most about n·2^-24·Σ|terms|; 2^-24·n·Σ|p| is the bound.
void expect_f16_dot_close(float got, double want, double abs_sum, int64_t n,
                          const std::string& what) {
  const double bound = static_cast<double>(n) * std::ldexp(1.0, -24) * abs_sum + 1e-30;
  EXPECT_LE(std::fabs(static_cast<double>(got) - want), bound)
      << what << ": got " << got << " want " << want;
}

TEST(KernelF16, DotAndGemmWithinTheF32AccumulationBound) {
  std::mt19937 rng(7);
  for (int64_t k : {1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 128, 2560}) {
    const int64_t rows = 7;
    const auto w = random_f16(rng, rows * k);
    for (int64_t n_tok : {1, 2, 5}) {
      const auto x = random_f16(rng, n_tok * k);
      const int64_t ld = rows + 1;
      for (Isa isa : isas_under_test()) {
        std::vector<float> out(static_cast<size_t>(n_tok * ld), -3.0f);
        table_for(isa).f16_gemm(w.data(), k, 1, rows, x.data(), n_tok, out.data(), ld);
        for (int64_t t = 0; t < n_tok; ++t) {
          EXPECT_EQ(out[static_cast<size_t>(t * ld)], -3.0f) << "row 0 is outside [1, rows)";
          for (int64_t r = 1; r < rows; ++r) {
            double abs_sum;
            const double want = exact_f16_dot(w.data() + r * k, x.data() + t * k, k, &abs_sum);
            expect_f16_dot_close(out[static_cast<size_t>(t * ld + r)], want, abs_sum, k,
                                 isa_name(isa) + " gemm k=" + std::to_string(k));
          }
        }
        double abs_sum;
        const double want = exact_f16_dot(w.data(), x.data(), k, &abs_sum);
        expect_f16_dot_close(table_for(isa).f16_dot(w.data(), x.data(), k), want, abs_sum, k,
                             isa_name(isa) + " dot k=" + std::to_string(k));
      }
    }
  }
}

// Every variant sums F16 products in the order of ggml_vec_dot_f16 on the reference's
// AVX-512 build (four 16-lane accumulators over chunks of 64, combined (a0+a2)+(a1+a3),
// halved 8, 4, 2, 1; the n % 64 leftover added in double), so the head's logits and the
// attention sums equal bitnet.cpp's bit for bit on every ISA. Written out independently here.
float ggml_order_dot(const uint16_t* a, const uint16_t* b, int64_t n) {
  float acc[4][16] = {};
  const int64_t np = n / 64 * 64;
  for (int64_t i = 0; i < np; i += 64)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 16; ++l) {
        const int64_t e = i + 16 * j + l;
        acc[j][l] = std::fma(fp16_to_fp32(a[e]), fp16_to_fp32(b[e]), acc[j][l]);
      }
  float lane[16];
  for (int l = 0; l < 16; ++l)
    lane[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  for (int half = 8; half >= 1; half /= 2)
    for (int l = 0; l < half; ++l)
      lane[l] += lane[l + half];
  double sum = lane[0];
  for (int64_t i = np; i < n; ++i)
    sum += static_cast<double>(fp16_to_fp32(a[i]) * fp16_to_fp32(b[i]));
  return static_cast<float>(sum);
}

TEST(KernelF16, EveryVariantSumsInGgmlVecDotF16Order) {
  std::mt19937 rng(14);
  for (Isa isa : isas_under_test()) {
    for (int64_t k : {1, 7, 8, 9, 16, 57, 63, 64, 65, 128, 200, 2560}) {
      const int64_t rows = 6;
      const auto w = random_f16(rng, rows * k);
      const auto x = random_f16(rng, 2 * k);
      std::vector<float> out(2 * rows);
      table_for(isa).f16_gemm(w.data(), k, 0, rows, x.data(), 2, out.data(), rows);
      for (int64_t t = 0; t < 2; ++t)
        for (int64_t r = 0; r < rows; ++r)
          expect_bits_eq(out[static_cast<size_t>(t * rows + r)],
                         ggml_order_dot(w.data() + r * k, x.data() + t * k, k),
                         isa_name(isa) + " gemm k=" + std::to_string(k));
      expect_bits_eq(table_for(isa).f16_dot(w.data(), x.data(), k),
                     ggml_order_dot(w.data(), x.data(), k),
                     isa_name(isa) + " dot k=" + std::to_string(k));
    }
  }
}

// F16 × unrounded f32 in llamafile tinyBLAS's order (one 16-lane FMA accumulator, lanes
// added by halving), as ggml computes an F16 product of several f32 rows.
float tinyblas_order_dot(const uint16_t* w, const float* x, int64_t k) {
  float acc[16] = {};
  for (int64_t i = 0; i < k; i += 16)
    for (int l = 0; l < 16; ++l)
      acc[l] = std::fma(fp16_to_fp32(w[i + l]), x[i + l], acc[l]);
  for (int half = 8; half >= 1; half /= 2)
    for (int l = 0; l < half; ++l)
      acc[l] += acc[l + half];
  return acc[0];
}

// f16_f32_gemm over a few rows and tokens, and over more than one of its slices of rows (128)
// and tokens (64) at k = 144.
TEST(KernelF16, F32OperandInTinyBlasOrderOnEveryVariant) {
  std::mt19937 rng(15);
  const std::tuple<int64_t, int64_t, int64_t> shapes[] = {
      {16, 5, 3}, {32, 5, 3}, {48, 5, 3}, {64, 5, 3}, {144, 5, 3}, {2560, 5, 3}, {144, 262, 131}};
  for (Isa isa : isas_under_test()) {
    for (const auto& [k, rows, n_tok] : shapes) {
      const auto w = random_f16(rng, rows * k);
      const auto x = random_floats(rng, n_tok * k, 3.0f); // not representable in f16
      std::vector<float> out(static_cast<size_t>(n_tok * rows), -3.0f);
      f16_f32_gemm(table_for(isa), w.data(), k, 1, rows, x.data(), n_tok, out.data(), rows);
      for (int64_t t = 0; t < n_tok; ++t) {
        EXPECT_EQ(out[static_cast<size_t>(t * rows)], -3.0f) << "row 0 is outside [1, rows)";
        for (int64_t r = 1; r < rows; ++r)
          expect_bits_eq(out[static_cast<size_t>(t * rows + r)],
                         tinyblas_order_dot(w.data() + r * k, x.data() + t * k, k),
                         isa_name(isa) + " f16_f32_gemm k=" + std::to_string(k));
      }
      expect_bits_eq(table_for(isa).f16_f32_dot(w.data(), x.data(), k),
                     tinyblas_order_dot(w.data(), x.data(), k),
                     isa_name(isa) + " f16_f32_dot k=" + std::to_string(k));
    }
  }
}

// Attention's dots (K·q, V·p): for every row and vector, each variant gives the single dot in
// ggml_vec_dot_f16's order of the f16 operand (f16_dots, the operand widened to f32) or in
// tinyBLAS's order of the unrounded f32 operand (f16_f32_dots), over strided rows, vectors and
// outputs, lengths with and without a leftover past the chunks of 64 (in whole groups of 8 and
// ragged), within one span of the blocked variants (512 elements, rows summed whole) and across
// spans (AVX-512's of rows past 3072 elements too), and rows and vector counts on and off the
// variants' blocks of 4 and passes of 16 long rows (a thread's value rows).
TEST(KernelAttention, DotsInGgmlAndTinyBlasOrderOnEveryVariant) {
  std::mt19937 rng(17);
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {4, 4},  {9, 6},  {8, 16}, {3, 5},
                                                {5, 4}, {37, 4}, {16, 8}, {6, 20}};
  for (int64_t n : {16, 32, 64, 93, 96, 128, 160, 512, 576, 1000, 1003, 2080, 4200}) {
    for (const auto& [n_rows, n_x] : shapes) {
      const int64_t lda = n + 24, ldx = n + 8, ld_out = n_rows + 3;
      const auto a = random_f16(rng, n_rows * lda);
      auto x16 = random_f16(rng, n_x * ldx, 0.01f); // probabilities' scale, some subnormal
      for (size_t j = 0; j < x16.size(); j += 5)
        x16[j] = 0; // masked positions
      std::vector<float> x(x16.size());
      for (size_t j = 0; j < x16.size(); ++j)
        x[j] = fp16_to_fp32(x16[j]);
      const auto xf = random_floats(rng, n_x * ldx, 3.0f);
      for (Isa isa : isas_under_test()) {
        const std::string what = isa_name(isa) + " n=" + std::to_string(n) +
                                 " rows=" + std::to_string(n_rows) + " x=" + std::to_string(n_x);
        const Table& t = table_for(isa);
        // AVX-512 (and AMX, which takes its attention) has the F16-vector dots; the others none.
        EXPECT_EQ(t.f16_f16_dots != nullptr, isa == Isa::avx512 || isa == Isa::amx) << what;
        std::vector<float> out(static_cast<size_t>(n_x * ld_out), -7.0f), out32 = out, out16 = out;
        t.f16_dots(a.data(), lda, n_rows, x.data(), ldx, n_x, n, out.data(), ld_out);
        t.f16_f32_dots(a.data(), lda, n_rows, xf.data(), ldx, n_x, n, out32.data(), ld_out);
        if (t.f16_f16_dots)
          t.f16_f16_dots(a.data(), lda, n_rows, x16.data(), ldx, n_x, n, out16.data(), ld_out);
        for (int64_t i = 0; i < n_x; ++i) {
          for (int64_t r = 0; r < n_rows; ++r) {
            const auto o = static_cast<size_t>(i * ld_out + r);
            const float ggml = ggml_order_dot(a.data() + r * lda, x16.data() + i * ldx, n);
            expect_bits_eq(out[o], ggml, what + " f16_dots");
            if (t.f16_f16_dots) expect_bits_eq(out16[o], ggml, what + " f16_f16_dots");
            expect_bits_eq(out32[o], tinyblas_order_dot(a.data() + r * lda, xf.data() + i * ldx, n),
                           what + " f16_f32_dots");
          }
          for (int64_t r = n_rows; r < ld_out; ++r) {
            EXPECT_EQ(out[static_cast<size_t>(i * ld_out + r)], -7.0f) << what;
            EXPECT_EQ(out32[static_cast<size_t>(i * ld_out + r)], -7.0f) << what;
            EXPECT_EQ(out16[static_cast<size_t>(i * ld_out + r)], -7.0f) << what;
          }
        }
      }
    }
  }
}

// A single query's K·q over every KV head (head_dots): every variant gives each key's dot with
// each query head in ggml_vec_dot_f16's order against its own KV head's part of the key row,
// for 2B-4T's heads (128 elements, 4 query heads per KV head: the key-order blocks of AVX-512,
// AVX2 and AVX-VNNI, head_dots_by_keys, which take up to 8 KV heads) with 5 and 9 KV heads,
// other shapes, key counts on and off the blocks of 4, a row stride wider than the heads, −0
// products, and an output whose slots past the keys stay untouched.
TEST(KernelAttention, HeadDotsInGgmlOrderOnEveryVariant) {
  std::mt19937 rng(29);
  struct Shape {
    int64_t n, n_head_kv, group;
  };
  for (const Shape& sh :
       {Shape{128, 5, 4}, Shape{128, 9, 4}, Shape{128, 2, 3}, Shape{64, 3, 2}, Shape{96, 1, 4}}) {
    for (int64_t n_keys : {1, 3, 4, 9, 21}) {
      const int64_t ldk = sh.n_head_kv * sh.n + 16, n_q = sh.n_head_kv * sh.group,
                    ld_out = n_keys + 3;
      auto keys = random_f16(rng, n_keys * ldk);
      auto x16 = random_f16(rng, n_q * sh.n);
      for (size_t j = 0; j < keys.size(); j += 7)
        keys[j] = 0x8000; // −0
      for (size_t j = 0; j < x16.size(); j += 3)
        x16[j] = 0;
      std::vector<float> x(x16.size());
      for (size_t j = 0; j < x16.size(); ++j)
        x[j] = fp16_to_fp32(x16[j]);
      for (Isa isa : isas_under_test()) {
        const std::string what = isa_name(isa) + " n=" + std::to_string(sh.n) +
                                 " kv=" + std::to_string(sh.n_head_kv) +
                                 " group=" + std::to_string(sh.group) +
                                 " keys=" + std::to_string(n_keys);
        std::vector<float> out(static_cast<size_t>(n_q * ld_out), -7.0f);
        table_for(isa).head_dots(keys.data(), ldk, n_keys, sh.n_head_kv, sh.group, x.data(),
                                 sh.n, out.data(), ld_out);
        for (int64_t h = 0; h < n_q; ++h) {
          for (int64_t j = 0; j < n_keys; ++j)
            expect_bits_eq(out[static_cast<size_t>(h * ld_out + j)],
                           ggml_order_dot(keys.data() + j * ldk + h / sh.group * sh.n,
                                          x16.data() + h * sh.n, sh.n),
                           what);
          for (int64_t j = n_keys; j < ld_out; ++j)
            EXPECT_EQ(out[static_cast<size_t>(h * ld_out + j)], -7.0f) << what;
        }
      }
    }
  }
}

// A batch's K·q from keys in tiles: every variant gives each key's dot with each vector in
// ggml_vec_dot_f16's order, for head sizes of one to four chunks of 64, key counts that end
// inside a tile (and inside the 8-lane half AVX2 takes), vector counts on and off the variants'
// groups, zero products (a lane of +0 from −0 products must stay +0) and a strided output
// whose slots past the keys stay untouched.
TEST(KernelAttention, KeyTileDotsInGgmlOrderOnEveryVariant) {
  std::mt19937 rng(23);
  for (Isa isa : isas_under_test())
    if (!table_for(isa).key_tile_dots)
      std::printf("SKIPPED key_tile_dots on %s (none: its attention takes f16_dots)\n",
                  isa_name(isa).c_str());
  for (int64_t n : {64, 128, 192, 256}) {
    for (int64_t n_keys : {1, 7, 16, 21, 40}) {
      for (int64_t n_x : {1, 3, 4, 5, 16}) {
        const int64_t ldx = n + 8, ld_out = n_keys + 5;
        auto keys = random_f16(rng, n_keys * n);
        auto x16 = random_f16(rng, n_x * ldx);
        for (size_t j = 0; j < keys.size(); j += 7)
          keys[j] = 0x8000; // −0
        for (size_t j = 0; j < x16.size(); j += 3)
          x16[j] = 0;
        std::fill(keys.begin(), keys.begin() + n, uint16_t{0x8000}); // key 0: all −0 · x
        const int64_t n_tiles = (n_keys + kKeyTile - 1) / kKeyTile;
        std::vector<float> kt(static_cast<size_t>(n_tiles * kKeyTile * n), 1e30f);
        for (int64_t j = 0; j < n_keys; ++j)
          for (int64_t d = 0; d < n; ++d)
            kt[static_cast<size_t>(j / kKeyTile * kKeyTile * n + kKeyTile * d + j % kKeyTile)] =
                fp16_to_fp32(keys[static_cast<size_t>(j * n + d)]);
        std::vector<float> x(x16.size());
        for (size_t j = 0; j < x16.size(); ++j)
          x[j] = fp16_to_fp32(x16[j]);
        for (Isa isa : isas_under_test()) {
          if (!table_for(isa).key_tile_dots) continue; // said once below
          const std::string what = isa_name(isa) + " n=" + std::to_string(n) +
                                   " keys=" + std::to_string(n_keys) + " x=" + std::to_string(n_x);
          std::vector<float> out(static_cast<size_t>(n_x * ld_out), -7.0f);
          table_for(isa).key_tile_dots(kt.data(), n_keys, x.data(), ldx, n_x, n, out.data(),
                                       ld_out);
          for (int64_t i = 0; i < n_x; ++i) {
            for (int64_t j = 0; j < n_keys; ++j)
              expect_bits_eq(out[static_cast<size_t>(i * ld_out + j)],
                             ggml_order_dot(keys.data() + j * n, x16.data() + i * ldx, n), what);
            for (int64_t j = n_keys; j < ld_out; ++j)
              EXPECT_EQ(out[static_cast<size_t>(i * ld_out + j)], -7.0f) << what;
          }
        }
      }
    }
  }
}

// The conversions must be bit-exact with IEEE round-to-nearest-even (F16C / ggml),
// including subnormals, infinities and NaNs.
TEST(KernelF16, ConversionsBitExactOnEveryPattern) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i)
    all[i] = static_cast<uint16_t>(i);
  for (Isa isa : isas_under_test()) {
    std::vector<float> f(all.size());
    table_for(isa).f16_to_f32(all.data(), static_cast<int64_t>(all.size()), f.data());
    for (uint32_t i = 0; i < 65536; ++i) {
      const uint32_t exp = (i >> 10) & 0x1F, mant = i & 0x3FF;
      const float got = f[i];
      if (exp == 0x1F && mant != 0) {
        // NaN: sign and payload kept, quiet bit set (what F16C and NEON do).
        const uint32_t want = ((i & 0x8000u) << 16) | 0x7FC00000u | (mant << 13);
        ASSERT_EQ(std::bit_cast<uint32_t>(got), want)
            << isa_name(isa) << " half 0x" << std::hex << i;
      } else {
        const float sign = (i & 0x8000u) ? -1.0f : 1.0f;
        const float want = exp == 0x1F ? sign * std::numeric_limits<float>::infinity()
                           : exp == 0  ? sign * std::ldexp(static_cast<float>(mant), -24)
                                       : sign * std::ldexp(static_cast<float>(mant | 0x400),
                                                           static_cast<int>(exp) - 25);
        ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
            << isa_name(isa) << " half 0x" << std::hex << i;
      }
    }
  }
}

// Independent f32 → f16: exact rounding through double arithmetic.
uint16_t reference_to_f16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  if (std::isnan(f)) return static_cast<uint16_t>(sign | 0x7E00u | ((bits >> 13) & 0x3FFu));
  const double a = std::fabs(static_cast<double>(f));
  if (a >= 65520.0) return static_cast<uint16_t>(sign | 0x7C00u);
  // Quantum of the f16 grid at this magnitude: 2^-24 for subnormals, else 2^(e-10).
  int e;
  std::frexp(a, &e); // a = m·2^e, m in [0.5, 1)
  const int q_exp = std::max(e - 11, -24);
  const double units = std::nearbyint(std::ldexp(a, -q_exp)); // ties to even
  const double value = std::ldexp(units, q_exp);
  if (value == 0.0) return sign;
  int ve;
  std::frexp(value, &ve);
  if (ve <= -14) return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::ldexp(value, 24)));
  const uint16_t exp_bits = static_cast<uint16_t>((ve - 1 + 15) << 10);
  const uint16_t mant = static_cast<uint16_t>(std::ldexp(value, 11 - ve) - 1024.0);
  return static_cast<uint16_t>(sign | exp_bits | mant);
}

TEST(KernelF16, FloatToHalfBitExact) {
  std::vector<float> x;
  std::mt19937 rng(8);
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 200000; ++i)
    x.push_back(std::bit_cast<float>(any(rng)));
  // Around every f16 value: exact, and the midpoints and their neighbours.
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const float v = fp16_to_fp32(static_cast<uint16_t>(h));
    const float next = fp16_to_fp32(static_cast<uint16_t>(h + 1));
    const float mid = (v + next) / 2;
    for (float f : {v, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      x.push_back(f);
      x.push_back(-f);
    }
  }
  for (float f : {65504.0f, 65519.99f, 65520.0f, 1e30f, std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::denorm_min(), 5.96e-8f, 2.98e-8f, 2.99e-8f})
    x.push_back(f);
  x.push_back(std::bit_cast<float>(0x7F800001u)); // signalling NaN
  x.push_back(std::bit_cast<float>(0xFFC12345u));
  for (Isa isa : isas_under_test()) {
    std::vector<uint16_t> h(x.size());
    table_for(isa).f32_to_f16(x.data(), static_cast<int64_t>(x.size()), h.data());
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(h[i], reference_to_f16(x[i]))
          << isa_name(isa) << " f32 0x" << std::hex << std::bit_cast<uint32_t>(x[i]);
  }
}

// --- Q8_0 -----------------------------------------------------------------------------

TEST(KernelQ8, QuantizeMatchesTheGgmlFormula) {
  std::mt19937 rng(9);
  for (int64_t n : {32, 64, 2560}) {
    auto x = random_floats(rng, n, 3.0f);
    std::fill(x.begin() + 32, x.begin() + std::min<int64_t>(n, 64), 0.0f); // an all-zero block
    for (Isa isa : isas_under_test()) {
      std::vector<uint8_t> out(static_cast<size_t>(n / 32 * kQ8Bytes));
      table_for(isa).quantize_q8_0(x.data(), n, out.data());
      for (int64_t b = 0; b < n / 32; ++b) {
        float amax = 0;
        for (int j = 0; j < 32; ++j)
          amax = std::max(amax, std::fabs(x[b * 32 + j]));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        uint16_t d;
        std::memcpy(&d, &out[b * kQ8Bytes], 2);
        EXPECT_EQ(d, fp32_to_fp16(amax / 127.0f)) << isa_name(isa) << " block " << b;
        for (int j = 0; j < 32; ++j) {
          const int want = static_cast<int>(std::nearbyint(x[b * 32 + j] * id));
          EXPECT_EQ(static_cast<int8_t>(out[b * kQ8Bytes + 2 + j]), want)
              << isa_name(isa) << " block " << b << " j " << j;
        }
      }
    }
  }
}

// The head screen's kernel against the definition in kernels.hpp, computed here from plain
// signed rows: the test packs its own groups (per block, the rows interleaved as 4-byte
// groups, +128, then the 16 scales), the expected value is the block-ordered fma chain. Weights
// cover the whole [-127, 127] range and extreme scales; the operand is quantize_q8_0's.
TEST(KernelQ8, ScreenGroupsMatchTheirDefinition) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> quant(-127, 127);
  for (int64_t k : {32, 96, 2560}) {
    // 10 groups, the last partial: the second call's 9 take every variant's passes of several
    // groups (up to 4 streams) and a group left over.
    const int64_t nb = k / 32, rows = 150, groups = (rows + kScreenRows - 1) / kScreenRows;
    std::vector<int8_t> q(static_cast<size_t>(rows * k));
    for (auto& v : q)
      v = static_cast<int8_t>(quant(rng));
    std::fill(q.begin(), q.begin() + 32, int8_t{127}); // a block of extremes
    std::fill(q.begin() + k, q.begin() + k + 32, int8_t{-127});
    std::vector<uint16_t> d(static_cast<size_t>(rows * nb));
    for (auto& v : d)
      v = fp32_to_fp16(std::uniform_real_distribution<float>(-0.1f, 0.1f)(rng));
    d[0] = fp32_to_fp16(65504.0f);
    const auto group_bytes = static_cast<size_t>(nb * 16 * 34);
    ASSERT_EQ(static_cast<int64_t>(group_bytes), screen_group_bytes(k));
    std::vector<uint8_t> w(static_cast<size_t>(groups) * group_bytes, 0x80);
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t* group = &w[static_cast<size_t>(r / 16) * group_bytes];
      const int64_t l = r % 16;
      for (int64_t b = 0; b < nb; ++b) {
        for (int64_t i = 0; i < 32; ++i)
          group[b * 544 + 64 * (i / 4) + 4 * l + i % 4] =
              static_cast<uint8_t>(q[static_cast<size_t>(r * k + 32 * b + i)] + 128);
        std::memcpy(&group[b * 544 + 512 + 2 * l], &d[static_cast<size_t>(r * nb + b)], 2);
      }
    }
    for (int64_t n_x : {1, 2, 3, 4, 5, 9}) {
      const auto x = random_floats(rng, n_x * k, 2.0f);
      std::vector<uint8_t> blocks(static_cast<size_t>(n_x * nb * kQ8Bytes));
      table_scalar().quantize_q8_0(x.data(), n_x * k, blocks.data());
      std::vector<int8_t> xq(static_cast<size_t>(n_x * k));
      std::vector<float> xd(static_cast<size_t>(n_x * nb));
      std::vector<int32_t> bias(static_cast<size_t>(n_x * nb));
      for (int64_t i = 0; i < n_x * nb; ++i) {
        const uint8_t* block = &blocks[static_cast<size_t>(i * kQ8Bytes)];
        uint16_t h;
        std::memcpy(&h, block, 2);
        xd[static_cast<size_t>(i)] = fp16_to_fp32(h);
        int32_t sum = 0;
        for (int j = 0; j < 32; ++j) {
          xq[static_cast<size_t>(i * 32 + j)] = static_cast<int8_t>(block[2 + j]);
          sum += static_cast<int8_t>(block[2 + j]);
        }
        bias[static_cast<size_t>(i)] = -128 * sum;
      }
      const int64_t ld = groups * 16;
      std::vector<float> want(static_cast<size_t>(n_x * ld));
      for (int64_t t = 0; t < n_x; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          float acc = 0.0f;
          for (int64_t b = 0; b < nb; ++b) {
            int32_t s = 0;
            for (int64_t i = 0; i < 32; ++i)
              s += q[static_cast<size_t>(r * k + 32 * b + i)] *
                   xq[static_cast<size_t>(t * k + 32 * b + i)];
            const float scale = fp16_to_fp32(d[static_cast<size_t>(r * nb + b)]) *
                                xd[static_cast<size_t>(t * nb + b)];
            acc = std::fma(static_cast<float>(s), scale, acc);
          }
          want[static_cast<size_t>(t * ld + r)] = acc;
        }
      for (const auto& [name, table] : gemm_tables()) {
        std::vector<float> out(static_cast<size_t>(n_x * ld), std::nanf(""));
        // Two calls, as threads split the groups.
        table->q8_0_screen(w.data(), k, 1, xq.data(), xd.data(), bias.data(), n_x, out.data(), ld);
        table->q8_0_screen(w.data() + group_bytes, k, groups - 1, xq.data(), xd.data(), bias.data(),
                           n_x, out.data() + 16, ld);
        for (int64_t t = 0; t < n_x; ++t)
          for (int64_t r = 0; r < rows; ++r)
            expect_bits_eq(
                out[static_cast<size_t>(t * ld + r)], want[static_cast<size_t>(t * ld + r)],
                name + " q8_0_screen k=" + std::to_string(k) + " n_x=" + std::to_string(n_x) +
                    " t=" + std::to_string(t) + " r=" + std::to_string(r));
      }
    }
  }
}

TEST(KernelQ8, GemmInGgmlOrderAndDequantizeExact) {
  std::mt19937 rng(10);
  for (int64_t k : {32, 96, 2560}) {
    const int64_t rows = 15;
    // Weights straight from random bytes (including -128), scale a random half.
    std::vector<uint8_t> w(static_cast<size_t>(rows * k / 32 * kQ8Bytes));
    std::uniform_int_distribution<int> byte(0, 255);
    for (auto& b : w)
      b = static_cast<uint8_t>(byte(rng));
    for (int64_t b = 0; b < rows * k / 32; ++b) {
      const uint16_t d = fp32_to_fp16(std::uniform_real_distribution<float>(-0.1f, 0.1f)(rng));
      std::memcpy(&w[b * kQ8Bytes], &d, 2);
    }
    for (int64_t n_tok : {1, 3, 4, 9}) {
      const auto x = random_floats(rng, n_tok * k);
      std::vector<uint8_t> xq(static_cast<size_t>(n_tok * k / 32 * kQ8Bytes));
      table_scalar().quantize_q8_0(x.data(), n_tok * k, xq.data());
      const int64_t ld = rows;
      std::vector<float> want(static_cast<size_t>(n_tok * ld));
      // Independent, in ggml_vec_dot_q8_0_q8_0's x86 order (the reference build): lane l
      // accumulates fma(d_w·d_x, Σ of elements 4l..4l+3, lane) over the blocks, then the
      // 8 lanes are added by halving.
      for (int64_t t = 0; t < n_tok; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          float lane[8] = {};
          for (int64_t b = 0; b < k / 32; ++b) {
            const uint8_t* wb = &w[(r * k / 32 + b) * kQ8Bytes];
            const uint8_t* xb = &xq[(t * k / 32 + b) * kQ8Bytes];
            uint16_t dw, dx;
            std::memcpy(&dw, wb, 2);
            std::memcpy(&dx, xb, 2);
            const float d = fp16_to_fp32(dw) * fp16_to_fp32(dx);
            for (int l = 0; l < 8; ++l) {
              int32_t sumi = 0;
              for (int j = 4 * l; j < 4 * l + 4; ++j)
                sumi += static_cast<int8_t>(wb[2 + j]) * static_cast<int8_t>(xb[2 + j]);
              lane[l] = std::fma(d, static_cast<float>(sumi), lane[l]);
            }
          }
          for (int half = 4; half >= 1; half /= 2)
            for (int l = 0; l < half; ++l)
              lane[l] += lane[l + half];
          want[static_cast<size_t>(t * ld + r)] = lane[0];
        }
      for (Isa isa : isas_under_test()) {
        std::vector<float> out(static_cast<size_t>(n_tok * ld));
        // Two row ranges, as threads split them (a range is read as streams of rows: here one
        // row each, then two each and three rows left over; several tokens take a row of each
        // stream per call).
        table_for(isa).q8_0_gemm(w.data(), k, 0, 4, xq.data(), n_tok, out.data(), ld);
        table_for(isa).q8_0_gemm(w.data(), k, 4, rows, xq.data(), n_tok, out.data(), ld);
        for (size_t i = 0; i < out.size(); ++i)
          expect_bits_eq(out[i], want[i], isa_name(isa) + " q8_0 k=" + std::to_string(k));
        std::vector<float> deq(static_cast<size_t>(k));
        table_for(isa).q8_0_to_f32(w.data(), k, deq.data());
        for (int64_t j = 0; j < k; ++j) {
          uint16_t d;
          std::memcpy(&d, &w[(j / 32) * kQ8Bytes], 2);
          const float v =
              static_cast<float>(static_cast<int8_t>(w[(j / 32) * kQ8Bytes + 2 + j % 32])) *
              fp16_to_fp32(d);
          expect_bits_eq(deq[static_cast<size_t>(j)], v, isa_name(isa) + " q8_0_to_f32");
        }
      }
    }
  }
}

// --- float ops -------------------------------------------------------------------------

TEST(KernelFloatOps, RmsnormMatchesGgmlFormula) {
  std::mt19937 rng(11);
  for (int64_t n : {1, 5, 64, 2560}) {
    const auto x = random_floats(rng, n, 2.0f);
    const auto w = random_floats(rng, n);
    double sum = 0;
    for (float v : x)
      sum += static_cast<double>(v) * v;
    const double scale = 1.0 / std::sqrt(sum / static_cast<double>(n) + 1e-5);
    for (Isa isa : isas_under_test()) {
      std::vector<float> out(static_cast<size_t>(n));
      table_for(isa).rmsnorm(x.data(), 1, w.data(), n, 1e-5f, out.data());
      for (int64_t i = 0; i < n; ++i)
        expect_near_rel(out[i], static_cast<float>(x[i] * scale * w[i]), 1e-5f, 1e-30f,
                        isa_name(isa) + " rmsnorm");
    }
  }
}

// Several rows per call (prefill), in place as the forward pass calls it: each row's bits
// equal ggml's rms_norm loop on that row alone (Σ (double)(x·x) in order, the mean in float,
// then (x·scale)·w), whatever the row count and however the kernel groups the rows.
TEST(KernelFloatOps, RmsnormRowsEqualGgmlLoopPerRow) {
  std::mt19937 rng(13);
  const float eps = 1e-6f;
  // 77: a tail of 5 elements after the vectors of 8
  for (const auto& [n, n_rows] : std::vector<std::pair<int64_t, int64_t>>{{2560, 1},
                                                                          {2560, 2},
                                                                          {2560, 3},
                                                                          {2560, 4},
                                                                          {2560, 5},
                                                                          {2560, 7},
                                                                          {2560, 8},
                                                                          {2560, 9},
                                                                          {2560, 17},
                                                                          {77, 1},
                                                                          {77, 6},
                                                                          {77, 12},
                                                                          {77, 13}}) {
    const auto w = random_floats(rng, n);
    std::vector<float> x;
    for (int64_t r = 0; r < n_rows; ++r) {
      const auto row = random_floats(rng, n, 0.5f + static_cast<float>(r));
      x.insert(x.end(), row.begin(), row.end());
    }
    std::vector<float> want(x.size());
    for (int64_t r = 0; r < n_rows; ++r) {
      const float* xr = x.data() + r * n;
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i)
        sum += static_cast<double>(xr[i] * xr[i]);
      const float mean = static_cast<float>(sum / static_cast<double>(n));
      const float scale = 1.0f / std::sqrt(mean + eps);
      for (int64_t i = 0; i < n; ++i)
        want[static_cast<size_t>(r * n + i)] = (xr[i] * scale) * w[static_cast<size_t>(i)];
    }
    for (Isa isa : isas_under_test()) {
      auto out = x;
      table_for(isa).rmsnorm(out.data(), n_rows, w.data(), n, eps, out.data());
      for (size_t i = 0; i < out.size(); ++i)
        expect_bits_eq(out[i], want[i],
                       isa_name(isa) + " rmsnorm rows=" + std::to_string(n_rows) + " at " +
                           std::to_string(i));
    }
  }
}

// Σ (double)(x_i·x_i) of the squares sq in `chains` interleaved chains (element i into chain
// i % chains), the chains then added in pairs; one chain is ggml's element order.
double chained_sum(const std::vector<float>& sq, size_t chains) {
  std::vector<double> c(chains, 0.0);
  for (size_t i = 0; i < sq.size(); ++i)
    c[i % chains] += static_cast<double>(sq[i]);
  for (size_t width = chains; width > 1; width /= 2)
    for (size_t j = 0; j < width / 2; ++j)
      c[j] = c[2 * j] + c[2 * j + 1];
  return c[0];
}

// A row whose scale, 1/sqrt(mean + eps), the summation order of Σ (double)(x·x) changes, and
// the kernels must return ggml's bits, those of the sum in element order. Two large elements
// make the sum about 2560 (double ulp 2^-41); the 2045 small squares after them are each just
// over half that ulp, so in element order each is rounded up to a whole ulp, a bias of about
// 2^-32 in all, while in 16 interleaved chains only the two chains holding a large element
// round (an eighth of the bias) and in 4 chains half of it. The last element is tuned until
// the sum in element order gives the larger of two adjacent means whose scales differ, and 4
// and 16 chains give the smaller.
TEST(KernelFloatOps, RmsnormKeepsElementOrderWhereTheOrderChangesTheScale) {
  const int64_t n = 2048;
  const float eps = 1e-6f;
  const auto scale_of = [&](double sum) {
    return 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  };
  // two adjacent means whose scales differ
  float m1 = 1.25f;
  while (1.0f / std::sqrt(m1 + eps) == 1.0f / std::sqrt(std::nextafter(m1, 2.0f) + eps))
    m1 = std::nextafter(m1, 2.0f);
  std::vector<float> x(static_cast<size_t>(n)), sq(x.size());
  x[0] = x[1] = std::sqrt(1024.0f * m1);
  float small = std::sqrt(0x1.1p-42f); // a square just over 2^-42
  while (small * small <= 0x1p-42f)
    small = std::nextafter(small, 1.0f);
  ASSERT_LT(small * small, 0x1.2p-42f);
  for (size_t i = 2; i + 1 < x.size(); ++i)
    x[i] = small;
  double head = 0.0; // the first n - 1 squares, for the estimate below
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    sq[i] = x[i] * x[i];
    head += static_cast<double>(sq[i]);
  }
  ASSERT_GE(head, 2048.0);
  ASSERT_LT(head, 4096.0);
  // the last element, upwards from 2048 ulps below where the exact sum reaches the boundary
  // between the two means
  const double boundary = (static_cast<double>(m1) + std::nextafter(m1, 2.0f)) / 2.0 * n;
  float last = std::sqrt(static_cast<float>(boundary - head));
  for (int step = 0; step < 2048; ++step)
    last = std::nextafter(last, 0.0f);
  bool found = false;
  float scale = 0.0f; // of the sum in element order
  for (int step = 0; step < 4096 && !found; ++step) {
    last = std::nextafter(last, 1.0f);
    x.back() = last;
    sq.back() = last * last;
    scale = scale_of(chained_sum(sq, 1));
    found = scale != scale_of(chained_sum(sq, 4)) && scale != scale_of(chained_sum(sq, 16));
  }
  // Without such a row the test would check nothing new: say so, loudly.
  ASSERT_TRUE(found) << "could not build a row whose scale depends on the summation order";
  std::mt19937 rng(17);
  const auto w = random_floats(rng, n);
  for (Isa isa : isas_under_test()) {
    std::vector<float> out(x.size());
    table_for(isa).rmsnorm(x.data(), 1, w.data(), n, eps, out.data());
    for (size_t i = 0; i < x.size(); ++i)
      expect_bits_eq(out[i], (x[i] * scale) * w[i],
                     isa_name(isa) + " rmsnorm of the order-sensitive row at " + std::to_string(i));
  }
}

TEST(KernelFloatOps, SoftmaxSumsToOneAndMatchesDouble) {
  std::mt19937 rng(12);
  for (int64_t n : {1, 3, 17, 1000}) {
    const auto x0 = random_floats(rng, n, 4.0f);
    const float scale = 0.125f;
    double max = -1e300;
    for (float v : x0)
      max = std::max(max, static_cast<double>(v * scale));
    double sum = 0;
    for (float v : x0)
      sum += std::exp(static_cast<double>(v * scale) - max);
    for (Isa isa : isas_under_test()) {
      auto x = x0;
      table_for(isa).softmax(x.data(), n, scale, false);
      double total = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double want = std::exp(static_cast<double>(x0[i] * scale) - max) / sum;
        expect_near_rel(x[i], static_cast<float>(want), 1e-5f, 1e-30f, isa_name(isa) + " softmax");
        total += x[i];
      }
      EXPECT_NEAR(total, 1.0, 1e-5) << isa_name(isa);
    }
  }
}

// Softmax and SiLU use ggml's vectorised expf and summation (kernels_scalar.cpp); every
// variant gives the scalar reference's floats, including masked (-inf) entries, results that
// underflow to subnormals or zero and exp(-x) overflowing to infinity. Softmax rounding its
// probabilities to f16 gives the unrounded reference's, each rounded to f16 and back.
TEST(KernelFloatOps, SoftmaxAndSiluBitIdenticalToScalar) {
  std::mt19937 rng(16);
  const Table& ref = table_scalar();
  for (int64_t n : {1, 15, 16, 17, 33, 64, 1000, 6912}) {
    auto x0 = random_floats(rng, n, 60.0f);
    for (int64_t i = 3; i < n; i += 7)
      x0[static_cast<size_t>(i)] = -INFINITY;
    x0[0] = 30.0f; // a finite maximum
    auto g = random_floats(rng, n, 60.0f);
    g[static_cast<size_t>(n - 1)] = -100.0f; // exp(100) overflows: silu = -0
    const auto u = random_floats(rng, n);
    for (float scale : {1.0f, 0.088388f})
      for (bool round : {false, true}) {
        auto want = x0;
        ref.softmax(want.data(), n, scale, false);
        if (round)
          for (float& p : want)
            p = fp16_to_fp32(fp32_to_fp16(p));
        for (Isa isa : isas_under_test()) {
          auto got = x0;
          table_for(isa).softmax(got.data(), n, scale, round);
          for (int64_t i = 0; i < n; ++i)
            expect_bits_eq(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)],
                           isa_name(isa) + " softmax n=" + std::to_string(n) +
                               (round ? " rounded" : ""));
        }
      }
    std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
    ref.silu_mul(g.data(), u.data(), n, want.data());
    for (Isa isa : isas_under_test()) {
      table_for(isa).silu_mul(g.data(), u.data(), n, got.data());
      for (int64_t i = 0; i < n; ++i)
        expect_bits_eq(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)],
                       isa_name(isa) + " silu_mul n=" + std::to_string(n));
    }
  }
}

TEST(KernelFloatOps, ActivationsAndAdd) {
  std::mt19937 rng(13);
  for (int64_t n : {1, 9, 6912}) {
    auto g = random_floats(rng, n, 3.0f);
    g[0] = 0.0f;
    const auto u = random_floats(rng, n);
    for (Isa isa : isas_under_test()) {
      const Table& t = table_for(isa);
      std::vector<float> relu(n), silu(n), sum(n);
      t.relu_sqr_mul(g.data(), u.data(), n, relu.data());
      t.silu_mul(g.data(), u.data(), n, silu.data());
      t.add(g.data(), u.data(), n, sum.data());
      for (int64_t i = 0; i < n; ++i) {
        const float r = std::max(g[i], 0.0f);
        // Exact: one rounding per product, the same expression everywhere.
        expect_bits_eq(relu[i], (r * r) * u[i], isa_name(isa) + " relu_sqr_mul");
        expect_bits_eq(sum[i], g[i] + u[i], isa_name(isa) + " add");
        const double s =
            static_cast<double>(g[i]) / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
        expect_near_rel(silu[i], static_cast<float>(s), 1e-6f, 1e-30f, isa_name(isa) + " silu_mul");
      }
    }
  }
}

// rope_cos_sin gives ggml's angles (θ_i = pos · base^(-2i/n_rot), multiplied up in float) and
// every variant's rope rotates each pair by them.
TEST(KernelRope, NeoxAndNormRotatePairsByThePositionAngle) {
  const int64_t n_head = 2, head_dim = 8;
  for (bool neox : {true, false}) {
    for (int64_t n_rot : {8, 4}) {
      std::vector<float> x(n_head * head_dim);
      for (size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>(i) * 0.25f - 1.0f;
      const int64_t pos = 7;
      const float base = 10000.0f;
      std::vector<float> cs(static_cast<size_t>(n_rot));
      rope_cos_sin(pos, n_rot, base, cs.data());
      for (Isa isa : isas_under_test()) {
        auto y = x;
        table_for(isa).rope(y.data(), n_head, head_dim, n_rot, cs.data(), neox);
        for (int64_t h = 0; h < n_head; ++h) {
          for (int64_t p = 0; p < n_rot / 2; ++p) {
            const double theta = pos * std::pow(base, -2.0 * p / n_rot);
            const int64_t i0 = h * head_dim + (neox ? p : 2 * p);
            const int64_t i1 = h * head_dim + (neox ? p + n_rot / 2 : 2 * p + 1);
            const double c = std::cos(theta), s = std::sin(theta);
            EXPECT_NEAR(y[i0], x[i0] * c - x[i1] * s, 1e-5) << isa_name(isa) << " neox=" << neox;
            EXPECT_NEAR(y[i1], x[i0] * s + x[i1] * c, 1e-5) << isa_name(isa) << " neox=" << neox;
          }
          for (int64_t i = n_rot; i < head_dim; ++i)
            EXPECT_EQ(y[h * head_dim + i], x[h * head_dim + i]) << "dims past n_rot must not move";
        }
      }
    }
  }
}

TEST(KernelRope, PositionZeroIsIdentity) {
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<float> cs(8);
  rope_cos_sin(0, 8, 500000.0f, cs.data());
  for (Isa isa : isas_under_test()) {
    auto y = x;
    table_for(isa).rope(y.data(), 1, 8, 8, cs.data(), true);
    EXPECT_EQ(y, x) << isa_name(isa);
  }
}

// Each pair is rotated as ggml's compiler contracts it, fma(x0, c, -(x1·s)) and
// fma(x0, s, x1·c): every variant equals that expression bit for bit, on the 2B-4T head shape
// (vector bodies) and an odd one (scalar tails).
TEST(KernelRope, EveryVariantRoundsLikeTheContractedRotation) {
  std::mt19937 rng(18);
  for (auto [head_dim, n_rot] : {std::pair<int64_t, int64_t>{128, 128}, {20, 14}}) {
    const int64_t n_head = 5;
    const auto x = random_floats(rng, n_head * head_dim, 3.0f);
    std::vector<float> cs(static_cast<size_t>(n_rot));
    rope_cos_sin(1234, n_rot, 500000.0f, cs.data());
    for (bool neox : {true, false}) {
      auto want = x;
      const int64_t half = n_rot / 2;
      for (int64_t h = 0; h < n_head; ++h)
        for (int64_t p = 0; p < half; ++p) {
          float* y0 = &want[static_cast<size_t>(h * head_dim + (neox ? p : 2 * p))];
          float* y1 = &want[static_cast<size_t>(h * head_dim + (neox ? p + half : 2 * p + 1))];
          const float a = *y0, b = *y1, c = cs[static_cast<size_t>(p)],
                      s = cs[static_cast<size_t>(half + p)];
          *y0 = std::fma(a, c, -(b * s));
          *y1 = std::fma(a, s, b * c);
        }
      for (Isa isa : isas_under_test()) {
        auto got = x;
        table_for(isa).rope(got.data(), n_head, head_dim, n_rot, cs.data(), neox);
        for (size_t i = 0; i < got.size(); ++i)
          expect_bits_eq(got[i], want[i], isa_name(isa) + " rope");
      }
    }
  }
}

// One visible line per compiled variant: the equivalence tests above cover exactly the
// available ones, so a variant this CPU cannot run is reported as skipped, never silently.
class KernelIsaCoverage : public testing::TestWithParam<Isa> {};

TEST_P(KernelIsaCoverage, VariantRunsHereOrIsReportedSkipped) {
  const Isa isa = GetParam();
  if (!is_available(isa)) {
    std::string note;
    if (isa == Isa::avxvnni && is_available(Isa::avx512))
      note = "; its I2_S gemm is checked through the EVEX-encoded build of the same source";
    GTEST_SKIP() << isa_name(isa) << ": SKIPPED (cpu lacks " << cpu_flag(isa)
                 << "): its kernels are not run on this host" << note;
  }
  std::mt19937 rng(30);
  const int64_t rows = 5, k = 1024;
  const auto ternary = random_ternary(rng, rows * k);
  const auto packed = pack_i2s(ternary, rows, k);
  const auto q = random_q(rng, k);
  int32_t act_sum = 0;
  for (int8_t v : q)
    act_sum += v;
  std::vector<float> out(rows);
  table_for(isa).i2s_gemv(packed.data(), 0.5f, k, 0, rows, q.data(), 4.0f, act_sum, out.data());
  for (int64_t r = 0; r < rows; ++r)
    expect_bits_eq(out[static_cast<size_t>(r)], expected_i2s(ternary, k, r, q.data(), 4.0f, 0.5f),
                   isa_name(isa));
}

INSTANTIATE_TEST_SUITE_P(Compiled, KernelIsaCoverage, testing::ValuesIn(compiled_isas()),
                         [](const testing::TestParamInfo<Isa>& info) {
                           return std::string(to_string(info.param));
                         });

} // namespace
} // namespace bitnet::kernels
