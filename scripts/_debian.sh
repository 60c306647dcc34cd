# Sourced by the set-up's install helpers: a Debian package a step needs, installed only when its command is
# absent, so a set-up run on a machine that has it costs one `command -v`.
need_debian_package() {  # need_debian_package COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "$1 is missing: install the Debian package $2 (as root)" >&2; return 1; }
    sudo="sudo"
  fi
  echo "==> installing the Debian package $2 (for $1)" >&2
  # The package lists may be missing or old on a fresh machine; one update before the install.
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$2" >&2
}
