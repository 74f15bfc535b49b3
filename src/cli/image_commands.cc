// Image store commands: image import|list|show|delete|export|alias, publish,
// launch; and the cloud-init options shared with create.

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

using std::chrono::seconds;
// Importing or exporting a multi-GiB image converts and hashes all of it.
constexpr seconds kCopyWait{1800};

std::string Absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

std::string ImageUrl(const std::string& name) {
  return "/1.0/images/" + UrlEscape(name);
}

Result<std::string> ReadLocalFile(const std::string& what,
                                  const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return Err(ErrorCode::kInvalidArgument,
               "cannot read " + what + " file '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Join(const Json& list) {
  std::string out;
  if (list.is_array())
    for (const auto& a : list)
      if (a.is_string()) out += (out.empty() ? "" : ",") + a.get<std::string>();
  return out;
}

Status ListImages(Context& ctx) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json list, client->Call("GET", "/1.0/images?recursion=1"));
  if (ctx.options.json) {
    PrintJson(list);
    return Ok();
  }
  Table table({"NAME", "ALIASES", "FORMAT", "SIZE", "VIRTUAL SIZE",
               "FINGERPRINT", "OS"});
  if (list.is_array()) {
    for (const auto& i : list) {
      table.Add({JStr(i, "name"), Join(JObj(i, "aliases")), JStr(i, "format"),
                 HumanSize(JBytes(i, "size")),
                 HumanSize(JBytes(i, "virtual_size")),
                 JStr(i, "fingerprint").substr(0, 12),
                 JStr(i, "os").empty() ? "-" : JStr(i, "os")});
    }
  }
  std::cout << table.Render();
  return Ok();
}

Status ShowImage(Context& ctx, const std::string& name) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json i, client->Call("GET", ImageUrl(name)));
  if (ctx.options.json) {
    PrintJson(i);
    return Ok();
  }
  Fields f;
  f.Add("Name", JStr(i, "name"));
  f.Add("Aliases", Join(JObj(i, "aliases")));
  f.Add("Format", JStr(i, "format"));
  f.Add("Size", HumanSize(JBytes(i, "size")));
  f.Add("Virtual size", HumanSize(JBytes(i, "virtual_size")));
  f.Add("Fingerprint", JStr(i, "fingerprint"));
  f.Add("OS", JStr(i, "os").empty() ? "-" : JStr(i, "os"));
  f.Add("Description",
        JStr(i, "description").empty() ? "-" : JStr(i, "description"));
  f.Add("Source", JStr(i, "source"));
  f.Add("Path", JStr(i, "path"));
  f.Add("Created", FormatTime(JInt(i, "created_at")));
  std::cout << f.Render();
  return Ok();
}

struct ImportArgs {
  std::string file;  // or instance, for publish
  std::vector<std::string> aliases;
  std::string os;
  std::string description;
};

void AddImportOptions(CLI::App* sub, ImportArgs& a) {
  sub->add_option("--alias", a.aliases,
                  "Image name; repeat for more aliases (the first is the name)")
      ->required()
      ->allow_extra_args(false);
  sub->add_option("--os", a.os, "Operating system, for information");
  sub->add_option("--description", a.description, "Free text");
}

Status Import(Context& ctx, const ImportArgs& a, bool publish) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  Json req = {{"aliases", a.aliases}};
  // Both run on the host: the daemon reads the file at its absolute path.
  if (publish)
    req["instance"] = a.file;
  else
    req["source"] = Absolute(a.file);
  if (!a.os.empty()) req["os"] = a.os;
  if (!a.description.empty()) req["description"] = a.description;
  ASSIGN_OR_RETURN(Json image,
                   client->CallAndWait("POST", "/1.0/images", req, kCopyWait));
  if (ctx.options.json) {
    PrintJson(image);
  } else {
    std::cout << "Image " << JStr(image, "name") << " "
              << (publish ? "published" : "imported") << " ("
              << JStr(image, "format") << ", "
              << HumanSize(JBytes(image, "size")) << ", sha256 "
              << JStr(image, "fingerprint").substr(0, 12) << ")\n";
  }
  return Ok();
}

