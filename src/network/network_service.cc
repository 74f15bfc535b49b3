#include "network/network_service.h"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "network/host_net.h"
#include "network/nft_ruleset.h"

namespace vireo {

namespace {

constexpr const char* kKind = "network";

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string TapName(const Instance& inst, size_t nic_index) {
  // "vt" + 11 id chars + index: unique per instance NIC, within IFNAMSIZ.
  return "vt" + inst.id.substr(0, 11) + std::to_string(nic_index);
}

Status WriteFileAtomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return ErrnoErr("write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Err(ErrorCode::kIo, "rename " + tmp + ": " + ec.message());
  return Ok();
}

}  // namespace

Result<std::unique_ptr<NetworkService>> NetworkService::Create(
    Store* store, Options options) {
  auto svc =
      std::unique_ptr<NetworkService>(new NetworkService(store, options));
  std::error_code ec;
  std::filesystem::create_directories(options.run_dir, ec);
  if (ec) return Err(ErrorCode::kIo, "create " + options.run_dir);
  ASSIGN_OR_RETURN(auto stored, store->ListObjects(kKind));
  {
    std::lock_guard lock(svc->mu_);
    for (const Json& j : stored) {
      auto net = NetworkConfigFromJson(j);
      if (!net) {
        LOG_ERROR("network: {}", net.error().ToString());
        continue;
      }
      // One broken network must not keep the daemon (and its VMs) down.
      if (auto st = svc->BringUpLocked(*net); !st)
        LOG_ERROR("network {}: {}", net->name, st.error().ToString());
    }
    if (auto st = svc->ApplyRulesLocked(); !st)
      LOG_ERROR("network: {}", st.error().ToString());
  }
  if (options.default_network == "auto" &&
      !store->GetObject(kKind, kDefaultName)) {
    auto made = svc->CreateNetwork({kDefaultName, kDefaultSubnet, true, false});
    if (made)
      LOG_INFO("network: created default network {} ({})", kDefaultName,
               kDefaultSubnet);
    else
      LOG_WARN("network: no default network: {}", made.error().ToString());
  }
  svc->supervisor_ = std::thread([s = svc.get()] { s->SuperviseLoop(); });
  return svc;
}

NetworkService::~NetworkService() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (supervisor_.joinable()) supervisor_.join();
  std::lock_guard lock(mu_);
  dnsmasq_.clear();  // kills them; the next vireod starts fresh ones
}

void NetworkService::SuperviseLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::seconds(1));
    if (stopping_) break;
    for (auto& [name, d] : dnsmasq_) d->EnsureRunning();
    // Forward targets follow DHCP leases, so rules are recomputed; nft
    // runs only when the text changed.
    if (auto st = ApplyRulesLocked(); !st)
      LOG_WARN("network: {}", st.error().ToString());
  }
}

Result<NetworkConfig> NetworkService::Load(const std::string& name) {
  TRY(ValidateNetworkName(name));
  auto j = store_->GetObject(kKind, name);
  if (!j) {
    if (j.error().code() == ErrorCode::kNotFound)
      return Err(ErrorCode::kNotFound, "network '" + name + "' does not exist");
    return tl::unexpected(j.error());
  }
  return NetworkConfigFromJson(*j);
}

Status NetworkService::BringUpLocked(const NetworkConfig& n) {
  std::string dir = options_.run_dir + "/" + n.name;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Err(ErrorCode::kIo, "create " + dir + ": " + ec.message());
  TRY(EnsureBridge(n.Bridge(), FormatIpv4(n.subnet.Gateway()) + "/" +
                                   std::to_string(n.subnet.prefix)));
  if (n.nat) TRY(EnableIpForwarding());
  TRY(WriteHostsLocked(n));
  dnsmasq_.erase(n.name);
  ASSIGN_OR_RETURN(auto d, Dnsmasq::Start(n, DnsmasqPaths::In(dir)));
  dnsmasq_[n.name] = std::move(d);
  return Ok();
}

void NetworkService::TearDownLocked(const NetworkConfig& n) {
  dnsmasq_.erase(n.name);
  if (auto st = DeleteLink(n.Bridge()); !st)
    LOG_WARN("network {}: {}", n.name, st.error().ToString());
  std::error_code ec;
  std::filesystem::remove_all(options_.run_dir + "/" + n.name, ec);
}

