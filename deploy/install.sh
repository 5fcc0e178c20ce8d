#!/usr/bin/env bash
# fer-pi installer for Raspberry Pi OS (Bookworm or Trixie, 64-bit, Lite or Desktop).
#
#   sudo deploy/install.sh             install or update, enable the kiosk service
#   sudo deploy/install.sh --dry-run   print every step, change nothing
#   sudo deploy/install.sh --network   also let the service use the network (MQTT, status
#                                      endpoint); automatic when the config enables them
#   sudo deploy/install.sh --uninstall remove service, venv and user (keeps /etc/fer-pi)
#   sudo deploy/install.sh --uninstall --purge   also remove /etc/fer-pi and /var/lib/fer-pi
#
# Idempotent: running it again updates fer-pi and leaves an edited config alone.
set -euo pipefail

PREFIX=/opt/fer-pi
VENV=$PREFIX/venv
CONF_DIR=/etc/fer-pi
UNIT=/etc/systemd/system/fer-pi.service
USER_NAME=fer-pi
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY=0
UNINSTALL=0
PURGE=0
ENABLE=1
NETWORK=0
DROPIN_DIR=/etc/systemd/system/fer-pi.service.d
# packages that must come from apt on a Pi: picamera2 and libcamera are built for the
# Pi's kernel and ISP; python3-systemd for sd_notify/journal; the GBM/DRM/EGL
# libraries that pygame-ce's SDL needs for KMSDRM on a console without a desktop
APT_PACKAGES=(python3-venv python3-pip python3-picamera2 python3-systemd python3-numpy
              libgbm1 libdrm2 libegl1 libgles2 v4l-utils)

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    --no-enable) ENABLE=0 ;;
    --network) NETWORK=1 ;;
    --source)
      if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "install.sh: --source needs a folder (a fer-pi checkout)" >&2; exit 2
      fi
      SRC=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n== %s\n' "$*"; }
run() {
  printf '+ %s\n' "$*"
  if [ "$DRY" -eq 0 ]; then "$@"; fi
}
write_file() {  # write_file PATH MODE < content
  local path=$1 mode=$2 content
  content=$(cat)
  printf '+ write %s (mode %s)\n' "$path" "$mode"
  if [ "$DRY" -eq 0 ]; then
    printf '%s\n' "$content" > "$path.tmp" && chmod "$mode" "$path.tmp" && mv "$path.tmp" "$path"
  fi
}

if [ ! -f "$SRC/pyproject.toml" ] || [ ! -d "$SRC/device/fer_pi" ]; then
  echo "install.sh: $SRC is not a fer-pi checkout (no pyproject.toml and device/fer_pi)" >&2
  exit 2
fi

if [ "$DRY" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (sudo), or with --dry-run to see the steps" >&2
  exit 1
fi

if [ "$UNINSTALL" -eq 1 ]; then
  step "stop and remove the service"
  run systemctl disable --now fer-pi.service || true
  run rm -f "$UNIT"
  run rm -rf "$DROPIN_DIR"
  run systemctl daemon-reload
  step "remove the program and its user"
  run rm -rf "$PREFIX"
  if id "$USER_NAME" >/dev/null 2>&1; then run userdel "$USER_NAME"; fi
  if [ "$PURGE" -eq 1 ]; then
    step "purge settings and state"
    run rm -rf "$CONF_DIR" /var/lib/fer-pi /var/cache/fer-pi
  else
    echo "kept $CONF_DIR (remove with --uninstall --purge)"
  fi
  exit 0
fi

step "check the platform"
arch=$(uname -m)
if [ "$arch" != "aarch64" ] && [ "$arch" != "x86_64" ]; then
  echo "install.sh: $arch is not supported: use 64-bit Raspberry Pi OS (aarch64)" >&2
  [ "$DRY" -eq 1 ] || exit 1
fi
# shellcheck source=/dev/null
. /etc/os-release 2>/dev/null || true
echo "system: ${PRETTY_NAME:-unknown}, $arch"

step "apt packages"
run apt-get update
run apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"

step "system user $USER_NAME (groups video, render, input)"
# Raspberry Pi OS has these groups; a minimal Debian (no udev yet) may lack render and input
for group in video render input; do
  getent group "$group" >/dev/null || run groupadd --system "$group"
done
if id "$USER_NAME" >/dev/null 2>&1; then
  run usermod -a -G video,render,input "$USER_NAME"
else
  run useradd --system --home-dir /var/lib/fer-pi --no-create-home --shell /usr/sbin/nologin \
    --groups video,render,input "$USER_NAME"
fi

step "venv with system site packages (picamera2 and systemd come from apt)"
run mkdir -p "$PREFIX"
if [ ! -x "$VENV/bin/python" ]; then
  run python3 -m venv --system-site-packages "$VENV"
fi
# one numpy for apt's picamera2 and the venv: pin the system's; OpenCV 4.12+ needs numpy 2
constraints=$PREFIX/constraints.txt
sys_numpy=$(python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)
{
  if [ -n "$sys_numpy" ]; then
    echo "numpy==$sys_numpy"
    case "$sys_numpy" in 1.*) echo "opencv-python-headless<4.12" ;; esac
  fi
} | write_file "$constraints" 0644
run "$VENV/bin/python" -m pip install --upgrade pip
# built from a clean copy, never inside the checkout: setuptools' build/ there would be left
# owned by root, and a stale build/lib file from an older checkout would go into the wheel
stage=$(mktemp -d /tmp/fer-pi-src.XXXXXX)
trap 'rm -rf "$stage"' EXIT
printf '+ copy %s to %s (without build/, dist/, *.egg-info, .git, .venv)\n' "$SRC" "$stage"
tar -C "$SRC" --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=./.git \
  --exclude=./.venv --exclude='__pycache__' -cf - . | tar -C "$stage" -xf -
