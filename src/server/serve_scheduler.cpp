#include "serve_scheduler.hpp"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

namespace bitnet::serve {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace

Job::Update Job::wait() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return finished_ || !text_.empty(); });
  Update u{std::move(text_), finished_};
  text_.clear();
  return u;
}

const Stats& Job::stats() const {
  if (error_) std::rethrow_exception(error_);
  return stats_;
}

void Job::push(std::string_view text) {
  if (text.empty()) return;
  {
    std::lock_guard lock(mu_);
    text_ += text;
  }
  cv_.notify_all();
}

void Job::finish(const Stats* stats, std::exception_ptr error) {
  gen_.reset();
  lease_.reset(); // the slot is free now, whoever still holds the job
  {
    std::lock_guard lock(mu_);
    if (stats) stats_ = *stats;
    error_ = std::move(error);
    finished_ = true;
  }
  cv_.notify_all();
}

Scheduler::Scheduler() : thread_([this] { loop(); }) {}

Scheduler::~Scheduler() {
  cancel_all_ = true;
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lock(mu_);
    inbox_.push_back(job);
  }
  cv_.notify_all();
}

double Scheduler::generation_seconds() const {
  std::lock_guard lock(time_mu_);
  return busy_seconds_ + (busy_since_ >= 0 ? now_seconds() - busy_since_ : 0.0);
}

void Scheduler::start(const std::shared_ptr<Job>& job) {
  Session& s = job->lease_->session();
  // Prompt reuse: keep the cached prefix this prompt shares (at least one token is evaluated,
  // for the logits of the last).
  size_t keep = job->cache_prompt_ ? SlotPool::common_prefix(s.tokens(), job->ids_) : 0;
  keep = std::min(keep, job->ids_.size() - 1);
  s.truncate(static_cast<int32_t>(keep));
  job->cached_ = static_cast<int32_t>(keep);
  prompt_ += job->ids_.size();
  cached_ += keep;
  job->gen_ = std::make_unique<Generation>(s, std::span<const int32_t>(job->ids_).subspan(keep),
                                           job->params_);
}

// One step over the running jobs; false when none is left.
bool Scheduler::step(std::vector<std::shared_ptr<Job>>& active) {
  const bool cancel = cancel_all_;
  const auto fail = [](Job& job) { job.finish(nullptr, std::current_exception()); };
  // A job whose client is gone is dropped: its session keeps every token forwarded so far,
  // which is all prompt reuse needs.
  std::vector<Job*> running;
  for (const std::shared_ptr<Job>& job : active) {
    if (cancel || job->cancelled_) {
      Stats st = job->gen_->stats();
      st.stop_reason = StopReason::callback;
      job->finish(&st, nullptr);
    } else {
      running.push_back(job.get());
    }
  }
  // Every sequence whose head step ran in the last step (a prompt's first token included)
  // samples its next token; then the new tokens and one micro-batch of every prompt still
  // prefilling go in ONE forward (the weights read once per step), and the head steps of all
  // share one pass (step_batch).
  std::vector<Generation*> gens;
  bool decoding = false; // a token to forward: a decode step (for /metrics)
  for (Job* job : running) {
    Generation& g = *job->gen_;
    if (!g.done() && g.prefill_left() == 0 && !g.pending()) {
      try {
        const Generation::Token t = g.next();
        ++generated_;
        job->push(t.text);
        decoding = true;
      } catch (...) {
        fail(*job);
        continue;
      }
    }
    gens.push_back(&g);
  }
  try {
    step_batch(gens);
    if (decoding) ++steps_;
  } catch (...) {
    for (Job* job : running)
      if (job->gen_) fail(*job);
  }
  for (const std::shared_ptr<Job>& job : active)
    if (job->gen_ && job->gen_->done()) {
      const Stats st = job->gen_->stats();
      job->finish(&st, nullptr);
    }
  active.erase(
      std::remove_if(active.begin(), active.end(), [](const auto& job) { return !job->gen_; }),
      active.end());
  return !active.empty();
}

void Scheduler::loop() {
  std::vector<std::shared_ptr<Job>> active;
  while (true) {
    std::vector<std::shared_ptr<Job>> incoming;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return quit_ || !inbox_.empty() || !active.empty(); });
      if (quit_ && inbox_.empty() && active.empty()) return;
      incoming.swap(inbox_);
    }
    for (const std::shared_ptr<Job>& job : incoming) {
      try {
        start(job);
        active.push_back(job);
      } catch (...) {
        job->finish(nullptr, std::current_exception());
      }
    }
    {
      std::lock_guard lock(time_mu_);
      if (busy_since_ < 0 && !active.empty()) busy_since_ = now_seconds();
    }
    if (!step(active)) {
      std::lock_guard lock(time_mu_);
      if (busy_since_ >= 0) busy_seconds_ += now_seconds() - busy_since_;
      busy_since_ = -1.0;
    }
  }
}

} // namespace bitnet::serve
