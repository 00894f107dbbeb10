// Where to look for libcuda, libnvrtc and the CUDA headers. Python computes
// the search order (env override, pip wheels, CUDA_HOME, /usr/local/cuda) and
// hands it over before the first use; the defaults let the loader decide.
#pragma once

#include <string>
#include <vector>

namespace ap::cuda {

struct LibraryPaths {
  std::vector<std::string> driver{"libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1"};
  std::vector<std::string> nvrtc{"libnvrtc.so.13", "libnvrtc.so.12"};
  std::string include_dir;

  static LibraryPaths &get() {
    static LibraryPaths paths;
    return paths;
  }
};

} // namespace ap::cuda
