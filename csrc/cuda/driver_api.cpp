#include "driver_api.h"

#include <dlfcn.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "errors.h"
#include "library_paths.h"

namespace ap::cuda {
namespace {

template <class Fn> void bind(void *lib, const char *name, Fn &slot, std::string &missing) {
  slot = reinterpret_cast<Fn>(dlsym(lib, name));
  if (!slot) missing += std::string(" ") + name;
}

struct Loaded {
  std::once_flag once;
  void *handle = nullptr;
  std::string status;
};

Loaded &driver_state() {
  static Loaded s;
  return s;
}
Loaded &nvrtc_state() {
  static Loaded s;
  return s;
}

// libnvrtc opens libnvrtc-builtins by soname at compile time; a pip wheel's
// folder is not on the loader's path, so load the builtins beside it first.
void preload_nvrtc_builtins(const std::string &nvrtc_path) {
  namespace fs = std::filesystem;
  if (nvrtc_path.find('/') == std::string::npos) return;
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(fs::path(nvrtc_path).parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("libnvrtc-builtins.so.", 0) == 0 && name.find(".alt.") == std::string::npos)
      dlopen(e.path().c_str(), RTLD_NOW | RTLD_GLOBAL);
  }
}

void *open_first(const std::vector<std::string> &candidates, std::string &status,
                 void (*before_open)(const std::string &) = nullptr) {
  std::string tried;
  for (const auto &path : candidates) {
    if (before_open) before_open(path);
    if (void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      status = "loaded " + path;
      return h;
    }
    const char *err = dlerror();
    tried += "\n  " + path + ": " + (err ? err : "not found");
  }
  status = "not found; tried:" + tried;
  return nullptr;
}

DriverApi g_driver{};
NvrtcApi g_nvrtc{};

void load_driver_once() {
  auto &s = driver_state();
  std::call_once(s.once, [&] {
    s.handle = open_first(LibraryPaths::get().driver, s.status);
    if (!s.handle) return;
    std::string missing;
    auto *h = s.handle;
    auto &d = g_driver;
    bind(h, "cuInit", d.cuInit, missing);
    bind(h, "cuDriverGetVersion", d.cuDriverGetVersion, missing);
    bind(h, "cuGetErrorName", d.cuGetErrorName, missing);
    bind(h, "cuGetErrorString", d.cuGetErrorString, missing);
    bind(h, "cuDeviceGetCount", d.cuDeviceGetCount, missing);
    bind(h, "cuDeviceGet", d.cuDeviceGet, missing);
    bind(h, "cuDeviceGetName", d.cuDeviceGetName, missing);
    bind(h, "cuDeviceGetAttribute", d.cuDeviceGetAttribute, missing);
    bind(h, "cuDeviceTotalMem_v2", d.cuDeviceTotalMem, missing);
    bind(h, "cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain, missing);
    bind(h, "cuCtxSetCurrent", d.cuCtxSetCurrent, missing);
    bind(h, "cuCtxSynchronize", d.cuCtxSynchronize, missing);
    bind(h, "cuMemAlloc_v2", d.cuMemAlloc, missing);
    bind(h, "cuMemFree_v2", d.cuMemFree, missing);
    bind(h, "cuMemHostAlloc", d.cuMemHostAlloc, missing);
    bind(h, "cuMemFreeHost", d.cuMemFreeHost, missing);
    bind(h, "cuMemGetInfo_v2", d.cuMemGetInfo, missing);
    bind(h, "cuMemcpyHtoD_v2", d.cuMemcpyHtoD, missing);
    bind(h, "cuMemcpyDtoH_v2", d.cuMemcpyDtoH, missing);
    bind(h, "cuMemcpyDtoD_v2", d.cuMemcpyDtoD, missing);
    bind(h, "cuMemsetD8_v2", d.cuMemsetD8, missing);
    bind(h, "cuMemsetD16_v2", d.cuMemsetD16, missing);
    bind(h, "cuMemsetD32_v2", d.cuMemsetD32, missing);
    bind(h, "cuMemsetD8Async", d.cuMemsetD8Async, missing);
    bind(h, "cuMemsetD16Async", d.cuMemsetD16Async, missing);
    bind(h, "cuMemsetD32Async", d.cuMemsetD32Async, missing);
    bind(h, "cuMemAllocAsync", d.cuMemAllocAsync, missing);
    bind(h, "cuMemFreeAsync", d.cuMemFreeAsync, missing);
    bind(h, "cuDeviceGetDefaultMemPool", d.cuDeviceGetDefaultMemPool, missing);
    bind(h, "cuMemPoolSetAttribute", d.cuMemPoolSetAttribute, missing);
    bind(h, "cuMemHostGetDevicePointer_v2", d.cuMemHostGetDevicePointer, missing);
    bind(h, "cuModuleLoadData", d.cuModuleLoadData, missing);
    bind(h, "cuModuleUnload", d.cuModuleUnload, missing);
    bind(h, "cuModuleGetFunction", d.cuModuleGetFunction, missing);
    bind(h, "cuFuncGetAttribute", d.cuFuncGetAttribute, missing);
    bind(h, "cuFuncSetAttribute", d.cuFuncSetAttribute, missing);
    bind(h, "cuOccupancyMaxActiveBlocksPerMultiprocessor",
         d.cuOccupancyMaxActiveBlocksPerMultiprocessor, missing);
    bind(h, "cuLaunchKernel", d.cuLaunchKernel, missing);
    bind(h, "cuStreamSynchronize", d.cuStreamSynchronize, missing);
    bind(h, "cuStreamWaitEvent", d.cuStreamWaitEvent, missing);
    bind(h, "cuEventCreate", d.cuEventCreate, missing);
    bind(h, "cuEventDestroy_v2", d.cuEventDestroy, missing);
    bind(h, "cuEventRecord", d.cuEventRecord, missing);
    bind(h, "cuEventSynchronize", d.cuEventSynchronize, missing);
    bind(h, "cuEventElapsedTime_v2", d.cuEventElapsedTime, missing);
    std::string optional; // a driver without TMA still runs everything else
    bind(h, "cuFuncGetParamInfo", d.cuFuncGetParamInfo, optional);
    bind(h, "cuTensorMapEncodeTiled", d.cuTensorMapEncodeTiled, optional);
    if (!missing.empty()) {
      s.status += "; missing symbols:" + missing;
      s.handle = nullptr;
    }
  });
}

void load_nvrtc_once() {
  auto &s = nvrtc_state();
  std::call_once(s.once, [&] {
    s.handle = open_first(LibraryPaths::get().nvrtc, s.status, preload_nvrtc_builtins);
    if (!s.handle) return;
    std::string missing;
    auto *h = s.handle;
    auto &n = g_nvrtc;
    bind(h, "nvrtcVersion", n.nvrtcVersion, missing);
    bind(h, "nvrtcGetErrorString", n.nvrtcGetErrorString, missing);
    bind(h, "nvrtcCreateProgram", n.nvrtcCreateProgram, missing);
    bind(h, "nvrtcDestroyProgram", n.nvrtcDestroyProgram, missing);
    bind(h, "nvrtcCompileProgram", n.nvrtcCompileProgram, missing);
    bind(h, "nvrtcGetProgramLogSize", n.nvrtcGetProgramLogSize, missing);
    bind(h, "nvrtcGetProgramLog", n.nvrtcGetProgramLog, missing);
    bind(h, "nvrtcGetCUBINSize", n.nvrtcGetCUBINSize, missing);
    bind(h, "nvrtcGetCUBIN", n.nvrtcGetCUBIN, missing);
    if (!missing.empty()) {
      s.status += "; missing symbols:" + missing;
      s.handle = nullptr;
    }
  });
}

std::string error_text(CUresult code) {
  const char *name = nullptr;
  const char *desc = nullptr;
  if (g_driver.cuGetErrorName) g_driver.cuGetErrorName(code, &name);
  if (g_driver.cuGetErrorString) g_driver.cuGetErrorString(code, &desc);
  return std::string(name ? name : "CUDA_ERROR_UNKNOWN") + " (" + std::to_string(code) +
         (desc ? std::string(": ") + desc : std::string()) + ")";
}

std::mutex g_fault_mutex;
std::string g_first_fault;

} // namespace

bool is_sticky_error(CUresult code) {
  switch (code) {
  case 700: // ILLEGAL_ADDRESS
  case 710: // ASSERT
  case 714: // HARDWARE_STACK_ERROR
  case 715: // ILLEGAL_INSTRUCTION
  case 716: // MISALIGNED_ADDRESS
  case 717: // INVALID_ADDRESS_SPACE
  case 718: // INVALID_PC
  case 719: // LAUNCH_FAILED
    return true;
  default:
    return false;
  }
}

const DriverApi &driver() {
  load_driver_once();
  if (!driver_state().handle)
    throw BackendUnavailable("[cuda] the CUDA driver library (libcuda) is " +
                             driver_state().status);
  return g_driver;
}

const NvrtcApi &nvrtc() {
  load_nvrtc_once();
  if (!nvrtc_state().handle)
    throw BackendUnavailable("[compiler] NVRTC (libnvrtc) is " + nvrtc_state().status +
                             "\n  install it with: pip install 'nvidia-cuda-nvrtc==13.0.*'");
  return g_nvrtc;
}

std::string driver_status() {
  load_driver_once();
  return driver_state().status;
}

std::string nvrtc_status() {
  load_nvrtc_once();
  return nvrtc_state().status;
}

std::string cuda_include_dir() {
  return LibraryPaths::get().include_dir;
}

void check(CUresult code, const char *what) {
  if (code == 0) return;
  std::string text = error_text(code);
  if (is_sticky_error(code)) {
    std::lock_guard<std::mutex> lock(g_fault_mutex);
    if (g_first_fault.empty()) g_first_fault = std::string(what) + ": " + text;
    throw DeviceFault("[cuda] device fault (sticky; the CUDA context is unusable, restart "
                      "the process): first reported at " +
                          g_first_fault + "; now at " + what,
                      code);
  }
  throw BackendError(std::string("[cuda] ") + what + " failed: " + text, code);
}

void check_nvrtc(nvrtcResult code, const char *what) {
  if (code == 0) return;
  const char *text = g_nvrtc.nvrtcGetErrorString ? g_nvrtc.nvrtcGetErrorString(code) : "?";
  throw BackendError(std::string("[compiler] ") + what + " failed: " + text, code);
}

} // namespace ap::cuda
