// Consumer of the installed flowception::distributed: one process (MPI's singleton start), an
// all-reduce and a gather through the library's MPI communicator.
#include <flowception/distributed/mpi_communicator.hpp>

#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  namespace fd = flowception::distributed;
  fd::MpiSession mpi(&argc, &argv);
  fd::MpiCommunicator comm;
  static_assert(fd::Communicator<fd::MpiCommunicator>);
  std::vector<double> x{1.5, 2.5};
  comm.all_reduce_sum(std::span<double>(x));
  const std::vector<std::byte> msg(3, std::byte{7});
  const auto all = comm.gather(msg);
  const bool ok = x[0] == 1.5 * comm.size() && (comm.rank() != 0 || (all.size() == 1 && all[0] == msg));
  std::printf("consumer: %d rank(s), all-reduce %s\n", comm.size(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
