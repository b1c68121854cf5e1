#!/usr/bin/env bash
# Install the Debian packages sylkbox needs, only those that are missing.
#   scripts/system-deps.sh run    packages needed to run the server
#   scripts/system-deps.sh test   packages needed by the test suite (real peers, audio tools)
set -euo pipefail
what=${1:-run}
run_pkgs=(python3-venv ca-certificates libopus0 espeak-ng)
test_pkgs=(sip-tester baresip linphone-cli sox iproute2 libxml2-utils chromium chromium-driver fonts-liberation avahi-daemon avahi-utils dbus-daemon)
case "$what" in
  run) pkgs=("${run_pkgs[@]}") ;;
  test) pkgs=("${run_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3-venv is irrelevant when the interpreter already provides venv (pyenv builds)
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}")
fi
read -r -a missing <<< "${missing[*]:-}"
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq || true
# avahi-daemon is a test peer run only inside the tests' network namespaces: its package must not
# start a daemon on the machine's real interfaces (policy-rc.d 101 = "do not start services")
policy=/usr/sbin/policy-rc.d
made_policy=""
if [[ " ${missing[*]} " == *" avahi-daemon "* ]] && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" > /dev/null
  $SUDO chmod 755 "$policy"
  made_policy=1
fi
status=0
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" || status=$?
[ -z "$made_policy" ] || $SUDO rm -f "$policy"
exit "$status"
