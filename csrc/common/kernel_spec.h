// What to compile: a kernel source, its entry point and its specialization
// constants (the analog of Metal function constants). Runtime arguments such as
// sequence lengths never appear here, so one binary serves every shape.
#pragma once

#include <string>
#include <vector>

namespace ap {

struct SpecializationConstant {
  std::string name;  // a C identifier, e.g. HEAD_DIM
  std::string type;  // "int", "bool" or "float"
  std::string value; // its C literal, e.g. "128", "1", "0x1p-3f"
};

struct KernelSpec {
  std::string entry;       // extern "C" symbol in the compiled module
  std::string source_name; // e.g. "simple_attention.cu" (an embedded shader)
  std::vector<SpecializationConstant> constants;
  std::vector<std::string> options; // extra compiler options
};

// The identity of one compiled binary. `name` is readable and names the kernel,
// its archive file and its log lines; `digest` covers everything that changes
// the binary: source after the constants are applied, every embedded header,
// options, compiler version, target arch and package version.
struct KernelKey {
  std::string name;
  std::string digest; // hex SHA-256
  std::string arch;
  std::string file_stem() const; // name + "-" + first 20 hex digits
};

// "simple_attention__HEAD_DIM_64__DTYPE_1": the entry plus every constant.
std::string readable_name(const KernelSpec &spec);
// The preamble of #defines that applies the constants to the source.
std::string constants_preamble(const KernelSpec &spec);
// "HEAD_DIM=64 DTYPE=1", for error messages.
std::string describe_constants(const KernelSpec &spec);
// Throws std::invalid_argument on a malformed name, type or value.
void validate(const KernelSpec &spec);

KernelKey make_kernel_key(const KernelSpec &spec, const std::string &source,
                          const std::string &headers_digest, const std::string &arch,
                          const std::string &compiler_version);

} // namespace ap
