// Training's packed predictions read back by ranking and dl_manager: the three services'
// storage code against a real PostgreSQL (training's schema from its migrations).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "common/migrate/migrate.hpp"
#include "common/pg/pool.hpp"
#include "common/testing/testing.hpp"
#include "services/dl_manager/storage/export.hpp"
#include "services/dl_manager/storage/prediction_chunks.hpp"
#include "services/ranking/storage/store.hpp"
#include "services/training/storage/store.hpp"

namespace labelloop::training {
std::vector<migrate::Migration> Migrations();
}

namespace labelloop {
namespace {

class PredictionChunksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::AdminPgUrl();
    if (!url) GTEST_SKIP() << "LABELLOOP_TEST_PG_URL not set: run through tests/run";
    db_ = std::make_unique<testing::TempDatabase>(*url);
    pool_ = std::make_unique<pg::Pool>(pg::PoolOptions{.url = db_->url(), .size = 3});
    migrate::Apply(*pool_, "training", training::Migrations());
  }

  // A RUNNING job held by "w" and its model with `classes` classes; returns (job, model).
  std::pair<int64_t, int64_t> JobAndModel(int classes) {
    return pool_->Run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      const auto job = tx.exec(
                             "INSERT INTO training.jobs (project_id, spec, state, claimed_by, "
                             "lease_until) VALUES (7, '{}', 'RUNNING', 'w', now() + "
                             "interval '1 hour') RETURNING id")[0][0]
                           .as<int64_t>();
      std::string names = "{";
      for (int k = 0; k < classes; ++k) names += (k ? ",c" : "c") + std::to_string(k);
      names += "}";
      const auto model = tx.exec_params(
                               "INSERT INTO training.models (project_id, version, "
                               "job_id, model_type, multi_label, classes, model_json) "
                               "VALUES (7, $1, $2, 'softmax', false, $3::text[], '{}') "
                               "RETURNING id",
                               ++version_, job, names)[0][0]
                             .as<int64_t>();
      tx.commit();
      return std::make_pair(job, model);
    });
  }

  void Exec(const std::string& sql) {
    pool_->Run([&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec(sql);
      tx.commit();
      return 0;
    });
  }

  ranking::PredictionMatrix LoadInRanking(int64_t model, int classes, int connections,
                                          int64_t rows_per_connection) {
    ranking::storage::Store store(*pool_, db_->url());
    return store.LoadPredictions({.project_id = 7,
                                  .model_id = model,
                                  .version = 1,
                                  .multi_label = false,
                                  .classes = classes},
                                 connections, rows_per_connection);
  }

  // Every row dl_manager's reader yields, appended to ids / probabilities.
  void ReadInDlManager(int64_t model, int classes, std::vector<int64_t>& ids,
                       std::vector<float>& probabilities) {
    pool_->Run([&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      dl_manager::PredictionChunkReader reader(tx, model, classes);
      int64_t id = 0;
      std::span<const float> p;
      while (reader.Next(id, p)) {
        ids.push_back(id);
        probabilities.insert(probabilities.end(), p.begin(), p.end());
      }
      return 0;
    });
  }

  std::unique_ptr<testing::TempDatabase> db_;
  std::unique_ptr<pg::Pool> pool_;
  int version_ = 0;
};

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST_F(PredictionChunksTest, WhatTrainingWritesRankingAndDlManagerReadBackExactly) {
  constexpr int kClasses = 3;
  const auto [job, model] = JobAndModel(kClasses);
  // 150,000 rows with gaps in the ids: chunks of 65,536 + 65,536 + 18,928 rows. Values
  // that a text round trip could alter: subnormals, the smallest and largest below 1.
  std::vector<int64_t> ids;
  std::vector<float> probs;
  for (int64_t i = 0; i < 150'000; ++i) {
    ids.push_back(1'000'000'000'000LL + i * 8 + (i % 7));
    const float a = static_cast<float>(i % 1000) / 999.0f;
    const float b = i % 5 == 0 ? std::numeric_limits<float>::denorm_min()
                               : std::nextafter(1.0f, 0.0f) * static_cast<float>(i % 3) / 7;
    probs.insert(probs.end(), {a, b, i % 11 == 0 ? std::nanf("") : 1.0f / 3});
  }
  {
    training::storage::PredictionSink sink(*pool_, model, kClasses);
    for (size_t i = 0; i < ids.size(); ++i) sink.Add(ids[i], probs.data() + i * kClasses, kClasses);
    ASSERT_TRUE(sink.Complete(job, "w"));
    EXPECT_EQ(sink.chunks(), 3);
  }
  auto chunks = pool_->Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return tx.exec_params(
        "SELECT chunk, first_item_id, last_item_id, row_count, "
        "octet_length(item_ids), octet_length(probabilities) "
        "FROM training.v_prediction_chunks WHERE model_id = $1 AND "
        "project_id = 7 ORDER BY chunk",
        model);
  });
  ASSERT_EQ(chunks.size(), 3u);
  const int64_t counts[] = {65536, 65536, 18928};
  size_t start = 0;
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(chunks[k][0].as<int64_t>(), static_cast<int64_t>(k));
    EXPECT_EQ(chunks[k][1].as<int64_t>(), ids[start]);
    EXPECT_EQ(chunks[k][2].as<int64_t>(), ids[start + counts[k] - 1]);
    EXPECT_EQ(chunks[k][3].as<int64_t>(), counts[k]);
    EXPECT_EQ(chunks[k][4].as<int64_t>(), counts[k] * 8);
    EXPECT_EQ(chunks[k][5].as<int64_t>(), counts[k] * kClasses * 4);
    start += static_cast<size_t>(counts[k]);
  }
  auto job_row = pool_->Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return tx.exec_params1(
        "SELECT j.state, m.predictions_ready FROM training.jobs j JOIN "
        "training.models m ON m.job_id = j.id WHERE j.id = $1",
        job);
  });
  EXPECT_EQ(job_row[0].as<std::string>(), "SUCCEEDED");
  EXPECT_TRUE(job_row[1].as<bool>());

  for (int connections : {1, 2, 3}) {
    auto m = LoadInRanking(model, kClasses, connections, 1);
    EXPECT_EQ(m.ids, ids) << connections;
    EXPECT_TRUE(SameBits(m.probabilities, probs)) << connections;
    EXPECT_EQ(m.classes, kClasses);
  }
  std::vector<int64_t> read_ids;
  std::vector<float> read_probs;
  ReadInDlManager(model, kClasses, read_ids, read_probs);
  EXPECT_EQ(read_ids, ids);
  EXPECT_TRUE(SameBits(read_probs, probs));

  // dl_manager's merge: ids asked in ascending order, present or not.
  pool_->Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    dl_manager::PredictionChunkReader reader(tx, model, kClasses);
    std::span<const float> p;
    EXPECT_FALSE(reader.Find(ids[0] - 1, p));
    for (size_t i : {size_t{0}, size_t{1}, size_t{65535}, size_t{65536}, size_t{149'999}}) {
      ASSERT_TRUE(reader.Find(ids[i], p)) << i;
      ASSERT_EQ(p.size(), 3u);
      EXPECT_EQ(std::memcmp(p.data(), probs.data() + i * kClasses, 12), 0) << i;
    }
    EXPECT_FALSE(reader.Find(ids.back() + 1, p));
  });
}

