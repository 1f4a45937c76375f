import type { ServerResponse } from 'node:http';

/** Answers with the ARM error envelope, as the functions' own errors do. */
export function armError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify({ error: { code, message } }));
}
