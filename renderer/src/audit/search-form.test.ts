import { describe, expect, it } from 'vitest';
import { EMPTY_SEARCH, partText, partWidth, searchRequest } from './search-form.js';

describe('searchRequest', () => {
  it('sends the trimmed words and only the filters that are set', () => {
    expect(searchRequest({ ...EMPTY_SEARCH, query: '  when did the web box start  ' })).toEqual({
      request: { query: 'when did the web box start', limit: 20 },
    });
    expect(searchRequest({ ...EMPTY_SEARCH, query: 'x', kind: 'apply', plugin: ' lxc ' }, 5)).toEqual({
      request: { query: 'x', limit: 5, kind: 'apply', plugin: 'lxc' },
    });
  });

  it('turns local times into ISO 8601 and keeps their order', () => {
    const r = searchRequest({
      ...EMPTY_SEARCH,
      query: 'x',
      since: '2026-01-02T03:04',
      until: '2026-01-03T00:00',
    });
    expect('request' in r && r.request.since).toBe(new Date('2026-01-02T03:04').toISOString());
    expect('request' in r && r.request.until).toBe(new Date('2026-01-03T00:00').toISOString());
    expect(
      searchRequest({ ...EMPTY_SEARCH, query: 'x', since: '2026-01-03T00:00', until: '2026-01-02T00:00' }),
    ).toEqual({
      error: '"since" must be before "until".',
    });
  });

  it('says what to fix instead of sending a request the core refuses', () => {
    expect(searchRequest({ ...EMPTY_SEARCH, query: '   ' })).toEqual({
      error: 'Type what you are looking for.',
    });
    expect(searchRequest({ ...EMPTY_SEARCH, query: 'x'.repeat(1001) })).toEqual({
      error: 'The search is longer than 1,000 characters.',
    });
    expect(searchRequest({ ...EMPTY_SEARCH, query: 'x', kind: 'deploy' })).toEqual({
      error: '"deploy" is not a kind of audit entry.',
    });
    expect(searchRequest({ ...EMPTY_SEARCH, query: 'x', since: 'yesterday' })).toEqual({
      error: 'The "since" time "yesterday" is not a date.',
    });
  });
});

describe('score parts', () => {
  it('prints a part or why it is missing, and bounds its bar', () => {
    expect(partText(0.4567, 'semantic')).toBe('0.46');
    expect(partText(null, 'lexical')).toBe('no word matched');
    expect(partText(null, 'semantic')).toBe('not embedded yet');
    expect([partWidth(null), partWidth(-0.2), partWidth(0.5), partWidth(1.7), partWidth(Number.NaN)]).toEqual(
      [0, 0, 50, 100, 0],
    );
  });
});
