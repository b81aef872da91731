// DataIterator: mpaio's slicing semantics, balanced partitions, validation, and the binary
// encoding that carries the metadata to worker processes.
#include <corun/data_iterator.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using corun::ArrayInfo;
using corun::DataIterator;
using corun::DType;
using corun::Slice;

namespace {

ArrayInfo int64_array(std::vector<std::size_t> shape) {
  return {"corun_test_iter", std::move(shape), DType::of<std::int64_t>()};
}

std::vector<Slice> slices_of(const DataIterator& it) {
  std::vector<Slice> out;
  for (Slice s : it) out.push_back(s);
  return out;
}

using Slices = std::vector<Slice>;

}  // namespace

TEST_CASE("the fields are in mpaio's order", "[data_iterator]") {
  const DataIterator it{"name", 4, 10, {10}, DType::of<std::int64_t>(), 0};
  CHECK(it.shm_name == "name");
  CHECK(it.chunk_size == 4);
  CHECK(it.size_of_data == 10);
  CHECK(it.shm_shape == std::vector<std::size_t>{10});
  CHECK(it.data_type == DType::of<std::int64_t>());
  CHECK(it.start_idx == 0);
  CHECK(it.partitions == 0);
  CHECK(slices_of(it) == Slices{{0, 4}, {4, 8}, {8, 10}});
}

TEST_CASE("a chunk size that divides the rows gives equal slices", "[data_iterator]") {
  const auto it = DataIterator::over(int64_array({10}), 5);
  CHECK(it.shm_name == "corun_test_iter");
  CHECK(it.chunk_size == 5);
  CHECK(it.size_of_data == 10);
  CHECK(it.shm_shape == std::vector<std::size_t>{10});
  CHECK(it.data_type == DType::of<std::int64_t>());
  CHECK(it.start_idx == 0);
  CHECK(it.slice_count() == 2);
  CHECK(slices_of(it) == Slices{{0, 5}, {5, 10}});
}

TEST_CASE("a chunk size that does not divide the rows gives a shorter last slice",
          "[data_iterator]") {
  const auto it = DataIterator::over(int64_array({10}), 3);
  CHECK(it.slice_count() == 4);
  CHECK(slices_of(it) == Slices{{0, 3}, {3, 6}, {6, 9}, {9, 10}});
  CHECK(it.slice(3) == Slice{9, 10});
  CHECK(it.slice(3).size() == 1);
}

TEST_CASE("a chunk size of one gives one slice per row", "[data_iterator]") {
  const auto it = DataIterator::over(int64_array({3}), 1);
  CHECK(slices_of(it) == Slices{{0, 1}, {1, 2}, {2, 3}});
}

TEST_CASE("a chunk larger than the data gives one slice", "[data_iterator]") {
  CHECK(slices_of(DataIterator::over(int64_array({10}), 100)) == Slices{{0, 10}});
  CHECK(slices_of(DataIterator::over(int64_array({10}), 10)) == Slices{{0, 10}});
  CHECK(slices_of(DataIterator::over(int64_array({10}), std::size_t(-1))) == Slices{{0, 10}});
}

TEST_CASE("an empty array gives no slices", "[data_iterator]") {
  const auto it = DataIterator::over(int64_array({0}), 4);
  CHECK(it.slice_count() == 0);
  CHECK(it.begin() == it.end());
  CHECK(slices_of(it).empty());
  const auto parts = DataIterator::partitioned(int64_array({0}), 4);
  CHECK(parts.slice_count() == 0);
  CHECK(slices_of(parts).empty());
  const auto nd = DataIterator::over(int64_array({0, 3}), 4);
  CHECK(slices_of(nd).empty());
}

TEST_CASE("iteration starts at start_idx", "[data_iterator]") {
  DataIterator it = DataIterator::over(int64_array({10}), 3);
  it.start_idx = 4;
  CHECK(it.slice_count() == 2);
  CHECK(slices_of(it) == Slices{{4, 7}, {7, 10}});
  it.start_idx = 9;
  CHECK(slices_of(it) == Slices{{9, 10}});
  it.start_idx = 10;
  CHECK(it.slice_count() == 0);
  CHECK(slices_of(it).empty());
  const DataIterator literal{"corun_test_iter", 4, 10, {10}, DType::of<std::int64_t>(), 1};
  CHECK(slices_of(literal) == Slices{{1, 5}, {5, 9}, {9, 10}});
}

