#pragma once
/// \file
/// Everything corun offers on one machine, in one include (for programs: no corun header includes
/// it). Two are opt-in: <corun/cereal.hpp> (params of user types through cereal), so that only
/// programs using it need cereal, and <corun/cluster.hpp>, which needs corun_mpi and MPI.
/// Side: both.

#include <corun/detail/config.hpp>

#include <corun/cancellation.hpp>
#include <corun/codec.hpp>
#include <corun/cpu_monitor.hpp>
#include <corun/cpu_topology.hpp>
#include <corun/data_iterator.hpp>
#include <corun/diagnostics.hpp>
#include <corun/dtype.hpp>
#include <corun/error.hpp>
#include <corun/graceful_stop.hpp>
#include <corun/map.hpp>
#include <corun/map_with_state.hpp>
#include <corun/orchestrator.hpp>
#include <corun/params.hpp>
#include <corun/pool.hpp>
#include <corun/progress.hpp>
#include <corun/reduce.hpp>
#include <corun/report.hpp>
#include <corun/retry.hpp>
#include <corun/shared_array.hpp>
#include <corun/slice.hpp>
#include <corun/slice_view.hpp>
#include <corun/version.hpp>
#include <corun/wait_mode.hpp>
#include <corun/worker.hpp>
#include <corun/worker_info.hpp>
#include <corun/worker_output.hpp>
