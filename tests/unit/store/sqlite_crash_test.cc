// A store killed mid-write must reopen clean: every committed call present,
// nothing half-written.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "store/sqlite/sqlite_store.h"

namespace vireo {
namespace {

namespace fs = std::filesystem;

Instance Numbered(int n) {
  Instance inst;
  char id[17];
  std::snprintf(id, sizeof(id), "%016x", n);
  inst.id = id;
  inst.created_at = n;
  inst.config.name = "vm-" + std::to_string(n);
  // A large-ish config spreads rows over many pages, so a kill lands
  // mid-page-write more often.
  inst.config.cmdline = std::string(2000, 'c');
  inst.config.disks = {
      {"root", "/pool/" + inst.id + "/root.qcow2", 1ull << 30, ""}};
  return inst;
}

// Child: writes until killed. Reports progress through a pipe so the parent
// kills it mid-stream, not before it starts. Never returns.
[[noreturn]] void WriteForever(const std::string& db_path, int progress_fd) {
  auto store = SqliteStore::Open(db_path);
  if (!store) ::_exit(2);
  for (int n = 0;; ++n) {
    if (!(*store)->CreateInstance(Numbered(n))) ::_exit(3);
    Instance inst = Numbered(n);
    inst.status.state = InstanceState::kRunning;
    inst.status.pid = n;
    if (!(*store)->UpdateInstance(inst)) ::_exit(4);
    if (n >= 20 && !(*store)->DeleteInstance(Numbered(n - 20).name()))
      ::_exit(5);
    if (n == 50) (void)!::write(progress_fd, "x", 1);
  }
}

TEST(SqliteCrashTest, KilledWriterLeavesConsistentDatabase) {
  std::string tmpl =
      (fs::temp_directory_path() / "vireo-crash-XXXXXX").string();
  std::string dir = ::mkdtemp(tmpl.data());
  std::string db_path = dir + "/vireo.db";
  {
    // Create the schema first so the child only does row writes.
    auto store = SqliteStore::Open(db_path);
    ASSERT_TRUE(store) << store.error().ToString();
  }
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      WriteForever(db_path, fds[1]);
    }
    ::close(fds[1]);
    char c;
    ASSERT_EQ(::read(fds[0], &c, 1), 1) << "writer died before making progress";
    ::close(fds[0]);
    // Let it run a little more with writes in flight, then kill hard.
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + 40 * round));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "writer exited early with " << WEXITSTATUS(status);

    auto store = SqliteStore::Open(db_path);
    ASSERT_TRUE(store) << store.error().ToString();
    EXPECT_TRUE((*store)->CheckIntegrity());
    auto list = (*store)->ListInstances();  // fails if any row does not parse
    ASSERT_TRUE(list) << list.error().ToString();
    EXPECT_FALSE(list->empty());
    // The writer keeps at most the last 21 rows alive at any commit point.
    EXPECT_LE(list->size(), 21u);
    // Clear the table so the next round's names start fresh.
    for (const auto& inst : *list)
      ASSERT_TRUE((*store)->DeleteInstance(inst.name()));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace vireo
