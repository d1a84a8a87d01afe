#include "common/migrate/migrate.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "common/testing/testing.hpp"

namespace labelloop {
namespace {

class MigrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::AdminPgUrl();
    if (!url) GTEST_SKIP() << "LABELLOOP_TEST_PG_URL not set: run through tests/run";
    db_ = std::make_unique<testing::TempDatabase>(*url);
  }
  std::unique_ptr<testing::TempDatabase> db_;
};

// The second migration is not idempotent: applying it twice would fail or double rows.
std::vector<migrate::Migration> Scripts() {
  return {{1, "0001_init", "CREATE TABLE things (id int PRIMARY KEY, name text);"},
          {2, "0002_seed",
           "INSERT INTO things VALUES (1, 'one'); "
           "ALTER TABLE things ADD COLUMN extra int;"}};
}

TEST_F(MigrateTest, AppliesInOrderIntoItsOwnSchemaAndRecordsVersions) {
  pg::Pool pool({.url = db_->url(), .size = 2});
  auto r = migrate::Apply(pool, "svc", Scripts());
  EXPECT_EQ(r.applied_now, 2);
  EXPECT_EQ(r.schema_version, 2);
  auto again = migrate::Apply(pool, "svc", Scripts());
  EXPECT_EQ(again.applied_now, 0);
  EXPECT_EQ(migrate::CurrentVersion(pool, "svc"), 2);
  EXPECT_EQ(migrate::CurrentVersion(pool, "other"), 0);
  pool.Run([](pqxx::connection& c) {
    pqxx::work tx(c);
    EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.things")[0][0].as<int>(), 1);
    EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.schema_migrations")[0][0].as<int>(), 2);
    return 0;
  });
}

TEST_F(MigrateTest, ManyProcessesAtOnceApplyEachMigrationExactlyOnce) {
  // Separate processes (not threads) like replicas starting together: each has its
  // own connection and races for the advisory lock.
  const int kProcesses = 6;
  std::vector<pid_t> children;
  for (int i = 0; i < kProcesses; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      int code = 0;
      try {
        pg::Pool pool({.url = db_->url(), .size = 1});
        migrate::Apply(pool, "svc", Scripts());
      } catch (const std::exception& e) {
        fprintf(stderr, "child failed: %s\n", e.what());
        code = 1;
      }
      _exit(code);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int st = 0;
    waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  pg::Pool pool({.url = db_->url(), .size = 1});
  pool.Run([](pqxx::connection& c) {
    pqxx::work tx(c);
    EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.things")[0][0].as<int>(), 1);
    EXPECT_EQ(tx.exec("SELECT string_agg(version::text, ',' ORDER BY version) FROM "
                      "svc.schema_migrations")[0][0]
                  .as<std::string>(),
              "1,2");
    return 0;
  });
}

TEST_F(MigrateTest, FailingMigrationIsNamedAndLeavesNothingBehind) {
  pg::Pool pool({.url = db_->url(), .size = 1});
  std::vector<migrate::Migration> bad = {{1, "0001_ok", "CREATE TABLE a (x int);"},
                                         {2, "0002_broken", "CREATE TABLE oops (;"}};
  try {
    migrate::Apply(pool, "svc", bad);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("svc/0002_broken"), std::string::npos) << e.what();
  }
  EXPECT_EQ(migrate::CurrentVersion(pool, "svc"), 0);  // the whole transaction rolled back
}

TEST_F(MigrateTest, DuplicateVersionsAreRejected) {
  pg::Pool pool({.url = db_->url(), .size = 1});
  EXPECT_THROW(migrate::Apply(pool, "svc", {{1, "a", "SELECT 1"}, {1, "b", "SELECT 1"}}),
               std::runtime_error);
}

}  // namespace
}  // namespace labelloop
