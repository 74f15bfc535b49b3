// Storage pool and volume commands: vireo storage ..., vireo volume ...

#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

std::string PoolUrl(const std::string& pool) {
  return "/1.0/storage-pools/" + UrlEscape(pool);
}

// "POOL/NAME" or "NAME" (in the default pool) -> the volume's URL.
std::string VolumeUrl(const std::string& ref) {
  auto slash = ref.find('/');
  std::string pool =
      slash == std::string::npos ? "default" : ref.substr(0, slash);
  std::string name = slash == std::string::npos ? ref : ref.substr(slash + 1);
  return PoolUrl(pool) + "/volumes/" + UrlEscape(name);
}

std::string Quota(const Json& p) {
  uint64_t q = JBytes(p, "quota_bytes");
  return q ? HumanSize(q) : "-";
}

struct PoolArgs {
  std::string name, type = "dir", path, vg, thin_pool, quota;
};

void AddStorage(CLI::App& app, Context& ctx) {
  auto* st = app.add_subcommand("storage", "Manage storage pools");
  st->require_subcommand(1);

  auto a = std::make_shared<PoolArgs>();
  auto* c = st->add_subcommand("create", "Add a storage pool");
  c->add_option("name", a->name, "Pool name")->required();
  c->add_option("--type", a->type, "dir or lvm-thin")->capture_default_str();
  c->add_option("--path", a->path, "Directory (dir pools)");
  c->add_option("--vg", a->vg, "Volume group (lvm-thin pools)");
  c->add_option("--thinpool", a->thin_pool, "Thin pool LV (lvm-thin pools)");
  c->add_option("--quota", a->quota, "Most volume space the pool may hand out");
  c->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      Json body = {{"name", a->name}, {"type", a->type}};
      if (!a->path.empty()) body["path"] = a->path;
      if (!a->vg.empty()) body["vg"] = a->vg;
      if (!a->thin_pool.empty()) body["thin_pool"] = a->thin_pool;
      if (!a->quota.empty()) body["quota"] = a->quota;
      ASSIGN_OR_RETURN(Json p,
                       client->Call("POST", "/1.0/storage-pools", body));
      if (ctx.options.json)
        PrintJson(p);
      else
        std::cout << "Storage pool " << JStr(p, "name") << " created.\n";
      return Ok();
    };
  });

  auto* l = st->add_subcommand("list", "List storage pools and their usage");
  l->alias("ls");
  l->callback([&ctx] {
    ctx.action = [&ctx]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json pools, client->Call("GET", "/1.0/storage-pools"));
      if (ctx.options.json) {
        PrintJson(pools);
        return Ok();
      }
      Table t({"NAME", "TYPE", "CAPACITY", "USED", "ALLOCATED", "QUOTA",
               "VOLUMES"});
      if (pools.is_array()) {
        for (const auto& p : pools) {
          t.Add({JStr(p, "name"), JStr(p, "type"),
                 HumanSize(JBytes(p, "capacity_bytes")),
                 HumanSize(JBytes(p, "used_bytes")),
                 HumanSize(JBytes(p, "allocated_bytes")), Quota(p),
                 std::to_string(JInt(p, "volumes"))});
        }
      }
      std::cout << t.Render();
      return Ok();
    };
  });

  auto show_name = std::make_shared<std::string>();
  auto* s = st->add_subcommand("show", "Show one storage pool");
  s->add_option("name", *show_name, "Pool name")->required();
  s->callback([&ctx, show_name] {
    ctx.action = [&ctx, show_name]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json p, client->Call("GET", PoolUrl(*show_name)));
      if (ctx.options.json) {
        PrintJson(p);
        return Ok();
      }
      Fields f;
      FlattenInto(p, "", f);
      std::cout << f.Render();
      return Ok();
    };
  });

  auto del_name = std::make_shared<std::string>();
  auto* d = st->add_subcommand("delete", "Remove an empty storage pool");
  d->alias("rm");
  d->add_option("name", *del_name, "Pool name")->required();
  d->callback([&ctx, del_name] {
    ctx.action = [&ctx, del_name]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->Call("DELETE", PoolUrl(*del_name)));
      return Ok();
    };
  });
}

