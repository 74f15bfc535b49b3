// 50 parallel API clients creating, listing and deleting: the store ends
// consistent with what the clients did.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "common/process.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

using namespace std::chrono_literals;

TEST(Concurrency, FiftyClientsCreateListDelete) {
  Daemon d;
  constexpr int kClients = 50;
  std::atomic<int> failures{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto c = d.Client();
      if (!c) {
        ++failures;
        return;
      }
      std::string mine = "c" + std::to_string(i);
      // Everyone also races for one shared name: exactly one may win.
      for (const std::string& name :
           {mine + "-a", mine + "-b", std::string("shared")}) {
        Json spec = GuestSpec(name);
        if (i % 5 == 0) spec["disks"] = Json::array({{{"size", "16M"}}});
        auto r = c->CallAndWait("POST", "/1.0/instances", spec);
        if (!r && name != "shared") {
          errors[i] = "create " + name + ": " + r.error().ToString();
          ++failures;
        }
      }
      if (!c->Call("GET", "/1.0/instances?recursion=1")) ++failures;
      auto del = c->CallAndWait("DELETE", "/1.0/instances/" + mine + "-a");
      if (!del) {
        errors[i] = "delete: " + del.error().ToString();
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (!e.empty()) ADD_FAILURE() << e;
  EXPECT_EQ(failures.load(), 0);

  auto c = d.Client();
  auto list = c->Call("GET", "/1.0/instances?recursion=1");
  ASSERT_TRUE(list);
  std::set<std::string> names;
  for (const auto& inst : *list) names.insert(inst["name"].get<std::string>());
  std::set<std::string> expected = {"shared"};
  for (int i = 0; i < kClients; ++i)
    expected.insert("c" + std::to_string(i) + "-b");
  EXPECT_EQ(names, expected);
  EXPECT_EQ(list->size(), expected.size()) << "duplicate rows";

  // Every remaining disk belongs to a listed instance, and nothing else is
  // on disk: deleted instances left no files.
  std::set<std::string> disk_paths;
  for (const auto& inst : *list)
    for (const auto& disk : inst["config"]["disks"])
      disk_paths.insert(disk["path"]);
  std::set<std::string> files;
  for (auto& e : std::filesystem::recursive_directory_iterator(
           d.dir() + "/storage/default"))
    if (e.is_regular_file()) files.insert(e.path().string());
  EXPECT_EQ(files, disk_paths);

  // The database agrees after a daemon restart too.
  c.reset();
  d.Stop();
  auto check =
      RunCommand({"sqlite3", d.dir() + "/vireo.db", "PRAGMA integrity_check;"});
  ASSERT_TRUE(check);
  EXPECT_EQ(check->out, "ok\n");
  d.Start();
  c = d.Client();
  auto again = c->Call("GET", "/1.0/instances");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), expected.size());
}

}  // namespace
}  // namespace vireo::e2e
