// Transport::async_read_into on plain TCP over 127.0.0.1: the buffer is
// taken only when bytes are there, every byte arrives once, and the end of
// the stream is seen even when the FIN came with the last bytes (a read that
// drained the socket must not wait for an edge that will never come).
#include "net/transport.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "core/buffer.h"

namespace sidecar::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

struct Pair {
  asio::io_context io;
  tcp::socket client{io};
  std::optional<Transport> server;

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    tcp::socket s(io);
    acceptor.accept(s);
    s.non_blocking(true);
    server.emplace(std::move(s));
  }

  void send(const std::string& bytes) { asio::write(client, asio::buffer(bytes)); }

  // One read into `in`: the error and the bytes (committed), or nullopt
  // when nothing completed within `wait`.
  struct Result {
    boost::system::error_code ec;
    size_t n = 0;
  };
  std::optional<Result> read(core::Buffer& in, std::chrono::milliseconds wait) {
    std::optional<Result> r;
    server->async_read_into(in, core::BufferPool::kBlockSize,
                            [&](const boost::system::error_code& ec, size_t n) {
                              if (!ec) in.commit(n);
                              r = Result{ec, n};
                            });
    io.restart();
    io.run_for(wait);
    return r;
  }
};

TEST(ReadInto, HoldsNoBufferUntilBytesArrive) {
  Pair p;
  core::Buffer in;
  bool done = false;
  size_t got = 0;
  p.server->async_read_into(in, core::BufferPool::kBlockSize,
                            [&](const boost::system::error_code& ec, size_t n) {
                              EXPECT_FALSE(ec);
                              in.commit(n);
                              got = n;
                              done = true;
                            });
  p.io.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done);
  EXPECT_FALSE(in.has_storage());  // a waiting connection holds no block
  p.send("hello");
  p.io.restart();
  p.io.run_for(std::chrono::seconds(2));
  ASSERT_TRUE(done);
  EXPECT_EQ(got, 5u);
  EXPECT_EQ(in.readable(), "hello");
}

TEST(ReadInto, EndOfStreamThatCameWithTheLastBytes) {
  Pair p;
  p.send("last bytes");
  p.client.shutdown(tcp::socket::shutdown_send);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both in the queue
  core::Buffer in;
  auto r = p.read(in, std::chrono::seconds(2));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ec);
  EXPECT_EQ(in.readable(), "last bytes");
  in.clear();
  r = p.read(in, std::chrono::seconds(2));
  ASSERT_TRUE(r) << "the FIN taken with the last bytes was never reported";
  EXPECT_EQ(r->ec, asio::error::eof);
}

TEST(ReadInto, EndOfStreamAfterADrainedRead) {
  Pair p;
  p.send("a");
  core::Buffer in;
  auto r = p.read(in, std::chrono::seconds(2));
  ASSERT_TRUE(r);
  EXPECT_EQ(in.readable(), "a");
  in.clear();
  bool done = false;
  boost::system::error_code got;
  p.server->async_read_into(in, core::BufferPool::kBlockSize,
                            [&](const boost::system::error_code& ec, size_t) {
                              got = ec;
                              done = true;
                            });
  p.io.restart();
  p.io.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(done);
  p.send("b");
  p.client.shutdown(tcp::socket::shutdown_send);
  p.io.restart();
  p.io.run_for(std::chrono::seconds(2));
  ASSERT_TRUE(done);
  EXPECT_FALSE(got);
  in.commit(1);
  EXPECT_EQ(in.readable(), "b");
  in.clear();
  r = p.read(in, std::chrono::seconds(2));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ec, asio::error::eof);
}

TEST(ReadInto, MoreThanOneBufferArrivesWhole) {
  Pair p;
  std::string sent;
  for (int i = 0; i < 100000; ++i) sent.push_back(static_cast<char>('a' + i % 26));
  p.send(sent);
  p.client.shutdown(tcp::socket::shutdown_send);
  std::string received;
  for (int reads = 0; reads < 1000; ++reads) {
    core::Buffer in;
    auto r = p.read(in, std::chrono::seconds(2));
    ASSERT_TRUE(r);
    if (r->ec) {
      EXPECT_EQ(r->ec, asio::error::eof);
      break;
    }
    received.append(in.readable());
  }
  EXPECT_EQ(received, sent);
}

TEST(ReadInto, CloseAbortsAWaitingRead) {
  Pair p;
  core::Buffer in;
  std::optional<boost::system::error_code> got;
  p.server->async_read_into(in, core::BufferPool::kBlockSize,
                            [&](const boost::system::error_code& ec, size_t) { got = ec; });
  p.io.run_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(got);
  p.server->close();
  p.io.restart();
  p.io.run_for(std::chrono::seconds(1));
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, asio::error::operation_aborted);
  EXPECT_FALSE(in.has_storage());
}

}  // namespace
}  // namespace sidecar::net
