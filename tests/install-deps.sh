#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine (run as root).
# With LABCTL_E2E=1 it also prepares the host for the real-VM test (libvirt, qemu, box).
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt_packages=(
  vagrant          # `vagrant validate` on every rendered Vagrantfile
  shellcheck       # every rendered bootstrap script
  openssh-server   # real sshd peers for the SSH layer and `labctl up` end to end
  openssh-client   # `labctl ssh` and ssh-keygen in tests
  iproute2         # network namespaces
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test]"

if [[ "${LABCTL_E2E:-0}" == "1" && -x tests/e2e/setup-host.sh ]]; then
  tests/e2e/setup-host.sh
fi
