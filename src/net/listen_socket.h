// Listening sockets for listeners and the admin endpoint.
#pragma once

#include <string>
#include <system_error>
#include <vector>

#include "config/config.h"

namespace sidecar::net {

struct ListenSockets {
  std::vector<int> fds;     // non-blocking, close-on-exec, listening
  config::Address address;  // the bound address (the real port when 0 was asked for)
};

// Opens `count` TCP sockets listening on `address`. With `reuse_port`, all of
// them bind the same address with SO_REUSEPORT so the kernel spreads new
// connections across them (one per worker); when the port is 0, the first
// socket gets a port from the kernel and the others bind that one.
// `backlog` is the accept queue length (capped by net.core.somaxconn).
// Throws std::system_error naming the address on failure; no fd leaks.
ListenSockets open_listen_sockets(const config::Address& address, unsigned count, bool reuse_port,
                                  int backlog = 1024);

// Closes every fd in `sockets` (ignores errors).
void close_all(ListenSockets& sockets);

}  // namespace sidecar::net
