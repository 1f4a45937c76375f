import { AcbError } from './errors';

/**
 * The largest task, values or alias file Refit parses. The yaml library spends tens of microseconds per character
 * on malformed flow collections (`{{ "a" }}` repeated), so a body-sized file would hold the host for seconds; real
 * acb files are a few KiB.
 */
export const MAX_YAML_BYTES = 64 * 1024;

/** Refuses a YAML text larger than {@link MAX_YAML_BYTES}, naming it. */
export function checkYamlSize(text: string, what: string): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_YAML_BYTES)
    throw new AcbError(`${what} is ${bytes} bytes; the limit is ${MAX_YAML_BYTES} (64 KiB)`);
}
