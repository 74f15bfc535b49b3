// Managed networks: vireo network create/list/show/delete/reserve/forward.

#include <iostream>
#include <memory>
#include <sstream>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

std::string NetworkUrl(const std::string& name) {
  return "/1.0/networks/" + UrlEscape(name);
}

void PrintNetwork(const Json& n) {
  Fields f;
  f.Add("Name", JStr(n, "name"));
  f.Add("Subnet", JStr(n, "subnet"));
  f.Add("Gateway", JStr(n, "gateway"));
  f.Add("Bridge", JStr(n, "bridge"));
  f.Add("NAT", n.value("nat", false) ? "yes" : "no");
  f.Add("Isolated", n.value("isolated", false) ? "yes" : "no");
  std::cout << f.Render();
  const Json& leases = JObj(n, "leases");
  if (leases.is_array() && !leases.empty()) {
    Table t({"  LEASE", "MAC", "HOSTNAME"});
    for (const auto& l : leases)
      t.Add({"  " + JStr(l, "ip"), JStr(l, "mac"), JStr(l, "hostname")});
    std::cout << "Leases:\n" << t.Render();
  }
  const Json& res = JObj(n, "reservations");
  if (res.is_array() && !res.empty()) {
    Table t({"  RESERVED", "MAC"});
    for (const auto& r : res) t.Add({"  " + JStr(r, "ip"), JStr(r, "mac")});
    std::cout << "Reservations:\n" << t.Render();
  }
  const Json& fwd = JObj(n, "forwards");
  if (fwd.is_array() && !fwd.empty()) {
    Table t({"  HOST PORT", "PROTO", "INSTANCE", "PORT"});
    for (const auto& x : fwd)
      t.Add({"  " + std::to_string(JInt(x, "host_port")), JStr(x, "proto"),
             JStr(x, "instance"), std::to_string(JInt(x, "port"))});
    std::cout << "Forwards:\n" << t.Render();
  }
}

// Runs one call and prints the resulting network (or its JSON).
Status CallAndShow(Context& ctx, const std::string& method,
                   const std::string& url, const Json& body,
                   const std::string& done) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json out, client->Call(method, url, body));
  if (ctx.options.json) {
    PrintJson(out);
  } else {
    std::cout << done << "\n";
  }
  return Ok();
}

}  // namespace

void AddNetworkOption(CLI::App* command, std::vector<std::string>* specs) {
  command
      ->add_option("--network", *specs,
                   "Put a NIC on a managed network: NAME[,ip=IP][,mac=MAC]; "
                   "repeatable")
      ->allow_extra_args(false);
}

Status AddNetworksToRequest(const std::vector<std::string>& specs,
                            Json* request) {
  if (specs.empty()) return Ok();
  Json nics = Json::array();
  for (const auto& spec : specs) {
    std::stringstream parts(spec);
    std::string item;
    Json nic = Json::object();
    bool first = true;
    while (std::getline(parts, item, ',')) {
      if (first) {
        nic["network"] = item;
        first = false;
        continue;
      }
      auto eq = item.find('=');
      std::string key = item.substr(0, eq);
      if (eq == std::string::npos || (key != "ip" && key != "mac"))
        return Err(ErrorCode::kInvalidArgument,
                   "--network " + spec + ": expected NAME[,ip=IP][,mac=MAC]");
      nic[key] = item.substr(eq + 1);
    }
    nics.push_back(nic);
  }
  (*request)["networks"] = nics;
  return Ok();
}

std::string InstanceAddresses(const Json& instance) {
  std::string out;
  const Json& nics = JObj(instance, "nics");
  if (nics.is_array())
    for (const auto& n : nics) {
      std::string ip = JStr(n, "ipv4");
      if (ip.empty()) continue;
      out += (out.empty() ? "" : ",") + ip;
    }
  return out.empty() ? "-" : out;
}

