#include "pipeline_cache.h"

#include <chrono>

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

PipelineCache &PipelineCache::shared() {
  static PipelineCache cache;
  return cache;
}

CompileResult PipelineCache::compile_or_read(const KernelSpec &spec, const KernelKey &key,
                                             BinaryArchive *archive) {
  auto read = [&]() -> std::optional<CompileResult> {
    if (!archive) return std::nullopt;
    const auto start = std::chrono::steady_clock::now();
    auto binary = archive->load(key);
    if (!binary) return std::nullopt;
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.archive_loads++;
    stats_.archive_read_ms += ms_since(start);
    return CompileResult{key, std::move(*binary), "", 0};
  };
  if (auto hit = read()) return std::move(*hit);
  std::optional<BinaryArchive::KeyLock> lock;
  if (archive) {
    lock.emplace(*archive, key);
    if (auto hit = read()) return std::move(*hit); // another process built it meanwhile
  }
  if (compile_forbidden())
    throw CompileForbidden("[pipeline_cache] compile of " + key.name +
                           " requested while compiles are forbidden (the archive at " +
                           (archive ? archive->root() : std::string("<none>")) +
                           " does not hold it)");
  CompileResult result = Compiler::shared().compile(spec, key.arch);
  if (archive) archive->store(key, result.binary);
  std::lock_guard<std::mutex> guard(mutex_);
  stats_.compiles++;
  stats_.compile_ms += result.compile_ms;
  return result;
}

std::shared_ptr<Pipeline> PipelineCache::get_or_compile(const KernelSpec &spec) {
  const std::string mkey = memory_key(spec);
  std::shared_ptr<BinaryArchive> archive;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pipelines_.find(mkey);
    if (it != pipelines_.end()) {
      stats_.hits++;
      return it->second;
    }
    archive = archive_;
  }
  Device &device = Device::shared();
  const KernelKey key = Compiler::shared().key_for(spec, device.properties().arch());
  CompileResult compiled = compile_or_read(spec, key, archive.get());

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
  const long before = stats().compiles;
  compile_or_read(spec, key, archive.get());
  return stats().compiles > before;
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
