#include "binary_archive.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <system_error>

#include "sha256.h"

namespace ap {
namespace fs = std::filesystem;
namespace {

using Scope = ArchiveError::Scope;

constexpr char kMagic[8] = {'A', 'P', 'A', 'R', 'C', 'H', '0', '1'};
constexpr size_t kDigestHex = 64;
// magic | key digest (64 hex) | payload size (u64, little endian) | payload sha256 (64 hex)
constexpr size_t kHeaderSize = sizeof(kMagic) + kDigestHex + 8 + kDigestHex;
constexpr char kTempSuffix[] = ".tmp";
constexpr char kLockSuffix[] = ".lock";

std::string u64_bytes(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i)
    s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

uint64_t read_u64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t(uint8_t(p[i])) << (8 * i);
  return v;
}

std::string unique_suffix() {
  // The pid alone can repeat across containers sharing one archive, so a
  // per-process random token keeps two writers off one temp file.
  static const std::string token = std::to_string(std::random_device{}());
  static std::atomic<uint64_t> counter{0};
  return "." + std::to_string(::getpid()) + "." + token + "." + std::to_string(counter++) +
         kTempSuffix;
}

bool ends_with(const std::string &s, const char *suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// "<stem>.bin.<pid>...tmp": a temp file of store(), in this format or the
// previous one (without the token).
bool is_temp_name(const std::string &name) {
  return ends_with(name, kTempSuffix) && name.find(".bin.") != std::string::npos;
}

// std::error_code's message is strerror's text without its thread hazard.
std::string os_reason(int err) {
  return std::error_code(err, std::generic_category()).message();
}

[[noreturn]] void fail(const std::string &what, const std::string &path, const std::string &reason,
                       Scope scope) {
  throw ArchiveError("[archive] " + what + " " + path + ": " + reason, scope);
}

// An open or rename of one entry's file: only these errors say that this
// entry's own path is in the way (a directory sits there); the others
// (permission, read-only or full file system) concern the whole directory.
Scope scope_of(int err) {
  return (err == EISDIR || err == ENOTEMPTY || err == EEXIST) ? Scope::Entry : Scope::Archive;
}

// Whether `path` still names the file open as `fd`.
bool same_file(int fd, const std::string &path) {
  struct stat held, named;
  if (::fstat(fd, &held) != 0 || ::stat(path.c_str(), &named) != 0) return false;
  return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

int lock_blocking(int fd) {
  int rc;
  while ((rc = ::flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
  }
  return rc;
}

// A lock file nobody holds: lock it without waiting and, still holding it,
// unlink it if the path still names it (the same rule as KeyLock's release).
bool remove_unlocked_lock(const std::string &path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  bool removed = false;
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && same_file(fd, path))
    removed = ::unlink(path.c_str()) == 0;
  ::close(fd);
  return removed;
}

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

} // namespace

BinaryArchive::BinaryArchive(std::string root) : root_(std::move(root)) {
  if (root_.empty()) throw std::invalid_argument("[archive] root directory must not be empty");
  remove_stale_files();
}

std::string BinaryArchive::path_for(const KernelKey &key) const {
  return (fs::path(root_) / key.arch / (key.file_stem() + ".bin")).string();
}

bool BinaryArchive::contains(const KernelKey &key) const {
  std::error_code ec;
  return fs::is_regular_file(path_for(key), ec);
}

std::optional<std::string> BinaryArchive::load(const KernelKey &key) {
  const std::string path = path_for(key);
  // O_NONBLOCK: a FIFO at the entry path must not hang the open.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    // Nothing there, or a directory on the way is missing or is a file: a
    // miss. Whether the directory can be created is for the writing side to
    // report, once for the archive rather than once per key.
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return std::nullopt;
    // A directory we may not search fails every key the same way: name it,
    // so the problem is reported once rather than once per kernel.
    const std::string dir = fs::path(path).parent_path().string();
    if (::access(dir.c_str(), X_OK) != 0)
      fail("cannot read", dir, os_reason(errno), Scope::Archive);
    fail("cannot read", path, os_reason(err), Scope::Entry);
  }
  FdCloser closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) fail("cannot read", path, os_reason(errno), Scope::Entry);
  if (!S_ISREG(st.st_mode))
    fail("cannot read", path, S_ISDIR(st.st_mode) ? os_reason(EISDIR) : "not a regular file",
         Scope::Entry);
  std::string data;
  data.reserve(size_t(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot read", path, os_reason(errno), Scope::Entry);
    }
    data.append(buf, size_t(n));
  }

