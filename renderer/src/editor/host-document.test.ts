import { describe, expect, it } from 'vitest';
import { parse } from 'jsonc-parser';
import { REDACTED_VALUE, type QueryResponse } from '../../../main/common/contract/index.js';
import { hostDocument } from './host-document.js';

// "Start from host state" (issue 11, point 5): the core redacts secret values in Query; a document
// that copied the placeholder would make Apply set it on the host.
const AT = new Date('2026-01-02T03:04:05Z');

const query = (state: unknown): QueryResponse => ({
  plugins: [
    { plugin: 'wireguard', version: '1', available: true, state },
    { plugin: 'lxc', version: '1', available: false, reason: 'no lxc here' },
  ],
});

describe('hostDocument', () => {
  it('copies the state of each available plugin when nothing is redacted', () => {
    const doc = hostDocument(query({ interfaces: { wg0: { listen_port: 51820 } } }), AT);
    expect(doc.leftOut).toEqual([]);
    expect(parse(doc.text)).toEqual({
      version: 1,
      plugins: { wireguard: { interfaces: { wg0: { listen_port: 51820 } } } },
    });
    expect(doc.text).not.toMatch(/Left out/);
  });

  it('leaves out redacted values and names each by its JSON pointer, in the document too', () => {
    const doc = hostDocument(
      query({
        interfaces: {
          'wg/0': { listen_port: 51820, private_key: REDACTED_VALUE, peers: [{ key: 'a' }] },
          wg1: { preshared: [{ key: 'b' }, REDACTED_VALUE] },
        },
      }),
      AT,
    );
    expect(doc.text).not.toContain(REDACTED_VALUE);
    expect(doc.leftOut).toEqual([
      '/plugins/wireguard/interfaces/wg~10/private_key',
      '/plugins/wireguard/interfaces/wg1/preshared',
    ]);
    expect(parse(doc.text)).toEqual({
      version: 1,
      plugins: {
        wireguard: { interfaces: { 'wg/0': { listen_port: 51820, peers: [{ key: 'a' }] }, wg1: {} } },
      },
    });
    expect(doc.text).toMatch(
      /^\/\/ Left out 2 secret values the core does not reveal \(\/plugins\/wireguard\/interfaces\/wg~10\/private_key, \/plugins\/wireguard\/interfaces\/wg1\/preshared\): as long as the document does not name them, Apply leaves them as on the host/m,
    );
  });
});
