#!/usr/bin/env bash
# Installs every build, test and VM dependency of labctl from Debian's archive.
# Idempotent and quiet when everything is already there. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libnl-3-dev libnl-route-3-dev libnl-genl-3-dev libmnl-dev
  libtomlplusplus-dev libcli11-dev libfmt-dev nlohmann-json3-dev libexpected-dev
  libpcap-dev tcpdump  # labctl capture/trace; tests read its pcap files back with tcpdump -r
  libgtest-dev libgmock-dev libbenchmark-dev
  iproute2 procps psmisc ipvsadm curl python3
  keepalived  # the keepalived agent kind (director high availability, ha-demo)
  nginx  # the nginx agent kind (an L7 reverse proxy); nginx-light is this plus the echo module
  openssh-client  # labs across machines: labctl reaches the other hosts with ssh
  openssh-server  # the host tier's simulated hosts run sshd (tests/support/simhosts.h)
  help2man  # man pages generated from --help (make install)
  libxml2-utils
  dpkg-dev lintian  # make deb: dpkg-shlibdeps for its Depends line; the package checked by lintian
  qemu-system-x86 busybox-static kmod cpio
  wrk  # labagent_bench: the load client labagent load is measured against
  gnuplot-nox  # labctl measure --svg: bars and latency percentiles drawn by gnuplot
  libnftables-dev nftables  # packet marks for fwmark services (libnftables), nft in dry-run scripts
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a freshly installed nginx, keepalived and openssh-server as system services
# (nginx's default site on port 80 of this machine, sshd on port 22). labctl runs the first
# two only inside labs, from a lab's own folders, and never relies on a system sshd (the
# tests run their own in simulated hosts; other machines are the user's): stop and disable
# the services this run just installed, so installing labctl's dependencies opens no port
# and runs no daemon outside the labs.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  for pkg_svc in nginx:nginx keepalived:keepalived openssh-server:ssh; do
    case " ${missing[*]} " in
      *" ${pkg_svc%%:*} "*) $sudo systemctl disable --now "${pkg_svc#*:}" >/dev/null 2>&1 || true ;;
    esac
  done
fi
