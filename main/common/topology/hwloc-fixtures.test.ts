// readTopology on the 13 real machines of numa-hwloc.tar.gz (hwloc's Linux test dumps), compared with
// what hwloc's lstopo printed for the same dumps (expected.output, `lstopo -v`, or expected.xml) on
// packages, NUMA nodes (CPUs, memory, distances), cores, PUs and caches, and with the fixture's INDEX.md
// on each node's raw cpulist, MemTotal and distance row. Where hwloc uses information the dump does
// not hold, or applies a policy of its own, the difference is listed per machine with its reason.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readTopology } from './sysfs-reader.js';
import { nodeLocalCpus } from './topology.js';
import type { CacheType, Topology } from './topology.js';

const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));

let unpacked: string;

beforeAll(() => {
  unpacked = mkdtempSync(join(tmpdir(), 'topology-hwloc-'));
  execFileSync('tar', ['xzf', join(FIXTURES, 'numa-hwloc.tar.gz'), '-C', unpacked]);
});

afterAll(() => {
  rmSync(unpacked, { recursive: true, force: true });
});

function machineDir(name: string): string {
  return join(unpacked, 'numa', name);
}

// ---------------------------------------------------------------------------------------------------
// hwloc's expected output, reduced to what sysfs can tell.

interface ExpectedTopology {
  pus: number[];
  packages: Array<{ os: number | null; pus: number[] }>;
  cores: Array<{ os: number | null; pus: number[] }>;
  caches: Array<{ level: number; type: CacheType; size: string; pus: number[] }>;
  numaNodes: Array<{ os: number; pus: number[]; memory: string; memoryBytes: number | null }>;
  /** NUMA latency between two nodes by OS index, "a b" -> value. */
  latency: Map<string, number>;
  /** Object counts hwloc printed in its summary (depth lines), to check this parser against. */
  summaryCounts: Map<string, number>;
}

interface TreeObject {
  type: string;
  logical: number | null;
  os: number | null;
  attributes: Map<string, string>;
  parent: TreeObject | null;
  children: TreeObject[];
}

/** hwloc's human size: KiB below 10 MiB, MiB below 10 GiB, GiB above, rounded to the nearest unit. */
function hwlocSize(bytes: number): string {
  const units: Array<[string, number]> = [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ];
  for (const [unit, scale] of units) {
    if (bytes >= 10 * scale || unit === 'KiB') return `${Math.round(bytes / scale)}${unit}`;
  }
  return `${bytes}B`;
}

function sorted(ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => a - b);
}

function descendantPus(object: TreeObject): number[] {
  if (object.type === 'PU') return object.os === null ? [] : [object.os];
  return object.children.flatMap(descendantPus);
}

/** CPUs a memory object is attached to: those of its nearest ancestor on the CPU side. */
function localityPus(object: TreeObject): number[] {
  let ancestor = object.parent;
  while (ancestor !== null && (ancestor.type === 'NUMANode' || ancestor.type === 'MemCache'))
    ancestor = ancestor.parent;
  return ancestor === null ? [] : sorted(descendantPus(ancestor));
}

function cacheKind(
  type: string,
  cacheTypeCode?: string,
  depth?: string,
): { level: number; type: CacheType } | null {
  const match = /^L(\d)([di]?)Cache$/u.exec(type);
  if (match === null) return null;
  const level = depth === undefined ? Number(match[1]) : Number(depth);
  if (cacheTypeCode !== undefined) {
    const byCode: Record<string, CacheType> = { '0': 'unified', '1': 'data', '2': 'instruction' };
    const kind = byCode[cacheTypeCode];
    return kind === undefined ? null : { level, type: kind };
  }
  const suffix: Record<string, CacheType> = { '': 'unified', d: 'data', i: 'instruction' };
  return { level, type: suffix[match[2] ?? ''] ?? 'unified' };
}

function walk(root: TreeObject, visit: (object: TreeObject) => void): void {
  visit(root);
  for (const child of root.children) walk(child, visit);
}

