#include "services/gateway/labelctl/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace labelloop::labelctl {

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(total),
      tty_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_ - std::chrono::seconds(1)) {}

void ProgressBar::Update(int64_t done, int64_t rows, const std::string& extra, bool bytes) {
  if (!tty_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool complete = total_ > 0 && done >= total_;
  if (!complete && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double secs = std::max(1e-3, std::chrono::duration<double>(now - start_).count());
  constexpr int kWidth = 24;
  std::string bar;
  if (total_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const int fill = static_cast<int>(frac * kWidth);
    bar = "[" + std::string(static_cast<size_t>(fill), '#') +
          std::string(static_cast<size_t>(kWidth - fill), '.') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3d%%  ", static_cast<int>(frac * 100));
    bar += pct;
  }
  std::string text = label_ + " " + bar;
  if (bytes) {
    text += HumanBytes(static_cast<double>(done));
    if (total_ > 0) text += " / " + HumanBytes(static_cast<double>(total_));
    text += "  " + HumanBytes(static_cast<double>(done) / secs) + "/s";
  } else if (total_ > 0) {
    text += std::to_string(done) + "/" + std::to_string(total_);
  }
  if (rows >= 0) {
    char r[64];
    std::snprintf(r, sizeof r, "  %lld rows  %.0f rows/s", static_cast<long long>(rows),
                  static_cast<double>(rows) / secs);
    text += r;
  }
  if (!extra.empty()) text += "  " + extra;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace labelloop::labelctl
