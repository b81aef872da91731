/// \file
/// How a map chunk's reply ends (ChunkEnd: what the worker mapped and why it stopped), on both
/// sides of the process boundary: the worker's invokers write it, the parent's map engine reads it.
/// Side: both.
#include <corun/detail/chunk_reply.hpp>

#include "base/wire.hpp"

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

namespace corun::detail {

namespace {
/// A failure's type and message are cut to this, so that they fit the room a map function
/// leaves for them in its reply (MapFunction::invoke).
constexpr std::size_t kMaxFailureText = 500;
}  // namespace

void append_chunk_end(std::string& out, std::size_t results_at, const ChunkEnd& end) {
  const std::uint64_t results = out.size() - results_at;
  if (end.stop == ChunkStop::input_failed) {
    ByteWriter w(out);
    w.str(std::string_view(end.failure_type).substr(0, kMaxFailureText));
    w.str(std::string_view(end.failure_message).substr(0, kMaxFailureText));
    w.put(static_cast<std::uint64_t>(end.failed_from));
  }
  ByteWriter w(out);
  w.put(results);
  w.put(static_cast<std::uint64_t>(end.consumed));
  w.put(static_cast<std::uint64_t>(end.done));
  w.put(static_cast<std::uint8_t>(end.stop));
}

std::string_view split_chunk_reply(std::string_view reply, ChunkEnd& end) {
  if (reply.size() < kChunkEndBytes)
    throw std::invalid_argument("corun map reply: " + std::to_string(reply.size()) +
                                " bytes, shorter than its end");
  ByteReader fixed(reply.substr(reply.size() - kChunkEndBytes), "corun map reply");
  const auto results = fixed.get<std::uint64_t>("results");
  end.consumed = fixed.get<std::uint64_t>("consumed");
  end.done = fixed.get<std::uint64_t>("done");
  const auto stop = fixed.get<std::uint8_t>("stop");
  if (stop > static_cast<std::uint8_t>(ChunkStop::result_budget))
    fixed.fail("stop", std::to_string(stop) + " is not a ChunkStop");
  if (results > reply.size() - kChunkEndBytes)
    fixed.fail("results", std::to_string(results) + " bytes exceeds the reply");
  end.stop = static_cast<ChunkStop>(stop);
  ByteReader texts(reply.substr(results, reply.size() - kChunkEndBytes - results),
                   "corun map reply");
  if (end.stop == ChunkStop::input_failed) {
    end.failure_type = texts.str("failure type", kMaxFailureText);
    end.failure_message = texts.str("failure message", kMaxFailureText);
    end.failed_from = texts.get<std::uint64_t>("failed from");
    if (end.failed_from > end.consumed)
      texts.fail("failed from", std::to_string(end.failed_from) + " is past consumed " +
                                    std::to_string(end.consumed));
  }
  texts.expect_end();
  return reply.substr(0, results);
}

}  // namespace corun::detail
