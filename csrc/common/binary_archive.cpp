#include "binary_archive.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "sha256.h"

namespace ap {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'A', 'P', 'A', 'R', 'C', 'H', '0', '1'};
constexpr size_t kDigestHex = 64;
// magic | key digest (64 hex) | payload size (u64, little endian) | payload sha256 (64 hex)
constexpr size_t kHeaderSize = sizeof(kMagic) + kDigestHex + 8 + kDigestHex;

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
  static std::atomic<uint64_t> counter{0};
  return "." + std::to_string(::getpid()) + "." + std::to_string(counter++) + ".tmp";
}

} // namespace

BinaryArchive::BinaryArchive(std::string root) : root_(std::move(root)) {
  if (root_.empty()) throw std::invalid_argument("[archive] root directory must not be empty");
}

std::string BinaryArchive::path_for(const KernelKey &key) const {
  return (fs::path(root_) / key.arch / (key.file_stem() + ".bin")).string();
}

bool BinaryArchive::contains(const KernelKey &key) const {
  std::error_code ec;
  return fs::exists(path_for(key), ec);
}

std::optional<std::string> BinaryArchive::load(const KernelKey &key) {
  const std::string path = path_for(key);
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  in.close();

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
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    throw std::runtime_error("[archive] cannot create " + path.parent_path().string() + ": " +
                             ec.message());
  const std::string tmp = path.string() + unique_suffix();
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(kMagic, sizeof(kMagic));
    out << key.digest << u64_bytes(binary.size()) << sha256_hex(binary) << binary;
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      throw std::runtime_error("[archive] cannot write " + tmp);
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw std::runtime_error("[archive] cannot rename into " + path.string());
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

BinaryArchive::KeyLock::KeyLock(const BinaryArchive &archive, const KernelKey &key) {
  const fs::path lock = fs::path(archive.path_for(key)).replace_extension(".lock");
  std::error_code ec;
  fs::create_directories(lock.parent_path(), ec);
  fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  // Without a lock file (read-only cache dir) we still work, just without the
  // cross-process guarantee of a single compile.
  if (fd_ >= 0) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
}

BinaryArchive::KeyLock::~KeyLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

} // namespace ap
