#include <nanobind/nanobind.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstddef>

#include "attention_params.h"
#include "binary_archive.h"
#include "bindings.h"
#include "compiler.h"
#include "device.h"
#include "embedded_sources.h"
#include "encode.h"
#include "input_errors.h"
#include "kernel_layouts.h"
#include "launch_plan.h"
#include "library_paths.h"
#include "pipeline_cache.h"
#include "tensor_map.h"
#include "timing.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace ap::bindings {
namespace {

using Constants = std::vector<std::tuple<std::string, std::string, std::string>>;

KernelSpec make_spec(std::string entry, std::string source_name, const Constants &constants,
                     std::vector<std::string> options) {
  KernelSpec spec{std::move(entry), std::move(source_name), {}, std::move(options)};
  for (const auto &[name, type, value] : constants)
    spec.constants.push_back({name, type, value});
  return spec;
}

cuda::CUstream as_stream(uintptr_t handle) {
  return reinterpret_cast<cuda::CUstream>(handle);
}

cuda::LaunchConfig launch_config(std::array<unsigned, 3> grid, std::array<unsigned, 3> block,
                                 unsigned shared_bytes, uintptr_t stream = 0) {
  cuda::LaunchConfig c;
  c.grid = grid;
  c.block = block;
  c.shared_bytes = shared_bytes;
  c.stream = as_stream(stream);
  return c;
}

using PlanStep = std::tuple<std::shared_ptr<cuda::Pipeline>, std::array<unsigned, 3>,
                            std::array<unsigned, 3>, unsigned>;
// (offset, pointer index, dtype, dims, strides_bytes, box, swizzle_bytes).
using MapSlot = std::tuple<size_t, size_t, int, std::vector<unsigned long long>,
                           std::vector<unsigned long long>, std::vector<unsigned>, int>;

nb::dict properties_dict(const cuda::DeviceProperties &p) {
  nb::dict d;
  d["name"] = p.name;
  d["arch"] = p.arch();
  d["compute_capability"] = nb::make_tuple(p.cc_major, p.cc_minor);
  d["sm_count"] = p.sm_count;
  d["shared_memory_per_block_optin"] = p.shared_memory_per_block_optin;
  d["shared_memory_per_sm"] = p.shared_memory_per_sm;
  d["registers_per_sm"] = p.registers_per_sm;
  d["l2_bytes"] = p.l2_bytes;
  d["clock_khz"] = p.clock_khz;
  d["memory_clock_khz"] = p.memory_clock_khz;
  d["memory_bus_bits"] = p.memory_bus_bits;
  d["total_memory"] = p.total_memory;
  d["driver_version"] = p.driver_version;
  return d;
}

nb::dict params_layout() {
  nb::dict d;
#define AP_FIELD(f) d[#f] = nb::make_tuple(offsetof(AttentionParams, f), sizeof(AttentionParams::f))
  AP_FIELD(batch);
  AP_FIELD(heads);
  AP_FIELD(kv_heads);
  AP_FIELD(seqlen_q);
  AP_FIELD(seqlen_k);
  AP_FIELD(head_dim);
  AP_FIELD(scale);
  AP_FIELD(flags);
  AP_FIELD(page_size);
  AP_FIELD(max_pages);
  AP_FIELD(num_pages);
  AP_FIELD(chunk_size);
  AP_FIELD(partition_size);
  AP_FIELD(rope_table_row);
  AP_FIELD(alibi_stride);
  AP_FIELD(variant);
#undef AP_FIELD
  d["__size__"] = sizeof(AttentionParams);
  d["__strides_size__"] = sizeof(AttentionStrides);
  return d;
}

nb::dict paged_args_layout() {
  nb::dict d;
#define AP_FIELD(f) d[#f] = nb::make_tuple(offsetof(PagedArgs, f), sizeof(PagedArgs::f))
  AP_FIELD(q);
  AP_FIELD(k);
  AP_FIELD(v);
  AP_FIELD(page_table);
  AP_FIELD(context_lens);
  AP_FIELD(out);
  AP_FIELD(part_acc);
  AP_FIELD(part_max);
  AP_FIELD(part_sum);
  AP_FIELD(errors);
  AP_FIELD(kv_stride);
  AP_FIELD(q_stride);
  AP_FIELD(table_stride);
  AP_FIELD(lens_stride);
  AP_FIELD(partitions);
  AP_FIELD(alibi);
#undef AP_FIELD
  d["__size__"] = sizeof(PagedArgs);
  return d;
}

} // namespace

