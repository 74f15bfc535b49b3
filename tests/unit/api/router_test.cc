#include "api/router.h"

#include <gtest/gtest.h>

#include "common/json.h"

namespace vireo {
namespace {

TEST(PercentDecode, DecodesEscapesAndRejectsBadOnes) {
  EXPECT_EQ(*PercentDecode("a%20b"), "a b");
  EXPECT_EQ(*PercentDecode("a%2Fb%2f"), "a/b/");
  EXPECT_EQ(*PercentDecode("a+b"), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_FALSE(PercentDecode("%"));
  EXPECT_FALSE(PercentDecode("%2"));
  EXPECT_FALSE(PercentDecode("%zz"));
}

TEST(ParseTarget, SplitsPathAndDecodesQuery) {
  std::string path;
  std::map<std::string, std::string> query;
  ASSERT_TRUE(
      ParseTarget("/1.0/instances?recursion=1&x=a%26b&flag", &path, &query));
  EXPECT_EQ(path, "/1.0/instances");
  EXPECT_EQ(query["recursion"], "1");
  EXPECT_EQ(query["x"], "a&b");
  ASSERT_TRUE(query.count("flag"));
  EXPECT_EQ(query["flag"], "");
  EXPECT_FALSE(ParseTarget("/x?a=%G0", &path, &query));
}

TEST(SplitPath, DropsEmptySegments) {
  EXPECT_EQ(SplitPath("/1.0/instances/"),
            (std::vector<std::string>{"1.0", "instances"}));
  EXPECT_TRUE(SplitPath("/").empty());
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/1.0/things/{name}", [this](ApiRequest& r) {
      seen_ = r.params.at("name");
      return ApiResponse{};
    });
    router_.Add("GET", "/1.0/things/{name}/state", [](ApiRequest&) {
      ApiResponse response;
      response.status = 201;
      return response;
    });
    router_.Add("PUT", "/1.0/things/{name}/state", [](ApiRequest&) {
      ApiResponse response;
      response.status = 202;
      return response;
    });
  }
  ApiResponse Call(const std::string& method, const std::string& path) {
    ApiRequest r;
    r.method = method;
    r.path = path;
    return router_.Dispatch(r);
  }
  Router router_;
  std::string seen_;
};

TEST_F(RouterTest, MatchesParamsAndMethods) {
  EXPECT_EQ(Call("GET", "/1.0/things/vm%2D1").status, 200u);
  EXPECT_EQ(seen_, "vm-1");
  EXPECT_EQ(Call("GET", "/1.0/things/x/state").status, 201u);
  EXPECT_EQ(Call("PUT", "/1.0/things/x/state").status, 202u);
}

TEST_F(RouterTest, UnknownPathIs404AndWrongMethodIs405) {
  ApiResponse missing = Call("GET", "/1.0/nothing");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(Json::parse(missing.body)["code"], "not_found");
  ApiResponse wrong = Call("DELETE", "/1.0/things/x/state");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.headers["Allow"], "GET, PUT");
  EXPECT_EQ(Json::parse(wrong.body)["error_code"], 405);
}

TEST_F(RouterTest, UnsafeParamsAre400) {
  for (const char* path :
       {"/1.0/things/..", "/1.0/things/.", "/1.0/things/a%2Fb",
        "/1.0/things/%2E%2E", "/1.0/things/a%00", "/1.0/things/%zz"}) {
    seen_.clear();
    ApiResponse response = Call("GET", path);
    EXPECT_EQ(response.status, 400u) << path;
    EXPECT_TRUE(seen_.empty()) << path;
  }
}

}  // namespace
}  // namespace vireo
