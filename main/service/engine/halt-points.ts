import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpError } from '../../common/contract/index.js';

/**
 * Step boundaries where a test can halt the core to kill it there (fault injection,
 * OP_DBUS_TEST_HALT_AT). `path` says whether an apply that succeeds reaches it or one that fails and
 * rolls back; `perPlugin` points are reached once for each plugin (`name#2` halts at the second).
 * The crash test iterates over this list, so a new point is tested without editing the test.
 */
export const HALT_POINTS = [
  { name: 'after-journal', path: 'apply', perPlugin: true },
  { name: 'after-call', path: 'apply', perPlugin: true },
  { name: 'after-irreversible', path: 'apply', perPlugin: true },
  { name: 'before-verify', path: 'apply', perPlugin: true },
  { name: 'after-verify', path: 'apply', perPlugin: false },
  { name: 'after-last-applied', path: 'apply', perPlugin: false },
  { name: 'after-audit', path: 'apply', perPlugin: false },
  { name: 'after-end', path: 'apply', perPlugin: false },
  { name: 'after-rollback-call', path: 'rollback', perPlugin: true },
  { name: 'after-rollback-audit', path: 'rollback', perPlugin: true },
  { name: 'after-failed-audit', path: 'rollback', perPlugin: false },
  { name: 'after-rollback-end', path: 'rollback', perPlugin: false },
] as const;
export type HaltPointName = (typeof HALT_POINTS)[number]['name'];

/** Where to halt: a point, and which time it is reached (1 = the first). */
export interface HaltSpec {
  point: HaltPointName;
  occurrence: number;
}

/** Reads OP_DBUS_TEST_HALT_AT (`point` or `point#n`), refusing unknown names. */
export function haltSpecFromEnv(value: string | undefined): HaltSpec | undefined {
  if (value === undefined || value === '') return undefined;
  const [name, n] = value.split('#');
  const occurrence = n === undefined ? 1 : Number(n);
  const known = HALT_POINTS.find((p) => p.name === name);
  if (known === undefined || !Number.isInteger(occurrence) || occurrence < 1) {
    throw new OpError(
      'InvalidArgument',
      `OP_DBUS_TEST_HALT_AT must be one of ${HALT_POINTS.map((p) => p.name).join(', ')} (optionally #n), not "${value}"`,
    );
  }
  return { point: known.name, occurrence };
}

/** Counts how often each point is reached and halts forever at the chosen one, after leaving a marker. */
export class HaltSwitch {
  private readonly reached = new Map<HaltPointName, number>();

  constructor(
    private readonly spec: HaltSpec | undefined,
    private readonly dataDir: string,
  ) {}

  async at(point: HaltPointName): Promise<void> {
    if (this.spec?.point !== point) return;
    const n = (this.reached.get(point) ?? 0) + 1;
    this.reached.set(point, n);
    if (n !== this.spec.occurrence) return;
    // Written under another name and renamed, so whoever waits for the marker never reads it half-written.
    const marker = join(this.dataDir, 'halted-at');
    writeFileSync(`${marker}.tmp`, `${point}#${n}`);
    renameSync(`${marker}.tmp`, marker);
    await new Promise<never>(() => undefined);
  }
}
