#include <gtest/gtest.h>
#include <signal.h>

#include "common/error.h"
#include "common/json.h"
#include "common/process.h"
#include "common/units.h"

namespace vireo {
namespace {

using namespace std::chrono_literals;

TEST(UnitsTest, ParseSize) {
  EXPECT_EQ(*ParseSize("512M"), 512ull << 20);
  EXPECT_EQ(*ParseSize("2G"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1GiB"), 1ull << 30);
  EXPECT_EQ(*ParseSize("4k"), 4096u);
  EXPECT_EQ(*ParseSize("1048576"), 1048576u);
  for (const char* bad :
       {"", "-1G", "lots", "1X", "G", "99999999999999999999", "2000T", "1.5G"})
    EXPECT_FALSE(ParseSize(bad)) << bad;
  EXPECT_EQ(FormatSize(512ull << 20), "512MiB");
  EXPECT_EQ(FormatSize(1000), "1000B");
}

Result<int> Half(int x) {
  if (x % 2) return Err(ErrorCode::kInvalidArgument, "odd");
  return x / 2;
}
Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}
Status Check(int x) {
  TRY_CTX(Half(x), "check " + std::to_string(x));
  return Ok();
}

TEST(ErrorTest, MacrosPropagateAndAddContext) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).error().message(), "odd");
  EXPECT_EQ(Check(3).error().message(), "check 3: odd");
  EXPECT_EQ(ErrnoErr("open x", ENOENT).value().ToString(),
            "open x: No such file or directory");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kNotFound), "not_found");
}

TEST(JsonTest, MalformedIsAnErrorNotAThrow) {
  EXPECT_TRUE(ParseJson("{\"a\":1}"));
  auto bad = ParseJson("{\"a\":");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ProcessTest, RunCommandCapturesOutputAndStatus) {
  auto ok = RunCommandOk({"sh", "-c", "echo out; echo err >&2"});
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, "out\n");
  auto fail = RunCommandOk({"sh", "-c", "echo broken >&2; exit 3"});
  ASSERT_FALSE(fail);
  EXPECT_NE(fail.error().message().find("code 3"), std::string::npos);
  EXPECT_NE(fail.error().message().find("broken"), std::string::npos);
  auto slow = RunCommand({"sleep", "10"}, std::chrono::seconds(1));
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code(), ErrorCode::kTimeout);
}

TEST(ProcessTest, SpawnReportsExecFailureAndExitSignal) {
  auto missing = Process::Spawn({{"/nonexistent/binary"}, "", "", false});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().err_no(), ENOENT);
  auto p = Process::Spawn({{"sleep", "30"}, "", "", true});
  ASSERT_TRUE(p);
  EXPECT_FALSE((*p)->WaitFor(50ms));
  EXPECT_TRUE((*p)->Signal(SIGKILL));
  auto st = (*p)->WaitFor(5s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_NE(st->Describe().find("signal 9"), std::string::npos);
}

}  // namespace
}  // namespace vireo
