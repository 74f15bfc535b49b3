// vireo backup create NAME [--store S], vireo backup restore ID [NEWNAME]
// [--store S]: the job commands of the `backup` group (the store commands
// are in backup_commands.cc).

#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

// The store named by --store, or the default one (the only/first store).
Result<std::string> ResolveStore(ApiClient* client, const std::string& store) {
  if (!store.empty()) return store;
  ASSIGN_OR_RETURN(Json stores, client->Call("GET", "/1.0/backup-stores"));
  if (stores.is_array() && !stores.empty()) {
    const Json& first = stores.front();
    if (first.is_string()) {
      std::string s = first.get<std::string>();
      return s.substr(s.rfind('/') + 1);
    }
    if (first.is_object()) return JStr(first, "name");
  }
  return Err(ErrorCode::kNotFound,
             "no backup store; create one with `vireo backup-store create`");
}

void PrintBackup(const Json& b) {
  std::cout << "Backup " << JStr(b, "id") << " of " << JStr(b, "instance")
            << (b.value("incremental", false) ? " (incremental)" : " (full)")
            << "\n";
  if (b.contains("disks") && b["disks"].is_array()) {
    for (const Json& d : b["disks"])
      std::cout << "  " << JStr(d, "name") << ": "
                << HumanSize(JBytes(d, "virtual_size")) << ", read "
                << HumanSize(JBytes(d, "bytes_read")) << ", new "
                << HumanSize(JBytes(d, "bytes_new")) << "\n";
  }
  if (!JStr(b, "note").empty()) std::cout << "  note: " << JStr(b, "note") << "\n";
}

struct JobArgs {
  std::string name, id, new_name, store;
};

}  // namespace

CLI::App* BackupApp(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({}))
    if (sub->get_name() == "backup") return sub;
  auto* b = app.add_subcommand("backup", "Back up and restore instances");
  b->require_subcommand(1);
  return b;
}

void AddBackupJobCommands(CLI::App* backup, Context& ctx) {
  auto a = std::make_shared<JobArgs>();
  auto* c = backup->add_subcommand(
      "create", "Back up an instance (running or stopped) to a store");
  c->add_option("name", a->name, "Instance name")->required();
  c->add_option("--store", a->store, "Backup store (default: the first)");
  c->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      Json body = Json::object();
      if (!a->store.empty()) body["store"] = a->store;
      ASSIGN_OR_RETURN(
          Json b, client->CallAndWait("POST",
                                      "/1.0/instances/" + UrlEscape(a->name) +
                                          "/backups",
                                      body, std::chrono::hours(24)));
      if (ctx.options.json)
        PrintJson(b);
      else
        PrintBackup(b);
      return Ok();
    };
  });

  auto* r = backup->add_subcommand(
      "restore", "Create an instance from a backup (default: its old name)");
  r->add_option("id", a->id, "Backup id")->required();
  r->add_option("newname", a->new_name, "Name of the new instance");
  r->add_option("--store", a->store, "Backup store (default: the first)");
  r->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(std::string store, ResolveStore(client, a->store));
      Json body = Json::object();
      if (!a->new_name.empty()) body["name"] = a->new_name;
      ASSIGN_OR_RETURN(
          Json out,
          client->CallAndWait("POST",
                              "/1.0/backup-stores/" + UrlEscape(store) +
                                  "/backups/" + UrlEscape(a->id) + "/restore",
                              body, std::chrono::hours(24)));
      if (ctx.options.json)
        PrintJson(out);
      else
        std::cout << "Instance " << JStr(out, "instance")
                  << " restored from backup " << a->id << ".\n";
      return Ok();
    };
  });
}

}  // namespace vireo::cli
