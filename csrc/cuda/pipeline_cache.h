// The in-memory kernel cache (a Metal pipeline-state cache's role) in front of
// the persistent BinaryArchive: memory, then archive, then compile.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "binary_archive.h"
#include "compiler.h"
#include "driver_api.h"

namespace ap::cuda {

// A loaded kernel: module + function, with the resources the compile chose.
class Pipeline {
public:
  Pipeline(KernelKey key, CUmodule module, CUfunction function);
  ~Pipeline();
  Pipeline(const Pipeline &) = delete;
  Pipeline &operator=(const Pipeline &) = delete;

  const KernelKey &key() const { return key_; }
  CUfunction function() const { return function_; }
  int registers() const { return registers_; }
  int static_shared_bytes() const { return static_shared_; }
  int local_bytes() const { return local_bytes_; }
  int max_threads_per_block() const { return max_threads_; }
  // Raises the dynamic shared-memory opt-in when a launch needs > 48 KB.
  void ensure_dynamic_shared(int bytes);
  // Blocks resident per SM for this block size and dynamic shared memory.
  int occupancy(int block_threads, int dynamic_shared_bytes);
  // (offset, size) in bytes of the first `count` kernel parameters, as the
  // compiler laid them out: what a packed argument block must match. Needs a
  // 12.4+ driver.
  std::vector<std::pair<size_t, size_t>> parameter_layout(size_t count) const;

private:
  KernelKey key_;
  CUmodule module_;
  CUfunction function_;
  int registers_ = 0, static_shared_ = 0, local_bytes_ = 0, max_threads_ = 0;
  int dynamic_shared_limit_ = 48 * 1024;
  std::mutex mutex_;
};

struct CacheStats {
  long hits = 0;          // served from memory
  long archive_loads = 0; // served from the archive
  long compiles = 0;      // compiled by NVRTC
  double compile_ms = 0;  // total NVRTC time
  double archive_read_ms = 0;
  double load_ms = 0; // total module load time (cuModuleLoadData)
};

// The archive is a cache: when it cannot be read or written, get_or_compile
// and compile_binary still return the kernel (kept in memory) and queue a
// warning instead of raising. Each distinct problem is queued once per
// process; after a failure of the archive directory itself (not of one
// entry) the archive is not written again.
class PipelineCache {
public:
  static PipelineCache &shared();

  std::shared_ptr<Pipeline> get_or_compile(const KernelSpec &spec);
  // What get_or_compile does before the GPU: the binary for `arch` from the
  // archive, else compiled and stored, archive failures queued as warnings.
  // Needs no GPU; loaded pipelines are not consulted (they need one).
  CompileResult compile_binary(const KernelSpec &spec, const std::string &arch);
  // Compiles into the archive without loading (no GPU needed); returns true
  // when it compiled, false when the archive already held the binary. Filling
  // the archive is its purpose, so archive failures raise ArchiveError here.
  bool prebuild(const KernelSpec &spec, const std::string &arch);

  // Archive warnings not yet taken, oldest first; cheap when there are none.
  std::vector<std::string> take_warnings();

  void set_archive(std::optional<std::string> root);
  std::optional<std::string> archive_root() const;
  int archive_discarded() const;
  // While forbidden, any compile raises CompileForbidden (archive loads are fine).
  void set_compile_forbidden(bool forbidden);
  bool compile_forbidden() const;

  CacheStats stats() const;
  void reset_stats();
  // Drops every loaded pipeline (modules unload when their last user lets go).
  void clear();

private:
  PipelineCache() = default;
  enum class OnArchiveFailure { Warn, Raise };
  CompileResult compile_or_read(const KernelSpec &spec, const KernelKey &key,
                                BinaryArchive *archive, OnArchiveFailure on_failure);
  void warn(const std::string &message);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Pipeline>> pipelines_;
  std::shared_ptr<BinaryArchive> archive_;
  bool compile_forbidden_ = false;
  CacheStats stats_;

  // Apart from mutex_ so that a warning never waits on a cache lookup.
  std::mutex warnings_mutex_;
  std::vector<std::string> pending_warnings_;
  std::unordered_set<std::string> reported_warnings_; // every one queued, for dedup
  // Read without the mutex so that take_warnings costs one load when empty.
  std::atomic<bool> has_warnings_{false};
};

} // namespace ap::cuda
