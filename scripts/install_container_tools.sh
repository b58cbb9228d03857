#!/usr/bin/env bash
# The container tier's tools (tests/containers), installed with apt when missing: podman, runc
# (crun fails on this machine kind), netavark and aardvark-dns (compose services find each
# other by name), iptables (netavark sets up container networks with it) and mmdebstrap (a local Debian base image, since no registry is reachable).
# Without apt this says so and leaves the tier to skip itself.
set -euo pipefail

missing=()
for tool in podman runc mmdebstrap iptables; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -x /usr/lib/podman/netavark ] || missing+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || missing+=(aardvark-dns)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "install_container_tools: no apt-get; install ${missing[*]} yourself, or the container tier skips" >&2
    exit 0
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "install_container_tools: installing ${missing[*]}"
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
