// Distributed sampling: each rank samples the videos of its share (the sampler's
// video_index_offset makes video v draw the same noise in any slice, so the union equals one
// process's run), and rank 0 gathers them into one result in video order.
#pragma once

#include <cstdint>
#include <vector>

#include "flowception/distributed/communicator.hpp"
#include "flowception/sampling/coupled_sampler.hpp"

namespace flowception::distributed {

/// `local[k]` is video number `index[k]` of `total`. Rank 0 gets every video in order, with
/// model calls and FLOPs summed over ranks and steps the largest of any rank; other ranks get an
/// empty result. Every index of [0, total) must be sampled by exactly one rank (checked).
template <class T, Communicator Comm>
SampleResult<T> gather_sample_results(Comm& comm, const std::vector<std::size_t>& index, SampleResult<T> local,
                                      std::size_t total) {
  detail::require<ShapeError>(index.size() == local.videos.size(), "gather_sample_results: ", index.size(),
                              " indices for ", local.videos.size(), " videos");
  ByteWriter w;
  w.put<std::uint64_t>(local.model_calls);
  w.put<std::uint64_t>(local.steps);
  w.put<double>(local.flops.attention);
  w.put<double>(local.flops.other);
  w.put<std::uint64_t>(index.size());
  for (std::size_t k = 0; k < index.size(); ++k) {
    const auto& v = local.videos[k];
    w.put<std::uint64_t>(index[k]);
    w.put<std::uint64_t>(v.dim);
    w.put<std::uint64_t>(v.nfe);
    w.put<std::uint64_t>(v.refused_insertions);
    w.put_span(std::span<const T>(v.frames));
    w.put_span(std::span<const FrameKind>(v.kinds));
    w.put_span(std::span<const std::size_t>(v.insertion_step));
    w.put_span(std::span<const std::uint64_t>(v.frame_ids));
    w.put_span(std::span<const StepTrace>(v.trace));
  }
  const auto parts = comm.gather(w.bytes());
  SampleResult<T> out;
  if (comm.rank() != 0) return out;
  out.videos.resize(total);
  std::vector<bool> seen(total, false);
  for (std::size_t r = 0; r < parts.size(); ++r) {
    ByteReader in(parts[r]);
    out.model_calls += static_cast<std::size_t>(in.get<std::uint64_t>());
    out.steps = std::max(out.steps, static_cast<std::size_t>(in.get<std::uint64_t>()));
    const double att = in.get<double>(), other = in.get<double>();
    out.flops += FlopCount{att, other};
    const auto n = in.get<std::uint64_t>();
    for (std::uint64_t k = 0; k < n; ++k) {
      const auto i = in.get<std::uint64_t>();
      detail::require<ShapeError>(i < total && !seen[i], "gather_sample_results: rank ", r, " sent video ", i,
                                  i < total ? ", which another rank also sampled" : " outside [0, total)");
      seen[i] = true;
      auto& v = out.videos[i];
      v.dim = static_cast<std::size_t>(in.get<std::uint64_t>());
      v.nfe = static_cast<std::size_t>(in.get<std::uint64_t>());
      v.refused_insertions = static_cast<std::size_t>(in.get<std::uint64_t>());
      v.frames = in.template get_vector<T>();
      v.kinds = in.template get_vector<FrameKind>();
      v.insertion_step = in.template get_vector<std::size_t>();
      v.frame_ids = in.template get_vector<std::uint64_t>();
      v.trace = in.template get_vector<StepTrace>();
    }
    detail::require<IoError>(in.done(), "gather_sample_results: rank ", r, "'s message has trailing bytes");
  }
  for (std::size_t i = 0; i < total; ++i)
    detail::require<ShapeError>(seen[i], "gather_sample_results: no rank sampled video ", i);
  return out;
}

}  // namespace flowception::distributed
