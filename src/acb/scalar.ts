/** A YAML scalar as text (a map or list as JSON, for error messages). */
export function scalar(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v.toString();
  return v === undefined || v === null ? '' : JSON.stringify(v);
}
