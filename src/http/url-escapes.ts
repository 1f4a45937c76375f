import { ValidationError } from '../errors';

/** The first %-escape of `text` that does not decode (not two hex digits, or not UTF-8), if any. */
export function malformedEscape(text: string): string | undefined {
  try {
    decodeURIComponent(text);
    return undefined;
  } catch {
    const bad = /%(?![0-9a-f]{2})/i.exec(text);
    if (bad) return text.slice(bad.index, bad.index + 3);
    // Every escape is two hex digits, but some run of them is not UTF-8 (`%ff`): name that run.
    for (const [run] of text.matchAll(/(%[0-9a-f]{2})+/gi)) {
      try {
        decodeURIComponent(run);
      } catch {
        return run.slice(0, 24);
      }
    }
    return text.slice(0, 24);
  }
}

const RULE = 'a % must start two hex digits that decode to UTF-8';

/**
 * Throws a {@link ValidationError} naming the path segment or query parameter whose %-escape does not decode. The
 * hosts would otherwise pass such text on half-decoded (URLSearchParams keeps `%zz` as it is), and a handler would
 * fail on text that is not what the client meant.
 */
export function checkUrlEscapes(url: URL): void {
  for (const segment of url.pathname.split('/')) {
    const bad = malformedEscape(segment);
    if (bad !== undefined)
      throw new ValidationError(
        `the path segment '${segment.slice(0, 100)}' has a malformed %-escape '${bad}': ${RULE}`,
      );
  }
  for (const pair of url.search.slice(1).split('&')) {
    const bad = malformedEscape(pair.replace(/\+/g, ' '));
    if (bad === undefined) continue;
    const raw = pair.split('=')[0]!;
    const name = (malformedEscape(raw) === undefined ? decodeURIComponent(raw) : raw).slice(0, 100);
    throw new ValidationError(
      `the query parameter '${name}' has a malformed %-escape '${bad}': ${RULE}`,
      name,
    );
  }
}
