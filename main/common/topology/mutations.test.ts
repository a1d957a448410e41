// Property-based tests (fast-check, fixed seed): damage one file or directory of a real machine's
// sysfs dump at a time (truncate it, inject garbage or NUL bytes, replace its numbers by huge or
// negative ones, delete it, or turn a directory into a symlink cycle) and check that readTopology
// never throws, returns a well-formed topology, and either reads the same as before or names the
// damaged file in a warning.

import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MAX_CPU_ID, parseCpuList } from './cpulist.js';
import { topologyJson, topologyText } from './output.js';
import { readTopology } from './sysfs-reader.js';
import type { Topology } from './topology.js';

const SEED = 6;
const RUNS = 100;

const ARCHIVE = fileURLToPath(new URL('../../../../shared/fixtures/numa-hwloc.tar.gz', import.meta.url));

// A spread of quirks at moderate size: legacy cpumap-only with offline CPUs, hybrid caches,
// memory-less and CPU-less nodes with HMAT initiators, an offline node 0, sparse node ids with NULs.
const MACHINES = [
  '16em64t-4s2c2t-offlines',
  '20em64t-hybrid-1p6c2t+2ca4co1t',
  'fakememinitiators-1np2c+1npp+gi',
  'offline-cpu0-node0',
  'nvidiagpunumanodes',
  '48amd64-4pa2n6c-sparse',
] as const;

// Files the reader uses; most random mutations aim at these, the rest at any file.
const READ_FILES = new Set([
  'online',
  'possible',
  'has_cpu',
  'has_memory',
  'has_normal_memory',
  'cpulist',
  'cpumap',
  'distance',
  'meminfo',
  'physical_package_id',
  'die_id',
  'cluster_id',
  'core_id',
  'core_cpus',
  'core_cpus_list',
  'thread_siblings',
  'thread_siblings_list',
  'package_cpus',
  'package_cpus_list',
  'core_siblings',
  'core_siblings_list',
  'level',
  'type',
  'size',
  'shared_cpu_list',
  'shared_cpu_map',
]);

// Files whose absence is normal on some kernel and changes the reading without being an error.
const OPTIONAL_FILES = new Set([
  'online',
  'possible',
  'has_cpu',
  'has_memory',
  'has_normal_memory',
  'die_id',
  'cluster_id',
]);

/** The other file of a list/mask pair (cpulist and cpumap, thread_siblings_list and thread_siblings...). */
function twinOf(path: string): string | null {
  const name = basename(path);
  const directory = path.slice(0, path.length - name.length);
  const twins: Record<string, string> = {
    cpulist: 'cpumap',
    cpumap: 'cpulist',
    shared_cpu_list: 'shared_cpu_map',
    shared_cpu_map: 'shared_cpu_list',
  };
  const twin = twins[name] ?? (name.endsWith('_list') ? name.slice(0, -'_list'.length) : `${name}_list`);
  return READ_FILES.has(twin) ? `${directory}${twin}` : null;
}

// Directories the reader enters (relative to devices/system).
const ENTERED_DIRECTORY =
  /^(node|cpu|node\/node\d+|node\/node\d+\/access1(\/initiators)?|cpu\/cpu\d+|cpu\/cpu\d+\/(topology|cache)|cpu\/cpu\d+\/cache\/index\d+)$/u;

interface Machine {
  name: string;
  root: string;
  baseline: Topology;
  files: string[];
  readFiles: string[];
  directories: string[];
}

let scratch: string;
const machines: Machine[] = [];

