import { checkUrlEscapes, malformedEscape } from '../../../src/http/url-escapes';

describe('http/url-escapes', () => {
  describe('malformedEscape', () => {
    it.each([
      ['plain', undefined],
      ['a%20b', undefined],
      ['%C3%A9', undefined],
      ['%zz', '%zz'],
      ['ab%', '%'],
      ['ab%4', '%4'],
      ['%ff', '%ff'],
      ['ok%20%c3', '%20%c3'],
    ])('%j → %j', (text, bad) => {
      expect(malformedEscape(text)).toBe(bad);
    });
  });

  describe('checkUrlEscapes', () => {
    it.each([
      ['https://h/api/runs/aa1?$filter=status%20eq%20%27Queued%27&$top=5', null],
      ['https://h/api/runs?a=b+c', null],
      ['https://h/api/runs/a%zz', "the path segment 'a%zz' has a malformed %-escape '%zz'"],
      ['https://h/api/runs?$filter=x%zz', "the query parameter '$filter' has a malformed %-escape '%zz'"],
      ['https://h/api/runs?%24top=%e9', "the query parameter '$top' has a malformed %-escape '%e9'"],
      ['https://h/api/runs?a%=1', "the query parameter 'a%' has a malformed %-escape '%=1'"],
    ])('%s', (url, refusal) => {
      const check = (): void => checkUrlEscapes(new URL(url));
      if (refusal === null) expect(check).not.toThrow();
      else expect(check).toThrow(refusal);
    });
  });
});
