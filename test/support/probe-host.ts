import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './sandbox.js';

// The probe plugin of the core's tests (test/support/probe-plugin.mjs), installed into a directory
// of OP_DBUS_PLUGIN_PATH as a user installs a plugin: it keeps its "host" in <root>/<name>.json and
// logs each call to <root>/calls.log, so the tests read the host without the console or the core.
// It runs isolated, as nobody: root must be writable by uid 65534.
const PROBE = join(ROOT, 'test/support/probe-plugin.mjs');

/** A probe plugin's host: its state file and call log under root. */
export class ProbeHost {
  constructor(readonly root: string) {}

  /**
   * Installs the probe as plugin `name` under pluginDir, applied after the plugins named in `after`;
   * `permissions` is manifest text ([permissions] tables), `deadline` its [limits] deadline_s.
   */
  install(
    pluginDir: string,
    name: string,
    o: { after?: string[]; root?: string; deadline?: number; permissions?: string } = {},
  ): void {
    const dir = join(pluginDir, name);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    copyFileSync(PROBE, join(dir, 'index.mjs'));
    writeFileSync(
      join(dir, 'plugin.toml'),
      `[plugin]
name = "${name}"
version = "0.1.0"
description = "the tests' probe: its host is a JSON file"
entry = "index.mjs"

[dependencies]
plugins = ${JSON.stringify(o.after ?? [])}

${o.permissions ?? ''}

[limits]
deadline_s = ${o.deadline ?? 30}

# a community plugin runs isolated, as nobody: it may write only here
[isolation]
write = ["${o.root ?? this.root}"]

[config]
root = "${o.root ?? this.root}"
`,
    );
  }

  /** The values plugin `name` keeps on its host. */
  state(name: string): Record<string, string> {
    const f = join(this.root, `${name}.json`);
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Record<string, string>) : {};
  }

  /** Changes the host behind the core's back, as an admin with a shell would. */
  setOutOfBand(name: string, values: Record<string, string>): void {
    writeFileSync(join(this.root, `${name}.json`), JSON.stringify(values));
  }

  /** The plugin calls the core made since the last reset, in order (e.g. `alpha.apply(a)`). */
  calls(): string[] {
    const f = join(this.root, 'calls.log');
    return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [];
  }

  /** The applies the core made since the last reset, in order. */
  applies(): string[] {
    return this.calls().filter((c) => c.includes('.apply('));
  }

  resetCalls(): void {
    rmSync(join(this.root, 'calls.log'), { force: true });
  }
}
