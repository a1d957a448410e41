import { parseTree, type ParseError } from 'jsonc-parser';
import { Manager1 } from '../../main/common/contract/index.js';
import { printable } from '../../main/common/text/printable.js';
import { parseManager1Request } from '../../main/service/core/service.js';
import { parseDesiredDocument } from '../../main/service/engine/document.js';
import type { BenchGroup, StartedGroup } from '../harness.js';

const FILES = 1_000;
const SUMMARIES = 1_000;

/** A desired-state document of ~1 MB: 1,000 files of ~1 KB, as a large community plugin section would be. */
function document(): string {
  const files: Record<string, { content: string; mode: string }> = {};
  for (let i = 0; i < FILES; i++)
    files[`conf.d/${i}.conf`] = { content: `key${i} = ${'v'.repeat(1000)}\n`, mode: '0644' };
  return JSON.stringify({ version: 1, plugins: { files: { files, prune: false } } }, null, 2);
}

/**
 * What the defences against untrusted input cost (issue 12), each against the floor it replaced, in
 * one run: the desired-state parser (duplicate keys with both positions, nesting depth, lone
 * surrogates) against jsonc-parser's tree alone; a Manager1 request (size bound, client label) against
 * JSON.parse + the method's schema; and the printable filter on audit summaries against the
 * line-break stripping it replaced.
 */
export const defencesGroup: BenchGroup = {
  name: 'defences',
  description:
    `A ${FILES}-file (~1 MB) desired-state document parsed by parseDesiredDocument vs jsonc-parser's parseTree; the same ` +
    `document as a Plan request through parseManager1Request vs JSON.parse + the Plan schema; ${SUMMARIES} audit summaries ` +
    'through printable() vs a line-break replace.',
  baseline: 'jsonc-parseTree',
  start: (): Promise<StartedGroup> => {
    const text = document();
    const request = JSON.stringify({ document: text, file: 'bench.json' });
    const summaries = Array.from(
      { length: SUMMARIES },
      (_, i) =>
        `apply plan ${i.toString(16).padStart(64, '0')}: applied and verified (files: ${i} change(s)) \u001b[31mred\u0007`,
    );
    let sink = 0;
    return Promise.resolve({
      cases: [
        {
          name: 'jsonc-parseTree',
          run: () => {
            const errors: ParseError[] = [];
            sink += parseTree(text, errors, { allowTrailingComma: false })?.children?.length ?? 0;
            return Promise.resolve();
          },
        },
        {
          name: 'parseDesiredDocument',
          run: () => {
            sink += Object.keys(parseDesiredDocument(text, 'bench.json').doc.plugins).length;
            return Promise.resolve();
          },
        },
        {
          name: 'request-JSON.parse+schema',
          run: () => {
            sink += Manager1.Plan.request.safeParse(JSON.parse(request)).success ? 1 : 0;
            return Promise.resolve();
          },
        },
        {
          name: 'parseManager1Request',
          run: () => {
            sink += parseManager1Request(request, 'Plan').request === undefined ? 0 : 1;
            return Promise.resolve();
          },
        },
        {
          name: 'summaries-replace',
          run: () => {
            for (const s of summaries) sink += s.replace(/[\r\n]+/g, ' ').length;
            return Promise.resolve();
          },
        },
        {
          name: 'summaries-printable',
          run: () => {
            for (const s of summaries) sink += printable(s, 'line').length;
            return Promise.resolve();
          },
        },
      ],
      notes: [
        `document ${(text.length / 1024 / 1024).toFixed(2)} MiB, request ${(request.length / 1024 / 1024).toFixed(2)} MiB`,
      ],
      notesAfter: () => Promise.resolve([`checksum ${sink}`]),
      stop: () => Promise.resolve(),
    });
  },
};