struct LaunchArgs {
  std::string image;
  std::string name;
  int cpus = 0;
  std::string memory;
  std::string disk_size;
  bool copy = false;
  std::string kernel, initrd, cmdline;
  CloudInitArgs cloud_init;
  std::vector<std::string> networks;
};

Status Launch(Context& ctx, const LaunchArgs& a) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  Json req = {{"name", a.name}, {"image", a.image}, {"start", true}};
  if (a.cpus > 0) req["cpus"] = a.cpus;
  if (!a.memory.empty()) req["memory"] = a.memory;
  if (!a.disk_size.empty()) req["root_size"] = a.disk_size;
  if (a.copy) req["copy"] = true;
  if (!a.kernel.empty()) req["kernel"] = Absolute(a.kernel);
  if (!a.initrd.empty()) req["initrd"] = Absolute(a.initrd);
  if (!a.cmdline.empty()) req["cmdline"] = a.cmdline;
  TRY(AddCloudInit(a.cloud_init, req));
  TRY(AddNetworksToRequest(a.networks, &req));
  ASSIGN_OR_RETURN(
      Json inst, client->CallAndWait("POST", "/1.0/instances", req, kCopyWait));
  if (ctx.options.json)
    PrintJson(inst);
  else
    std::cout << "Instance " << a.name << " launched from " << a.image << "\n";
  return Ok();
}

}  // namespace

void AddCloudInitOptions(CLI::App* sub, CloudInitArgs& a) {
  sub->add_option("--hostname", a.hostname, "cloud-init: the guest's hostname");
  sub->add_option("--ssh-key", a.ssh_key_files,
                  "cloud-init: a public key file to authorize; repeatable")
      ->allow_extra_args(false);
  sub->add_option("--user-data", a.user_data_file,
                  "cloud-init: a user-data file, used verbatim");
}

Status AddCloudInit(const CloudInitArgs& a, Json& request) {
  Json ci = Json::object();
  if (!a.hostname.empty()) ci["hostname"] = a.hostname;
  for (const auto& file : a.ssh_key_files) {
    ASSIGN_OR_RETURN(std::string text, ReadLocalFile("ssh key", file));
    std::istringstream lines(text);
    std::string line;
    // A key file may hold several keys, one per line.
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty() && line[0] != '#') ci["ssh_keys"].push_back(line);
    }
  }
  if (!a.user_data_file.empty()) {
    ASSIGN_OR_RETURN(ci["user_data"],
                     ReadLocalFile("user-data", a.user_data_file));
  }
  if (!ci.empty()) request["cloud_init"] = ci;
  return Ok();
}

