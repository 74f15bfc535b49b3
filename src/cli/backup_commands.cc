// Backup store and backup commands: vireo backup-store ..., vireo backup ...
// (the backup jobs add `backup create` and `backup restore` to the group
// AddBackupCommands returns).

#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

constexpr auto kLongWait = std::chrono::hours(24);

std::string StoreUrl(const std::string& store) {
  return "/1.0/backup-stores/" + UrlEscape(store);
}

// The daemon runs on this host and opens files by absolute path.
std::string Absolute(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

uint64_t SumDisks(const Json& b, const char* key) {
  uint64_t n = 0;
  if (b.contains("disks") && b["disks"].is_array())
    for (const auto& d : b["disks"]) n += JBytes(d, key);
  return n;
}

void PrintStore(const Json& s) {
  Fields f;
  f.Add("Name", JStr(s, "name"));
  f.Add("Path", JStr(s, "path"));
  f.Add("Encrypted", s.value("encrypted", false) ? "yes" : "no");
  if (!JStr(s, "encrypt_key_file").empty())
    f.Add("Key file", JStr(s, "encrypt_key_file"));
  f.Add("Created", FormatTime(JInt(s, "created_at")));
  f.Add("Status", JStr(s, "status"));
  if (!JStr(s, "error").empty()) f.Add("Error", JStr(s, "error"));
  f.Add("Backups", std::to_string(JInt(s, "backups")));
  f.Add("Chunks", std::to_string(JInt(s, "chunks")));
  f.Add("On disk", HumanSize(JBytes(s, "bytes_on_disk")));
  std::cout << f.Render();
}

void AddBackupStore(CLI::App& app, Context& ctx) {
  auto* bs = app.add_subcommand("backup-store", "Manage backup stores");
  bs->require_subcommand(1);

  struct CreateArgs {
    std::string name, path, key_file;
  };
  auto a = std::make_shared<CreateArgs>();
  auto* c = bs->add_subcommand("create", "Add a backup store in a directory");
  c->add_option("name", a->name, "Store name")->required();
  c->add_option("path", a->path, "Existing empty directory on the vireod host")
      ->required();
  c->add_option("--encrypt-key", a->key_file,
                "File with a 32-byte key (raw or 64 hex characters); the "
                "store keeps its path, never the key");
  c->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      Json body = {{"name", a->name}, {"path", Absolute(a->path)}};
      if (!a->key_file.empty())
        body["encrypt_key_file"] = Absolute(a->key_file);
      ASSIGN_OR_RETURN(Json s,
                       client->Call("POST", "/1.0/backup-stores", body));
      if (ctx.options.json)
        PrintJson(s);
      else
        std::cout << "Backup store " << JStr(s, "name") << " created"
                  << (s.value("encrypted", false) ? " (encrypted)" : "")
                  << ".\n";
      return Ok();
    };
  });

  auto* l = bs->add_subcommand("list", "List backup stores");
  l->alias("ls");
  l->callback([&ctx] {
    ctx.action = [&ctx]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json stores, client->Call("GET", "/1.0/backup-stores"));
      if (ctx.options.json) {
        PrintJson(stores);
        return Ok();
      }
      Table t({"NAME", "PATH", "ENCRYPTED", "BACKUPS", "ON DISK", "STATUS"});
      for (const auto& s : stores)
        t.Add({JStr(s, "name"), JStr(s, "path"),
               s.value("encrypted", false) ? "yes" : "no",
               std::to_string(JInt(s, "backups")),
               HumanSize(JBytes(s, "bytes_on_disk")),
               JStr(s, "error").empty() ? JStr(s, "status")
                                        : "error: " + JStr(s, "error")});
      std::cout << t.Render();
      return Ok();
    };
  });

  auto show_name = std::make_shared<std::string>();
  auto* s = bs->add_subcommand("show", "Show a backup store");
  s->add_option("name", *show_name, "Store name")->required();
  s->callback([&ctx, show_name] {
    ctx.action = [&ctx, show_name]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json st, client->Call("GET", StoreUrl(*show_name)));
      if (ctx.options.json)
        PrintJson(st);
      else
        PrintStore(st);
      return Ok();
    };
  });

  auto del_name = std::make_shared<std::string>();
  auto* d = bs->add_subcommand(
      "delete", "Forget a backup store (its directory and backups stay)");
  d->add_option("name", *del_name, "Store name")->required();
  d->callback([&ctx, del_name] {
    ctx.action = [&ctx, del_name]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->Call("DELETE", StoreUrl(*del_name)));
      if (!ctx.options.json)
        std::cout << "Backup store " << *del_name << " removed.\n";
      return Ok();
    };
  });
}

