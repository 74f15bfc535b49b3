// Graphical and serial consoles through vireod: screenshots, one-time
// console secrets, the relay WebSocket spoken to as a raw RFB client.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;

struct Ticket {
  std::string id;
  std::string secret;
};

// POST /1.0/instances/{name}/console; the HTTP status and, on 202, the ticket.
int OpenConsole(ApiClient& c, const std::string& name, const Json& body,
                Ticket* ticket = nullptr) {
  auto r = c.Request("POST", "/1.0/instances/" + name + "/console", body);
  if (!r) return -1;
  if (r->status == 202 && ticket != nullptr) {
    Json j = Json::parse(r->body);
    ticket->id = j["metadata"]["id"].get<std::string>();
    ticket->secret = j.value("secret", "");
  }
  return r->status;
}

std::string WsTarget(const Ticket& t, const std::string& secret) {
  return "/1.0/operations/" + t.id + "/websocket?secret=" + secret;
}

uint32_t Be32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) |
         (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}
uint16_t Be16(const std::string& s, size_t at) {
  return static_cast<uint16_t>((uint8_t(s[at]) << 8) | uint8_t(s[at + 1]));
}

// A minimal RFB 3.8 client over the console WebSocket.
class RfbClient {
 public:
  explicit RfbClient(std::unique_ptr<WebSocket> ws) : ws_(std::move(ws)) {}

  // n bytes, however the server cut them into frames; "" on failure.
  std::string Take(size_t n) {
    while (buf_.size() < n) {
      auto msg = ws_->ReadFor(20s);
      if (!msg) return "";
      buf_ += *msg;
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }
  bool Send(const std::string& bytes) { return bool(ws_->Write(bytes, true)); }

  // Version, security None, ClientInit(shared); fills width and height.
  ::testing::AssertionResult Handshake() {
    std::string version = Take(12);
    if (version != "RFB 003.008\n")
      return ::testing::AssertionFailure() << "version '" << version << "'";
    Send("RFB 003.008\n");
    std::string count = Take(1);
    if (count.empty() || count[0] == 0)
      return ::testing::AssertionFailure() << "no security types";
    std::string types = Take(uint8_t(count[0]));
    if (types.find('\x01') == std::string::npos)
      return ::testing::AssertionFailure() << "security None not offered";
    Send(std::string("\x01", 1));
    std::string result = Take(4);
    if (result.size() != 4 || Be32(result, 0) != 0)
      return ::testing::AssertionFailure() << "security handshake failed";
    Send(std::string("\x01", 1));  // ClientInit, shared
    std::string init = Take(24);
    if (init.size() != 24) return ::testing::AssertionFailure() << "no init";
    width = Be16(init, 0);
    height = Be16(init, 2);
    Take(Be32(init, 20));  // desktop name
    return ::testing::AssertionSuccess();
  }

  // FramebufferUpdateRequest (full); true when a FramebufferUpdate arrives.
  bool RequestUpdate() {
    std::string req("\x03\x00", 2);
    req += std::string("\0\0\0\0", 4);
    req += char(width >> 8);
    req += char(width & 0xff);
    req += char(height >> 8);
    req += char(height & 0xff);
    if (!Send(req)) return false;
    std::string type = Take(1);
    return type.size() == 1 && type[0] == 0;
  }

  bool Key(uint32_t keysym, bool down) {
    std::string ev("\x04", 1);
    ev += char(down ? 1 : 0);
    ev += std::string("\0\0", 2);
    for (int shift = 24; shift >= 0; shift -= 8) ev += char(keysym >> shift);
    return Send(ev);
  }
  // Types ASCII text on a US keyboard (shift for capitals and '>').
  bool Type(const std::string& text) {
    for (char ch : text) {
      const bool shifted =
          (ch >= 'A' && ch <= 'Z') ||
          std::string("><|&!\"_").find(ch) != std::string::npos;
      constexpr uint32_t kShift = 0xffe1;
      if (shifted && !Key(kShift, true)) return false;
      if (!Key(uint8_t(ch), true) || !Key(uint8_t(ch), false)) return false;
      if (shifted && !Key(kShift, false)) return false;
    }
    return true;
  }

  int width = 0;
  int height = 0;

 private:
  std::unique_ptr<WebSocket> ws_;
  std::string buf_;
};

// PNG: signature, then IHDR with width and height.
bool PngSize(const std::string& png, int* w, int* h) {
  if (png.size() < 24 || png.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0)
    return false;
  *w = int(Be32(png, 16));
  *h = int(Be32(png, 20));
  return true;
}

// One daemon and one VGA guest for the suite: booting under TCG is slow.
class Console : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon();
    client_ = daemon_->Client().release();
    Json spec = VgaGuestSpec("vga1");
    spec["start"] = true;
    auto r = client_->CallAndWait("POST", "/1.0/instances", spec);
    ASSERT_TRUE(r) << r.error().ToString();
    ASSERT_TRUE(WaitForLog(*client_, "vga1", "VIREO-GUEST-UP", 120s))
        << ConsoleLog(*client_, "vga1");
    // Let the shells start and print their prompts.
    std::this_thread::sleep_for(2s);
  }
  static void TearDownTestSuite() {
    delete client_;
    delete daemon_;
    client_ = nullptr;
    daemon_ = nullptr;
  }
  static Daemon* daemon_;
  static ApiClient* client_;
};
Daemon* Console::daemon_ = nullptr;
ApiClient* Console::client_ = nullptr;

