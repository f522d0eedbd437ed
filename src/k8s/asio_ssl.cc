// Boost.Asio's SSL implementation, compiled once (BOOST_ASIO_SEPARATE_COMPILATION,
// as src/core/asio.cc does for the rest of Asio). When src/tls/ compiles this
// too, this file goes: two copies would be duplicate symbols.
#include <boost/asio/ssl/impl/src.hpp>
