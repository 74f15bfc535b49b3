// Snapshot, copy and instance option commands: vireo snapshot ...,
// vireo copy NAME[/SNAP] NEW, vireo config set|unset|show.

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

constexpr auto kLong = std::chrono::seconds(3600);

std::string SnapUrl(const std::string& vm, const std::string& snap) {
  return InstanceUrl(vm) + "/snapshots/" + UrlEscape(snap);
}

// The snapshot tree, children under their parent in creation order; the
// current snapshot is marked with '*'.
std::string RenderTree(const Json& list) {
  std::map<std::string, std::vector<const Json*>> children;
  std::map<std::string, bool> known;
  for (const Json& s : list) known[JStr(s, "name")] = true;
  for (const Json& s : list) {
    std::string parent = JStr(s, "parent");
    children[known.count(parent) ? parent : ""].push_back(&s);
  }
  std::string out;
  std::function<void(const std::string&, int)> walk =
      [&](const std::string& parent, int depth) {
        for (const Json* s : children[parent]) {
          bool current = s->value("current", false);
          out += std::string(static_cast<size_t>(depth) * 2, ' ');
          out += current ? "* " : "- ";
          out += JStr(*s, "name");
          out += "  " + FormatTime(JInt(*s, "created_at"));
          if (s->value("memory", false))
            out += "  memory " + HumanSize(JBytes(*s, "vm_state_size"));
          if (current) out += "  (current)";
          out += "\n";
          if (depth < 200) walk(JStr(*s, "name"), depth + 1);
        }
      };
  walk("", 0);
  return out;
}

struct SnapArgs {
  std::string vm, snap;
  bool memory = false, yes = false;
};

void AddSnapshot(CLI::App& app, Context& ctx) {
  auto* sn = app.add_subcommand("snapshot", "Manage instance snapshots");
  sn->require_subcommand(1);

  auto a = std::make_shared<SnapArgs>();
  auto* c = sn->add_subcommand("create", "Take a snapshot (qcow2 internal)");
  c->add_option("name", a->vm, "Instance")->required();
  c->add_option("snapshot", a->snap, "Snapshot name")->required();
  c->add_flag("--memory", a->memory,
              "Also save RAM and device state (running VMs; restore resumes "
              "the guest where it was)");
  c->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(
          Json r, client->CallAndWait(
                      "POST", InstanceUrl(a->vm) + "/snapshots",
                      Json{{"name", a->snap}, {"memory", a->memory}}, kLong));
      if (ctx.options.json)
        PrintJson(r);
      else
        std::cout << "Snapshot " << a->snap << " of " << a->vm << " created.\n";
      return Ok();
    };
  });

  auto la = std::make_shared<SnapArgs>();
  auto* l = sn->add_subcommand("list", "Show an instance's snapshot tree");
  l->alias("ls");
  l->add_option("name", la->vm, "Instance")->required();
  l->callback([&ctx, la] {
    ctx.action = [&ctx, la]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(
          Json list,
          client->Call("GET", InstanceUrl(la->vm) + "/snapshots?recursion=1"));
      if (ctx.options.json) {
        PrintJson(list);
        return Ok();
      }
      if (!list.is_array() || list.empty()) {
        std::cout << "No snapshots.\n";
        return Ok();
      }
      std::cout << RenderTree(list);
      return Ok();
    };
  });

  auto ra = std::make_shared<SnapArgs>();
  auto* r = sn->add_subcommand(
      "restore", "Go back to a snapshot (discards the current state)");
  r->add_option("name", ra->vm, "Instance")->required();
  r->add_option("snapshot", ra->snap, "Snapshot name")->required();
  r->add_flag("--yes,-y", ra->yes,
              "Confirm: everything since (and a running VM's memory) is lost");
  r->callback([&ctx, ra] {
    ctx.action = [&ctx, ra]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(
          Json res,
          client->CallAndWait("POST", SnapUrl(ra->vm, ra->snap) + "/restore",
                              Json{{"confirm", ra->yes}}, kLong));
      if (ctx.options.json)
        PrintJson(res);
      else
        std::cout << ra->vm << " restored to snapshot " << ra->snap << ".\n";
      return Ok();
    };
  });

  auto da = std::make_shared<SnapArgs>();
  auto* d = sn->add_subcommand("delete", "Delete a snapshot");
  d->alias("rm");
  d->add_option("name", da->vm, "Instance")->required();
  d->add_option("snapshot", da->snap, "Snapshot name")->required();
  d->callback([&ctx, da] {
    ctx.action = [&ctx, da]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->CallAndWait("DELETE", SnapUrl(da->vm, da->snap), std::nullopt,
                              kLong));
      if (!ctx.options.json)
        std::cout << "Snapshot " << da->snap << " deleted.\n";
      return Ok();
    };
  });
}

