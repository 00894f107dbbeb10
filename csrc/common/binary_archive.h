// A persistent on-disk store of compiled kernels (cubins for CUDA, a
// MTLBinaryArchive's role for Metal). One file per kernel key:
//   <root>/<arch>/<readable name>-<digest prefix>.bin
// holding a header (magic, full digest, payload size, SHA-256 of the payload)
// and the payload. Writes go to a unique temp file and are renamed into place,
// so readers never see half a file and two writers of one key both succeed. A
// truncated or corrupt entry is detected on load, deleted and reported as a
// miss, so the caller recompiles: never a crash, never the wrong binary.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "kernel_spec.h"

namespace ap {

class BinaryArchive {
public:
  explicit BinaryArchive(std::string root);

  const std::string &root() const { return root_; }
  std::string path_for(const KernelKey &key) const;

  std::optional<std::string> load(const KernelKey &key);
  void store(const KernelKey &key, const std::string &binary);
  bool contains(const KernelKey &key) const;

  // Entries found on disk (file paths), for listings and tests.
  std::vector<std::string> entries() const;
  // Corrupt entries discarded by load() since this archive was opened.
  int discarded() const { return discarded_; }

  // An exclusive cross-process lock for one key (flock on a side file), so two
  // processes that miss at once compile it once: check, lock, check again.
  class KeyLock {
  public:
    KeyLock(const BinaryArchive &archive, const KernelKey &key);
    ~KeyLock();
    KeyLock(const KeyLock &) = delete;
    KeyLock &operator=(const KeyLock &) = delete;

  private:
    int fd_ = -1;
  };

private:
  std::string root_;
  std::atomic<int> discarded_{0};
};

} // namespace ap
