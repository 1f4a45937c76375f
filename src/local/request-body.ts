import type { IncomingMessage } from 'node:http';

/** How much of a refused body is read and thrown away before the connection is cut instead. */
const DRAIN_BYTES = 16 * 1024 * 1024;

/**
 * Reads a request body, counting while it streams: nothing past `limit` is kept, whether a Content-Length was
 * sent or not. A refused body is read to its end and dropped (up to 16 MiB more, then the connection is cut)
 * before the caller answers 413 and closes: a server that stops reading makes the client's write fail before it
 * sees the answer, and a connection left with half a body on it is not fit for another request.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return drain(req);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', reject);
      resolve(drain(req));
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}

function drain(req: IncomingMessage): Promise<'too-large'> {
  return new Promise((resolve) => {
    let dropped = 0;
    req.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      if (dropped <= DRAIN_BYTES) return;
      req.socket.destroy();
      resolve('too-large');
    });
    req.once('end', () => resolve('too-large'));
    req.once('error', () => resolve('too-large'));
    req.once('close', () => resolve('too-large'));
    req.resume();
  });
}