TEST_CASE("partitioned cuts the rows into n slices of nearly equal size", "[data_iterator]") {
  CHECK(slices_of(DataIterator::partitioned(int64_array({10}), 3)) ==
        Slices{{0, 4}, {4, 7}, {7, 10}});
  CHECK(slices_of(DataIterator::partitioned(int64_array({10}), 4)) ==
        Slices{{0, 3}, {3, 6}, {6, 8}, {8, 10}});
  CHECK(slices_of(DataIterator::partitioned(int64_array({10}), 5)) ==
        Slices{{0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 10}});
  CHECK(slices_of(DataIterator::partitioned(int64_array({10}), 1)) == Slices{{0, 10}});
  // chunk_size alone would give 3, 3, 3, 1 here; partitioned balances instead.
  const auto seven = DataIterator::partitioned(int64_array({7}), 3);
  CHECK(seven.partitions == 3);
  CHECK(slices_of(seven) == Slices{{0, 3}, {3, 5}, {5, 7}});
}

TEST_CASE("more parts than rows gives one slice per row", "[data_iterator]") {
  const auto it = DataIterator::partitioned(int64_array({3}), 8);
  CHECK(it.slice_count() == 3);
  CHECK(slices_of(it) == Slices{{0, 1}, {1, 2}, {2, 3}});
  CHECK(slices_of(DataIterator::partitioned(int64_array({1}), 60)) == Slices{{0, 1}});
}

