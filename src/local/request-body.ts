import type { IncomingMessage } from 'node:http';

/**
 * Reads a request body, counting while it streams: a declared Content-Length over `limit` is refused before
 * reading, a chunked body as soon as it passes `limit`. What comes after is drained, not kept, so the host can
 * still answer 413 (with `connection: close`) instead of resetting the connection under the client.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve('too-large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.off('end', onEnd);
      req.resume();
      resolve('too-large');
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}
