#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/error.h"

namespace vireo::cli {

struct GlobalOptions {
  std::string socket = "/run/vireo/vireo.sock";
  std::string remote;  // https://host:port; wins over socket
  std::string token;
  bool json = false;
};

// What every command gets: the global options, a lazily made client, and
// the slot where the parsed subcommand leaves the action to run.
class Context {
 public:
  using Action = std::function<Status()>;

  GlobalOptions options;
  Action action;

  // The API client for the chosen endpoint, made on first use.
  Result<ApiClient*> Client();

 private:
  std::unique_ptr<ApiClient> client_;
};

void AddInstanceCommands(CLI::App& app, Context& ctx);
void AddConsoleCommand(CLI::App& app, Context& ctx);
void AddHostCommand(CLI::App& app, Context& ctx);
void AddOperationCommands(CLI::App& app, Context& ctx);
void AddTokenCommands(CLI::App& app, Context& ctx);
void AddEventsCommand(CLI::App& app, Context& ctx);
void AddImageCommands(CLI::App& app, Context& ctx);

// cloud-init options of launch and create (--hostname, --ssh-key,
// --user-data); the files are read here and sent by content.
struct CloudInitArgs {
  std::string hostname;
  std::vector<std::string> ssh_key_files;
  std::string user_data_file;
};
void AddCloudInitOptions(CLI::App* sub, CloudInitArgs& args);
// Sets request["cloud_init"] when any option was given.
Status AddCloudInit(const CloudInitArgs& args, Json& request);
void AddNetworkCommands(CLI::App& app, Context& ctx);
// The `backup` group (made here if the store commands did not add it), and
// its job commands: backup create, backup restore.
CLI::App* BackupApp(CLI::App& app);
void AddBackupJobCommands(CLI::App* backup, Context& ctx);

// --network NAME[,ip=IP][,mac=MAC] (repeatable), for create and launch.
void AddNetworkOption(CLI::App* command, std::vector<std::string>* specs);
// Puts the parsed specs into a create request's "networks".
Status AddNetworksToRequest(const std::vector<std::string>& specs,
                            Json* request);
// The IPv4 addresses of an instance's managed-network NICs, or "-".
std::string InstanceAddresses(const Json& instance);
void AddStorageCommands(CLI::App& app, Context& ctx);  // storage, volume

// "/1.0/instances/<escaped name>"
std::string InstanceUrl(const std::string& name);

// `vireo backup-store ...` and `vireo backup list|show|verify|prune|gc|
// export|import|delete`; returns the `backup` group so backup jobs can add
// their subcommands to it.
CLI::App* AddBackupCommands(CLI::App& app, Context& ctx);
// A --store value, or (when empty) the only/first backup store.
Result<std::string> ResolveBackupStore(Context& ctx, const std::string& store);

}  // namespace vireo::cli
