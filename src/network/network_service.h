#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "core/network_attacher.h"
#include "network/dnsmasq.h"
#include "network/network_config.h"
#include "store/store.h"

namespace vireo {

struct NetworkCreateRequest {
  std::string name;
  std::string subnet;
  bool nat = false;
  bool isolated = false;
};

// Managed networks: the stored configs (kind "network") and what makes them
// real on the host: a bridge, a supervised dnsmasq, the nftables table, and
// the taps of starting VMs. Bad input is refused before anything changes.
// Thread-safe.
class NetworkService : public NetworkAttacher {
 public:
  struct Options {
    std::string run_dir;  // <run_dir>/<network>/ holds dnsmasq's files
    // "auto": create vireo0 on first start and put new VMs on it; "none".
    std::string default_network = "none";
  };
  static constexpr const char* kDefaultName = "vireo0";
  static constexpr const char* kDefaultSubnet = "10.87.0.0/24";

  // Brings every stored network up again and starts the supervisor.
  static Result<std::unique_ptr<NetworkService>> Create(Store* store,
                                                        Options options);
  // Stops the supervisor and the dnsmasqs; bridges and rules stay for the
  // VMs that keep running.
  ~NetworkService() override;

  [[nodiscard]] Result<Json> CreateNetwork(const NetworkCreateRequest& request);
  [[nodiscard]] Result<Json> List();
  [[nodiscard]] Result<Json> Get(const std::string& name);
  [[nodiscard]] Status Delete(const std::string& name);
  [[nodiscard]] Result<Json> AddReservation(const std::string& network,
                                            const std::string& mac,
                                            const std::string& ip);
  [[nodiscard]] Result<Json> RemoveReservation(const std::string& network,
                                               const std::string& mac);
  [[nodiscard]] Result<Json> AddForward(const std::string& network,
                                        PortForward forward);
  [[nodiscard]] Result<Json> RemoveForward(const std::string& network,
                                           const std::string& proto,
                                           int host_port);

  // NetworkAttacher
  std::string DefaultNetwork() override;
  Status CheckNics(const std::vector<NicConfig>& nics) override;
  Result<std::vector<UniqueFd>> PrepareTaps(const Instance& instance) override;
  std::string AddressOf(const NicConfig& nic) override;

 private:
  NetworkService(Store* store, Options options)
      : store_(store), options_(std::move(options)) {}
  Result<NetworkConfig> Load(const std::string& name);
  Status BringUpLocked(const NetworkConfig& network);
  void TearDownLocked(const NetworkConfig& network);
  Status WriteHostsLocked(const NetworkConfig& network);
  Status ApplyRulesLocked();
  Status CheckAddressFree(const NetworkConfig& network,
                          const std::vector<Instance>& instances,
                          const std::string& mac, const std::string& ip);
  std::vector<Lease> LeasesLocked(const std::string& name);
  Json Describe(const NetworkConfig& network);
  void SuperviseLoop();

  Store* store_;
  const Options options_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Dnsmasq>> dnsmasq_;  // by network
  std::string applied_rules_;
  bool stopping_ = false;
  std::condition_variable cv_;
  std::thread supervisor_;
};

}  // namespace vireo
