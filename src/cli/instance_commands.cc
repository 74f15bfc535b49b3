// Instance lifecycle commands: create, start/stop/..., delete, list, show.

#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

using std::chrono::seconds;

std::string AbsolutePath(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

struct CreateArgs {
  std::string name;
  int cpus = 0;
  std::string memory;
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::vector<std::string> disks;
  int nics = -1;
  std::string restart;
  bool start = false;
  CloudInitArgs cloud_init;
  std::string iso, firmware, os_type;
  std::vector<std::string> networks;
};

Json BuildCreateRequest(const CreateArgs& a) {
  Json req = {{"name", a.name}};
  if (a.cpus > 0) req["cpus"] = a.cpus;
  if (!a.memory.empty()) req["memory"] = a.memory;
  if (!a.kernel.empty()) req["kernel"] = AbsolutePath(a.kernel);
  if (!a.initrd.empty()) req["initrd"] = AbsolutePath(a.initrd);
  if (!a.cmdline.empty()) req["cmdline"] = a.cmdline;
  if (!a.disks.empty()) {
    Json disks = Json::array();
    for (const auto& d : a.disks) {
      std::error_code ec;
      // An existing file is an image to start from; anything else a size.
      if (std::filesystem::is_regular_file(d, ec)) {
        disks.push_back({{"source", AbsolutePath(d)}});
      } else {
        disks.push_back({{"size", d}});
      }
    }
    req["disks"] = disks;
  }
  if (a.nics >= 0) req["nics"] = a.nics;
  if (!a.restart.empty()) req["restart_policy"] = a.restart;
  // --iso: an image-store name, or an ISO file (sent as an absolute path).
  if (!a.iso.empty()) {
    std::error_code ec;
    bool file = a.iso.find('/') != std::string::npos ||
                std::filesystem::is_regular_file(a.iso, ec);
    req["iso"] = file ? AbsolutePath(a.iso) : a.iso;
  }
  if (!a.firmware.empty()) req["firmware"] = a.firmware;
  if (!a.os_type.empty()) req["os_type"] = a.os_type;
  return req;
}

Status ChangeState(Context& ctx, const std::string& name,
                   const std::string& action, bool force, int timeout) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  Json body = {{"action", action}};
  if (force) body["force"] = true;
  if (timeout >= 0) body["timeout"] = timeout;
  seconds wait = seconds(300) + seconds(std::max(timeout, 0));
  TRY(client->CallAndWait("PUT", InstanceUrl(name) + "/state", body, wait));
  return Ok();
}

// A list entry with the scripting shortcuts guaranteed present.
Json Normalize(Json inst) {
  if (!inst.is_object()) return inst;
  const Json& config = JObj(inst, "config");
  const Json& status = JObj(inst, "status");
  if (!inst.contains("name")) inst["name"] = JStr(config, "name");
  if (!inst.contains("state")) inst["state"] = JStr(status, "state");
  if (!inst.contains("cpus")) inst["cpus"] = JInt(config, "cpus");
  uint64_t memory = JBytes(inst, "memory");
  if (memory == 0) memory = JBytes(config, "memory");
  inst["memory"] = memory;
  return inst;
}

Status List(Context& ctx) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json list,
                   client->Call("GET", "/1.0/instances?recursion=1"));
  if (!list.is_array())
    return Err(ErrorCode::kInternal, "server sent a non-list for instances");
  Json out = Json::array();
  for (auto& inst : list) out.push_back(Normalize(std::move(inst)));
  if (ctx.options.json) {
    PrintJson(out);
    return Ok();
  }
  Table table({"NAME", "STATE", "CPUS", "MEMORY", "PID", "IPV4"});
  for (const auto& inst : out) {
    int64_t pid = JInt(JObj(inst, "status"), "pid");
    table.Add({JStr(inst, "name"), JStr(inst, "state"),
               std::to_string(JInt(inst, "cpus")),
               HumanSize(JBytes(inst, "memory")),
               pid > 0 ? std::to_string(pid) : "-", InstanceAddresses(inst)});
  }
  std::cout << table.Render();
  return Ok();
}

