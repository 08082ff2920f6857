// io/atomic_file.hpp: write a file so that readers see the old one or the whole new one.
//
// Data goes to a temp file beside the target; commit() fsyncs it, renames it over the
// target and fsyncs the folder. Without commit() (an exception, say) the temp file is
// removed and the target is left untouched: nothing half-written is ever left behind.
// A process killed mid-write (SIGKILL) leaves its temp file; the next write of the same
// target removes such leftovers (one writer per target is assumed).
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "../config.hpp"

namespace hyena::io {

class atomic_file {
 public:
  // `what` names the kind of file in error messages ("token file", "safetensors_writer").
  atomic_file(const std::string& target, std::string what) : target_(target), what_(std::move(what)) {
    const std::string dir = std::filesystem::path(target).parent_path().string();
    dir_ = dir.empty() ? "." : dir;
    remove_stale_temps(target);
    std::string tmpl = target + ".tmp-XXXXXX";
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0) fail("cannot create a temp file in '" + dir_ + "'");
    temp_ = tmpl;
    ::fchmod(fd_, 0644);  // mkstemp makes 0600; data files are meant to be shared
  }
  ~atomic_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!temp_.empty()) ::unlink(temp_.c_str());
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;

  void write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("write failed");
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  void commit() {
    if (::fsync(fd_) != 0) fail("fsync failed");
    int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("close failed");
    if (::rename(temp_.c_str(), target_.c_str()) != 0) fail("cannot rename the temp file over it");
    temp_.clear();  // it is the target now
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {  // make the rename itself durable; best effort
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  // Removes "<target>.tmp-XXXXXX" files a killed writer left.
  static void remove_stale_temps(const std::string& target) {
    namespace fs = std::filesystem;
    const fs::path t(target);
    const fs::path dir = t.parent_path().empty() ? fs::path(".") : t.parent_path();
    const std::string prefix = t.filename().string() + ".tmp-";
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() == prefix.size() + 6 && name.rfind(prefix, 0) == 0) fs::remove(it->path(), ec);
    }
  }
  [[noreturn]] void fail(const std::string& problem) const {
    const int e = errno;
    HYENA_FAIL(what_, " ", target_, ": ", problem, ": ", std::strerror(e));
  }
  std::string target_, what_, dir_, temp_;
  int fd_ = -1;
};

}  // namespace hyena::io
