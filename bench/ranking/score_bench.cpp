// Scores 1,000,000 items x 10 classes with each strategy and selects the top 1,000 — the
// C++ half of bench/ranking/run.sh (numpy_baseline.py is the other half, on the same data).
//
//   ranking_score_bench DATA.f32 [runs] [threads]
// DATA.f32: rows x 10 float32 (written by this program when missing, seeded).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "services/ranking/scoring.hpp"
#include "services/ranking/select.hpp"

using namespace labelloop::ranking;

namespace {

constexpr size_t kRows = 1000000;
constexpr int kClasses = 10;
constexpr size_t kTop = 1000;

std::vector<float> LoadOrMake(const std::string& path) {
  std::vector<float> p(kRows * kClasses);
  std::ifstream in(path, std::ios::binary);
  if (in && in.read(reinterpret_cast<char*>(p.data()), p.size() * sizeof(float))) return p;
  // Softmax of Gaussian logits with a per-row temperature: a realistic mix of confident
  // and unsure rows.
  std::mt19937 gen(42);
  std::normal_distribution<float> z(0.0f, 1.0f);
  std::uniform_real_distribution<float> temp(0.2f, 3.0f);
  for (size_t r = 0; r < kRows; ++r) {
    const float t = temp(gen);
    float sum = 0;
    for (int j = 0; j < kClasses; ++j) sum += (p[r * kClasses + j] = std::exp(z(gen) * t));
    for (int j = 0; j < kClasses; ++j) p[r * kClasses + j] /= sum;
  }
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(p.data()), p.size() * sizeof(float));
  return p;
}

// CPU time of the whole process (all scoring threads), in ms: on a shared, loaded machine
// it shows the work done, where wall time also counts waiting for a core.
double CpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATA.f32 [runs] [threads]\n", argv[0]);
    return 2;
  }
  const int runs = argc > 2 ? std::atoi(argv[2]) : 11;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  const auto p = LoadOrMake(argv[1]);
  std::vector<int64_t> ids(kRows);
  for (size_t i = 0; i < kRows; ++i) ids[i] = static_cast<int64_t>(i);
  std::vector<float> scores(kRows);
  std::printf(
      "workload: score %zu items x %d classes and select the top %zu; %d runs; "
      "%d scoring thread(s); %u hardware threads\n",
      kRows, kClasses, kTop, runs, threads, std::thread::hardware_concurrency());
  const std::vector<std::pair<const char*, Strategy>> strategies = {
      {"least_confidence", Strategy::kLeastConfidence},
      {"margin", Strategy::kMargin},
      {"entropy", Strategy::kEntropy},
      {"random", Strategy::kRandom}};
  for (const auto& [name, s] : strategies) {
    std::vector<double> ms, cpu_ms;
    std::vector<uint32_t> top;
    for (int r = 0; r < runs; ++r) {
      const double c0 = CpuMs();
      const auto t0 = std::chrono::steady_clock::now();
      const size_t chunk = (kRows + threads - 1) / threads;
      std::vector<std::thread> pool;
      for (int t = 1; t < threads; ++t) {
        pool.emplace_back([&, t] {
          const size_t b = chunk * t, e = std::min(kRows, b + chunk);
          ScoreMatrix(s, false, Aggregate::kMean, 7, p.data() + b * kClasses, ids.data() + b, e - b,
                      kClasses, scores.data() + b);
        });
      }
      ScoreMatrix(s, false, Aggregate::kMean, 7, p.data(), ids.data(), std::min(kRows, chunk),
                  kClasses, scores.data());
      for (auto& th : pool) th.join();
      top = TopRows(scores, kTop);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      cpu_ms.push_back(CpuMs() - c0);
    }
    // The selected set, for the cross-check against numpy (sum of ids is order-free).
    long long id_sum = 0;
    for (auto r : top) id_sum += r;
    std::printf(
        "cpp %s median_ms %.3f min_ms %.3f top_id_sum %lld best_score %.6f cpu_median_ms %.3f\n",
        name, Median(ms), *std::min_element(ms.begin(), ms.end()), id_sum, scores[top[0]],
        Median(cpu_ms));
  }
  return 0;
}
