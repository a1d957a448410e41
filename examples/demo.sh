#!/bin/sh
# The main job until the console lands: start the sandbox host, plan and apply an example state,
# print the plan, the result and the audit log. The sandbox keeps running afterwards.
set -eu
cd "$(dirname "$0")/.."
. examples/sandbox.sh
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