Status Show(Context& ctx, const std::string& name) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json inst, client->Call("GET", InstanceUrl(name)));
  if (ctx.options.json) {
    PrintJson(inst);
    return Ok();
  }
  inst = Normalize(std::move(inst));
  const Json& config = JObj(inst, "config");
  const Json& status = JObj(inst, "status");
  Fields f;
  f.Add("Name", JStr(inst, "name"));
  f.Add("ID", JStr(inst, "id"));
  std::string state = JStr(inst, "state");
  if (int64_t pid = JInt(status, "pid"); pid > 0)
    state += " (pid " + std::to_string(pid) + ")";
  f.Add("State", state);
  if (!JStr(status, "last_error").empty())
    f.Add("Last error", JStr(status, "last_error"));
  f.Add("Created", FormatTime(JInt(inst, "created_at")));
  f.Add("Started", FormatTime(JInt(status, "started_at")));
  f.Add("CPUs", std::to_string(JInt(inst, "cpus")));
  f.Add("Memory", HumanSize(JBytes(inst, "memory")));
  f.Add("Kernel",
        JStr(config, "kernel").empty() ? "-" : JStr(config, "kernel"));
  if (!JStr(config, "initrd").empty()) f.Add("Initrd", JStr(config, "initrd"));
  if (!JStr(config, "cmdline").empty())
    f.Add("Cmdline", JStr(config, "cmdline"));
  f.Add("Restart policy",
        JStr(config, "restart_policy") + " (automatic restarts: " +
            std::to_string(JInt(status, "restart_count")) + ")");
  std::cout << f.Render();
  const Json& disks = JObj(config, "disks");
  if (disks.is_array() && !disks.empty()) {
    Table t({"  DISK", "SIZE", "PATH", "SOURCE"});
    for (const auto& d : disks) {
      t.Add({"  " + JStr(d, "name"), HumanSize(JBytes(d, "size")),
             JStr(d, "path"),
             JStr(d, "source").empty() ? "-" : JStr(d, "source")});
    }
    std::cout << "Disks:\n" << t.Render();
  }
  const Json& nics = JObj(config, "nics");
  if (nics.is_array() && !nics.empty()) {
    Table t({"  NIC", "TYPE", "MAC"});
    for (const auto& n : nics)
      t.Add({"  " + JStr(n, "name"), JStr(n, "type"), JStr(n, "mac")});
    std::cout << "NICs:\n" << t.Render();
  }
  return Ok();
}

void AddStateCommand(CLI::App& app, Context& ctx, const std::string& action,
                     const std::string& help, bool with_stop_options) {
  struct Args {
    std::string name;
    bool force = false;
    int timeout = -1;
  };
  auto args = std::make_shared<Args>();
  auto* sub = app.add_subcommand(action, help);
  sub->add_option("name", args->name, "Instance name")->required();
  if (with_stop_options) {
    sub->add_flag("--force", args->force,
                  "Kill the VM instead of a clean ACPI shutdown");
    sub->add_option("--timeout", args->timeout,
                    "Seconds to wait for a clean shutdown")
        ->check(CLI::NonNegativeNumber);
  }
  std::string past = action + (action.ends_with("e") ? "d"
                               : action == "stop"    ? "ped"
                                                     : "ed");
  sub->callback([&ctx, args, action, past] {
    ctx.action = [&ctx, args, action, past]() -> Status {
      TRY(ChangeState(ctx, args->name, action, args->force, args->timeout));
      if (!ctx.options.json)
        std::cout << "Instance " << args->name << " " << past << "\n";
      return Ok();
    };
  });
}

}  // namespace

