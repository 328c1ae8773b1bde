// Network sysctls, applied from inside a namespace: writes under /proc/sys/net act on the
// network namespace of the thread that opens the file, so call these from a thread that
// has entered the node's namespace (see run_in_netns).
#pragma once

#include <string>

#include "labctl/error.h"

namespace labctl {

/// "net.ipv4.conf.all.arp_ignore" -> "/proc/sys/net/ipv4/conf/all/arp_ignore".
/// Only net.* keys are accepted; "..", "/" and empty parts are rejected.
[[nodiscard]] Result<std::string> sysctl_path(const std::string& key);

/// Writes value, reads it back and fails if the kernel kept something else.
/// A key this kernel does not have is an error naming the key.
[[nodiscard]] Status write_sysctl(const std::string& key, const std::string& value);

[[nodiscard]] Result<std::string> read_sysctl(const std::string& key);

}  // namespace labctl