Status NetworkService::WriteHostsLocked(const NetworkConfig& n) {
  std::vector<DhcpHost> hosts;
  for (const auto& r : n.reservations) hosts.push_back({r.mac, r.ip, ""});
  ASSIGN_OR_RETURN(auto instances, store_->ListInstances());
  for (const auto& inst : instances)
    for (const auto& nic : inst.config.nics)
      if (nic.type == "network" && nic.network == n.name)
        hosts.push_back({Lower(nic.mac), nic.ip, inst.name()});
  return WriteFileAtomic(
      DnsmasqPaths::In(options_.run_dir + "/" + n.name).hosts_file,
      HostsFileText(hosts));
}

std::vector<Lease> NetworkService::LeasesLocked(const std::string& name) {
  std::ifstream in(DnsmasqPaths::In(options_.run_dir + "/" + name).lease_file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseLeases(ss.str());
}

Status NetworkService::ApplyRulesLocked() {
  ASSIGN_OR_RETURN(auto stored, store_->ListObjects(kKind));
  std::vector<NetworkConfig> networks;
  std::vector<ResolvedForward> forwards;
  for (const Json& j : stored) {
    auto n = NetworkConfigFromJson(j);
    if (!n) continue;
    for (const auto& f : n->forwards) {
      auto inst = store_->GetInstance(f.instance);
      if (!inst) continue;
      for (const auto& nic : inst->config.nics) {
        if (nic.type != "network" || nic.network != n->name) continue;
        std::string ip = nic.ip;
        for (const auto& l : LeasesLocked(n->name))
          if (ip.empty() && Lower(l.mac) == Lower(nic.mac)) ip = l.ip;
        if (!ip.empty()) forwards.push_back({f.proto, f.host_port, ip, f.port});
        break;
      }
    }
    networks.push_back(std::move(*n));
  }
  if (networks.empty()) {
    if (!applied_rules_.empty())
      TRY(DeleteNftTable(std::string("inet ") + kNftTable));
    applied_rules_.clear();
    return Ok();
  }
  std::string rules = BuildRuleset(networks, forwards);
  if (rules == applied_rules_) return Ok();
  TRY(ApplyNftRuleset(rules));
  applied_rules_ = std::move(rules);
  return Ok();
}

Result<Json> NetworkService::CreateNetwork(const NetworkCreateRequest& r) {
  TRY(ValidateNetworkName(r.name));
  ASSIGN_OR_RETURN(Ipv4Net subnet, ParseCidr(r.subnet));
  TRY(ValidateNetworkSubnet(subnet));
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto stored, store_->ListObjects(kKind));
  for (const Json& j : stored) {
    ASSIGN_OR_RETURN(NetworkConfig other, NetworkConfigFromJson(j));
    if (other.name == r.name)
      return Err(ErrorCode::kAlreadyExists,
                 "network '" + r.name + "' already exists");
    if (other.subnet.Overlaps(subnet))
      return Err(ErrorCode::kInvalidArgument,
                 "subnet " + subnet.ToString() + " overlaps network '" +
                     other.name + "' (" + other.subnet.ToString() + ")");
  }
  NetworkConfig n;
  n.name = r.name;
  n.subnet = subnet;
  n.nat = r.nat;
  n.isolated = r.isolated;
  n.created_at = static_cast<int64_t>(::time(nullptr));
  if (LinkExists(n.Bridge()))
    return Err(ErrorCode::kAlreadyExists,
               "a host interface named " + n.Bridge() + " already exists");
  ASSIGN_OR_RETURN(auto host, HostSubnets("vbr-"));
  for (const auto& h : host)
    if (h.Overlaps(subnet))
      return Err(ErrorCode::kInvalidArgument,
                 "subnet " + subnet.ToString() +
                     " overlaps a host route or address (" + h.ToString() +
                     ")");
  TRY(store_->CreateObject(kKind, n.name, ToJson(n)));
  Status up = BringUpLocked(n);
  if (up) up = ApplyRulesLocked();
  if (!up) {
    TearDownLocked(n);
    (void)store_->DeleteObject(kKind, n.name);
    (void)ApplyRulesLocked();
    Error e = up.error();
    e.WithContext("create network '" + n.name + "'");
    return tl::unexpected(e);
  }
  LOG_INFO("network {}: created ({}, bridge {})", n.name, subnet.ToString(),
           n.Bridge());
  return Describe(n);
}

Json NetworkService::Describe(const NetworkConfig& n) {
  Json j = ToJson(n);
  Json leases = Json::array();
  for (const auto& l : LeasesLocked(n.name))
    leases.push_back({{"mac", l.mac},
                      {"ip", l.ip},
                      {"hostname", l.hostname},
                      {"expiry", l.expiry}});
  j["leases"] = leases;
  j["running"] = dnsmasq_.count(n.name) > 0;
  return j;
}

