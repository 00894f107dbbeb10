#include "kernel_spec.h"

#include <cctype>
#include <stdexcept>

#include "sha256.h"

#ifndef AP_PACKAGE_VERSION
#define AP_PACKAGE_VERSION "unknown"
#endif

namespace ap {
namespace {

bool is_identifier(const std::string &s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

bool is_literal(const std::string &s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' ||
          c == '_'))
      return false;
  return true;
}

} // namespace

std::string KernelKey::file_stem() const {
  return name + "-" + digest.substr(0, 20);
}

void validate(const KernelSpec &spec) {
  if (!is_identifier(spec.entry))
    throw std::invalid_argument("[compiler] kernel entry must be a C identifier, got '" +
                                spec.entry + "'");
  for (const auto &c : spec.constants) {
    if (!is_identifier(c.name))
      throw std::invalid_argument("[compiler] constant name must be a C identifier, got '" +
                                  c.name + "'");
    if (c.type != "int" && c.type != "bool" && c.type != "float")
      throw std::invalid_argument("[compiler] constant " + c.name +
                                  " must have type int, bool or float, got '" + c.type + "'");
    if (!is_literal(c.value))
      throw std::invalid_argument("[compiler] constant " + c.name + " has a malformed value '" +
                                  c.value + "'");
  }
}

std::string readable_name(const KernelSpec &spec) {
  std::string name = spec.entry;
  for (const auto &c : spec.constants) {
    std::string v;
    for (char ch : c.value)
      v += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
    name += "__" + c.name + "_" + v;
  }
  return name;
}

std::string constants_preamble(const KernelSpec &spec) {
  std::string out = "// specialization constants\n";
  for (const auto &c : spec.constants) {
    std::string value = c.value;
    if (c.type == "float") value = "((float)" + value + ")";
    out += "#define " + c.name + " " + value + "\n";
  }
  return out + "#line 1\n";
}

std::string describe_constants(const KernelSpec &spec) {
  std::string out;
  for (const auto &c : spec.constants)
    out += (out.empty() ? "" : " ") + c.name + "=" + c.value;
  return out.empty() ? "(none)" : out;
}

KernelKey make_kernel_key(const KernelSpec &spec, const std::string &source,
                          const std::string &headers_digest, const std::string &arch,
                          const std::string &compiler_version) {
  Sha256 h;
  auto field = [&](const std::string &s) {
    h.update(std::to_string(s.size())).update(":").update(s);
  };
  field(spec.entry);
  field(constants_preamble(spec));
  field(source);
  field(headers_digest);
  for (const auto &o : spec.options)
    field(o);
  field(arch);
  field(compiler_version);
  field(AP_PACKAGE_VERSION);
  return KernelKey{readable_name(spec), h.hex_digest(), arch};
}

} // namespace ap
