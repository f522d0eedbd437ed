// One timer structure per worker for the deadlines of its connections.
//
// A connection used to own a boost::asio::steady_timer (120 bytes) plus a
// pending wait operation (an allocated handler) for its whole life: about a
// sixth of what an idle keep-alive connection cost. nginx and haproxy keep
// one tree of timers per worker instead and ask the poller to wake them at
// the earliest; this is the same design: each connection embeds a
// `TimerEntry` (24 bytes: expiry, heap slot, vtable), the worker's
// `TimerQueue` keeps the armed entries in a binary min-heap (a vector of
// pointers, O(log n) to arm, move or cancel, O(1) to read the earliest) and
// one asio timer of its own waits for the earliest expiry.
//
// Owners keep their "lazy re-arm" habit: updating a deadline is a store in
// the owner, and the entry is only moved when the new deadline is earlier
// than the armed one; when it fires the owner looks at its current deadlines
// and re-arms if none is due yet.
//
// Thread safety: none; a queue and its entries are used on one thread (the
// worker's). Lifetime: an entry must be cancelled (or have fired) before it
// is destroyed; ~TimerEntry cancels itself. The queue must outlive its armed
// entries; ~TimerQueue disarms the entries left so that their later
// destruction does not touch it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace sidecar::core {

class TimerQueue;

class TimerEntry {
 public:
  using Clock = std::chrono::steady_clock;

  TimerEntry() = default;
  TimerEntry(const TimerEntry&) = delete;
  TimerEntry& operator=(const TimerEntry&) = delete;

  bool armed() const { return queue_ != nullptr; }
  // When it fires; meaningful only while armed().
  Clock::time_point expiry() const { return expiry_; }

 protected:
  ~TimerEntry();
  // The expiry passed. The entry is disarmed before this is called, so the
  // owner may re-arm it, cancel others or destroy itself from here.
  virtual void on_expired() = 0;

 private:
  friend class TimerQueue;
  TimerQueue* queue_ = nullptr;  // while armed
  Clock::time_point expiry_{};
  uint32_t index_ = 0;  // slot in queue_->heap_ while armed
};

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TimerQueue(boost::asio::io_context& io);
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Arms `e` to fire at `at` (moving it, earlier or later, when it is
  // already armed here).
  void schedule(TimerEntry& e, Clock::time_point at);
  // Disarms `e`; nothing happens when it is not armed.
  void cancel(TimerEntry& e);
  // Armed entries.
  size_t size() const { return heap_.size(); }
  // Fires the entries whose expiry is at or before `now` (the asio timer
  // calls this; public for tests). At most as many callbacks run as entries
  // were armed when it started, so an entry that its callback keeps arming
  // for the past cannot spin here: the rest waits for the next round.
  void run_expired(Clock::time_point now);

 private:
  struct Waiter;

  void place(TimerEntry* e, uint32_t i);
  void sift_up(uint32_t i);
  void sift_down(uint32_t i);
  void remove_at(uint32_t i);
  // Makes the asio timer wait for the earliest expiry (when needed).
  void rearm();

  std::vector<TimerEntry*> heap_;
  std::unique_ptr<Waiter> waiter_;  // the asio timer (kept out of this header)
  bool waiting_ = false;            // a wait for `waiting_for_` is pending
  Clock::time_point waiting_for_{};
};

// "No deadline".
inline constexpr TimerEntry::Clock::time_point kNever = TimerEntry::Clock::time_point::max();

// The connections' pattern: one entry per ref-counted owner (core::RefCounted,
// found by intrusive_ptr_add_ref/release), armed for the owner's earliest
// deadline. While armed, the entry holds a reference to `owner`; the
// owner's on_expired() adopts it (core::Ref<Owner>(this, false)).
//
// Arms `e` for `at` unless it is armed for no later already; kNever: nothing.
template <class Owner>
void arm_no_later(TimerQueue& q, TimerEntry& e, Owner& owner, TimerEntry::Clock::time_point at) {
  if (at == kNever || (e.armed() && e.expiry() <= at)) return;
  if (!e.armed()) intrusive_ptr_add_ref(&owner);
  q.schedule(e, at);
}

// Disarms `e` and drops the reference it held to `owner`.
template <class Owner>
void disarm(TimerQueue& q, TimerEntry& e, Owner& owner) {
  if (!e.armed()) return;
  q.cancel(e);
  intrusive_ptr_release(&owner);
}

}  // namespace sidecar::core
