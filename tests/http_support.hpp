#pragma once
// What the HTTP server's tests and benchmark share: the http_server program started as a child
// on a free loopback port, and a small blocking HTTP/1.1 client with keep-alive.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

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

/// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1:port. Every read has
/// a 60 s limit, so a server that stops answering fails the test instead of hanging it.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port) : port_(port) {}

  HttpResponse get(std::string_view target) { return request("GET", target); }
  HttpResponse post(std::string_view target, std::string_view body) {
    return request("POST", target, body);
  }
  HttpResponse del(std::string_view target) { return request("DELETE", target); }

  HttpResponse request(std::string_view method, std::string_view target,
                       std::string_view body = {}) {
    std::string req =
        std::string(method) + ' ' + std::string(target) +
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (!body.empty()) req += "Content-Type: application/json\r\n";
    req += "\r\n";
    req += body;
    // A keep-alive connection the server closed meanwhile fails on first use: reconnect once.
    for (int attempt = 0;; ++attempt) {
      try {
        if (!socket_.is_open()) connect();
        asio::write(socket_, asio::buffer(req));
        return read_response();
      } catch (const std::system_error&) {
        socket_.close();
        buffer_.consume(buffer_.size());
        if (attempt == 1) throw;
      }
    }
  }

 private:
  void connect() {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port_});
    socket_.set_option(asio::ip::tcp::no_delay(true));
    const timeval limit{60, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  }

  HttpResponse read_response() {
    const std::size_t head_end = asio::read_until(socket_, buffer_, "\r\n\r\n");
    std::string head(asio::buffers_begin(buffer_.data()),
                     asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(head_end));
    buffer_.consume(head_end);
    HttpResponse r;
    std::size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12)
      throw std::runtime_error("bad status line: " + status_line);
    r.status = std::stoi(status_line.substr(9, 3));
    for (std::size_t pos = line_end + 2; pos < head.size();) {
      const std::size_t end = head.find("\r\n", pos);
      const std::string line = head.substr(pos, end - pos);
      pos = end + 2;
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    const auto length = r.headers.find("content-length");
    if (length == r.headers.end()) throw std::runtime_error("response without Content-Length");
    const std::size_t n = std::stoull(length->second);
    if (buffer_.size() < n)
      asio::read(socket_, buffer_, asio::transfer_exactly(n - buffer_.size()));
    r.body.assign(asio::buffers_begin(buffer_.data()),
                  asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n));
    buffer_.consume(n);
    const auto connection = r.headers.find("connection");
    if (connection != r.headers.end() && connection->second == "close") socket_.close();
    return r;
  }

  std::uint16_t port_;
  asio::io_context io_;
  asio::ip::tcp::socket socket_{io_};
  asio::streambuf buffer_;
};

/// The q-quantile (0..1) of `values`, nearest rank.
inline double quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(values.size()) + 0.999999);
  return values[std::min(values.size(), std::max<std::size_t>(rank, 1)) - 1];
}

}  // namespace corun::test
