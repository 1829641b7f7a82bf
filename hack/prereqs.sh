#!/usr/bin/env bash
# Installs what a fresh machine of this kind lacks. Idempotent: a second run
# only checks. Builds go to the cache outside the clone (hack/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "prereqs: $* missing and not root: install it with apt-get" >&2
    exit 1
  fi
  # Update the package lists once per machine, not on every run.
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

for tool in make git curl; do
  command -v "$tool" >/dev/null 2>&1 || apt_install "$tool"
done

if ! command -v go >/dev/null 2>&1; then
  echo "prereqs: go is not on PATH (this project builds with Go $(sed -n 's/^go //p' go.mod))" >&2
  exit 1
fi

if ! command -v moto_server >/dev/null 2>&1 && ! ls "$HOME"/.pyenv/versions/*/bin/moto_server >/dev/null 2>&1 \
  && ! python3 -c 'import moto.server' >/dev/null 2>&1; then
  echo "prereqs: moto (python package moto[server]) is not installed; the IAM emulator cannot start. Install it: pip install 'moto[server]'" >&2
  exit 1
fi

# The provider's Go modules, so later steps never stall on a download. (The
# tools module downloads only what the tool being run needs, when it runs.)
go mod download

# OpenTofu: make test runs the acceptance suite under it as well as under
# terraform (which ships with the machine image; without it, OpenTofu is the
# only CLI). Built once from the pinned module, then cached.
dir=$(tofu_dir)
if [ ! -x "$dir/tofu" ]; then
  echo "prereqs: building OpenTofu $TOFU_VERSION into $dir (about 4 minutes, once)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  (cd hack/tofu && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
    go build -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
    -o "$dir.tmp/tofu" github.com/opentofu/opentofu/cmd/tofu)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
