#include "harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/process.h"

namespace vireo::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const GuestKit& GuestKit::Get() {
  static GuestKit kit = [] {
    std::string dir;
    if (const char* env = std::getenv("VIREO_GUEST_KIT"))
      dir = env;
    else
      dir = std::string(std::getenv("HOME") ? std::getenv("HOME") : "/root") +
            "/.cache/vireo/guest-kit";
    GuestKit k;
    k.kernel =
        fs::exists(dir + "/vmlinux") ? dir + "/vmlinux" : dir + "/vmlinuz";
    k.initrd = dir + "/initrd.img";
    k.data_disk = dir + "/data.qcow2";
    k.vga_kernel = dir + "/vmlinuz";
    if (!fs::exists(k.kernel) || !fs::exists(k.initrd)) {
      fprintf(stderr, "guest kit missing in %s: run scripts/guest-kit\n",
              dir.c_str());
      std::abort();
    }
    return k;
  }();
  return kit;
}

Daemon::Daemon(std::vector<std::string> extra_args, std::string netns)
    : extra_args_(std::move(extra_args)), netns_(std::move(netns)) {
  char tmpl[] = "/tmp/vt-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  socket_ = dir_ + "/vireo.sock";
  Start();
}

Daemon::~Daemon() {
  // Best effort: force-delete every instance so no QEMU outlives the test.
  if (pid_ > 0) {
    if (auto c = Client()) {
      if (auto list = c->Call("GET", "/1.0/instances")) {
        for (const auto& url : *list) {
          std::string name =
              url.get<std::string>().substr(strlen("/1.0/instances/"));
          (void)c->CallAndWait("DELETE", "/1.0/instances/" + name + "?force=1",
                               {}, 30s);
        }
      }
    }
    Stop(/*hard=*/false);
  }
  // Safety net for QEMUs of a test that crashed mid-way.
  (void)RunCommand({"pkill", "-9", "-f", dir_ + "/run/"});
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void Daemon::Start() {
  // A second vireod on the same data dir fails its lock and exits, and the
  // first keeps serving the socket: a test would then "restart" or kill the
  // wrong process without noticing.
  if (pid_ > 0) {
    ADD_FAILURE() << "Daemon::Start: vireod already running (pid " << pid_
                  << ")";
    return;
  }
  std::vector<std::string> argv = {std::string(VIREO_BIN_DIR) + "/vireod",
                                   "--data-dir",
                                   dir_,
                                   "--socket",
                                   socket_,
                                   "--https",
                                   "127.0.0.1:0",
                                   "--log-level",
                                   "debug",
                                   "--stop-timeout",
                                   "20"};
  // Tests must not create bridges on the host unless they ask to.
  if (std::find(extra_args_.begin(), extra_args_.end(), "--default-network") ==
      extra_args_.end())
    argv.insert(argv.end(), {"--default-network", "none"});
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  if (!netns_.empty())  // ip execs vireod, so the pid stays vireod's
    argv.insert(argv.begin(), {"ip", "netns", "exec", netns_});
  SpawnOptions so;
  so.argv = argv;
  so.stdout_path = dir_ + "/vireod.log";
  so.stderr_path = dir_ + "/vireod.log";
  auto p = Process::Spawn(so);
  ASSERT_TRUE(p) << p.error().ToString();
  pid_ = (*p)->pid();
  // Wait until the API answers.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto c = ApiClient::Create({socket_, "", ""})) {
      if (auto r = (*c)->Call("GET", "/1.0"); r) break;
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream log(dir_ + "/vireod.log");
      std::stringstream ss;
      ss << log.rdbuf();
      FAIL() << "vireod exited at start:\n" << ss.str();
    }
    std::this_thread::sleep_for(50ms);
  }
  std::ifstream log(dir_ + "/vireod.log");
  std::string line;
  std::regex port_re("HTTPS API on port ([0-9]+)");
  while (std::getline(log, line)) {
    std::smatch m;
    if (std::regex_search(line, m, port_re)) https_port_ = std::stoi(m[1]);
  }
  // The Process handle is gone; vireod stays our child and is reaped in Stop.
}

