#pragma once
/// \file
/// More than one machine: the same orchestrator over MPI ranks (library corun_mpi, Meson
/// feature `mpi`; the core library never depends on MPI and this header never includes mpi.h).
///
/// One rank per node, each with its own local ProcessPool and node-local segments. Rank 0 runs
/// the application and its orchestrators; the other ranks serve. A DistributedArray deals
/// blocks of rows round-robin to the ranks; a task goes to the rank holding its rows, where its
/// global slice becomes local rows of that rank's segment. Only task specs, slices and results
/// cross MPI.
/// \code
/// int main(int argc, char** argv) {
///   corun::enter_worker_if_spawned(argc, argv);
///   corun::Cluster cluster{argc, argv, {.pool = {.workers = 2}}};
///   auto ints = corun::DistributedArray<std::int64_t>::create(cluster, {n}, {.partitions = 8});
///   ints.fill_rows([](std::size_t row, std::int64_t* values) { values[0] = row + 1; });
///   if (!cluster.serve()) return 0;  // ranks > 0 serve here until rank 0 is done
///   asio::io_context io;
///   corun::ClusterPool pool{cluster, io.get_executor()};
///   AddInts add{ints.iterator()};
///   corun::WorkerOrchestrator orch{pool, {&add}};
///   ...  // co_await orch.run(); co_await pool.async_shutdown(asio::use_awaitable);
/// }
/// \endcode

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/data_iterator.hpp>
#include <corun/detail/block_map.hpp>
#include <corun/detail/completion.hpp>
#include <corun/detail/task_service.hpp>
#include <corun/dtype.hpp>
#include <corun/pool.hpp>
#include <corun/shared_array.hpp>
#include <corun/slice.hpp>
#include <corun/worker.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace corun {

struct ClusterOptions {
  /// Every rank's local pool of worker processes (rank 0's included). Under mpirun start the
  /// ranks with `--bind-to none`, or a rank's workers share the one core it is bound to.
  PoolOptions pool;
  /// An idle communication thread polls MPI at least this often (it backs off from 10 us to
  /// this after the last message): the latency of a result when the cluster is idle, traded
  /// against the CPU an idle rank burns.
  std::chrono::microseconds max_poll_interval{1000};
};

namespace detail {
class ClusterState;
class ClusterService;
class DistributedBlocks;
struct ClusterAccess;
}  // namespace detail

/// This process's place in an MPI job: initialises MPI (MPI_Init_thread, MPI_THREAD_FUNNELED:
/// only the cluster's communication thread calls MPI) and finalises it exactly once.
///
/// One per process, made after enter_worker_if_spawned (a worker process never reaches it).
class CORUN_API Cluster {
 public:
  /// Initialises MPI. Throws corun::Error when MPI cannot give the thread level it needs, or a
  /// Cluster exists already in this process.
  Cluster(int& argc, char**& argv, ClusterOptions options = {});
  /// On rank 0, stops every other rank (their pools are killed if rank 0 never shut its
  /// ClusterPool down), then finalises MPI. When an exception is propagating, aborts the whole
  /// job (MPI_Abort) instead: the other ranks would otherwise wait for rank 0 forever.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  int rank() const noexcept;
  /// Number of ranks.
  int size() const noexcept;
  bool is_root() const noexcept { return rank() == 0; }
  const ClusterOptions& options() const noexcept;

  /// Collective: every rank calls it once, after creating and filling its distributed arrays.
  /// Rank 0 returns true once every rank is ready to serve. The other ranks run their local
  /// pool for rank 0's tasks until rank 0 shuts its ClusterPool down (or its Cluster is
  /// destroyed), then return false: `if (!cluster.serve()) return 0;`.
  bool serve();

 private:
  friend struct detail::ClusterAccess;
  std::shared_ptr<detail::ClusterState> state_;
};

/// How a distributed array's rows are cut into blocks, which are dealt round-robin to the
/// ranks (block b lives on rank b % size): exactly one of the two is non-zero.
struct BlockLayout {
  std::size_t partitions = 0;  ///< this many balanced blocks (DataIterator::partitioned)
  std::size_t chunk_size = 0;  ///< blocks of this many rows (DataIterator::over)
};

/// One block of a distributed array held by this rank.
struct LocalBlock {
  Slice rows;               ///< its rows, counted in the whole array
  std::size_t local_start;  ///< where they start in this rank's segment
};

namespace detail {
/// The type-erased part of a DistributedArray: its global metadata and where its blocks live.
class CORUN_API DistributedBlocks {
 public:
  DistributedBlocks(ArrayInfo global, BlockLayout layout, int rank, int ranks);

