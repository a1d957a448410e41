# Sourced by the example scripts: starts the sandbox host unless one runs, and points this shell at it.
cli="node dist/main/op-dbus.js"
export OP_DBUS_SANDBOX="${OP_DBUS_SANDBOX:-/run/op-dbus-sandbox}"
if ! $cli sandbox env >/dev/null 2>&1; then
  echo "== starting the sandbox host in $OP_DBUS_SANDBOX (private system bus, polkitd, hostnamed, the core)"
  $cli sandbox up >/dev/null
fi
eval "$($cli sandbox env)"
