// The archive build of the dl_manager service, in process, for bench.py:
//
//   dl_manager_bench prepare URL ITEMS LABELED_FRACTION FEATURES CLASSES
//       applies the labeling, training and dl_manager migrations and seeds a project
//       (random features, 1 label per labeled item); prints {"project_id": ...}
//   dl_manager_bench build URL PROJECT MODEL DEFLATE_LEVEL
//       one download built exactly as the service builds it (claim, cursors ->
//       libzip -> temp file -> 1 MiB chunk rows, AVAILABLE); prints
//       {"seconds": ..., "peak_rss_mib": ..., "bytes": ..., "rows": ...}
//   dl_manager_bench big-entry GIB DEFLATE_LEVEL
//       no database: one JSON entry of GIB GiB of machine-label-like records (random
//       probabilities, so it deflates like the real thing) written through the same
//       ZipWriter + ThreadedProducer path, then read back with libzip and checked (size,
//       SHA-256, zip64); prints seconds, peak RSS and the sizes. Shows that memory does
//       not grow with the size of an entry or archive (> 4 GiB entries need zip64).
//
// Peak RSS is this process's VmHWM (/proc/self/status), not getrusage's ru_maxrss:
// Linux carries ru_maxrss over exec, so a child of a big parent (the Python driver)
// would report the parent's size. Run one build per process.

#include <zip.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/migrate/migrate.hpp"
#include "common/pg/pool.hpp"
#include "services/dl_manager/archive/json_text.hpp"
#include "services/dl_manager/archive/sha256.hpp"
#include "services/dl_manager/archive/zip_writer.hpp"
#include "services/dl_manager/storage/download_store.hpp"
#include "services/dl_manager/storage/export.hpp"

namespace labelloop {
namespace labeling {
std::vector<migrate::Migration> Migrations();
}
namespace training {
std::vector<migrate::Migration> Migrations();
}
namespace dl_manager {
std::vector<migrate::Migration> Migrations();
}
}  // namespace labelloop

using namespace labelloop;

namespace {

double PeakRssMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  return -1;
}

int Prepare(const std::string& url, int64_t items, double labeled_fraction, int features,
            int classes) {
  pg::Pool pool({.url = url, .size = 1, .statement_timeout_ms = 3600000});
  migrate::Apply(pool, "labeling", labeling::Migrations());
  migrate::Apply(pool, "training", training::Migrations());
  migrate::Apply(pool, "dl_manager", dl_manager::Migrations());
  const std::string name = "bench-" + std::to_string(items) + "x" + std::to_string(features);
  int64_t project = pool.Run([&](pqxx::connection& c) -> int64_t {
    pqxx::work tx(c);
    auto r = tx.exec_params("SELECT id FROM labeling.projects WHERE name = $1", name);
    if (!r.empty()) return r[0][0].as<int64_t>();
    std::string class_list = "{";
    for (int k = 0; k < classes; ++k) class_list += (k ? ",c" : "c") + std::to_string(k);
    class_list += "}";
    const int64_t id = tx.exec_params(
                             "INSERT INTO labeling.projects (name, data_kind, label_kind, classes, "
                             "feature_dim) VALUES ($1, 'tabular', 'single', $2, $3) RETURNING id",
                             name, class_list, features)[0][0]
                           .as<int64_t>();
    const int64_t labeled = static_cast<int64_t>(static_cast<double>(items) * labeled_fraction);
    // The label is a function of the features, so a classifier has something to learn.
    tx.exec_params(
        "INSERT INTO labeling.items (project_id, external_id, sample_ts, features, status, "
        "judgements, consensus) "
        "SELECT $1, 'row-' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', "
        "  f, CASE WHEN g <= $3 THEN 'labeled' ELSE 'unlabeled' END, "
        "  CASE WHEN g <= $3 THEN 1 ELSE 0 END, "
        "  CASE WHEN g <= $3 THEN ARRAY['c' || least($5 - 1, floor((f[1] + f[2]) * $5 / 2))::int] "
        "  END "
        "FROM (SELECT g, (SELECT array_agg(random()::real) FROM generate_series(1, $4) "
        "                 WHERE g > 0) AS f FROM generate_series(1, $2) g) s",
        id, items, labeled, features, classes);
    tx.exec_params(
        "INSERT INTO labeling.labels (item_id, project_id, annotator, classes, seconds_spent) "
        "SELECT id, project_id, 'annotator-' || (id % 7), consensus, 3 FROM labeling.items "
        "WHERE project_id = $1 AND status = 'labeled'",
        id);
    tx.commit();
    return id;
  });
  pool.Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec("ANALYZE labeling.items");
    tx.exec("ANALYZE labeling.labels");
  });
  std::cout << nlohmann::json{{"project_id", project}}.dump() << std::endl;
  return 0;
}

