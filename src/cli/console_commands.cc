// Graphical console commands: the web UI's console URL and screenshots.

#include <fcntl.h>
#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"
#include "common/fd.h"

namespace vireo::cli {

namespace {

// "host:port" -> {host, port}; IPv6 hosts keep their brackets.
std::pair<std::string, std::string> SplitHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return {address, ""};
  return {address.substr(0, colon), address.substr(colon + 1)};
}

// The host part of "https://host:port/...".
std::string RemoteHost(const std::string& remote) {
  std::string rest = remote;
  if (size_t scheme = rest.find("://"); scheme != std::string::npos)
    rest = rest.substr(scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest.front() == '[')
    return rest.substr(0, rest.find(']') + 1);
  return rest.substr(0, rest.find(':'));
}

Status WriteFile(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return ErrnoErr("open " + tmp);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto e = ErrnoErr("write " + tmp);
      ::unlink(tmp.c_str());
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = ErrnoErr("rename to " + path);
    ::unlink(tmp.c_str());
    return e;
  }
  return Ok();
}

}  // namespace

Status PrintVgaConsoleUrl(Context& ctx, const std::string& name) {
  ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
  ASSIGN_OR_RETURN(Json server, client->Call("GET", "/1.0"));
  std::string address;
  if (server.contains("environment") &&
      server["environment"].contains("https_address")) {
    address = server["environment"]["https_address"].get<std::string>();
  }
  if (address.empty()) {
    return Err(ErrorCode::kFailedPrecondition,
               "the server has no HTTPS listener (vireod --https), so no web "
               "console");
  }
  auto [host, port] = SplitHostPort(address);
  if (!ctx.options.remote.empty()) {
    host = RemoteHost(ctx.options.remote);
  } else if (host.empty() || host == "0.0.0.0" || host == "[::]" ||
             host == "::") {
    host = "localhost";  // a wildcard listener is reachable locally
  }
  std::cout << "https://" << host << ":" << port << "/#/instances/" << name
            << "/console\n";
  return Ok();
}

void AddScreenshotCommand(CLI::App& app, Context& ctx) {
  auto name = std::make_shared<std::string>();
  auto file = std::make_shared<std::string>();
  auto* s = app.add_subcommand("screenshot",
                               "Save an instance's screen as a PNG file");
  s->add_option("name", *name, "Instance name")->required();
  s->add_option("file", *file, "Output file (PNG)")->required();
  s->callback([&ctx, name, file] {
    ctx.action = [&ctx, name, file]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(
          HttpReply reply,
          client->Request("GET", InstanceUrl(*name) + "/screenshot"));
      if (reply.status != 200) {
        TRY(DecodeReply(reply));  // yields the API's error
        return Err(ErrorCode::kInternal,
                   "unexpected HTTP " + std::to_string(reply.status));
      }
      return WriteFile(*file, reply.body);
    };
  });
}

}  // namespace vireo::cli
