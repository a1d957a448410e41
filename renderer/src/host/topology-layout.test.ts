import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { TopologyResponse } from '../../../main/common/contract/index.js';
import { ia64SeventeenNodes, offlineCpus, ppc256Cpus, smallVm } from './topology-fixtures.js';
import { cacheName, formatCacheSize, topologyLayout } from './topology-layout.js';
import { TopologyView } from './topology-panel.js';

// The layout of the Host tab's topology panel on the shapes `op-dbus topology --json` prints:
// this 1-node VM, and hwloc's dumps of large machines (generated to the same shapes).

describe('the fixtures', () => {
  it('are valid Topology answers', () => {
    for (const t of [smallVm(), ia64SeventeenNodes(), ppc256Cpus(), offlineCpus()]) {
      expect(TopologyResponse.safeParse(t).success).toBe(true);
    }
  });
});

describe('topologyLayout on this 1-node, 2-CPU VM', () => {
  const l = topologyLayout(smallVm());

  it('lists the node with its cpulist and memory', () => {
    expect(l.nodes).toEqual([{ id: 0, cpuList: '0-1', cpuCount: 2, memory: '8.59 GiB' }]);
  });

  it('draws no distance matrix for a single node', () => {
    expect(l.distances).toBeNull();
  });

  it('counts packages, cores and CPUs', () => {
    expect(l.counts).toEqual({ nodes: 1, packages: 1, cores: 2, cpus: 2, threadsPerCore: '1' });
  });

  it('groups the caches per kind: L1d, L1i, L2, L3 with size and sharing', () => {
    expect(l.caches.map((c) => [c.name, c.size, c.sharedBy, c.instances])).toEqual([
      ['L1d', '32 KiB', '1 CPU', 2],
      ['L1i', '32 KiB', '1 CPU', 2],
      ['L2', '1 MiB', '1 CPU', 2],
      ['L3', '32 MiB', '2 CPUs', 1],
    ]);
  });

  it('has no offline CPUs and no warnings', () => {
    expect(l.offline).toBeNull();
    expect(l.warnings).toEqual([]);
  });
});

describe('topologyLayout on large machines', () => {
  it('128ia64-17n4s2c: 17 nodes, a full 17x17 distance matrix drawn compact, a CPU-less node', () => {
    const l = topologyLayout(ia64SeventeenNodes());
    expect(l.nodes).toHaveLength(17);
    expect(l.nodes[0]).toEqual({ id: 0, cpuList: '0-7', cpuCount: 8, memory: '95.9 GiB' });
    expect(l.nodes[15]?.cpuList).toBe('120-127');
    expect(l.nodes[16]).toEqual({ id: 16, cpuList: 'none', cpuCount: 0, memory: '996 MiB' });
    const d = l.distances;
    expect(d?.dense).toBe(true);
    expect(d?.ids).toEqual([...Array(17).keys()]);
    expect(d?.rows).toHaveLength(17);
    expect(d?.rows.every((r) => r.cells.length === 17)).toBe(true);
    expect(d?.rows[0]?.cells.map((c) => c.text).slice(0, 5)).toEqual(['10', '17', '17', '17', '20']);
    expect(d?.rows[16]?.cells[16]).toEqual({ text: '10', local: true, shade: 0 });
    // tint: nearest remote (14) lightest, farthest (20) darkest
    expect(d?.rows[16]?.cells[0]?.shade).toBe(0);
    expect(d?.rows[0]?.cells[4]?.shade).toBe(1);
    expect(l.counts).toEqual({ nodes: 17, packages: 64, cores: 128, cpus: 128, threadsPerCore: '1' });
    expect(l.caches).toEqual([]);
    expect(l.warnings).toHaveLength(1);
  });

  it('256ppc-8n8s4t: sparse node ids, 256 CPUs, 256 cache instances in four rows', () => {
    const l = topologyLayout(ppc256Cpus());
    expect(l.nodes.map((n) => `${n.id}:${n.cpuList}`)).toEqual([
      '0:0-31',
      '1:32-63',
      '4:64-95',
      '5:96-127',
      '8:128-159',
      '9:160-191',
      '12:192-223',
      '13:224-255',
    ]);
    expect(l.distances?.ids).toEqual([0, 1, 4, 5, 8, 9, 12, 13]);
    expect(l.distances?.dense).toBe(false);
    expect(l.distances?.rows[2]?.cells.map((c) => c.text)).toEqual([
      '40',
      '40',
      '10',
      '20',
      '40',
      '40',
      '40',
      '40',
    ]);
    expect(l.counts).toEqual({ nodes: 8, packages: 64, cores: 64, cpus: 256, threadsPerCore: '4' });
    expect(l.caches.map((c) => [c.name, c.size, c.sharedBy, c.instances])).toEqual([
      ['L1d', '32 KiB', '4 CPUs', 64],
      ['L1i', '32 KiB', '4 CPUs', 64],
      ['L2', '256 KiB', '4 CPUs', 64],
      ['L3', '4 MiB', '4 CPUs', 64],
    ]);
  });

  it('offline-cpu0-node0: offline CPUs as a cpulist, a cache shared unevenly as a range', () => {
    const l = topologyLayout(offlineCpus());
    expect(l.offline).toBe('0-3,21-23');
    expect(l.nodes).toEqual([{ id: 1, cpuList: '5,7,9,11,13,15,17,19', cpuCount: 8, memory: '64.0 GiB' }]);
    expect(l.distances).toBeNull();
    expect(l.counts.cpus).toBe(17);
    expect(l.caches.find((c) => c.name === 'L3')).toMatchObject({ sharedBy: '8-9 CPUs', instances: 2 });
    expect(l.warnings).toHaveLength(2);
  });

  it('a node whose distance row is short shows "?", not a shifted matrix', () => {
    const t = ia64SeventeenNodes();
    t.nodes = t.nodes.slice(0, 3).map((n) => ({ ...n, distances: n.distances.slice(0, n.id === 2 ? 2 : 3) }));
    t.nodes[1] = { id: 1, cpus: [], memory_kb: null, distances: [17, null, 17] };
    const d = topologyLayout(t).distances;
    expect(d?.rows[2]?.cells.map((c) => c.text)).toEqual(['17', '17', '?']);
    expect(d?.rows[1]?.cells.map((c) => c.text)).toEqual(['17', '?', '17']);
  });
});

