/// \file
/// The task spec's bytes, on both sides of the process (and rank) boundary: the parent encodes a
/// spec once, a worker or another rank decodes it when it changes.
/// Side: both.
#include "seam/spec_codec.hpp"

#include "base/wire.hpp"

#include <string>
#include <string_view>

namespace corun::detail {

std::string encode_spec(const TaskSpec& spec) {
  std::string out;
  ByteWriter w(out);
  w.str(spec.worker_name);
  w.put<std::uint8_t>(spec.reads_array);
  if (spec.reads_array) {
    w.str(spec.iterator.encode());
    w.put<std::uint8_t>(spec.output.has_value());
    if (spec.output) w.str(DataIterator::over(*spec.output, 1).encode());
    w.put(spec.input_inode);
    w.put(spec.output_inode);
    w.put<std::uint8_t>(spec.block_map.has_value());
    if (const auto& m = spec.block_map) {
      w.put(m->rows);
      w.put(m->partitions);
      w.put(m->chunk_size);
      w.put(m->rank);
      w.put(m->ranks);
    }
  }
  w.str(spec.params);
  return out;
}

DecodedSpec decode_spec(std::string_view bytes) {
  ByteReader r(bytes, "corun task spec");
  DecodedSpec spec;
  spec.worker_name = std::string(r.str("worker_name", 1024));
  const auto reads_array = r.get<std::uint8_t>("reads_array");
  if (reads_array > 1) r.fail("reads_array", std::to_string(reads_array));
  spec.reads_array = reads_array == 1;
  if (spec.reads_array) {
    spec.iterator = DataIterator::decode(r.str("iterator", 1u << 16));
    const auto has_output = r.get<std::uint8_t>("has_output");
    if (has_output > 1) r.fail("has_output", std::to_string(has_output));
    if (has_output) spec.output = DataIterator::decode(r.str("output", 1u << 16)).info();
    spec.input_inode = r.get<std::uint64_t>("input_inode");
    spec.output_inode = r.get<std::uint64_t>("output_inode");
    const auto has_block_map = r.get<std::uint8_t>("has_block_map");
    if (has_block_map > 1) r.fail("has_block_map", std::to_string(has_block_map));
    if (has_block_map) {
      BlockMap m;
      m.rows = r.get<std::uint64_t>("block_map.rows");
      m.partitions = r.get<std::uint64_t>("block_map.partitions");
      m.chunk_size = r.get<std::uint64_t>("block_map.chunk_size");
      m.rank = r.get<std::uint64_t>("block_map.rank");
      m.ranks = r.get<std::uint64_t>("block_map.ranks");
      // What the arithmetic divides by, and what keeps a block index in range.
      if ((m.partitions == 0) == (m.chunk_size == 0))
        r.fail("block_map", "needs exactly one of partitions and chunk_size");
      if (m.ranks == 0 || m.rank >= m.ranks)
        r.fail("block_map.rank", std::to_string(m.rank) + " of " + std::to_string(m.ranks));
      spec.block_map = m;
    }
  }
  spec.params = std::string(r.str("params", kMaxParamsBytes));
  r.expect_end();
  return spec;
}

DecodedSpec decoded_copy(const TaskSpec& spec) {
  return {spec.worker_name, spec.reads_array,  spec.iterator, spec.output,
          spec.input_inode, spec.output_inode, spec.params,   spec.block_map};
}

}  // namespace corun::detail
