// Host, operation and token commands.

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

using std::chrono::seconds;

std::string Ratio(const Json& j) {
  const Json& r = JObj(j, "overcommit_ratio");
  if (!r.is_number()) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", r.get<double>());
  return buf;
}

Status Host(Context& ctx) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json server, client->Call("GET", "/1.0"));
  ASSIGN_OR_RETURN(Json resources, client->Call("GET", "/1.0/resources"));
  if (ctx.options.json) {
    PrintJson({{"server", server}, {"resources", resources}});
    return Ok();
  }
  const Json& env = JObj(server, "environment");
  Fields f;
  f.Add("Server", "vireo " + JStr(server, "version") + " (API " +
                      JStr(server, "api_version") + ", auth " +
                      JStr(server, "auth") + ")");
  std::string accel = JStr(env, "accelerator");
  if (accel.empty()) accel = JStr(resources, "accelerator");
  std::string reason = JStr(env, "accelerator_reason");
  if (reason.empty()) reason = JStr(resources, "accelerator_reason");
  f.Add("Accelerator", accel + (reason.empty() ? "" : " (" + reason + ")"));
  Json rest = resources;
  if (rest.is_object()) {
    rest.erase("accelerator");
    rest.erase("accelerator_reason");
    const Json& cpu = JObj(resources, "cpu");
    if (cpu.is_object()) {
      std::string model = JStr(cpu, "model");
      f.Add("CPUs", std::to_string(JInt(cpu, "total")) +
                        (model.empty() ? "" : " (" + model + ")"));
      f.Add("vCPUs allocated", std::to_string(JInt(cpu, "allocated")) + " of " +
                                   std::to_string(JInt(cpu, "limit")) +
                                   " (overcommit x" + Ratio(cpu) + ")");
      rest.erase("cpu");
    }
    const Json& mem = JObj(resources, "memory");
    if (mem.is_object()) {
      f.Add("Memory", HumanSize(JBytes(mem, "total")));
      f.Add("Memory allocated", HumanSize(JBytes(mem, "allocated")) + " of " +
                                    HumanSize(JBytes(mem, "limit")) +
                                    " (overcommit x" + Ratio(mem) + ")");
      rest.erase("memory");
    }
    const Json& inst = JObj(resources, "instances");
    if (inst.is_object()) {
      f.Add("Instances", std::to_string(JInt(inst, "total")) + " (" +
                             std::to_string(JInt(inst, "active")) +
                             " holding resources)");
      rest.erase("instances");
    }
  }
  // Whatever else the server reports, shown as is.
  if (!rest.empty()) FlattenInto(rest, "", f);
  std::cout << f.Render();
  return Ok();
}

std::string OpError(const Json& op) {
  std::string err = JStr(op, "err");
  std::string code = JStr(op, "code");
  if (err.empty()) return "";
  return code.empty() ? err : err + " [" + code + "]";
}

void PrintOperation(const Json& op) {
  Fields f;
  f.Add("ID", JStr(op, "id"));
  f.Add("Description", JStr(op, "description"));
  f.Add("Status", JStr(op, "status"));
  if (!OpError(op).empty()) f.Add("Error", OpError(op));
  f.Add("Created", FormatTime(JInt(op, "created_at")));
  f.Add("Updated", FormatTime(JInt(op, "updated_at")));
  const Json& res = JObj(op, "resources");
  if (res.is_object() && !res.empty()) f.Add("Resources", res.dump());
  const Json& meta = JObj(op, "metadata");
  if (!meta.is_null() && !(meta.is_object() && meta.empty()))
    f.Add("Result", meta.dump());
  std::cout << f.Render();
}

std::string OpUrl(const std::string& id) {
  return "/1.0/operations/" + UrlEscape(id);
}

void AddOperationList(CLI::App& parent, Context& ctx) {
  auto* l = parent.add_subcommand("list", "List recent operations");
  l->alias("ls");
  l->callback([&ctx] {
    ctx.action = [&ctx]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json ops, client->Call("GET", "/1.0/operations"));
      if (ctx.options.json) {
        PrintJson(ops);
        return Ok();
      }
      Table t({"ID", "STATUS", "DESCRIPTION", "CREATED", "ERROR"});
      if (ops.is_array()) {
        for (const auto& op : ops) {
          std::string err = OpError(op);
          t.Add({JStr(op, "id"), JStr(op, "status"), JStr(op, "description"),
                 FormatTime(JInt(op, "created_at")), err.empty() ? "-" : err});
        }
      }
      std::cout << t.Render();
      return Ok();
    };
  });
}

}  // namespace