/** Collect packages, cores, PUs, caches and NUMA nodes from a parsed hwloc object tree. */
function reduceTree(root: TreeObject, sizeOf: (object: TreeObject) => string | undefined, xml: boolean) {
  const expected: Omit<ExpectedTopology, 'latency' | 'summaryCounts'> = {
    pus: [],
    packages: [],
    cores: [],
    caches: [],
    numaNodes: [],
  };
  walk(root, (object) => {
    const pus = sorted(descendantPus(object));
    if (object.type === 'PU' && object.os !== null) expected.pus.push(object.os);
    if (object.type === 'Package') expected.packages.push({ os: object.os, pus });
    if (object.type === 'Core') expected.cores.push({ os: object.os, pus });
    if (object.type === 'NUMANode' && object.os !== null) {
      const bytes = object.attributes.get('local_memory');
      expected.numaNodes.push({
        os: object.os,
        pus: localityPus(object),
        memory: sizeOf(object) ?? '?',
        memoryBytes: bytes === undefined ? null : Number(bytes),
      });
    }
    const kind = xml
      ? cacheKind(object.type, object.attributes.get('cache_type'), object.attributes.get('depth'))
      : cacheKind(object.type);
    if (kind !== null) expected.caches.push({ ...kind, size: sizeOf(object) ?? '?', pus });
  });
  expected.pus = sorted(expected.pus);
  return expected;
}

