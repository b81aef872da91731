/// \file
/// Encoding and decoding task specs.
#include "task_spec.hpp"

#include "wire.hpp"

#include <corun/detail/task_service.hpp>
#include <corun/slice_view.hpp>

#include <memory>
#include <utility>

namespace corun::detail {

std::string encode_spec(std::string_view worker_name, const DataIterator& iterator,
                        const std::optional<ArrayInfo>& output, std::uint64_t input_inode,
                        std::uint64_t output_inode) {
  std::string out;
  ByteWriter w(out);
  w.str(worker_name);
  w.str(iterator.encode());
  w.put<std::uint8_t>(output.has_value());
  if (output) w.str(DataIterator::over(*output, 1).encode());
  w.put(input_inode);
  w.put(output_inode);
  return out;
}

DecodedSpec decode_spec(std::string_view bytes) {
  ByteReader r(bytes, "corun task spec");
  DecodedSpec spec;
  spec.worker_name = std::string(r.str("worker_name", 1024));
  spec.iterator = DataIterator::decode(r.str("iterator", 1u << 16));
  const auto has_output = r.get<std::uint8_t>("has_output");
  if (has_output > 1) r.fail("has_output", std::to_string(has_output));
  if (has_output) spec.output = DataIterator::decode(r.str("output", 1u << 16)).info();
  spec.input_inode = r.get<std::uint64_t>("input_inode");
  spec.output_inode = r.get<std::uint64_t>("output_inode");
  r.expect_end();
  return spec;
}

std::shared_ptr<const TaskSpec> make_task_spec(std::string worker_name, DataIterator iterator,
                                               std::optional<ArrayInfo> output) {
  iterator.validate();
  if (output) DataIterator::over(*output, 1);  // validates the output's metadata
  auto spec = std::make_shared<TaskSpec>();
  spec->input_inode = segment_inode(iterator.shm_name);
  spec->output_inode = output ? segment_inode(output->name) : 0;
  spec->encoded = encode_spec(worker_name, iterator, output, spec->input_inode, spec->output_inode);
  spec->worker_name = std::move(worker_name);
  spec->iterator = std::move(iterator);
  spec->output = std::move(output);
  return spec;
}

}  // namespace corun::detail