void PrintBackup(const Json& b) {
  Fields f;
  f.Add("ID", JStr(b, "id"));
  f.Add("Instance", JStr(b, "instance"));
  f.Add("Created", FormatTime(JInt(b, "created_at")));
  f.Add("Type", b.value("incremental", false)
                    ? "incremental (from " + JStr(b, "parent") + ")"
                    : "full");
  if (!JStr(b, "consistency").empty())
    f.Add("Consistency", JStr(b, "consistency"));
  if (!JStr(b, "note").empty()) f.Add("Note", JStr(b, "note"));
  if (b.contains("disks") && b["disks"].is_array())
    for (const auto& d : b["disks"])
      f.Add("Disk " + JStr(d, "name"),
            HumanSize(JBytes(d, "virtual_size")) + ", read " +
                HumanSize(JBytes(d, "bytes_read")) + ", new " +
                HumanSize(JBytes(d, "bytes_new")));
  std::cout << f.Render();
}

}  // namespace

Result<std::string> ResolveBackupStore(Context& ctx, const std::string& store) {
  if (!store.empty()) return store;
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json stores, client->Call("GET", "/1.0/backup-stores"));
  // Same rule as the daemon: the only store, else the first created.
  const Json* best = nullptr;
  for (const auto& s : stores) {
    if (!best || JInt(s, "created_at") < JInt(*best, "created_at") ||
        (JInt(s, "created_at") == JInt(*best, "created_at") &&
         JStr(s, "name") < JStr(*best, "name")))
      best = &s;
  }
  if (!best)
    return Err(ErrorCode::kNotFound,
               "no backup store exists (create one with `vireo backup-store "
               "create NAME PATH`)");
  return JStr(*best, "name");
}

