#include "bindings.h"

namespace nb = nanobind;

NB_MODULE(_core, m) {
  m.doc() = "attention-proto host runtime (compiled core)";
  // Test runners and caches keep KernelSpecs alive until interpreter teardown,
  // after nanobind's leak check runs; the report would be noise, not a leak.
  nb::set_leak_warnings(false);
  ap::bindings::bind_errors(m);
  ap::bindings::bind_runtime(m);
  ap::bindings::bind_buffers(m);
}
