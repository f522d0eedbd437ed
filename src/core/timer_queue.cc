#include "core/timer_queue.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sidecar::core {

struct TimerQueue::Waiter {
  explicit Waiter(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
};

TimerEntry::~TimerEntry() {
  if (queue_ != nullptr) queue_->cancel(*this);
}

TimerQueue::TimerQueue(boost::asio::io_context& io) : waiter_(std::make_unique<Waiter>(io)) {}

TimerQueue::~TimerQueue() {
  for (TimerEntry* e : heap_) e->queue_ = nullptr;
}

void TimerQueue::place(TimerEntry* e, uint32_t i) {
  heap_[i] = e;
  e->index_ = i;
}

void TimerQueue::sift_up(uint32_t i) {
  TimerEntry* e = heap_[i];
  while (i > 0) {
    const uint32_t parent = (i - 1) / 2;
    if (heap_[parent]->expiry_ <= e->expiry_) break;
    place(heap_[parent], i);
    i = parent;
  }
  place(e, i);
}

void TimerQueue::sift_down(uint32_t i) {
  TimerEntry* e = heap_[i];
  const auto n = static_cast<uint32_t>(heap_.size());
  for (;;) {
    uint32_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->expiry_ < heap_[child]->expiry_) ++child;
    if (e->expiry_ <= heap_[child]->expiry_) break;
    place(heap_[child], i);
    i = child;
  }
  place(e, i);
}

void TimerQueue::remove_at(uint32_t i) {
  TimerEntry* e = heap_[i];
  e->queue_ = nullptr;
  TimerEntry* last = heap_.back();
  heap_.pop_back();
  if (last == e) return;
  place(last, i);
  if (i > 0 && last->expiry_ < heap_[(i - 1) / 2]->expiry_) {
    sift_up(i);
  } else {
    sift_down(i);
  }
}

void TimerQueue::schedule(TimerEntry& e, Clock::time_point at) {
  if (e.queue_ == this) {
    const Clock::time_point old = e.expiry_;
    e.expiry_ = at;
    if (at < old) {
      sift_up(e.index_);
    } else if (old < at) {
      sift_down(e.index_);
    }
  } else {
    if (e.queue_ != nullptr) e.queue_->cancel(e);
    e.queue_ = this;
    e.expiry_ = at;
    heap_.push_back(&e);
    sift_up(static_cast<uint32_t>(heap_.size() - 1));
  }
  rearm();
}

void TimerQueue::cancel(TimerEntry& e) {
  if (e.queue_ != this) return;
  remove_at(e.index_);
  // The asio timer is left as it is (waking up once for nothing is cheaper
  // than re-arming it on every cancel) unless nothing is left: then no wait
  // may stay pending, or io_context::run() would not return when a worker
  // stops.
  if (heap_.empty() && waiting_) {
    waiting_ = false;
    waiter_->timer.cancel();
  }
}

void TimerQueue::run_expired(Clock::time_point now) {
  // Bounded so that an entry re-armed for the past by its own callback
  // waits for the next round instead of spinning here.
  for (size_t budget = heap_.size(); budget > 0 && !heap_.empty(); --budget) {
    TimerEntry* e = heap_.front();
    if (e->expiry_ > now) break;
    remove_at(0);
    e->on_expired();
  }
}

void TimerQueue::rearm() {
  if (heap_.empty()) return;
  const Clock::time_point first = heap_.front()->expiry_;
  if (waiting_ && waiting_for_ <= first) return;  // it will look again then
  waiting_ = true;
  waiting_for_ = first;
  // A wait in progress completes with operation_aborted.
  waiter_->timer.expires_at(first);
  waiter_->timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    waiting_ = false;
    run_expired(Clock::now());
    rearm();
  });
}

}  // namespace sidecar::core
