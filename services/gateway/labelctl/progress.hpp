// A one-line progress bar on stderr (only when stderr is a terminal):
// [########............]  42%  12.0 MiB / 28.5 MiB  3.1 MiB/s  8200 rows/s
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace labelloop::labelctl {

std::string HumanBytes(double bytes);

class ProgressBar {
 public:
  // total = 0 when unknown (no percentage).
  ProgressBar(std::string label, int64_t total);
  // done: units so far (bytes, epochs); rows: optional extra counter shown as a rate;
  // extra: free text after the bar.
  void Update(int64_t done, int64_t rows = -1, const std::string& extra = "", bool bytes = true);
  // Leaves the bar on its line.
  void Finish();

 private:
  std::string label_;
  int64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  bool drawn_ = false;
};

}  // namespace labelloop::labelctl
