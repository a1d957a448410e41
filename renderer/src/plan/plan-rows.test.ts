import { describe, expect, it } from 'vitest';
import type { Plan } from '../../../main/common/contract/index.js';
import {
  actionCounts,
  changeRows,
  diffTexts,
  filterRows,
  inApplyOrder,
  projectOnto,
  resourceProblems,
  valueText,
} from './plan-rows.js';

const plan: Plan = {
  id: 'p1',
  hash: 'c'.repeat(64),
  createdAt: '2026-01-01T00:00:00Z',
  desired: { hostname: { location: 'Rack 4', pretty_hostname: 'Web 1' } },
  current: { hostname: { static_hostname: 'vm', pretty_hostname: '', location: '' } },
  diffs: [
    {
      plugin: 'hostname',
      resources: [
        {
          id: 'location',
          action: 'modify',
          changes: [{ path: '/plugins/hostname/location', before: '', after: 'Rack 4' }],
        },
        { id: 'chassis', action: 'noop', changes: [] },
        {
          id: 'pretty_hostname',
          action: 'modify',
          changes: [{ path: '/plugins/hostname/pretty_hostname', before: '', after: 'Web 1' }],
        },
      ],
    },
  ],
  hasChanges: true,
  irreversible: [],
  auditSeq: 3,
};

describe('changeRows', () => {
  it('lists each changed value per plugin and resource, without no-ops', () => {
    expect(changeRows(plan).map((r) => `${r.plugin}/${r.resource}: ${r.before} → ${r.after}`)).toEqual([
      'hostname/location: "" → "Rack 4"',
      'hostname/pretty_hostname: "" → "Web 1"',
    ]);
  });
});

describe('inApplyOrder', () => {
  it('groups reversible changes per plugin and puts every irreversible one last, as the core runs them', () => {
    const twoPlugins: Plan = {
      ...plan,
      diffs: [
        {
          plugin: 'alpha',
          resources: [
            {
              id: 'gone',
              action: 'create',
              irreversible: true,
              changes: [{ path: '/p/alpha/gone', after: 'x' }],
            },
            { id: 'a', action: 'modify', changes: [{ path: '/p/alpha/a', before: '1', after: '2' }] },
          ],
        },
        {
          plugin: 'beta',
          resources: [{ id: 'b', action: 'create', changes: [{ path: '/p/beta/b', after: '1' }] }],
        },
      ],
      irreversible: ['alpha/gone'],
    };
    const { byPlugin, irreversible } = inApplyOrder(changeRows(twoPlugins));
    expect(byPlugin.map(([p, rows]) => `${p}: ${rows.map((r) => r.resource).join(',')}`)).toEqual([
      'alpha: a',
      'beta: b',
    ]);
    expect(irreversible.map((r) => `${r.plugin}/${r.resource} ${r.before} → ${r.after}`)).toEqual([
      'alpha/gone (absent) → "x"',
    ]);
  });
});

describe('projectOnto', () => {
  it('keeps only the keys the desired document names, in its order', () => {
    expect(projectOnto(plan.current, plan.desired)).toEqual({
      hostname: { location: '', pretty_hostname: '' },
    });
    expect(Object.keys((projectOnto(plan.current, plan.desired) as { hostname: object }).hostname)).toEqual([
      'location',
      'pretty_hostname',
    ]);
  });

  it('leaves arrays and scalars whole and skips keys the host lacks', () => {
    expect(projectOnto({ a: [1, 2], b: 1 }, { a: [3], c: 2 })).toEqual({ a: [1, 2] });
    expect(projectOnto('x', { a: 1 })).toBe('x');
  });
});

describe('diffTexts and valueText', () => {
  it('pretty-prints both sides and spells out absence', () => {
    expect(diffTexts(plan).current).toContain('"location": ""');
    expect(valueText(undefined)).toBe('(absent)');
    expect(valueText(null)).toBe('null');
  });
});

describe('filtering the change list', () => {
  const rows = [
    {
      plugin: 'lxc',
      resource: '101',
      action: 'create',
      path: '/lxc/101',
      before: '',
      after: 'web-server',
      irreversible: false,
    },
    {
      plugin: 'lxc',
      resource: '102',
      action: 'delete',
      path: '/lxc/102',
      before: 'db',
      after: '',
      irreversible: true,
    },
    {
      plugin: 'net',
      resource: 'vmbr0',
      action: 'modify',
      path: '/net/vmbr0/ipv4',
      before: '10.0.0.1/24',
      after: '10.0.0.2/24',
      irreversible: false,
    },
  ] as const;
  it('keeps rows holding every word, in plugin, resource, action or values', () => {
    expect(filterRows(rows as never, 'lxc web').map((r) => r.resource)).toEqual(['101']);
    expect(filterRows(rows as never, '10.0.0.2').map((r) => r.resource)).toEqual(['vmbr0']);
    expect(filterRows(rows as never, 'DELETE').map((r) => r.resource)).toEqual(['102']);
    expect(filterRows(rows as never, '  ')).toHaveLength(3);
    expect(actionCounts(rows as never)).toBe('1 create, 1 delete, 1 modify');
  });
});

describe('resourceProblems', () => {
  it('names each resource the host cannot take, as a sentence, and nothing else', () => {
    const plan = {
      id: 'p',
      hash: 'a'.repeat(64),
      createdAt: '2026-01-01T00:00:00Z',
      desired: {},
      current: {},
      hasChanges: true,
      irreversible: [],
      auditSeq: 1,
      diffs: [
        {
          plugin: 'net',
          resources: [
            {
              id: 'ovsbr0',
              action: 'create' as const,
              changes: [],
              error: 'ovs-bridge ovsbr0: port eno1 does not exist on this host',
            },
            { id: 'mesh', action: 'create' as const, changes: [] },
            { id: 'blank', action: 'create' as const, changes: [], error: '  ' },
          ],
        },
      ],
    };
    expect(resourceProblems(plan)).toEqual([
      {
        plugin: 'net',
        resource: 'ovsbr0',
        sentence: 'net ovsbr0: ovs-bridge ovsbr0: port eno1 does not exist on this host.',
      },
    ]);
  });
});
