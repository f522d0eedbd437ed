#include "admin/dashboard.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>

#include <fmt/format.h>
#include <boost/asio/steady_timer.hpp>

#include "core/json.h"
#include "tracing/tap.h"

namespace sidecar::admin {

// dashboard_page.cc
extern const char* const kDashboardHead;
extern const char* const kDashboardTail;

namespace {

using Clock = std::chrono::steady_clock;

// A query parameter's (undecoded) value, or "".
std::string query_param(std::string_view q, std::string_view name) {
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view kv = q.substr(0, amp);
    const size_t eq = kv.find('=');
    if (kv.substr(0, eq) == name) {
      std::string v(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
      // %XX and '+' (a path filter has '/'; browsers encode it).
      std::string out;
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '+') {
          out += ' ';
        } else if (v[i] == '%' && i + 2 < v.size()) {
          unsigned x = 0;
          auto [p, ec] = std::from_chars(v.data() + i + 1, v.data() + i + 3, x, 16);
          if (ec == std::errc() && p == v.data() + i + 3) {
            out += static_cast<char>(x);
            i += 2;
          } else {
            out += v[i];
          }
        } else {
          out += v[i];
        }
      }
      return out;
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return {};
}

uint64_t query_number(std::string_view q, std::string_view name, uint64_t fallback, uint64_t min,
                      uint64_t max) {
  const std::string v = query_param(q, name);
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size()) return fallback;
  return std::clamp(n, min, max);
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

struct TapFilter {
  std::string listener, route, cluster, method, path, status;
  bool match(const tracing::TapRecord& r) const {
    if (!listener.empty() && r.listener != listener) return false;
    if (!route.empty() && r.route != route) return false;
    if (!cluster.empty() && r.cluster != cluster) return false;
    if (!method.empty() && r.method != method) return false;
    if (!path.empty() && !std::string_view(r.path).starts_with(path)) return false;
    if (!status.empty()) {
      const std::string code = std::to_string(r.status);
      if (status.size() == 3 && status[1] == 'x' && status[2] == 'x') {
        if (code[0] != status[0]) return false;
      } else if (code != status) {
        return false;
      }
    }
    return true;
  }
};

struct Tap {
  std::shared_ptr<AdminStream> out;
  TapFilter filter;
  uint64_t left = 100;
  Clock::time_point until;
};

}  // namespace

struct Dashboard::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::io_context& io, AdminServer& admin,
       std::function<std::vector<std::string>()> keys)
      : io(io), admin(admin), module_keys(std::move(keys)), tap_timer(io) {}

  boost::asio::io_context& io;
  AdminServer& admin;
  std::function<std::vector<std::string>()> module_keys;
  std::vector<Tap> taps;
  boost::asio::steady_timer tap_timer;
  bool tap_timer_running = false;
  bool stopped = false;

  static std::string one_line(std::string s) {
    // Raw newlines in JSON are only whitespace between tokens: an SSE data
    // line must not have any.
    std::replace(s.begin(), s.end(), '\n', ' ');
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s.empty() ? std::string("null") : s;
  }

  std::string snapshot() {
    std::string b = fmt::format(
        "{{\"time\":{:.3f}",
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    const AdminResponse ready = admin.get("/ready");
    b += fmt::format(",\"ready\":{},\"ready_reason\":", ready.status == 200 ? "true" : "false");
    std::string reason = ready.body;
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    core::append_json_string(b, reason);
    b += ",\"stats\":" + one_line(admin.get("/stats").body);
    b += ",\"clusters\":" + one_line(admin.get("/clusters").body);
    b += ",\"modules\":{";
    bool first = true;
    for (const std::string& k : module_keys()) {
      const AdminResponse r = admin.get("/" + k);
      if (r.status != 200 || r.content_type != "application/json") continue;
      if (!first) b += ',';
      first = false;
      core::append_json_string(b, k);
      b += ':' + one_line(r.body);
    }
    b += "},\"errors\":[";
    first = true;
    for (const tracing::TapRecord& r : tracing::recent_errors()) {
      if (!first) b += ',';
      first = false;
      b += tracing::to_json(r);
    }
    b += "]}";
    return b;
  }

  // /stream: a snapshot now and every second, until the client goes away.
  void stream_tick(const std::shared_ptr<AdminStream>& out,
                   const std::shared_ptr<boost::asio::steady_timer>& timer) {
    if (stopped || !out->write("event: snapshot\ndata: " + snapshot() + "\n\n")) return;
    timer->expires_after(std::chrono::seconds(1));
    timer->async_wait([self = shared_from_this(), out, timer](const boost::system::error_code& ec) {
      if (!ec) self->stream_tick(out, timer);
    });
  }

  void start_tap(const AdminRequest& req, std::shared_ptr<AdminStream> out) {
    Tap t;
    t.out = std::move(out);
    const std::string_view q = req.query;
    t.filter = {query_param(q, "listener"), query_param(q, "route"), query_param(q, "cluster"),
                query_param(q, "method"),   query_param(q, "path"),  query_param(q, "status")};
    t.left = query_number(q, "n", 100, 1, 10000);
    t.until = Clock::now() + std::chrono::seconds(query_number(q, "seconds", 60, 1, 3600));
    taps.push_back(std::move(t));
    tracing::tap_open();
    if (!tap_timer_running) {
      tap_timer_running = true;
      tap_tick();
    }
  }

  // Hands what the workers published to the taps, ten times a second.
  void tap_tick() {
    std::vector<tracing::TapRecord> batch;
    tracing::tap_take(batch);
    const Clock::time_point now = Clock::now();
    for (Tap& t : taps) {
      std::string lines;
      for (const tracing::TapRecord& r : batch) {
        if (t.left == 0 || !t.filter.match(r)) continue;
        lines += tracing::to_json(r);
        lines += '\n';
        --t.left;
      }
      if (!lines.empty() && !t.out->write(std::move(lines))) t.left = 0;
      if (t.left == 0 || now >= t.until || t.out->closed()) {
        t.out->finish();
        t.out.reset();
        tracing::tap_close();
      }
    }
    std::erase_if(taps, [](const Tap& t) { return t.out == nullptr; });
    if (taps.empty() || stopped) {
      tap_timer_running = false;
      return;
    }
    tap_timer.expires_after(std::chrono::milliseconds(100));
    tap_timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) {
        self->tap_timer_running = false;
        return;
      }
      self->tap_tick();
    });
  }

  void stop() {
    stopped = true;
    tap_timer.cancel();
    for (Tap& t : taps) {
      if (t.out) {
        t.out->finish();
        tracing::tap_close();
      }
    }
    taps.clear();
  }
};

