#include "embedded_sources.h"

#include <stdexcept>

#include "sha256.h"

namespace ap {

namespace {
bool ends_with(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
// Headers and included fragments: anything a kernel source may #include.
bool is_header(const std::string &name) {
  return ends_with(name, ".h") || ends_with(name, ".cuh") || ends_with(name, ".inc");
}
} // namespace

std::string embedded_source(const std::string &name) {
  std::string known;
  for (const auto &f : embedded_files()) {
    if (name == f.name) return f.text;
    known += std::string(known.empty() ? "" : ", ") + f.name;
  }
  throw std::invalid_argument("[compiler] no embedded source named '" + name +
                              "'; known: " + known);
}

const std::string &embedded_headers_digest() {
  static const std::string digest = [] {
    Sha256 h;
    for (const auto &f : embedded_files())
      if (is_header(f.name)) h.update(f.name).update("\n").update(f.text).update("\n");
    return h.hex_digest();
  }();
  return digest;
}

} // namespace ap
