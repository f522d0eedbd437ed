// libFuzzer target: the HTTP/2 downstream codec (proxy::Http2ServerConnection
// on nghttp2) fed a client's byte stream, as a listener hands a connection
// over after sniffing the preface (docs/proxy.md "HTTP/2").
//
// The input is what a client sends on one connection (the seeds, from
// make_h2_seeds.py, start with the connection preface). The codec runs on a
// real worker (not started: its event loop is polled here) with a config
// whose one route matches no request, so every stream that gets through the
// codec's checks becomes a Stream and is answered 404 by the proxy itself:
// the header rewriting, the HTTP/1.1 parse of the rewritten head, local
// replies, resets, trailers, flow control and the protections all run; no
// byte leaves the process (the socket's peer is a socketpair end read here).
//
// Checks: no crash, no sanitizer report, no leak; the connection is closed
// and released after every input.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config/loader.h"
#include "net/transport.h"
#include "proxy/http2_server.h"
#include "proxy/snapshot.h"
#include "proxy/stream.h"
#include "proxy/worker.h"
#include "stats/stats.h"
#include "tls/store.h"

namespace {

using namespace sidecar;

constexpr std::string_view kConfig = R"(
workers: 1
clusters: [ { name: none, endpoints: [ "127.0.0.1:9" ] } ]
listeners:
  - name: h2
    address: 127.0.0.1:0
    protocol: h2c
    http2: { max_concurrent_streams: 100 }
    routes: [ { match: { path: /no/request/of/the/corpus/goes/here }, cluster: none } ]
)";

struct Env {
  boost::asio::io_context main_io;
  stats::Store store{1, proxy::reject_reason_names()};
  tls::Store tls{main_io};
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const proxy::Snapshot> snapshot;
  std::unique_ptr<proxy::Worker> worker;
  const proxy::ListenerRuntime* listener = nullptr;

  Env() {
    config = config::load_string(kConfig, "http2_fuzz");
    tls.apply(*config);
    snapshot = proxy::Snapshot::build(config, store, tls);
    worker = std::make_unique<proxy::Worker>(0, snapshot, store.worker(0), nullptr);
    listener = snapshot->find("h2");
  }
};

Env& env() {
  static Env* e = new Env();  // kept for the process (reachable, not a leak)
  return *e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Env& e = env();
  boost::asio::io_context& io = e.worker->io();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) return 0;
  boost::asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.assign(boost::asio::ip::tcp::v4(), fds[0], ec);
  if (ec) {
    ::close(fds[0]);
    ::close(fds[1]);
    return 0;
  }
  proxy::DownstreamInfo info;
  info.worker = e.worker.get();
  info.listener_stats = e.listener->stats[0];
  info.peer = {boost::asio::ip::make_address_v4("127.0.0.1"), 1};
  info.listener_stats->connections_active.add();  // as the HTTP/1.1 side counted it
  core::Ref<proxy::Http2ServerConnection> h2(new proxy::Http2ServerConnection(
      *e.worker, e.snapshot, *e.listener, net::Transport(std::move(socket)), info));
  h2->start(std::string_view(reinterpret_cast<const char*>(data), size));
  // Run what the input started (stream events, local replies, writes),
  // reading what the codec writes so that its writes complete.
  char sink[65536];
  for (int round = 0; round < 64; ++round) {
    io.restart();
    const size_t ran = io.poll();
    bool read_any = false;
    while (::read(fds[1], sink, sizeof(sink)) > 0) read_any = true;
    if (ran == 0 && !read_any) break;
  }
  h2->close();
  io.restart();
  io.poll();
  ::close(fds[1]);
  return 0;
}
