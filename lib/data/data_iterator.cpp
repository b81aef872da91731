/// \file
/// DataIterator (both sides): mpaio's slicing metadata, validated, and its bytes, which the parent
/// encodes into a task spec and a worker decodes to map its slice.
/// Side: both.
#include <corun/data_iterator.hpp>

#include "base/segment_name.hpp"
#include "base/wire.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace corun {

namespace {
constexpr std::uint8_t kEncodingVersion = 1;
constexpr std::size_t kMaxDims = 32;
constexpr std::size_t kMaxDTypeLength = 32;

[[noreturn]] void bad_field(const char* field, const std::string& value, const std::string& why) {
  throw std::invalid_argument(std::string("corun::DataIterator::") + field + " = " + value + ": " +
                              why);
}

std::string shape_str(const std::vector<std::size_t>& shape) {
  std::string s = "{";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "}";
}
}  // namespace

std::size_t ArrayInfo::row_elements() const noexcept {
  std::size_t n = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

std::size_t ArrayInfo::bytes() const {
  // A zero dimension makes the array empty, however large the others are.
  if (std::find(shape.begin(), shape.end(), std::size_t{0}) != shape.end()) return 0;
  std::size_t total = dtype.itemsize();
  for (std::size_t d : shape) {
    if (d != 0 && total > std::size_t(-1) / d)
      throw std::invalid_argument("corun: shape " + shape_str(shape) + " of " + dtype.str() +
                                  " elements overflows the address space");
    total *= d;
  }
  return total;
}

DataIterator DataIterator::over(const ArrayInfo& array, std::size_t chunk_size) {
  DataIterator it{array.name, chunk_size, array.rows(), array.shape, array.dtype, 0, 0};
  it.validate();
  return it;
}

DataIterator DataIterator::partitioned(const ArrayInfo& array, std::size_t n) {
  if (n == 0) bad_field("partitions", "0", "must be at least 1");
  const std::size_t rows = array.rows();
  const std::size_t parts = std::min(n, rows);
  const std::size_t chunk = parts == 0 ? 1 : (rows + parts - 1) / parts;
  DataIterator it{array.name, chunk, rows, array.shape, array.dtype, 0, parts};
  it.validate();
  return it;
}

void DataIterator::validate() const {
  detail::check_segment_name(shm_name, "corun::DataIterator::shm_name =");
  if (chunk_size == 0) bad_field("chunk_size", "0", "must be at least 1");
  if (shm_shape.empty()) bad_field("shm_shape", "{}", "needs at least one dimension");
  if (shm_shape.size() > kMaxDims)
    bad_field("shm_shape", shape_str(shm_shape), "has more than 32 dimensions");
  if (shm_shape[0] != size_of_data)
    bad_field("size_of_data", std::to_string(size_of_data),
              "disagrees with shm_shape " + shape_str(shm_shape) + " (rows = shm_shape[0])");
  if (data_type.empty()) bad_field("data_type", "\"\"", "is not set");
  if (start_idx > size_of_data)
    bad_field("start_idx", std::to_string(start_idx),
              "is beyond size_of_data (" + std::to_string(size_of_data) + ")");
  if (partitions > size_of_data - start_idx)
    bad_field(
        "partitions", std::to_string(partitions),
        "exceeds the rows from start_idx on (" + std::to_string(size_of_data - start_idx) + ")");
  info().bytes();  // throws on overflow
}

std::size_t DataIterator::slice_count() const {
  if (partitions != 0) return partitions;
  const std::size_t rows = size_of_data - start_idx;
  return rows / chunk_size + (rows % chunk_size != 0);
}

Slice DataIterator::slice(std::size_t i) const {
  if (partitions != 0) {
    const std::size_t rows = size_of_data - start_idx;
    const std::size_t base = rows / partitions, extra = rows % partitions;
    const std::size_t start = start_idx + i * base + std::min(i, extra);
    return {start, start + base + (i < extra)};
  }
  const std::size_t start = start_idx + i * chunk_size;
  return {start, start + std::min(chunk_size, size_of_data - start)};
}

DataIterator::iterator DataIterator::begin() const {
  validate();
  return {this, 0};
}

DataIterator::iterator DataIterator::end() const {
  return {this, slice_count()};
}

std::string DataIterator::encode() const {
  std::string out;
  detail::ByteWriter w(out);
  w.put(kEncodingVersion);
  w.str(shm_name);
  w.put<std::uint64_t>(chunk_size);
  w.put<std::uint64_t>(size_of_data);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(shm_shape.size()));
  for (std::size_t d : shm_shape) w.put<std::uint64_t>(d);
  w.str(data_type.str());
  w.put<std::uint64_t>(start_idx);
  w.put<std::uint64_t>(partitions);
  return out;
}

DataIterator DataIterator::decode(std::string_view bytes) {
  detail::ByteReader r(bytes, "corun::DataIterator::decode");
  const auto version = r.get<std::uint8_t>("version");
  if (version != kEncodingVersion)
    r.fail("version", "unsupported encoding version " + std::to_string(version));
  DataIterator it;
  it.shm_name = std::string(r.str("shm_name", detail::max_segment_name_length));
  it.chunk_size = r.get<std::uint64_t>("chunk_size");
  it.size_of_data = r.get<std::uint64_t>("size_of_data");
  const auto ndim = r.get<std::uint32_t>("shm_shape");
  if (ndim > kMaxDims) r.fail("shm_shape", std::to_string(ndim) + " dimensions (at most 32)");
  it.shm_shape.resize(ndim);
  for (auto& d : it.shm_shape) d = r.get<std::uint64_t>("shm_shape");
  const std::string_view dtype = r.str("data_type", kMaxDTypeLength);
  try {
    it.data_type = DType::parse(dtype);
  } catch (const std::invalid_argument& e) {
    r.fail("data_type", e.what());
  }
  it.start_idx = r.get<std::uint64_t>("start_idx");
  it.partitions = r.get<std::uint64_t>("partitions");
  r.expect_end();
  it.validate();
  return it;
}

}  // namespace corun
