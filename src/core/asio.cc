// The one translation unit that compiles Boost.Asio's implementation
// (BOOST_ASIO_SEPARATE_COMPILATION is defined for the whole build).
#include <boost/asio/impl/src.hpp>