void AddHostCommand(CLI::App& app, Context& ctx) {
  auto* h = app.add_subcommand(
      "host", "Show the host: accelerator, capacity, allocation");
  h->callback([&ctx] { ctx.action = [&ctx] { return Host(ctx); }; });
}

void AddOperationCommands(CLI::App& app, Context& ctx) {
  auto* op = app.add_subcommand("operation", "Inspect long-running operations");
  op->alias("op");
  op->require_subcommand(1);
  AddOperationList(*op, ctx);

  auto show_id = std::make_shared<std::string>();
  auto* s = op->add_subcommand("show", "Show one operation");
  s->add_option("id", *show_id, "Operation ID")->required();
  s->callback([&ctx, show_id] {
    ctx.action = [&ctx, show_id]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json o, client->Call("GET", OpUrl(*show_id)));
      ctx.options.json ? PrintJson(o) : PrintOperation(o);
      return Ok();
    };
  });

  struct WaitArgs {
    std::string id;
    int timeout = 60;
  };
  auto wait = std::make_shared<WaitArgs>();
  auto* w = op->add_subcommand("wait", "Wait for an operation to finish");
  w->add_option("id", wait->id, "Operation ID")->required();
  w->add_option("--timeout", wait->timeout, "Seconds to wait")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  w->callback([&ctx, wait] {
    ctx.action = [&ctx, wait]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      client->set_request_timeout(seconds(wait->timeout + 30));
      std::string url =
          OpUrl(wait->id) + "/wait?timeout=" + std::to_string(wait->timeout);
      ASSIGN_OR_RETURN(Json o, client->Call("GET", url));
      ctx.options.json ? PrintJson(o) : PrintOperation(o);
      std::string status = JStr(o, "status");
      if (status == "Failure")
        return Err(ErrorCode::kFailedPrecondition, OpError(o));
      if (status == "Running") {
        return Err(ErrorCode::kTimeout,
                   "operation " + wait->id + " still running after " +
                       std::to_string(wait->timeout) + "s");
      }
      return Ok();
    };
  });
}

void AddTokenCommands(CLI::App& app, Context& ctx) {
  auto* tok = app.add_subcommand("token",
                                 "Manage API tokens for remote (HTTPS) access");
  tok->require_subcommand(1);

  auto create_name = std::make_shared<std::string>();
  auto* c =
      tok->add_subcommand("create", "Create a token and print its secret once");
  c->add_option("name", *create_name, "Token name")->required();
  c->callback([&ctx, create_name] {
    ctx.action = [&ctx, create_name]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json t, client->Call("POST", "/1.0/tokens",
                                            Json{{"name", *create_name}}));
      if (ctx.options.json) {
        PrintJson(t);
        return Ok();
      }
      std::cout << "Token " << JStr(t, "name") << " created (id "
                << JStr(t, "id") << ").\n"
                << "Secret, shown only this once; use it with --token or "
                   "VIREO_TOKEN:\n"
                << JStr(t, "secret") << "\n";
      return Ok();
    };
  });

  auto* l = tok->add_subcommand("list", "List tokens (never their secrets)");
  l->alias("ls");
  l->callback([&ctx] {
    ctx.action = [&ctx]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json tokens, client->Call("GET", "/1.0/tokens"));
      if (ctx.options.json) {
        PrintJson(tokens);
        return Ok();
      }
      Table t({"ID", "NAME", "CREATED"});
      if (tokens.is_array()) {
        for (const auto& k : tokens) {
          t.Add({JStr(k, "id"), JStr(k, "name"),
                 FormatTime(JInt(k, "created_at"))});
        }
      }
      std::cout << t.Render();
      return Ok();
    };
  });

  auto revoke_id = std::make_shared<std::string>();
  auto* r = tok->add_subcommand("revoke", "Revoke a token by ID or name");
  r->add_option("id", *revoke_id, "Token ID or name")->required();
  r->callback([&ctx, revoke_id] {
    ctx.action = [&ctx, revoke_id]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->Call("DELETE", "/1.0/tokens/" + UrlEscape(*revoke_id)));
      if (!ctx.options.json)
        std::cout << "Token " << *revoke_id << " revoked\n";
      return Ok();
    };
  });
}

}  // namespace vireo::cli
