// Writing an output file without ever losing or wrongly replacing one. Every writer (receipts,
// --out of synth and quantize, /save) goes through OutputFile.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace bitnet {

// A regular file, or a path that does not exist yet, is written to a temporary file in the
// same directory (a symlink's target directory), fsync'd, and renamed into place by commit():
// a failure or an interruption leaves any previous file intact. An existing non-regular
// target (FIFO, device, terminal, a `>(cmd)` pipe) and every path under /dev or /proc is
// written directly and never replaced; /dev/stdout, /dev/stderr and /dev/fd/N write to the
// process's own descriptors, so `--receipt /dev/stdout` appends to whatever stdout is.
class OutputFile {
public:
  // Opens (or creates the temporary for) `path`. Error(io) naming it when it cannot.
  explicit OutputFile(const std::string& path);
  ~OutputFile(); // without commit(): removes the temporary file
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  const std::string& path() const;
  void write(std::string_view bytes); // Error(io) naming the path
  // Flushes, fsyncs and renames the temporary file into place (direct targets: flushes).
  void commit();

  // The whole of `bytes` as `path`, as above.
  static void write_all(const std::string& path, std::string_view bytes);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Error(invalid_argument) when `output` names the same file (device and inode) as one of
// `inputs`; call it before any work, so `--receipt model.gguf` never touches the model.
void refuse_output_onto_input(const std::string& output, std::span<const std::string> inputs);

// Removes the temporary files of every OutputFile not yet committed. Async-signal-safe: an
// interrupt handler calls it before _exit.
void remove_temporary_outputs() noexcept;

} // namespace bitnet
