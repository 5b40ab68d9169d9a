#!/usr/bin/env bash
# Build the end-to-end tests' Vagrant box: a small Debian 12 (bookworm) libvirt box made
# with debootstrap, because no box can be downloaded on the test machines.
#
# Usage: build_box.sh
#   Prints box_file=, box_name= and box_version= lines on stdout.
# Env:
#   LABCTL_E2E_CACHE   cache folder (default /var/cache/labctl-e2e); the box is kept
#                      there, keyed by a hash of this script, and reused by later runs.
#   LABCTL_E2E_MIRROR  Debian mirror (default: the first one in the host's apt sources).
#   VAGRANT_HOME       when set, the box is also added there as $LABCTL_E2E_BOX_NAME
#                      (default labctl/debian12-e2e) unless it is already present.
#
# The guests have no internet, so everything the lab's preparation steps use must be
# in the image already. Needs root, debootstrap, extlinux, parted, qemu-img.
set -euo pipefail

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
CACHE=${LABCTL_E2E_CACHE:-/var/cache/labctl-e2e}
BOX_NAME=${LABCTL_E2E_BOX_NAME:-labctl/debian12-e2e}
SUITE=bookworm
DISK_GB=8
SWAP_MB=128
# Keyed by the image recipe only (everything above the END-OF-RECIPE line).
KEY_HASH=$(sed '/^# END-OF-RECIPE/q' "$SCRIPT" | sha256sum | cut -c1-12)
BOX="$CACHE/debian12-e2e-$KEY_HASH.box"
# A real version (not Vagrant's "0") names the box's libvirt volume without a timestamp,
# and a new script version never meets a volume of an older image.
BOX_VERSION="1.0.$((16#${KEY_HASH:0:7}))"

# Packages the lab's steps rely on (containerd, kernel modules, sysctl, apt tooling for
# the Kubernetes repository) plus what Vagrant needs to drive a Debian guest.
PACKAGES=(
  systemd-sysv udev dbus openssh-server sudo iproute2 ifupdown isc-dhcp-client
  linux-image-cloud-amd64 python3 kmod procps
  containerd runc curl gpg ca-certificates apt-transport-https
  iptables conntrack socat ebtables ethtool
)

log() { printf 'build_box: %s\n' "$*" >&2; }

mirror() {
  if [[ -n ${LABCTL_E2E_MIRROR:-} ]]; then
    echo "$LABCTL_E2E_MIRROR"
    return
  fi
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  if [[ -z $uri ]]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  fi
  [[ -n $uri ]] || { log "no Debian mirror found in the apt sources; set LABCTL_E2E_MIRROR"; exit 2; }
  echo "$uri"
}

vagrant_pubkey() {
  # Debian's vagrant package ships the insecure key pair; Vagrant swaps it for a fresh
  # key on first boot.
  local f
  f=$(find /usr/share/rubygems-integration /usr/lib/ruby/vendor_ruby -path '*vagrant*/keys/vagrant.pub' 2>/dev/null | head -n1 || true)
  [[ -n $f ]] || { log "Vagrant's insecure public key not found: install Debian's vagrant package"; exit 2; }
  cat "$f"
}

WORK=""
LOOP=""
cleanup() {
  set +e
  if [[ -n $WORK ]]; then
    mountpoint -q "$WORK/mnt" && umount -R "$WORK/mnt"
    for m in proc sys dev/pts dev; do
      mountpoint -q "$WORK/root/$m" && umount -l "$WORK/root/$m"
    done
  fi
  if [[ -n $LOOP ]]; then
    partx -d "$LOOP" 2>/dev/null
    losetup -d "$LOOP"
  fi
  [[ -n $WORK ]] && rm -rf "$WORK"
}
trap cleanup EXIT

