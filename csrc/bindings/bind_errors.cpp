#include <nanobind/nanobind.h>

#include "bindings.h"
#include "errors.h"

namespace nb = nanobind;

namespace ap::bindings {

void bind_errors(nb::module_ &m) {
  // Translators registered later are tried first, so subclasses come last.
  static nb::exception<ap::BackendUnavailable> unavailable(m, "BackendUnavailable",
                                                           PyExc_RuntimeError);
  static nb::exception<ap::BackendError> backend_error(m, "BackendError", PyExc_RuntimeError);
  static nb::exception<ap::DeviceFault> fault(m, "DeviceFault", backend_error.ptr());
  static nb::exception<ap::CompileForbidden> forbidden(m, "CompileForbidden", PyExc_RuntimeError);
  static nb::exception<ap::DeviceInputError> input_error(m, "DeviceInputError", PyExc_ValueError);
  static nb::exception<ap::CompileError> compile_error(m, "CompileError", PyExc_RuntimeError);
  // CompileError also carries the raw NVRTC log as `.log`.
  nb::register_exception_translator(
      [](const std::exception_ptr &p, void *payload) {
        try {
          std::rethrow_exception(p);
        } catch (const ap::CompileError &e) {
          PyObject *type = static_cast<PyObject *>(payload);
          nb::object exc = nb::borrow(type)(nb::str(e.what()));
          exc.attr("log") = nb::str(e.log.c_str());
          PyErr_SetObject(type, exc.ptr());
        }
      },
      compile_error.ptr());
}

} // namespace ap::bindings