Result<Json> NetworkService::List() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto stored, store_->ListObjects(kKind));
  Json out = Json::array();
  for (const Json& j : stored) {
    ASSIGN_OR_RETURN(NetworkConfig n, NetworkConfigFromJson(j));
    out.push_back(Describe(n));
  }
  return out;
}

Result<Json> NetworkService::Get(const std::string& name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(NetworkConfig n, Load(name));
  return Describe(n);
}

Status NetworkService::Delete(const std::string& name) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(NetworkConfig n, Load(name));
  ASSIGN_OR_RETURN(auto instances, store_->ListInstances());
  for (const auto& inst : instances)
    for (const auto& nic : inst.config.nics)
      if (nic.type == "network" && nic.network == name)
        return Err(ErrorCode::kFailedPrecondition,
                   "network '" + name + "' is in use by instance '" +
                       inst.name() + "'");
  TRY(store_->DeleteObject(kKind, name));
  TearDownLocked(n);
  TRY(ApplyRulesLocked());
  LOG_INFO("network {}: deleted", name);
  return Ok();
}

Status NetworkService::CheckAddressFree(const NetworkConfig& n,
                                        const std::vector<Instance>& instances,
                                        const std::string& mac,
                                        const std::string& ip) {
  for (const auto& inst : instances)
    for (const auto& nic : inst.config.nics) {
      if (Lower(nic.mac) == mac)
        return Err(ErrorCode::kAlreadyExists,
                   "MAC " + mac + " is used by instance '" + inst.name() + "'");
      if (!ip.empty() && nic.type == "network" && nic.network == n.name &&
          nic.ip == ip)
        return Err(
            ErrorCode::kAlreadyExists,
            "IP " + ip + " is reserved for instance '" + inst.name() + "'");
    }
  for (const auto& r : n.reservations) {
    if (r.mac == mac)
      return Err(ErrorCode::kAlreadyExists,
                 "MAC " + mac + " already has a reservation on '" + n.name +
                     "' (" + r.ip + ")");
    if (!ip.empty() && r.ip == ip)
      return Err(ErrorCode::kAlreadyExists,
                 "IP " + ip + " is already reserved on '" + n.name + "'");
  }
  if (ip.empty()) return Ok();
  ASSIGN_OR_RETURN(uint32_t addr, ParseIpv4(ip));
  if (!n.subnet.IsGuestAddress(addr))
    return Err(ErrorCode::kInvalidArgument,
               "IP " + ip + " is not a usable address in " + n.name + " (" +
                   n.subnet.ToString() + ")");
  return Ok();
}

Result<Json> NetworkService::AddReservation(const std::string& network,
                                            const std::string& mac_text,
                                            const std::string& ip) {
  ASSIGN_OR_RETURN(std::string mac, NormalizeMac(mac_text));
  if (ip.empty()) return Err(ErrorCode::kInvalidArgument, "ip is required");
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(NetworkConfig n, Load(network));
  ASSIGN_OR_RETURN(auto instances, store_->ListInstances());
  // An instance's own MAC may be pinned here; only other conflicts count.
  std::vector<Instance> others;
  for (auto& inst : instances) {
    bool owns = false;
    for (const auto& nic : inst.config.nics) owns |= Lower(nic.mac) == mac;
    if (!owns) others.push_back(std::move(inst));
  }
  TRY(CheckAddressFree(n, others, mac, ip));
  n.reservations.push_back({mac, ip});
  TRY(store_->UpdateObject(kKind, n.name, ToJson(n)));
  TRY(WriteHostsLocked(n));
  if (auto it = dnsmasq_.find(n.name); it != dnsmasq_.end())
    it->second->Reload();
  return Describe(n);
}

Result<Json> NetworkService::RemoveReservation(const std::string& network,
                                               const std::string& mac_text) {
  ASSIGN_OR_RETURN(std::string mac, NormalizeMac(mac_text));
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(NetworkConfig n, Load(network));
  auto it = std::find_if(n.reservations.begin(), n.reservations.end(),
                         [&](const Reservation& r) { return r.mac == mac; });
  if (it == n.reservations.end())
    return Err(ErrorCode::kNotFound,
               "no reservation for " + mac + " on '" + network + "'");
  n.reservations.erase(it);
  TRY(store_->UpdateObject(kKind, n.name, ToJson(n)));
  TRY(WriteHostsLocked(n));
  if (auto d = dnsmasq_.find(n.name); d != dnsmasq_.end()) d->second->Reload();
  return Describe(n);
}