void AddNetworkCommands(CLI::App& app, Context& ctx) {
  auto* net = app.add_subcommand("network", "Manage networks");
  net->require_subcommand(1);

  struct CreateArgs {
    std::string name, subnet;
    bool nat = false, isolated = false;
  };
  auto ca = std::make_shared<CreateArgs>();
  auto* c = net->add_subcommand("create", "Create a managed network");
  c->add_option("name", ca->name, "Network name")->required();
  c->add_option("--subnet", ca->subnet, "IPv4 subnet, e.g. 10.88.0.0/24")
      ->required();
  c->add_flag("--nat", ca->nat, "Masquerade traffic leaving the subnet");
  c->add_flag("--isolated", ca->isolated,
              "Guests cannot reach each other, only the host");
  c->callback([&ctx, ca] {
    ctx.action = [&ctx, ca] {
      Json body = {{"name", ca->name},
                   {"subnet", ca->subnet},
                   {"nat", ca->nat},
                   {"isolated", ca->isolated}};
      return CallAndShow(ctx, "POST", "/1.0/networks", body,
                         "Network " + ca->name + " created");
    };
  });

  auto* l = net->add_subcommand("list", "List networks");
  l->alias("ls");
  l->callback([&ctx] {
    ctx.action = [&ctx]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json list,
                       client->Call("GET", "/1.0/networks?recursion=1"));
      if (ctx.options.json) {
        PrintJson(list);
        return Ok();
      }
      Table t({"NAME", "SUBNET", "BRIDGE", "NAT", "ISOLATED", "LEASES"});
      for (const auto& n : list)
        t.Add({JStr(n, "name"), JStr(n, "subnet"), JStr(n, "bridge"),
               n.value("nat", false) ? "yes" : "no",
               n.value("isolated", false) ? "yes" : "no",
               std::to_string(JObj(n, "leases").size())});
      std::cout << t.Render();
      return Ok();
    };
  });

  auto name = std::make_shared<std::string>();
  auto* s = net->add_subcommand("show", "Show a network and its leases");
  s->add_option("name", *name, "Network name")->required();
  s->callback([&ctx, name] {
    ctx.action = [&ctx, name]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json n, client->Call("GET", NetworkUrl(*name)));
      if (ctx.options.json)
        PrintJson(n);
      else
        PrintNetwork(n);
      return Ok();
    };
  });

  auto* d = net->add_subcommand("delete", "Delete an unused network");
  d->add_option("name", *name, "Network name")->required();
  d->callback([&ctx, name] {
    ctx.action = [&ctx, name] {
      return CallAndShow(ctx, "DELETE", NetworkUrl(*name), Json(),
                         "Network " + *name + " deleted");
    };
  });

  struct ReserveArgs {
    std::string network, mac, ip;
    bool remove = false;
  };
  auto ra = std::make_shared<ReserveArgs>();
  auto* r = net->add_subcommand("reserve", "Reserve an IP for a MAC address");
  r->add_option("name", ra->network, "Network name")->required();
  r->add_option("--mac", ra->mac, "MAC address")->required();
  r->add_option("--ip", ra->ip, "IPv4 address in the subnet");
  r->add_flag("--remove", ra->remove, "Remove the MAC's reservation");
  r->callback([&ctx, ra] {
    ctx.action = [&ctx, ra] {
      if (ra->remove)
        return CallAndShow(
            ctx, "DELETE",
            NetworkUrl(ra->network) + "/reservations/" + UrlEscape(ra->mac),
            Json(), "Reservation removed");
      return CallAndShow(ctx, "POST", NetworkUrl(ra->network) + "/reservations",
                         {{"mac", ra->mac}, {"ip", ra->ip}},
                         "Reserved " + ra->ip + " for " + ra->mac);
    };
  });

  struct ForwardArgs {
    std::string network, instance, proto = "tcp";
    int host_port = 0, port = 0;
  };
  auto fa = std::make_shared<ForwardArgs>();
  auto* f = net->add_subcommand("forward", "Port forwards to instances");
  f->require_subcommand(1);
  auto* fadd = f->add_subcommand("add", "Forward a host port to an instance");
  fadd->add_option("name", fa->network, "Network name")->required();
  fadd->add_option("--host-port", fa->host_port, "Port on the host")
      ->required();
  fadd->add_option("--instance", fa->instance, "Target instance")->required();
  fadd->add_option("--port", fa->port, "Port in the instance")->required();
  fadd->add_option("--proto", fa->proto, "tcp or udp")->capture_default_str();
  fadd->callback([&ctx, fa] {
    ctx.action = [&ctx, fa] {
      Json body = {{"host_port", fa->host_port},
                   {"instance", fa->instance},
                   {"port", fa->port},
                   {"proto", fa->proto}};
      return CallAndShow(
          ctx, "POST", NetworkUrl(fa->network) + "/forwards", body,
          "Forwarding host port " + std::to_string(fa->host_port) + " to " +
              fa->instance + ":" + std::to_string(fa->port));
    };
  });
  auto* frm = f->add_subcommand("remove", "Remove a port forward");
  frm->add_option("name", fa->network, "Network name")->required();
  frm->add_option("--host-port", fa->host_port, "Port on the host")->required();
  frm->add_option("--proto", fa->proto, "tcp or udp")->capture_default_str();
  frm->callback([&ctx, fa] {
    ctx.action = [&ctx, fa] {
      return CallAndShow(ctx, "DELETE",
                         NetworkUrl(fa->network) + "/forwards/" +
                             std::to_string(fa->host_port) +
                             "?proto=" + UrlEscape(fa->proto),
                         Json(), "Forward removed");
    };
  });
}

}  // namespace vireo::cli
