#!/bin/sh
# The main job until the console lands: start the sandbox host, plan and apply an example state,
# print the plan, the result and the audit log. The sandbox keeps running afterwards.
set -eu
cd "$(dirname "$0")/.."
cli="node dist/main/cli/op-dbus.js"
export OP_DBUS_SANDBOX="${OP_DBUS_SANDBOX:-/run/op-dbus-sandbox}"
if ! $cli sandbox env >/dev/null 2>&1; then
  echo "== starting the sandbox host in $OP_DBUS_SANDBOX (private system bus, polkitd, hostnamed, the core)"
  $cli sandbox up >/dev/null
fi
eval "$($cli sandbox env)"
echo "== desired state: examples/hostname.jsonc"
cat examples/hostname.jsonc
echo
echo "== plan (exit code 2 = changes)"
$cli plan examples/hostname.jsonc || [ $? -eq 2 ]
echo
echo "== apply"
$cli apply examples/hostname.jsonc --yes
echo
echo "== read back independently: $OP_DBUS_SANDBOX/etc-upper/machine-info (hostnamed's overlay on /etc)"
cat "$OP_DBUS_SANDBOX/etc-upper/machine-info"
echo
echo "== plan again: no changes (exit code 0)"
$cli plan examples/hostname.jsonc
echo
echo "== audit log"
$cli audit list
$cli audit verify
echo
echo "The sandbox is still running. Use it with:  eval \"\$($cli sandbox env)\""
echo "Stop it with:  $cli sandbox down"
