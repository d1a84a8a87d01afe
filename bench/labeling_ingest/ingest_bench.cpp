// Ingestion benchmark (issue 3): N CSV rows with F float features, parsed, validated,
// feature-extracted and loaded through the LabelingIngestService Upload RPC (client
// streaming, 1 MiB messages, a real gRPC server in this process on loopback), against
// `psql \copy` of the same CSV into a plain table with one column per field, on the same
// PostgreSQL in the same run. Runs alternate (psql first, then ingest; then the reverse).
// Besides wall time, the CPU seconds (user + system, from /proc) of the PostgreSQL
// backends doing the load and of the loading clients (psql; this process: gRPC client and
// server, parsing), which stay comparable when the machine is shared.
//
//   labeling_ingest_bench --pg-url postgresql://labelloop@127.0.0.1:PORT/postgres
//                         [--rows 1000000] [--features 32] [--runs 5] [--csv PATH]
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <pqxx/pqxx>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/migrate/migrate.hpp"
#include "common/pg/pool.hpp"
#include "services/labeling/ingest/ingest_service.hpp"

namespace labelloop::labeling::ingest_bench {
std::vector<migrate::Migration> Migrations();
}

namespace {

using Clock = std::chrono::steady_clock;

std::string WithDb(const std::string& url, const std::string& db) {
  return url.substr(0, url.rfind('/') + 1) + db;
}

void GenerateCsv(const std::string& path, int rows, int features) {
  std::ofstream out(path, std::ios::binary);
  out << "id,ts";
  for (int f = 0; f < features; ++f) out << ",f" << f;
  out << "\n";
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> dist(-100.0, 100.0);
  char buf[64];
  std::string line;
  for (int i = 0; i < rows; ++i) {
    line = "item-" + std::to_string(i);
    const long secs = 1700000000L + i;
    const time_t t = secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, ",%Y-%m-%dT%H:%M:%SZ", &tm);
    line += buf;
    for (int f = 0; f < features; ++f) {
      std::snprintf(buf, sizeof buf, ",%.4f", dist(rng));
      line += buf;
    }
    line += '\n';
    out << line;
  }
}

// CPU seconds (user + system) used so far by a process; -1 when it is gone.
double ProcCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) rest >> skip;  // state .. cmajflt
  unsigned long long user = 0, sys = 0;
  rest >> user >> sys;
  return static_cast<double>(user + sys) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double ChildrenCpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// Follows the backend of the session named `app` (application_name) until it exits and
