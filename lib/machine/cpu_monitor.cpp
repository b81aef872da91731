/// \file
/// CpuMonitor (parent side): reads /proc/stat on an Asio timer and appends a CpuSeries row per
/// sample, without blocking the executor.
/// Side: parent.
#include <corun/cpu_monitor.hpp>

#include <asio/steady_timer.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace corun {

namespace {
struct Counters {
  unsigned long long busy = 0, total = 0;
};

/// Reads /proc/stat's per-CPU lines into `out`, indexed by OS index. One read(2) of a small
/// file from the kernel: no blocking I/O.
void read_proc_stat(std::vector<Counters>& out) {
  static thread_local std::string buffer(64 * 1024, '\0');
  const int fd = ::open("/proc/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::size_t length = 0;
  for (;;) {
    if (length == buffer.size()) buffer.resize(buffer.size() * 2);
    const ssize_t n = ::read(fd, buffer.data() + length, buffer.size() - length);
    if (n <= 0) break;
    length += static_cast<std::size_t>(n);
  }
  ::close(fd);
  const char* p = buffer.data();
  const char* end = p + length;
  while (p < end) {
    const char* eol =
        static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (!eol) eol = end;
    if (eol - p > 3 && std::memcmp(p, "cpu", 3) == 0 && p[3] >= '0' && p[3] <= '9') {
      unsigned cpu = 0;
      unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                         steal = 0;
      if (std::sscanf(p, "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &user, &nice,
                      &system, &idle, &iowait, &irq, &softirq, &steal) >= 5) {
        if (cpu >= out.size()) out.resize(cpu + 1);
        out[cpu].busy = user + nice + system + irq + softirq + steal;
        out[cpu].total = out[cpu].busy + idle + iowait;
      }
    }
    p = eol + 1;
  }
}
}  // namespace

struct CpuMonitor::State : std::enable_shared_from_this<State> {
  State(asio::any_io_executor ex, std::chrono::milliseconds i) : timer(ex), interval(i) {}

  asio::steady_timer timer;
  std::chrono::milliseconds interval;
  bool running = false;
  std::chrono::steady_clock::time_point t0, last_sample, next_tick;
  std::vector<Counters> previous, current;
  CpuSeries series;

  void sample() {
    const auto now = std::chrono::steady_clock::now();
    read_proc_stat(current);
    std::vector<float> row(series.pus.size(), 0.f);
    for (std::size_t i = 0; i < series.pus.size(); ++i) {
      const auto os = static_cast<std::size_t>(series.pus[i]);
      if (os >= current.size() || os >= previous.size()) continue;
      const Counters& now_c = current[os];
      Counters& then_c = previous[os];
      if (now_c.total <= then_c.total || now_c.busy < then_c.busy) {
        // The kernel counts in ticks of 10 ms: no tick since the last sample tells nothing
        // new, so repeat the last value and measure the next sample over the longer span.
        if (!series.busy.empty()) row[i] = series.busy.back()[i];
        continue;
      }
      row[i] =
          std::min(100.f, static_cast<float>(100.0 * static_cast<double>(now_c.busy - then_c.busy) /
                                             static_cast<double>(now_c.total - then_c.total)));
      then_c = now_c;
    }
    series.times.push_back(std::chrono::duration<double>(now - t0).count());
    series.busy.push_back(std::move(row));
    last_sample = now;
  }

  void schedule() {
    // Ticks on a fixed grid from t0, so a handler a little late does not shift later samples.
    // A loop that was blocked for longer has missed ticks: they are dropped, not run back to
    // back (samples a few microseconds apart, measuring nothing), and the grid starts again
    // from now, so two samples are never closer than half an interval.
    next_tick += interval;
    if (const auto now = std::chrono::steady_clock::now(); next_tick < now + interval / 2)
      next_tick = now + interval;
    timer.expires_at(next_tick);
    timer.async_wait([weak = weak_from_this()](std::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || !self->running) return;
      self->sample();
      self->schedule();
    });
  }
};

CpuMonitor::CpuMonitor(asio::any_io_executor executor, std::chrono::milliseconds interval) {
  if (interval < min_interval)
    throw std::invalid_argument(
        "corun::CpuMonitor: interval = " + std::to_string(interval.count()) +
        " ms is below the minimum of 10 ms");
  state_ = std::make_shared<State>(std::move(executor), interval);
}

CpuMonitor::~CpuMonitor() {
  stop();
}

void CpuMonitor::start() {
  State& s = *state_;
  stop();
  const CpuTopology& topo = CpuTopology::local();
  s.series = CpuSeries{};
  s.series.pus = topo.pu_os_index;
  s.series.core_of_pu = topo.core_of_pu;
  s.series.started_wall = std::chrono::system_clock::now();
  s.t0 = s.next_tick = s.last_sample = std::chrono::steady_clock::now();
  read_proc_stat(s.previous);
  s.running = true;
  s.schedule();
}

void CpuMonitor::stop() {
  State& s = *state_;
  if (!s.running) return;
  s.running = false;
  s.timer.cancel();
  // A last sample covers the tail of a run shorter than one interval.
  if (std::chrono::steady_clock::now() - s.last_sample >= min_interval) s.sample();
}

bool CpuMonitor::running() const noexcept {
  return state_->running;
}
std::chrono::milliseconds CpuMonitor::interval() const noexcept {
  return state_->interval;
}
const CpuSeries& CpuMonitor::series() const noexcept {
  return state_->series;
}
CpuSeries CpuMonitor::take_series() {
  return std::exchange(state_->series, CpuSeries{});
}

}  // namespace corun
