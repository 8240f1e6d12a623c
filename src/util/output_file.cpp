#include "bitnet/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include <fmt/format.h>

#include "bitnet/error.hpp"

namespace bitnet {

namespace {

// Temporary paths an interrupt must remove. A slot is free (0), being filled (1) or holds a
// path (2); the signal handler reads only slots in state 2.
constexpr std::size_t kSlots = 16;
struct TempSlot {
  std::atomic<int> state{0};
  char path[PATH_MAX] = {};
};
std::array<TempSlot, kSlots> g_temps;

int register_temp(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;
  for (std::size_t i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (g_temps[i].state.compare_exchange_strong(expected, 1)) {
      std::memcpy(g_temps[i].path, path.c_str(), path.size() + 1);
      g_temps[i].state.store(2);
      return static_cast<int>(i);
    }
  }
  return -1; // more than kSlots at once: still removed on failure, just not on a signal
}

void unregister_temp(int slot) {
  if (slot >= 0) g_temps[static_cast<std::size_t>(slot)].state.store(0);
}

Error io_error(const std::string& path, const char* what) {
  return Error(ErrorKind::io, fmt::format("cannot {} '{}': {}", what, path, std::strerror(errno)));
}

// The descriptor a /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N path names, or -1.
int own_descriptor(const std::string& path) {
  if (path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  for (const std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (path.rfind(prefix, 0) != 0) continue;
    const std::string digits = path.substr(prefix.size());
    if (digits.empty() || digits.size() > 6 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
      return -1;
    return std::stoi(digits);
  }
  return -1;
}

bool under_system_tree(const std::string& path) {
  return path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0;
}

// Follows symlinks in the last component, so the rename replaces the target and keeps the link.
std::string resolve_last_symlink(std::string path) {
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
    char buf[PATH_MAX];
    const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
    if (n <= 0) return path;
    const std::string target(buf, static_cast<std::size_t>(n));
    const std::size_t slash = path.rfind('/');
    path = target.front() == '/' || slash == std::string::npos ? target
                                                               : path.substr(0, slash + 1) + target;
  }
  errno = ELOOP;
  throw io_error(path, "resolve");
}

} // namespace

struct OutputFile::Impl {
  std::string path;   // as given (messages)
  std::string target; // the file the rename replaces
  std::string temp;   // empty: written directly
  int fd = -1;
  int slot = -1;
  bool committed = false;
};

OutputFile::OutputFile(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& f = *impl_;
  f.path = path;
  if (path.empty()) throw Error(ErrorKind::io, "empty output path");
  if (const int own = own_descriptor(path); own >= 0) {
    f.fd = ::fcntl(own, F_DUPFD_CLOEXEC, 0);
    if (f.fd < 0) throw io_error(path, "write");
    return;
  }
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    throw io_error(path, "write");
  }
  if (under_system_tree(path) || (exists && !S_ISREG(st.st_mode))) {
    f.fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY); // never created, never replaced
    if (f.fd < 0) throw io_error(path, "write");
    return;
  }
  f.target = resolve_last_symlink(path);
  static std::atomic<unsigned> counter{0};
  f.temp = fmt::format("{}.tmp.{}.{}", f.target, ::getpid(), counter++);
  f.fd = ::open(f.temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (f.fd < 0) {
    const int saved = errno;
    f.temp.clear();
    errno = saved;
    throw io_error(path, "create");
  }
  f.slot = register_temp(f.temp);
  if (exists) (void)::fchmod(f.fd, st.st_mode & 07777); // the replacement keeps the old mode
}

OutputFile::~OutputFile() {
  if (impl_->fd >= 0) ::close(impl_->fd);
  if (!impl_->committed && !impl_->temp.empty()) ::unlink(impl_->temp.c_str());
  unregister_temp(impl_->slot);
}

const std::string& OutputFile::path() const {
  return impl_->path;
}

void OutputFile::write(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(impl_->fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw io_error(impl_->path, "write");
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void OutputFile::commit() {
  Impl& f = *impl_;
  if (f.temp.empty()) {
    f.committed = true;
    return;
  }
  if (::fsync(f.fd) != 0) throw io_error(f.path, "write");
  const int fd = f.fd;
  f.fd = -1;
  if (::close(fd) != 0) throw io_error(f.path, "write");
  if (::rename(f.temp.c_str(), f.target.c_str()) != 0) throw io_error(f.path, "replace");
  f.committed = true;
  // The rename itself survives a crash once the directory is synced.
  const std::size_t slash = f.target.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : f.target.substr(0, slash + 1);
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void OutputFile::write_all(const std::string& path, std::string_view bytes) {
  OutputFile out(path);
  out.write(bytes);
  out.commit();
}

void refuse_output_onto_input(const std::string& output, std::span<const std::string> inputs) {
  struct stat out {};
  if (output.empty() || ::stat(output.c_str(), &out) != 0) return; // does not exist yet
  for (const std::string& input : inputs) {
    struct stat in {};
    if (!input.empty() && ::stat(input.c_str(), &in) == 0 && in.st_dev == out.st_dev &&
        in.st_ino == out.st_ino && S_ISREG(out.st_mode))
      throw Error(ErrorKind::invalid_argument,
                  fmt::format("output '{}' is the input file '{}'; refusing to overwrite it",
                              output, input));
  }
}

void remove_temporary_outputs() noexcept {
  for (TempSlot& slot : g_temps)
    if (slot.state.load() == 2) ::unlink(slot.path);
}

} // namespace bitnet
