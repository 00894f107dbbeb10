// Kernel sources and their headers, embedded into the extension at build time
// (cmake/embed_sources.cmake), so nothing is looked up on disk at run time and
// the binary's key covers exactly the text that was compiled.
#pragma once

#include <string>
#include <vector>

namespace ap {

struct EmbeddedFile {
  const char *name; // file name under shaders/<backend>/
  const char *text;
};

const std::vector<EmbeddedFile> &embedded_files();
// The text of one file; throws std::invalid_argument naming the known files.
std::string embedded_source(const std::string &name);
// SHA-256 over every embedded header (a header change rebuilds every kernel).
const std::string &embedded_headers_digest();

} // namespace ap
