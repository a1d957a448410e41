// Builds the core's Debian package (the CLI, the core, its unit, its D-Bus policy and activation
// file, its polkit actions) from the single-executable package, with dpkg-deb: what a host installs
// with `apt install ./op-dbus_<version>_<arch>.deb`. The console (Electron) is packaged apart, by
// electron-builder (build/electron-builder.json), where an Electron dist is available.
// Usage: node build/package/deb.mjs [packageDir] [outFile]   (after `npm run package`)
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = resolve(process.argv[2] ?? join(root, 'dist/package/op-dbus'));
const { version, description, license } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
const out = resolve(process.argv[3] ?? join(root, `dist/package/op-dbus_${version}_${arch}.deb`));
if (!existsSync(join(pkg, 'op-dbus')))
  throw new Error(`no packaged core at ${pkg}: run npm run package first`);

const stage = join(dirname(out), 'deb-root');
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true, mode: 0o755 });
execFileSync(join(root, 'build/install.sh'), [pkg], {
  env: { ...process.env, DESTDIR: stage },
  stdio: 'pipe',
});
mkdirSync(join(stage, 'usr/share/doc/op-dbus'), { recursive: true });
writeFileSync(
  join(stage, 'usr/share/doc/op-dbus/copyright'),
  `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: operation-dbus\n\nFiles: *\nLicense: ${license}\n`,
);

const installedKiB = Number(
  execFileSync('du', ['-sk', '--exclude=DEBIAN', stage], { encoding: 'utf8' }).split('\t')[0],
);
mkdirSync(join(stage, 'DEBIAN'), { mode: 0o755 });
writeFileSync(
  join(stage, 'DEBIAN/control'),
  [
    'Package: op-dbus',
    `Version: ${version}`,
    `Architecture: ${arch}`,
    'Maintainer: operation-dbus developers <op-dbus@localhost>',
    `Installed-Size: ${installedKiB}`,
    // the core serves on the system bus and asks polkit on every call
    'Depends: dbus, polkitd',
    'Recommends: systemd',
    'Section: admin',
    'Priority: optional',
    `Description: ${description.split('.')[0]}`,
    ' The operation-dbus core (org.opdbus.Manager1) and its CLI, op-dbus: desired state of a Linux',
    ' host from one JSON document, planned, approved, applied through polkit, verified and rolled',
    ' back on failure, with a tamper-evident audit log.',
    '',
  ].join('\n'),
);
// after install: have a running bus read the new policy; the unit is the admin's to enable
writeFileSync(
  join(stage, 'DEBIAN/postinst'),
  `#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  systemctl reload dbus || true
fi
exit 0
`,
);
chmodSync(join(stage, 'DEBIAN/postinst'), 0o755);
// DEB_COMPRESSION: dpkg-deb's -Z (xz by default, as Debian's own; the tests use none, which is 20x quicker)
const compression = process.env.DEB_COMPRESSION ?? 'xz';
execFileSync('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '--build', stage, out], {
  stdio: 'pipe',
});
rmSync(stage, { recursive: true, force: true });
console.log(out);
