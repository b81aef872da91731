// The parent <-> worker protocol: exact round trips, and every decoder fuzzed with random and
// corrupted bytes: each input either decodes or throws std::invalid_argument saying why.
#define CATCH_CONFIG_MAIN
#include "pool/spec_book.hpp"
#include "protocol/protocol.hpp"
#include "seam/spec_codec.hpp"
#include "worker/task_runner.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corun;
using namespace corun::detail;

namespace {

/// Runs `decode` on `bytes`; counts what neither decoded nor threw std::invalid_argument.
struct FuzzTally {
  std::size_t decoded = 0, rejected = 0, unclean = 0;
  std::string first_unclean;

  void run(const std::function<void(std::string_view)>& decode, const std::string& bytes) {
    try {
      decode(bytes);
      ++decoded;
    } catch (const std::invalid_argument& e) {
      ++rejected;
      if (std::string_view(e.what()).find("corun") == std::string_view::npos)
        note(bytes, e.what());  // a message that does not say whose input was bad
    } catch (const std::exception& e) {
      note(bytes, e.what());
    }
  }

  void note(const std::string& bytes, const std::string& why) {
    if (unclean++ == 0) first_unclean = why + " (" + std::to_string(bytes.size()) + " bytes)";
  }
};

/// Random buffers, then every single-byte substitution and random edits of each sample.
FuzzTally fuzz(const std::function<void(std::string_view)>& decode,
               const std::vector<std::string>& samples) {
  FuzzTally tally;
  std::mt19937 rng(20261122);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 5000; ++i) {
    std::string bytes(std::uniform_int_distribution<std::size_t>(0, 120)(rng), '\0');
    for (char& c : bytes) c = static_cast<char>(byte(rng));
    tally.run(decode, bytes);
  }
  for (const std::string& sample : samples) {
    for (std::size_t pos = 0; pos < sample.size(); ++pos)
      for (int value : {0, 1, 0x7f, 0x80, 0xff}) {
        std::string corrupted = sample;
        corrupted[pos] = static_cast<char>(value);
        tally.run(decode, corrupted);
      }
    for (std::size_t cut = 0; cut < sample.size(); ++cut) tally.run(decode, sample.substr(0, cut));
    for (int i = 0; i < 2000; ++i) {
      std::string bytes = sample;
      for (int e = 0; e < 1 + i % 4; ++e) {
        const auto pos = std::uniform_int_distribution<std::size_t>(0, bytes.size())(rng);
        if (pos < bytes.size()) bytes[pos] = static_cast<char>(byte(rng));
      }
      tally.run(decode, bytes);
    }
  }
  return tally;
}

std::string header_bytes(proto::Kind kind, std::size_t length) {
  std::string out;
  proto::append_header(out, kind, length);
  return out;
}

std::string sample_spec() {
  TaskSpec spec;
  spec.worker_name = "corun::test::AddInts";
  spec.iterator =
      DataIterator::over(ArrayInfo{"corun_proto_test", {10, 3}, DType::of<double>()}, 4);
  spec.output = ArrayInfo{"corun_proto_out", {10}, DType::of<std::int64_t>()};
  spec.input_inode = 42;
  spec.output_inode = 43;
  spec.params = std::string("p\0rams", 6);
  return encode_spec(spec);
}

/// A spec as a cluster rank makes it: its segment holds rank 1's blocks of a distributed array.
std::string sample_rank_spec() {
  TaskSpec spec;
  spec.worker_name = "corun::test::AddInts";
  spec.iterator = DataIterator::over(ArrayInfo{"corun_proto_rank", {40}, DType::of<double>()}, 1);
  spec.block_map = corun::detail::BlockMap{100, 0, 10, 1, 3};
  return encode_spec(spec);
}

std::string sample_function_spec() {
  TaskSpec spec;
  spec.worker_name = "square";
  spec.reads_array = false;
  spec.params = "xyz";
  return encode_spec(spec);
}

std::string task_body_sample() {
  std::string task;
  proto::append_task(task, 5, Slice{0, 4}, 12, "argument");
  return task.substr(proto::kHeaderSize);
}

std::string spec_message_sample() {
  std::string spec;
  proto::append_spec(spec, 12, sample_spec());
  return spec.substr(proto::kHeaderSize);
}

std::string forget_sample() {
  std::string forget;
  proto::append_forget(forget, 12);
  return forget.substr(proto::kHeaderSize);
}

}  // namespace

