#pragma once
/// \file
/// Everything corun offers, in one include.

#include <corun/detail/config.hpp>

#include <corun/cancellation.hpp>
#include <corun/codec.hpp>
#include <corun/cpu_monitor.hpp>
#include <corun/cpu_topology.hpp>
#include <corun/data_iterator.hpp>
#include <corun/dtype.hpp>
#include <corun/error.hpp>
#include <corun/graceful_stop.hpp>
#include <corun/orchestrator.hpp>
#include <corun/pool.hpp>
#include <corun/progress.hpp>
#include <corun/report.hpp>
#include <corun/shared_array.hpp>
#include <corun/slice.hpp>
#include <corun/slice_view.hpp>
#include <corun/worker.hpp>
#include <corun/worker_info.hpp>