void AddImageCommands(CLI::App& app, Context& ctx) {
  auto* image = app.add_subcommand("image", "Manage the image store");
  image->require_subcommand(1);

  auto imp = std::make_shared<ImportArgs>();
  auto* i = image->add_subcommand(
      "import", "Import a qcow2, raw, vmdk, vdi or ISO file as an image");
  i->add_option("file", imp->file, "Image file")->required();
  AddImportOptions(i, *imp);
  i->callback([&ctx, imp] {
    ctx.action = [&ctx, imp] { return Import(ctx, *imp, false); };
  });

  auto* l = image->add_subcommand("list", "List images");
  l->alias("ls");
  l->callback([&ctx] { ctx.action = [&ctx] { return ListImages(ctx); }; });

  auto show = std::make_shared<std::string>();
  auto* s = image->add_subcommand("show", "Show one image");
  s->alias("info");
  s->add_option("name", *show, "Image name or alias")->required();
  s->callback([&ctx, show] {
    ctx.action = [&ctx, show] { return ShowImage(ctx, *show); };
  });

  auto del = std::make_shared<std::string>();
  auto* d = image->add_subcommand("delete", "Delete an image");
  d->add_option("name", *del, "Image name or alias")->required();
  d->callback([&ctx, del] {
    ctx.action = [&ctx, del]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->Call("DELETE", ImageUrl(*del)));
      if (!ctx.options.json) std::cout << "Image " << *del << " deleted\n";
      return Ok();
    };
  });

  struct ExportArgs {
    std::string name, file, format;
  };
  auto exp = std::make_shared<ExportArgs>();
  auto* e = image->add_subcommand("export", "Write an image to a file");
  e->add_option("name", exp->name, "Image name or alias")->required();
  e->add_option("file", exp->file, "Destination file (must not exist)")
      ->required();
  e->add_option("--format", exp->format, "qcow2 (default), raw, vmdk or vdi");
  e->callback([&ctx, exp] {
    ctx.action = [&ctx, exp]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      Json req = {{"path", Absolute(exp->file)}};
      if (!exp->format.empty()) req["format"] = exp->format;
      TRY(client->CallAndWait("POST", ImageUrl(exp->name) + "/export", req,
                              kCopyWait));
      if (!ctx.options.json)
        std::cout << "Image " << exp->name << " exported to "
                  << Absolute(exp->file) << "\n";
      return Ok();
    };
  });

  auto* alias = image->add_subcommand("alias", "Add or remove image aliases");
  alias->require_subcommand(1);
  struct AliasArgs {
    std::string name, alias;
  };
  for (bool add : {true, false}) {
    auto a = std::make_shared<AliasArgs>();
    auto* sub = alias->add_subcommand(add ? "add" : "remove",
                                      add ? "Add an alias" : "Remove an alias");
    sub->add_option("name", a->name, "Image name or alias")->required();
    sub->add_option("alias", a->alias, "The alias")->required();
    sub->callback([&ctx, a, add] {
      ctx.action = [&ctx, a, add]() -> Status {
        ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
        if (add)
          TRY(client->Call("POST", ImageUrl(a->name) + "/aliases",
                           Json{{"alias", a->alias}}));
        else
          TRY(client->Call(
              "DELETE", ImageUrl(a->name) + "/aliases/" + UrlEscape(a->alias)));
        if (!ctx.options.json)
          std::cout << "Alias " << a->alias << (add ? " added" : " removed")
                    << "\n";
        return Ok();
      };
    });
  }

  auto pub = std::make_shared<ImportArgs>();
  auto* p = app.add_subcommand(
      "publish", "Turn a stopped instance's root disk into an image");
  p->add_option("instance", pub->file, "Instance name")->required();
  AddImportOptions(p, *pub);
  p->callback([&ctx, pub] {
    ctx.action = [&ctx, pub] { return Import(ctx, *pub, true); };
  });

  auto la = std::make_shared<LaunchArgs>();
  auto* lc = app.add_subcommand(
      "launch", "Create and start an instance from an image (linked clone)");
  lc->add_option("image", la->image, "Image name or alias")->required();
  lc->add_option("name", la->name, "Instance name")->required();
  lc->add_option("--cpus", la->cpus, "Virtual CPUs")
      ->check(CLI::PositiveNumber);
  lc->add_option("--memory", la->memory, "Memory, e.g. 512M or 2G");
  lc->add_option("--disk-size", la->disk_size,
                 "Grow the root disk to this size, e.g. 20G");
  lc->add_flag("--copy", la->copy,
               "A full independent copy instead of a linked clone");
  lc->add_option("--kernel", la->kernel, "Kernel image (direct kernel boot)");
  lc->add_option("--initrd", la->initrd, "Initial ramdisk")->needs("--kernel");
  lc->add_option("--cmdline", la->cmdline, "Kernel command line")
      ->needs("--kernel");
  AddCloudInitOptions(lc, la->cloud_init);
  AddNetworkOption(lc, &la->networks);
  lc->callback(
      [&ctx, la] { ctx.action = [&ctx, la] { return Launch(ctx, *la); }; });
}

}  // namespace vireo::cli
