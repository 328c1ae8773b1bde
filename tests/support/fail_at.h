// An Executor decorator for failure-injection tests (host and kernel tiers).
#pragma once

#include <cstddef>

#include "labctl/lab/executor.h"

namespace labctl::test {

/// Fails the at-th step it is asked to apply (counting from 0) with "injected failure";
/// everything else, and every revert, goes to the real executor.
class FailAt final : public Executor {
 public:
  FailAt(Executor& real, size_t at) : real_(real), at_(at) {}
  Status apply(const Step& s) override {
    if (n_++ == at_) return fail("injected failure");
    return real_.apply(s);
  }
  Status revert(const Step& s) override { return real_.revert(s); }

 private:
  Executor& real_;
  size_t at_, n_ = 0;
};

}  // namespace labctl::test