/** Regular files and directories under a directory, relative to `root`, without following symlinks. */
function walk(root: string, relative: string, files: string[], directories: string[]): void {
  for (const entry of readdirSync(join(root, relative), { withFileTypes: true })) {
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory()) {
      directories.push(path);
      walk(root, path, files, directories);
    } else if (entry.isFile()) {
      files.push(path);
    }
  }
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'topology-mutations-'));
  execFileSync('tar', ['xzf', ARCHIVE, '-C', scratch, ...MACHINES.map((name) => `numa/${name}`)]);
  for (const name of MACHINES) {
    const root = join(scratch, 'numa', name, 'sys');
    const files: string[] = [];
    const directories: string[] = ['devices/system/node', 'devices/system/cpu'];
    walk(root, 'devices/system', files, directories);
    machines.push({
      name,
      root,
      baseline: readTopology(root),
      files,
      readFiles: files.filter((file) => READ_FILES.has(basename(file))),
      directories: directories.filter((path) => ENTERED_DIRECTORY.test(path.slice('devices/system/'.length))),
    });
  }
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * Whether some warning names `path`: as the file it is about (also within a merged "cpu{0-3,7}/..."
 * warning), or by its name in a warning about its sibling ("thread_siblings: missing (as are core_cpus, ...)").
 */
function warningNames(warnings: string[], path: string): boolean {
  const directory = path.slice(0, path.lastIndexOf('/'));
  const name = basename(path);
  return warnings.some((warning) => {
    const separator = warning.indexOf(': ');
    const named = warning.slice(0, separator);
    const mentions = new RegExp(`(^|[ ,(])${name}([ ,)]|$)`, 'u').test(warning.slice(separator + 2));
    const merged = /^(.*\/cpu)\{([^}]*)\}(.*)$/u.exec(named);
    const paths =
      merged === null
        ? [named]
        : parseCpuList(merged[2] ?? '').map((cpu) => `${merged[1]}${cpu}${merged[3]}`);
    return paths.some(
      (candidate) =>
        candidate === path ||
        (mentions &&
          candidate.startsWith(`${directory}/`) &&
          !candidate.slice(directory.length + 1).includes('/')),
    );
  });
}

function sameReading(a: Topology, b: Topology): boolean {
  return isDeepStrictEqual({ ...a, warnings: [] }, { ...b, warnings: [] });
}

/** What must hold of any topology, however damaged the tree it came from. */
function expectWellFormed(topology: Topology): void {
  const isIdList = (ids: number[]) =>
    ids.every(
      (id, index) =>
        Number.isInteger(id) && id >= 0 && id <= MAX_CPU_ID && (index === 0 || id > (ids[index - 1] ?? -1)),
    );
  const online = new Set(topology.onlineCpus);
  expect(isIdList(topology.onlineCpus)).toBe(true);
  for (const node of topology.nodes) {
    expect(isIdList(node.cpus) && isIdList(node.listedCpus)).toBe(true);
    expect(node.memoryKb === null || Number.isSafeInteger(node.memoryKb)).toBe(true);
  }
  // Packages and cores partition the online CPUs; caches only hold online CPUs.
  for (const groups of [topology.packages, topology.cores]) {
    expect(groups.flatMap((group) => group.cpus).toSorted((a, b) => a - b)).toEqual(topology.onlineCpus);
  }
  for (const cache of topology.caches) expect(cache.cpus.every((cpu) => online.has(cpu))).toBe(true);
  const json = topologyJson(topology);
  expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  expect(typeof topologyText(topology)).toBe('string');
}

interface Tally {
  warned: number;
  unchanged: number;
  optionalGone: number;
  twinRead: number;
}

/** Run a property with the fixed seed, say how many runs it made and what the mutations led to. */
function check(name: string, property: fc.IProperty<[Target, Mutation]>, tally: Tally): void {
  fc.assert(property, { seed: SEED, numRuns: RUNS });
  console.log(
    `topology mutation property "${name}": ${RUNS} runs, seed ${SEED}; ` +
      `${tally.warned} warned about the file, ${tally.unchanged} read unchanged, ${tally.optionalGone} lost an optional file, ` +
      `${tally.twinRead} read the file's list/mask twin instead`,
  );
}

interface Target {
  machine: number;
  pick: number;
  anyFile: boolean;
}

const targets: fc.Arbitrary<Target> = fc.record({
  machine: fc.nat({ max: MACHINES.length - 1 }),
  pick: fc.nat(),
  // One mutation in five hits any file at all (most of which the reader never opens).
  anyFile: fc.integer({ min: 0, max: 4 }).map((roll) => roll === 0),
});

