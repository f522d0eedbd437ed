#include "core/timer_queue.h"

#include <chrono>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

namespace sidecar::core {
namespace {

using Clock = TimerQueue::Clock;
using std::chrono::milliseconds;

// Records the order in which entries fire; may re-arm or cancel from its
// callback as a connection does.
struct Probe final : TimerEntry {
  std::vector<int>* fired = nullptr;
  int id = 0;
  TimerQueue* rearm_queue = nullptr;
  Clock::time_point rearm_at{};
  Probe* cancel_other = nullptr;
  using TimerEntry::armed;
  using TimerEntry::expiry;
  void on_expired() override {
    fired->push_back(id);
    if (cancel_other != nullptr) rearm_queue->cancel(*cancel_other);
    if (rearm_queue != nullptr && rearm_at != Clock::time_point{}) {
      rearm_queue->schedule(*this, rearm_at);
      rearm_at = {};
    }
  }
};

TEST(TimerQueue, FiresInDeadlineOrderAndOnlyWhenDue) {
  boost::asio::io_context io;
  TimerQueue q(io);
  std::vector<int> fired;
  const Clock::time_point t0 = Clock::now();
  std::vector<Probe> p(50);
  for (int i = 0; i < 50; ++i) {
    p[i].fired = &fired;
    p[i].id = i;
    // A scrambled order: 0, 37, 24, ... (37 is coprime with 50).
    q.schedule(p[i], t0 + milliseconds((i * 37) % 50));
  }
  EXPECT_EQ(q.size(), 50u);
  q.run_expired(t0 + milliseconds(9));
  ASSERT_EQ(fired.size(), 10u);
  for (size_t k = 1; k < fired.size(); ++k) {
    EXPECT_LT((fired[k - 1] * 37) % 50, (fired[k] * 37) % 50);
  }
  EXPECT_EQ(q.size(), 40u);
  q.run_expired(t0 + milliseconds(100));
  EXPECT_EQ(fired.size(), 50u);
  EXPECT_EQ(q.size(), 0u);
  for (const Probe& x : p) EXPECT_FALSE(x.armed());
}

TEST(TimerQueue, MoveEarlierLaterAndCancel) {
  boost::asio::io_context io;
  TimerQueue q(io);
  std::vector<int> fired;
  const Clock::time_point t0 = Clock::now();
  Probe a, b, c;
  for (Probe* x : {&a, &b, &c}) x->fired = &fired;
  a.id = 1, b.id = 2, c.id = 3;
  q.schedule(a, t0 + milliseconds(10));
  q.schedule(b, t0 + milliseconds(20));
  q.schedule(c, t0 + milliseconds(30));
  q.schedule(c, t0 + milliseconds(5));   // earlier
  q.schedule(a, t0 + milliseconds(40));  // later
  q.cancel(b);
  q.cancel(b);  // twice is harmless
  EXPECT_FALSE(b.armed());
  EXPECT_EQ(q.size(), 2u);
  q.run_expired(t0 + milliseconds(50));
  EXPECT_EQ(fired, (std::vector<int>{3, 1}));
}

TEST(TimerQueue, CallbacksMayRearmAndCancelOthers) {
  boost::asio::io_context io;
  TimerQueue q(io);
  std::vector<int> fired;
  const Clock::time_point t0 = Clock::now();
  Probe a, b;
  a.fired = b.fired = &fired;
  a.id = 1, b.id = 2;
  a.rearm_queue = &q;
  a.cancel_other = &b;
  a.rearm_at = t0;  // in the past: may fire again, within the round's budget
  q.schedule(a, t0 + milliseconds(1));
  q.schedule(b, t0 + milliseconds(2));
  q.run_expired(t0 + milliseconds(5));
  EXPECT_EQ(fired, (std::vector<int>{1, 1}));  // b was cancelled by a
  EXPECT_FALSE(b.armed());
  // An entry that re-arms itself for the past every time: bounded per round.
  struct Spinner final : TimerEntry {
    TimerQueue* q = nullptr;
    int calls = 0;
    using TimerEntry::armed;
    void on_expired() override {
      ++calls;
      q->schedule(*this, Clock::time_point{});
    }
  } s;
  s.q = &q;
  q.schedule(s, t0);
  q.run_expired(t0 + milliseconds(5));
  EXPECT_EQ(s.calls, 1);
  EXPECT_TRUE(s.armed());
  q.cancel(s);
}

TEST(TimerQueue, TheAsioTimerWakesForTheEarliest) {
  boost::asio::io_context io;
  TimerQueue q(io);
  std::vector<int> fired;
  Probe a, b;
  a.fired = b.fired = &fired;
  a.id = 1, b.id = 2;
  q.schedule(a, Clock::now() + milliseconds(200));
  q.schedule(b, Clock::now() + milliseconds(1));  // earlier: re-arms the asio timer
  io.run_for(std::chrono::seconds(5));            // returns when nothing is left to wait for
  EXPECT_EQ(fired, (std::vector<int>{2, 1}));
}

TEST(TimerQueue, NoWaitIsLeftWhenTheLastEntryIsCancelled) {
  boost::asio::io_context io;
  TimerQueue q(io);
  std::vector<int> fired;
  Probe a;
  a.fired = &fired;
  q.schedule(a, Clock::now() + std::chrono::hours(1));
  q.cancel(a);
  // Nothing is left to wait for: run() ends by itself (stopped), instead of
  // running out its time with a wait pending (a worker that stops would be
  // held for the hour).
  io.run_for(std::chrono::seconds(2));
  EXPECT_TRUE(io.stopped());
  EXPECT_TRUE(fired.empty());
}

TEST(TimerQueue, DestroyedEntriesLeaveTheQueue) {
  boost::asio::io_context io;
  TimerQueue q(io);
  std::vector<int> fired;
  {
    Probe a;
    a.fired = &fired;
    q.schedule(a, Clock::now());
    EXPECT_EQ(q.size(), 1u);
  }
  EXPECT_EQ(q.size(), 0u);
  q.run_expired(Clock::now() + milliseconds(1));
  EXPECT_TRUE(fired.empty());
}

}  // namespace
}  // namespace sidecar::core
