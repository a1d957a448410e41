import { describe, expect, it } from 'vitest';
import { payloadChanges, payloadText } from './entry-detail-rows.js';

describe("an audit entry's payload as the console shows it", () => {
  it("lists a plan's changes before → after, leaving out resources it does not change", () => {
    const payload = {
      hash: 'h',
      diffs: [
        {
          plugin: 'hostname',
          resources: [
            {
              id: 'hostname',
              action: 'modify',
              changes: [{ path: '/plugins/hostname/pretty_hostname', before: 'a', after: 'b' }],
            },
            { id: 'other', action: 'noop', changes: [] },
          ],
        },
        {
          plugin: 'lxc',
          resources: [
            {
              id: '101',
              action: 'create',
              changes: [{ path: '/plugins/lxc/containers/0', after: { id: '101' } }],
            },
          ],
        },
      ],
    };
    expect(payloadChanges(payload)).toEqual([
      {
        plugin: 'hostname',
        resource: 'hostname',
        action: 'modify',
        path: '/plugins/hostname/pretty_hostname',
        before: '"a"',
        after: '"b"',
      },
      {
        plugin: 'lxc',
        resource: '101',
        action: 'create',
        path: '/plugins/lxc/containers/0',
        before: '(absent)',
        after: '{"id":"101"}',
      },
    ]);
  });

  it('finds no changes in payloads without diffs, or with malformed ones', () => {
    expect(payloadChanges({ planId: 'p', hash: 'h', results: [] })).toEqual([]);
    expect(payloadChanges({ diffs: [{ plugin: 3 }] })).toEqual([]);
    expect(payloadChanges(null)).toEqual([]);
    expect(payloadChanges('text')).toEqual([]);
  });

  it('cuts a large payload and says how much it left out', () => {
    const text = payloadText({ v: 'x'.repeat(100) }, 50);
    expect(text.length).toBeLessThan(120);
    expect(text).toMatch(/… \(\d+ more characters\)$/);
    expect(payloadText({ a: 1 })).toBe('{\n  "a": 1\n}');
  });
});
