# Warnings and sanitizers as INTERFACE targets (ccache's habit): every target links
# labctl_warnings, and labctl_sanitizers when LABCTL_SANITIZE is on.
option(LABCTL_WERROR "Treat warnings as errors" OFF)
option(LABCTL_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

add_library(labctl_warnings INTERFACE)
target_compile_options(labctl_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wimplicit-fallthrough
  $<$<BOOL:${LABCTL_WERROR}>:-Werror>)

add_library(labctl_sanitizers INTERFACE)
if(LABCTL_SANITIZE)
  # ASan's instrumentation makes GCC 12 report -Wmaybe-uninitialized inside libstdc++
  # (std::regex, std::function) where nothing is uninitialized; the normal build keeps it.
  target_compile_options(labctl_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
    -Wno-maybe-uninitialized)
  target_link_options(labctl_sanitizers INTERFACE -fsanitize=address,undefined)
endif()

set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

# For targets whose speed does not matter (the CLI's flag wiring, tests): most of their
# build time is optimizing header-only CLI11/GoogleTest templates, so build them -Og.
add_library(labctl_fast_build INTERFACE)
target_compile_options(labctl_fast_build INTERFACE $<$<NOT:$<CONFIG:Debug>>:-Og -g1>)
