// SHA-256, for kernel-key digests and archive checksums: both are persisted,
// so they must not depend on std::hash or on the process.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ap {

class Sha256 {
public:
  Sha256();
  Sha256 &update(std::string_view data);
  std::array<uint8_t, 32> digest();
  std::string hex_digest();

private:
  void compress(const uint8_t *block);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view data);

} // namespace ap
