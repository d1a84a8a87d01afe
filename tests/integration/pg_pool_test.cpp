// The pool against a private PostgreSQL that the test restarts under it.
#include <gtest/gtest.h>

#include <thread>

#include "common/pg/pool.hpp"
#include "common/testing/testing.hpp"

namespace labelloop {
namespace {

int SelectOne(pg::Pool& pool) {
  return pool.Run([](pqxx::connection& c) {
    pqxx::work tx(c);
    return tx.exec_prepared("one")[0][0].as<int>();
  });
}

TEST(PgPool, SurvivesAPostgresRestartWithoutARestartOfItsOwn) {
  testing::TempPostgres server;
  pg::Pool pool({.url = server.url(), .size = 3, .statement_timeout_ms = 5000});
  pool.Prepare("one", "SELECT 1");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(SelectOne(pool), 1);
  EXPECT_GE(pool.open_connections(), 1);

  server.Restart();

  // The pooled connections are now dead; the next call must reconnect by itself,
  // with its prepared statements, without an error reaching the caller.
  EXPECT_EQ(SelectOne(pool), 1);
  EXPECT_TRUE(pool.Ping());
}

TEST(PgPool, PingIsFalseWhileDownAndTrueAfterwards) {
  testing::TempPostgres server;
  pg::Pool pool({.url = server.url(), .size = 2});
  EXPECT_TRUE(pool.Ping());
  server.Stop();
  EXPECT_FALSE(pool.Ping());
  EXPECT_THROW(pool.Run([](pqxx::connection& c) {
    pqxx::work tx(c);
    return tx.exec("SELECT 1").size();
  }),
               pqxx::broken_connection);
  server.Start();
  EXPECT_TRUE(testing::WaitFor([&] { return pool.Ping(); }, std::chrono::seconds(10)));
}

class PgPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::AdminPgUrl();
    if (!url) GTEST_SKIP() << "LABELLOOP_TEST_PG_URL not set: run through tests/run";
    db_ = std::make_unique<testing::TempDatabase>(*url);
  }
  std::unique_ptr<testing::TempDatabase> db_;
};

TEST_F(PgPoolTest, StatementTimeoutCancelsSlowQueries) {
  pg::Pool pool({.url = db_->url(), .size = 1, .statement_timeout_ms = 100});
  EXPECT_THROW(pool.Run([](pqxx::connection& c) {
    pqxx::work tx(c);
    return tx.exec("SELECT pg_sleep(2)").size();
  }),
               pqxx::sql_error);
  EXPECT_TRUE(pool.Ping());  // the connection is still usable afterwards
}

TEST_F(PgPoolTest, ExhaustedPoolTimesOutWithAClearError) {
  pg::Pool pool({.url = db_->url(), .size = 1, .acquire_timeout_ms = 50});
  auto held = pool.Acquire();
  try {
    pool.Acquire();
    FAIL() << "expected PoolExhausted";
  } catch (const pg::PoolExhausted& e) {
    EXPECT_NE(std::string(e.what()).find("within 50 ms"), std::string::npos);
  }
}

TEST_F(PgPoolTest, ConcurrentUsersShareTheConnections) {
  pg::Pool pool({.url = db_->url(), .size = 4});
  std::atomic<int> sum{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        sum += pool.Run([](pqxx::connection& c) {
          pqxx::work tx(c);
          return tx.exec_params("SELECT $1::int", 1)[0][0].as<int>();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(sum.load(), 16 * 20);
  EXPECT_LE(pool.open_connections(), 4);
  EXPECT_EQ(pool.in_use(), 0);
}

}  // namespace
}  // namespace labelloop
