// Reducing gradients while the backward pass runs (as PyTorch DDP does): DiT::backward announces
// each range of parameters whose gradients are final; ranges are gathered into buckets of at
// least `bucket_elements` floats and each full bucket's all-reduce is started at once, so the
// reduction of the last blocks overlaps the backward pass of the first ones.
#pragma once

#include <cstddef>
#include <limits>
#include <span>

#include "flowception/distributed/communicator.hpp"

namespace flowception::distributed {

/// Collects the gradient ranges that backward announces into buckets of at least
/// `bucket_elements` floats and starts each bucket's all-reduce as soon as it is full (on `Comm`'s
/// stream for device memory); finish() completes them all.
template <Communicator Comm>
class GradientBuckets {
 public:
  /// grads: the flat gradient buffer (n floats in Comm::kGradientMemory).
  GradientBuckets(Comm& comm, float* grads, std::size_t n, std::size_t bucket_elements)
      : comm_(&comm), grads_(grads), n_(n), bucket_(bucket_elements == 0 ? 1 : bucket_elements) {}

  /// DiT::backward's callback: [begin, end) is final. Ranges come from the end of the buffer
  /// towards its start, each ending where the previous one began.
  void operator()(std::size_t begin, std::size_t end) {
    detail::require(begin <= end && end <= n_, "gradient range [", begin, ", ", end, ") is outside the buffer of ", n_);
    if (empty()) {
      begin_ = begin;
      end_ = end;
    } else {
      detail::require(end == begin_, "gradient ranges must arrive contiguous and descending: [", begin, ", ", end,
                      ") after [", begin_, ", ", end_, ")");
      begin_ = begin;
    }
    covered_ += end - begin;
    if (end_ - begin_ >= bucket_) flush();
  }

  /// Starts the last bucket and waits for every reduction; the whole buffer must have been announced.
  void finish() {
    flush();
    detail::require(covered_ == n_, "backward announced ", covered_, " of ", n_, " gradients");
    comm_->finish_all_reduces();
  }
  /// All-reduces started so far, one per non-empty bucket.
  std::size_t buckets_started() const { return started_; }

 private:
  bool empty() const { return begin_ == kNone; }
  void flush() {
    if (empty()) return;
    if (end_ > begin_) {
      if constexpr (Comm::kGradientMemory == MemorySpace::device)
        comm_->all_reduce_gradients(grads_ + begin_, end_ - begin_);  // queued on the device stream
      else
        comm_->start_all_reduce_sum(std::span<float>(grads_ + begin_, end_ - begin_));
      ++started_;
    }
    begin_ = end_ = kNone;
  }
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  Comm* comm_;
  float* grads_;
  std::size_t n_, bucket_;
  std::size_t begin_ = kNone, end_ = kNone, covered_ = 0, started_ = 0;
};

}  // namespace flowception::distributed