configure_rootfs() {
  local root=$1
  echo e2e-box >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\te2e-box\n' >"$root/etc/hosts"
  # A swap file in fstab, so the lab's "swap off persistently" step meets real swap.
  dd if=/dev/zero of="$root/swapfile" bs=1M count="$SWAP_MB" status=none
  chmod 600 "$root/swapfile"
  mkswap "$root/swapfile" >/dev/null
  cat >"$root/etc/fstab" <<'EOF'
LABEL=root / ext4 defaults,errors=remount-ro 0 1
/swapfile none swap sw 0 0
EOF
  cat >"$root/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
  # Vagrant's Debian guest plugin writes eth1 (the private network) itself.
  chroot "$root" useradd -m -s /bin/bash -U vagrant
  echo 'vagrant:vagrant' | chroot "$root" chpasswd
  install -d -m 0700 "$root/home/vagrant/.ssh"
  vagrant_pubkey >"$root/home/vagrant/.ssh/authorized_keys"
  chmod 600 "$root/home/vagrant/.ssh/authorized_keys"
  chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh
  echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/vagrant"
  chmod 440 "$root/etc/sudoers.d/vagrant"
  cat >"$root/etc/ssh/sshd_config.d/vagrant.conf" <<'EOF'
UseDNS no
PasswordAuthentication no
EOF
  # Each VM must have its own host keys (the lab pins them per node): the image ships
  # none and makes them on first boot before sshd starts.
  rm -f "$root"/etc/ssh/ssh_host_*
  cat >"$root/etc/systemd/system/ssh-hostkeys.service" <<'EOF'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
EOF
  chroot "$root" systemctl enable ssh-hostkeys.service >/dev/null 2>&1
  # Each VM gets its own machine-id (DHCP client ids, journald) on first boot.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # Serial console: boot messages reach libvirt's console log, useful when a boot hangs.
  chroot "$root" systemctl enable serial-getty@ttyS0.service >/dev/null 2>&1 || true
  # Without internet a timeout waiting on the network wastes boot time under emulation.
  mkdir -p "$root/etc/systemd/system/networking.service.d"
  printf '[Service]\nTimeoutStartSec=120\n' >"$root/etc/systemd/system/networking.service.d/timeout.conf"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/*
}

make_image() {
  local root=$1 raw=$2
  truncate -s "${DISK_GB}G" "$raw"
  parted -s "$raw" mklabel msdos mkpart primary ext4 1MiB 100% set 1 boot on
  LOOP=$(losetup --find --show "$raw")
  partx -a "$LOOP" 2>/dev/null || partx -u "$LOOP"
  local part="${LOOP}p1"
  for _ in $(seq 1 50); do [[ -b $part ]] && break; sleep 0.1; done
  if [[ ! -b $part ]]; then
    # Without udev the node may be missing even though the kernel knows the partition.
    local majmin
    majmin=$(cat "/sys/class/block/$(basename "$part")/dev")
    mknod "$part" b "${majmin%%:*}" "${majmin##*:}"
  fi
  # extlinux cannot read ext4 with 64bit or metadata_csum.
  mkfs.ext4 -q -L root -O ^64bit,^metadata_csum "$part"
  mkdir -p "$WORK/mnt"
  mount "$part" "$WORK/mnt"
  cp -a "$root"/. "$WORK/mnt"/
  local kernel initrd
  kernel=$(cd "$WORK/mnt/boot" && ls vmlinuz-* | head -n1)
  initrd=$(cd "$WORK/mnt/boot" && ls initrd.img-* | head -n1)
  mkdir -p "$WORK/mnt/boot/extlinux"
  cat >"$WORK/mnt/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 1
PROMPT 0
LABEL debian
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=LABEL=root ro net.ifnames=0 biosdevname=0 console=tty0 console=ttyS0,115200n8 quiet
EOF
  extlinux --install "$WORK/mnt/boot/extlinux" >/dev/null
  sync
  umount "$WORK/mnt"
  partx -d "$LOOP" 2>/dev/null || true
  losetup -d "$LOOP"
  LOOP=""
  dd if=/usr/lib/EXTLINUX/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
}

build() {
  mkdir -p "$CACHE"
  WORK=$(mktemp -d "$CACHE/build.XXXXXX")
  local root="$WORK/root" t0=$SECONDS mirror_uri
  mirror_uri=$(mirror)
  log "debootstrap $SUITE from $mirror_uri (a few minutes)"
  local inc
  inc=$(IFS=,; echo "${PACKAGES[*]}")
  if ! debootstrap --variant=minbase --include="$inc" "$SUITE" "$root" "$mirror_uri" >"$WORK/debootstrap.log" 2>&1; then
    tail -n 30 "$WORK/debootstrap.log" >&2
    log "debootstrap failed (full log above was $WORK/debootstrap.log)"
    exit 1
  fi
  log "debootstrap done in $((SECONDS - t0)) s"
  configure_rootfs "$root"
  make_image "$root" "$WORK/disk.raw"
  mkdir -p "$WORK/box"
  qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/box/box.img"
  printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$DISK_GB" >"$WORK/box/metadata.json"
  cat >"$WORK/box/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "qemu"
  end
end
EOF
  tar -C "$WORK/box" -cf "$WORK/out.box" metadata.json Vagrantfile box.img
  mv "$WORK/out.box" "$BOX"
  # Older boxes of earlier script versions are dead weight.
  find "$CACHE" -maxdepth 1 -name 'debian12-e2e-*.box' ! -name "$(basename "$BOX")" -delete
  log "box built in $((SECONDS - t0)) s: $BOX ($(du -h "$BOX" | cut -f1))"
}

# END-OF-RECIPE: changes below this line do not rebuild the box.
if [[ -s $BOX ]]; then
  log "cached box $BOX"
else
  build
fi

if [[ -n ${VAGRANT_HOME:-} ]]; then
  if ! vagrant box list --machine-readable 2>/dev/null | grep -q ",box-name,${BOX_NAME}\$"; then
    # A catalog file is the only way to give a local box a version.
    catalog="$VAGRANT_HOME/labctl-e2e-box.json"
    printf '{"name":"%s","versions":[{"version":"%s","providers":[{"name":"libvirt","url":"file://%s"}]}]}\n' \
      "$BOX_NAME" "$BOX_VERSION" "$BOX" >"$catalog"
    vagrant box add --force "$catalog" >/dev/null
  fi
fi
printf 'box_file=%s\nbox_name=%s\nbox_version=%s\n' "$BOX" "$BOX_NAME" "$BOX_VERSION"