int Build(const std::string& url, int64_t project, int64_t model, int level) {
  pg::Pool pool({.url = url, .size = 3, .statement_timeout_ms = 3600000});
  dl_manager::DownloadStore store(pool, "bench");
  pool.Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec("DELETE FROM dl_manager.downloads");  // no dedupe across runs
    tx.commit();
  });
  const auto start = std::chrono::steady_clock::now();
  store.Request(project, model, "bench", 1);
  auto claim = store.ClaimNext(3600000, nullptr);
  if (!claim) throw std::runtime_error("nothing to claim");
  dl_manager::BuildProgress progress;
  const std::string path =
      (std::filesystem::temp_directory_path() / "labelloop-bench-download.zip").string();
  auto result = pool.Run([&](pqxx::connection& c) {
    return dl_manager::BuildArchive(c,
                                    {.download_id = claim->download_id,
                                     .project_id = project,
                                     .model_id = model,
                                     .deflate_level = level},
                                    path, &progress);
  });
  const double built =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto stored = store.StoreArchive(*claim,
                                   {.path = path,
                                    .entry_counts = result.entry_counts.dump(),
                                    .manifest = result.manifest.dump()},
                                   [] { return true; });
  std::filesystem::remove(path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!stored) throw std::runtime_error("the archive was not stored");
  std::cout << nlohmann::json{{"seconds", seconds},
                              {"build_seconds", built},
                              {"peak_rss_mib", PeakRssMib()},
                              {"bytes", stored->size},
                              {"rows", progress.rows.load()},
                              {"source", result.manifest["machine_labels_source"]}}
                   .dump()
            << std::endl;
  return 0;
}

// Records shaped like machine_labels.json until `bytes` are written.
class SyntheticRecords : public dl_manager::EntryProducer {
 public:
  explicit SyntheticRecords(uint64_t bytes) : target_(bytes) {}
  bool Next(std::string* out) override {
    const size_t start = out->size();
    while (out->size() - start < (256 << 10)) {
      const size_t before = out->size();
      out->append(records_ == 0 ? "[\n" : ",\n");
      out->append("{\"item_id\":" + std::to_string(records_) + ",\"external_id\":\"row-" +
                  std::to_string(records_) +
                  "\",\"sample_ts\":\"2024-01-01T00:00:00+00:00\",\"predicted\":[\"c3\"],"
                  "\"probabilities\":{");
      for (int c = 0; c < 10; ++c) {
        if (c > 0) out->push_back(',');
        out->append("\"c" + std::to_string(c) + "\":");
        dl_manager::AppendFloat(out, uniform_(rng_));
      }
      out->append("}}");
      ++records_;
      written_ += out->size() - before;
      if (written_ >= target_) {
        out->append("\n]\n");
        return false;
      }
    }
    return true;
  }
  int64_t records() const override { return records_; }

 private:
  uint64_t target_;
  uint64_t written_ = 0;
  int64_t records_ = 0;
  std::mt19937 rng_{42};
  std::uniform_real_distribution<float> uniform_{0.0f, 1.0f};
};

int BigEntry(double gib, int level) {
  const std::string path =
      (std::filesystem::temp_directory_path() / "labelloop-bench-big-entry.zip").string();
  const auto start = std::chrono::steady_clock::now();
  dl_manager::ZipWriter zip(path, level);
  zip.Add("machine_labels.json",
          std::make_unique<dl_manager::ThreadedProducer>(
              std::make_unique<SyntheticRecords>(static_cast<uint64_t>(gib * (1ULL << 30)))));
  zip.Add("manifest.json", std::make_unique<dl_manager::StringProducer>("{}\n"));
  zip.Close();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rss = PeakRssMib();
  const auto& entry = zip.entries().at(0);
  const uint64_t archive_bytes = std::filesystem::file_size(path);

  // Read it back: libzip's consistency check, the entry's size and SHA-256.
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (z == nullptr)
    throw std::runtime_error("libzip cannot open the archive: error " + std::to_string(err));
  zip_stat_t st;
  if (zip_stat(z, "machine_labels.json", 0, &st) != 0) throw std::runtime_error("entry missing");
  zip_file_t* f = zip_fopen(z, "machine_labels.json", 0);
  if (f == nullptr) throw std::runtime_error("cannot read the entry back");
  dl_manager::Sha256 hash;
  std::vector<char> buf(1 << 20);
  uint64_t read = 0;
  zip_int64_t n;
  while ((n = zip_fread(f, buf.data(), buf.size())) > 0) {
    hash.Update(buf.data(), static_cast<size_t>(n));
    read += static_cast<uint64_t>(n);
  }
  zip_fclose(f);
  zip_close(z);
  std::filesystem::remove(path);
  const bool ok =
      n == 0 && read == entry.bytes && st.size == entry.bytes && hash.HexDigest() == entry.sha256;
  std::cout << nlohmann::json{{"seconds", seconds},         {"peak_rss_mib", rss},
                              {"entry_bytes", entry.bytes}, {"archive_bytes", archive_bytes},
                              {"records", entry.records},   {"read_back_ok", ok}}
                   .dump()
            << std::endl;
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "prepare" && argc == 7) {
      return Prepare(argv[2], std::stoll(argv[3]), std::stod(argv[4]), std::stoi(argv[5]),
                     std::stoi(argv[6]));
    }
    if (mode == "build" && argc == 6) {
      return Build(argv[2], std::stoll(argv[3]), std::stoll(argv[4]), std::stoi(argv[5]));
    }
    if (mode == "big-entry" && argc == 4) return BigEntry(std::stod(argv[2]), std::stoi(argv[3]));
    std::cerr << "usage: dl_manager_bench prepare URL ITEMS LABELED_FRACTION FEATURES CLASSES\n"
                 "       dl_manager_bench build URL PROJECT MODEL DEFLATE_LEVEL\n"
                 "       dl_manager_bench big-entry GIB DEFLATE_LEVEL\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "dl_manager_bench: " << e.what() << "\n";
    return 1;
  }
}