describe('cache names and sizes', () => {
  it('names caches as usual', () => {
    expect(cacheName(1, 'data')).toBe('L1d');
    expect(cacheName(1, 'instruction')).toBe('L1i');
    expect(cacheName(2, 'unified')).toBe('L2');
    expect(cacheName(3, 'unified')).toBe('L3');
  });

  it('prints whole MiB as MiB and the rest in KiB', () => {
    expect(formatCacheSize(32)).toBe('32 KiB');
    expect(formatCacheSize(1024)).toBe('1 MiB');
    expect(formatCacheSize(1280)).toBe('1,280 KiB');
    expect(formatCacheSize(32768)).toBe('32 MiB');
    expect(formatCacheSize(5118)).toBe('5,118 KiB');
  });
});

describe('TopologyView', () => {
  const render = (t: TopologyResponse): string =>
    renderToStaticMarkup(createElement(TopologyView, { topology: t }));
  const count = (html: string, needle: string): number => html.split(needle).length - 1;

  it('renders this VM without a distance table or warnings', () => {
    const html = render(smallVm());
    expect(html).toContain('data-testid="topology-node-0-cpus">0-1<');
    expect(html).not.toContain('topology-distances');
    expect(html).not.toContain('topology-warnings');
    expect(count(html, 'data-testid="topology-cache"')).toBe(4);
  });

  it('renders 17 nodes: one row each, a 17x17 compact matrix, warnings collapsed', () => {
    const html = render(ia64SeventeenNodes());
    expect(count(html, 'data-testid="topology-node"')).toBe(17);
    expect(html).toContain('class="topo-distances dense"');
    expect(count(html, '<td class="local"')).toBe(17);
    expect(html).toContain('data-testid="topology-node-16-cpus">no CPUs<');
    expect(html).toMatch(/<details class="topo-warnings" data-testid="topology-warnings"><summary>1 warning/);
    expect(html).toContain('No caches under');
  });

  it('renders 256 CPUs in bounded size: four cache rows, not 256', () => {
    const html = render(ppc256Cpus());
    expect(count(html, 'data-testid="topology-cache"')).toBe(4);
    expect(count(html, 'data-testid="topology-node"')).toBe(8);
    expect(html.length).toBeLessThan(20_000);
  });
});
