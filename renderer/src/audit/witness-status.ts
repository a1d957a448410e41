import type { WitnessReport } from '../../../main/common/contract/index.js';

/** How the console shows the witness's verdict: a tone, a headline and the detail a person needs. */
export interface WitnessNotice {
  tone: 'ok' | 'info' | 'warning' | 'bad';
  title: string;
  detail: string;
}

const entries = (n: number): string => `${n} ${n === 1 ? 'entry' : 'entries'}`;
const rootOf = (root: string): string => `root ${root.slice(0, 12)}…`;

/**
 * The witness's verdict as words (DESIGN.md section 5); tampering says so in capitals, as the CLI
 * does. `time` renders the ISO times the witness recorded (the view passes the local format).
 */
export function witnessNotice(
  report: WitnessReport,
  time: (iso: string) => string = (iso) => iso,
): WitnessNotice {
  switch (report.status) {
    case 'in-sync':
      return {
        tone: 'ok',
        title: 'Witness: in sync',
        detail:
          report.previous !== undefined
            ? `The host's signed log of ${entries(report.checkpoint.size)} extends the ${entries(report.previous.size)} you last saw on ${time(report.previous.seenAt)} (consistency proof checked).`
            : `The host's signed log is the one you saw before: ${entries(report.checkpoint.size)}, ${rootOf(report.checkpoint.root)}.`,
      };
    case 'first-contact':
      return {
        tone: 'info',
        title: 'Witness: first contact (trusted on first use)',
        detail: `You had no earlier checkpoint of ${report.endpoint}. This one (${entries(report.checkpoint.size)}, ${rootOf(report.checkpoint.root)}) is kept as the reference: every later connect must prove the log extends it.`,
      };
    case 'tampering': {
      // the witness's message repeats the headline and the endpoint; the banner shows them apart
      const prefix = `AUDIT LOG TAMPERING on ${report.endpoint}: `;
      const reason = report.reason.startsWith(prefix) ? report.reason.slice(prefix.length) : report.reason;
      return {
        tone: 'bad',
        title: `AUDIT LOG TAMPERING on ${report.endpoint}`,
        detail: reason.charAt(0).toUpperCase() + reason.slice(1),
      };
    }
    case 'not-witnessed':
      return { tone: 'warning', title: 'Witness did not run', detail: report.reason };
  }
}
