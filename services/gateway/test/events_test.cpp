#include "services/gateway/events.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace labelloop::gateway