type Mutation =
  | { kind: 'truncate'; keep: number }
  | { kind: 'garbage'; at: number; junk: string }
  | { kind: 'nul'; at: number; count: number }
  | { kind: 'numbers'; replacement: string }
  | { kind: 'delete' };

const junk = fc.string({
  minLength: 1,
  maxLength: 12,
  unit: fc.constantFrom('x', 'Z', '#', '!', '%', '?', '~', '\u00e9', '\u4e00', '\ufffd', '\u0001', '"', '\\'),
});

function pickFile(target: Target): { machine: Machine; path: string } {
  const machine = machines[target.machine] as Machine;
  const pool = target.anyFile ? machine.files : machine.readFiles;
  return { machine, path: pool[target.pick % pool.length] ?? '' };
}

function mutate(text: Buffer, mutation: Mutation): Buffer | null {
  const content = text.toString('latin1');
  switch (mutation.kind) {
    case 'truncate':
      return text.subarray(0, mutation.keep % (text.length + 1));
    case 'garbage': {
      const at = mutation.at % (content.length + 1);
      return Buffer.concat([text.subarray(0, at), Buffer.from(mutation.junk, 'utf8'), text.subarray(at)]);
    }
    case 'nul': {
      const at = mutation.at % (content.length + 1);
      return Buffer.concat([text.subarray(0, at), Buffer.alloc(mutation.count), text.subarray(at)]);
    }
    case 'numbers':
      return Buffer.from(content.replace(/\d+/gu, mutation.replacement), 'latin1');
    case 'delete':
      return null;
  }
}

/** Apply a mutation to one file, read the topology, restore the file, and check the outcome. */
function readMutated(target: Target, mutation: Mutation, tally: Tally, mustExplain: boolean): void {
  const { machine, path } = pickFile(target);
  const absolute = join(machine.root, path);
  const original = readFileSync(absolute);
  const replacement = mutate(original, mutation);
  // Replace rather than overwrite: unpacked fixture files may be read-only.
  unlinkSync(absolute);
  if (replacement !== null) writeFileSync(absolute, replacement);
  let topology: Topology;
  try {
    topology = readTopology(machine.root);
  } finally {
    rmSync(absolute, { force: true });
    writeFileSync(absolute, original);
  }
  expectWellFormed(topology);
  if (warningNames(topology.warnings, path)) tally.warned++;
  else if (sameReading(topology, machine.baseline)) tally.unchanged++;
  else if (mutation.kind === 'delete' && OPTIONAL_FILES.has(basename(path))) tally.optionalGone++;
  else if (mutation.kind === 'delete' && existsSync(join(machine.root, twinOf(path) ?? '\0'))) {
    // The other format of the same set is read instead; they may differ on offline CPUs (edited dumps).
    tally.twinRead++;
  } else if (mustExplain) {
    expect.fail(
      `${machine.name}: ${mutation.kind} of ${path} changed the topology without a warning naming it`,
    );
  }
}

