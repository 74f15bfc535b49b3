// Commands on streams: the serial console and the event feed.

#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

struct ConsoleArgs {
  std::string name;
  bool log = false;
  bool vga = false;
  int64_t tail = 0;
};

Status PrintLog(Context& ctx, const ConsoleArgs& a) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  std::string url = InstanceUrl(a.name) + "/console";
  if (a.tail > 0) url += "?tail=" + std::to_string(a.tail);
  ASSIGN_OR_RETURN(HttpReply reply, client->Request("GET", url));
  if (reply.status != 200) {
    TRY(DecodeReply(reply));  // yields the API's error
    return Err(ErrorCode::kInternal,
               "unexpected HTTP " + std::to_string(reply.status));
  }
  std::cout << reply.body;
  if (!reply.body.empty() && reply.body.back() != '\n' &&
      ::isatty(STDOUT_FILENO))
    std::cout << "\n";
  return Ok();
}

Status Attach(Context& ctx, const ConsoleArgs& a) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(auto ws,
                   client->OpenWebSocket(InstanceUrl(a.name) + "/console"));
  std::cerr << "Connected to " << a.name
            << "'s serial console; Ctrl-] to detach\n";
  std::cout.flush();
  Status relayed = ws->RelayInteractive(STDIN_FILENO, STDOUT_FILENO);
  ws->Close();
  std::cerr << "\r\nDisconnected from " << a.name << "'s console\n";
  return relayed;
}

}  // namespace

void AddConsoleCommand(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ConsoleArgs>();
  auto* c =
      app.add_subcommand("console", "Attach to an instance's serial console");
  c->add_option("name", args->name, "Instance name")->required();
  c->add_flag("--log", args->log, "Print the captured console log and exit");
  c->add_option("--tail", args->tail, "With --log: only the last N bytes")
      ->check(CLI::PositiveNumber)
      ->needs("--log");
  c->add_flag("--vga", args->vga,
              "Print the web UI's URL of the graphical console and exit")
      ->excludes("--log");
  c->callback([&ctx, args] {
    ctx.action = [&ctx, args]() {
      if (args->vga) return PrintVgaConsoleUrl(ctx, args->name);
      return args->log ? PrintLog(ctx, *args) : Attach(ctx, *args);
    };
  });
}

void AddEventsCommand(CLI::App& app, Context& ctx) {
  auto type = std::make_shared<std::string>();
  auto* e = app.add_subcommand("events",
                               "Print events as JSON lines until interrupted");
  e->alias("monitor");
  e->add_option("--type", *type, "Only events of this type")
      ->check(CLI::IsMember({"lifecycle", "operation"}));
  e->callback([&ctx, type] {
    ctx.action = [&ctx, type]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(auto ws, client->OpenWebSocket("/1.0/events"));
      for (;;) {
        ASSIGN_OR_RETURN(std::string message, ws->Read());
        auto event = ParseJson(message);
        if (!event) {
          std::cout << message << std::endl;
          continue;
        }
        if (!type->empty() && JStr(*event, "type") != *type) continue;
        std::cout << event->dump(-1, ' ', false, Json::error_handler_t::replace)
                  << std::endl;
      }
    };
  });
}

}  // namespace vireo::cli
