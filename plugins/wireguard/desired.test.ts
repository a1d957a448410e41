import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { normaliseNetwork, wantedInterfaces, WireguardSection } from './desired.js';
import { decodeKey, publicKeyOf, readKeyFile, resolveKeyFile } from './keys.js';

// The section's meaning for one node, and key files, without a device: wg itself checks our X25519.
let dir: string;
let own: string;
const pub = (): string =>
  spawnSync('wg', ['pubkey'], {
    input: spawnSync('wg', ['genkey'], { encoding: 'utf8' }).stdout,
    encoding: 'utf8',
  }).stdout.trim();

beforeAll(() => {
  dir = mkdtempSync('/tmp/opdbus-wg-unit-');
  const key = spawnSync('wg', ['genkey'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(join(dir, 'wg0.key'), `${key}\n`, { mode: 0o600 });
  chmodSync(join(dir, 'wg0.key'), 0o600);
  own = spawnSync('wg', ['pubkey'], { input: key, encoding: 'utf8' }).stdout.trim();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('wireguard section', () => {
  it('derives the same public key as wg pubkey', () => {
    expect(publicKeyOf(readKeyFile(join(dir, 'wg0.key'), [dir]))).toBe(own);
  });

  it('a mesh without self finds this node by its key; peers are the others with host routes', () => {
    const others = [pub(), pub()];
    const section = WireguardSection.parse({
      mesh: {
        wg0: {
          nodes: [
            { name: 'b', public_key: others[0], endpoint: '10.0.0.2:51820', address: '10.8.0.2/24' },
            { name: 'a', public_key: own, endpoint: '10.0.0.1:51821', address: '10.8.0.1/24' },
            { name: 'c', public_key: others[1], address: 'fd00::3/64' },
          ],
        },
      },
    });
    const [w] = wantedInterfaces(section, [dir]);
    expect(w?.self).toBe('a');
    expect(w?.listen_port).toBe(51821);
    expect(w?.address).toEqual(['10.8.0.1/24']);
    expect(w?.peers.map((p) => [p.label, p.allowed_ips, p.at])).toEqual([
      ['b', ['10.8.0.2/32'], '/plugins/wireguard/mesh/wg0/nodes/0'],
      ['c', ['fd00::3/128'], '/plugins/wireguard/mesh/wg0/nodes/2'],
    ]);
  });

  it('a mesh that does not hold this host, names a missing self, or repeats a key is refused, naming where', () => {
    const nodes = [{ name: 'b', public_key: pub(), address: '10.8.0.2/24' }];
    expect(() => wantedInterfaces(WireguardSection.parse({ mesh: { wg0: { nodes } } }), [dir])).toThrow(
      /\/plugins\/wireguard\/mesh\/wg0: this host's public key .* is none of the nodes'/,
    );
    expect(() =>
      wantedInterfaces(WireguardSection.parse({ mesh: { wg0: { self: 'x', nodes } } }), [dir]),
    ).toThrow(/mesh\/wg0\/self: no node is named x/);
    const twice = [...nodes, { ...nodes[0], name: 'b2' }];
    expect(() =>
      wantedInterfaces(WireguardSection.parse({ mesh: { wg0: { self: 'b', nodes: twice } } }), [dir]),
    ).toThrow(/nodes\/1: node b2 repeats/);
    const peer = { public_key: own };
    expect(() =>
      wantedInterfaces(
        WireguardSection.parse({ interfaces: { wg0: { private_key_file: 'wg0.key', peers: [peer, peer] } } }),
        [dir],
      ),
    ).toThrow(/interfaces\/wg0\/peers\/1: the public key of peer 0 again/);
  });

  it('allowed IPs are kept as WireGuard keeps them; keys must be canonical base64 of 32 bytes', () => {
    expect(normaliseNetwork('10.8.3.7/24')).toBe('10.8.3.0/24');
    expect(normaliseNetwork('10.8.3.7/32')).toBe('10.8.3.7/32');
    expect(normaliseNetwork('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(decodeKey(own)?.length).toBe(32);
    expect(decodeKey(`${own.slice(0, 42)}B=`)).toBeUndefined();
  });

  it('a relative key file is looked up in the key directories; ".." is refused', () => {
    expect(resolveKeyFile('wg0.key', ['/nonexistent', dir])).toBe(join(dir, 'wg0.key'));
    expect(() => resolveKeyFile('../etc/shadow', [dir])).toThrow(/".." is not allowed/);
  });

  it('the schema refuses a key in a document and malformed values', () => {
    const peer = { public_key: own, preshared_key: 'x' };
    expect(
      WireguardSection.safeParse({ interfaces: { wg0: { private_key_file: 'k', peers: [peer] } } }).success,
    ).toBe(false);
    expect(
      WireguardSection.safeParse({ interfaces: { 'wg0-too-long-name': { private_key_file: 'k' } } }).success,
    ).toBe(false);
    expect(
      WireguardSection.safeParse({
        mesh: { wg0: { nodes: [{ name: 'a', public_key: 'short=', address: '10.0.0.1/24' }] } },
      }).success,
    ).toBe(false);
  });
});
