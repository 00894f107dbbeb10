// Exceptions the runtime raises; the bindings map each to a Python class.
// Messages start with their component, e.g. "[compiler] ...".
#pragma once

#include <stdexcept>
#include <string>

namespace ap {

// The backend's libraries or device are missing (import still works).
struct BackendUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A driver call failed.
struct BackendError : std::runtime_error {
  BackendError(const std::string &msg, int code) : std::runtime_error(msg), code(code) {}
  int code;
};

// A sticky device fault (illegal address, trap, ...): the context is unusable
// until the process restarts, so every later call reports this first fault.
struct DeviceFault : BackendError {
  using BackendError::BackendError;
};

// Kernel compilation failed; the message carries the compiler log and the
// specialization constants used.
struct CompileError : std::runtime_error {
  CompileError(const std::string &msg, std::string log)
      : std::runtime_error(msg), log(std::move(log)) {}
  std::string log;
};

// A compile was requested while compiles are forbidden (benchmarks use this
// to keep compile time out of their numbers).
struct CompileForbidden : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A kernel found a device-resident input out of range (a page id outside the
// pool, a context length outside the table); raised at the next call.
struct DeviceInputError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

} // namespace ap
