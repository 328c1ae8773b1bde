// Labs hosted in a micro-VM (docs/vm.md, "Labs in the micro-VM"): `up` boots a guest for a
// lab this kernel cannot build, and every command about such a lab is relayed to a labctl
// inside it. A lab is VM-hosted when its host state folder holds vm/ (lab/state.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "labctl/model/topology.h"

namespace labctl::cli {

/// The guest's folder: /run/labctl/labs/LAB/vm.
[[nodiscard]] std::string lab_vm_dir(const std::string& lab);
/// True inside a lab's guest (set by `labctl vm serve`): never relay, never boot a VM.
[[nodiscard]] bool inside_vm();
/// LAB is a valid lab name whose state holds a micro-VM (running or not).
[[nodiscard]] bool vm_hosted(const std::string& lab);
/// Every VM-hosted lab on this host, sorted.
[[nodiscard]] std::vector<std::string> vm_hosted_labs();

/// Runs labctl `args` (without "labctl") in LAB's guest with this process's stdout, stderr,
/// cwd and environment; returns its exit status. `capture`: collect stdout there instead.
/// `with_stdin`: stdin goes to the command too (and, when stdin and stdout are terminals,
/// it runs on a terminal); else it sees an empty stdin.
[[nodiscard]] int relay_to_lab(const std::string& lab, const std::vector<std::string>& args,
                               std::string* capture = nullptr, int timeout_s = 0,
                               bool with_stdin = false);

/// The lab `args` (a command line without "labctl") is about: the first positional
/// argument of its command, the values of the command's options skipped. nullopt: none.
[[nodiscard]] std::optional<std::string> lab_argument(const CLI::App& app,
                                                      const std::vector<std::string>& args);

/// main()'s hook, given the app with every command set up: when the command line is about a
/// VM-hosted lab (lab_argument names one) and the command is not one that handles VM labs
/// itself (up, down, status, ls, vm), relays the whole command line and returns its exit
/// status.
[[nodiscard]] std::optional<int> relay_if_vm_hosted(const CLI::App& app, int argc, char** argv);

/// The command line main() passed to relay_if_vm_hosted, without "labctl" (up relays it).
[[nodiscard]] const std::vector<std::string>& command_line_args();

/// Why the micro-VM cannot stand in on this machine (no qemu, kernel, busybox), or nullopt.
[[nodiscard]] std::optional<std::string> vm_unavailable();

/// `up` in a fresh guest: boots it (progress on stderr), relays `args` (the original
/// command line), and on failure leaves nothing behind. Returns the exit status.
[[nodiscard]] int up_in_vm(const Topology& t, const std::vector<std::string>& args, bool replace,
                           const std::string& why);

/// Takes a VM-hosted lab down (relayed down, guest stopped, host state removed). False: the
/// lab has no micro-VM state. Only the qemu its state records is stopped (vm/guest.h:
/// running_guest). Prints what it did; sets `failed` on errors.
bool down_vm(const std::string& lab, bool& failed);

/// One line about LAB's guest for status and ls: "micro-VM, guest kernel V, qemu pid N" or
/// that its qemu is gone.
[[nodiscard]] std::string vm_summary(const std::string& lab, bool* alive = nullptr);

}  // namespace labctl::cli
