#pragma once
/// \file
/// The task spec's bytes (both sides of the process boundary): which registered worker, which
/// input and output arrays. The parent encodes a spec once per worker object; a worker, or another
/// rank, decodes it when it changes. Built as a static library of its own (lib/seam/meson.build),
/// linked into corun and corun_mpi alike, so neither exports it.
/// Side: both.

#include <corun/data_iterator.hpp>
#include <corun/detail/task_service.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corun::detail {

/// Parameters are encoded once per run, and travel with the spec (once to each worker).
inline constexpr std::size_t kMaxParamsBytes = std::size_t{64} << 20;

struct DecodedSpec {
  std::string worker_name;
  bool reads_array = true;
  DataIterator iterator;
  std::optional<ArrayInfo> output;
  std::uint64_t input_inode = 0;
  std::uint64_t output_inode = 0;
  std::string params;
  std::optional<BlockMap> block_map;
};

/// Encodes every field but `encoded`.
std::string encode_spec(const TaskSpec& spec);
/// The fields a worker decodes, from a spec this process made (the serial pool's path).
DecodedSpec decoded_copy(const TaskSpec& spec);
/// Throws std::invalid_argument naming the malformed field.
DecodedSpec decode_spec(std::string_view bytes);

}  // namespace corun::detail