CLI::App* AddBackupCommands(CLI::App& app, Context& ctx) {
  AddBackupStore(app, ctx);
  auto* bk = app.add_subcommand("backup", "Manage backups in backup stores");
  bk->require_subcommand(1);
  // --store on every subcommand, defaulting to the only/first store.
  auto store = std::make_shared<std::string>();
  auto add_store = [store](CLI::App* sub) {
    sub->add_option("--store", *store,
                    "Backup store (default: the only or first store)");
  };

  auto instance = std::make_shared<std::string>();
  auto* l = bk->add_subcommand("list", "List backups, oldest first");
  l->alias("ls");
  l->add_option("instance", *instance, "Only backups of this instance");
  add_store(l);
  l->callback([&ctx, store, instance] {
    ctx.action = [&ctx, store, instance]() -> Status {
      ASSIGN_OR_RETURN(std::string s, ResolveBackupStore(ctx, *store));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      std::string url = StoreUrl(s) + "/backups";
      if (!instance->empty()) url += "?instance=" + UrlEscape(*instance);
      ASSIGN_OR_RETURN(Json list, client->Call("GET", url));
      if (ctx.options.json) {
        PrintJson(list);
        return Ok();
      }
      Table t({"ID", "INSTANCE", "CREATED", "TYPE", "CONSISTENCY", "SIZE",
               "NEW DATA"});
      for (const auto& b : list) {
        std::string how = JStr(b, "consistency");
        t.Add({JStr(b, "id"), JStr(b, "instance"),
               FormatTime(JInt(b, "created_at")),
               b.value("incremental", false) ? "incremental" : "full",
               how.empty() ? "-" : how, HumanSize(SumDisks(b, "virtual_size")),
               HumanSize(SumDisks(b, "bytes_new"))});
      }
      std::cout << t.Render();
      return Ok();
    };
  });

  auto id = std::make_shared<std::string>();
  auto* sh = bk->add_subcommand("show", "Show one backup");
  sh->add_option("id", *id, "Backup id")->required();
  add_store(sh);
  sh->callback([&ctx, store, id] {
    ctx.action = [&ctx, store, id]() -> Status {
      ASSIGN_OR_RETURN(std::string s, ResolveBackupStore(ctx, *store));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json b, client->Call("GET", StoreUrl(s) + "/backups/" +
                                                       UrlEscape(*id)));
      if (ctx.options.json)
        PrintJson(b);
      else
        PrintBackup(b);
      return Ok();
    };
  });

  auto* del = bk->add_subcommand(
      "delete", "Delete a backup (run `backup gc` to free the space)");
  del->add_option("id", *id, "Backup id")->required();
  add_store(del);
  del->callback([&ctx, store, id] {
    ctx.action = [&ctx, store, id]() -> Status {
      ASSIGN_OR_RETURN(std::string s, ResolveBackupStore(ctx, *store));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->Call("DELETE", StoreUrl(s) + "/backups/" + UrlEscape(*id)));
      if (!ctx.options.json) std::cout << "Backup " << *id << " deleted.\n";
      return Ok();
    };
  });

  auto* v = bk->add_subcommand(
      "verify", "Re-read and check every chunk; list damaged backups");
  add_store(v);
  v->callback([&ctx, store] {
    ctx.action = [&ctx, store]() -> Status {
      ASSIGN_OR_RETURN(std::string s, ResolveBackupStore(ctx, *store));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json r,
                       client->CallAndWait("POST", StoreUrl(s) + "/verify",
                                           Json::object(), kLongWait));
      if (ctx.options.json) {
        PrintJson(r);
      } else {
        std::cout << JInt(r, "chunks_checked") << " chunks ("
                  << HumanSize(JBytes(r, "bytes_checked")) << ") checked in "
                  << (r.contains("backups") ? r["backups"].size() : 0)
                  << " backups.\n";
        if (r.contains("backups"))
          for (const auto& b : r["backups"]) {
            if (b.value("ok", true)) continue;
            std::cout << "DAMAGED " << JStr(b, "id") << " ("
                      << JStr(b, "instance") << ")\n";
            for (const auto& e : b.value("errors", Json::array()))
              std::cout << "  " << e.get<std::string>() << "\n";
          }
      }
      size_t damaged = r.value("damaged", Json::array()).size();
      if (damaged > 0)
        return Err(ErrorCode::kDataLoss,
                   std::to_string(damaged) + " damaged backup(s)");
      if (!ctx.options.json) std::cout << "All backups OK.\n";
      return Ok();
    };
  });

  struct PruneArgs {
    std::string instance;
    int keep_last = 0, keep_daily = 0, keep_weekly = 0, keep_monthly = 0;
    bool dry_run = false;
  };
  auto pa = std::make_shared<PruneArgs>();
  auto* p = bk->add_subcommand(
      "prune",
      "Delete backups a retention policy does not keep (per instance)");
  p->add_option("--instance", pa->instance, "Only this instance's backups");
  p->add_option("--keep-last", pa->keep_last, "Keep the N newest");
  p->add_option("--keep-daily", pa->keep_daily,
                "Keep the newest of each of the last N days");
  p->add_option("--keep-weekly", pa->keep_weekly,
                "Keep the newest of each of the last N weeks");
  p->add_option("--keep-monthly", pa->keep_monthly,
                "Keep the newest of each of the last N months");
  p->add_flag("--dry-run", pa->dry_run, "Only show what would be removed");
  add_store(p);
  p->callback([&ctx, store, pa] {
    ctx.action = [&ctx, store, pa]() -> Status {
      ASSIGN_OR_RETURN(std::string s, ResolveBackupStore(ctx, *store));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      Json body = {{"keep_last", pa->keep_last},
                   {"keep_daily", pa->keep_daily},
                   {"keep_weekly", pa->keep_weekly},
                   {"keep_monthly", pa->keep_monthly},
                   {"dry_run", pa->dry_run}};
      if (!pa->instance.empty()) body["instance"] = pa->instance;
      ASSIGN_OR_RETURN(
          Json r,
          client->CallAndWait("POST", StoreUrl(s) + "/prune", body, kLongWait));
      if (ctx.options.json) {
        PrintJson(r);
        return Ok();
      }
      for (const auto& i : r.value("removed", Json::array()))
        std::cout << (pa->dry_run ? "would remove " : "removed ")
                  << i.get<std::string>() << "\n";
      std::cout << r.value("kept", Json::array()).size() << " kept, "
                << r.value("removed", Json::array()).size()
                << (pa->dry_run ? " would be removed" : " removed")
                << (pa->dry_run ? ".\n"
                                : " (run `backup gc` to free space).\n");
      return Ok();
    };
  });

  auto* g = bk->add_subcommand(
      "gc", "Remove chunks no backup uses and leftovers of crashed backups");
  add_store(g);
  g->callback([&ctx, store] {
    ctx.action = [&ctx, store]() -> Status {
      ASSIGN_OR_RETURN(std::string s, ResolveBackupStore(ctx, *store));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json r, client->CallAndWait("POST", StoreUrl(s) + "/gc",
                                                   Json::object(), kLongWait));
      if (ctx.options.json)
        PrintJson(r);
      else
        std::cout << "Removed " << JInt(r, "removed_chunks") << " chunks ("
                  << HumanSize(JBytes(r, "removed_bytes")) << "); "
                  << JInt(r, "kept_chunks") << " chunks ("
                  << HumanSize(JBytes(r, "kept_bytes")) << ") in use.\n";
      return Ok();
    };
  });

  auto file = std::make_shared<std::string>();
  auto* ex = bk->add_subcommand("export",
                                "Write a backup to one portable archive file");
  ex->add_option("id", *id, "Backup id")->required();
  ex->add_option("file", *file, "Archive file to create")->required();
  add_store(ex);
  ex->callback([&ctx, store, id, file] {
    ctx.action = [&ctx, store, id, file]() -> Status {
      ASSIGN_OR_RETURN(std::string s, ResolveBackupStore(ctx, *store));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(
          Json r,
          client->CallAndWait(
              "POST", StoreUrl(s) + "/backups/" + UrlEscape(*id) + "/export",
              Json{{"file", Absolute(*file)}}, kLongWait));
      if (ctx.options.json)
        PrintJson(r);
      else
        std::cout << "Backup " << *id << " exported to " << JStr(r, "file")
                  << " (" << HumanSize(JBytes(r, "size")) << ").\n";
      return Ok();
    };
  });

  auto* im = bk->add_subcommand(
      "import", "Add the backup in an exported archive file to a store");
  im->add_option("file", *file, "Archive file")->required();
  add_store(im);
  im->callback([&ctx, store, file] {
    ctx.action = [&ctx, store, file]() -> Status {
      ASSIGN_OR_RETURN(std::string s, ResolveBackupStore(ctx, *store));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json r, client->CallAndWait(
                                   "POST", StoreUrl(s) + "/import",
                                   Json{{"file", Absolute(*file)}}, kLongWait));
      if (ctx.options.json)
        PrintJson(r);
      else
        std::cout << "Imported backup " << JStr(r, "id") << " of "
                  << JStr(r, "instance") << ".\n";
      return Ok();
    };
  });
  return bk;
}

}  // namespace vireo::cli