run "$VENV/bin/python" -m pip install --upgrade --constraint "$constraints" "$stage"
run cp "$SRC/README.md" "$PREFIX/README.md"

step "settings: $CONF_DIR/config.toml (kept if it exists)"
run mkdir -p "$CONF_DIR"
if [ -f "$CONF_DIR/config.toml" ]; then
  echo "kept existing $CONF_DIR/config.toml"
else
  run install -m 0644 "$SRC/deploy/config.toml" "$CONF_DIR/config.toml"
fi

step "systemd unit"
run install -m 0644 "$SRC/systemd/fer-pi.service" "$UNIT"
# the unit has no network; MQTT and the status endpoint need it: a drop-in opens IP
if [ "$NETWORK" -eq 0 ] && [ -f "$CONF_DIR/config.toml" ] && [ -x "$VENV/bin/python" ]; then
  NETWORK=$("$VENV/bin/python" -c 'import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
print(int(any(c.get(s, {}).get("enabled") is True for s in ("mqtt", "status"))))' \
    "$CONF_DIR/config.toml" 2>/dev/null || echo 0)
fi
if [ "$NETWORK" -eq 1 ]; then
  run mkdir -p "$DROPIN_DIR"
  run install -m 0644 "$SRC/systemd/network.conf" "$DROPIN_DIR/network.conf"
else
  echo "no network for the service (MQTT and status off); --network adds it"
fi
# in a chroot or an image being built, systemd is not running: enabling the unit still
# works (it is a link), reloading a running systemd does not and is not needed
if [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
else
  echo "systemd is not running here (a chroot or an image being built): the unit starts at the next boot"
fi
if [ "$ENABLE" -eq 1 ]; then
  run systemctl enable fer-pi.service
fi

step "console blanking off (the board must stay lit)"
cmdline=""
for f in /boot/firmware/cmdline.txt /boot/cmdline.txt; do
  if [ -f "$f" ]; then cmdline=$f; break; fi
done
if [ -n "$cmdline" ]; then
  if grep -q 'consoleblank=0' "$cmdline"; then
    echo "already set in $cmdline"
  else
    run sed -i '1 s/$/ consoleblank=0/' "$cmdline"
  fi
else
  echo "no cmdline.txt found: add consoleblank=0 to the kernel command line by hand"
fi

step "camera check"
found=0
if command -v rpicam-hello >/dev/null 2>&1 && rpicam-hello --list-cameras 2>/dev/null | grep -q '^[0-9] :'; then
  echo "Pi camera found: use camera = \"picam\" in $CONF_DIR/config.toml"
  found=1
fi
for dev in /dev/video*; do
  [ -e "$dev" ] || continue
  if command -v v4l2-ctl >/dev/null 2>&1 && v4l2-ctl -d "$dev" --all 2>/dev/null | grep -q 'Video Capture'; then
    echo "V4L2 capture device: $dev"
    found=1
  fi
done
if [ "$found" -eq 1 ]; then
  echo "CAMERA: found. Reboot (or: sudo systemctl start fer-pi) and the board comes up."
else
  echo "CAMERA: NONE FOUND. Connect a camera (ribbon cable with power off, or USB), then reboot."
fi