void AddCopy(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SnapArgs>();
  auto* c = app.add_subcommand(
      "copy", "Copy an instance (or one of its snapshots) to a new instance");
  c->add_option("source", a->vm, "NAME or NAME/SNAPSHOT")->required();
  c->add_option("new", a->snap, "New instance name")->required();
  c->callback([&ctx, a] {
    ctx.action = [&ctx, a]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      std::string vm = a->vm, snap;
      if (auto slash = vm.find('/'); slash != std::string::npos) {
        snap = vm.substr(slash + 1);
        vm = vm.substr(0, slash);
      }
      Json body = {{"name", a->snap}};
      if (!snap.empty()) body["snapshot"] = snap;
      ASSIGN_OR_RETURN(
          Json r,
          client->CallAndWait("POST", InstanceUrl(vm) + "/copy", body, kLong));
      if (ctx.options.json)
        PrintJson(r);
      else
        std::cout << "Instance " << a->snap << " created from " << a->vm
                  << ".\n";
      return Ok();
    };
  });
}

struct ConfigArgs {
  std::string vm;
  std::vector<std::string> items;
};

Status Patch(Context& ctx, const std::string& vm, const Json& options) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json r, client->Call("PATCH", InstanceUrl(vm),
                                        Json{{"options", options}}));
  if (ctx.options.json) PrintJson(JObj(r, "options"));
  return Ok();
}

void AddConfig(CLI::App& app, Context& ctx) {
  auto* cf = app.add_subcommand("config", "Instance options");
  cf->require_subcommand(1);

  auto sa = std::make_shared<ConfigArgs>();
  auto* s = cf->add_subcommand("set", "Set options: vireo config set NAME k=v");
  s->add_option("name", sa->vm, "Instance")->required();
  s->add_option("options", sa->items, "key=value ...")->required();
  s->callback([&ctx, sa] {
    ctx.action = [&ctx, sa]() -> Status {
      Json options = Json::object();
      for (const std::string& kv : sa->items) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0)
          return Err(ErrorCode::kInvalidArgument,
                     "expected key=value, got '" + kv + "'");
        options[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
      return Patch(ctx, sa->vm, options);
    };
  });

  auto ua = std::make_shared<ConfigArgs>();
  auto* u = cf->add_subcommand("unset", "Remove options");
  u->add_option("name", ua->vm, "Instance")->required();
  u->add_option("keys", ua->items, "key ...")->required();
  u->callback([&ctx, ua] {
    ctx.action = [&ctx, ua]() -> Status {
      Json options = Json::object();
      for (const std::string& k : ua->items) options[k] = "";
      return Patch(ctx, ua->vm, options);
    };
  });

  auto wa = std::make_shared<ConfigArgs>();
  auto* w = cf->add_subcommand("show", "Show an instance's options");
  w->add_option("name", wa->vm, "Instance")->required();
  w->callback([&ctx, wa] {
    ctx.action = [&ctx, wa]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json inst, client->Call("GET", InstanceUrl(wa->vm)));
      const Json& options = JObj(inst, "options");
      if (ctx.options.json) {
        PrintJson(options.is_null() ? Json::object() : options);
        return Ok();
      }
      if (options.is_object())
        for (auto it = options.begin(); it != options.end(); ++it)
          std::cout << it.key() << "="
                    << (it->is_string() ? it->get<std::string>() : "") << "\n";
      return Ok();
    };
  });
}

}  // namespace

void AddSnapshotCommands(CLI::App& app, Context& ctx) {
  AddSnapshot(app, ctx);
  AddCopy(app, ctx);
  AddConfig(app, ctx);
}

}  // namespace vireo::cli
