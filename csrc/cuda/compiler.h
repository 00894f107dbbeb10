// Kernel compiler: NVRTC turns a KernelSpec into a cubin for one arch. It
// needs no GPU, so an explicit arch ("sm_90a") compiles on a CPU-only machine.
#pragma once

#include <string>

#include "kernel_spec.h"

namespace ap::cuda {

struct CompileResult {
  KernelKey key;
  std::string binary; // cubin
  std::string log;    // NVRTC log, including ptxas's resource report
  double compile_ms = 0;
};

class Compiler {
public:
  static const Compiler &shared();

  // "nvrtc-13.0"; part of every kernel key.
  std::string version() const;
  KernelKey key_for(const KernelSpec &spec, const std::string &arch) const;
  // Throws CompileError carrying the log and the constants on failure.
  CompileResult compile(const KernelSpec &spec, const std::string &arch) const;

private:
  Compiler() = default;
};

} // namespace ap::cuda