TEST_F(PredictionChunksTest, AModelWithoutRowsHasNoChunks) {
  const auto [job, model] = JobAndModel(4);
  training::storage::PredictionSink sink(*pool_, model, 4);
  ASSERT_TRUE(sink.Complete(job, "w"));
  EXPECT_EQ(sink.chunks(), 0);
  auto m = LoadInRanking(model, 4, 2, 1);
  EXPECT_TRUE(m.ids.empty());
  EXPECT_TRUE(m.probabilities.empty());
  std::vector<int64_t> ids;
  std::vector<float> probs;
  ReadInDlManager(model, 4, ids, probs);
  EXPECT_TRUE(ids.empty());
}

TEST_F(PredictionChunksTest, NothingIsWrittenWhenTheLeaseIsLost) {
  const auto [job, model] = JobAndModel(2);
  training::storage::PredictionSink sink(*pool_, model, 2);
  const float p[] = {0.5f, 0.5f};
  sink.Add(1, p, 2);
  EXPECT_THROW(sink.Add(2, p, 3), std::invalid_argument);  // not the model's class count
  Exec("UPDATE training.jobs SET claimed_by = 'other'");
  EXPECT_FALSE(sink.Complete(job, "w"));
  auto n = pool_->Run([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return tx.exec("SELECT count(*) FROM training.prediction_chunks")[0][0].as<int64_t>();
  });
  EXPECT_EQ(n, 0);
}

TEST_F(PredictionChunksTest, ACorruptChunkIsRejectedWithAClearError) {
  const auto [job, model] = JobAndModel(2);
  {
    training::storage::PredictionSink sink(*pool_, model, 2);
    const float p[] = {0.25f, 0.75f};
    for (int64_t id = 1; id <= 70'000; ++id) sink.Add(id, p, 2);
    ASSERT_TRUE(sink.Complete(job, "w"));
  }
  // Chunk 1 holds 70,000 - 65,536 = 4,464 rows: 35,712 bytes of probabilities.
  Exec(
      "UPDATE training.prediction_chunks SET probabilities = substring(probabilities from 1 "
      "for 35000) WHERE chunk = 1");
  const std::string want = "stored predictions are corrupt: model " + std::to_string(model) +
                           ", prediction chunk 1: probabilities has 35000 bytes, row_count "
                           "4464 × 2 classes needs 35712";
  for (int connections : {1, 2}) {
    try {
      LoadInRanking(model, 2, connections, 1);
      ADD_FAILURE() << "ranking loaded a corrupt chunk";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), want);
    }
  }
  std::vector<int64_t> ids;
  std::vector<float> probs;
  try {
    ReadInDlManager(model, 2, ids, probs);
    ADD_FAILURE() << "dl_manager read a corrupt chunk";
  } catch (const dl_manager::ExportInvalid& e) {
    EXPECT_EQ(std::string(e.what()), want);
  }
  EXPECT_EQ(ids.size(), 65536u);  // the good chunk before it

  // Ids that do not ascend across chunks.
  Exec("DELETE FROM training.prediction_chunks WHERE chunk = 1");
  Exec(
      "INSERT INTO training.prediction_chunks SELECT model_id, 1, first_item_id, last_item_id, "
      "row_count, item_ids, probabilities FROM training.prediction_chunks WHERE chunk = 0");
  try {
    LoadInRanking(model, 2, 1, 1);
    ADD_FAILURE() << "ranking loaded ids out of order";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("item id 1 (row 0) does not come after 65536"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace labelloop
