#include "compiler.h"

#include <chrono>
#include <memory>
#include <vector>

#include "driver_api.h"
#include "embedded_sources.h"
#include "errors.h"

namespace ap::cuda {
namespace {

std::vector<std::string> base_options(const std::string &arch) {
  std::vector<std::string> opts = {
      "--gpu-architecture=" + arch,
      "-std=c++17",
      // The resource report (registers, spills, stack) lands in the log, which
      // lets CPU-only CI and the benchmarks read it without a GPU.
      "--ptxas-options=-v",
      // Line info costs nothing at run time and lets compute-sanitizer name lines.
      "-lineinfo",
      "-DAP_NVRTC=1",
  };
  const std::string include = cuda_include_dir();
  if (!include.empty()) opts.push_back("-I" + include);
  return opts;
}

struct ProgramGuard {
  nvrtcProgram prog = nullptr;
  ~ProgramGuard() {
    if (prog) nvrtc().nvrtcDestroyProgram(&prog);
  }
};

} // namespace

const Compiler &Compiler::shared() {
  static Compiler compiler;
  return compiler;
}

std::string Compiler::version() const {
  int major = 0, minor = 0;
  check_nvrtc(nvrtc().nvrtcVersion(&major, &minor), "nvrtcVersion");
  return "nvrtc-" + std::to_string(major) + "." + std::to_string(minor);
}

KernelKey Compiler::key_for(const KernelSpec &spec, const std::string &arch) const {
  validate(spec);
  return make_kernel_key(spec, embedded_source(spec.source_name), embedded_headers_digest(), arch,
                         version());
}

CompileResult Compiler::compile(const KernelSpec &spec, const std::string &arch) const {
  const auto &api = nvrtc();
  CompileResult result;
  result.key = key_for(spec, arch);
  const std::string source = constants_preamble(spec) + embedded_source(spec.source_name);

  // Every embedded file is offered as an in-memory header; NVRTC only reads
  // the ones the source includes.
  std::vector<const char *> header_names, header_texts;
  for (const auto &f : embedded_files()) {
    header_names.push_back(f.name);
    header_texts.push_back(f.text);
  }

  const auto start = std::chrono::steady_clock::now();
  ProgramGuard guard;
  check_nvrtc(api.nvrtcCreateProgram(&guard.prog, source.c_str(), spec.source_name.c_str(),
                                     int(header_names.size()), header_texts.data(),
                                     header_names.data()),
              "nvrtcCreateProgram");
  std::vector<std::string> options = base_options(arch);
  options.insert(options.end(), spec.options.begin(), spec.options.end());
  std::vector<const char *> option_ptrs;
  for (const auto &o : options)
    option_ptrs.push_back(o.c_str());
  const nvrtcResult status =
      api.nvrtcCompileProgram(guard.prog, int(option_ptrs.size()), option_ptrs.data());

  size_t log_size = 0;
  api.nvrtcGetProgramLogSize(guard.prog, &log_size);
  result.log.resize(log_size);
  if (log_size > 0) api.nvrtcGetProgramLog(guard.prog, result.log.data());
  while (!result.log.empty() && (result.log.back() == '\0' || result.log.back() == '\n'))
    result.log.pop_back();

  if (status != 0) {
    std::string opts;
    for (const auto &o : options)
      opts += " " + o;
    throw CompileError("[compiler] NVRTC could not compile " + result.key.name + " for " + arch +
                           " (" + api.nvrtcGetErrorString(status) +
                           ")\n  constants: " + describe_constants(spec) + "\n  options:" + opts +
                           "\n  log:\n" + result.log,
                       result.log);
  }
  size_t cubin_size = 0;
  check_nvrtc(api.nvrtcGetCUBINSize(guard.prog, &cubin_size), "nvrtcGetCUBINSize");
  result.binary.resize(cubin_size);
  check_nvrtc(api.nvrtcGetCUBIN(guard.prog, result.binary.data()), "nvrtcGetCUBIN");
  result.compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return result;
}

} // namespace ap::cuda