TEST_F(Console, ScreenshotIsPngWithGuestOutput) {
  auto r = client_->Request("GET", "/1.0/instances/vga1/screenshot");
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->content_type, "image/png");
  int w = 0, h = 0;
  ASSERT_TRUE(PngSize(r->body, &w, &h));
  EXPECT_GT(w, 0);
  EXPECT_GT(h, 0);
  // A blank screen compresses to almost nothing; text does not.
  std::set<char> distinct(r->body.begin() + 40, r->body.end());
  EXPECT_GT(r->body.size(), 2000u);
  EXPECT_GT(distinct.size(), 64u);

  // The CLI saves the same kind of file.
  const std::string file = daemon_->dir() + "/shot.png";
  std::string out, err;
  ASSERT_EQ(daemon_->Cli({"screenshot", "vga1", file}, &out, &err), 0) << err;
}

TEST_F(Console, TwoRfbViewersShareTheScreen) {
  auto shot = client_->Request("GET", "/1.0/instances/vga1/screenshot");
  ASSERT_TRUE(shot && shot->status == 200);
  int w = 0, h = 0;
  ASSERT_TRUE(PngSize(shot->body, &w, &h));

  std::vector<std::unique_ptr<RfbClient>> viewers;
  std::vector<Ticket> tickets;
  for (int i = 0; i < 2; ++i) {
    Ticket t;
    ASSERT_EQ(OpenConsole(*client_, "vga1", {{"type", "vga"}}, &t), 202);
    ASSERT_FALSE(t.secret.empty());
    auto ws = client_->OpenWebSocket(WsTarget(t, t.secret));
    ASSERT_TRUE(ws) << ws.error().ToString();
    viewers.push_back(std::make_unique<RfbClient>(std::move(*ws)));
    tickets.push_back(t);
  }
  for (auto& v : viewers) {
    ASSERT_TRUE(v->Handshake());
    EXPECT_EQ(v->width, w);
    EXPECT_EQ(v->height, h);
  }
  for (auto& v : viewers) EXPECT_TRUE(v->RequestUpdate());

  // The secret never shows in the operation as others see it.
  auto op = client_->Call("GET", "/1.0/operations/" + tickets[0].id);
  ASSERT_TRUE(op);
  EXPECT_EQ(op->dump().find(tickets[0].secret), std::string::npos);
  EXPECT_EQ((*op)["class"], "websocket");
  EXPECT_EQ((*op)["metadata"]["type"], "vga");

  // Closing the viewer ends its operation successfully.
  viewers.clear();
  auto done =
      client_->WaitOperation("/1.0/operations/" + tickets[0].id, *op, 30s);
  EXPECT_TRUE(done) << done.error().ToString();
}

TEST_F(Console, KeysTypedInVgaConsoleRunInTheGuest) {
  Ticket t;
  ASSERT_EQ(OpenConsole(*client_, "vga1", {{"type", "vga"}}, &t), 202);
  auto ws = client_->OpenWebSocket(WsTarget(t, t.secret));
  ASSERT_TRUE(ws) << ws.error().ToString();
  RfbClient rfb(std::move(*ws));
  ASSERT_TRUE(rfb.Handshake());
  ASSERT_TRUE(rfb.Type("echo VGA-TYPED > /dev/ttyS0"));
  ASSERT_TRUE(rfb.Key(0xff0d, true) && rfb.Key(0xff0d, false));  // Return
  EXPECT_TRUE(WaitForLog(*client_, "vga1", "VGA-TYPED", 60s))
      << ConsoleLog(*client_, "vga1");
}

