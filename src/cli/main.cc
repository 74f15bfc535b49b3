// vireo: the command-line client. Thin: every command is one or a few REST
// calls (docs/api.md); no business logic lives here.

#include <csignal>
#include <iostream>

#include "cli/context.h"

namespace vireo::cli {

Result<ApiClient*> Context::Client() {
  if (!client_) {
    Endpoint ep;
    if (!options.remote.empty()) {
      ep.url = options.remote;
      ep.token = options.token;
    } else {
      ep.unix_socket = options.socket;
    }
    ASSIGN_OR_RETURN(client_, ApiClient::Create(std::move(ep)));
  }
  return client_.get();
}

std::string InstanceUrl(const std::string& name) {
  return "/1.0/instances/" + UrlEscape(name);
}

namespace {

int Run(int argc, char** argv) {
  Context ctx;
  CLI::App app{
      "vireo: manage Vireo virtual machines through the vireod REST API"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  app.add_option("--socket", ctx.options.socket,
                 "Unix socket of the local daemon")
      ->envname("VIREO_SOCKET")
      ->capture_default_str();
  app.add_option("--remote", ctx.options.remote,
                 "Remote daemon URL (https://host:port)")
      ->envname("VIREO_REMOTE");
  app.add_option("--token", ctx.options.token, "API token for --remote")
      ->envname("VIREO_TOKEN");
  app.add_flag("--json", ctx.options.json, "Machine-readable JSON output");

  AddInstanceCommands(app, ctx);
  AddConsoleCommand(app, ctx);
  AddHostCommand(app, ctx);
  AddOperationCommands(app, ctx);
  AddTokenCommands(app, ctx);
  AddEventsCommand(app, ctx);
  AddImageCommands(app, ctx);
  AddNetworkCommands(app, ctx);
  AddStorageCommands(app, ctx);
  AddBackupJobCommands(AddBackupCommands(app, ctx), ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!ctx.action) return 0;
  Status status;
  try {
    status = ctx.action();
  } catch (const std::exception& e) {  // a library throw is a bug, not a crash
    status = Err(ErrorCode::kInternal, e.what());
  }
  std::cout.flush();
  if (!status) {
    std::cerr << "Error: " << status.error().ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace vireo::cli

int main(int argc, char** argv) {
  // A closed stdout pipe (vireo list | head) should end us with EPIPE, not a
  // signal.
  std::signal(SIGPIPE, SIG_IGN);
  return vireo::cli::Run(argc, argv);
}
