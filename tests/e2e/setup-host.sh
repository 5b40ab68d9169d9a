#!/usr/bin/env bash
# Prepare a fresh Debian 12 host for the real-VM test (tests/e2e): Vagrant's libvirt
# plugin, libvirt and qemu (software emulation), the tools that build the test box, and
# the box itself (cached under /var/cache/labctl-e2e, so a second run is seconds).
# Run as root. Starts no service: the test starts libvirtd inside its own namespace.
set -euo pipefail
cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive
packages=(
  vagrant vagrant-libvirt          # the real Vagrant with its libvirt provider
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients  # libvirtd, virtlogd, virsh
  qemu-system-x86 qemu-utils       # the VMs (TCG emulation) and qemu-img
  dnsmasq-base iptables ebtables   # libvirt's NAT management network, inside the netns
  iproute2 openssh-client          # ip netns; ssh for `labctl ssh`
  debootstrap debian-archive-keyring extlinux parted e2fsprogs util-linux  # build_box.sh
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup-host: installing ${missing[*]}" >&2
  apt-get update -qq
  # No recommends: they would pull in nfs-kernel-server, libguestfs and a desktop's worth.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The box: built once per machine (about 75 s), then reused.
./build_box.sh >/dev/null
