// include/bitnet/system.hpp: the kernel table's variant, CPU detection, the probes and where
// the library's messages go.
#include "bitnet/system.hpp"

#include <memory>
#include <mutex>
#include <string>

#include <spdlog/sinks/stdout_sinks.h> // stderr_sink_mt
#include <spdlog/spdlog.h>

#include "bitnet/error.hpp"
#include "kernels/kernels.hpp"
#include "probes/probes.hpp"
#include "runtime/session_impl.hpp"

namespace bitnet {

namespace {

std::vector<std::string> names(const std::vector<kernels::Isa>& isas) {
  std::vector<std::string> out;
  for (const kernels::Isa isa : isas)
    out.emplace_back(kernels::to_string(isa));
  return out;
}

// The probe of the kernel variant in use (select_isa, BITNET_ISA).
const probes::Probe& current_probe() {
  return probes::probe_for(kernels::table().isa);
}

// Runs a probe on the pool's workers, in turn with the sessions that share it.
template <typename Measure> double measure(ThreadPool& pool, Measure measure) {
  auto& p = detail::impl_of(pool);
  const std::lock_guard turn(p.turn);
  return measure(current_probe(), p.workers);
}

} // namespace

std::string current_isa() {
  return kernels::to_string(kernels::table().isa);
}

void select_isa(std::string_view name) {
  kernels::select_isa(name);
}

std::vector<std::string> available_isas() {
  return names(kernels::available_isas());
}

std::vector<std::string> compiled_isas() {
  return names(kernels::compiled_isas());
}

std::string cpu_description() {
  return kernels::cpu_description();
}

double measure_bandwidth_gbps(ThreadPool& pool) {
  return measure(pool, probes::measure_bandwidth_gbps);
}

double measure_mac_peak_gmacs(ThreadPool& pool) {
  return measure(pool, probes::measure_mac_peak_gmacs);
}

std::string mac_peak_instruction() {
  return current_probe().mac_instruction;
}

void log_to_stderr(std::string_view level) {
  const auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off")
    throw Error(ErrorKind::invalid_argument,
                "unknown log level '" + std::string(level) +
                    "' (trace, debug, info, warn, error, critical, off)");
  auto logger =
      std::make_shared<spdlog::logger>("bitnet", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%l: %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(std::move(logger));
}

} // namespace bitnet
