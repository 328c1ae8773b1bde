// The wire format between a host labctl and `labctl vm serve` in a lab's micro-VM, over a
// virtio-serial port: length-prefixed frames, the first of each session a JSON request.
// Pure code (no I/O), so it is unit-tested as values. See docs/vm.md.
//
//   +--------+----------------------+-------------------+
//   | type:1 | length:4 (big-endian)| payload: length   |
//   +--------+----------------------+-------------------+
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"

namespace labctl {

enum class FrameType : uint8_t {
  kRequest = 'Q',   ///< host -> guest, JSON (RelayRequest); starts a session
  kStarted = 'A',   ///< guest -> host, the request's nonce: what follows is this session's
  kStdin = 'I',     ///< host -> guest, bytes for the command's stdin (or its terminal)
  kStdinEof = 'E',  ///< host -> guest, the host's stdin ended
  kWinsize = 'W',   ///< host -> guest, 4 bytes: rows, cols (big-endian uint16 each)
  kSignal = 'S',    ///< host -> guest, 1 byte: a signal number for the command's group
  kStdout = 'O',    ///< guest -> host
  kStderr = 'R',    ///< guest -> host
  kExit = 'X',      ///< guest -> host, 4 bytes big-endian: exit status (128+N: signal N)
  kError = 'F',     ///< guest -> host, text: the command could not be started
};

/// Frames larger than this are a protocol error (a stale or corrupt stream), not data.
inline constexpr uint32_t kMaxFramePayload = 1u << 20;

struct Frame {
  FrameType type{};
  std::string payload;
  bool operator==(const Frame&) const = default;
};

[[nodiscard]] std::string encode_frame(FrameType type, std::string_view payload);
[[nodiscard]] std::string encode_u32(uint32_t v);
[[nodiscard]] std::optional<uint32_t> decode_u32(std::string_view payload);
[[nodiscard]] std::string encode_winsize(uint16_t rows, uint16_t cols);
[[nodiscard]] std::optional<std::pair<uint16_t, uint16_t>> decode_winsize(std::string_view p);

/// Cuts a byte stream into frames, whatever the read sizes. An unknown type or an oversized
/// length makes it fail for good (the caller drops the session).
class FrameDecoder {
 public:
  void feed(std::string_view bytes) { buf_.append(bytes); }
  /// The next whole frame, nullopt when more bytes are needed; an error on a bad header.
  [[nodiscard]] Result<std::optional<Frame>> next();
  void reset() {
    buf_.clear();
    pos_ = 0;
  }

 private:
  std::string buf_;
  size_t pos_ = 0;
};

/// What the host asks the guest to run: labctl with `argv` (without "labctl" itself), or,
/// with `program` set, that program (tests, diagnostics).
struct RelayRequest {
  std::vector<std::string> argv;
  std::string cwd = "/";
  std::vector<std::string> env;  ///< "NAME=value"
  bool tty = false;              ///< run it on a pseudo-terminal of that size
  uint16_t rows = 24, cols = 80;
  std::string nonce;             ///< echoed in kStarted
  bool operator==(const RelayRequest&) const = default;
};

[[nodiscard]] std::string encode_request(const RelayRequest& r);
[[nodiscard]] Result<RelayRequest> decode_request(std::string_view json);
/// The nonce of a request decode_request refuses, when it still carries one; else "".
[[nodiscard]] std::string request_nonce(std::string_view json);

/// Which frames the host reads belong to its session: what a previous session on the port
/// left is skipped until the guest's kStarted with our nonce. A kStarted with an empty nonce
/// answers a request the guest could not read; the kError after it fails the session
/// (the host would otherwise wait for its nonce forever).
class SessionFrames {
 public:
  explicit SessionFrames(std::string nonce) : nonce_(std::move(nonce)) {}
  /// Whether `f` is this session's, to be handled (kStarted never is); an error when the
  /// guest refused the request.
  [[nodiscard]] Result<bool> accept(const Frame& f);
  [[nodiscard]] bool started() const { return started_; }

 private:
  std::string nonce_;
  bool started_ = false, refused_ = false;
};

/// The exit status a shell would report for a wait() status (128+N for signal N).
[[nodiscard]] int shell_status(int wait_status);

}  // namespace labctl
