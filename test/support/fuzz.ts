import fc from 'fast-check';

/** How a fuzz target runs: a fixed seed (a failure replays), a number of inputs, a time limit for each. */
export interface FuzzOptions {
  seed: number;
  runs: number;
  /** An input that takes longer fails the target (the parsers are synchronous: a hang is a slow input). */
  perInputMs: number;
}

/**
 * Runs `check` on `runs` inputs of `inputs` and prints how many ran and the slowest. `check` throws
 * (an assertion) for a wrong answer; taking longer than perInputMs on one input is a failure too.
 */
export function fuzz<T>(
  name: string,
  inputs: fc.Arbitrary<T>,
  check: (input: T) => void,
  o: FuzzOptions,
): void {
  let ran = 0;
  let slowest = 0;
  fc.assert(
    fc.property(inputs, (input) => {
      const started = performance.now();
      check(input);
      const ms = performance.now() - started;
      ran += 1;
      slowest = Math.max(slowest, ms);
      if (ms > o.perInputMs)
        throw new Error(`${name}: one input took ${ms.toFixed(0)} ms (limit ${o.perInputMs} ms)`);
    }),
    { seed: o.seed, numRuns: o.runs },
  );
  console.log(`fuzz ${name}: ${ran} inputs, seed ${o.seed}, slowest ${slowest.toFixed(1)} ms`);
}

/** Text with what parsers get wrong: structure, quotes and escapes, controls, surrogates (paired and lone), BOMs. */
export const awkwardText = fc.string({
  unit: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('a', '1', ' ', 'é', '€', '-', '.', 'e', 't', 'n') },
    {
      weight: 6,
      arbitrary: fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '\\', '/', '*', '\n', '\r', '\t'),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom('\u0000', '\u001b', '\u007f', '\u009b', '\u2028', '\u202e', '\ufeff'),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom('😀', '\ud800', '\udc00', '\\u', '\\ud800', '\\"', '//', '/*', '*/'),
    },
  ),
  maxLength: 80,
});

/** `text` with a few characters inserted, replaced or removed at random places. */
export function mutated(text: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return text.chain((t) =>
    fc
      .array(
        fc.tuple(
          fc.nat(t.length),
          awkwardText.map((s) => s.slice(0, 3)),
          fc.nat(3),
        ),
        { maxLength: 4 },
      )
      .map((edits) => edits.reduce((s, [at, insert, cut]) => s.slice(0, at) + insert + s.slice(at + cut), t)),
  );
}
