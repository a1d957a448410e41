import type { EmbeddingStats, ReembedProgress } from '../../../main/common/contract/index.js';

/** The embedder in use, honestly: its name, what it is, its runtime and width. */
export function embedderLine(model: EmbeddingStats['model']): string {
  const runtime = model.runtime === 'tfjs-use-lite' ? 'TensorFlow.js' : 'onnxruntime-node';
  return `${model.name}: ${model.label} (${runtime}, ${model.dims} dimensions)`;
}

/**
 * The background re-embedding after a model change, as a sentence and a fraction (0..1), or
 * undefined when none ran since the core started. `nameOf` turns the model id the core reports
 * into a name when it is the one in use.
 */
export function reembedState(
  p: ReembedProgress,
  nameOf: (id: string) => string,
): { text: string; fraction: number; tone: 'running' | 'done' | 'failed' } | undefined {
  if (p.state === 'idle') return undefined;
  const model = nameOf(p.model);
  const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : p.state === 'done' ? 1 : 0;
  const counts = `${p.done.toLocaleString('en')} of ${p.total.toLocaleString('en')} entries`;
  if (p.state === 'running') {
    return {
      tone: 'running',
      fraction,
      text: `Re-embedding the audit log with ${model}: ${counts} (${Math.floor(fraction * 100)} %). Until it ends, entries not yet embedded match by words only.`,
    };
  }
  if (p.state === 'done') {
    return { tone: 'done', fraction, text: `Re-embedded with ${model}: ${counts}.` };
  }
  return {
    tone: 'failed',
    fraction,
    text: `Re-embedding with ${model} failed after ${counts}${p.message !== undefined ? `: ${p.message}` : ''}.`,
  };
}
