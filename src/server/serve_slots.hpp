// The server's slots: --parallel N sessions over one model and one shared thread pool, each
// with its own KV cache of n_ctx / N positions, handed out to requests one at a time. A slot
// keeps its cache after a request, so the next request whose tokens start the same way
// (a chat resending its conversation) goes to it and evaluates only the rest. Requests that
// find every slot busy wait in a bounded FIFO queue; past it they are refused (503).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "bitnet/session.hpp"

namespace bitnet::serve {

class SlotPool {
public:
  SlotPool(std::shared_ptr<const Model> model, const SessionParams& per_slot, int32_t n_slots,
           int32_t max_queue);

  // A slot held by one request; released (kept warm for prompt reuse) when destroyed.
  class Lease {
  public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Session& session() const { return *pool_.slots_[index_].session; }
    int32_t index() const { return index_; }

  private:
    friend class SlotPool;
    Lease(SlotPool& pool, int32_t index) : pool_(pool), index_(index) {}
    SlotPool& pool_;
    int32_t index_;
  };

  // Waits for a free slot, first come first served, and takes the one whose cached tokens
  // share the longest prefix with `prompt` (else the least recently used). Throws
  // ApiError(503) when max_queue requests already wait, or once close() was called.
  std::unique_ptr<Lease> acquire(std::span<const int32_t> prompt);
  // Refuses new requests and wakes the waiting ones with 503 (shutdown).
  void close();

  int32_t n_slots() const { return static_cast<int32_t>(slots_.size()); }
  int32_t busy() const;
  int32_t queued() const;
  uint64_t kv_bytes() const; // all slots
  int32_t n_ctx_per_slot() const;

  // Length of the common prefix of `cached` and `prompt`.
  static size_t common_prefix(std::span<const int32_t> cached, std::span<const int32_t> prompt);

private:
  struct Slot {
    std::unique_ptr<Session> session;
    bool busy = false;
    uint64_t last_used = 0;
  };
  void release(int32_t index);

  std::vector<Slot> slots_;
  const int32_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<uint64_t> waiting_; // tickets, in arrival order
  uint64_t next_ticket_ = 0;
  uint64_t clock_ = 0;
  int32_t n_busy_ = 0;
  bool closed_ = false;
};

} // namespace bitnet::serve
