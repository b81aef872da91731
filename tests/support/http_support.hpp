#pragma once
// What the HTTP server's tests and benchmark share: the http_server program started as a child
// on a free loopback port, and a blocking HTTP/1.1 client with keep-alive (cpp-httplib's).

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern char** environ;

namespace corun::test {

/// The http_server program (path in CORUN_HTTP_SERVER, set by meson), as a child process.
/// Started with --port 0: it prints the port it bound, which the constructor reads.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> args, std::string exe = default_exe()) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe");
    args.insert(args.begin(), exe);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    const int rc = ::posix_spawn(&pid_, exe.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    out_ = out[0];
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn " + exe);
    // Wait for the line that names the port (or for the program to end: it failed).
    const std::string marker = "listening on http://127.0.0.1:";
    std::string::size_type at;
    while ((at = output_.find(marker)) == std::string::npos ||
           output_.find('/', at + marker.size()) == std::string::npos) {
      if (!read_some()) throw std::runtime_error("http_server ended before listening:\n" + output_);
    }
    port_ = static_cast<std::uint16_t>(std::stoi(output_.substr(at + marker.size())));
  }

  ~ServerProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  static std::string default_exe() {
    const char* exe = std::getenv("CORUN_HTTP_SERVER");
    if (exe == nullptr) throw std::runtime_error("CORUN_HTTP_SERVER is not set (meson sets it)");
    return exe;
  }

  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const { ::kill(pid_, sig); }

  /// Waits for the program to end, then collects what it printed; returns its exit code, or
  /// 128 + the signal that killed it. (Its worker processes share its stdout, so waiting for
  /// the end of the output would also wait for a worker left behind; the tests check those.)
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    exited_ = true;
    ::fcntl(out_, F_SETFL, ::fcntl(out_, F_GETFL) | O_NONBLOCK);
    while (read_some()) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  /// What the program printed on stdout so far.
  const std::string& output() const noexcept { return output_; }

 private:
  bool read_some() {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out_, buf, sizeof buf)) < 0 && errno == EINTR) {
    }
    if (n <= 0) return false;
    output_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int out_ = -1;
  bool exited_ = false;
  std::uint16_t port_ = 0;
  std::string output_;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  ///< names in lower case
  std::string body;
};

/// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1:port: cpp-httplib's,
/// which reconnects when the server closed the connection and reads chunked replies too.
/// A read waits at most 90 s (longer than the 60 s of GET /jobs/{id}?wait=60), so a server
/// that stops answering fails the test instead of hanging it.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port) : client_("127.0.0.1", port) {
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);
    client_.set_connection_timeout(std::chrono::seconds(10));
    client_.set_read_timeout(std::chrono::seconds(90));
    client_.set_write_timeout(std::chrono::seconds(10));
    // Targets go out byte for byte as the tests wrote them: some are not percent-encoded on
    // purpose ("/\xff", "/%FF"), and httplib would otherwise encode them first.
    client_.set_url_encode(false);
  }

  HttpResponse get(std::string_view target) { return request("GET", target); }
  HttpResponse post(std::string_view target, std::string_view body) {
    return request("POST", target, body);
  }
  HttpResponse del(std::string_view target) { return request("DELETE", target); }

  /// Sends `body` as it is (invalid UTF-8 included), with Content-Type: application/json when
  /// it is not empty; httplib adds Content-Length (0 for an empty POST or PUT).
  HttpResponse request(std::string_view method, std::string_view target,
                       std::string_view body = {}) {
    httplib::Request req;
    req.method = method;
    req.path = target;
    if (!body.empty()) {
      req.body = body;
      req.set_header("Content-Type", "application/json");
    }
    const httplib::Result result = client_.send(req);
    if (!result)
      throw std::runtime_error(std::string(method) + ' ' + std::string(target) + ": " +
                               httplib::to_string(result.error()));
    HttpResponse r;
    r.status = result->status;
    for (const auto& [name, value] : result->headers) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      r.headers[lower] = value;
    }
    r.body = result->body;
    return r;
  }

 private:
  httplib::Client client_;
};

/// The q-quantile (0..1) of `values`, nearest rank.
inline double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(values.size()) + 0.999999);
  return values[std::min(values.size(), std::max<std::size_t>(rank, 1)) - 1];
}

}  // namespace corun::test
