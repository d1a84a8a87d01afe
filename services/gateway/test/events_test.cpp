#include "services/gateway/events.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "common/bus/channels.hpp"
#include "common/redis/redis.hpp"
#include "common/testing/testing.hpp"

namespace labelloop::gateway {
namespace {

using std::chrono::milliseconds;

TEST(EventHub, DeliversOnlyTheWatchedProject) {
  EventHub hub;
  auto a = hub.Watch(1, {});
  auto b = hub.Watch(2, {});
  hub.Dispatch("labelloop.models.ready",
               R"({"type":"models.ready","version":1,"project_id":1,"model_id":4})");
  ProjectEventData ev;
  ASSERT_EQ(a->Wait(milliseconds(100), &ev), EventHub::Watcher::Next::kEvent);
  EXPECT_EQ(ev.type, "models.ready");
  EXPECT_EQ(ev.project_id, 1);
  EXPECT_NE(ev.json.find("model_id"), std::string::npos);
  EXPECT_EQ(b->Wait(milliseconds(10), &ev), EventHub::Watcher::Next::kTimeout);
}

TEST(EventHub, FiltersByTypeAndIgnoresBadPayloads) {
  EventHub hub;
  auto w = hub.Watch(3, {"training.progress"});
  hub.Dispatch("c", "not json");
  hub.Dispatch("c", R"({"type":"labels.submitted","project_id":3})");
  hub.Dispatch("c", R"({"type":"training.progress","project_id":3,"epoch":1})");
  ProjectEventData ev;
  ASSERT_EQ(w->Wait(milliseconds(100), &ev), EventHub::Watcher::Next::kEvent);
  EXPECT_EQ(ev.type, "training.progress");
  EXPECT_EQ(w->Wait(milliseconds(10), &ev), EventHub::Watcher::Next::kTimeout);
}

TEST(EventHub, SlowWatcherLosesOldestNotNewest) {
  EventHub hub(2);
  auto w = hub.Watch(1, {});
  for (int i = 0; i < 5; ++i) {
    hub.Dispatch("c", R"({"type":"t","project_id":1,"n":)" + std::to_string(i) + "}");
  }
  EXPECT_EQ(w->dropped(), 3);
  ProjectEventData ev;
  ASSERT_EQ(w->Wait(milliseconds(10), &ev), EventHub::Watcher::Next::kEvent);
  EXPECT_NE(ev.json.find("\"n\":3"), std::string::npos);
}

TEST(EventHub, CloseEndsWatchesAndUnwatchForgets) {
  EventHub hub;
  auto w = hub.Watch(1, {});
  auto gone = hub.Watch(1, {});
  hub.Unwatch(gone);
  EXPECT_EQ(hub.watchers(), 1u);
  hub.Close();
  ProjectEventData ev;
  EXPECT_EQ(w->Wait(milliseconds(1000), &ev), EventHub::Watcher::Next::kClosed);
  EXPECT_EQ(hub.Watch(1, {})->Wait(milliseconds(10), &ev), EventHub::Watcher::Next::kClosed);
}

TEST(EventHub, WatchStartsAfterABoundedWaitWhenRedisIsDown) {
  EventHub hub(1000, std::chrono::milliseconds(100));
  hub.Start({.host = "127.0.0.1", .port = testing::FreePort(), .connect_timeout_ms = 50});
  const auto t0 = std::chrono::steady_clock::now();
  auto w = hub.Watch(1, {});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_FALSE(hub.subscribed());
  // Events still reach it (here handed over directly, as the subscriber would once up).
  hub.Dispatch("c", R"({"type":"t","project_id":1})");
  ProjectEventData ev;
  EXPECT_EQ(w->Wait(milliseconds(100), &ev), EventHub::Watcher::Next::kEvent);
  hub.Unwatch(w);
}

TEST(EventHub, CloseEndsAWatchStillWaitingForItsSubscription) {
  EventHub hub(1000, std::chrono::seconds(60));
  hub.Start({.host = "127.0.0.1", .port = testing::FreePort(), .connect_timeout_ms = 50});
  std::shared_ptr<EventHub::Watcher> w;
  std::thread watching([&] { w = hub.Watch(1, {}); });
  ASSERT_TRUE(testing::WaitFor([&] { return hub.watchers() == 1; }, std::chrono::seconds(5)));
  const auto t0 = std::chrono::steady_clock::now();
  hub.Close();
  watching.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  ProjectEventData ev;
  EXPECT_EQ(w->Wait(milliseconds(10), &ev), EventHub::Watcher::Next::kClosed);
}

// With the Redis of tests/run: the hub subscribes only while someone watches.
class EventHubRedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = testing::TestRedis();
    if (!r) GTEST_SKIP() << "LABELLOOP_TEST_REDIS_* not set: run through tests/run";
    endpoint_ = {.host = r->first, .port = r->second};
    publisher_ = std::make_unique<redis::Client>(endpoint_);
  }

  // Publishes a labels.submitted event of `project`, numbered `n`.
  void Publish(int64_t project, int n) {
    ASSERT_TRUE(publisher_->Publish(
        bus::kLabelsSubmitted, R"({"type":"labels.submitted","project_id":)" +
                                   std::to_string(project) + R"(,"n":)" + std::to_string(n) + "}"));
  }

  redis::Endpoint endpoint_;
  std::unique_ptr<redis::Client> publisher_;
};

// Project ids no other test publishes for (tests share the Redis).
constexpr int64_t kProject = 987654321;

TEST_F(EventHubRedisTest, WatcherArrivingAfterAnIdlePeriodGetsEvents) {
  EventHub hub;
  hub.Start(endpoint_);
  EXPECT_FALSE(hub.subscribed());  // nobody watches: no subscription
  Publish(kProject, 1);            // heard by no one
  auto w = hub.Watch(kProject, {});
  // Watch returned: the subscription is confirmed, the very next event arrives.
  EXPECT_TRUE(hub.subscribed());
  Publish(kProject, 2);
  ProjectEventData ev;
  ASSERT_EQ(w->Wait(std::chrono::seconds(5), &ev), EventHub::Watcher::Next::kEvent);
  EXPECT_EQ(ev.type, "labels.submitted");
  EXPECT_NE(ev.json.find("\"n\":2"), std::string::npos) << ev.json;
  hub.Unwatch(w);
}

TEST_F(EventHubRedisTest, LastWatcherLeavingDropsTheSubscription) {
  EventHub hub;
  hub.Start(endpoint_);
  auto a = hub.Watch(kProject + 1, {});
  auto b = hub.Watch(kProject + 1, {});
  ASSERT_TRUE(hub.subscribed());
  hub.Unwatch(a);
  EXPECT_TRUE(hub.subscribed());  // b still watches
  Publish(kProject + 1, 1);
  ProjectEventData ev;
  ASSERT_EQ(b->Wait(std::chrono::seconds(5), &ev), EventHub::Watcher::Next::kEvent);
  hub.Unwatch(b);
  EXPECT_FALSE(hub.subscribed());  // the subscriber and its connection are stopped
  // Subscribed again for the next watcher.
  auto c = hub.Watch(kProject + 1, {});
  EXPECT_TRUE(hub.subscribed());
  Publish(kProject + 1, 2);
  ASSERT_EQ(c->Wait(std::chrono::seconds(5), &ev), EventHub::Watcher::Next::kEvent);
  EXPECT_NE(ev.json.find("\"n\":2"), std::string::npos) << ev.json;
  hub.Close();
  EXPECT_FALSE(hub.subscribed());
}

}  // namespace
}  // namespace labelloop::gateway
