// include/bitnet/system.hpp and the shareable ThreadPool: the kernel variants against the
// CPU flags the kernel reports in /proc/cpuinfo, and sessions sharing one pool (in turns and
// from several threads) against sessions with pools of their own.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "bitnet/bitnet.hpp"
#include "support/greedy.hpp"

namespace bitnet {
namespace {

const std::string kDemo = std::string(BITNET_TEST_DATA_DIR) + "/real-tiny/bitnet-tiny-brown.gguf";

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

ErrorKind kind_of(const auto& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no bitnet::Error thrown";
  return ErrorKind::io;
}

// The first "flags" line of /proc/cpuinfo (x86 Linux), or empty.
std::set<std::string> cpu_flags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    return {std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
  }
  return {};
}

TEST(System, IsasFollowTheCpuFlags) {
  const auto compiled = compiled_isas();
  const auto available = available_isas();
  EXPECT_TRUE(contains(available, "scalar"));
  for (const std::string& isa : available)
    EXPECT_TRUE(contains(compiled, isa)) << isa;
  EXPECT_TRUE(contains(available, current_isa()));
#if defined(__x86_64__)
  EXPECT_EQ(compiled, (std::vector<std::string>{"scalar", "avx2", "avxvnni", "avx512", "amx"}));
  const auto flags = cpu_flags();
  if (flags.empty()) GTEST_SKIP() << "SKIPPED (no flags line in /proc/cpuinfo)";
  const auto has = [&](std::initializer_list<const char*> names) {
    return std::all_of(names.begin(), names.end(), [&](const char* f) { return flags.count(f); });
  };
  EXPECT_EQ(contains(available, "avx2"), has({"avx2", "fma", "f16c"}));
  EXPECT_EQ(contains(available, "avxvnni"), has({"avx2", "fma", "f16c", "avx_vnni"}));
  EXPECT_EQ(contains(available, "avx512"),
            has({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"}));
  EXPECT_EQ(contains(available, "amx"), has({"avx2", "fma", "f16c", "avx512f", "avx512bw",
                                             "avx512vl", "avx512_vnni", "amx_tile", "amx_int8"}));
  // The best variant is the default unless BITNET_ISA chose another.
  if (std::getenv("BITNET_ISA") == nullptr) {
    EXPECT_EQ(current_isa(), available.back());
  }
#endif
}

// The MAC peak is probed with the instruction of the variant in use, so `bitnet bench --isa
// avx2` is compared against AVX2's peak, not the best instruction the CPU has.
TEST(System, MacPeakProbeFollowsTheSelectedIsa) {
  const std::string before = current_isa();
  const std::map<std::string, std::string> instruction = {
      {"avx2", "vpmaddubsw"}, {"avxvnni", "vpdpbusd ymm"}, {"avx512", "vpdpbusd (AVX-512"},
      {"amx", "tdpbsud"},     {"neon", "smlal"},           {"neon_dotprod", "sdot"}};
  for (const std::string& isa : available_isas()) {
    select_isa(isa);
    const auto it = instruction.find(isa);
    if (it == instruction.end()) continue;
    EXPECT_NE(mac_peak_instruction().find(it->second), std::string::npos)
        << isa << ": " << mac_peak_instruction();
  }
  select_isa(before);
}

TEST(System, SelectIsaRefusesWhatThisCpuCannotRun) {
  const std::string before = current_isa();
  EXPECT_EQ(kind_of([] { select_isa("sse9"); }), ErrorKind::invalid_argument);
  for (const std::string& isa : compiled_isas()) {
    if (contains(available_isas(), isa)) continue;
    EXPECT_EQ(kind_of([&] { select_isa(isa); }), ErrorKind::invalid_argument) << isa;
  }
  select_isa("scalar");
  EXPECT_EQ(current_isa(), "scalar");
  select_isa(before);
  EXPECT_EQ(current_isa(), before);
}

TEST(System, CpuDescriptionNamesTheModel) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const std::string model = line.substr(line.find(':') + 2);
    EXPECT_EQ(cpu_description().rfind(model, 0), 0u) << cpu_description();
    return;
  }
  GTEST_SKIP() << "SKIPPED (no model name in /proc/cpuinfo)";
}

TEST(System, MacPeakIsMeasured) {
  ThreadPool pool(1);
  EXPECT_GT(measure_mac_peak_gmacs(pool), 0.0);
  EXPECT_FALSE(mac_peak_instruction().empty());
}

// The library's messages leave stdout to the program: a warning the library gives (more
// threads than CPUs) arrives on stderr as "warning: ...", and below the level nothing does.
TEST(System, LogToStderrKeepsStdoutClean) {
  const auto oversubscribed = static_cast<int32_t>(std::thread::hardware_concurrency()) + 1;
  for (const char* level : {"warn", "error"}) {
    log_to_stderr(level);
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    ThreadPool pool(oversubscribed);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(testing::internal::GetCapturedStdout(), "") << level;
    if (std::string(level) == "warn")
      EXPECT_EQ(err.rfind("warning: ", 0), 0u) << err;
    else
      EXPECT_EQ(err, "");
  }
  EXPECT_EQ(kind_of([] { log_to_stderr("loud"); }), ErrorKind::invalid_argument);
  log_to_stderr("info");
}

TEST(ThreadPool, SizeAndLimits) {
  EXPECT_EQ(ThreadPool(3).n_threads(), 3);
  EXPECT_EQ(ThreadPool().n_threads(), default_threads());
  EXPECT_GE(default_threads(), 1);
  EXPECT_EQ(kind_of([] { ThreadPool(-1); }), ErrorKind::invalid_argument);
  EXPECT_EQ(kind_of([] { ThreadPool(513); }), ErrorKind::invalid_argument);
}

using test::greedy;

const char* const kPrompts[] = {"The jury said it did find that",
                                "In the morning, the old man walked down to the"};

TEST(ThreadPool, SessionsShareOnePool) {
  const auto model = Model::load(kDemo);
  const auto pool = std::make_shared<ThreadPool>(2);
  Session a(model, {.n_ctx = 128, .pool = pool});
  Session b(model, {.n_ctx = 128, .n_threads = 2, .pool = pool});
  EXPECT_EQ(a.pool(), pool);
  EXPECT_EQ(b.n_threads(), 2);
  EXPECT_EQ(kind_of([&] { Session(model, {.n_threads = 1, .pool = pool}); }),
            ErrorKind::invalid_argument);

  // Turns: a and b alternate on the one pool; each equals a session with its own pool.
  std::vector<int32_t> alone[2];
  for (int i = 0; i < 2; ++i) {
    Session own(model, {.n_ctx = 128, .n_threads = 2});
    alone[i] = generate(own, kPrompts[i], greedy(16)).generated_ids;
  }
  EXPECT_NE(alone[0], alone[1]);
  Session* sessions[2] = {&a, &b};
  std::vector<int32_t> turns[2];
  for (int step = 0; step < 16; ++step) {
    for (int i = 0; i < 2; ++i) {
      const Stats st = step == 0 ? generate(*sessions[i], kPrompts[i], greedy(1))
                                 : generate(*sessions[i], std::span<const int32_t>{}, greedy(1));
      turns[i].push_back(st.generated_ids.at(0));
    }
  }
  EXPECT_EQ(turns[0], alone[0]);
  EXPECT_EQ(turns[1], alone[1]);

  // Two threads at once: the pool serialises their forwards.
  std::vector<int32_t> threaded[2];
  a.clear();
  b.clear();
  std::thread other([&] { threaded[1] = generate(b, kPrompts[1], greedy(16)).generated_ids; });
  threaded[0] = generate(a, kPrompts[0], greedy(16)).generated_ids;
  other.join();
  EXPECT_EQ(threaded[0], alone[0]);
  EXPECT_EQ(threaded[1], alone[1]);
}

TEST(Session, DecodeStepBytesAddTheCacheRead) {
  const auto model = Model::load(kDemo);
  const ModelInfo& info = model->info();
  // Per cached position: K and V rows of n_head_kv · head_dim elements in every layer.
  const double row = 2.0 * info.n_layer * info.n_head_kv * info.head_dim;
  Session f16(model, {.n_ctx = 64, .n_threads = 1, .kv_type = KvType::f16});
  Session f32(model, {.n_ctx = 64, .n_threads = 1, .kv_type = KvType::f32});
  const auto weights = static_cast<double>(info.weight_bytes_per_token);
  EXPECT_EQ(f16.decode_step_bytes(0), weights + row * 2);
  EXPECT_EQ(f16.decode_step_bytes(9), weights + row * 2 * 10);
  EXPECT_EQ(f32.decode_step_bytes(9), weights + row * 4 * 10);
}

} // namespace
} // namespace bitnet