  const ArrayInfo& global() const noexcept { return global_; }
  const BlockLayout& layout() const noexcept { return layout_; }
  /// The iterator whose slices are the blocks.
  const DataIterator& blocks() const noexcept { return blocks_; }
  /// Where the blocks are, seen from this rank.
  const BlockMap& map() const noexcept { return map_; }
  /// Rows held by this rank.
  std::size_t local_rows() const noexcept { return map_.local_rows(); }
  const std::vector<LocalBlock>& local_blocks() const noexcept { return local_blocks_; }
  /// The rank holding all rows of `slice`, or -1 when they are in more than one block.
  int owner(Slice slice) const noexcept { return map_.owner(slice); }
  /// `slice` in this rank's segment; requires owner(slice) == this rank.
  Slice to_local(Slice slice) const noexcept { return map_.to_local(slice); }

 private:
  ArrayInfo global_;
  BlockLayout layout_;
  DataIterator blocks_;
  BlockMap map_;
  std::vector<LocalBlock> local_blocks_;
};

/// Collective: agrees on the global name of a new distributed array, checks every rank passed
/// the same shape, type and layout, and returns its blocks.
CORUN_API std::shared_ptr<DistributedBlocks> create_distributed(Cluster& cluster,
                                                                std::vector<std::size_t> shape,
                                                                DType dtype, BlockLayout layout);
/// The largest message scatter_rows sends (MPI counts are ints).
inline constexpr std::size_t kScatterPieceBytes = std::size_t{1} << 30;
/// Collective: rank 0's `whole` (every element of the array, row-major) is cut into blocks and
/// each rank's go to its segment `local`, in messages of at most `piece_bytes` (every rank
/// passes the same); the other ranks pass none. Throws std::invalid_argument on every rank when
/// one passed a wrong number of elements.
CORUN_API void scatter_rows(Cluster& cluster, const DistributedBlocks& blocks, const void* whole,
                            std::size_t whole_elements, void* local, std::size_t element_bytes,
                            std::size_t piece_bytes = kScatterPieceBytes);
/// Makes `blocks` (whose rows on this rank are in segment `local`) known to tasks on this rank.
CORUN_API void register_distributed(Cluster& cluster, std::shared_ptr<DistributedBlocks> blocks,
                                    ArrayInfo local);
CORUN_API void unregister_distributed(Cluster& cluster, const std::string& global_name) noexcept;
}  // namespace detail

/// An array whose rows are spread over the ranks of a cluster, each rank's blocks in a
/// node-local SharedArray. Workers take its iterator() (or any DataIterator over info() whose
/// slices never cross a block) and run unchanged: on the rank holding a slice, `process` sees
/// that slice's rows of the local segment, TaskContext::slice counts rows of the whole array
/// (TaskContext::segment_rows the same rows in the local segment, which
/// TaskContext::iterator describes), and an output DistributedArray of the same layout receives
/// the task's rows there too. Move-only; outlives no Cluster.
template <element_type T>
class DistributedArray {
 public:
  /// Collective (every rank, same arguments, before Cluster::serve). Throws
  /// std::invalid_argument for a bad shape or layout, or when ranks disagree.
  static DistributedArray create(Cluster& cluster, std::vector<std::size_t> shape,
                                 BlockLayout layout) {
    auto blocks = detail::create_distributed(cluster, std::move(shape), DType::of<T>(), layout);
    std::vector<std::size_t> local_shape = blocks->global().shape;
    local_shape[0] = blocks->local_rows();
    return DistributedArray(cluster, std::move(blocks),
                            SharedArray<T>::create(std::move(local_shape)));
  }
  DistributedArray(DistributedArray&&) noexcept = default;
  DistributedArray& operator=(DistributedArray&&) = delete;
  ~DistributedArray() {
    if (blocks_) detail::unregister_distributed(*cluster_, blocks_->global().name);
  }

  /// The whole array: what DataIterator::over and DataIterator::partitioned take. Its name
  /// names no segment; the cluster translates it on each rank.
  const ArrayInfo& info() const noexcept { return blocks_->global(); }
  const std::vector<std::size_t>& shape() const noexcept { return blocks_->global().shape; }
  /// One slice per block: the iterator to give workers.
  const DataIterator& iterator() const noexcept { return blocks_->blocks(); }

  /// This rank's rows, blocks concatenated in order.
  SharedArray<T>& local() noexcept { return local_; }
  const SharedArray<T>& local() const noexcept { return local_; }
  const std::vector<LocalBlock>& local_blocks() const noexcept { return blocks_->local_blocks(); }

  /// Collective (every rank, before Cluster::serve): rank 0 passes every element of the array
  /// (row-major), and each rank receives its blocks into local(); the other ranks pass nothing.
  /// Moves (R-1)/R of the array over the network, once; when each rank can compute or read its
  /// own rows, fill_rows moves nothing. Throws std::invalid_argument on every rank when one
  /// passed a wrong number of elements.
  void scatter(std::span<const T> whole = {}) {
    detail::scatter_rows(*cluster_, *blocks_, whole.data(), whole.size(), local_.data(), sizeof(T));
  }

