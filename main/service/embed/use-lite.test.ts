import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, type Embedder } from './embedder.js';
import { openUseLite, useLiteInfo } from './use-lite.js';

let model: Embedder;

beforeAll(async () => {
  model = await openUseLite();
});

afterAll(async () => {
  await model.close();
});

// [text, a paraphrase sharing no content word, a text sharing words with a different meaning]
const TRIPLES: [string, string, string][] = [
  ['the server crashed', 'the machine stopped responding', 'the waiter served the crashed plates'],
  ['the network link failed', 'we lost internet connectivity', 'my social network of friends failed me'],
  ['restart the web service', 'reboot the http daemon', 'the web service desk is closed on sunday'],
  ['the disk is full', 'storage space has run out', 'the disk jockey played a full set'],
  [
    'the firewall blocked the connection',
    'packets were dropped by the packet filter',
    'the fire blocked the road connection',
  ],
  ['the password expired', 'the login credential is no longer valid', 'the milk in the fridge expired'],
  [
    'the container crashed',
    'the virtual machine terminated unexpectedly',
    'put the leftovers in a plastic container',
  ],
  ['add a new user account', 'create a login for someone', 'the user did not add up the account balance'],
  ['the temperature is very high', 'it is extremely hot', 'the high school temperature check'],
  ['the car would not start', 'my vehicle failed to ignite', 'start the car chase scene'],
  ['he bought a new house', 'he purchased a home', 'the new house music album'],
  [
    'the meeting was cancelled',
    'the appointment got called off',
    'we cancelled the meeting room booking system',
  ],
  ['i am very hungry', 'i want to eat something', 'the hungry caterpillar book'],
  ['the child is sleeping', 'the kid is taking a nap', 'sleeping bags for a child'],
  ['the price went up', 'it became more expensive', 'the price of going up the tower'],
  [
    'the doctor examined the patient',
    'the physician checked the sick person',
    'be patient, the examination of the doctoral thesis takes time',
  ],
  ['she is a famous singer', 'she is a well known vocalist', 'a famous sewing machine by singer'],
  ['the weather is lovely today', 'it is sunny and pleasant outside', 'we will weather the crisis today'],
  ['the dog is barking loudly', 'the puppy makes a lot of noise', 'the tree bark is rough'],
  ['i forgot my keys at home', 'i left the house without them', 'the piano keys are white at home'],
  ['the flight was delayed', 'the plane departed late', 'flight of the bumblebee delayed release'],
  ['the bank approved the loan', 'the lender granted the credit', 'the river bank approved for fishing'],
  ['the stock market crashed', 'shares lost value sharply', 'we keep the soup stock in the market fridge'],
  ['the song was beautiful', 'the melody sounded lovely', 'the beautiful song bird flew away'],
];

describe('USE-lite (the pretrained default) through the real model', () => {
  it('is the bundled model, named by the SHA-256 of its files', async () => {
    const info = await useLiteInfo();
    expect(info).toEqual(model.model);
    expect(info.id).toMatch(/^[0-9a-f]{64}$/);
    expect(info.dims).toBe(512);
    expect(info.label).toMatch(/Universal Sentence Encoder lite/);
  });

  it(`puts a paraphrase with no shared content word closer than shared words of another meaning (${TRIPLES.length} cases)`, async () => {
    expect(TRIPLES.length).toBeGreaterThanOrEqual(20);
    const vectors = await model.embed(TRIPLES.flat());
    const failures = TRIPLES.flatMap(([a, b, c], i) => {
      const [va, vb, vc] = [vectors[3 * i], vectors[3 * i + 1], vectors[3 * i + 2]];
      if (va === undefined || vb === undefined || vc === undefined) return [`no vector for ${a}`];
      const para = cosine(va, vb);
      const lexical = cosine(va, vc);
      return para > lexical ? [] : [`${a} | ${b} ${para.toFixed(3)} ≤ ${c} ${lexical.toFixed(3)}`];
    });
    expect(failures).toEqual([]);
  });

  it('embeds more texts than one graph run takes, in order', async () => {
    const texts = Array.from({ length: 300 }, (_, i) => `peer ${i} changed its port`);
    const got = await model.embed(texts);
    expect(got).toHaveLength(300);
    const [last] = await model.embed([texts[299] ?? '']);
    expect(cosine(got[299] ?? new Float32Array(), last ?? new Float32Array())).toBeGreaterThan(0.9999);
  });

  it('returns unit vectors of 512 dims, also for an empty text', async () => {
    const [v, empty] = await model.embed(['hello world', '']);
    expect(v?.length).toBe(512);
    expect(Math.hypot(...(v ?? []))).toBeCloseTo(1, 5);
    expect(Math.hypot(...(empty ?? []))).toBeCloseTo(1, 5);
  });
});