void Daemon::Stop(bool hard) {
  if (pid_ <= 0) return;
  ::kill(pid_, hard ? SIGKILL : SIGTERM);
  int status;
  for (int i = 0; i < 200; ++i) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(50ms);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::unique_ptr<ApiClient> Daemon::Client() const {
  auto c = ApiClient::Create({socket_, "", ""});
  if (!c) return nullptr;
  return std::move(*c);
}

int Daemon::Cli(const std::vector<std::string>& args, std::string* out,
                std::string* err) const {
  std::vector<std::string> argv = {std::string(VIREO_BIN_DIR) + "/vireo",
                                   "--socket", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, std::chrono::seconds(120));
  if (!r) {
    if (err) *err = r.error().ToString();
    return -1;
  }
  if (out) *out = r->out;
  if (err) *err = r->err;
  return r->status.code;
}

Json GuestSpec(const std::string& name, const std::string& extra_cmdline) {
  const auto& kit = GuestKit::Get();
  std::string cmdline = "console=ttyS0 quiet";
  if (!extra_cmdline.empty()) cmdline += " " + extra_cmdline;
  return {{"name", name},         {"cpus", 1},
          {"memory", "256M"},     {"kernel", kit.kernel},
          {"initrd", kit.initrd}, {"cmdline", cmdline}};
}

Json VgaGuestSpec(const std::string& name, const std::string& extra_cmdline) {
  const auto& kit = GuestKit::Get();
  std::string cmdline = "console=tty0 console=ttyS0";
  if (!extra_cmdline.empty()) cmdline += " " + extra_cmdline;
  return {{"name", name},         {"cpus", 1},
          {"memory", "256M"},     {"kernel", kit.vga_kernel},
          {"initrd", kit.initrd}, {"cmdline", cmdline}};
}

std::string ConsoleLog(ApiClient& c, const std::string& name) {
  auto r = c.Request("GET", "/1.0/instances/" + name + "/console");
  if (!r || r->status != 200) return "";
  return r->body;
}

int CountOccurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

bool WaitForLog(ApiClient& c, const std::string& name,
                const std::string& marker, std::chrono::seconds timeout,
                int count) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (CountOccurrences(ConsoleLog(c, name), marker) >= count) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::optional<std::string> GuestRun(ApiClient& c, const std::string& name,
                                    const std::string& command,
                                    std::chrono::seconds timeout) {
  // Markers are built from a nonce by the guest's shell, so the echo of the
  // typed command never matches them.
  static std::atomic<int> counter{0};
  std::string nonce =
      std::to_string(::getpid()) + "x" + std::to_string(counter.fetch_add(1));
  std::string begin = "VIREO-RUN-BEGIN-" + nonce;
  std::string end = "VIREO-RUN-END-" + nonce;
  // "$(echo N)" makes the echoed input line differ from the printed markers.
  std::string typed = "echo VIREO-RUN-BEGIN-$(echo " + nonce + "); " + command +
                      "; echo VIREO-RUN-END-$(echo " + nonce + ")\r";
  auto ws = c.OpenWebSocket("/1.0/instances/" + name + "/console");
  if (!ws) return std::nullopt;
  if (!(*ws)->Write(typed)) return std::nullopt;
  // Stay attached until the output is in: QEMU drops input still queued
  // behind the guest UART's small FIFO when the console client goes away.
  struct Closer {
    WebSocket* ws;
    ~Closer() { ws->Close(); }
  } closer{ws->get()};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = ConsoleLog(c, name);
    size_t b = log.rfind(begin);
    if (b != std::string::npos) {
      size_t e = log.find(end, b);
      if (e != std::string::npos) {
        size_t start = log.find('\n', b);
        if (start == std::string::npos || start > e) start = b + begin.size();
        return log.substr(start + 1, e - start - 1);
      }
    }
    std::this_thread::sleep_for(100ms);
  }
  return std::nullopt;
}

::testing::AssertionResult CreateBackupStore(const Daemon& d,
                                             const std::string& name,
                                             const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec)
    return ::testing::AssertionFailure()
           << "mkdir " << path << ": " << ec.message();
  std::string out, err;
  if (d.Cli({"backup-store", "create", name, path}, &out, &err) != 0)
    return ::testing::AssertionFailure()
           << "vireo backup-store create " << name << ": " << err;
  return ::testing::AssertionSuccess();
}

std::string ShellOut(const std::string& cmd) {
  auto r = RunCommand({"sh", "-c", cmd}, std::chrono::seconds(300));
  EXPECT_TRUE(r && r->status.success())
      << cmd << ": " << (r ? r->err : r.error().ToString());
  return r ? r->out : "";
}

Json CliJson(const Daemon& d, const std::vector<std::string>& args) {
  std::string out, err;
  std::vector<std::string> a = {"--json"};
  a.insert(a.end(), args.begin(), args.end());
  int rc = d.Cli(a, &out, &err);
  EXPECT_EQ(rc, 0) << err;
  Json j = Json::parse(out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << out;
  return j.is_object() ? j : Json::object();
}

Json GetInstance(ApiClient& c, const std::string& name) {
  auto r = c.Call("GET", "/1.0/instances/" + name);
  return r ? *r : Json();
}

bool WaitForState(ApiClient& c, const std::string& name,
                  const std::string& state, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Json j = GetInstance(c, name);
    if (j.is_object() && j["status"]["state"] == state) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  // A zombie is not alive.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(stat, s);
  auto rp = s.rfind(')');
  return rp != std::string::npos && rp + 2 < s.size() && s[rp + 2] != 'Z';
}

int ProcessUid(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Uid:", 0) == 0) return std::stoi(line.substr(4));
  return -1;
}

bool ListensOnTcp(pid_t pid) {
  std::set<std::string> inodes;
  std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (auto& e : fs::directory_iterator(fd_dir)) {
    std::error_code ec;
    auto target = fs::read_symlink(e.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0)
      inodes.insert(target.substr(8, target.size() - 9));
  }
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream f(table);
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      std::istringstream in(line);
      std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
      in >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >>
          timeout >> inode;
      if (st == "0A" && inodes.count(inode)) return true;
    }
  }
  return false;
}

std::string ProcessCmdline(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
  std::string s((std::istreambuf_iterator<char>(f)),
                std::istreambuf_iterator<char>());
  for (auto& c : s)
    if (c == '\0') c = ' ';
  return s;
}

}  // namespace vireo::e2e
