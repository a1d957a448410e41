import { describe, expect, it } from 'vitest';
import { originOf, permissionText, rollbackSentence, shortHash, writableText } from './plugin-rows.js';

describe('permissionText', () => {
  it('names the bus name, interface, paths, methods and property access of one permission', () => {
    expect(
      permissionText({
        name: 'org.freedesktop.hostname1',
        interface: 'org.freedesktop.hostname1',
        paths: ['/org/freedesktop/hostname1'],
        methods: ['SetLocation', 'SetChassis'],
        properties: 'read',
      }),
    ).toBe(
      'org.freedesktop.hostname1 org.freedesktop.hostname1 at /org/freedesktop/hostname1; calls SetLocation, SetChassis; properties read',
    );
  });

  it('says what a permission does not grant, and survives a shape it does not know', () => {
    expect(permissionText({ name: 'org.example.A', interface: 'org.example.A', methods: [] })).toBe(
      'org.example.A org.example.A; no methods; no properties',
    );
    expect(permissionText('odd')).toBe('"odd"');
    expect(permissionText({ methods: 'SetLocation' })).toBe('? ?; no methods; no properties');
  });
});

describe('the plugin browser', () => {
  it('calls a community plugin installed from a bundle a bundle, and leaves the others as the core says', () => {
    const bundled = new Set(['marker']);
    expect(originOf({ name: 'marker', source: 'community' }, bundled)).toBe('bundle');
    expect(originOf({ name: 'probe', source: 'community' }, bundled)).toBe('community');
    // a built-in never becomes a bundle, even if a bundle of that name were installed
    expect(originOf({ name: 'marker', source: 'built-in' }, bundled)).toBe('built-in');
    expect(originOf({ name: 'timedate1', source: 'generated' }, bundled)).toBe('generated');
  });

  it('says whether a plugin writes, and why one is read-only', () => {
    expect(writableText({ writable: true, source: 'built-in' })).toEqual({
      writable: true,
      text: 'writable',
    });
    expect(writableText({ writable: true, source: 'generated' }).text).toBe(
      'writable through its semantic mapping',
    );
    expect(
      writableText({ writable: false, source: 'generated', read_only_because: 'no semantic mapping for it' }),
    ).toEqual({ writable: false, text: 'read-only: no semantic mapping for it' });
    expect(writableText({ writable: false, source: 'generated' }).text).toBe(
      'read-only: the core gave no reason',
    );
    expect(writableText({ source: 'community' })).toEqual({
      writable: undefined,
      text: 'the core did not say',
    });
  });

  it("tells a rollback's outcome with versions and short hashes", () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    expect(shortHash(a)).toBe('aaaaaaaaaaaa…');
    expect(
      rollbackSentence({ name: 'marker', from: b, to: a, auditSeq: 41 }, (h) =>
        h === a ? '1.0.0' : undefined,
      ),
    ).toBe(
      'Rolled marker back from bbbbbbbbbbbb… to 1.0.0 (aaaaaaaaaaaa…); the next plan uses 1.0.0 (aaaaaaaaaaaa…) (audit #41).',
    );
  });
});
