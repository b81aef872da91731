#pragma once
/// \file
/// Little-endian byte encoding on every side (parent, worker, rank): the DataIterator encoding,
/// the worker protocol and the frames between ranks. Every read is bounds-checked and names the
/// field it was reading when input runs out.
/// Side: both.

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace corun::detail {

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  template <class U>
  requires std::is_trivially_copyable_v<U>
  void put(U value) { out_.append(reinterpret_cast<const char*>(&value), sizeof value); }
  void bytes(std::string_view b) { out_.append(b); }
  /// A length-prefixed (u32) string.
  void str(std::string_view s) {
    put(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }

 private:
  std::string& out_;
};

class ByteReader {
 public:
  ByteReader(std::string_view in, const char* context) : in_(in), context_(context) {}
  template <class U>
  requires std::is_trivially_copyable_v<U> U get(const char* field) {
    need(sizeof(U), field);
    U value;
    std::memcpy(&value, in_.data() + pos_, sizeof value);
    pos_ += sizeof value;
    return value;
  }
  std::string_view bytes(std::size_t n, const char* field) {
    need(n, field);
    std::string_view b = in_.substr(pos_, n);
    pos_ += n;
    return b;
  }
  /// A length-prefixed (u32) string of at most `max_len` bytes.
  std::string_view str(const char* field, std::size_t max_len) {
    const auto n = get<std::uint32_t>(field);
    if (n > max_len)
      fail(field, "length " + std::to_string(n) + " exceeds " + std::to_string(max_len));
    return bytes(n, field);
  }
  std::size_t remaining() const noexcept { return in_.size() - pos_; }
  std::string_view rest() const noexcept { return in_.substr(pos_); }
  [[noreturn]] void fail(const char* field, const std::string& why) const {
    throw std::invalid_argument(std::string(context_) + ": field " + field + ": " + why);
  }
  void expect_end() const {
    if (remaining() != 0) fail("end", std::to_string(remaining()) + " unexpected trailing bytes");
  }

 private:
  void need(std::size_t n, const char* field) const {
    if (remaining() < n)
      fail(field, "truncated input (need " + std::to_string(n) + " bytes, " +
                      std::to_string(remaining()) + " left)");
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  const char* context_;
};

}  // namespace corun::detail
