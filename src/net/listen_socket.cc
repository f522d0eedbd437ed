#include "net/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace sidecar::net {
namespace {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_INET;
};

SockAddr to_sockaddr(const config::Address& a) {
  SockAddr s;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&s.storage);
  if (inet_pton(AF_INET, a.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(a.port);
    s.len = sizeof(sockaddr_in);
    s.family = AF_INET;
    return s;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&s.storage);
  if (inet_pton(AF_INET6, a.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(a.port);
    s.len = sizeof(sockaddr_in6);
    s.family = AF_INET6;
    return s;
  }
  throw std::system_error(EINVAL, std::generic_category(),
                          fmt::format("not an IP address: {}", a.host));
}

[[noreturn]] void fail(int err, const config::Address& a, const char* what) {
  throw std::system_error(err, std::generic_category(), fmt::format("{} {}", what, a.to_string()));
}

int open_one(const SockAddr& sa, const config::Address& a, bool reuse_port, int backlog) {
  int fd = ::socket(sa.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(errno, a, "socket for");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    int err = errno;
    ::close(fd);
    fail(err, a, "SO_REUSEPORT on");
  }
  if (sa.family == AF_INET6) {
    // "[::]" means IPv6 only; listen on 0.0.0.0 as well for both.
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa.storage), sa.len) != 0) {
    int err = errno;
    ::close(fd);
    fail(err, a, "cannot bind");
  }
  if (::listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    fail(err, a, "cannot listen on");
  }
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

}  // namespace

ListenSockets open_listen_sockets(const config::Address& address, unsigned count, bool reuse_port,
                                  int backlog) {
  ListenSockets out;
  out.address = address;
  SockAddr sa = to_sockaddr(address);
  try {
    for (unsigned i = 0; i < count; ++i) {
      const int fd = open_one(sa, out.address, reuse_port, backlog);
      out.fds.push_back(fd);
      if (i == 0 && address.port == 0) {
        out.address.port = bound_port(fd);
        sa = to_sockaddr(out.address);
      }
    }
  } catch (...) {
    close_all(out);
    throw;
  }
  return out;
}

void close_all(ListenSockets& sockets) {
  for (int fd : sockets.fds) ::close(fd);
  sockets.fds.clear();
}

}  // namespace sidecar::net
