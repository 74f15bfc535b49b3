// Image store end to end: import, linked clones, publish, cloud-init seeds
// and bad input, through the vireo CLI against a real vireod and guests.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/process.h"
#include "harness.h"

namespace vireo::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kBoot = 120s;
constexpr int kSector = 100;  // where guests write their marker

std::string Sh(const std::vector<std::string>& argv) {
  auto r = RunCommandOk(argv);
  EXPECT_TRUE(r) << r.error().ToString();
  return r ? *r : "";
}

// The first `len` bytes of 512-byte sector `sector` of an image file, as the
// guest sees them (through backing files).
std::string SectorBytes(const std::string& path, int sector, size_t len) {
  std::string out = path + ".sector";
  fs::remove(out);
  Sh({"qemu-img", "dd", "-f", "qcow2", "-O", "raw", "bs=512",
      "skip=" + std::to_string(sector),
      // qemu-img dd counts from the start of the input, not from skip.
      "count=" + std::to_string(sector + 1), "if=" + path, "of=" + out});
  std::ifstream f(out, std::ios::binary);
  std::string data(len, '\0');
  f.read(data.data(), static_cast<std::streamsize>(len));
  data.resize(static_cast<size_t>(f.gcount()));
  fs::remove(out);
  return data;
}

void ExpectCheckClean(const std::string& path) {
  auto r = RunCommand({"qemu-img", "check", "-q", "-f", "qcow2", path});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status.code, 0) << path << ": " << r->out << r->err;
}

class ImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = daemon_.dir() + "/work";
    fs::create_directories(work_);
    client_ = daemon_.Client();
  }

  // A 64 MiB qcow2 whose sector kSector holds 'B' bytes.
  std::string MakeBaseDisk(const std::string& name) {
    std::string path = work_ + "/" + name;
    Sh({"qemu-img", "create", "-q", "-f", "qcow2", path, "64M"});
    Sh({"qemu-io", "-f", "qcow2", "-c",
        "write -P 0x42 " + std::to_string(kSector * 512) + " 512", path});
    return path;
  }

  int Cli(const std::vector<std::string>& args, std::string* out = nullptr,
          std::string* err = nullptr) {
    std::string o, e;
    int rc = daemon_.Cli(args, &o, &e);
    if (out) *out = o;
    if (err) *err = e;
    return rc;
  }

  void Ok(const std::vector<std::string>& args) {
    std::string out, err;
    ASSERT_EQ(Cli(args, &out, &err), 0) << args[0] << ": " << out << err;
  }

  // vireo launch for a guest-kit VM (direct kernel boot, the image as vda).
  void Launch(const std::string& image, const std::string& name,
              std::vector<std::string> extra = {}) {
    const auto& kit = GuestKit::Get();
    std::vector<std::string> args = {"launch",
                                     image,
                                     name,
                                     "--memory",
                                     "192M",
                                     "--kernel",
                                     kit.kernel,
                                     "--initrd",
                                     kit.initrd,
                                     "--cmdline",
                                     "console=ttyS0 quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    Ok(args);
  }

  std::string RootDisk(const std::string& name) {
    return GetInstance(*client_, name)["config"]["disks"][0]["path"];
  }

  std::string ImageList() {
    std::string out;
    EXPECT_EQ(Cli({"image", "list", "--json"}, &out), 0);
    return out;
  }

  std::vector<std::string> ImageFiles() {
    std::vector<std::string> out;
    for (auto& e : fs::directory_iterator(daemon_.dir() + "/images"))
      out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  Daemon daemon_;
  std::string work_;
  std::unique_ptr<ApiClient> client_;
};

TEST_F(ImagesTest, LinkedClonesAreIsolatedAndPinTheImage) {
  std::string base = MakeBaseDisk("base.qcow2");
  Ok({"image", "import", base, "--alias", "base"});
  Json image = client_->Call("GET", "/1.0/images/base").value();
  const std::string image_path = image["path"];

  const std::vector<std::string> names = {"clone1", "clone2", "clone3"};
  for (const auto& n : names) Launch("base", n);
  for (const auto& n : names) {
    ASSERT_TRUE(WaitForLog(*client_, n, "VIREO-DISK vda", kBoot)) << n;
    Json disk = GetInstance(*client_, n)["config"]["disks"][0];
    EXPECT_EQ(disk["image"], "base");
    // A linked clone: the image is its backing file (-U: the VM holds
    // the lock).
    std::string info = Sh({"qemu-img", "info", "-U", "--output=json",
                           disk["path"].get<std::string>()});
    EXPECT_NE(info.find(image_path), std::string::npos) << info;
  }
  for (const auto& n : names) {
    auto out = GuestRun(*client_, n,
                        "echo " + n + " | dd of=/dev/vda bs=512 seek=" +
                            std::to_string(kSector) + " conv=fsync; sync",
                        kBoot);
    ASSERT_TRUE(out) << n;
  }
  for (const auto& n : names) Ok({"stop", n});

  // Each clone sees its own write only; the image is untouched.
  for (const auto& n : names)
    EXPECT_EQ(SectorBytes(RootDisk(n), kSector, n.size() + 1), n + "\n");
  EXPECT_EQ(SectorBytes(image_path, kSector, 8), std::string(8, 'B'));
  ExpectCheckClean(image_path);
  for (const auto& n : names) ExpectCheckClean(RootDisk(n));

  std::string out, err;
  EXPECT_NE(Cli({"image", "delete", "base"}, &out, &err), 0);
  for (const auto& n : names) EXPECT_NE(err.find(n), std::string::npos) << err;
  EXPECT_TRUE(fs::exists(image_path));
  for (const auto& n : names) Ok({"delete", n});
  Ok({"image", "delete", "base"});
  EXPECT_FALSE(fs::exists(image_path));
  EXPECT_EQ(Cli({"image", "show", "base"}), 1);
}

TEST_F(ImagesTest, PublishAndCloudInitHostname) {
  Ok({"image", "import", MakeBaseDisk("base.qcow2"), "--alias", "base"});
  std::string key_file = work_ + "/id.pub";
  std::ofstream(key_file)
      << "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest vireo\n";
  Launch("base", "web", {"--hostname", "web-1", "--ssh-key", key_file});
  ASSERT_TRUE(WaitForLog(*client_, "web", "VIREO-HOSTNAME web-1", kBoot))
      << ConsoleLog(*client_, "web");
  auto host = GuestRun(*client_, "web", "hostname", kBoot);
  ASSERT_TRUE(host);
  EXPECT_NE(host->find("web-1"), std::string::npos) << *host;
  // The seed is a read-only raw disk in the instance's state dir.
  Json disks = GetInstance(*client_, "web")["config"]["disks"];
  ASSERT_EQ(disks.size(), 2u);
  EXPECT_EQ(disks[1]["name"], "cidata");
  EXPECT_EQ(disks[1]["readonly"], true);
  ASSERT_TRUE(GuestRun(*client_, "web",
                       "echo published | dd of=/dev/vda bs=512 seek=" +
                           std::to_string(kSector) + " conv=fsync; sync",
                       kBoot));

  std::string out, err;
  EXPECT_NE(Cli({"publish", "web", "--alias", "gold"}, &out, &err), 0);
  EXPECT_NE(err.find("stop it"), std::string::npos) << err;
  Ok({"stop", "web"});
  Ok({"publish", "web", "--alias", "gold", "--os", "guest-kit"});
  Json gold = client_->Call("GET", "/1.0/images/gold").value();
  // Flattened: no backing file, and the guest's write is in it.
  std::string info = Sh(
      {"qemu-img", "info", "--output=json", gold["path"].get<std::string>()});
  EXPECT_EQ(info.find("backing"), std::string::npos) << info;
  EXPECT_EQ(SectorBytes(gold["path"], kSector, 10), "published\n");

  Launch("gold", "web2", {"--copy", "--disk-size", "128M"});
  ASSERT_TRUE(WaitForLog(*client_, "web2", "VIREO-DISK vda 262144", kBoot))
      << ConsoleLog(*client_, "web2");
  auto read = GuestRun(*client_, "web2",
                       "dd if=/dev/vda bs=512 skip=" + std::to_string(kSector) +
                           " count=1 2>/dev/null | head -c 9",
                       kBoot);
  ASSERT_TRUE(read);
  EXPECT_NE(read->find("published"), std::string::npos) << *read;
  // A full copy does not pin the image.
  Ok({"delete", "--force", "web2"});
  Ok({"delete", "web"});
  Ok({"image", "delete", "gold"});
}

TEST_F(ImagesTest, BadInputIsRefusedAndChangesNothing) {
  std::string good = MakeBaseDisk("good.qcow2");
  Ok({"image", "import", good, "--alias", "base", "--alias", "base-alt"});
  fs::create_directories(work_ + "/iso");
  std::ofstream(work_ + "/iso/readme.txt") << "installer\n";
  Sh({"xorriso", "-as", "mkisofs", "-quiet", "-V", "INST", "-J", "-r", "-o",
      work_ + "/inst.img", work_ + "/iso"});
  Ok({"image", "import", work_ + "/inst.img", "--alias", "installer"});
  Json iso = client_->Call("GET", "/1.0/images/installer").value();
  EXPECT_EQ(iso["format"], "iso");

  std::string truncated = work_ + "/truncated.qcow2";
  fs::copy_file(good, truncated);
  fs::resize_file(truncated, 200000);
  std::string corrupt = work_ + "/corrupt.qcow2";
  fs::copy_file(good, corrupt);
  {
    std::fstream f(corrupt, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4);
    f.write("\xff\xff\xff\xff", 4);
  }
  std::string overlay = work_ + "/overlay.qcow2";
  Sh({"qemu-img", "create", "-q", "-f", "qcow2", "-b", good, "-F", "qcow2",
      overlay});

  const std::string list_before = ImageList();
  const auto files_before = ImageFiles();
  const auto& kit = GuestKit::Get();
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"image", "import", truncated, "--alias", "t"}, "damaged"},
      {{"image", "import", corrupt, "--alias", "c"}, "qcow2"},
      {{"image", "import", overlay, "--alias", "o"}, "backing file"},
      {{"image", "import", good, "--alias", "base-alt"}, "already used"},
      {{"image", "alias", "add", "installer", "base"}, "already used"},
      {{"launch", "installer", "vm1", "--kernel", kit.kernel},
       "use vireo create --iso"},
      {{"launch", "base", "vm1", "--kernel", kit.kernel, "--disk-size", "32M"},
       "smaller"},
      {{"launch", "nosuch", "vm1", "--kernel", kit.kernel}, "not found"},
  };
  for (const auto& c : cases) {
    std::string out, err;
    EXPECT_EQ(Cli(c.args, &out, &err), 1) << c.args[2] << out;
    EXPECT_NE(err.find(c.message), std::string::npos)
        << c.args[2] << ": " << err;
    EXPECT_EQ(ImageList(), list_before);
    EXPECT_EQ(ImageFiles(), files_before);
  }
  std::string list;
  ASSERT_EQ(Cli({"list", "--json"}, &list), 0);
  EXPECT_EQ(list.find("vm1"), std::string::npos) << list;

  // Export converts; it never overwrites.
  std::string exported = work_ + "/exported.raw";
  Ok({"image", "export", "base-alt", exported, "--format", "raw"});
  EXPECT_EQ(fs::file_size(exported), 64u << 20);
  EXPECT_NE(Cli({"image", "export", "base", exported}), 0);
}

}  // namespace
}  // namespace vireo::e2e