TEST_F(Console, SerialConsoleOverTicket) {
  Ticket t;
  ASSERT_EQ(OpenConsole(*client_, "vga1", {{"type", "serial"}}, &t), 202);
  auto ws = client_->OpenWebSocket(WsTarget(t, t.secret));
  ASSERT_TRUE(ws) << ws.error().ToString();
  ASSERT_TRUE((*ws)->Write("\recho $((40+2))SERIAL-OK\r", true));
  std::string seen;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (seen.find("42SERIAL-OK") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    auto msg = (*ws)->ReadFor(30s);
    ASSERT_TRUE(msg) << msg.error().ToString() << " after: " << seen;
    seen += *msg;
  }
  EXPECT_NE(seen.find("42SERIAL-OK"), std::string::npos) << seen;
}

TEST_F(Console, BadSecretsAreRefused) {
  Ticket t;
  ASSERT_EQ(OpenConsole(*client_, "vga1", {{"type", "vga"}}, &t), 202);
  std::string wrong = t.secret;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  auto bad = client_->OpenWebSocket(WsTarget(t, wrong));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kPermissionDenied)
      << bad.error().ToString();
  auto none = client_->OpenWebSocket("/1.0/operations/" + t.id + "/websocket");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kPermissionDenied);

  // The right secret still works once (a wrong guess does not burn it)...
  auto good = client_->OpenWebSocket(WsTarget(t, t.secret));
  ASSERT_TRUE(good) << good.error().ToString();
  // ... and only once.
  auto again = client_->OpenWebSocket(WsTarget(t, t.secret));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kPermissionDenied);
}

TEST_F(Console, BadRequests) {
  EXPECT_EQ(OpenConsole(*client_, "nope", {{"type", "vga"}}), 404);
  EXPECT_EQ(OpenConsole(*client_, "vga1", {{"type", "spice"}}), 400);
  EXPECT_EQ(OpenConsole(*client_, "vga1", {{"kind", "vga"}}), 400);
  Json stopped = GuestSpec("stopped1");
  auto created = client_->CallAndWait("POST", "/1.0/instances", stopped);
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(OpenConsole(*client_, "stopped1", {{"type", "vga"}}), 409);
  auto shot = client_->Request("GET", "/1.0/instances/stopped1/screenshot");
  ASSERT_TRUE(shot);
  EXPECT_EQ(shot->status, 409);
}

TEST_F(Console, OversizedFrameClosesTheConnection) {
  Ticket t;
  ASSERT_EQ(OpenConsole(*client_, "vga1", {{"type", "vga"}}, &t), 202);
  auto ws = client_->OpenWebSocket(WsTarget(t, t.secret));
  ASSERT_TRUE(ws) << ws.error().ToString();
  // Swallow the server's RFB greeting first.
  auto greeting = (*ws)->ReadFor(20s);
  ASSERT_TRUE(greeting);
  (void)(*ws)->Write(std::string((1 << 20) + 100, 'x'), true);
  auto next = (*ws)->ReadFor(20s);
  ASSERT_FALSE(next);
  EXPECT_EQ(next.error().code(), ErrorCode::kUnavailable)
      << next.error().ToString();
}

TEST(ConsoleTicketExpiry, ExpiredSecretIsRefused) {
  Daemon d({"--console-ticket-ttl-ms", "300"});
  auto c = d.Client();
  ASSERT_TRUE(c);
  Json spec = GuestSpec("exp1");
  spec["start"] = true;
  auto r = c->CallAndWait("POST", "/1.0/instances", spec);
  ASSERT_TRUE(r) << r.error().ToString();
  Ticket t;
  ASSERT_EQ(OpenConsole(*c, "exp1", {{"type", "serial"}}, &t), 202);
  std::this_thread::sleep_for(800ms);
  auto ws = c->OpenWebSocket(WsTarget(t, t.secret));
  ASSERT_FALSE(ws);
  EXPECT_EQ(ws.error().code(), ErrorCode::kPermissionDenied);
  // The unused ticket's operation failed.
  auto op = c->Call("GET", "/1.0/operations/" + t.id);
  ASSERT_TRUE(op);
  EXPECT_EQ((*op)["status"], "Failure") << op->dump();
}

TEST(ConsoleUrl, VgaPrintsWebUiAddress) {
  Daemon d;
  std::string out, err;
  ASSERT_EQ(d.Cli({"console", "anyvm", "--vga"}, &out, &err), 0) << err;
  EXPECT_EQ(out, "https://127.0.0.1:" + std::to_string(d.https_port()) +
                     "/#/instances/anyvm/console\n");
}

}  // namespace
}  // namespace vireo::e2e
