#pragma once
/// \file
/// The encoded task spec: which registered worker, which input and output arrays. The parent
/// encodes it once per worker object; a worker decodes it when it changes.

#include <corun/data_iterator.hpp>
#include <corun/detail/task_service.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corun::detail {

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
CORUN_API DecodedSpec decoded_copy(const TaskSpec& spec);
/// Throws std::invalid_argument naming the malformed field.
CORUN_API DecodedSpec decode_spec(std::string_view bytes);

}  // namespace corun::detail
