// A persistent on-disk store of compiled kernels (cubins for CUDA, a
// MTLBinaryArchive's role for Metal). One file per kernel key:
//   <root>/<arch>/<readable name>-<digest prefix>.bin
// holding a header (magic, full digest, payload size, SHA-256 of the payload)
// and the payload. Writes go to a unique temp file and are renamed into place,
// so readers never see half a file and two writers of one key both succeed. A
// truncated or corrupt entry is detected on load, deleted and reported as a
// miss, so the caller recompiles: never a crash, never the wrong binary.
//
// I/O failures (a root that cannot be created, a directory where an entry file
// goes, no permission, a full disk) throw ArchiveError naming the path and the
// OS reason. The archive is a cache, so callers that only want a kernel catch
// it and carry on from memory (PipelineCache does); only an explicit fill of
// the archive (prebuild) lets it through.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernel_spec.h"

namespace ap {

struct ArchiveError : std::runtime_error {
  // Entry: only this key's file is unusable (a directory sits at its path, it
  // cannot be read); other keys may still be stored. Archive: the directory
  // itself is unusable (cannot be created, not writable, disk full), so every
  // later store would fail the same way.
  enum class Scope { Entry, Archive };
  ArchiveError(const std::string &msg, Scope scope) : std::runtime_error(msg), scope(scope) {}
  Scope scope;
};

class BinaryArchive {
public:
  // A writer killed between write and rename leaves its temp file behind, and
  // a process killed while holding a key lock leaves the lock file. Opening an
  // archive removes both once they are older than this: a live writer finishes
  // a temp file in milliseconds, so an hour-old one has no owner.
  static constexpr std::chrono::seconds kStaleAfter{3600};

  // Removes stale temp and lock files under `root` (never raises).
  explicit BinaryArchive(std::string root);

  const std::string &root() const { return root_; }
  std::string path_for(const KernelKey &key) const;

  // nullopt on a miss (no file, or a corrupt one, which is deleted); throws
  // ArchiveError when the entry or its directory exists but cannot be read.
  std::optional<std::string> load(const KernelKey &key);
  // Throws ArchiveError on any failure, leaving no temp file behind.
  void store(const KernelKey &key, const std::string &binary);
  bool contains(const KernelKey &key) const;

  // Entries found on disk (file paths), for listings and tests.
  std::vector<std::string> entries() const;
  // Corrupt entries discarded by load() since this archive was opened.
  int discarded() const { return discarded_; }

  // Set by a caller after an Archive-scope failure, so a process stops trying
  // to write an archive it cannot write (reads still work).
  bool writable() const { return writable_; }
  void mark_unwritable() { writable_ = false; }

  // Temp files and unlocked lock files older than `max_age` in the arch
  // directories; returns how many were removed. Errors are ignored: cleanup is
  // best effort and must not stop the archive from opening.
  int remove_stale_files(std::chrono::seconds max_age = kStaleAfter) const;

  // An exclusive cross-process lock for one key (flock on a side file), so two
  // processes that miss at once compile it once: check, lock, check again. The
  // side file is removed on release; throws ArchiveError when it cannot be
  // created or locked.
  class KeyLock {
  public:
    KeyLock(const BinaryArchive &archive, const KernelKey &key);
    ~KeyLock();
    KeyLock(const KeyLock &) = delete;
    KeyLock &operator=(const KeyLock &) = delete;

  private:
    std::string path_;
    int fd_ = -1;
  };

private:
  std::string root_;
  std::atomic<int> discarded_{0};
  std::atomic<bool> writable_{true};
};

} // namespace ap
