#pragma once
/// \file
/// How a map chunk's reply ends (both sides of the process boundary): the worker's invokers
/// (detail/map_function.hpp) append a ChunkEnd after the results, the parent's map engine splits
/// it off again. Written and read in lib/seam/chunk_reply.cpp.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace corun::detail {

/// Why a map chunk's reply holds fewer results than the chunk had inputs.
enum class ChunkStop : std::uint8_t {
  complete,       ///< every input was mapped
  input_failed,   ///< the input after the last mapped one threw; the reply says what
  result_budget,  ///< the next result would have made the reply larger than max_result_bytes
};

/// How a map chunk's reply ends, after its results: a worker maps a chunk's inputs up to the
/// first one that fails or whose result would not fit, and the parent sends the rest again, so
/// no input is lost with its chunk.
struct ChunkEnd {
  std::size_t done = 0;      ///< inputs mapped, from the chunk's first
  std::size_t consumed = 0;  ///< argument bytes of the inputs accounted for (mapped or failed)
  ChunkStop stop = ChunkStop::complete;
  std::string failure_type;     ///< input_failed: the exception's type...
  std::string failure_message;  ///< ...and its what()
  /// input_failed: argument bytes before the failed input, whose own bytes end at `consumed`
  /// (so that the parent can run that input again, alone).
  std::size_t failed_from = 0;
};
/// Appends `end` to a reply whose results start at `results_at` in `out`.
CORUN_API void append_chunk_end(std::string& out, std::size_t results_at, const ChunkEnd& end);
/// The results of `reply`, with its end in `end`; throws std::invalid_argument when malformed.
CORUN_API std::string_view split_chunk_reply(std::string_view reply, ChunkEnd& end);
/// The bytes a reply's end takes besides the failure's texts.
inline constexpr std::size_t kChunkEndBytes = 3 * sizeof(std::uint64_t) + 1;

}  // namespace corun::detail
