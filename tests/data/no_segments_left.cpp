// Runs after every other test (priority -1000, not parallel): by then every process the suite
// started has exited, so any corun segment in /dev/shm is a leftover of the suite. Only a
// segment that a running process owns (its default name carries a live pid) or has mapped is
// spared, and reported: it belongs to another program on this machine, such as another
// checkout's test run, not to this suite.
#include "support/support.hpp"

#include <dirent.h>
#include <signal.h>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

namespace {

bool pid_alive(int pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

/// The pid in a default name `corun_<pid>_<hex>`, or 0.
int owner_pid(const std::string& name) {
  int pid = 0, consumed = 0;
  unsigned long long tag = 0;
  if (std::sscanf(name.c_str(), "corun_%d_%16llx%n", &pid, &tag, &consumed) != 2 ||
      static_cast<std::size_t>(consumed) != name.size())
    return 0;
  return pid;
}

/// A running process (other than this one) that maps /dev/shm/<name>, or 0.
int mapped_by(const std::string& name) {
  const std::string path = "/dev/shm/" + name;
  const std::string self = std::to_string(::getpid());
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  int found = 0;
  while (const dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || self == e->d_name) continue;
    std::ifstream maps(std::string("/proc/") + e->d_name + "/maps");
    std::string line;
    while (found == 0 && std::getline(maps, line))
      if (line.size() >= path.size() &&
          line.compare(line.size() - path.size(), path.size(), path) == 0)
        found = std::stoi(e->d_name);
    if (found != 0) break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace

int main() {
  std::vector<std::string> left;
  for (const std::string& name : corun::test::shm_entries("corun")) {
    if (const int pid = owner_pid(name); pid_alive(pid)) {
      std::cout << "not ours: " << name << " (owner pid " << pid << " is running)\n";
    } else if (const int user = mapped_by(name); user != 0) {
      std::cout << "not ours: " << name << " (mapped by running pid " << user << ")\n";
    } else {
      left.push_back(name);
      std::cerr << "left in /dev/shm: " << name << '\n';
    }
  }
  std::cout << left.size() << " corun segment(s) left in /dev/shm\n";
  return left.empty() ? 0 : 1;
}
