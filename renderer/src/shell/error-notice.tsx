import { readableError } from '../core/core-client.js';

/** An error as a person reads it: its code and one line, never a stack. */
export function ErrorNotice({ error, title }: { error: unknown; title: string }) {
  if (error === null || error === undefined) return null;
  const e = readableError(error);
  return (
    <div className="notice notice-error" role="alert" data-testid="error-notice" data-code={e.code}>
      <strong>{title}</strong>
      <span className="notice-text">{e.line}</span>
    </div>
  );
}
