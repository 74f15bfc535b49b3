// vireo_bench_api: a closed-loop load generator for the Vireo REST API.
//
// N client threads, each with its own keep-alive ApiClient, send the same
// request back to back for a fixed duration. Prints one JSON object:
// {"requests","errors","duration_s","throughput_rps","p50_ms","p90_ms",
//  "p99_ms","max_ms","clients","path","body_bytes"}.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "common/json.h"

namespace {

using Clock = std::chrono::steady_clock;

struct WorkerResult {
  std::vector<double> latencies_ms;
  uint64_t errors = 0;
  size_t body_bytes = 0;
  std::string first_error;
};

void RunWorker(const vireo::Endpoint& endpoint, const std::string& method,
               const std::string& path, Clock::time_point start,
               Clock::time_point end, WorkerResult* out) {
  auto client = vireo::ApiClient::Create(endpoint);
  if (!client) {
    out->errors++;
    out->first_error = client.error().ToString();
    return;
  }
  std::this_thread::sleep_until(start);
  out->latencies_ms.reserve(1 << 16);
  while (Clock::now() < end) {
    auto t0 = Clock::now();
    auto reply = (*client)->Request(method, path);
    auto t1 = Clock::now();
    if (!reply || reply->status != 200) {
      out->errors++;
      if (out->first_error.empty()) {
        out->first_error =
            reply ? "HTTP " + std::to_string(reply->status) + ": " + reply->body
                  : reply.error().ToString();
      }
      continue;
    }
    out->body_bytes = reply->body.size();
    out->latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
}

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(
      p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace

int main(int argc, char** argv) {
  vireo::Endpoint endpoint;
  std::string method = "GET";
  std::string path = "/1.0/instances";
  int clients = 32;
  double duration_s = 10;
  double warmup_s = 1;
  CLI::App app{
      "vireo_bench_api: concurrent latency/throughput of one API request"};
  app.add_option("--socket", endpoint.unix_socket, "vireod's unix socket")
      ->required();
  app.add_option("--method", method, "HTTP method")->capture_default_str();
  app.add_option("--path", path, "Request target")->capture_default_str();
  app.add_option("--clients", clients, "Concurrent clients (threads)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--duration", duration_s, "Measured seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup_s, "Unmeasured seconds first")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Warm-up: same load, results discarded (connections, caches, allocator).
  auto run = [&](double seconds) {
    std::vector<WorkerResult> results(static_cast<size_t>(clients));
    std::vector<std::thread> threads;
    // Start together, after every thread has connected.
    auto start = Clock::now() + std::chrono::milliseconds(200);
    auto end = start + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(seconds));
    for (int i = 0; i < clients; ++i) {
      threads.emplace_back(RunWorker, std::cref(endpoint), std::cref(method),
                           std::cref(path), start, end,
                           &results[static_cast<size_t>(i)]);
    }
    for (auto& t : threads) t.join();
    return results;
  };
  if (warmup_s > 0) run(warmup_s);

  auto t0 = Clock::now();
  auto results = run(duration_s);
  double elapsed =
      std::chrono::duration<double>(Clock::now() - t0).count() - 0.2;

  std::vector<double> all;
  uint64_t errors = 0;
  size_t body_bytes = 0;
  std::string first_error;
  for (auto& r : results) {
    all.insert(all.end(), r.latencies_ms.begin(), r.latencies_ms.end());
    errors += r.errors;
    body_bytes = std::max(body_bytes, r.body_bytes);
    if (first_error.empty()) first_error = r.first_error;
  }
  std::sort(all.begin(), all.end());
  vireo::Json out = {
      {"path", path},
      {"clients", clients},
      {"duration_s", elapsed},
      {"requests", all.size()},
      {"errors", errors},
      {"throughput_rps",
       elapsed > 0 ? static_cast<double>(all.size()) / elapsed : 0.0},
      {"p50_ms", Percentile(all, 50)},
      {"p90_ms", Percentile(all, 90)},
      {"p99_ms", Percentile(all, 99)},
      {"max_ms", all.empty() ? 0.0 : all.back()},
      {"body_bytes", body_bytes},
  };
  if (!first_error.empty()) out["first_error"] = first_error;
  std::cout << out.dump() << std::endl;
  return all.empty() ? 1 : 0;
}
