#include "api/instance_request.h"

#include <gtest/gtest.h>

namespace vireo {
namespace {

std::string ErrorOf(std::string_view body) {
  auto r = ParseCreateRequest(body);
  if (r) return "";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  return r.error().message();
}

TEST(ParseCreateRequest, DecodesAFullRequest) {
  auto r = ParseCreateRequest(
      R"({"name":"vm1","cpus":2,"memory":"512M","kernel":"/k",
      "initrd":"/i","cmdline":"console=ttyS0","disks":[{"size":"1G"},
      {"source":"/img.qcow2","size":2147483648}],"nics":0,"restart_policy":"on-failure"})");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->name, "vm1");
  EXPECT_EQ(r->cpus, 2);
  EXPECT_EQ(r->memory_bytes, 512ull << 20);
  EXPECT_EQ(r->kernel, "/k");
  EXPECT_EQ(r->initrd, "/i");
  EXPECT_EQ(r->cmdline, "console=ttyS0");
  ASSERT_EQ(r->disks.size(), 2u);
  EXPECT_EQ(r->disks[0].size_bytes, 1ull << 30);
  EXPECT_EQ(r->disks[1].source, "/img.qcow2");
  EXPECT_EQ(r->disks[1].size_bytes, 2ull << 30);
  EXPECT_EQ(r->nics, 0);
  EXPECT_EQ(r->restart_policy, RestartPolicy::kOnFailure);
}

TEST(ParseCreateRequest, DefaultsWhenOmitted) {
  auto r = ParseCreateRequest(R"({"name":"vm1"})");
  ASSERT_TRUE(r);
  CreateRequest defaults;
  EXPECT_EQ(r->cpus, defaults.cpus);
  EXPECT_EQ(r->memory_bytes, defaults.memory_bytes);
  EXPECT_EQ(r->nics, defaults.nics);
}

TEST(ParseCreateRequest, ErrorsNameTheField) {
  EXPECT_NE(ErrorOf("{not json"), "");
  EXPECT_EQ(ErrorOf("[1]"), "request body must be a JSON object, got array");
  EXPECT_EQ(ErrorOf(""), "request body is empty");
  EXPECT_EQ(ErrorOf(R"({"cpus":1})"), "missing field 'name'");
  EXPECT_EQ(ErrorOf(R"({"name":"a","bogus":1})"), "unknown field 'bogus'");
  EXPECT_EQ(ErrorOf(R"({"name":"a","cpus":"2"})"),
            "field 'cpus' must be an integer");
  EXPECT_EQ(ErrorOf(R"({"name":"a","cpus":1.5})"),
            "field 'cpus' must be an integer");
  EXPECT_EQ(ErrorOf(R"({"name":"a","cpus":-1})"),
            "field 'cpus' must be a non-negative integer");
  EXPECT_EQ(ErrorOf(R"({"name":"a","cpus":99999999999})"),
            "field 'cpus' must be at most 2147483647");
  EXPECT_EQ(ErrorOf(R"({"name":"a","nics":-2})"),
            "field 'nics' must be a non-negative integer");
  EXPECT_EQ(ErrorOf(R"({"name":"a","memory":-5})"),
            "field 'memory' must be a non-negative size");
  EXPECT_NE(ErrorOf(R"({"name":"a","memory":"12Q"})").find("field 'memory'"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(R"({"name":"a","memory":true})")
                .rfind("field 'memory' must be a size", 0),
            0u);
  EXPECT_EQ(ErrorOf(R"({"name":7})"), "field 'name' must be a string");
  EXPECT_EQ(ErrorOf(R"({"name":"a","disks":{}})"),
            "field 'disks' must be an array");
  EXPECT_EQ(ErrorOf(R"({"name":"a","disks":[5]})"),
            "field 'disks[0]' must be an object");
  EXPECT_EQ(ErrorOf(R"({"name":"a","disks":[{"size":"1G","x":1}]})"),
            "unknown field 'disks[0].x'");
  EXPECT_EQ(ErrorOf(R"({"name":"a","disks":[{"size":-1}]})"),
            "field 'disks[0].size' must be a non-negative size");
  EXPECT_EQ(ErrorOf(R"({"name":"a","restart_policy":"sometimes"})"),
            "field 'restart_policy' must be never, on-failure or always");
}

TEST(ParseStateChangeRequest, DecodesAndValidates) {
  auto r =
      ParseStateChangeRequest(R"({"action":"stop","force":true,"timeout":5})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->action, StateAction::kStop);
  EXPECT_TRUE(r->force);
  EXPECT_EQ(r->timeout_s, 5);
  auto d = ParseStateChangeRequest(R"({"action":"start"})");
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->force);
  EXPECT_EQ(d->timeout_s, 0);
  EXPECT_FALSE(ParseStateChangeRequest(R"({"action":"explode"})"));
  EXPECT_FALSE(ParseStateChangeRequest(R"({"force":true})"));
  EXPECT_FALSE(ParseStateChangeRequest(R"({"action":"stop","force":"yes"})"));
  EXPECT_FALSE(ParseStateChangeRequest(R"({"action":"stop","timeout":-1})"));
  auto unknown =
      ParseStateChangeRequest(R"({"action":"stop","stateful":true})");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message(), "unknown field 'stateful'");
}

TEST(ParseTokenCreateRequest, NeedsOnlyAName) {
  EXPECT_EQ(*ParseTokenCreateRequest(R"({"name":"ci"})"), "ci");
  EXPECT_FALSE(ParseTokenCreateRequest(R"({})"));
  EXPECT_FALSE(ParseTokenCreateRequest(R"({"name":"ci","admin":true})"));
}

}  // namespace
}  // namespace vireo