Dashboard::Dashboard(boost::asio::io_context& io, AdminServer& admin,
                     std::function<std::vector<std::string>()> module_keys)
    : impl_(std::make_shared<Impl>(io, admin, std::move(module_keys))) {
  std::weak_ptr<Impl> weak = impl_;
  admin.handle("GET", "/", [weak](const AdminRequest&, AdminResponse& r) {
    auto self = weak.lock();
    if (!self) return;
    r.body = page(self->admin.get("/metrics").body);
    r.content_type = "text/html; charset=utf-8";
  });
  admin.handle_stream("/stream", "text/event-stream",
                      [weak](const AdminRequest& req, std::shared_ptr<AdminStream> out) {
                        auto self = weak.lock();
                        if (!self) return out->finish();
                        if (query_param(req.query, "once") == "1") {
                          out->write("event: snapshot\ndata: " + self->snapshot() + "\n\n");
                          return out->finish();
                        }
                        auto timer = std::make_shared<boost::asio::steady_timer>(self->io);
                        self->stream_tick(out, timer);
                      });
  admin.handle_stream("/tap", "application/x-ndjson",
                      [weak](const AdminRequest& req, std::shared_ptr<AdminStream> out) {
                        auto self = weak.lock();
                        if (!self) return out->finish();
                        self->start_tap(req, std::move(out));
                      });
}

Dashboard::~Dashboard() { impl_->stop(); }

std::string Dashboard::snapshot() { return impl_->snapshot(); }

std::string Dashboard::page(const std::string& metrics) {
  // The static table: sidecar_http_requests_total summed by listener, route
  // and status class, from the Prometheus text.
  struct Row {
    double total = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0;
  };
  std::map<std::pair<std::string, std::string>, Row> rows;
  std::string_view text = metrics;
  auto label = [](std::string_view labels, std::string_view name) {
    const std::string key = std::string(name) + "=\"";
    size_t at = 0;
    while ((at = labels.find(key, at)) != std::string_view::npos) {
      if (at == 0 || labels[at - 1] == ',' || labels[at - 1] == '{') break;
      ++at;
    }
    if (at == std::string_view::npos) return std::string_view();
    const size_t start = at + key.size();
    return labels.substr(start, labels.find('"', start) - start);
  };
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.starts_with("sidecar_http_requests_total{")) continue;
    const size_t close = line.rfind('}');
    if (close == std::string_view::npos) continue;
    const std::string_view labels = line.substr(0, close + 1);
    double v = 0;
    const std::string_view num = line.substr(close + 2);
    std::from_chars(num.data(), num.data() + num.size(), v);
    Row& r = rows[{std::string(label(labels, "listener")), std::string(label(labels, "route"))}];
    r.total += v;
    const std::string_view cls = label(labels, "code_class");
    if (cls == "2xx") r.c2 += v;
    if (cls == "3xx") r.c3 += v;
    if (cls == "4xx") r.c4 += v;
    if (cls == "5xx") r.c5 += v;
  }
  std::string table =
      "<table id=\"static-routes\"><thead><tr><th>listener</th><th>route</th><th>requests</th>"
      "<th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th></tr></thead><tbody>";
  for (const auto& [key, r] : rows) {
    table += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        html_escape(key.first), html_escape(key.second), r.total, r.c2, r.c3, r.c4, r.c5);
  }
  if (rows.empty()) table += "<tr><td colspan=\"7\">no requests yet</td></tr>";
  table += "</tbody></table>";
  return std::string(kDashboardHead) + table + kDashboardTail;
}

}  // namespace sidecar::admin
