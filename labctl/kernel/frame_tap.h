// Which frames reach one interface, heard from inside its namespace: an AF_PACKET socket
// bound to the interface, the frames it receives (not those it sends) read back and counted
// by destination MAC. A veth hands its node every frame the switch sends down that port,
// whatever its destination, so a frame for another node's MAC arriving here means the
// switch flooded it (it did not know behind which port that MAC is).
#pragma once

#include <chrono>
#include <string>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"

namespace labctl {

class FrameTap {
 public:
  /// Opens the tap on `dev` of the calling thread's namespace (needs CAP_NET_RAW). The socket
  /// stays in that namespace: it can be read from any thread afterwards.
  [[nodiscard]] static Result<FrameTap> open(const std::string& dev);
  /// How many frames addressed to `mac` ("aa:bb:cc:dd:ee:ff") arrived since the tap was
  /// opened or last read, reading until nothing more came for `quiet`.
  [[nodiscard]] Result<int> frames_to(const std::string& mac, std::chrono::milliseconds quiet);

 private:
  FrameTap(Fd fd, std::string dev) : fd_(std::move(fd)), dev_(std::move(dev)) {}
  Fd fd_;
  std::string dev_;
};

}  // namespace labctl
