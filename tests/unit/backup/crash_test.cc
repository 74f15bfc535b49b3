// kill -9 in the middle of gc and prune. The work runs in a forked child
// that is SIGKILLed part-way (gc: at a chosen chunk, from its progress
// callback; prune: after a growing delay). Wherever the kill lands, every
// backup still listed reads back whole, verify finds nothing damaged, and
// the next gc or prune finishes the job.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "backup/repository.h"
#include "test_util.h"

namespace vireo::backup {
namespace {

namespace fs = std::filesystem;
using testing::RandomChunk;
using testing::ReadDisk;
using testing::TempDir;
using testing::TestKey;
using testing::WriteBackup;

constexpr size_t kSmall = 4096;  // one small chunk per backup keeps it fast

size_t ChunkCount(const std::string& store) {
  size_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(store + "/chunks"))
    if (e.is_regular_file()) ++n;
  return n;
}

// Runs `work` in a child process and kills it with SIGKILL after `delay_us`
// (or lets `work` kill itself). Returns true when the child was killed.
template <typename Work>
bool RunAndKill(Work work, useconds_t delay_us) {
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    work();
    ::_exit(0);
  }
  if (delay_us > 0) {
    ::usleep(delay_us);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

class BackupCrash : public ::testing::TestWithParam<bool> {
 protected:
  std::optional<Key> key() const {
    return GetParam() ? std::optional<Key>(TestKey()) : std::nullopt;
  }
  std::string store() const { return tmp_.path() + "/store"; }
  std::unique_ptr<Repository> Open() {
    auto r = OpenRepository(store(), key());
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? std::move(*r) : nullptr;
  }
  // Every listed backup reads back the data it was written with.
  void ExpectWhole(Repository& repo) {
    auto list = repo.List();
    ASSERT_TRUE(list) << list.error().ToString();
    for (const auto& b : *list) {
      ASSERT_TRUE(data_.count(b.id)) << b.id;
      auto disk = ReadDisk(repo, b.id);
      ASSERT_EQ(disk.size(), 1u);
      EXPECT_EQ(disk[0], RandomChunk(data_[b.id], kSmall)) << b.id;
    }
    auto v = repo.Verify();
    ASSERT_TRUE(v) << v.error().ToString();
    EXPECT_TRUE(v->damaged.empty()) << ToJson(*v).dump();
  }
  void Populate(Repository& repo, int n) {
    for (int i = 0; i < n; ++i) {
      auto b = WriteBackup(repo, "vm", {RandomChunk(1000 + i, kSmall)});
      data_[b.id] = 1000 + i;
    }
  }
  TempDir tmp_;
  std::map<std::string, uint32_t> data_;  // backup id → chunk seed
};

TEST_P(BackupCrash, KillDuringGcKeepsEveryReferencedChunk) {
  {
    auto r = CreateRepository(store(), key());
    ASSERT_TRUE(r) << r.error().ToString();
  }
  auto repo = Open();
  Populate(*repo, 150);
  backup::PrunePolicy keep;
  keep.keep_last = 20;
  ASSERT_TRUE(repo->Prune(keep));
  ASSERT_EQ(ChunkCount(store()), 150u);  // 130 unreferenced chunks

  // Killed after removing 1, then 50 more, then 50 more garbage chunks.
  size_t before = ChunkCount(store());
  for (int kill_at : {1, 50, 50}) {
    bool killed = RunAndKill(
        [&] {
          auto child = OpenRepository(store(), key());
          if (!child) ::_exit(2);
          int calls = 0;
          (void)(*child)->Gc([&](uint64_t, uint64_t) {
            if (++calls == kill_at) ::raise(SIGKILL);
          });
        },
        0);
    ASSERT_TRUE(killed) << "gc finished before its " << kill_at << "th chunk";
    size_t now = ChunkCount(store());
    EXPECT_EQ(now, before - kill_at);
    before = now;
    auto reopened = Open();
    ExpectWhole(*reopened);
  }
  auto gc = repo->Gc();
  ASSERT_TRUE(gc) << gc.error().ToString();
  EXPECT_EQ(gc->removed_chunks, 130u - 101u);
  EXPECT_EQ(ChunkCount(store()), 20u);
  ExpectWhole(*repo);
}

TEST_P(BackupCrash, KillDuringPruneLeavesWholeBackups) {
  {
    auto r = CreateRepository(store(), key());
    ASSERT_TRUE(r) << r.error().ToString();
  }
  auto repo = Open();
  Populate(*repo, 80);
  auto all = repo->List();
  ASSERT_TRUE(all);
  std::vector<std::string> newest;
  for (size_t i = all->size() - 10; i < all->size(); ++i)
    newest.push_back((*all)[i].id);

  // Growing delays: the first kills land before or early in the prune,
  // later ones further in; whichever manifests are gone, the rest is whole.
  bool interrupted = false;
  for (useconds_t delay : {500u, 2000u, 5000u, 10000u, 20000u, 40000u}) {
    size_t listed_before = repo->List()->size();
    bool killed = RunAndKill(
        [&] {
          auto child = OpenRepository(store(), key());
          if (!child) ::_exit(2);
          backup::PrunePolicy p;
          p.keep_last = 10;
          (void)(*child)->Prune(p);
        },
        delay);
    size_t listed = repo->List()->size();
    if (killed && listed < listed_before && listed > 10) interrupted = true;
    auto reopened = Open();
    ExpectWhole(*reopened);
    auto list = reopened->List();
    ASSERT_TRUE(list);
    // The newest ten are never touched.
    for (const auto& id : newest)
      EXPECT_TRUE(std::any_of(list->begin(), list->end(),
                              [&](const BackupInfo& b) { return b.id == id; }))
          << id;
    if (listed == 10) break;
  }
  std::cout << (interrupted ? "a kill landed mid-prune\n"
                            : "no kill landed mid-prune (fast machine)\n");
  backup::PrunePolicy p;
  p.keep_last = 10;
  ASSERT_TRUE(repo->Prune(p));
  ASSERT_EQ(repo->List()->size(), 10u);
  ASSERT_TRUE(repo->Gc());
  EXPECT_EQ(ChunkCount(store()), 10u);
  ExpectWhole(*repo);
}

INSTANTIATE_TEST_SUITE_P(PlainAndEncrypted, BackupCrash, ::testing::Bool());

}  // namespace
}  // namespace vireo::backup