describe(`readTopology on damaged sysfs dumps (fast-check, seed ${SEED}, ${RUNS} runs per property)`, () => {
  it(`survives truncated files (${RUNS} runs)`, () => {
    const tally: Tally = { warned: 0, unchanged: 0, optionalGone: 0, twinRead: 0 };
    const truncations = fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() });
    // A prefix can be valid ("0-31" cut to "0-3"), so only well-formedness is required here.
    check(
      'truncate',
      fc.property(targets, truncations, (target, mutation) => readMutated(target, mutation, tally, false)),
      tally,
    );
  });

  it(`warns about garbage injected into a file (${RUNS} runs)`, () => {
    const tally: Tally = { warned: 0, unchanged: 0, optionalGone: 0, twinRead: 0 };
    const garbage = fc.record({ kind: fc.constant('garbage' as const), at: fc.nat(), junk });
    check(
      'garbage',
      fc.property(targets, garbage, (target, mutation) => readMutated(target, mutation, tally, true)),
      tally,
    );
    expect(tally.warned).toBeGreaterThan(RUNS / 2);
  });

  it(`warns about NUL bytes inside a value (${RUNS} runs)`, () => {
    const tally: Tally = { warned: 0, unchanged: 0, optionalGone: 0, twinRead: 0 };
    const nuls = fc.record({
      kind: fc.constant('nul' as const),
      at: fc.nat(),
      count: fc.integer({ min: 1, max: 3 }),
    });
    check(
      'nul',
      fc.property(targets, nuls, (target, mutation) => readMutated(target, mutation, tally, true)),
      tally,
    );
    expect(tally.warned).toBeGreaterThan(0);
  });

  it(`warns about numbers replaced by huge or negative ones (${RUNS} runs)`, () => {
    const tally: Tally = { warned: 0, unchanged: 0, optionalGone: 0, twinRead: 0 };
    const numbers = fc.record({
      kind: fc.constant('numbers' as const),
      // Only values no file can hold (2^32 kB of MemTotal, say, is a real 4 TiB node); -1 is left out:
      // the kernel itself writes it for "unknown" ids.
      replacement: fc.constantFrom(
        '18446744073709551616',
        '99999999999999999999999',
        '-2',
        '-4096',
        '-99999999999',
      ),
    });
    check(
      'numbers',
      fc.property(targets, numbers, (target, mutation) => readMutated(target, mutation, tally, true)),
      tally,
    );
    expect(tally.warned).toBeGreaterThan(RUNS / 2);
  });

  it(`warns about deleted files (${RUNS} runs)`, () => {
    const tally: Tally = { warned: 0, unchanged: 0, optionalGone: 0, twinRead: 0 };
    const deletion = fc.constant({ kind: 'delete' as const });
    check(
      'delete',
      fc.property(targets, deletion, (target, mutation) => readMutated(target, mutation, tally, true)),
      tally,
    );
    expect(tally.warned).toBeGreaterThan(0);
  });

  it(`does not follow symlink cycles, and names them (${RUNS} runs)`, () => {
    let warned = 0;
    let unentered = 0;
    const cycles = fc.record({
      machine: fc.nat({ max: MACHINES.length - 1 }),
      pick: fc.nat(),
      // Replace an existing directory by the link, or add the link as a new entry the reader would enter.
      how: fc.constantFrom('replace', 'add'),
      // '.' is the link's own directory, '..' and '../..' its ancestors, the own name a link to itself.
      target: fc.constantFrom('.', '..', '../..', 'self'),
    });
    fc.assert(
      fc.property(cycles, ({ machine: index, pick, how, target }) => {
        const machine = machines[index] as Machine;
        // A new entry goes where the reader enters whatever matches a name pattern.
        const newEntry: Record<string, string> = { node: 'node999', cpu: 'cpu9999', cache: 'index99' };
        const pool =
          how === 'replace'
            ? machine.directories
            : machine.directories.filter((path) => basename(path) in newEntry);
        const directory = pool[pick % pool.length] ?? '';
        const link = how === 'replace' ? directory : `${directory}/${newEntry[basename(directory)]}`;
        const absolute = join(machine.root, link);
        const moved = join(scratch, `moved-${index}-${pick}`);
        const existed = (() => {
          try {
            lstatSync(absolute);
            return true;
          } catch {
            return false;
          }
        })();
        if (existed) renameSync(absolute, moved);
        symlinkSync(target === 'self' ? basename(link) : target, absolute);
        let topology: Topology;
        try {
          topology = readTopology(machine.root);
        } finally {
          unlinkSync(absolute);
          if (existed) renameSync(moved, absolute);
        }
        expectWellFormed(topology);
        if (warningNames(topology.warnings, link)) warned++;
        else if (sameReading(topology, machine.baseline))
          unentered++; // e.g. the cache/ of an offline CPU
        else
          expect.fail(
            `${machine.name}: symlink ${link} -> ${target} changed the topology without a warning naming it`,
          );
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(
      `topology mutation property "symlink cycle": ${RUNS} runs, seed ${SEED}; ${warned} warned about the link, ${unentered} not entered`,
    );
    expect(warned).toBeGreaterThan(RUNS / 2);
  });

  it('leaves the dumps as they were (every mutation was undone)', () => {
    for (const machine of machines) expect(readTopology(machine.root)).toEqual(machine.baseline);
  });
});