  auto reject = [&]() -> std::optional<std::string> {
    // Only this process's view matters: a concurrent writer replaces the file
    // atomically, so removing a bad file at worst costs one extra compile.
    std::error_code ec;
    fs::remove(path, ec);
    ++discarded_;
    return std::nullopt;
  };
  if (data.size() < kHeaderSize || std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0)
    return reject();
  const char *p = data.data() + sizeof(kMagic);
  if (std::string(p, kDigestHex) != key.digest) return reject();
  p += kDigestHex;
  const uint64_t size = read_u64(p);
  p += 8;
  const std::string checksum(p, kDigestHex);
  if (size != data.size() - kHeaderSize) return reject();
  std::string payload = data.substr(kHeaderSize);
  if (sha256_hex(payload) != checksum) return reject();
  return payload;
}

void BinaryArchive::store(const KernelKey &key, const std::string &binary) {
  const fs::path path = path_for(key);
  const std::string dir = path.parent_path().string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create", dir, ec.message(), Scope::Archive);

  std::string data(kMagic, sizeof(kMagic));
  data += key.digest + u64_bytes(binary.size()) + sha256_hex(binary) + binary;
  const std::string tmp = path.string() + unique_suffix();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  // The temp name is ours alone, so a failure to create it is about the
  // directory (permission, read-only or full file system): name that.
  if (fd < 0) fail("cannot write", dir, os_reason(errno), Scope::Archive);
  int err = 0;
  for (size_t done = 0; done < data.size() && !err;) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n >= 0)
      done += size_t(n);
    else if (errno != EINTR)
      err = errno;
  }
  // Network file systems may report a failed write only at close.
  if (::close(fd) != 0 && !err) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    fail("cannot write", dir, os_reason(err), Scope::Archive);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename a temp file to", path.string(), os_reason(err), scope_of(err));
  }
}

std::vector<std::string> BinaryArchive::entries() const {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(root_, ec)) return out;
  for (const auto &e : fs::recursive_directory_iterator(root_, ec))
    if (e.is_regular_file() && e.path().extension() == ".bin") out.push_back(e.path().string());
  return out;
}

int BinaryArchive::remove_stale_files(std::chrono::seconds max_age) const {
  int removed = 0;
  const std::time_t now = std::time(nullptr);
  std::error_code ec;
  const fs::directory_iterator end;
  for (fs::directory_iterator arch(root_, ec); !ec && arch != end; arch.increment(ec)) {
    std::error_code dec;
    if (!arch->is_directory(dec)) continue;
    for (fs::directory_iterator it(arch->path(), dec); !dec && it != end; it.increment(dec)) {
      const std::string name = it->path().filename().string();
      const bool temp = is_temp_name(name);
      if (!temp && !ends_with(name, kLockSuffix)) continue;
      const std::string path = it->path().string();
      struct stat st;
      if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      // A fresh temp file may be one another process is writing right now.
      if (now - st.st_mtime < max_age.count()) continue;
      if (temp ? ::unlink(path.c_str()) == 0 : remove_unlocked_lock(path)) ++removed;
    }
  }
  return removed;
}

// The lock file is removed on release, or every key ever compiled would leave
// one behind. Unlinking a file that others lock is the classic flock race: A
// unlinks while B waits on the old inode; C creates a new file at the path and
// locks it while B gets the old one; B and C both think they hold the lock. So
// the holder unlinks only while it still holds the lock, and whoever wins a
// lock checks that the path still names the inode it locked, else starts over
// on the current file. Then only the holder of the inode the path names (or
// named when it was unlinked) believes it holds the key.
BinaryArchive::KeyLock::KeyLock(const BinaryArchive &archive, const KernelKey &key)
    : path_(fs::path(archive.path_for(key)).replace_extension(kLockSuffix).string()) {
  const std::string dir = fs::path(path_).parent_path().string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create", dir, ec.message(), Scope::Archive);
  for (;;) {
    // Read-only is enough for flock, and opens a lock file another user made.
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      if (scope_of(err) == Scope::Entry) fail("cannot lock", path_, os_reason(err), Scope::Entry);
      fail("cannot create a lock file in", dir, os_reason(err), Scope::Archive);
    }
    if (lock_blocking(fd) != 0) {
      // A file system without flock fails the same way for every key.
      const int err = errno;
      ::close(fd);
      fail("cannot lock files in", dir, os_reason(err), Scope::Archive);
    }
    if (same_file(fd, path_)) {
      fd_ = fd;
      return;
    }
    ::close(fd); // the holder before us removed this file: lock the current one
  }
}

BinaryArchive::KeyLock::~KeyLock() {
  // Unlink before unlocking (see the constructor); closing releases the lock.
  ::unlink(path_.c_str());
  ::close(fd_);
}

} // namespace ap
