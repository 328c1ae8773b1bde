#!/usr/bin/env bash
# Fetches Debian's stock kernel (IPVS, every scheduler and IPIP as modules) for
# `labctl vm exec` into a cache directory and prints that directory. Idempotent: a kernel
# already fetched is not fetched again. Needs root (the cache is under /var/cache) and
# the Debian archive (apt-get download).
#
# Layout: $cache/VERSION/boot/vmlinuz-VERSION and $cache/VERSION/lib/modules/VERSION,
# with modules.dep built by depmod; $cache/VERSION/.complete marks a finished fetch.
# Usage: fetch-vm-kernel.sh [--quiet]   (env LABCTL_KERNEL_CACHE overrides the cache dir)
set -euo pipefail

quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
cache=${LABCTL_KERNEL_CACHE:-/var/cache/labctl/kernel}
say() { [ $quiet -eq 1 ] || echo "fetch-vm-kernel: $*" >&2; }
die() { echo "fetch-vm-kernel: error: $*" >&2; exit 1; }

for tool in apt-cache apt-get dpkg-deb depmod; do
  command -v "$tool" >/dev/null || die "$tool not found (install apt, dpkg and kmod)"
done

# linux-image-amd64 is a metapackage; the real kernel is the versioned package it depends on.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
      sed -nE 's/^ *Depends: (linux-image-[0-9][^ ]*-amd64)$/\1/p' | head -n1)
[ -n "$pkg" ] || die "cannot resolve linux-image-amd64 to a kernel package (run apt-get update)"
version=${pkg#linux-image-}
dest=$cache/$version

if [ -f "$dest/.complete" ]; then
  say "$version already in $dest"
  echo "$dest"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt-get download drops privileges to _apt when it can; let it write the directory.
chmod 0755 "$work"
say "downloading $pkg"
(cd "$work" && apt-get download -q "$pkg" >/dev/null 2>"$work/apt.log") ||
  { cat "$work/apt.log" >&2; die "apt-get download $pkg failed"; }
say "unpacking"
dpkg-deb -x "$work"/"$pkg"_*.deb "$work/root"

# Debian 12 ships /lib/modules, later releases /usr/lib/modules: normalise to lib/modules.
if [ ! -d "$work/root/lib/modules/$version" ] && [ -d "$work/root/usr/lib/modules/$version" ]; then
  mkdir -p "$work/root/lib/modules"
  mv "$work/root/usr/lib/modules/$version" "$work/root/lib/modules/$version"
fi
[ -f "$work/root/boot/vmlinuz-$version" ] || die "$pkg has no boot/vmlinuz-$version"
[ -d "$work/root/lib/modules/$version" ] || die "$pkg has no lib/modules/$version"
depmod -b "$work/root" "$version"

rm -rf "$dest"
mkdir -p "$dest/boot" "$dest/lib/modules"
mv "$work/root/boot/vmlinuz-$version" "$dest/boot/"
mv "$work/root/lib/modules/$version" "$dest/lib/modules/"
touch "$dest/.complete"
say "$version ready in $dest"
echo "$dest"
