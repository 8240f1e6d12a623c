// The server's decode loop: one thread steps every running request together. Each step
// samples the next token of every request whose last forward is done, then forwards those
// tokens and one prompt micro-batch of each request still prefilling (so new prompts enter
// between decode steps) in ONE batched forward (step_batch: the weights are read once per
// step, and every sequence gets the numerics of its token or micro-batch alone). HTTP threads
// submit jobs and read their text.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bitnet/batch.hpp"
#include "serve_slots.hpp"

namespace bitnet::serve {

// One request's generation on its slot, shared by the HTTP thread and the scheduler.
class Job {
public:
  Job(std::unique_ptr<SlotPool::Lease> lease, std::vector<int32_t> ids, GenerateParams params,
      bool cache_prompt)
      : lease_(std::move(lease)), ids_(std::move(ids)), params_(std::move(params)),
        cache_prompt_(cache_prompt) {}

  struct Update {
    std::string text;      // text generated since the last update
    bool finished = false; // then stats() (or the error) is final
  };
  // Waits for new text or the end.
  Update wait();
  // The client is gone: the scheduler drops the job at its next step, freeing the slot.
  void cancel() { cancelled_ = true; }
  // After finished: the generation's counters, or the error that ended it (rethrown).
  const Stats& stats() const;
  int32_t cached_tokens() const { return cached_; }

private:
  friend class Scheduler;
  void push(std::string_view text);
  void finish(const Stats* stats, std::exception_ptr error);

  std::unique_ptr<SlotPool::Lease> lease_;
  const std::vector<int32_t> ids_;
  const GenerateParams params_;
  const bool cache_prompt_;
  std::unique_ptr<Generation> gen_; // the scheduler's
  int32_t cached_ = 0;
  std::atomic<bool> cancelled_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  bool finished_ = false;
  Stats stats_;
  std::exception_ptr error_;
};

class Scheduler {
public:
  Scheduler();
  ~Scheduler(); // cancels what runs and joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job (its lease holds the slot); it starts at the next step.
  void submit(const std::shared_ptr<Job>& job);
  // Ends every running job at the next step (shutdown).
  void cancel_all() { cancel_all_ = true; }

  // For /metrics.
  uint64_t tokens_generated() const { return generated_; }
  uint64_t prompt_tokens() const { return prompt_; }
  uint64_t prompt_tokens_cached() const { return cached_; }
  double generation_seconds() const; // wall time with at least one job running
  uint64_t steps() const { return steps_; }

private:
  void loop();
  void start(const std::shared_ptr<Job>& job);
  bool step(std::vector<std::shared_ptr<Job>>& active);

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Job>> inbox_;
  bool quit_ = false;
  std::atomic<bool> cancel_all_{false};
  std::atomic<uint64_t> generated_{0}, prompt_{0}, cached_{0}, steps_{0};
  mutable std::mutex time_mu_;
  double busy_seconds_ = 0.0;
  double busy_since_ = -1.0; // seconds on the steady clock; < 0 when idle
  std::thread thread_;
};

} // namespace bitnet::serve