TEST_CASE("partitioned slices are contiguous, cover the rows and differ by at most one",
          "[data_iterator]") {
  std::size_t bad = 0;
  for (std::size_t rows = 0; rows <= 50; ++rows) {
    for (std::size_t n = 1; n <= 60; ++n) {
      const auto it = DataIterator::partitioned(int64_array({rows}), n);
      const Slices s = slices_of(it);
      bool ok = s.size() == std::min(n, rows) && it.slice_count() == s.size();
      std::size_t next = 0, smallest = rows, largest = 0;
      for (const Slice& slice : s) {
        ok = ok && slice.start == next && slice.end > slice.start;
        next = slice.end;
        smallest = std::min(smallest, slice.size());
        largest = std::max(largest, slice.size());
      }
      ok = ok && next == rows && (s.empty() || largest - smallest <= 1);
      if (!ok) {
        ++bad;
        UNSCOPED_INFO("rows " << rows << " n " << n << ": " << s.size() << " slices");
      }
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("n-d arrays are partitioned along axis 0", "[data_iterator]") {
  const auto it = DataIterator::partitioned(int64_array({10, 3}), 4);
  CHECK(it.size_of_data == 10);
  CHECK(it.shm_shape == std::vector<std::size_t>{10, 3});
  CHECK(slices_of(it) == Slices{{0, 3}, {3, 6}, {6, 8}, {8, 10}});
  const auto chunks = DataIterator::over(int64_array({10, 3}), 4);
  CHECK(chunks.size_of_data == 10);
  CHECK(slices_of(chunks) == Slices{{0, 4}, {4, 8}, {8, 10}});
  const auto cube = DataIterator::over(int64_array({2, 5, 7}), 1);
  CHECK(slices_of(cube) == Slices{{0, 1}, {1, 2}});
}

TEST_CASE("the iterator is a forward iterator over slices", "[data_iterator]") {
  const auto it = DataIterator::over(int64_array({10}), 4);
  auto i = it.begin();
  CHECK(*i == Slice{0, 4});
  auto old = i++;
  CHECK(*old == Slice{0, 4});
  CHECK(*i == Slice{4, 8});
  CHECK(*++i == Slice{8, 10});
  CHECK(++i == it.end());
  CHECK(std::distance(it.begin(), it.end()) == 3);
}

TEST_CASE("ArrayInfo computes rows, row elements and bytes", "[data_iterator]") {
  const ArrayInfo a = int64_array({10, 3, 2});
  CHECK(a.rows() == 10);
  CHECK(a.row_elements() == 6);
  CHECK(a.bytes() == 480);
  CHECK(int64_array({}).rows() == 0);
  CHECK(int64_array({5, 0}).bytes() == 0);
  CHECK(int64_array({0, 5}).bytes() == 0);
  CHECK_THROWS_AS(int64_array({std::size_t{1} << 62, 8}).bytes(), std::invalid_argument);
  CHECK_THROWS_WITH(int64_array({std::size_t{1} << 62, 8}).bytes(), Catch::Contains("overflow"));
}

TEST_CASE("a zero dimension makes an array empty however large its other dimensions",
          "[data_iterator]") {
  const std::size_t huge = std::size_t{1} << 62;
  const std::size_t big = std::size_t{1} << 31;
  for (const std::vector<std::size_t>& shape : {std::vector<std::size_t>{huge, 0},
                                                {big, big, 0},
                                                {0, huge},
                                                {huge, huge, 0},
                                                {std::size_t(-1), 0, std::size_t(-1)}}) {
    INFO("shape of " << shape.size() << " dimensions, the first " << shape[0]);
    CHECK(int64_array(shape).bytes() == 0);
  }
  CHECK(int64_array({huge, 0}).row_elements() == 0);
  // DataIterator checks the bytes too: an empty array of 2^62 rows is partitioned like others.
  const auto it = DataIterator::partitioned(int64_array({huge, 0}), 4);
  CHECK(it.size_of_data == huge);
  CHECK(slices_of(it) == std::vector<Slice>{{0, huge / 4},
                                            {huge / 4, huge / 2},
                                            {huge / 2, 3 * (huge / 4)},
                                            {3 * (huge / 4), huge}});
  // Without a zero, the same dimensions overflow, and the message names the shape.
  CHECK_THROWS_WITH(int64_array({big, big, 8}).bytes(),
                    "corun: shape {2147483648, 2147483648, 8} of <i8 elements overflows the "
                    "address space");
  CHECK_THROWS_WITH(int64_array({huge, 2}).bytes(),
                    "corun: shape {4611686018427387904, 2} of <i8 elements overflows the address "
                    "space");
}

TEST_CASE("a chunk size of zero is rejected naming the field", "[data_iterator][failure]") {
  CHECK_THROWS_AS(DataIterator::over(int64_array({10}), 0), std::invalid_argument);
  CHECK_THROWS_WITH(DataIterator::over(int64_array({10}), 0), Catch::Contains("chunk_size = 0"));
  const DataIterator it{"corun_test_iter", 0, 10, {10}, DType::of<std::int64_t>(), 0};
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("chunk_size = 0"));
  CHECK_THROWS_AS(it.begin(), std::invalid_argument);
}

TEST_CASE("a start_idx beyond the data is rejected naming the value", "[data_iterator][failure]") {
  const DataIterator it{"corun_test_iter", 4, 10, {10}, DType::of<std::int64_t>(), 11};
  CHECK_THROWS_AS(it.validate(), std::invalid_argument);
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("start_idx = 11") && Catch::Contains("10"));
  CHECK_THROWS_AS(it.begin(), std::invalid_argument);
}

TEST_CASE("a size_of_data that disagrees with the shape is rejected", "[data_iterator][failure]") {
  const DataIterator it{"corun_test_iter", 4, 9, {10}, DType::of<std::int64_t>(), 0};
  CHECK_THROWS_AS(it.validate(), std::invalid_argument);
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("size_of_data = 9") && Catch::Contains("{10}"));
  const DataIterator nd{"corun_test_iter", 4, 3, {10, 3}, DType::of<std::int64_t>(), 0};
  CHECK_THROWS_WITH(nd.validate(),
                    Catch::Contains("size_of_data = 3") && Catch::Contains("{10, 3}"));
}

TEST_CASE("an unset data type is rejected", "[data_iterator][failure]") {
  const DataIterator it{"corun_test_iter", 4, 10, {10}, DType{}, 0};
  CHECK_THROWS_AS(it.validate(), std::invalid_argument);
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("data_type"));
  CHECK_THROWS_AS(DataIterator::over(ArrayInfo{"corun_test_iter", {10}, DType{}}, 2),
                  std::invalid_argument);
}

TEST_CASE("zero partitions are rejected", "[data_iterator][failure]") {
  CHECK_THROWS_AS(DataIterator::partitioned(int64_array({10}), 0), std::invalid_argument);
  CHECK_THROWS_WITH(DataIterator::partitioned(int64_array({10}), 0),
                    Catch::Contains("partitions = 0"));
  DataIterator it = DataIterator::partitioned(int64_array({10}), 2);
  it.partitions = 11;
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("partitions = 11"));
}

