// Check reports as JUnit XML, the format CI servers and graders read (the Jenkins/Surefire
// shape, tests/data/junit.xsd): one <testsuite> per lab, one <testcase> per check.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "labctl/checks/checks.h"

namespace labctl {

/// <testsuites> holding one <testsuite name=LAB> per report; each check a <testcase
/// classname=LAB name=CHECK time=SECONDS>; a failed one has <failure message="expected ...;
/// seen ...; cause ..."> with the causes and fixes in its text; the evidence (what was
/// seen, the deadline) in <system-out>.
/// `suite` names the whole (<testsuites name=...>).
[[nodiscard]] std::string checks_junit(const std::vector<CheckReport>& reports,
                                       std::string_view suite = "labctl check");

/// `s` as XML 1.0 text or attribute value: markup characters as entities, line ends in
/// attributes as character references, and what XML cannot carry at all (control bytes,
/// invalid UTF-8, U+FFFE/U+FFFF) as visible \xNN.
[[nodiscard]] std::string xml_escaped(std::string_view s, bool attribute = false);

}  // namespace labctl
