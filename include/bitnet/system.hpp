// The machine the library runs on: which kernel variant (ISA) computes, what the CPU is, and
// the physical limits throughput is compared against.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bitnet/session.hpp" // ThreadPool

namespace bitnet {

// Kernel variants by name: "scalar", "avx2", "avxvnni", "avx512", "amx" (x86-64), "neon",
// "neon_dotprod" (aarch64). Every variant computes the same results; they differ only in speed.

// The variant in use, chosen on first use: BITNET_ISA if set, else the best this CPU runs.
std::string current_isa();
// Sessions created from now on use `name`. Error(invalid_argument) naming the available variants
// when the name is unknown or this CPU cannot run it (never a silent fallback).
void select_isa(std::string_view name);
std::vector<std::string> available_isas(); // this CPU runs them (best last)
std::vector<std::string> compiled_isas();  // this build has them
// One line: the CPU model and the features that matter, e.g. "Intel Xeon ... [avx2+fma+f16c]".
std::string cpu_description();

// Physical limits, measured on this machine with the threads of `pool` (the best of a few
// timed passes, about a second in all): the streaming-read memory bandwidth in GB/s,
// and the peak rate of the int8 multiply-accumulate instruction of the variant in use
// (current_isa()) in G multiply-accumulates per second.
double measure_bandwidth_gbps(ThreadPool& pool);
double measure_mac_peak_gmacs(ThreadPool& pool);
// What the MAC peak counts, e.g. "vpdpbusd (AVX-512 VNNI)".
std::string mac_peak_instruction();

// The library's messages (which kernel variant runs, what it assumed about a file, warnings)
// go to spdlog's default logger, which writes to stdout until the program sets another. This
// sends them to stderr as "warning: ..." lines, those at `level` and above: "trace", "debug",
// "info", "warn", "error", "critical" or "off". Error(invalid_argument) for another name.
void log_to_stderr(std::string_view level = "info");

} // namespace bitnet
