#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include "proxy/stream.h"

namespace sidecar::proxy {
namespace {

using boost::asio::ip::make_address;
using boost::asio::ip::tcp;

struct Formatted {
  std::string ip;
  std::string address;
};

Formatted format(const char* ip, uint16_t port, Formatted f = {}) {
  DownstreamInfo info;
  info.peer = tcp::endpoint(make_address(ip), port);
  info.format_peer(f.ip, f.address);
  return f;
}

TEST(DownstreamInfo, FormatsThePeerAsPeerIpAndPeerAddressDo) {
  for (const auto& [ip, port] :
       std::vector<std::pair<const char*, uint16_t>>{{"127.0.0.1", 54321},
                                                     {"0.0.0.0", 0},
                                                     {"255.255.255.255", 65535},
                                                     {"10.20.3.100", 80},
                                                     {"::1", 8080},
                                                     {"2001:db8::7", 1}}) {
    DownstreamInfo info;
    info.peer = tcp::endpoint(make_address(ip), port);
    const Formatted f = format(ip, port);
    EXPECT_EQ(f.ip, info.peer_ip()) << ip;
    EXPECT_EQ(f.address, info.peer_address()) << ip;
  }
  EXPECT_EQ(format("10.20.3.100", 80).address, "10.20.3.100:80");
  EXPECT_EQ(format("::1", 8080).address, "[::1]:8080");
}

TEST(DownstreamInfo, FormatPeerReplacesWhatTheStringsHeld) {
  // The stream's strings are reused from one request to the next.
  const Formatted longer = format("255.255.255.255", 65535);
  const Formatted f = format("1.2.3.4", 5, longer);
  EXPECT_EQ(f.ip, "1.2.3.4");
  EXPECT_EQ(f.address, "1.2.3.4:5");
}

}  // namespace
}  // namespace sidecar::proxy
