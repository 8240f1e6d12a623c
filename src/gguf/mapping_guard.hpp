// A model file truncated or rewritten while mapped makes the next read of a lost page raise
// SIGBUS. A guarded mapping turns that into one line on stderr naming the file and exit code
// 4 (corrupt or truncated GGUF), instead of a bare crash. The handler is installed with the
// first guard; a SIGBUS outside every guarded mapping goes to the previous handler, or ends
// the process as it would have.
#pragma once

#include <cstddef>
#include <string>

namespace bitnet::gguf {

class MappingGuard {
public:
  MappingGuard() = default;
  MappingGuard(const void* begin, std::size_t size, const std::string& path);
  ~MappingGuard();
  MappingGuard(MappingGuard&& other) noexcept;
  MappingGuard& operator=(MappingGuard&& other) noexcept;

private:
  int slot_ = -1; // -1: not guarded (no mapping, or every slot in use)
};

} // namespace bitnet::gguf
