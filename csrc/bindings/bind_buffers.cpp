#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "bindings.h"
#include "buffer.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace ap::bindings {
namespace {

nb::dlpack::dtype dtype_from_name(const std::string &name) {
  using code = nb::dlpack::dtype_code;
  auto make = [](code c, int bits) {
    return nb::dlpack::dtype{static_cast<uint8_t>(c), static_cast<uint8_t>(bits), 1};
  };
  if (name == "float16") return make(code::Float, 16);
  if (name == "bfloat16") return make(code::Bfloat, 16);
  if (name == "float32") return make(code::Float, 32);
  if (name == "float64") return make(code::Float, 64);
  if (name == "int32") return make(code::Int, 32);
  if (name == "int64") return make(code::Int, 64);
  if (name == "uint8") return make(code::UInt, 8);
  if (name == "uint16") return make(code::UInt, 16);
  if (name == "uint32") return make(code::UInt, 32);
  throw std::invalid_argument("[buffer] unsupported dtype '" + name + "'");
}

std::string dtype_name(nb::dlpack::dtype t) {
  using code = nb::dlpack::dtype_code;
  const std::string bits = std::to_string(t.bits);
  if (t.lanes != 1) return "vector";
  switch (static_cast<code>(t.code)) {
  case code::Float:
    return "float" + bits;
  case code::Bfloat:
    return "bfloat" + bits;
  case code::Int:
    return "int" + bits;
  case code::UInt:
    return "uint" + bits;
  case code::Bool:
    return "bool";
  default:
    return "code" + std::to_string(t.code) + "_" + bits;
  }
}

// Checks that a view of `shape`/`strides` (elements) at `offset` bytes stays
// inside a buffer of `size` bytes.
void check_view(size_t size, size_t offset, const std::vector<size_t> &shape,
                const std::vector<int64_t> &strides, size_t itemsize) {
  if (shape.size() != strides.size())
    throw std::invalid_argument("[buffer] view shape and strides differ in length");
  int64_t last = 0;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) return;
    if (strides[i] < 0) throw std::invalid_argument("[buffer] negative strides are not supported");
    last += int64_t(shape[i] - 1) * strides[i];
  }
  if (offset + (size_t(last) + 1) * itemsize > size)
    throw std::out_of_range("[buffer] view of " + std::to_string((last + 1) * itemsize) +
                            " bytes at offset " + std::to_string(offset) +
                            " exceeds the buffer's " + std::to_string(size) + " bytes");
}

std::vector<int64_t> contiguous_strides(const std::vector<size_t> &shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= int64_t(shape[i]);
  }
  return strides;
}

} // namespace

