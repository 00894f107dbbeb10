#include "pipeline_cache.h"

#include <chrono>
#include <exception>
#include <stdexcept>
#include <utility>

#include "device.h"
#include "errors.h"

namespace ap::cuda {
namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// The in-process identity of a spec: sources are embedded and immutable, so the
// readable name plus options identify the binary; the digest is only needed
// for the archive and is computed once per spec.
std::string memory_key(const KernelSpec &spec) {
  std::string k = readable_name(spec) + "|" + spec.source_name;
  for (const auto &o : spec.options)
    k += "|" + o;
  return k;
}

} // namespace

Pipeline::Pipeline(KernelKey key, CUmodule module, CUfunction function)
    : key_(std::move(key)), module_(module), function_(function) {
  const auto &d = driver();
  check(d.cuFuncGetAttribute(&registers_, kFuncNumRegs, function_), "cuFuncGetAttribute");
  check(d.cuFuncGetAttribute(&static_shared_, kFuncSharedSizeBytes, function_),
        "cuFuncGetAttribute");
  check(d.cuFuncGetAttribute(&local_bytes_, kFuncLocalSizeBytes, function_), "cuFuncGetAttribute");
  check(d.cuFuncGetAttribute(&max_threads_, kFuncMaxThreadsPerBlock, function_),
        "cuFuncGetAttribute");
}

Pipeline::~Pipeline() {
  // Unloading during interpreter shutdown may find the driver gone; ignore.
  try {
    driver().cuModuleUnload(module_);
  } catch (...) {
  }
}

void Pipeline::ensure_dynamic_shared(int bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (bytes <= dynamic_shared_limit_) return;
  check(driver().cuFuncSetAttribute(function_, kFuncMaxDynamicSharedSizeBytes, bytes),
        ("cuFuncSetAttribute(max dynamic shared memory) for " + key_.name).c_str());
  dynamic_shared_limit_ = bytes;
}

int Pipeline::occupancy(int block_threads, int dynamic_shared_bytes) {
  // The driver answers 0 for more dynamic shared memory than the function's
  // current limit (48 KiB until raised), so raise it as a launch would.
  ensure_dynamic_shared(dynamic_shared_bytes);
  int blocks = 0;
  check(driver().cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, function_, block_threads,
                                                             size_t(dynamic_shared_bytes)),
        "cuOccupancyMaxActiveBlocksPerMultiprocessor");
  return blocks;
}

std::vector<std::pair<size_t, size_t>> Pipeline::parameter_layout(size_t count) const {
  const auto &d = driver();
  if (!d.cuFuncGetParamInfo)
    throw std::runtime_error(
        "[pipeline_cache] this driver has no cuFuncGetParamInfo (needs 12.4+)");
  // The caller names how many parameters it expects: probing past the last
  // one is an API error, which compute-sanitizer reports (session 6).
  std::vector<std::pair<size_t, size_t>> layout;
  for (size_t index = 0; index < count; ++index) {
    size_t offset = 0, size = 0;
    check(d.cuFuncGetParamInfo(function_, index, &offset, &size),
          ("cuFuncGetParamInfo(" + std::to_string(index) + ") for " + key_.name +
           " (fewer parameters than expected?)")
              .c_str());
    layout.emplace_back(offset, size);
  }
  return layout;
}

PipelineCache &PipelineCache::shared() {
  static PipelineCache cache;
  return cache;
}

void PipelineCache::warn(const std::string &message) {
  std::lock_guard<std::mutex> lock(warnings_mutex_);
  if (!reported_warnings_.insert(message).second) return;
  pending_warnings_.push_back(message);
  has_warnings_.store(true, std::memory_order_release);
}

std::vector<std::string> PipelineCache::take_warnings() {
  if (!has_warnings_.load(std::memory_order_acquire)) return {};
  std::lock_guard<std::mutex> lock(warnings_mutex_);
  has_warnings_.store(false, std::memory_order_relaxed);
  return std::exchange(pending_warnings_, {});
}

