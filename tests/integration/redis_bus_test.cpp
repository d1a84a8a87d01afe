// Publisher and subscriber against a private Redis that the test restarts.
#include <gtest/gtest.h>

#include <mutex>

#include "common/redis/redis.hpp"
#include "common/testing/testing.hpp"

namespace labelloop {
namespace {

struct Inbox {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> messages;
  void Add(const std::string& c, const std::string& p) {
    std::lock_guard lock(mu);
    messages.emplace_back(c, p);
  }
  bool Has(const std::string& payload) {
    std::lock_guard lock(mu);
    for (const auto& m : messages) {
      if (m.second == payload) return true;
    }
    return false;
  }
};

// A private Redis and a subscriber to channels "a" and "b" that fills `inbox`.
struct SubscribedRedis {
  testing::TempRedis server;
  redis::Endpoint ep{.host = "127.0.0.1", .port = server.port()};
  Inbox inbox;
  redis::Subscriber sub{
      ep, {"a", "b"}, [this](const std::string& c, const std::string& p) { inbox.Add(c, p); }};
  SubscribedRedis() { sub.Start(); }
  bool Connected() {
    return testing::WaitFor([&] { return sub.connected(); }, std::chrono::seconds(5));
  }
};

TEST(RedisBus, SubscriberGetsMessagesOnEveryChannel) {
  SubscribedRedis r;
  ASSERT_TRUE(r.Connected());
  auto& inbox = r.inbox;
  redis::Client pub(r.ep);
  // Publishing until a subscriber counts avoids racing the SUBSCRIBE confirmation.
  ASSERT_TRUE(testing::WaitFor([&] { return pub.Publish("a", "one").value_or(0) == 1; },
                               std::chrono::seconds(5)));
  EXPECT_EQ(pub.Publish("b", "two"), 1);
  ASSERT_TRUE(testing::WaitFor([&] { return inbox.Has("one") && inbox.Has("two"); },
                               std::chrono::seconds(5)));
  std::lock_guard lock(inbox.mu);
  EXPECT_EQ(inbox.messages.front().first, "a");
}

TEST(RedisBus, SubscriberResubscribesAfterRedisRestarts) {
  testing::TempRedis server;
  redis::Endpoint ep{.host = "127.0.0.1", .port = server.port()};
  Inbox inbox;
  std::atomic<int> connects{0};
  redis::Subscriber sub(
      ep, {"labelloop.test"}, [&](const std::string& c, const std::string& p) { inbox.Add(c, p); },
      [&] { ++connects; });
  sub.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return connects == 1; }, std::chrono::seconds(5)));
  redis::Client pub(ep);
  ASSERT_TRUE(testing::WaitFor([&] { return pub.Publish("labelloop.test", "before") == 1; },
                               std::chrono::seconds(5)));
  // PUBLISH counts a message once it is queued for the subscriber, not once delivered:
  // see it arrive before killing the server.
  ASSERT_TRUE(testing::WaitFor([&] { return inbox.Has("before"); }, std::chrono::seconds(5)));

  server.Stop();
  ASSERT_TRUE(testing::WaitFor([&] { return !sub.connected(); }, std::chrono::seconds(5)));
  EXPECT_FALSE(pub.Publish("labelloop.test", "while down").has_value());
  server.Start();

  // The same client and subscriber objects recover on their own.
  ASSERT_TRUE(testing::WaitFor([&] { return connects == 2; }, std::chrono::seconds(10)));
  ASSERT_TRUE(testing::WaitFor([&] { return pub.Publish("labelloop.test", "after") == 1; },
                               std::chrono::seconds(10)));
  ASSERT_TRUE(testing::WaitFor([&] { return inbox.Has("after"); }, std::chrono::seconds(5)));
  EXPECT_GE(sub.reconnects(), 1);
}

TEST(RedisBus, PublishAllDeliversEveryMessageInOrder) {
  SubscribedRedis r;
  ASSERT_TRUE(r.Connected());
  auto& inbox = r.inbox;
  redis::Client pub(r.ep);
  ASSERT_TRUE(testing::WaitFor([&] { return pub.Publish("a", "ready").value_or(0) == 1; },
                               std::chrono::seconds(5)));
  std::vector<std::pair<std::string, std::string>> batch;
  for (int i = 0; i < 300; ++i) batch.emplace_back(i % 2 == 0 ? "a" : "b", std::to_string(i));
  ASSERT_TRUE(pub.PublishAll(batch));
  ASSERT_TRUE(testing::WaitFor([&] { return inbox.Has("299"); }, std::chrono::seconds(5)));
  std::lock_guard lock(inbox.mu);
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& m : inbox.messages) {
    if (m.second != "ready") got.push_back(m);
  }
  EXPECT_EQ(got, batch);
  EXPECT_TRUE(pub.PublishAll({}));
  // The client still answers ordinary commands after a pipelined batch.
  EXPECT_EQ(pub.Publish("b", "after"), 1);
}

TEST(RedisBus, PipelineAnswersEachCommandInOrder) {
  testing::TempRedis server;
  redis::Client client({.host = "127.0.0.1", .port = server.port()});
  ASSERT_TRUE(testing::WaitFor([&] { return client.Ping(); }, std::chrono::seconds(5)));
  const auto replies = client.Pipeline({{"INCRBY", "k", "3"},
                                        {"INCRBY", "k", "4"},
                                        {"HGET", "k", "f"},  // wrong type: an error reply
                                        {"GET", "missing"},
                                        {"INCRBY", "k", "1"}});
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_TRUE(replies[0].ok);
  EXPECT_EQ(replies[0].integer, 3);
  EXPECT_EQ(replies[1].integer, 7);
  EXPECT_FALSE(replies[2].ok);
  EXPECT_NE(replies[2].str.find("WRONGTYPE"), std::string::npos) << replies[2].str;
  EXPECT_TRUE(replies[3].ok);
  EXPECT_TRUE(replies[3].is_nil);
  EXPECT_EQ(replies[4].integer, 8);
  EXPECT_TRUE(client.Pipeline({}).empty());
  // The connection is still in step: an ordinary command after the batch.
  EXPECT_EQ(client.Command({"GET", "k"}).str, "8");
}

TEST(RedisBus, ClientReportsUnreachableRedisWithoutThrowing) {
  redis::Client client(
      {.host = "127.0.0.1", .port = testing::FreePort(), .connect_timeout_ms = 200});
  EXPECT_FALSE(client.Ping());
  EXPECT_FALSE(client.Publish("x", "y").has_value());
  EXPECT_FALSE(client.PublishAll({{"x", "y"}, {"x", "z"}}));
  const auto replies = client.Pipeline({{"INCRBY", "k", "1"}, {"INCRBY", "k", "2"}});
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_FALSE(replies[0].ok);
  EXPECT_FALSE(replies[1].ok);
}

TEST(RedisBus, SharedTestRedisAnswers) {
  auto r = testing::TestRedis();
  if (!r) GTEST_SKIP() << "LABELLOOP_TEST_REDIS_* not set: run through tests/run";
  redis::Client client({.host = r->first, .port = r->second});
  EXPECT_TRUE(client.Ping());
  auto reply = client.Command({"SET", "labelloop:test:key", "v"});
  EXPECT_TRUE(reply.ok);
  EXPECT_EQ(client.Command({"GET", "labelloop:test:key"}).str, "v");
}

}  // namespace
}  // namespace labelloop
