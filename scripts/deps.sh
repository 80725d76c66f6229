#!/usr/bin/env bash
# Checks that the Debian packages given as arguments are installed. As root it
# installs the missing ones; otherwise it prints the apt line and fails.
set -euo pipefail

missing=()
for p in "$@"; do
	# Node.js may come from another source (NodeSource ships npm inside its
	# nodejs package, which conflicts with Debian's npm): a working command
	# is enough.
	case "$p" in
	nodejs) command -v node >/dev/null 2>&1 && continue ;;
	npm) command -v npm >/dev/null 2>&1 && continue ;;
	esac
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages: ${missing[*]}" >&2
	echo "install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

# The mosquitto package may start its own service on port 1883, where the
# embedded broker listens by default. Nothing here depends on it either way;
# tests use free ports and the demo checks the port before starting.
if [[ " ${missing[*]} " == *" mosquitto "* ]] && command -v systemctl >/dev/null 2>&1 &&
	systemctl is-active --quiet mosquitto 2>/dev/null; then
	echo "note: the mosquitto service is running on port 1883; stop it (systemctl disable --now mosquitto)" >&2
	echo "      if Warden's embedded broker should listen there." >&2
fi