// keeps its last CPU reading (sampled every 10 ms: at most that much is missed).
class BackendCpu {
 public:
  BackendCpu(const std::string& url, const std::string& app)
      : thread_([this, url, app] {
          pqxx::connection c(url);
          int pid = 0;
          while (pid == 0 && !stop_) {
            pqxx::nontransaction tx(c);
            const auto r =
                tx.exec_params("SELECT pid FROM pg_stat_activity WHERE application_name = $1", app);
            if (!r.empty()) pid = r[0][0].as<int>();
            if (pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
          while (pid != 0) {
            const double s = ProcCpuSeconds(pid);
            if (s < 0) break;
            seconds_ = s;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }) {}
  // Waits for the backend to be gone (call after the client has exited).
  double Seconds() {
    stop_ = true;
    thread_.join();
    return seconds_;
  }

 private:
  std::atomic<bool> stop_{false};
  double seconds_ = 0;
  std::thread thread_;
};

// CPU seconds of each client backend of the current database but this one's.
std::map<int, double> BackendsCpu(pqxx::connection& c) {
  pqxx::nontransaction tx(c);
  std::map<int, double> out;
  for (const auto& r :
       tx.exec("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
               "backend_type = 'client backend' AND pid <> pg_backend_pid()")) {
    const int pid = r[0].as<int>();
    out[pid] = ProcCpuSeconds(pid);
  }
  return out;
}

struct Cpu {
  double backend = 0;  // the PostgreSQL backend(s) doing the load
  double client = 0;   // psql / this process (gRPC client and service, parsing)
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace labelloop;
  std::string admin_url, csv = "/tmp/labelloop-ingest-bench.csv";
  int rows = 1000000, features = 32, runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--pg-url")
      admin_url = v;
    else if (a == "--rows")
      rows = std::stoi(v);
    else if (a == "--features")
      features = std::stoi(v);
    else if (a == "--runs")
      runs = std::stoi(v);
    else if (a == "--csv")
      csv = v;
  }
  if (admin_url.empty()) {
    std::cerr << "usage: labeling_ingest_bench --pg-url URL [--rows N] [--features F] "
                 "[--runs R] [--csv PATH]\n";
    return 2;
  }
  const std::string csv_path = csv + "." + std::to_string(rows) + "x" + std::to_string(features);
  if (access(csv_path.c_str(), R_OK) != 0) {
    std::cout << "generating " << csv_path << " ...\n" << std::flush;
    GenerateCsv(csv_path, rows, features);
  }
  std::ifstream probe(csv_path, std::ios::binary | std::ios::ate);
  const auto csv_bytes = static_cast<int64_t>(probe.tellg());

  if (std::getenv("BENCH_DEBUG") != nullptr) spdlog::set_level(spdlog::level::debug);
  const std::string db = "ingest_bench";
  {
    pqxx::connection c(admin_url);
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + db);
    tx.exec("CREATE DATABASE " + db);
  }
  const std::string url = WithDb(admin_url, db);
  pg::Pool pool({.url = url, .size = 4, .statement_timeout_ms = 0});
  migrate::Apply(pool, "labeling", labeling::ingest_bench::Migrations());

  labeling::ingest::IngestOptions options;
  labeling::ingest::IngestServiceImpl service(pool, options);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);
  auto server = builder.BuildAndStart();
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  auto stub = v1::LabelingIngestService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args));

  std::string cols = "id text, ts timestamptz";
  for (int f = 0; f < features; ++f) cols += ", f" + std::to_string(f) + " real";

  std::string field_list = "id, ts";
  for (int f = 0; f < features; ++f) field_list += ", f" + std::to_string(f);

  // indexed = false: the baseline the issue names (a plain table, one column per field).
  // indexed = true: context only, the same table plus the indexes labeling.items has
  // (migration 0005): id primary key, unique (project, external id COLLATE "C"), the
  // claim index of unlabeled items, the (here empty) index of labeled items.
  auto run_psql = [&](int run, bool indexed) {
    const std::string table = (indexed ? "indexed_" : "plain_") + std::to_string(run);
    {
      pqxx::connection c(url);
      pqxx::nontransaction tx(c);
      if (indexed) {
        tx.exec("CREATE TABLE public." + table +
                " (item_id bigserial PRIMARY KEY, project_id int8 NOT NULL DEFAULT 1, "
                "status text NOT NULL DEFAULT 'unlabeled', " +
                cols + ", UNIQUE (project_id, id))");
        tx.exec("ALTER TABLE public." + table + " ALTER COLUMN id TYPE text COLLATE \"C\"");
        tx.exec("CREATE INDEX ON public." + table +
                " (project_id, (item_id + 0)) WHERE status = 'unlabeled'");
        tx.exec("CREATE INDEX ON public." + table +
                " (project_id, item_id) WHERE status = 'labeled'");
      } else {
        tx.exec("CREATE TABLE public." + table + " (" + cols + ")");
      }
    }
    const std::string app = "bench_" + table;
    const std::string cmd = "PGAPPNAME=" + app + " psql -q -X -v ON_ERROR_STOP=1 '" + url +
                            "' -c \"\\copy public." + table + " (" + field_list + ") FROM '" +
                            csv_path + "' WITH (FORMAT csv, HEADER true)\"";
    BackendCpu backend(url, app);
    const double client0 = ChildrenCpuSeconds(RUSAGE_CHILDREN);
    const auto t0 = Clock::now();
    const int rc = std::system(cmd.c_str());
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const Cpu cpu{backend.Seconds(), ChildrenCpuSeconds(RUSAGE_CHILDREN) - client0};
    if (rc != 0) throw std::runtime_error("psql \\copy failed");
    pqxx::connection c(url);
    pqxx::nontransaction tx(c);
    const auto n = tx.exec("SELECT count(*) FROM public." + table)[0][0].as<int64_t>();
    if (n != rows) throw std::runtime_error("psql loaded " + std::to_string(n) + " rows");
    tx.exec("DROP TABLE public." + table);
    return std::make_pair(secs, cpu);
  };

  auto run_ingest = [&](int run) {
    int64_t project = 0;
    {
      pqxx::connection c(url);
      pqxx::work tx(c);
      project = tx.exec(
                      "INSERT INTO labeling.projects (name, data_kind, label_kind, classes) "
                      "VALUES ('bench " +
                      std::to_string(run) + "', 'tabular', 'single', '{a,b}') RETURNING id")[0][0]
                    .as<int64_t>();
      tx.commit();
    }
    pqxx::connection watch(url);
    const auto backends0 = BackendsCpu(watch);
    const double self0 = ChildrenCpuSeconds(RUSAGE_SELF);
    const auto t0 = Clock::now();
    grpc::ClientContext ctx;
    v1::UploadResponse resp;
    auto writer = stub->Upload(&ctx, &resp);
    v1::UploadRequest req;
    auto* h = req.mutable_header();
    h->set_project_id(project);
    h->set_format(v1::UPLOAD_FORMAT_CSV);
    h->set_mode(v1::UPLOAD_MODE_ALL_OR_NOTHING);
    h->mutable_mapping()->set_external_id_column("id");
    h->mutable_mapping()->set_sample_ts_column("ts");
    for (int f = 0; f < features; ++f) {
      h->mutable_mapping()->add_feature_columns("f" + std::to_string(f));
    }
    writer->Write(req);
    std::ifstream in(csv_path, std::ios::binary);
    std::string buf(1 << 20, '\0');
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto got = in.gcount();
      if (got <= 0) break;
      v1::UploadRequest chunk;
      chunk.set_chunk(buf.data(), static_cast<size_t>(got));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    const grpc::Status st = writer->Finish();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    Cpu cpu{0, ChildrenCpuSeconds(RUSAGE_SELF) - self0};
    for (const auto& [pid, s] : BackendsCpu(watch)) {
      const auto before = backends0.find(pid);
      cpu.backend += s - (before == backends0.end() ? 0 : before->second);
    }
    if (!st.ok()) throw std::runtime_error("upload failed: " + st.error_message());
    if (resp.items_inserted() != rows) {
      throw std::runtime_error("upload inserted " + std::to_string(resp.items_inserted()));
    }
    // Keep the items table from growing run after run: each run starts from the same state.
    pqxx::connection c(url);
    pqxx::nontransaction tx(c);
    tx.exec("TRUNCATE labeling.items CASCADE");
    return std::make_pair(secs, cpu);
  };

  std::cout << "workload: " << rows << " CSV rows x " << features << " features ("
            << csv_bytes / (1 << 20) << " MiB), " << runs << " runs, "
            << std::thread::hardware_concurrency() << " cores\n"
            << "ingest: gRPC Upload (client streaming, 1 MiB messages, loopback) -> parse, "
               "validate, binary COPY into labeling.items (a fresh project: the direct path)\n"
            << "baseline: psql \\copy (FORMAT csv) into a plain table, one column per field\n";
  std::vector<double> psql_s, ingest_s, indexed_s;
  std::vector<double> psql_be, psql_cl, ingest_be, ingest_cl, indexed_be;
  for (int run = 0; run < runs; ++run) {
    std::pair<double, Cpu> p, g, x;
    if (run % 2 == 0) {
      p = run_psql(run, false);
      g = run_ingest(run);
      x = run_psql(run, true);
    } else {
      x = run_psql(run, true);
      g = run_ingest(run);
      p = run_psql(run, false);
    }
    psql_s.push_back(p.first);
    ingest_s.push_back(g.first);
    indexed_s.push_back(x.first);
    psql_be.push_back(p.second.backend);
    psql_cl.push_back(p.second.client);
    ingest_be.push_back(g.second.backend);
    ingest_cl.push_back(g.second.client);
    indexed_be.push_back(x.second.backend);
    std::printf(
        "run %d: psql \\copy plain %.2f s (%.0f rows/s; CPU backend %.2f s, psql %.2f s), "
        "ingest %.2f s (%.0f rows/s; CPU backend %.2f s, client+service %.2f s), "
        "psql \\copy indexed %.2f s (%.0f rows/s; CPU backend %.2f s)\n",
        run, p.first, rows / p.first, p.second.backend, p.second.client, g.first, rows / g.first,
        g.second.backend, g.second.client, x.first, rows / x.first, x.second.backend);
    std::fflush(stdout);
  }
  const double mp = Median(psql_s), mg = Median(ingest_s), mx = Median(indexed_s);
  std::printf(
      "median: psql \\copy plain %.0f rows/s, ingest %.0f rows/s, ratio %.2f (goal >= "
      "0.70); psql \\copy into a table with items' indexes %.0f rows/s, ratio %.2f\n",
      rows / mp, rows / mg, mp / mg, rows / mx, mx / mg);
  std::printf(
      "median CPU: psql \\copy plain backend %.2f s + psql %.2f s; ingest backend %.2f s + "
      "client and service %.2f s; backend ratio %.2f\n",
      Median(psql_be), Median(psql_cl), Median(ingest_be), Median(ingest_cl),
      Median(psql_be) / Median(ingest_be));
  server->Shutdown();
  return 0;
}
