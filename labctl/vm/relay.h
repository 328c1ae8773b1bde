// Running a labctl command inside a lab's micro-VM as if it ran here. The host side
// (relay_run) takes a free virtio-serial port of the guest (a unix socket qemu listens on,
// claimed with flock on a lock file beside it), sends the request and then pumps stdin,
// stdout, stderr, signals and window sizes until the command's exit status arrives. The
// guest side (serve_relay, the hidden `labctl vm serve` the guest's init runs) serves every
// port: one command at a time each, on pipes or on a pseudo-terminal. See docs/vm.md.
#pragma once

#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/vm/relay_protocol.h"

namespace labctl {

struct RelayPort {
  std::string socket;  ///< qemu's chardev socket for the port
  std::string lock;    ///< flock'ed by the host client using the port
};

struct RelayIo {
  int in = 0;               ///< -1: no stdin (the command sees end of file at once)
  int out = 1, err = 2;
  std::string* capture = nullptr;  ///< when set, stdout is collected here instead
  int timeout_s = 0;               ///< 0: none; else hang up (killing the command) and fail
};

/// Runs `req` in the guest and returns its exit status. With req.tty the host terminal
/// (io.in) is put in raw mode for the session and restored after, and window-size changes
/// follow. SIGINT/SIGTERM/SIGHUP are passed to the command. Fails when no port answers or
/// the guest goes away mid-command (ECONNRESET).
[[nodiscard]] Result<int> relay_run(const std::vector<RelayPort>& ports, RelayRequest req,
                                    const RelayIo& io = {});

/// Guest side, one port (open as `port`): reads requests, runs each as `self_exe` with the
/// request's argv and streams it; answers a request it cannot read with an error. Serves
/// the hosts that come and go on it until the process is killed.
[[noreturn]] void serve_relay_port(int port, const std::string& self_exe);

/// Guest side: serves the virtio-serial ports named `port_names` (their /dev/vport* found by
/// name in sysfs) with `self_exe` as the labctl to run; writes `ready_file` once every port
/// is open. Returns only on a setup error.
[[nodiscard]] Status serve_relay(const std::vector<std::string>& port_names,
                                 const std::string& self_exe, const std::string& ready_file);

}  // namespace labctl
