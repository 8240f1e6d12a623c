#include "serve_slots.hpp"

#include <algorithm>

#include "serve_api.hpp"

namespace bitnet::serve {

SlotPool::SlotPool(std::shared_ptr<const Model> model, const SessionParams& per_slot,
                   int32_t n_slots, int32_t max_queue)
    : max_queue_(max_queue) {
  slots_.resize(static_cast<size_t>(n_slots));
  for (Slot& s : slots_)
    s.session = std::make_unique<Session>(model, per_slot);
}

SlotPool::Lease::~Lease() {
  pool_.release(index_);
}

size_t SlotPool::common_prefix(std::span<const int32_t> cached, std::span<const int32_t> prompt) {
  const auto [a, b] = std::mismatch(cached.begin(), cached.end(), prompt.begin(), prompt.end());
  return static_cast<size_t>(a - cached.begin());
}

std::unique_ptr<SlotPool::Lease> SlotPool::acquire(std::span<const int32_t> prompt) {
  std::unique_lock lock(mu_);
  if (closed_) throw ApiError(503, "the server is shutting down", "unavailable_error");
  const bool any_free = n_busy_ < n_slots() && waiting_.empty();
  if (!any_free && static_cast<int32_t>(waiting_.size()) >= max_queue_)
    throw ApiError(503, "the server is busy: every slot is in use and the queue is full",
                   "unavailable_error");
  const uint64_t ticket = next_ticket_++;
  waiting_.push_back(ticket);
  cv_.wait(lock, [&] { return closed_ || (waiting_.front() == ticket && n_busy_ < n_slots()); });
  waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
  if (closed_) {
    cv_.notify_all();
    throw ApiError(503, "the server is shutting down", "unavailable_error");
  }
  int32_t best = -1;
  size_t best_common = 0;
  for (int32_t i = 0; i < n_slots(); ++i) {
    const Slot& s = slots_[static_cast<size_t>(i)];
    if (s.busy) continue;
    const size_t common = common_prefix(s.session->tokens(), prompt);
    if (best < 0 || common > best_common ||
        (common == best_common && s.last_used < slots_[static_cast<size_t>(best)].last_used)) {
      best = i;
      best_common = common;
    }
  }
  slots_[static_cast<size_t>(best)].busy = true;
  ++n_busy_;
  cv_.notify_all(); // the next ticket may take another free slot
  return std::unique_ptr<Lease>(new Lease(*this, best));
}

void SlotPool::release(int32_t index) {
  {
    std::lock_guard lock(mu_);
    Slot& s = slots_[static_cast<size_t>(index)];
    s.busy = false;
    s.last_used = ++clock_;
    --n_busy_;
  }
  cv_.notify_all();
}

void SlotPool::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

int32_t SlotPool::busy() const {
  std::lock_guard lock(mu_);
  return n_busy_;
}

int32_t SlotPool::queued() const {
  std::lock_guard lock(mu_);
  return static_cast<int32_t>(waiting_.size());
}

uint64_t SlotPool::kv_bytes() const {
  uint64_t total = 0;
  for (const Slot& s : slots_)
    total += s.session->kv_bytes();
  return total;
}

int32_t SlotPool::n_ctx_per_slot() const {
  return slots_.front().session->n_ctx();
}

} // namespace bitnet::serve
