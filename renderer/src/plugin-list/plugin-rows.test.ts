import { describe, expect, it } from 'vitest';
import { permissionText } from './plugin-rows.js';

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
