/**
 * Text from the core or from a document, made safe to show a person: in a terminal an ESC, CSI or OSC
 * sequence rewrites the screen (or the window title, or the clipboard), BEL rings, CR overwrites the
 * line, and a bidi override makes `evil` read as `live`. Such characters are written as visible escapes
 * (`\x1b`, `\u202e`), so the person sees that they were there; everything else is kept as it is.
 * Data (payloads, `--json` values) is never passed through here: only text meant to be read.
 */

/** `line`: one line (every line break becomes a space); `lines`: line feeds and tabs are kept. */
export type PrintableMode = 'line' | 'lines';

// C0 controls, DEL, C1 controls (CSI is U+009B), the bidi embeddings, overrides, isolates and marks,
// the Unicode line and paragraph separators, and surrogates (only lone ones are replaced).
const NEEDS_CARE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/;
const CARE =
  /\r\n|[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const LINE_BREAK = /^(?:\r\n|[\n\r\v\f\u0085\u2028\u2029])$/;

/** The text with every control, bidi control and lone surrogate made visible (see the module comment). */
export function printable(text: string, mode: PrintableMode): string {
  // One test for the usual text, which has none of them.
  if (!NEEDS_CARE.test(text)) return text;
  return text.replace(CARE, (c) => {
    if (mode === 'line' && (LINE_BREAK.test(c) || c === '\t')) return ' ';
    if (mode === 'lines' && (c === '\n' || c === '\t')) return c;
    if (mode === 'lines' && c === '\r\n') return '\n';
    const code = c.charCodeAt(0);
    if (c.length === 1 && code >= 0xd800 && code <= 0xdfff) return '\ufffd';
    if (c === '\r\n') return '\\r\\n';
    return code <= 0xff ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`;
  });
}

/**
 * JSON text (as JSON.stringify wrote it) with the characters JSON.stringify leaves raw but a terminal
 * acts on (DEL, C1, bidi controls, line separators) written as `\uXXXX` escapes: the same JSON value.
 */
export function printableJson(json: string): string {
  return json.replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    return `\\u${hex(c.charCodeAt(0), 4)}`;
  });
}

function hex(code: number, digits: number): string {
  return code.toString(16).padStart(digits, '0');
}
