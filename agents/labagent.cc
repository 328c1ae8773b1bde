// labagent: the workload programs labctl starts inside lab nodes. The agents issue turns
// this into the HTTP/echo/load agents; for now it only identifies itself.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("labagent " LABCTL_VERSION "\n");
    return 0;
  }
  std::fprintf(stderr, "usage: labagent --version\n");
  return 2;
}
