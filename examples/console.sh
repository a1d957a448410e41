#!/bin/sh
# The main job: the console on the sandbox host. Starts the sandbox (a private system bus with
# polkitd, hostnamed and the core) unless one runs, then opens the console in Electron where its
# binary exists, otherwise `op-dbus serve` prints a one-time URL for a browser on this machine.
set -eu
cd "$(dirname "$0")/.."
. examples/sandbox.sh
echo "== the sandbox: eval \"\$($cli sandbox env)\" gives a shell the same bus; $cli sandbox down stops it"
echo "== an example document to open in the console: examples/hostname.jsonc"
if node -e "require('electron')" >/dev/null 2>&1 && [ -n "${DISPLAY:-}" ]; then
  exec npm run --silent electron
fi
echo "== no Electron binary (or no display) here: serving the console to a browser instead"
exec $cli serve
