// What the benchmarks report about the machine they ran on.
#pragma once

#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace labelloop::bench {

// The machine's busy and total CPU time so far (jiffies of every core, from /proc/stat):
// whether a run saturates the cores, or leaves them idle while calls wait.
inline std::pair<double, double> MachineCpu() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  double v[8] = {};
  f >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
  double total = 0;
  for (double x : v) total += x;
  return {total - v[3] - v[4], total};  // idle and iowait are not busy
}

// Percent of the machine's CPU time that was busy between two MachineCpu() samples.
inline double BusyPercent(std::pair<double, double> before, std::pair<double, double> after) {
  const double total = after.second - before.second;
  return total > 0 ? 100.0 * (after.first - before.first) / total : 0.0;
}

// CPU seconds used so far by the processes of each group, a group being the processes
// whose command line or program base name starts with one of its prefixes (e.g.
// "postgres" for PostgreSQL's server, backends and background processes, whose titles read
// "postgres: ..."; "labelloop-labeling" for a service). Read from /proc; a
// process that exits between two readings takes its CPU time with it.
inline std::map<std::string, double> GroupCpuSeconds(
    const std::map<std::string, std::vector<std::string>>& groups) {
  std::map<std::string, double> out;
  for (const auto& [name, prefixes] : groups) out[name] = 0;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid = entry.path().filename();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmd_file(entry.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(cmd_file)), std::istreambuf_iterator<char>());
    const std::string program = cmd.substr(0, cmd.find('\0'));
    const std::string base = program.substr(program.rfind('/') + 1);
    for (const auto& [name, prefixes] : groups) {
      bool match = false;
      for (const auto& prefix : prefixes) {
        match = match || cmd.rfind(prefix, 0) == 0 || base.rfind(prefix, 0) == 0;
      }
      if (!match) continue;
      std::ifstream stat_file(entry.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(stat_file)),
                       std::istreambuf_iterator<char>());
      const auto close = stat.rfind(')');
      if (close == std::string::npos) break;
      std::istringstream fields(stat.substr(close + 2));
      std::string field;
      double utime = 0;
      double stime = 0;
      // After the command: state (3rd field of the line) ... utime (14th), stime (15th).
      for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
      }
      out[name] += (utime + stime) / ticks;
      break;
    }
  }
  return out;
}

// CPU time (µs) that the calling thread takes for one fixed piece of work (integer
// arithmetic and reads spread over 256 KiB, about 2 ms). The work never changes and only
// this thread's CPU time is counted, not time spent waiting for a core, so on a machine of
// constant speed the figure is constant. On a shared VM it is not: the host's other
// tenants and the sibling core slow it, and every latency a benchmark measures with it.
inline double FixedWorkMicros() {
  static std::vector<uint32_t> table = [] {
    std::vector<uint32_t> t(64 * 1024);
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<uint32_t>(i * 2654435761u);
    return t;
  }();
  timespec start{};
  timespec end{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 300'000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x += table[x & (table.size() - 1)];
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
  // The result feeds the table, so the loop cannot be optimised away.
  table[x & (table.size() - 1)] ^= static_cast<uint32_t>(x);
  return static_cast<double>(end.tv_sec - start.tv_sec) * 1e6 +
         static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e3;
}

}  // namespace labelloop::bench