Result<Json> NetworkService::AddForward(const std::string& network,
                                        PortForward f) {
  TRY(ValidateProto(f.proto));
  if (f.host_port < 1 || f.host_port > 65535 || f.port < 1 || f.port > 65535)
    return Err(ErrorCode::kInvalidArgument, "ports must be 1-65535");
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(NetworkConfig n, Load(network));
  auto inst = store_->GetInstance(f.instance);
  if (!inst)
    return Err(ErrorCode::kNotFound,
               "instance '" + f.instance + "' does not exist");
  bool attached = false;
  for (const auto& nic : inst->config.nics)
    attached |= nic.type == "network" && nic.network == network;
  if (!attached)
    return Err(ErrorCode::kInvalidArgument, "instance '" + f.instance +
                                                "' has no NIC on network '" +
                                                network + "'");
  ASSIGN_OR_RETURN(auto stored, store_->ListObjects(kKind));
  for (const Json& j : stored) {
    ASSIGN_OR_RETURN(NetworkConfig other, NetworkConfigFromJson(j));
    for (const auto& o : other.forwards)
      if (o.proto == f.proto && o.host_port == f.host_port)
        return Err(ErrorCode::kAlreadyExists,
                   f.proto + " host port " + std::to_string(f.host_port) +
                       " is already forwarded (network '" + other.name + "')");
  }
  n.forwards.push_back(f);
  TRY(store_->UpdateObject(kKind, n.name, ToJson(n)));
  TRY(ApplyRulesLocked());
  return Describe(n);
}

Result<Json> NetworkService::RemoveForward(const std::string& network,
                                           const std::string& proto,
                                           int host_port) {
  TRY(ValidateProto(proto));
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(NetworkConfig n, Load(network));
  auto it = std::find_if(n.forwards.begin(), n.forwards.end(),
                         [&](const PortForward& f) {
                           return f.proto == proto && f.host_port == host_port;
                         });
  if (it == n.forwards.end())
    return Err(ErrorCode::kNotFound, "no " + proto + " forward of host port " +
                                         std::to_string(host_port) + " on '" +
                                         network + "'");
  n.forwards.erase(it);
  TRY(store_->UpdateObject(kKind, n.name, ToJson(n)));
  TRY(ApplyRulesLocked());
  return Describe(n);
}

std::string NetworkService::DefaultNetwork() {
  if (options_.default_network != "auto") return "";
  return store_->GetObject(kKind, kDefaultName) ? kDefaultName : "";
}

Status NetworkService::CheckNics(const std::vector<NicConfig>& nics) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto instances, store_->ListInstances());
  for (size_t i = 0; i < nics.size(); ++i) {
    const NicConfig& nic = nics[i];
    ASSIGN_OR_RETURN(std::string mac, NormalizeMac(nic.mac));
    for (size_t k = 0; k < i; ++k)
      if (Lower(nics[k].mac) == mac)
        return Err(ErrorCode::kInvalidArgument, "MAC " + mac + " given twice");
    if (nic.type != "network") continue;
    ASSIGN_OR_RETURN(NetworkConfig n, Load(nic.network));
    TRY(CheckAddressFree(n, instances, mac, nic.ip));
  }
  return Ok();
}

Result<std::vector<UniqueFd>> NetworkService::PrepareTaps(
    const Instance& inst) {
  std::lock_guard lock(mu_);
  std::vector<UniqueFd> taps;
  for (size_t i = 0; i < inst.config.nics.size(); ++i) {
    const NicConfig& nic = inst.config.nics[i];
    if (nic.type != "network") continue;
    ASSIGN_OR_RETURN(NetworkConfig n, Load(nic.network));
    if (!dnsmasq_.count(n.name))
      return Err(ErrorCode::kUnavailable,
                 "network '" + n.name + "' is not up (see vireod's log)");
    TRY(WriteHostsLocked(n));
    dnsmasq_[n.name]->Reload();
    std::string name = TapName(inst, i);
    ASSIGN_OR_RETURN(UniqueFd fd, CreateTap(name));
    TRY(AttachTap(name, n.Bridge(), n.isolated));
    taps.push_back(std::move(fd));
  }
  return taps;
}

std::string NetworkService::AddressOf(const NicConfig& nic) {
  if (nic.type != "network") return "";
  if (!nic.ip.empty()) return nic.ip;
  if (ValidateNetworkName(nic.network).has_value() == false) return "";
  std::lock_guard lock(mu_);
  std::string ip;
  int64_t newest = -1;
  for (const auto& l : LeasesLocked(nic.network))
    if (Lower(l.mac) == Lower(nic.mac) && l.expiry > newest) {
      ip = l.ip;
      newest = l.expiry;
    }
  return ip;
}

}  // namespace vireo
