#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <thread>

#include "api_test_env.h"

namespace vireo::testing {
namespace {

using Local = net::local::stream_protocol;

// Stands in for QEMU: marks an instance running in the store and listens on
// its serial socket, so the console relay runs without booting a VM.
class ConsoleTest : public ApiServerTest {
 protected:
  void SetUp() override {
    ApiServerTest::SetUp();
    if (HasFatalFailure()) return;
    Reply created = Unix(http::verb::post, "/1.0/instances",
                         R"({"name":"vm3","disks":[{"size":"1M"}],"nics":0})");
    ASSERT_EQ(created.status, 202u) << created.body;
    ASSERT_EQ(WaitOp(created.json).json["metadata"]["status"], "Success");
    SetState(InstanceState::kRunning);
    auto paths = instances_->Paths("vm3");
    ASSERT_TRUE(paths);
    paths_ = *paths;
    std::filesystem::create_directories(paths_.dir);
    std::ofstream(paths_.console_log) << "line one\nline two\n";
  }
  void TearDown() override {
    SetState(InstanceState::kStopped);
    ApiServerTest::TearDown();
  }

  void SetState(InstanceState state) {
    auto inst = store_->GetInstance("vm3");
    if (!inst) return;
    inst->status.state = state;
    ASSERT_TRUE(store_->UpdateInstance(*inst));
  }

  using Ws = websocket::stream<Local::socket>;
  std::unique_ptr<Ws> OpenConsole(net::io_context& ioc, beast::error_code& ec,
                                  websocket::response_type* res = nullptr) {
    auto ws = std::make_unique<Ws>(ioc);
    ws->next_layer().connect(Local::endpoint(socket_path_));
    websocket::response_type ignored;
    ws->handshake(res ? *res : ignored, "localhost",
                  "/1.0/instances/vm3/console", ec);
    return ws;
  }

  VmPaths paths_;
};

TEST_F(ConsoleTest, PlainGetReturnsTheLogOrItsTail) {
  Reply all = Unix(http::verb::get, "/1.0/instances/vm3/console");
  ASSERT_EQ(all.status, 200u);
  EXPECT_EQ(all.body, "line one\nline two\n");
  Reply tail = Unix(http::verb::get, "/1.0/instances/vm3/console?tail=9");
  EXPECT_EQ(tail.body, "line two\n");
  EXPECT_EQ(Unix(http::verb::get, "/1.0/instances/vm3/console?tail=x").status,
            400u);
}

TEST_F(ConsoleTest, WebSocketRelaysBothWaysAndIsExclusive) {
  net::io_context ioc;
  Local::acceptor serial(ioc, Local::endpoint(paths_.serial_socket));

  beast::error_code ec;
  auto ws = OpenConsole(ioc, ec);
  ASSERT_FALSE(ec) << ec.message();
  Local::socket vm(ioc);
  serial.accept(vm);

  // Client -> VM.
  ws->binary(true);
  ws->write(net::buffer(std::string("ls\n")));
  std::string got(3, '\0');
  net::read(vm, net::buffer(got));
  EXPECT_EQ(got, "ls\n");

  // VM -> client, as binary frames.
  net::write(vm, net::buffer(std::string("bin etc\n")));
  beast::flat_buffer buffer;
  ws->read(buffer);
  EXPECT_TRUE(ws->got_binary());
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), "bin etc\n");

  // QEMU serves one client: a second console is refused while attached.
  websocket::response_type res;
  beast::error_code ec2;
  auto second = OpenConsole(ioc, ec2, &res);
  EXPECT_TRUE(ec2);
  EXPECT_EQ(res.result_int(), 409u);

  // The VM side going away closes the WebSocket.
  vm.close();
  buffer.clear();
  beast::error_code read_ec;
  ws->read(buffer, read_ec);
  EXPECT_EQ(read_ec, websocket::error::closed);

  // The console is free again once the server has wound the session down
  // (just after the client saw the close).
  bool reattached = false;
  for (int i = 0; i < 40 && !reattached; ++i) {
    beast::error_code ec3;
    auto third = OpenConsole(ioc, ec3);
    reattached = !ec3;
    if (!reattached) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(reattached);
}

TEST_F(ConsoleTest, UnreachableSerialSocketIs503) {
  net::io_context ioc;
  websocket::response_type res;
  beast::error_code ec;
  auto ws = OpenConsole(ioc, ec, &res);
  EXPECT_TRUE(ec);
  EXPECT_EQ(res.result_int(), 503u);
}

TEST_F(ConsoleTest, ClientClosingEndsTheRelay) {
  net::io_context ioc;
  Local::acceptor serial(ioc, Local::endpoint(paths_.serial_socket));
  beast::error_code ec;
  auto ws = OpenConsole(ioc, ec);
  ASSERT_FALSE(ec);
  Local::socket vm(ioc);
  serial.accept(vm);
  ws->close(websocket::close_code::normal);
  // The relay hangs up on the VM side too, so QEMU can take the next client.
  char c;
  beast::error_code vm_ec;
  vm.read_some(net::buffer(&c, 1), vm_ec);
  EXPECT_EQ(vm_ec, net::error::eof);
}

}  // namespace
}  // namespace vireo::testing
