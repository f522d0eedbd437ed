// A FilterCallbacks for filter unit tests: records what a filter asks for
// and lets the test set what it sees. Real filters are also tested through
// the binary (test/integration); this is for their logic in isolation.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "http/filter.h"

namespace sidecar::filters::testing {

class TestCallbacks : public http::FilterCallbacks {
 public:
  // What the filter sees.
  http::RequestHead head;
  std::string path_value = "/";
  std::string authority_value = "example.com";
  std::string peer = "10.0.0.1";
  const net::TlsInfo* tls_info = nullptr;
  std::string listener = "in";
  std::string route = "in/0";
  std::map<std::string, const void*> route_configs;
  boost::asio::io_context io_context;

  // What it asked for, in order ("+req x=1;-req y;reply 429;...").
  std::string log;
  std::optional<int> reply_status;
  std::string reply_body;
  std::optional<http::LocalResponse> response;
  uint32_t flags = 0;
  int continued = 0;
  bool streamed = false;
  bool request_streamed = false;
  uint16_t port = 8000;
  std::string peer_address_value = "10.0.0.1:50000";
  std::string upstream_host_value;  // "" until the test sets an endpoint
  std::chrono::system_clock::time_point start = std::chrono::system_clock::time_point(
      std::chrono::milliseconds(1'700'000'000'123));  // 2023-11-14T22:13:20.123Z
  // buffer_request_body(): the limit asked for (0: not asked).
  size_t buffer_limit = 0;
  std::string detail;
  std::map<std::string, std::string> metadata_map;
  // A client whose requests the test answers by hand (`pending`).
  struct FakeClient : http::AsyncClient {
    struct Call {
      std::string cluster;
      http::ClientRequest request;
      Done done;
    };
    std::vector<Call> pending;
    uint64_t send(std::string_view cluster, http::ClientRequest r, Done done) override {
      pending.push_back({std::string(cluster), std::move(r), std::move(done)});
      return pending.size();
    }
    void cancel(uint64_t) override {}
  } client;

  const http::RequestHead& request() const override { return head; }
  std::string_view path() const override { return path_value; }
  std::string_view authority() const override { return authority_value; }
  std::string_view peer_ip() const override { return peer; }
  const net::TlsInfo* tls() const override { return tls_info; }
  std::string_view listener_name() const override { return listener; }
  std::string_view route_name() const override { return route; }
  uint16_t local_port() const override { return port; }
  std::string_view peer_address() const override { return peer_address_value; }
  std::string_view upstream_host() const override { return upstream_host_value; }
  std::chrono::system_clock::time_point start_time() const override { return start; }
  const void* route_config(std::string_view name) const override {
    auto it = route_configs.find(std::string(name));
    return it == route_configs.end() ? nullptr : it->second;
  }
  void add_request_header(std::string_view n, std::string_view v) override {
    log += "+req " + std::string(n) + "=" + std::string(v) + ";";
  }
  void remove_request_header(std::string_view n) override { log += "-req " + std::string(n) + ";"; }
  void set_request_path(std::string_view p) override { log += "path " + std::string(p) + ";"; }
  void set_request_streamed() override { request_streamed = true; }
  void buffer_request_body(size_t max) override { buffer_limit = max; }
  void add_response_header(std::string_view n, std::string_view v) override {
    log += "+resp " + std::string(n) + "=" + std::string(v) + ";";
  }
  void remove_response_header(std::string_view n) override {
    log += "-resp " + std::string(n) + ";";
  }
  void set_response_streamed() override { streamed = true; }
  void send_local_reply(int status, std::string_view body) override {
    log += "reply " + std::to_string(status) + ";";
    reply_status = status;
    reply_body = std::string(body);
  }
  void send_response(http::LocalResponse r) override {
    log += "response " + std::to_string(r.status) + ";";
    response = std::move(r);
  }
  void set_response_flag(uint32_t f) override { flags |= f; }
  void set_response_detail(std::string_view d) override { detail = std::string(d); }
  void set_metadata(std::string_view k, std::string_view v) override {
    metadata_map[std::string(k)] = std::string(v);
  }
  std::optional<std::string_view> metadata(std::string_view k) const override {
    auto it = metadata_map.find(std::string(k));
    if (it == metadata_map.end()) return std::nullopt;
    return std::string_view(it->second);
  }
  void continue_request() override { ++continued; }
  boost::asio::io_context& io() override { return io_context; }
  http::AsyncClient& http_client() override { return client; }
  // route_cluster() / upstream_request(): the test sets them.
  std::string cluster = "app";
  http::ClientRequest upstream;
  std::string_view route_cluster() override { return cluster; }
  http::ClientRequest upstream_request() override { return upstream; }
};

}  // namespace sidecar::filters::testing