/** Parse `lstopo -v` console output (hwloc's `.console` test files). */
function parseLstopoConsole(text: string): ExpectedTopology {
  const lines = text.split('\n');
  const treeEnd = lines.findIndex((line) => line.startsWith('depth 0:'));
  const stack: Array<{ indent: number; object: TreeObject }> = [];
  let root: TreeObject | null = null;
  for (const line of lines.slice(0, treeEnd)) {
    const match = /^( *)([^ ]+)(.*)$/u.exec(line);
    if (match === null || line.trim() === '') continue;
    const [, indent = '', word = '', rest = ''] = match;
    const logical = /^ L#(\d+)/u.exec(rest);
    const os = /\(P#(\d+)/u.exec(rest);
    const attributes = new Map<string, string>();
    for (const [, key = '', value = ''] of rest.matchAll(/ \(?(local|size)=(\d+[KMGT]iB)/gu))
      attributes.set(key, value);
    const object: TreeObject = {
      type: word.replace(/[([].*$/u, ''),
      logical: logical === null ? null : Number(logical[1]),
      os: os === null ? null : Number(os[1]),
      attributes,
      parent: null,
      children: [],
    };
    while (stack.length > 0 && (stack.at(-1)?.indent ?? 0) >= indent.length) stack.pop();
    const parent = stack.at(-1)?.object ?? null;
    object.parent = parent;
    if (parent === null) root = object;
    else parent.children.push(object);
    stack.push({ indent: indent.length, object });
  }
  if (root === null) throw new Error('no object tree in expected output');
  const reduced = reduceTree(
    root,
    (object) => object.attributes.get(object.type === 'NUMANode' ? 'local' : 'size'),
    false,
  );

  const summaryCounts = new Map<string, number>();
  for (const line of lines.slice(treeEnd)) {
    const count = /^ *(?:Special )?depth -?\d+: +(\d+) (\S+) \(type/u.exec(line);
    if (count !== null) summaryCounts.set(count[2] ?? '', Number(count[1]));
  }

  // "Relative latency matrix ... by logical indexes:", then a header of logical indexes and one row each.
  const logicalToOs = new Map<number, number>();
  walk(root, (object) => {
    if (object.type === 'NUMANode' && object.logical !== null && object.os !== null)
      logicalToOs.set(object.logical, object.os);
  });
  const latency = new Map<string, number>();
  const header = lines.findIndex((line) =>
    /^Relative latency matrix \(name NUMALatency\b.*by logical indexes:$/u.test(line),
  );
  if (header >= 0) {
    const columns = (lines[header + 1] ?? '').trim().split(/\s+/u).slice(1).map(Number);
    for (const row of lines.slice(header + 2, header + 2 + columns.length)) {
      const [rowIndex = Number.NaN, ...values] = row.trim().split(/\s+/u).map(Number);
      values.forEach((value, column) => {
        latency.set(`${logicalToOs.get(rowIndex)} ${logicalToOs.get(columns[column] ?? -1)}`, value);
      });
    }
  }
  return { ...reduced, latency, summaryCounts };
}

/** Decode an hwloc bitmap string ("0x000000ff,0xffffffff", most significant word first). */
function hwlocBitmap(text: string): number[] {
  const ids: number[] = [];
  text
    .split(',')
    .reverse()
    .forEach((word, index) => {
      const bits = BigInt(word === '' ? '0' : word);
      for (let bit = 0; bit < 32; bit++) if ((bits >> BigInt(bit)) & 1n) ids.push(index * 32 + bit);
    });
  return ids;
}

/** Parse an hwloc v2 XML export (hwloc's `.xml` test files). */
function parseHwlocXml(text: string): ExpectedTopology {
  let root: TreeObject | null = null;
  const stack: TreeObject[] = [];
  const cpusets = new Map<TreeObject, number[]>();
  for (const [tag, attributeText = '', selfClosing] of text.matchAll(
    /<object\s([^>]*?)(\/?)>|<\/object>/gu,
  )) {
    if (tag === '</object>') {
      stack.pop();
      continue;
    }
    const attributes = new Map<string, string>();
    for (const [, key = '', value = ''] of attributeText.matchAll(/(\w+)="([^"]*)"/gu))
      attributes.set(key, value);
    const os = attributes.get('os_index');
    const object: TreeObject = {
      type: attributes.get('type') ?? '?',
      logical: null,
      os: os === undefined ? null : Number(os),
      attributes,
      parent: stack.at(-1) ?? null,
      children: [],
    };
    cpusets.set(object, hwlocBitmap(attributes.get('cpuset') ?? '0x0'));
    if (object.parent === null) root = object;
    else object.parent.children.push(object);
    if (selfClosing !== '/') stack.push(object);
  }
  if (root === null) throw new Error('no object tree in expected XML');
  const reduced = reduceTree(
    root,
    (object) => {
      const bytes = object.attributes.get(object.type === 'NUMANode' ? 'local_memory' : 'cache_size');
      return bytes === undefined ? undefined : hwlocSize(Number(bytes));
    },
    true,
  );
  // In XML a NUMA node carries its cpuset (= its locality) itself.
  walk(root, (object) => {
    const node = reduced.numaNodes.find((entry) => object.type === 'NUMANode' && entry.os === object.os);
    if (node !== undefined) node.pus = cpusets.get(object) ?? [];
  });

  const latency = new Map<string, number>();
  const distances = /<distances2 [^>]*name="NUMALatency"[^>]*>([\s\S]*?)<\/distances2>/u.exec(text);
  if (distances !== null) {
    const body = distances[1] ?? '';
    const indexes = (/<indexes[^>]*>([^<]*)</u.exec(body)?.[1] ?? '').trim().split(/\s+/u).map(Number);
    const values = [...body.matchAll(/<u64values[^>]*>([^<]*)</gu)].flatMap(([, list = '']) =>
      list.trim().split(/\s+/u).map(Number),
    );
    indexes.forEach((from, row) =>
      indexes.forEach((to, column) =>
        latency.set(`${from} ${to}`, values[row * indexes.length + column] ?? Number.NaN),
      ),
    );
  }
  const summaryCounts = new Map<string, number>();
  for (const [, type = ''] of text.matchAll(/<object type="(\w+)"/gu))
    summaryCounts.set(type, (summaryCounts.get(type) ?? 0) + 1);
  return { ...reduced, latency, summaryCounts };
}

// ---------------------------------------------------------------------------------------------------
// The fixture's INDEX.md: per node, the raw cpulist/cpumap, MemTotal and distance row.

interface IndexNode {
  id: number;
  cpus: number[];
  memTotalKb: number;
  distanceRow: number[];
}

function parseIndexList(text: string): number[] {
  if (text === '(none)') return [];
  return text.split(',').flatMap((part) => {
    const [low = 0, high = low] = part.split('-').map(Number);
    return Array.from({ length: high - low + 1 }, (_, offset) => low + offset);
  });
}

function parseIndexSection(indexText: string, machine: string): IndexNode[] {
  const start = indexText.indexOf(`### ${machine}\n`);
  const end = indexText.indexOf('\n### ', start + 1);
  const section = indexText.slice(start, end < 0 ? undefined : end);
  const nodes = new Map<number, IndexNode>();
  for (const [, id = '', cpus = '', kb = ''] of section.matchAll(/^\| (\d+) \| ([^|]+) \| (\d+) \|$/gmu)) {
    nodes.set(Number(id), {
      id: Number(id),
      cpus: parseIndexList(cpus.trim()),
      memTotalKb: Number(kb),
      distanceRow: [],
    });
  }
  const matrix = /```\nnode[^\n]*\n([\s\S]*?)```/u.exec(section)?.[1] ?? '';
  for (const row of matrix.trim().split('\n')) {
    const [id = -1, ...values] = row.trim().split(/\s+/u).map(Number);
    const node = nodes.get(id);
    if (node !== undefined) node.distanceRow = values;
  }
  return [...nodes.values()];
}

// ---------------------------------------------------------------------------------------------------
// The comparison.

interface KnownDifferences {
  /** Nodes hwloc leaves out of its topology, with the reason. */
  hiddenByHwloc?: { nodes: number[]; reason: string };
  /** CPU-less nodes hwloc places from information outside devices/system (PCI locality). */
  localityOutsideSysfs?: { nodes: number[]; reason: string };
}

interface Machine {
  name: string;
  expectedFile: 'expected.output' | 'expected.xml' | 'expected.kept.output';
  known: KnownDifferences;
}

const MEMORYLESS =
  'hwloc drops NUMA nodes without memory (MemTotal 0): nodes 0-3 have CPUs only, node 4 is a generic initiator';
const MACHINES: Machine[] = [
  { name: '64amd64-4s2n4ca2co', expectedFile: 'expected.output', known: {} },
  { name: '48amd64-4pa2n6c-sparse', expectedFile: 'expected.output', known: {} },
  { name: 'memorysidecaches', expectedFile: 'expected.output', known: {} },
  { name: '40intel64-2g2n4c+pcilocality', expectedFile: 'expected.xml', known: {} },
  { name: '32intel64-2p8co2t+8ve', expectedFile: 'expected.output', known: {} },
  { name: '128arm-2pa2n8cluster4co', expectedFile: 'expected.output', known: {} },
  { name: '256ppc-8n8s4t', expectedFile: 'expected.output', known: {} },
  { name: '128ia64-17n4s2c', expectedFile: 'expected.output', known: {} },
  {
    name: 'nvidiagpunumanodes',
    expectedFile: 'expected.output',
    known: {
      hiddenByHwloc: {
        nodes: [250, 251, 252, 253, 254, 255],
        reason:
          'hwloc hides NVIDIA GPU memory nodes unless HWLOC_KEEP_NVIDIA_GPU_NUMA_NODES=1 (see expected.kept.output)',
      },
    },
  },
  {
    name: 'nvidiagpunumanodes',
    expectedFile: 'expected.kept.output',
    known: {
      localityOutsideSysfs: {
        nodes: [250, 251, 252, 253, 254, 255],
        reason:
          'hwloc attaches GPU memory to the package of the GPU by PCI locality; sysfs node/ says nothing',
      },
    },
  },
  {
    name: 'fakememinitiators-1np2c+1npp+gi',
    expectedFile: 'expected.output',
    known: { hiddenByHwloc: { nodes: [0, 1, 2, 3, 4], reason: MEMORYLESS } },
  },
  { name: 'offline-cpu0-node0', expectedFile: 'expected.output', known: {} },
  { name: '16em64t-4s2c2t-offlines', expectedFile: 'expected.output', known: {} },
  { name: '20em64t-hybrid-1p6c2t+2ca4co1t', expectedFile: 'expected.output', known: {} },
];

function setKey(pus: number[]): string {
  return sorted(pus).join(',');
}

/** Every disagreement between the topology and hwloc's expectation, as readable lines. */
function differences(topology: Topology, expected: ExpectedTopology, known: KnownDifferences): string[] {
  const found: string[] = [];
  const check = (what: string, ours: unknown, theirs: unknown) => {
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      found.push(`${what}: ours ${JSON.stringify(ours)} vs hwloc ${JSON.stringify(theirs)}`);
    }
  };
  check('PUs', topology.onlineCpus, expected.pus);

  const byPus = <T extends { pus: number[] }>(list: T[]) =>
    [...list].sort((a, b) => setKey(a.pus).localeCompare(setKey(b.pus)));
  check(
    'packages',
    byPus(topology.packages.map((p) => ({ os: p.id, pus: p.cpus }))),
    byPus(expected.packages),
  );
  check(
    'cores',
    byPus(topology.cores.map((core) => ({ os: core.id, pus: core.cpus }))),
    byPus(expected.cores),
  );
  const cacheKey = (cache: { level: number; type: string; size: string; pus: number[] }) =>
    `L${cache.level} ${cache.type} ${cache.size} ${setKey(cache.pus)}`;
  check(
    'caches',
    topology.caches
      .map((cache) =>
        cacheKey({
          ...cache,
          size: cache.sizeBytes === null ? '?' : hwlocSize(cache.sizeBytes),
          pus: cache.cpus,
        }),
      )
      .sort(),
    expected.caches.map(cacheKey).sort(),
  );

  const hidden = known.hiddenByHwloc?.nodes ?? [];
  check(
    'NUMA node ids',
    topology.nodes.map((node) => node.id).filter((id) => !hidden.includes(id)),
    sorted(expected.numaNodes.map((node) => node.os)),
  );
  for (const theirs of expected.numaNodes) {
    const ours = topology.nodes.find((node) => node.id === theirs.os);
    if (ours === undefined) continue;
    const memoryBytes = ours.memoryKb === null ? null : ours.memoryKb * 1024;
    check(`node ${theirs.os} memory`, memoryBytes === null ? '?' : hwlocSize(memoryBytes), theirs.memory);
    if (theirs.memoryBytes !== null) check(`node ${theirs.os} memory bytes`, memoryBytes, theirs.memoryBytes);
    if (!(known.localityOutsideSysfs?.nodes ?? []).includes(theirs.os)) {
      check(`node ${theirs.os} CPUs`, nodeLocalCpus(topology, ours), theirs.pus);
    }
  }
  for (const [pair, latency] of expected.latency) {
    const [from, to] = pair.split(' ').map(Number);
    const distance = topology.nodes
      .find((node) => node.id === from)
      ?.distances.find((entry) => entry.node === to);
    check(`distance ${from}->${to}`, distance?.distance, latency);
  }
  return found;
}

const indexText = readFileSync(join(FIXTURES, 'numa-hwloc.INDEX.md'), 'utf8');

describe('readTopology agrees with hwloc on the 13 machines of numa-hwloc.tar.gz', () => {
  it('covers every machine of the archive', () => {
    const names = [...indexText.matchAll(/^### (\S+)$/gmu)].map(([, name]) => name);
    expect(new Set(MACHINES.map((machine) => machine.name))).toEqual(new Set(names));
    expect(names).toHaveLength(13);
  });

  for (const { name, expectedFile, known } of MACHINES) {
    describe(`${name} (${expectedFile})`, () => {
      let topology: Topology;
      let expected: ExpectedTopology;
      beforeAll(() => {
        topology = readTopology(join(machineDir(name), 'sys'));
        const text = readFileSync(join(machineDir(name), expectedFile), 'utf8');
        expected = expectedFile.endsWith('.xml') ? parseHwlocXml(text) : parseLstopoConsole(text);
      });

      it("parses hwloc's expectation consistently with hwloc's own object counts", () => {
        const counts = expected.summaryCounts;
        expect(expected.pus.length).toBe(counts.get('PU'));
        expect(expected.cores.length).toBe(counts.get('Core'));
        expect(expected.packages.length).toBe(counts.get('Package'));
        expect(expected.numaNodes.length).toBe(counts.get('NUMANode'));
        const cacheTypes = [...counts.keys()].filter((type) => /^L\d[di]?Cache$/u.test(type));
        expect(expected.caches.length).toBe(
          cacheTypes.reduce((sum, type) => sum + (counts.get(type) ?? 0), 0),
        );
      });

      it('matches hwloc on PUs, packages, cores, caches and NUMA nodes (CPUs, memory, distances)', () => {
        expect(differences(topology, expected, known)).toEqual([]);
      });

      if (known.hiddenByHwloc !== undefined) {
        const { nodes, reason } = known.hiddenByHwloc;
        it(`reads the nodes hwloc hides (${nodes.join(',')}): ${reason}`, () => {
          for (const id of nodes) expect(topology.nodes.map((node) => node.id)).toContain(id);
        });
      }
      if (known.localityOutsideSysfs !== undefined) {
        const { nodes, reason } = known.localityOutsideSysfs;
        it(`leaves the CPUs of nodes ${nodes.join(',')} empty: ${reason}`, () => {
          for (const node of topology.nodes.filter((entry) => nodes.includes(entry.id))) {
            expect(nodeLocalCpus(topology, node)).toEqual([]);
          }
        });
      }

      it("matches INDEX.md on each node's listed CPUs, MemTotal and distance row", () => {
        const indexNodes = parseIndexSection(indexText, name);
        expect(indexNodes.length).toBeGreaterThan(0);
        expect(topology.nodes.map((node) => node.id)).toEqual(indexNodes.map((node) => node.id));
        for (const indexNode of indexNodes) {
          const node = topology.nodes.find((entry) => entry.id === indexNode.id);
          expect(node?.listedCpus, `node ${indexNode.id} cpus`).toEqual(indexNode.cpus);
          expect(node?.memoryKb, `node ${indexNode.id} MemTotal`).toBe(indexNode.memTotalKb);
          expect(
            node?.distances.map((entry) => entry.distance),
            `node ${indexNode.id} distance`,
          ).toEqual(indexNode.distanceRow);
        }
      });
    });
  }
});