  /// Fills this rank's rows in place: `f(global_row, T* row_elements)` for each local row.
  template <class F>
  void fill_rows(F f) {
    std::size_t row_elements = 1;
    for (std::size_t i = 1; i < shape().size(); ++i) row_elements *= shape()[i];
    for (const LocalBlock& b : local_blocks())
      for (std::size_t r = b.rows.start; r < b.rows.end; ++r)
        f(r, local_.data() + (b.local_start + (r - b.rows.start)) * row_elements);
  }

 private:
  DistributedArray(Cluster& cluster, std::shared_ptr<detail::DistributedBlocks> blocks,
                   SharedArray<T> local)
      : cluster_(&cluster), blocks_(std::move(blocks)), local_(std::move(local)) {
    detail::register_distributed(cluster, blocks_, local_.info());
  }

  Cluster* cluster_;
  std::shared_ptr<detail::DistributedBlocks> blocks_;
  SharedArray<T> local_;
};

/// Rank 0's pool-like object: runs tasks on the rank that holds their rows, with every rank's
/// local pool (rank 0's own included). Tasks over a plain SharedArray run on rank 0; the chunks
/// of async_map, async_imap and async_map_reduce (which read only their inputs) go to the rank
/// with the fewest tasks per worker, their inputs travelling with them. Pass it to
/// WorkerOrchestrator or async_map as a ProcessPool; RunReport's records and TaskErrors carry the
/// rank.
///
/// Threading: as ProcessPool; its state lives on a strand of the executor it was given. MPI is
/// driven by the cluster's communication thread, which posts results to that strand: nothing
/// here blocks the executor.
class CORUN_API ClusterPool {
 public:
  using executor_type = asio::any_io_executor;

  /// On rank 0, after Cluster::serve() returned true; throws corun::Error otherwise.
  ClusterPool(Cluster& cluster, executor_type executor);
  /// Kills rank 0's workers (call async_shutdown first for a graceful end); the other ranks
  /// are stopped by ~Cluster.
  ~ClusterPool();
  ClusterPool(const ClusterPool&) = delete;
  ClusterPool& operator=(const ClusterPool&) = delete;

  executor_type get_executor() const noexcept { return executor_; }
  /// Ranks in the cluster.
  int ranks() const noexcept;
  /// The workers of each rank's pool, rank 0's first. Nodes may differ (PoolOptions::workers 0
  /// means one per core of that node); async_map's chunks go where the fewest tasks per worker
  /// are.
  std::vector<std::size_t> workers() const;
  /// What WorkerOrchestrator runs its tasks on.
  std::shared_ptr<detail::TaskService> task_service() const;

  /// Runs worker type W's `process` on `slice` (global rows) of the array `iterator` describes,
  /// on the rank holding those rows; as ProcessPool::async_execute.
  ///
  /// Completion signature: `void(std::exception_ptr, R)`, R the result type of `W::process`
  /// (`void(std::exception_ptr)` when it returns void); the exception is a corun::TaskFailed whose
  /// TaskError names the rank. Cancellation: as ProcessPool::async_execute, on the owning rank.
  template <class W, class Token = asio::default_completion_token_t<executor_type>>
  auto async_execute(const DataIterator& iterator, Slice slice, Token&& token = {}) {
    return detail::async_execute_task<W>(task_service(), detail::default_task_spec<W>(iterator),
                                         slice, std::forward<Token>(token));
  }
  /// The same, with the worker object's iterator, params and output array.
  template <class W, class Token = asio::default_completion_token_t<executor_type>>
  auto async_execute(const W& worker, Slice slice, Token&& token = {}) {
    return detail::async_execute_task<W>(task_service(), detail::worker_task_spec(worker), slice,
                                         std::forward<Token>(token));
  }

  /// Completes when every rank's workers have started.
  /// Completion signature: `void(std::exception_ptr)`; the exception names the failed rank.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_wait_ready(Token&& token = {}) {
    return async_lifecycle(false, std::forward<Token>(token));
  }
  /// Graceful shutdown: new tasks are refused, running ones finish, then every rank's pool
  /// stops and the other ranks return from Cluster::serve(). Completion signature:
  /// `void(std::exception_ptr)`.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_shutdown(Token&& token = {}) {
    return async_lifecycle(true, std::forward<Token>(token));
  }

 private:
  template <class Token>
  auto async_lifecycle(bool shutdown, Token&& token) {
    return asio::async_initiate<Token, void(std::exception_ptr)>(
        [](auto handler, bool stop, std::shared_ptr<detail::ClusterService> service,
           std::shared_ptr<detail::TaskService> seam) {
          lifecycle(service, stop,
                    std::make_unique<detail::HandlerCompletion<void, decltype(handler)>>(
                        std::move(handler), std::move(seam)));
        },
        token, shutdown, service_, task_service());
  }
  static void lifecycle(const std::shared_ptr<detail::ClusterService>& service, bool shutdown,
                        std::unique_ptr<detail::TaskCompletion> done);

  executor_type executor_;
  std::shared_ptr<detail::ClusterState> cluster_;
  std::shared_ptr<detail::ClusterService> service_;
};

}  // namespace corun
