#!/bin/sh
# Installs the packaged core (npm run package) as a system service. DESTDIR stages into a directory
# (for packagers and tests); without it, run as root on the target host, then:
#   systemctl daemon-reload && systemctl reload dbus && systemctl enable --now op-dbus
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
pkg=${1:-$here/dist/package/op-dbus}
dest=${DESTDIR:-}
[ -x "$pkg/op-dbus" ] || { echo "no packaged core at $pkg: run npm run package first" >&2; exit 1; }
install -d -m 0755 "$dest/usr/lib/op-dbus" "$dest/usr/share/dbus-1/system.d" \
  "$dest/usr/share/dbus-1/system-services" "$dest/usr/share/polkit-1/actions" "$dest/usr/lib/systemd/system"
install -m 0755 "$pkg/op-dbus" "$dest/usr/lib/op-dbus/op-dbus"
cp -R "$pkg/node_modules" "$dest/usr/lib/op-dbus/"
# the audit log's worker threads and our addon, where the binary looks for them (beside itself)
for f in package.json append-worker.js verify-log-worker.js verify-worker.js; do
  install -m 0644 "$pkg/$f" "$dest/usr/lib/op-dbus/$f"
done
# the built-in plugins (code and manifests), where the binary looks for them: root-owned, not writable by others
cp -R "$pkg/plugins" "$dest/usr/lib/op-dbus/"
chmod -R go-w "$dest/usr/lib/op-dbus/plugins"
if [ -f "$pkg/native/build/Release/opdbus_native.node" ]; then
  install -d -m 0755 "$dest/usr/lib/op-dbus/native/build/Release"
  install -m 0755 "$pkg/native/build/Release/opdbus_native.node" "$dest/usr/lib/op-dbus/native/build/Release/"
fi
install -m 0755 "$here/build/pkexec/op-dbus-core" "$dest/usr/lib/op-dbus/op-dbus-core"
install -m 0644 "$here/build/dbus/org.opdbus.Manager1.conf" "$dest/usr/share/dbus-1/system.d/"
install -m 0644 "$here/build/dbus/org.opdbus.Manager1.service" "$dest/usr/share/dbus-1/system-services/"
install -m 0644 "$here/build/polkit/org.opdbus.policy" "$dest/usr/share/polkit-1/actions/"
install -m 0644 "$here/build/systemd/op-dbus.service" "$dest/usr/lib/systemd/system/"
echo "installed under ${dest:-/}"