void AddVolume(CLI::App& app, Context& ctx) {
  auto* vol = app.add_subcommand("volume", "Manage storage volumes");
  vol->require_subcommand(1);

  auto ref = std::make_shared<std::string>();
  auto size = std::make_shared<std::string>();
  auto* c = vol->add_subcommand("create", "Create an empty volume");
  c->add_option("volume", *ref, "POOL/NAME, or NAME in the default pool")
      ->required();
  c->add_option("--size", *size, "Size, e.g. 1G")->required();
  c->callback([&ctx, ref, size] {
    ctx.action = [&ctx, ref, size]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      auto slash = ref->find('/');
      std::string pool =
          slash == std::string::npos ? "default" : ref->substr(0, slash);
      std::string name =
          slash == std::string::npos ? *ref : ref->substr(slash + 1);
      ASSIGN_OR_RETURN(Json v,
                       client->Call("POST", PoolUrl(pool) + "/volumes",
                                    Json{{"name", name}, {"size", *size}}));
      if (ctx.options.json)
        PrintJson(v);
      else
        std::cout << "Volume " << JStr(v, "pool") << "/" << JStr(v, "name")
                  << " created (" << HumanSize(JBytes(v, "size_bytes"))
                  << ").\n";
      return Ok();
    };
  });

  auto list_pool = std::make_shared<std::string>();
  auto* l = vol->add_subcommand("list", "List volumes");
  l->alias("ls");
  l->add_option("pool", *list_pool, "Only this pool");
  l->callback([&ctx, list_pool] {
    ctx.action = [&ctx, list_pool]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      std::string url = list_pool->empty() ? "/1.0/volumes"
                                           : PoolUrl(*list_pool) + "/volumes";
      ASSIGN_OR_RETURN(Json vols, client->Call("GET", url));
      if (ctx.options.json) {
        PrintJson(vols);
        return Ok();
      }
      Table t({"POOL", "NAME", "SIZE", "FORMAT", "ATTACHED TO"});
      if (vols.is_array()) {
        for (const auto& v : vols) {
          std::string at = JStr(v, "attached_to");
          t.Add({JStr(v, "pool"), JStr(v, "name"),
                 HumanSize(JBytes(v, "size_bytes")), JStr(v, "format"),
                 at.empty() ? "-" : at});
        }
      }
      std::cout << t.Render();
      return Ok();
    };
  });

  // attach/detach VOL INSTANCE
  for (const char* verb : {"attach", "detach"}) {
    auto vref = std::make_shared<std::string>();
    auto inst = std::make_shared<std::string>();
    std::string action = verb;
    auto* a = vol->add_subcommand(
        action, action == "attach"
                    ? "Attach a volume to an instance (hot-plug if running)"
                    : "Detach a volume from an instance (hot-unplug if "
                      "running)");
    a->add_option("volume", *vref, "POOL/NAME or NAME")->required();
    a->add_option("instance", *inst, "Instance name")->required();
    a->callback([&ctx, vref, inst, action] {
      ctx.action = [&ctx, vref, inst, action]() -> Status {
        ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
        TRY(client->CallAndWait("POST", VolumeUrl(*vref) + "/" + action,
                                Json{{"instance", *inst}}));
        return Ok();
      };
    });
  }

  auto rref = std::make_shared<std::string>();
  auto rsize = std::make_shared<std::string>();
  auto* r = vol->add_subcommand("resize", "Grow a volume (online if in use)");
  r->add_option("volume", *rref, "POOL/NAME or NAME")->required();
  r->add_option("size", *rsize, "New size, e.g. 2G")->required();
  r->callback([&ctx, rref, rsize] {
    ctx.action = [&ctx, rref, rsize]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->CallAndWait("POST", VolumeUrl(*rref) + "/resize",
                              Json{{"size", *rsize}}));
      return Ok();
    };
  });

  auto dref = std::make_shared<std::string>();
  auto* d = vol->add_subcommand("delete", "Delete a volume that is not in use");
  d->alias("rm");
  d->add_option("volume", *dref, "POOL/NAME or NAME")->required();
  d->callback([&ctx, dref] {
    ctx.action = [&ctx, dref]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->Call("DELETE", VolumeUrl(*dref)));
      return Ok();
    };
  });
}

}  // namespace

void AddStorageCommands(CLI::App& app, Context& ctx) {
  AddStorage(app, ctx);
  AddVolume(app, ctx);
}

}  // namespace vireo::cli
