#include "labctl/vm/relay_protocol.h"

#include <sys/wait.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace labctl {
namespace {

bool known_type(uint8_t t) {
  switch (static_cast<FrameType>(t)) {
    case FrameType::kRequest:
    case FrameType::kStarted:
    case FrameType::kStdin:
    case FrameType::kStdinEof:
    case FrameType::kWinsize:
    case FrameType::kSignal:
    case FrameType::kStdout:
    case FrameType::kStderr:
    case FrameType::kExit:
    case FrameType::kError:
      return true;
  }
  return false;
}

uint32_t read_be32(const char* p) {
  auto b = [&](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

}  // namespace

std::string encode_u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::optional<uint32_t> decode_u32(std::string_view p) {
  if (p.size() != 4) return std::nullopt;
  return read_be32(p.data());
}

std::string encode_frame(FrameType type, std::string_view payload) {
  std::string out(1, static_cast<char>(type));
  out += encode_u32(static_cast<uint32_t>(payload.size()));
  out.append(payload);
  return out;
}

std::string encode_winsize(uint16_t rows, uint16_t cols) {
  return {static_cast<char>(rows >> 8), static_cast<char>(rows), static_cast<char>(cols >> 8),
          static_cast<char>(cols)};
}

std::optional<std::pair<uint16_t, uint16_t>> decode_winsize(std::string_view p) {
  if (p.size() != 4) return std::nullopt;
  auto b = [&](int i) { return static_cast<uint16_t>(static_cast<unsigned char>(p[i])); };
  return std::pair<uint16_t, uint16_t>{static_cast<uint16_t>(b(0) << 8 | b(1)),
                                       static_cast<uint16_t>(b(2) << 8 | b(3))};
}

Result<std::optional<Frame>> FrameDecoder::next() {
  if (buf_.size() - pos_ < 5) return std::nullopt;
  const auto type = static_cast<uint8_t>(buf_[pos_]);
  if (!known_type(type))
    return fail(fmt::format("relay: unknown frame type 0x{:02x}", type),
                "the two labctl ends speak different protocols: use the same labctl binary");
  const uint32_t len = read_be32(buf_.data() + pos_ + 1);
  if (len > kMaxFramePayload)
    return fail(fmt::format("relay: a frame of {} bytes (limit {})", len, kMaxFramePayload));
  if (buf_.size() - pos_ - 5 < len) return std::nullopt;
  Frame f{static_cast<FrameType>(type), buf_.substr(pos_ + 5, len)};
  pos_ += 5 + len;
  // Compact once the consumed prefix dominates, so the buffer stays small.
  if (pos_ > 65536 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return f;
}

std::string encode_request(const RelayRequest& r) {
  nlohmann::json j = {{"argv", r.argv}, {"cwd", r.cwd},   {"env", r.env},   {"tty", r.tty},
                      {"rows", r.rows}, {"cols", r.cols}, {"nonce", r.nonce}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<RelayRequest> decode_request(std::string_view json) {
  try {
    auto j = nlohmann::json::parse(json);
    RelayRequest r;
    r.argv = j.at("argv").get<std::vector<std::string>>();
    r.cwd = j.at("cwd").get<std::string>();
    r.env = j.at("env").get<std::vector<std::string>>();
    r.tty = j.at("tty").get<bool>();
    r.rows = j.at("rows").get<uint16_t>();
    r.cols = j.at("cols").get<uint16_t>();
    r.nonce = j.at("nonce").get<std::string>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("relay: a malformed request: ") + e.what());
  }
}

std::string request_nonce(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object()) return {};
  auto it = j.find("nonce");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<bool> SessionFrames::accept(const Frame& f) {
  if (f.type == FrameType::kStarted) {
    if (f.payload == nonce_) started_ = true;
    else if (f.payload.empty() && !started_) refused_ = true;
    return false;
  }
  if (started_) return true;
  if (refused_ && f.type == FrameType::kError)
    return fail("the micro-VM refused the request: " + f.payload,
                "its labctl is another version than this one: `labctl down LAB` and up again");
  return false;  // what a previous session on this port left behind
}

int shell_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

}  // namespace labctl
