// vireo user create|list|delete|passwd: web UI users (docs/auth.md).

#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/context.h"
#include "cli/output.h"

namespace vireo::cli {

namespace {

struct UserArgs {
  std::string name;
  std::string role = "user";
  bool password_stdin = false;
};

std::string UserUrl(const std::string& name) {
  return "/1.0/users/" + UrlEscape(name);
}

// One line from stdin, without its line end.
Result<std::string> ReadLine() {
  std::string line;
  if (!std::getline(std::cin, line))
    return Err(ErrorCode::kInvalidArgument, "no password on stdin");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Asks twice on the terminal with echo off.
Result<std::string> Prompt() {
  if (!::isatty(STDIN_FILENO))
    return Err(ErrorCode::kInvalidArgument,
               "stdin is not a terminal: use --password-stdin");
  termios old{};
  ::tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string first, second;
  std::cerr << "Password: " << std::flush;
  std::getline(std::cin, first);
  std::cerr << "\nRepeat password: " << std::flush;
  std::getline(std::cin, second);
  std::cerr << "\n";
  ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
  if (first != second)
    return Err(ErrorCode::kInvalidArgument, "the passwords do not match");
  return first;
}

Result<std::string> Password(bool from_stdin) {
  return from_stdin ? ReadLine() : Prompt();
}

}  // namespace

void AddUserCommands(CLI::App& app, Context& ctx) {
  auto* user = app.add_subcommand(
      "user",
      "Manage web UI users (admin: everything; user: read-only and "
      "consoles)");
  user->require_subcommand(1);

  auto create = std::make_shared<UserArgs>();
  auto* c = user->add_subcommand("create", "Create a user");
  c->add_option("name", create->name, "User name ([a-z0-9_.-])")->required();
  c->add_option("--role", create->role, "admin or user")
      ->capture_default_str()
      ->check(CLI::IsMember({"admin", "user"}));
  c->add_flag("--password-stdin", create->password_stdin,
              "Read the password from one line of stdin (else prompt)");
  c->callback([&ctx, create] {
    ctx.action = [&ctx, create]() -> Status {
      ASSIGN_OR_RETURN(std::string password, Password(create->password_stdin));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json u, client->Call("POST", "/1.0/users",
                                            Json{{"name", create->name},
                                                 {"password", password},
                                                 {"role", create->role}}));
      if (ctx.options.json) {
        PrintJson(u);
        return Ok();
      }
      std::cout << "User " << JStr(u, "name") << " created (role "
                << JStr(u, "role") << ").\n";
      return Ok();
    };
  });

  auto* l = user->add_subcommand("list", "List users");
  l->alias("ls");
  l->callback([&ctx] {
    ctx.action = [&ctx]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      ASSIGN_OR_RETURN(Json users, client->Call("GET", "/1.0/users"));
      if (ctx.options.json) {
        PrintJson(users);
        return Ok();
      }
      Table t({"NAME", "ROLE", "CREATED", "PASSWORD CHANGED"});
      if (users.is_array()) {
        for (const auto& u : users) {
          t.Add({JStr(u, "name"), JStr(u, "role"),
                 FormatTime(JInt(u, "created_at")),
                 FormatTime(JInt(u, "password_changed_at"))});
        }
      }
      std::cout << t.Render();
      return Ok();
    };
  });

  auto del_name = std::make_shared<std::string>();
  auto* d = user->add_subcommand("delete", "Delete a user and its sessions");
  d->alias("rm");
  d->add_option("name", *del_name, "User name")->required();
  d->callback([&ctx, del_name] {
    ctx.action = [&ctx, del_name]() -> Status {
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client->Call("DELETE", UserUrl(*del_name)).map([](auto&&) {}));
      if (!ctx.options.json) std::cout << "User " << *del_name << " deleted.\n";
      return Ok();
    };
  });

  auto passwd = std::make_shared<UserArgs>();
  auto* p = user->add_subcommand(
      "passwd", "Set a user's password (ends that user's sessions)");
  p->add_option("name", passwd->name, "User name")->required();
  p->add_flag("--password-stdin", passwd->password_stdin,
              "Read the password from one line of stdin (else prompt)");
  p->callback([&ctx, passwd] {
    ctx.action = [&ctx, passwd]() -> Status {
      ASSIGN_OR_RETURN(std::string password, Password(passwd->password_stdin));
      ASSIGN_OR_RETURN(ApiClient * client, ctx.Client());
      TRY(client
              ->Call("PUT", UserUrl(passwd->name) + "/password",
                     Json{{"password", password}})
              .map([](auto&&) {}));
      if (!ctx.options.json)
        std::cout << "Password of " << passwd->name << " changed.\n";
      return Ok();
    };
  });
}

}  // namespace vireo::cli