TEST_CASE("bad names and shapes are rejected", "[data_iterator][failure]") {
  DataIterator it = DataIterator::over(int64_array({10}), 2);
  it.shm_name = "";
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("shm_name"));
  it.shm_name = "a/b";
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("shm_name = \"a/b\""));
  it.shm_name = std::string("corun_test\0x", 12);
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("shm_name"));
  it.shm_name = "corun\ttest";
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("shm_name = \"corun\\x09test\" is invalid: a "
                                                   "segment name has no control characters"));
  it.shm_name = std::string(256, 'a');
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("shm_name"));
  it.shm_name = "..";
  CHECK_THROWS_WITH(it.validate(),
                    "corun::DataIterator::shm_name = \"..\" is invalid: a segment name has 1 to "
                    "255 characters, no '/' or NUL, and is not \".\" or \"..\"");
  it.shm_name = std::string(255, 'a');
  CHECK_NOTHROW(it.validate());
  it.shm_name = "corun_test_iter";
  it.shm_shape = {};
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("shm_shape = {}"));
  it.shm_shape = std::vector<std::size_t>(33, 1);
  it.size_of_data = 1;
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("more than 32 dimensions"));
  it.shm_shape = {std::size_t{1} << 62, 8};
  it.size_of_data = std::size_t{1} << 62;
  CHECK_THROWS_WITH(it.validate(), Catch::Contains("overflow"));
}

namespace {

std::vector<DataIterator> sample_iterators() {
  std::vector<DataIterator> v;
  v.push_back(DataIterator::over(int64_array({10}), 3));
  v.push_back(DataIterator::partitioned(int64_array({10, 3}), 4));
  v.push_back(DataIterator::over(int64_array({0}), 1));
  v.push_back(DataIterator{
      "corun_test_strings", 7, 100, {100, 2, 5}, DType::of<corun::FixedUString<8>>(), 13});
  v.push_back(DataIterator{"psm_1234abcd", 1, 1, {1}, DType::of<corun::FixedString<16>>(), 1});
  v.push_back(DataIterator::partitioned(
      ArrayInfo{std::string(255, 'n'), {1000000, 1}, DType::of<std::complex<double>>()}, 7));
  v.push_back(DataIterator::over(ArrayInfo{"b", {5}, DType::of<bool>()}, 2));
  return v;
}

bool decodes_cleanly(const std::string& bytes, std::size_t& decoded) {
  try {
    const DataIterator it = DataIterator::decode(bytes);
    // What decodes must be usable: valid, slices inside the data, stable re-encoding.
    it.validate();
    const std::size_t n = it.slice_count();
    if (n > 0) {
      const Slice first = it.slice(0), last = it.slice(n - 1);
      if (first.start != it.start_idx || last.end != it.size_of_data || first.empty()) return false;
    }
    if (DataIterator::decode(it.encode()) != it) return false;
    ++decoded;
    return true;
  } catch (const std::invalid_argument&) {
    return true;
  } catch (...) {
    return false;
  }
}

/// Counts a buffer that did not decode cleanly and keeps the first one, in hex, for the report.
void note_unclean(const std::string& bytes, std::size_t& unclean, std::string& first) {
  if (unclean++ != 0) return;
  static constexpr char digits[] = "0123456789abcdef";
  for (unsigned char c : bytes) first += {digits[c >> 4], digits[c & 15], ' '};
}

}  // namespace

TEST_CASE("encode and decode round-trip", "[data_iterator][encoding]") {
  for (const DataIterator& it : sample_iterators()) {
    INFO("iterator over " << it.shm_name);
    const std::string bytes = it.encode();
    const DataIterator back = DataIterator::decode(bytes);
    CHECK(back == it);
    CHECK(back.encode() == bytes);
    CHECK(slices_of(back) == slices_of(it));
  }
}

TEST_CASE("the encoding is compact", "[data_iterator][encoding]") {
  const auto it = DataIterator::over(int64_array({10}), 3);
  // version, name, chunk, size, ndim, one dim, dtype, start, partitions
  CHECK(it.encode().size() == 1 + 4 + 15 + 8 + 8 + 4 + 8 + 4 + 3 + 8 + 8);
}