void bind_runtime(nb::module_ &m) {
  m.def(
      "set_library_paths",
      [](std::vector<std::string> driver, std::vector<std::string> nvrtc, std::string include) {
        auto &paths = cuda::LibraryPaths::get();
        paths.driver = std::move(driver);
        paths.nvrtc = std::move(nvrtc);
        paths.include_dir = std::move(include);
      },
      "driver"_a, "nvrtc"_a, "include_dir"_a,
      "Search order for libcuda, libnvrtc and the CUDA include dir; call before first use.");
  m.def(
      "encode_tensor_map",
      [](int dtype, unsigned long long address, const std::vector<unsigned long long> &dims,
         const std::vector<unsigned long long> &strides_bytes, const std::vector<unsigned> &box,
         int swizzle_bytes) {
        const std::string map =
            cuda::encode_tensor_map(dtype, address, dims, strides_bytes, box, swizzle_bytes);
        return nb::bytes(map.data(), map.size());
      },
      "dtype"_a, "address"_a, "dims"_a, "strides_bytes"_a, "box"_a, "swizzle_bytes"_a,
      "A 128-byte TMA descriptor (CUtensorMap) of a 16-bit tensor, dims innermost first.");
  m.def("driver_status", &cuda::driver_status);
  m.def("nvrtc_status", &cuda::nvrtc_status);
  m.def("device_status", &cuda::device_status, nb::call_guard<nb::gil_scoped_release>());
  m.def("cuda_include_dir", &cuda::cuda_include_dir);
  m.def("compiler_version", [] { return cuda::Compiler::shared().version(); });
  m.def("attention_params_layout", &params_layout);
  m.def("paged_args_layout", &paged_args_layout);
  m.def("flash_shared_bytes", &ap::flash_shared_bytes, "head_dim"_a, "block_m"_a, "block_n"_a,
        "stages"_a);
  m.def("paged_mma_shared_bytes", &ap::paged_mma_shared_bytes, "head_dim"_a, "warps"_a, "stages"_a);
  m.def(
      "input_error_address", [] { return uint64_t(cuda::InputErrors::shared().device_address()); },
      "Device address of the input-error record kernels write (input_error_record.h).");
  m.def(
      "take_input_error", [] { return cuda::InputErrors::shared().take(); },
      "The pending device-input error's message, cleared; '' when none.");
  m.def("describe_input_error", &cuda::describe_input_error, "word0"_a, "word1"_a);
  m.def(
      "stream_synchronize",
      [](uintptr_t stream) {
        cuda::Device::shared();
        cuda::check(cuda::driver().cuStreamSynchronize(as_stream(stream)), "cuStreamSynchronize");
      },
      "stream"_a, nb::call_guard<nb::gil_scoped_release>(),
      "Wait for the work queued on `stream`.");
  m.def("embedded_file_names", [] {
    std::vector<std::string> names;
    for (const auto &f : embedded_files())
      names.push_back(f.name);
    return names;
  });
  m.def("embedded_source", &embedded_source);
  m.def("package_version", [] { return std::string(AP_PACKAGE_VERSION); });

  nb::class_<cuda::Device>(m, "Device")
      .def_static("shared", &cuda::Device::shared, nb::rv_policy::reference,
                  nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("properties",
                   [](const cuda::Device &d) { return properties_dict(d.properties()); })
      .def("synchronize", &cuda::Device::synchronize, nb::call_guard<nb::gil_scoped_release>())
      .def("memory_info", &cuda::Device::memory_info);

  nb::class_<KernelSpec>(m, "KernelSpec")
      .def(
          "__init__",
          [](KernelSpec *self, std::string entry, std::string source_name,
             const Constants &constants, std::vector<std::string> options) {
            new (self) KernelSpec(
                make_spec(std::move(entry), std::move(source_name), constants, std::move(options)));
          },
          "entry"_a, "source_name"_a, "constants"_a = Constants{},
          "options"_a = std::vector<std::string>{})
      .def_ro("entry", &KernelSpec::entry)
      .def_ro("source_name", &KernelSpec::source_name)
      .def_prop_ro("name", [](const KernelSpec &s) { return readable_name(s); })
      .def_prop_ro("constants_description",
                   [](const KernelSpec &s) { return describe_constants(s); });

  nb::class_<KernelKey>(m, "KernelKey")
      .def_ro("name", &KernelKey::name)
      .def_ro("digest", &KernelKey::digest)
      .def_ro("arch", &KernelKey::arch)
      .def_prop_ro("file_stem", &KernelKey::file_stem);

  nb::class_<cuda::CompileResult>(m, "CompileResult")
      .def_ro("key", &cuda::CompileResult::key)
      .def_prop_ro(
          "binary",
          [](const cuda::CompileResult &r) { return nb::bytes(r.binary.data(), r.binary.size()); })
      .def_ro("log", &cuda::CompileResult::log)
      .def_ro("compile_ms", &cuda::CompileResult::compile_ms);

  m.def(
      "kernel_key",
      [](const KernelSpec &spec, const std::string &arch) {
        return cuda::Compiler::shared().key_for(spec, arch);
      },
      "spec"_a, "arch"_a);
  m.def(
      "compile",
      [](const KernelSpec &spec, const std::string &arch) {
        return cuda::Compiler::shared().compile(spec, arch);
      },
      "spec"_a, "arch"_a, nb::call_guard<nb::gil_scoped_release>(),
      "Compile with NVRTC for `arch` (e.g. 'sm_90a'); needs no GPU.");

  nb::class_<BinaryArchive>(m, "BinaryArchive")
      .def(nb::init<std::string>(), "root"_a)
      .def_prop_ro("root", &BinaryArchive::root)
      .def("path_for", &BinaryArchive::path_for)
      .def("contains", &BinaryArchive::contains)
      .def("load",
           [](BinaryArchive &a, const KernelKey &key) -> std::optional<nb::bytes> {
             auto got = a.load(key);
             if (!got) return std::nullopt;
             return nb::bytes(got->data(), got->size());
           })
      .def("store", [](BinaryArchive &a, const KernelKey &key,
                       nb::bytes data) { a.store(key, std::string(data.c_str(), data.size())); })
      .def("entries", &BinaryArchive::entries)
      .def_prop_ro("discarded", &BinaryArchive::discarded);

  nb::class_<cuda::Pipeline>(m, "Pipeline")
      .def_prop_ro("name", [](const cuda::Pipeline &p) { return p.key().name; })
      .def_prop_ro("key", [](const cuda::Pipeline &p) { return p.key(); })
      .def_prop_ro("registers", &cuda::Pipeline::registers)
      .def_prop_ro("static_shared_bytes", &cuda::Pipeline::static_shared_bytes)
      .def_prop_ro("local_bytes", &cuda::Pipeline::local_bytes)
      .def_prop_ro("max_threads_per_block", &cuda::Pipeline::max_threads_per_block)
      .def("occupancy", &cuda::Pipeline::occupancy, "block_threads"_a, "dynamic_shared_bytes"_a)
      .def("parameter_layout", &cuda::Pipeline::parameter_layout, "count"_a,
           "(offset, size) in bytes of the kernel's first `count` parameters, as compiled.")
      .def(
          "launch",
          [](cuda::Pipeline &p, std::array<unsigned, 3> grid, std::array<unsigned, 3> block,
             unsigned shared_bytes, nb::bytes args, uintptr_t stream) {
            cuda::launch(p, launch_config(grid, block, shared_bytes, stream), args.c_str(),
                         args.size());
          },
          "grid"_a, "block"_a, "shared_bytes"_a, "args"_a, "stream"_a = 0,
          "Launch on `stream` (a CUstream handle; 0 is the legacy default stream).")
      .def(
          "benchmark",
          [](cuda::Pipeline &p, std::array<unsigned, 3> grid, std::array<unsigned, 3> block,
             unsigned shared_bytes, nb::bytes args, int warmup, int iterations, uintptr_t stream) {
            std::string packed(args.c_str(), args.size());
            nb::gil_scoped_release release;
            return cuda::benchmark_kernel_gpu_time(
                p, launch_config(grid, block, shared_bytes, stream), packed, warmup, iterations);
          },
          "grid"_a, "block"_a, "shared_bytes"_a, "args"_a, "warmup"_a, "iterations"_a,
          "stream"_a = 0, "GPU seconds of each of `iterations` dispatches after `warmup` ones.");

  nb::class_<cuda::LaunchPlan>(m, "LaunchPlan")
      .def(
          "__init__",
          [](cuda::LaunchPlan *self, const std::vector<PlanStep> &steps, nb::bytes args,
             std::vector<size_t> pointer_offsets, const std::vector<MapSlot> &tensor_maps) {
            std::vector<cuda::LaunchPlan::Step> converted;
            for (const auto &[pipeline, grid, block, shared] : steps)
              converted.push_back({pipeline, launch_config(grid, block, shared)});
            std::vector<cuda::TensorMapSlot> maps;
            for (const auto &[offset, index, dtype, dims, strides, box, swizzle] : tensor_maps)
              maps.push_back({offset, index, dtype, dims, strides, box, swizzle});
            new (self)
                cuda::LaunchPlan(std::move(converted), std::string(args.c_str(), args.size()),
                                 std::move(pointer_offsets), std::move(maps));
          },
          "steps"_a, "args"_a, "pointer_offsets"_a, "tensor_maps"_a = std::vector<MapSlot>{},
          "Kernels (pipeline, grid, block, dynamic shared bytes) run in order with one argument "
          "block whose 8-byte pointer slots run() fills; tensor_maps, (offset, pointer index, "
          "dtype, dims, strides_bytes, box, swizzle_bytes) each, are TMA descriptors run() "
          "encodes from those pointers into their 128 bytes.")
      .def(
          "run",
          // The GIL stays held, as torch holds it for its launches: releasing
          // and taking it back is host time on every call (issue 9), and an
          // enqueue returns at once unless the launch queue is full.
          [](const cuda::LaunchPlan &p, uintptr_t stream, const std::vector<uint64_t> &addresses) {
            p.run(as_stream(stream), addresses);
          },
          "stream"_a, "addresses"_a,
          "Launch on `stream` with `addresses` in the pointer slots; raises DeviceInputError "
          "first if a finished kernel reported a bad device-resident input.")
      .def_prop_ro("args", [](const cuda::LaunchPlan &p) {
        return nb::bytes(p.args().data(), p.args().size());
      });

  nb::class_<cuda::PipelineCache>(m, "PipelineCache")
      .def_static("shared", &cuda::PipelineCache::shared, nb::rv_policy::reference)
      .def("get_or_compile", &cuda::PipelineCache::get_or_compile, "spec"_a,
           nb::call_guard<nb::gil_scoped_release>())
      .def("compile_binary", &cuda::PipelineCache::compile_binary, "spec"_a, "arch"_a,
           nb::call_guard<nb::gil_scoped_release>(),
           "get_or_compile up to the GPU: archive, else NVRTC and store; needs no GPU.")
      .def("prebuild", &cuda::PipelineCache::prebuild, "spec"_a, "arch"_a,
           nb::call_guard<nb::gil_scoped_release>())
      .def("take_warnings", &cuda::PipelineCache::take_warnings,
           "Archive problems met since the last call, each reported once per process.")
      .def("set_archive", &cuda::PipelineCache::set_archive, "root"_a.none())
      .def_prop_ro("archive_root", &cuda::PipelineCache::archive_root)
      .def_prop_ro("archive_discarded", &cuda::PipelineCache::archive_discarded)
      .def("set_compile_forbidden", &cuda::PipelineCache::set_compile_forbidden)
      .def_prop_ro("compile_forbidden", &cuda::PipelineCache::compile_forbidden)
      .def("stats",
           [](const cuda::PipelineCache &c) {
             const auto s = c.stats();
             nb::dict d;
             d["hits"] = s.hits;
             d["archive_loads"] = s.archive_loads;
             d["compiles"] = s.compiles;
             d["compile_ms"] = s.compile_ms;
             d["archive_read_ms"] = s.archive_read_ms;
             d["load_ms"] = s.load_ms;
             return d;
           })
      .def("reset_stats", &cuda::PipelineCache::reset_stats)
      .def("clear", &cuda::PipelineCache::clear);

  nb::class_<cuda::Event>(m, "Event")
      .def(nb::init<>())
      .def(
          "record", [](cuda::Event &e, uintptr_t stream) { e.record(as_stream(stream)); },
          "stream"_a = 0)
      .def("synchronize", &cuda::Event::synchronize, nb::call_guard<nb::gil_scoped_release>())
      .def("elapsed_ms_since", &cuda::Event::elapsed_ms_since, "start"_a);
}

} // namespace ap::bindings
