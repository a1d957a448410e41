/** One problem of a refused plan, as the core lists them in its error's details (a SchemaError names each resource). */
export interface PlanProblem {
  message: string;
  pointer?: string;
  line?: number;
  column?: number;
}

/**
 * The per-resource problems of a plan the core refused (`details.problems`), each checked field
 * by field: the details are the core's JSON, read with care. Empty when there are none.
 */
export function planProblems(details: unknown): PlanProblem[] {
  if (typeof details !== 'object' || details === null) return [];
  const list = (details as { problems?: unknown }).problems;
  if (!Array.isArray(list)) return [];
  const out: PlanProblem[] = [];
  for (const raw of list.slice(0, 200)) {
    if (typeof raw !== 'object' || raw === null) continue;
    const p = raw as Record<string, unknown>;
    if (typeof p['message'] !== 'string' || p['message'] === '') continue;
    const problem: PlanProblem = { message: p['message'] };
    if (typeof p['pointer'] === 'string') problem.pointer = p['pointer'];
    if (Number.isInteger(p['line']) && (p['line'] as number) > 0) problem.line = p['line'] as number;
    if (Number.isInteger(p['column']) && (p['column'] as number) > 0) problem.column = p['column'] as number;
    out.push(problem);
  }
  return out;
}

/** A problem as a sentence for a person: where it is, then what is wrong, ending with a full stop. */
export function problemSentence(p: PlanProblem): string {
  const where =
    p.line !== undefined ? `Line ${p.line}${p.column !== undefined ? `, column ${p.column}` : ''}: ` : '';
  const text = p.message.charAt(0).toUpperCase() + p.message.slice(1);
  return `${where}${text}${/[.!?)]$/.test(text) ? '' : '.'}`;
}
