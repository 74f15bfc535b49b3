#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

namespace vireo {

// Each connection owns an io_context run by its own thread. This runs one
// asynchronous operation to completion on it, which gives synchronous code
// the timeouts that only Beast's asynchronous operations have.
// initiate(handler) must start exactly one operation that calls handler.
template <class Initiate>
boost::system::error_code RunAsync(boost::asio::io_context& ioc,
                                   Initiate&& initiate) {
  boost::system::error_code result = boost::asio::error::operation_aborted;
  bool done = false;
  initiate([&result, &done](boost::system::error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  ioc.restart();
  while (!done) {
    if (ioc.run_one() == 0) break;  // no work left: the handler was dropped
  }
  return result;
}

}  // namespace vireo
