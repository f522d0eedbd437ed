#include "supervisor/supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

namespace sidecar::supervisor {

Supervisor::Supervisor(boost::asio::io_context& io, std::vector<std::string> argv, config::App app,
                       std::function<void(int)> on_exit)
    : io_(io),
      argv_(std::move(argv)),
      app_(std::move(app)),
      on_exit_(std::move(on_exit)),
      restart_timer_(io),
      kill_timer_(io) {}

void Supervisor::start() { spawn(); }

void Supervisor::spawn() {
  const std::vector<std::pair<std::string, std::string>> env{{"PORT", std::to_string(app_.port)}};
  if (!capture_) {
    process_.emplace(argv_, env);
  } else {
    const OutputPipes pipes = make_output_pipes();
    try {
      process_.emplace(argv_, env, "", pipes.stdout_write, pipes.stderr_write);
    } catch (...) {
      for (int fd : {pipes.stdout_write, pipes.stderr_write, pipes.stdout_read, pipes.stderr_read})
        ::close(fd);
      throw;
    }
    ::close(pipes.stdout_write);  // the app has them now
    ::close(pipes.stderr_write);
    start_output_pump(pipes, capture_);
  }
  started_at_ = std::chrono::steady_clock::now();
  spdlog::info("app started: pid {}, PORT={}", process_->pid(), app_.port);
}

void Supervisor::forward(int sig) {
  if (running()) process_->signal(sig);
}

void Supervisor::stop(int sig) {
  if (finished_) return;
  stopping_ = true;
  restart_timer_.cancel();
  if (!running()) {
    finish(last_exit_code_.value_or(0));
    return;
  }
  spdlog::info("stopping the app (pid {}): {}, SIGKILL after {}ms", process_->pid(),
               sig == SIGINT ? "SIGINT" : "SIGTERM", app_.stop_timeout.count());
  process_->signal(sig);
  kill_timer_.expires_after(app_.stop_timeout);
  kill_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !running()) return;
    spdlog::warn("the app did not exit within {}ms: SIGKILL", app_.stop_timeout.count());
    process_->signal(SIGKILL);
  });
}

void Supervisor::finish(int code) {
  if (finished_) return;
  finished_ = true;
  kill_timer_.cancel();
  if (on_exit_) on_exit_(code);
}

bool Supervisor::on_reaped(pid_t pid, int wait_status) {
  if (!process_ || !process_->on_reaped(pid, wait_status)) return false;
  const int code = *process_->exit_code();
  last_exit_code_ = code;
  const auto ran = std::chrono::steady_clock::now() - started_at_;
  spdlog::info("the app (pid {}) exited with code {}", pid, code);
  const bool restart = !stopping_ && !hold_ &&
                       (app_.restart == config::RestartPolicy::kAlways ||
                        (app_.restart == config::RestartPolicy::kOnFailure && code != 0));
  if (!restart) {
    finish(code);
    return true;
  }
  // Exponential backoff, reset after a long enough healthy run.
  if (ran >= 10 * app_.backoff_max || backoff_.count() == 0) {
    backoff_ = app_.backoff_initial;
  } else {
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, app_.backoff_max);
  }
  spdlog::info("restarting the app in {}ms (restart: {})", backoff_.count(),
               app_.restart == config::RestartPolicy::kAlways ? "always" : "on-failure");
  restart_timer_.expires_after(backoff_);
  restart_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_ || hold_) return;
    ++restarts_;
    try {
      spawn();
    } catch (const std::system_error& e) {
      spdlog::error("{}", e.what());
      finish(127);
    }
  });
  return true;
}

}  // namespace sidecar::supervisor
