#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian machine: Debian packages, npm packages, images/.
# Quick when everything is already there: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=0; [ "${1:-}" = "--quiet" ] && quiet=1
say() { [ $quiet = 1 ] || echo "setup: $*"; }

# Debian packages: the CPU (Unicorn 2), BTF from DWARF (pahole), bpftool, clang for BPF objects,
# binutils for objdump (test oracle), gcc/make for the image, gdb (the remote stub's tests) and
# tmux (drives the shell through a pseudo-terminal in tests).
pkgs=(libunicorn2 libunicorn-dev dwarves bpftool clang libbpf-dev gcc make binutils gdb tmux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages (with optional dependencies: koffi's native binary ships in one).
stamp=node_modules/.bpfemu-installed
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || { [ -f package-lock.json ] && [ package-lock.json -nt "$stamp" ]; }; then
  echo "setup: installing npm packages"
  if [ -f package-lock.json ]; then npm ci --include=optional --no-audit --no-fund --loglevel=error
  else npm install --include=optional --no-audit --no-fund --loglevel=error; fi
  touch "$stamp"
fi

# images/: the kernel image, its BTF and symbols (make decides what is stale).
if [ $quiet = 1 ]; then make -s -C images >/dev/null; else make -C images; fi
say "ready"