TEST_CASE("decoding every truncated prefix throws invalid_argument",
          "[data_iterator][encoding][failure]") {
  for (const DataIterator& it : sample_iterators()) {
    const std::string bytes = it.encode();
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      INFO(it.shm_name << " prefix of " << n << " bytes");
      CHECK_THROWS_AS(DataIterator::decode(bytes.substr(0, n)), std::invalid_argument);
    }
  }
  CHECK_THROWS_WITH(DataIterator::decode(""), Catch::Contains("version"));
}

TEST_CASE("decoding rejects trailing bytes and unknown versions",
          "[data_iterator][encoding][failure]") {
  const std::string bytes = DataIterator::over(int64_array({10}), 3).encode();
  CHECK_THROWS_WITH(DataIterator::decode(bytes + '\0'), Catch::Contains("trailing"));
  std::string other_version = bytes;
  other_version[0] = 2;
  CHECK_THROWS_WITH(DataIterator::decode(other_version), Catch::Contains("version"));
}

TEST_CASE("decoding validates what it decodes", "[data_iterator][encoding][failure]") {
  DataIterator bad = DataIterator::over(int64_array({10}), 3);
  bad.start_idx = 11;
  CHECK_THROWS_WITH(DataIterator::decode(bad.encode()), Catch::Contains("start_idx = 11"));
  bad = DataIterator::over(int64_array({10}), 3);
  bad.data_type = DType{};
  CHECK_THROWS_WITH(DataIterator::decode(bad.encode()), Catch::Contains("data_type"));
  bad = DataIterator::over(int64_array({10}), 3);
  bad.chunk_size = 0;
  CHECK_THROWS_WITH(DataIterator::decode(bad.encode()), Catch::Contains("chunk_size"));
}

TEST_CASE("decoding random bytes either succeeds or throws invalid_argument",
          "[data_iterator][encoding][failure]") {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<std::size_t> length(0, 200);
  std::uniform_int_distribution<int> byte(0, 255);
  std::size_t unclean = 0, decoded = 0;
  std::string first_unclean;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(length(rng), '\0');
    for (char& c : bytes) c = static_cast<char>(byte(rng));
    // Half of them start like a real encoding, so decoding gets past the version byte.
    if (i % 2 == 0 && !bytes.empty()) bytes[0] = 1;
    if (!decodes_cleanly(bytes, decoded)) note_unclean(bytes, unclean, first_unclean);
  }
  INFO("first buffer that did not decode cleanly: " << first_unclean);
  CHECK(unclean == 0);
}

TEST_CASE("decoding corrupted encodings either succeeds or throws invalid_argument",
          "[data_iterator][encoding][failure]") {
  std::size_t unclean = 0, decoded = 0, cases = 0;
  std::string first_unclean;
  // Every single-byte substitution of every sample encoding.
  for (const DataIterator& it : sample_iterators()) {
    const std::string bytes = it.encode();
    for (std::size_t pos = 0; pos < bytes.size(); ++pos) {
      for (int value = 0; value < 256; ++value) {
        std::string corrupted = bytes;
        corrupted[pos] = static_cast<char>(value);
        ++cases;
        if (!decodes_cleanly(corrupted, decoded)) note_unclean(corrupted, unclean, first_unclean);
      }
    }
  }
  // Random multi-byte corruptions, insertions and deletions.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  const auto samples = sample_iterators();
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = samples[static_cast<std::size_t>(i) % samples.size()].encode();
    const int edits = 1 + i % 4;
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = std::uniform_int_distribution<std::size_t>(0, bytes.size())(rng);
      switch (byte(rng) % 3) {
        case 0:
          if (pos < bytes.size()) bytes[pos] = static_cast<char>(byte(rng));
          break;
        case 1:
          bytes.insert(pos, 1, static_cast<char>(byte(rng)));
          break;
        default:
          if (pos < bytes.size()) bytes.erase(pos, 1);
      }
    }
    ++cases;
    if (!decodes_cleanly(bytes, decoded)) note_unclean(bytes, unclean, first_unclean);
  }
  INFO("first buffer that did not decode cleanly: " << first_unclean);
  CHECK(unclean == 0);
  // Sanity: some corruptions (a changed chunk size, say) still decode to a valid iterator,
  // and most do not.
  CHECK(decoded > 0);
  CHECK(decoded < cases);
}
