// Fit and predict times of the training service's own trainer (the code the worker runs)
// on the files gen_data.py writes. Prints medians over repeated runs; run.sh puts
// scikit-learn's figures on the same data next to them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "services/training/trainer.hpp"

namespace {

using labelloop::training::Dataset;
using labelloop::training::ModelKind;
using labelloop::training::ModelSpec;
using labelloop::training::PortableModel;

template <typename T>
std::vector<T> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    std::cerr << "cannot read " << path << "\n";
    std::exit(2);
  }
  const auto bytes = static_cast<size_t>(f.tellg());
  std::vector<T> v(bytes / sizeof(T));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(bytes));
  return v;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Dataset Load(const std::string& dir, const std::string& split, int dim, int k) {
  auto x = ReadAll<float>(dir + "/" + split + "_x.f32");
  auto y = ReadAll<int32_t>(dir + "/" + split + "_y.i32");
  Dataset d;
  for (int c = 0; c < k; ++c) d.classes.push_back("c" + std::to_string(c));
  const auto n = static_cast<Eigen::Index>(y.size());
  // Row-major n x dim on disk = column-major dim x n: one column per item.
  d.x = Eigen::Map<Eigen::MatrixXf>(x.data(), dim, n);
  d.y = Eigen::MatrixXf::Zero(k, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    d.y(y[static_cast<size_t>(i)], i) = 1;
    d.label.push_back(y[static_cast<size_t>(i)]);
  }
  return d;
}

double Accuracy(const PortableModel& m, const Dataset& test) {
  const Eigen::MatrixXf p = labelloop::training::PredictProbabilities(m, test.x);
  int right = 0;
  for (Eigen::Index i = 0; i < p.cols(); ++i) {
    Eigen::Index best = 0;
    p.col(i).maxCoeff(&best);
    right += best == test.label[static_cast<size_t>(i)];
  }
  return static_cast<double>(right) / static_cast<double>(p.cols());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: training_bench DATA_DIR [REPEATS]\n";
    return 2;
  }
  const std::string dir = argv[1];
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 3;
  constexpr int kDim = 32, kClasses = 10;
  const Dataset train = Load(dir, "train", kDim, kClasses);
  const Dataset test = Load(dir, "test", kDim, kClasses);
  auto px = ReadAll<float>(dir + "/predict_x.f32");
  const Eigen::Map<const Eigen::MatrixXf> predict_x(px.data(), kDim,
                                                    static_cast<Eigen::Index>(px.size() / kDim));
  std::printf("ours: single-threaded (hardware threads: %u), %d repeats\n",
              std::thread::hardware_concurrency(), repeats);

  struct Case {
    const char* name;
    ModelSpec spec;
  };
  ModelSpec softmax;
  softmax.model_type = ModelKind::kSoftmax;
  softmax.epochs = 20;
  softmax.batch_size = 256;
  softmax.learning_rate = 0.01;
  softmax.l2 = 1e-6;
  softmax.validation_fraction = 0;  // train on all 100,000; accuracy on the held-out set
  softmax.early_stopping_patience = 0;
  ModelSpec mlp = softmax;
  mlp.model_type = ModelKind::kMlp;
  mlp.hidden_units = {64};
  mlp.batch_size = 200;  // scikit-learn's MLPClassifier defaults
  mlp.learning_rate = 0.001;
  for (const Case& c : {Case{"softmax", softmax}, Case{"mlp", mlp}}) {
    std::vector<double> fits, preds, fit_cpu, pred_cpu;
    double acc = 0;
    for (int r = 0; r < repeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      auto out = labelloop::training::Train(train, c.spec, {});
      fits.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      fit_cpu.push_back(static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
      acc = Accuracy(out.model, test);
      t0 = std::chrono::steady_clock::now();
      const std::clock_t p0 = std::clock();
      double checksum = 0;
      constexpr Eigen::Index kChunk = 8192;
      for (Eigen::Index s = 0; s < predict_x.cols(); s += kChunk) {
        const Eigen::Index n = std::min(kChunk, predict_x.cols() - s);
        checksum += labelloop::training::PredictProbabilities(out.model, predict_x.middleCols(s, n))
                        .row(0)
                        .sum();
      }
      preds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      pred_cpu.push_back(static_cast<double>(std::clock() - p0) / CLOCKS_PER_SEC);
      if (checksum < 0) std::printf("impossible\n");
    }
    std::printf(
        "ours    %-8s fit %8.3f s (cpu %7.3f s)  test accuracy %.4f  predict %10.0f rows/s "
        "(per cpu-s %10.0f)  (fits",
        c.name, Median(fits), Median(fit_cpu), acc,
        static_cast<double>(predict_x.cols()) / Median(preds),
        static_cast<double>(predict_x.cols()) / Median(pred_cpu));
    for (double f : fits) std::printf(" %.2f", f);
    std::printf(")\n");
    std::fflush(stdout);
  }
  return 0;
}