void AddInstanceCommands(CLI::App& app, Context& ctx) {
  auto create = std::make_shared<CreateArgs>();
  auto* c = app.add_subcommand("create", "Create an instance (and its disks)");
  c->add_option("name", create->name, "Instance name")->required();
  c->add_option("--cpus", create->cpus, "Virtual CPUs")
      ->check(CLI::PositiveNumber);
  c->add_option("--memory", create->memory, "Memory, e.g. 512M or 2G");
  c->add_option("--kernel", create->kernel,
                "Kernel image to boot (direct kernel boot)");
  c->add_option("--initrd", create->initrd, "Initial ramdisk")
      ->needs("--kernel");
  c->add_option("--cmdline", create->cmdline, "Kernel command line")
      ->needs("--kernel");
  c->add_option("--disk", create->disks,
                "A disk: a size (1G) for a blank one, or an image file to "
                "copy; repeatable")
      ->allow_extra_args(false);
  c->add_option("--nics", create->nics, "Number of network interfaces")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--restart", create->restart, "Restart policy")
      ->check(CLI::IsMember({"never", "on-failure", "always"}));
  c->add_flag("--start", create->start, "Start the instance once created");
  AddCloudInitOptions(c, create->cloud_init);
  c->add_option("--iso", create->iso,
                "Install medium: an ISO image name or file, attached as a "
                "CD-ROM that boots first");
  c->add_option("--firmware", create->firmware, "bios (default) or uefi");
  c->add_option("--os-type", create->os_type,
                "Device profile: linux (default), windows or other");
  AddNetworkOption(c, &create->networks);
  c->callback([&ctx, create] {
    ctx.action = [&ctx, create]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      Json request = BuildCreateRequest(*create);
      TRY(AddCloudInit(create->cloud_init, request));
      TRY(AddNetworksToRequest(create->networks, &request));
      ASSIGN_OR_RETURN(Json created,
                       client->CallAndWait("POST", "/1.0/instances", request));
      if (!ctx.options.json)
        std::cout << "Instance " << create->name << " created\n";
      if (create->start) {
        TRY_CTX(ChangeState(ctx, create->name, "start", false, -1),
                "created " + create->name + " but could not start it");
        if (!ctx.options.json)
          std::cout << "Instance " << create->name << " started\n";
      }
      if (ctx.options.json) {
        auto inst = client->Call("GET", InstanceUrl(create->name));
        PrintJson(inst ? *inst : created);
      }
      return Ok();
    };
  });

  AddStateCommand(app, ctx, "start", "Start an instance", false);
  AddStateCommand(app, ctx, "stop", "Stop an instance", true);
  AddStateCommand(app, ctx, "restart", "Restart an instance", true);
  AddStateCommand(app, ctx, "pause", "Pause an instance's vCPUs", false);
  AddStateCommand(app, ctx, "resume", "Resume a paused instance", false);

  struct DeleteArgs {
    std::string name;
    bool force = false;
  };
  auto del = std::make_shared<DeleteArgs>();
  auto* d = app.add_subcommand("delete", "Delete an instance and its disks");
  d->add_option("name", del->name, "Instance name")->required();
  d->add_flag("--force", del->force, "Stop it first if it is running");
  d->callback([&ctx, del] {
    ctx.action = [&ctx, del]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      std::string url = InstanceUrl(del->name) + (del->force ? "?force=1" : "");
      TRY(client->CallAndWait("DELETE", url));
      if (!ctx.options.json)
        std::cout << "Instance " << del->name << " deleted\n";
      return Ok();
    };
  });

  auto eject = std::make_shared<std::string>();
  auto* e = app.add_subcommand("eject", "Detach an instance's ISO");
  e->add_option("name", *eject, "Instance name")->required();
  e->callback([&ctx, eject] {
    ctx.action = [&ctx, eject]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->CallAndWait("POST", InstanceUrl(*eject) + "/eject"));
      if (!ctx.options.json)
        std::cout << "Ejected the ISO of " << *eject << "\n";
      return Ok();
    };
  });

  auto* l = app.add_subcommand("list", "List instances");
  l->alias("ls");
  l->callback([&ctx] { ctx.action = [&ctx] { return List(ctx); }; });

  auto show_name = std::make_shared<std::string>();
  auto* s = app.add_subcommand("show", "Show one instance");
  s->alias("info");
  s->add_option("name", *show_name, "Instance name")->required();
  s->callback([&ctx, show_name] {
    ctx.action = [&ctx, show_name] { return Show(ctx, *show_name); };
  });
}

}  // namespace vireo::cli
