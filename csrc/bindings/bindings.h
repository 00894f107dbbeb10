// The Python binding layer is a shim: each function unpacks arguments and
// calls the runtime. Validation of user input lives in Python's front end.
#pragma once

#include <nanobind/nanobind.h>

namespace ap::bindings {
void bind_errors(nanobind::module_ &m);
void bind_runtime(nanobind::module_ &m);
void bind_buffers(nanobind::module_ &m);
} // namespace ap::bindings