CompileResult PipelineCache::compile_or_read(const KernelSpec &spec, const KernelKey &key,
                                             BinaryArchive *archive, OnArchiveFailure on_failure) {
  const bool raise = on_failure == OnArchiveFailure::Raise;
  // Set once this key's entry failed to read or lock: neither is retried for
  // this call, and its store is skipped (it would fail the same way).
  bool entry_failed = false;
  // Only archive I/O runs inside the try blocks below, so any exception there
  // is an archive failure: it must not fail a compile that succeeds.
  auto archive_failed = [&](const std::exception &e) {
    const auto *error = dynamic_cast<const ArchiveError *>(&e);
    const bool whole = error && error->scope == ArchiveError::Scope::Archive;
    if (whole) archive->mark_unwritable();
    entry_failed = true;
    warn(std::string(e.what()) +
         (whole ? "; kernels stay in memory only" : "; this kernel stays in memory only"));
  };
  auto read = [&]() -> std::optional<CompileResult> {
    if (!archive || entry_failed) return std::nullopt;
    const auto start = std::chrono::steady_clock::now();
    std::optional<std::string> binary;
    try {
      binary = archive->load(key);
    } catch (const std::exception &e) {
      if (raise) throw;
      archive_failed(e);
    }
    if (!binary) return std::nullopt;
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.archive_loads++;
    stats_.archive_read_ms += ms_since(start);
    return CompileResult{key, std::move(*binary), "", 0};
  };
  // prebuild writes even after a warning marked the archive unwritable, so
  // that it raises the current reason.
  auto writing = [&] { return archive && !entry_failed && (raise || archive->writable()); };

  if (auto hit = read()) return std::move(*hit);
  std::optional<BinaryArchive::KeyLock> lock;
  if (writing()) {
    try {
      lock.emplace(*archive, key);
    } catch (const std::exception &e) {
      if (raise) throw;
      archive_failed(e);
    }
    if (auto hit = read()) return std::move(*hit); // another process built it meanwhile
  }
  if (compile_forbidden())
    throw CompileForbidden("[pipeline_cache] compile of " + key.name +
                           " requested while compiles are forbidden (the archive at " +
                           (archive ? archive->root() : std::string("<none>")) +
                           " does not hold it)");
  CompileResult result = Compiler::shared().compile(spec, key.arch);
  if (writing()) {
    try {
      archive->store(key, result.binary);
    } catch (const std::exception &e) {
      if (raise) throw;
      archive_failed(e);
    }
  }
  std::lock_guard<std::mutex> guard(mutex_);
  stats_.compiles++;
  stats_.compile_ms += result.compile_ms;
  return result;
}

CompileResult PipelineCache::compile_binary(const KernelSpec &spec, const std::string &arch) {
  std::shared_ptr<BinaryArchive> archive;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    archive = archive_;
  }
  const KernelKey key = Compiler::shared().key_for(spec, arch);
  return compile_or_read(spec, key, archive.get(), OnArchiveFailure::Warn);
}

std::shared_ptr<Pipeline> PipelineCache::get_or_compile(const KernelSpec &spec) {
  const std::string mkey = memory_key(spec);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pipelines_.find(mkey);
    if (it != pipelines_.end()) {
      stats_.hits++;
      return it->second;
    }
  }
  Device &device = Device::shared();
  CompileResult compiled = compile_binary(spec, device.properties().arch());
  const KernelKey &key = compiled.key;

  const auto start = std::chrono::steady_clock::now();
  const auto &d = driver();
  CUmodule module = nullptr;
  check(d.cuModuleLoadData(&module, compiled.binary.data()),
        ("cuModuleLoadData(" + key.name + ")").c_str());
  CUfunction function = nullptr;
  const CUresult got = d.cuModuleGetFunction(&function, module, spec.entry.c_str());
  if (got != 0) {
    d.cuModuleUnload(module);
    check(got, ("cuModuleGetFunction(" + spec.entry + ")").c_str());
  }
  auto pipeline = std::make_shared<Pipeline>(key, module, function);
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.load_ms += ms_since(start);
  // Two threads may race to build the same pipeline; keep the first.
  auto [it, inserted] = pipelines_.emplace(mkey, pipeline);
  return it->second;
}

bool PipelineCache::prebuild(const KernelSpec &spec, const std::string &arch) {
  std::shared_ptr<BinaryArchive> archive;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    archive = archive_;
  }
  if (!archive)
    throw std::invalid_argument("[pipeline_cache] prebuild needs an archive; none is set");
  const KernelKey key = Compiler::shared().key_for(spec, arch);
  // Whether this call compiled: asked of the archive rather than read off the
  // compile count, which other threads' prebuilds move too.
  const bool held = archive->contains(key);
  compile_or_read(spec, key, archive.get(), OnArchiveFailure::Raise);
  return !held;
}

void PipelineCache::set_archive(std::optional<std::string> root) {
  std::lock_guard<std::mutex> lock(mutex_);
  archive_ = root ? std::make_shared<BinaryArchive>(*root) : nullptr;
}

std::optional<std::string> PipelineCache::archive_root() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!archive_) return std::nullopt;
  return archive_->root();
}

int PipelineCache::archive_discarded() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return archive_ ? archive_->discarded() : 0;
}

void PipelineCache::set_compile_forbidden(bool forbidden) {
  std::lock_guard<std::mutex> lock(mutex_);
  compile_forbidden_ = forbidden;
}

bool PipelineCache::compile_forbidden() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return compile_forbidden_;
}

CacheStats PipelineCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void PipelineCache::reset_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_ = CacheStats{};
}

void PipelineCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  pipelines_.clear();
}

} // namespace ap::cuda