TEST_CASE("a header round-trips and each bad field is named", "[protocol]") {
  const std::string bytes = header_bytes(proto::Kind::result, 1234);
  REQUIRE(bytes.size() == proto::kHeaderSize);
  const proto::Header h = proto::parse_header(bytes, 4096);
  CHECK(h.kind == proto::Kind::result);
  CHECK(h.length == 1234);
  CHECK_THROWS_WITH(proto::parse_header(bytes, 1000),
                    "corun protocol header: field length: 1234 exceeds 1000");
  std::string bad = bytes;
  bad[6] = 13;  // kind
  CHECK_THROWS_WITH(proto::parse_header(bad, 4096), "corun protocol header: field kind: 13");
  bad[6] = 0;
  CHECK_THROWS_WITH(proto::parse_header(bad, 4096), "corun protocol header: field kind: 0");
  bad = bytes;
  bad[4] = 1;  // version
  CHECK_THROWS_WITH(proto::parse_header(bad, 4096),
                    "corun protocol header: field version: 1 (this side speaks 7)");
  CHECK_THROWS_WITH(proto::parse_header(bytes.substr(0, 10), 4096),
                    Catch::Contains("truncated input"));
}

TEST_CASE("init and result messages round-trip exactly", "[protocol]") {
  proto::Init init;
  init.worker_id = 3;
  init.max_result_bytes = 1u << 20;
  init.cpu_binding = "0,2";
  init.worker_init = {1, 0x1234, "libx.so"};
  init.report_starts = true;
  init.line_buffered_stdout = true;
  init.cpu_binding_required = true;
  init.memory_limit = std::uint64_t{256} << 20;
  init.max_rss = (std::uint64_t{5} << 32) + 7;  // beyond 32 bits
  init.ring_segment = "corun_1_rings";
  init.ring_capacity = 1u << 20;
  init.spin_ns = 50'000;
  init.spin_yields = true;
  const proto::Init back = proto::decode_init(proto::encode_init(init));
  CHECK(back.ring_segment == "corun_1_rings");
  CHECK(back.ring_capacity == (1u << 20));
  CHECK(back.spin_ns == 50'000);
  CHECK(back.spin_yields);
  init.ring_capacity = 5000;
  CHECK_THROWS_WITH(proto::decode_init(proto::encode_init(init)),
                    "corun init message: field ring_capacity: 5000 is not a power of two from "
                    "4096 to 2^30");
  init.ring_capacity = 1u << 20;
  CHECK(back.cpu_binding_required);
  CHECK(back.memory_limit == (std::uint64_t{256} << 20));
  CHECK(back.max_rss == (std::uint64_t{5} << 32) + 7);
  CHECK(back.worker_id == 3);
  CHECK(back.max_result_bytes == (1u << 20));
  CHECK(back.cpu_binding == "0,2");
  CHECK(back.worker_init.module == 1);
  CHECK(back.worker_init.offset == 0x1234);
  CHECK(back.worker_init.module_name == "libx.so");
  CHECK(back.worker_exit.empty());
  CHECK(back.report_starts);
  CHECK(back.line_buffered_stdout);

  std::string body;
  proto::append_result_head(body, {7, proto::Status::ok, 10, 20, 1, 0, 5});
  body += "payload";
  const proto::Result ok = proto::decode_result(body);
  CHECK(ok.head.task_id == 7);
  CHECK(ok.head.started_ns == 10);
  CHECK(ok.head.finished_ns == 20);
  CHECK(ok.head.cpu_time_ns == 5);
  CHECK(ok.payload == "payload");

  body.clear();
  proto::append_result_head(body, {8, proto::Status::exception});
  ByteWriter w(body);
  w.str("std::runtime_error");
  w.str("boom");
  const proto::Result failed = proto::decode_result(body);
  CHECK(failed.head.status == proto::Status::exception);
  CHECK(failed.exception_type == "std::runtime_error");
  CHECK(failed.message == "boom");
  CHECK(failed.head.flags == 0);
}

TEST_CASE("an init_failed message says whose failure it is", "[protocol]") {
  const std::string hook = proto::encode_init_failure(proto::InitFailure::Cause::hook, "boom");
  const proto::InitFailure h = proto::decode_init_failure(hook);
  CHECK(h.cause == proto::InitFailure::Cause::hook);
  CHECK(h.message == "boom");
  const std::string setup =
      proto::encode_init_failure(proto::InitFailure::Cause::setup, "cannot bind");
  const proto::InitFailure s = proto::decode_init_failure(setup);  // points into `setup`
  CHECK(s.cause == proto::InitFailure::Cause::setup);
  CHECK(s.message == "cannot bind");
  CHECK_THROWS_WITH(proto::decode_init_failure(std::string("\x02x")),
                    "corun init_failed message: field cause: 2");
  CHECK_THROWS_WITH(proto::decode_init_failure(""), Catch::Contains("field cause"));
}

TEST_CASE("a result head carries out_of_memory and the retire flag; other values are rejected",
          "[protocol]") {
  // A whole frame, as a worker sends it: the flag is patched in after the task ran.
  std::string frame;
  proto::append_header(frame, proto::Kind::result, 0);
  proto::ResultHead head;
  head.task_id = 11;
  head.status = proto::Status::out_of_memory;
  proto::append_result_head(frame, head);
  ByteWriter(frame).str("std::bad_alloc");
  ByteWriter(frame).str("std::bad_alloc");
  CHECK(proto::result_status(frame) == proto::Status::out_of_memory);
  proto::set_result_flags(frame, proto::kRetireFlag);
  const std::string_view body = std::string_view(frame).substr(proto::kHeaderSize);
  const proto::Result r = proto::decode_result(body);
  CHECK(r.head.task_id == 11);
  CHECK(r.head.status == proto::Status::out_of_memory);
  CHECK(r.head.flags == proto::kRetireFlag);
  CHECK(r.exception_type == "std::bad_alloc");
  CHECK(r.message == "std::bad_alloc");

  std::string bad(body);
  bad[proto::kResultFlagsOffset - proto::kHeaderSize] = 2;
  CHECK_THROWS_WITH(proto::decode_result(bad), "corun result message: field flags: 2");
  bad = std::string(body);
  bad[sizeof(std::uint64_t)] = 4;  // status
  CHECK_THROWS_WITH(proto::decode_result(bad), "corun result message: field status: 4");
  std::string too_short;
  proto::append_header(too_short, proto::Kind::result, 0);
  CHECK_THROWS_AS(proto::set_result_flags(too_short, proto::kRetireFlag), std::logic_error);
}

TEST_CASE("a task spec round-trips exactly", "[protocol]") {
  const DecodedSpec spec = decode_spec(sample_spec());
  CHECK(spec.worker_name == "corun::test::AddInts");
  CHECK(spec.iterator.shm_name == "corun_proto_test");
  CHECK(spec.iterator.chunk_size == 4);
  CHECK(spec.iterator.shm_shape == std::vector<std::size_t>{10, 3});
  REQUIRE(spec.output.has_value());
  CHECK(spec.output->name == "corun_proto_out");
  CHECK(spec.input_inode == 42);
  CHECK(spec.output_inode == 43);
  CHECK(spec.params == std::string("p\0rams", 6));
  CHECK_FALSE(spec.block_map.has_value());

  const DecodedSpec on_rank = decode_spec(sample_rank_spec());
  REQUIRE(on_rank.block_map.has_value());
  CHECK(*on_rank.block_map == corun::detail::BlockMap{100, 0, 10, 1, 3});
  TaskSpec bad;
  bad.iterator = DataIterator::over(ArrayInfo{"corun_proto_rank", {40}, DType::of<double>()}, 1);
  bad.block_map = corun::detail::BlockMap{100, 0, 10, 3, 3};
  CHECK_THROWS_WITH(decode_spec(encode_spec(bad)), Catch::Matchers::Contains("block_map.rank") &&
                                                       Catch::Matchers::Contains("3 of 3"));
  bad.block_map = corun::detail::BlockMap{100, 4, 10, 0, 3};
  CHECK_THROWS_WITH(decode_spec(encode_spec(bad)),
                    Catch::Matchers::Contains("exactly one of partitions and chunk_size"));

  const DecodedSpec function = decode_spec(sample_function_spec());
  CHECK(function.worker_name == "square");
  CHECK_FALSE(function.reads_array);
  CHECK(function.params == "xyz");
}

TEST_CASE("every decoder takes random and corrupted bytes cleanly", "[protocol][fuzz]") {
  std::string result_sample;
  proto::append_result_head(result_sample, {8, proto::Status::exception, 1, 2, 0, 1, 3});
  ByteWriter(result_sample).str("std::runtime_error");
  ByteWriter(result_sample).str("boom");
  std::string retiring_sample;
  proto::ResultHead retiring{9, proto::Status::out_of_memory, 1, 2, 0, 1, 3};
  retiring.flags = proto::kRetireFlag;
  proto::append_result_head(retiring_sample, retiring);
  ByteWriter(retiring_sample).str("std::bad_alloc");
  ByteWriter(retiring_sample).str("std::bad_alloc");
  proto::Init init;
  init.cpu_binding = "0,1";
  init.worker_exit = {2, 99, "corun"};
  init.cpu_binding_required = true;
  init.memory_limit = 1u << 28;
  init.max_rss = 1u << 27;
  init.ring_segment = "corun_2_rings";
  init.ring_capacity = 1u << 16;
  init.spin_ns = 1000;

  struct Decoder {
    const char* name;
    std::function<void(std::string_view)> decode;
    std::vector<std::string> samples;
  };
  const std::vector<Decoder> decoders = {
      {"header",
       [](std::string_view b) { proto::parse_header(b, 1u << 20); },
       {header_bytes(proto::Kind::task, 100)}},
      {"init", [](std::string_view b) { proto::decode_init(b); }, {proto::encode_init(init)}},
      {"result",
       [](std::string_view b) { proto::decode_result(b); },
       {result_sample, retiring_sample}},
      {"spec",
       [](std::string_view b) { decode_spec(b); },
       {sample_spec(), sample_function_spec(), sample_rank_spec()}},
      {"task", [](std::string_view b) { proto::decode_task(b); }, {task_body_sample()}},
      {"spec message",
       [](std::string_view b) { proto::decode_spec_message(b); },
       {spec_message_sample()}},
      {"forget", [](std::string_view b) { proto::decode_forget(b); }, {forget_sample()}},
      {"init_failed",
       [](std::string_view b) { proto::decode_init_failure(b); },
       {proto::encode_init_failure(proto::InitFailure::Cause::setup, "cannot bind to PUs {7}")}},
  };
  for (const Decoder& d : decoders) {
    const FuzzTally tally = fuzz(d.decode, d.samples);
    INFO(d.name << ": first unclean input: " << tally.first_unclean);
    CHECK(tally.unclean == 0);
    CHECK(tally.rejected > 0);
  }
}

TEST_CASE("task, spec and forget messages round-trip exactly", "[protocol]") {
  std::string task;
  proto::append_task(task, 5, Slice{2, 9}, 77, std::string("arg\0ument", 9));
  REQUIRE(proto::parse_header(task, 1u << 20).kind == proto::Kind::task);
  const proto::Task t = proto::decode_task(std::string_view(task).substr(proto::kHeaderSize));
  CHECK(t.task_id == 5);
  CHECK(t.slice == Slice{2, 9});
  CHECK(t.spec_id == 77);
  CHECK(t.argument == std::string("arg\0ument", 9));
  // What travels per task now: header, ids and slice, no spec and no params.
  std::string bare;
  proto::append_task(bare, 1, Slice{0, 1}, 2, {});
  CHECK(bare.size() == 52);

  std::string spec;
  proto::append_spec(spec, 77, sample_spec());
  const proto::Header h = proto::parse_header(spec, 1u << 20);
  CHECK(h.kind == proto::Kind::spec);
  CHECK(h.length == spec.size() - proto::kHeaderSize);
  const proto::SpecDefinition d =
      proto::decode_spec_message(std::string_view(spec).substr(proto::kHeaderSize));
  CHECK(d.spec_id == 77);
  CHECK(d.spec == sample_spec());

  std::string forget;
  proto::append_forget(forget, 77);
  CHECK(proto::parse_header(forget, 1u << 20).kind == proto::Kind::forget);
  CHECK(proto::decode_forget(std::string_view(forget).substr(proto::kHeaderSize)) == 77);
}

TEST_CASE("a spec is sent to a worker once, and forgotten when dropped or least recently used",
          "[protocol][specs]") {
  SpecBook book(2);
  auto a = make_function_spec("a"), b = make_function_spec("b"), c = make_function_spec("c");
  CHECK(a->id != b->id);
  auto plan = book.use(a);
  CHECK(plan.send);
  CHECK(plan.forget.empty());
  CHECK_FALSE(book.use(a).send);  // once per worker
  CHECK(book.use(b).send);
  CHECK_FALSE(book.use(a).send);
  plan = book.use(c);  // beyond the capacity: b was used least recently
  CHECK(plan.send);
  CHECK(plan.forget == std::vector<std::uint64_t>{b->id});
  CHECK(book.held() == 2);
  const std::uint64_t dropped = c->id;
  c.reset();  // the parent dropped it: forgotten when the next spec is sent
  CHECK(book.use(b).forget == std::vector<std::uint64_t>{dropped});
  CHECK(book.held() == 2);
  // A spec made by hand under an id the worker holds for another replaces it there.
  auto same_id = std::make_shared<TaskSpec>(*b);
  CHECK(book.use(same_id).send);
  CHECK_FALSE(book.use(same_id).send);
}

TEST_CASE("a worker runs tasks of the specs it holds, and fails others cleanly", "[protocol]") {
  TaskRunner runner(0, 1u << 20);
  std::string spec;
  proto::append_spec(spec, 3, sample_function_spec());
  runner.define(std::string_view(spec).substr(proto::kHeaderSize));
  CHECK(runner.specs() == 1);
  auto run = [&](std::uint64_t spec_id) {
    std::string task, out;
    proto::append_task(task, 9, Slice{0, 1}, spec_id, "x");
    runner.run(std::string_view(task).substr(proto::kHeaderSize), out);
    return proto::decode_result(std::string_view(out).substr(proto::kHeaderSize));
  };
  // "square" is not registered here: the spec was found, its worker was not.
  CHECK_THAT(run(3).message, Catch::Contains("'square' is not registered"));
  CHECK_THAT(run(4).message, Catch::Contains("spec 4 was not sent to this worker"));
  runner.forget(3);
  CHECK(runner.specs() == 0);
  CHECK_THAT(run(3).message, Catch::Contains("spec 3 was not sent"));
  // A malformed spec fails its tasks, not the worker.
  std::string bad;
  proto::append_spec(bad, 5, "garbage");
  runner.define(std::string_view(bad).substr(proto::kHeaderSize));
  const proto::Result r = run(5);
  CHECK(r.head.status == proto::Status::protocol);
  CHECK_THAT(r.message, Catch::Contains("corun task spec"));
  // No more than kMaxSpecsAtWorker at once.
  for (std::uint64_t id = 100; runner.specs() < proto::kMaxSpecsAtWorker; ++id) {
    std::string more;
    proto::append_spec(more, id, sample_function_spec());
    runner.define(std::string_view(more).substr(proto::kHeaderSize));
  }
  std::string one_more;
  proto::append_spec(one_more, 99, sample_function_spec());
  CHECK_THROWS_AS(runner.define(std::string_view(one_more).substr(proto::kHeaderSize)),
                  std::invalid_argument);
}

TEST_CASE(
    "a worker answers any task or spec message with a well-formed result frame or a clean "
    "error",
    "[protocol][fuzz]") {
  std::string spec;
  proto::append_spec(spec, 1, sample_spec());
  std::string task;
  proto::append_task(task, 5, Slice{0, 4}, 1, "argument");
  const std::string spec_body = spec.substr(proto::kHeaderSize);
  const std::string body = task.substr(proto::kHeaderSize);
  TaskRunner runner(0, 1u << 20);
  runner.define(spec_body);
  std::size_t frames = 0;
  const FuzzTally tally = fuzz(
      [&](std::string_view b) {
        std::string out;
        runner.run(b, out);
        // Whatever the task bytes were, the reply is one valid result frame.
        const proto::Header h = proto::parse_header(out, 1u << 21);
        REQUIRE(h.kind == proto::Kind::result);
        REQUIRE(out.size() == proto::kHeaderSize + h.length);
        proto::decode_result(std::string_view(out).substr(proto::kHeaderSize));
        ++frames;
      },
      {body});
  INFO("first unclean input: " << tally.first_unclean);
  CHECK(tally.unclean == 0);
  CHECK(frames > 1000);

  // Corrupted spec messages: each is kept (its tasks then fail cleanly) or rejected.
  const FuzzTally specs = fuzz(
      [&](std::string_view b) {
        TaskRunner fresh(0, 1u << 20);
        fresh.define(b);
        std::string out;
        const proto::SpecDefinition d = proto::decode_spec_message(b);
        std::string t;
        proto::append_task(t, 6, Slice{0, 4}, d.spec_id, {});
        fresh.run(std::string_view(t).substr(proto::kHeaderSize), out);
        REQUIRE(proto::parse_header(out, 1u << 21).kind == proto::Kind::result);
      },
      {spec_body});
  INFO("first unclean spec message: " << specs.first_unclean);
  CHECK(specs.unclean == 0);
}
