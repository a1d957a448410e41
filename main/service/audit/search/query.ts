/**
 * A search query as the index reads it: its words (for BM25) and its identifiers, which results must
 * contain exactly ("51820" never matches 51821 or 518200, "vi101" never vi102, "nginx.service" only itself).
 */
export interface ParsedQuery {
  /** Lower-cased words, in order, without duplicates. */
  words: string[];
  /** Tokens that name a thing: a digit in them, or a dot, dash, underscore, colon, slash or @ inside. */
  identifiers: string[];
}

/** Split on anything that is not a letter, digit or one of `._-:/@` inside a token. */
const TOKEN = /[\p{L}\p{N}](?:[\p{L}\p{N}._:/@-]*[\p{L}\p{N}])?/gu;
const IDENTIFIER = /\p{N}|[\p{L}\p{N}][._:/@-][\p{L}\p{N}]/u;

/** Reads a query: identifiers kept whole, every token also split into the words FTS5 indexes. */
export function parseQuery(text: string): ParsedQuery {
  const words: string[] = [];
  const identifiers: string[] = [];
  const seenWords = new Set<string>();
  for (const m of text.toLowerCase().matchAll(TOKEN)) {
    const token = m[0];
    if (IDENTIFIER.test(token) && !identifiers.includes(token)) identifiers.push(token);
    for (const w of token.split(/[^\p{L}\p{N}]+/u)) {
      if (w !== '' && !seenWords.has(w)) {
        seenWords.add(w);
        words.push(w);
      }
    }
  }
  return { words, identifiers };
}

/**
 * Function words of English questions ("when did we ..."): left out of the BM25 query, where they would
 * match nearly every summary by chance. Identifiers and the semantic side are not affected.
 */
const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a an the of to in on for and or is are was were be been being did do does done we i you he she it they ' +
    'that this these those with at by from as when what which who whom how why where our my your their its ' +
    'any some there here has have had me us them about into than then so if not no yes can could would should'
  ).split(' '),
);

/** The words BM25 looks for: the content words, or every word of a query made only of function words. */
export function contentWords(words: readonly string[]): string[] {
  // a lone letter is a fragment ("container's", "change(s)"), not a word
  const content = words.filter((w) => !STOPWORDS.has(w) && (w.length > 1 || /\p{N}/u.test(w)));
  return content.length > 0 ? content : [...words];
}

/** An FTS5 expression matching any content word (each quoted: query text never becomes FTS5 syntax). */
export function anyWordMatch(words: readonly string[]): string {
  return contentWords(words).map(quoted).join(' OR ');
}

/** An FTS5 expression matching one word. */
export function wordMatch(word: string): string {
  return quoted(word);
}

/** An FTS5 expression matching every identifier as a phrase of its words (then checked exactly by `containsExactly`). */
export function allIdentifiersMatch(identifiers: readonly string[]): string {
  return identifiers
    .map((id) =>
      quoted(
        id
          .split(/[^\p{L}\p{N}]+/u)
          .filter(Boolean)
          .join(' '),
      ),
    )
    .join(' AND ');
}

/** Whether the text holds the identifier as a whole token (case-insensitive), not inside a longer one. */
export function containsExactly(text: string, identifier: string): boolean {
  const lower = text.toLowerCase();
  for (let at = lower.indexOf(identifier); at >= 0; at = lower.indexOf(identifier, at + 1)) {
    const before = lower.slice(0, at);
    const after = lower.slice(at + identifier.length);
    if (
      !/[\p{L}\p{N}]$/u.test(before) &&
      !/^[\p{L}\p{N}]/u.test(after) &&
      !/^[._:/@-][\p{L}\p{N}]/u.test(after)
    ) {
      return true;
    }
  }
  return false;
}

function quoted(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}