void bind_buffers(nb::module_ &m) {
  nb::class_<cuda::DeviceBuffer>(m, "DeviceBuffer")
      .def(nb::init<size_t>(), "nbytes"_a)
      .def(
          "__init__",
          [](cuda::DeviceBuffer *self, size_t nbytes, uintptr_t stream) {
            new (self) cuda::DeviceBuffer(nbytes, reinterpret_cast<cuda::CUstream>(stream));
          },
          "nbytes"_a, "stream"_a,
          "A stream-ordered allocation (memory pool): freed in `stream`'s order, with no wait.")
      .def_prop_ro("address", &cuda::DeviceBuffer::address)
      .def_prop_ro("stream_ordered", &cuda::DeviceBuffer::stream_ordered)
      .def(
          "used_on",
          [](cuda::DeviceBuffer &b, uintptr_t stream) {
            b.used_on(reinterpret_cast<cuda::CUstream>(stream));
          },
          "stream"_a, "Order the buffer's free after the work queued on `stream` so far.")
      .def_prop_ro("nbytes", &cuda::DeviceBuffer::size)
      .def(
          "upload",
          [](cuda::DeviceBuffer &b, nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu> a,
             size_t offset) { b.upload(a.data(), a.nbytes(), offset); },
          "array"_a.noconvert(), "offset"_a = 0,
          "Copy a C-contiguous host array into the buffer at `offset` bytes.")
      .def(
          "download_into",
          [](const cuda::DeviceBuffer &b, nb::ndarray<nb::c_contig, nb::device::cpu> out,
             size_t offset) {
            void *dst = out.data();
            const size_t n = out.nbytes();
            nb::gil_scoped_release release;
            b.download(dst, n, offset);
          },
          "out"_a.noconvert(), "offset"_a = 0,
          "Copy `out.nbytes` bytes from `offset` into a writable C-contiguous host array.")
      .def(
          "fill",
          [](cuda::DeviceBuffer &b, uint32_t pattern, int pattern_bytes, uintptr_t stream) {
            b.fill(pattern, pattern_bytes, reinterpret_cast<cuda::CUstream>(stream));
          },
          "pattern"_a, "pattern_bytes"_a, "stream"_a = 0)
      .def(
          "view",
          [](nb::handle self, const std::string &dtype, std::vector<size_t> shape,
             std::vector<int64_t> strides, size_t offset) {
            auto &b = nb::cast<cuda::DeviceBuffer &>(self);
            const auto t = dtype_from_name(dtype);
            if (strides.empty()) strides = contiguous_strides(shape);
            check_view(b.size(), offset, shape, strides, t.bits / 8);
            // The view keeps the buffer alive (owner), so a consumer such as
            // torch.from_dlpack shares memory with no copy and no dangling pointer.
            return nb::ndarray<>(reinterpret_cast<void *>(b.address() + offset), shape.size(),
                                 shape.data(), self, strides.data(), t, nb::device::cuda::value, 0);
          },
          "dtype"_a, "shape"_a, "strides"_a = std::vector<int64_t>{}, "offset"_a = 0,
          "A typed CUDA view (DLPack: __dlpack__, __dlpack_device__) sharing this memory.");

  nb::class_<cuda::PinnedBuffer>(m, "PinnedBuffer")
      .def(nb::init<size_t>(), "nbytes"_a)
      .def_prop_ro("nbytes", &cuda::PinnedBuffer::size)
      .def_prop_ro(
          "address",
          [](const cuda::PinnedBuffer &b) { return reinterpret_cast<uintptr_t>(b.data()); })
      .def(
          "numpy",
          [](nb::handle self, const std::string &dtype, std::vector<size_t> shape) {
            auto &b = nb::cast<cuda::PinnedBuffer &>(self);
            const auto t = dtype_from_name(dtype);
            const auto strides = contiguous_strides(shape);
            check_view(b.size(), 0, shape, strides, t.bits / 8);
            return nb::ndarray<nb::numpy>(b.data(), shape.size(), shape.data(), self,
                                          strides.data(), t, nb::device::cpu::value, 0);
          },
          "dtype"_a, "shape"_a, "A NumPy array over the pinned memory, without a copy.");

  m.def(
      "copy_device_to_host",
      [](uintptr_t address, nb::ndarray<nb::c_contig, nb::device::cpu> out) {
        void *dst = out.data();
        const size_t n = out.nbytes();
        nb::gil_scoped_release release;
        cuda::copy_device_to_host(address, dst, n);
      },
      "address"_a, "out"_a.noconvert(),
      "Copy out.nbytes bytes from any device address (e.g. a DLPack array's) into `out`.");

  m.def(
      "tensor_info",
      [](nb::ndarray<nb::ro> a) {
        nb::list shape, strides;
        for (size_t i = 0; i < a.ndim(); ++i) {
          shape.append(a.shape(i));
          strides.append(a.stride(i));
        }
        nb::dict d;
        d["address"] = reinterpret_cast<uintptr_t>(a.data());
        d["shape"] = nb::tuple(shape);
        d["strides"] = nb::tuple(strides);
        d["dtype"] = dtype_name(a.dtype());
        d["device_type"] = a.device_type();
        d["device_id"] = a.device_id();
        return d;
      },
      "array"_a.noconvert(),
      "Address, shape, element strides, dtype and device of any DLPack or buffer-protocol array.");
}

} // namespace ap::bindings
