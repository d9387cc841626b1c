// A minimal parallel-for for the CPU kernels: work items are handed out through
// an atomic counter, so uneven items (causal blocks) balance themselves.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace jax_mea::cpu {

inline int NumWorkerThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Runs body(worker_index, item) for every item in [0, num_items). Each worker
// owns its own scratch, indexed by worker_index in [0, NumWorkers(num_items)).
inline int NumWorkers(int64_t num_items) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(NumWorkerThreads(), num_items)));
}

template <typename Body>
void ParallelFor(int64_t num_items, Body&& body) {
  int workers = NumWorkers(num_items);
  std::atomic<int64_t> next{0};
  auto run = [&](int worker) {
    for (int64_t item = next.fetch_add(1); item < num_items; item = next.fetch_add(1)) {
      body(worker, item);
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (int w = 1; w < workers; ++w) threads.emplace_back(run, w);
  run(0);
  for (auto& t : threads) t.join();
}

}  // namespace jax_mea::cpu
