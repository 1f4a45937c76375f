// Every server-side HTTP request to a URL Refit was given goes through here. The address check runs inside the
// connection itself (the socket's own DNS lookup, and the host when it is an address literal), so the address that is
// checked is the address that is connected to: a name that answers differently the second time (DNS rebinding) gets
// no second look-up to exploit. Redirects are followed here, one hop at a time, each through the same check.
import { createWriteStream } from 'node:fs';
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, buildConnector, request, type Dispatcher } from 'undici';
import { DestinationRefusedError, ResponseTooLargeError } from '../errors';
import { bareHost, refusal, type NetworkPolicy } from './address-policy';

/** Resolves a host name to every address it has (dns.lookup with `all`, or a stand-in in tests). */
export type ResolveAll = (hostname: string) => Promise<LookupAddress[]>;

/** The most bytes a response may have, and the setting that sets it (named in the error). */
export interface ByteLimit {
  readonly bytes: number;
  readonly setting: string;
}

/** One request: what to send, how long to wait and how much to read. */
export interface GuardedRequest {
  readonly method?: 'GET' | 'HEAD' | 'POST' | 'DELETE';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Stops the request (and the reading of its body), e.g. a run's cancel. */
  readonly signal?: AbortSignal;
  /** The whole exchange, body included, must end within this. */
  readonly timeoutMs?: number;
  /** The body is read up to this many bytes; one more is an error naming the setting. */
  readonly limit: ByteLimit;
}

/** Options of a {@link GuardedFetch}; the defaults suit production, tests inject the resolver. */
export interface GuardedFetchOptions {
  readonly resolve?: ResolveAll;
  /** How many redirects one request follows. */
  readonly maxRedirects?: number;
  /** How long a connection, and then the answer's headers and each pause in its body, may take. */
  readonly idleTimeoutMs?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const IDLE_TIMEOUT_MS = 30000;

/** The system resolver (dns.lookup, as sockets use it), every address of the name. */
export const systemResolve: ResolveAll = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A response whose body is read within its byte limit. */
export class GuardedResponse {
  constructor(
    /** The HTTP status. */
    readonly status: number,
    /** The URL that answered (after redirects). */
    readonly url: URL,
    private readonly headers: Dispatcher.ResponseData['headers'],
    private readonly body: Dispatcher.ResponseData['body'],
    private readonly limit: ByteLimit,
  ) {}

  /** A header's value (the first, when repeated). */
  header(name: string): string | undefined {
    const value = this.headers[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
  }

  private tooLarge(): ResponseTooLargeError {
    return new ResponseTooLargeError(
      `the answer of ${this.url.host} is larger than the limit of ${this.limit.bytes} bytes (${this.limit.setting})`,
      this.limit.setting,
    );
  }

  // Counted as it streams: a missing or lying Content-Length changes nothing.
  private async *chunks(): AsyncGenerator<Buffer> {
    const declared = Number(this.header('content-length'));
    if (Number.isFinite(declared) && declared > this.limit.bytes) {
      this.body.on('error', () => undefined).destroy();
      throw this.tooLarge();
    }
    let total = 0;
    for await (const chunk of this.body as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > this.limit.bytes) {
        this.body.destroy();
        throw this.tooLarge();
      }
      yield chunk;
    }
  }

  /** The body as UTF-8 text. */
  async text(): Promise<string> {
    const parts: Buffer[] = [];
    for await (const chunk of this.chunks()) parts.push(chunk);
    return Buffer.concat(parts).toString('utf8');
  }

  /** The body parsed as JSON. */
  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }

  /** Writes the body to a file. */
  async saveTo(file: string): Promise<void> {
    await pipeline(Readable.from(this.chunks()), createWriteStream(file));
  }

  /** Drops the body (frees the connection). */
  async discard(): Promise<void> {
    await this.body.dump().catch(() => undefined);
  }
}

/**
 * HTTP(S) requests under a {@link NetworkPolicy}: every connection (redirects too) goes only to an address the policy
 * allows, checked as the socket connects; a bounded number of redirects; bodies read within a byte limit.
 */
export class GuardedFetch {
  private readonly agent: Agent;
  private readonly maxRedirects: number;
  private closed: Promise<void> | undefined;

  constructor(
    /** Where its connections may go (git, which connects by itself, is checked against the same policy). */
    readonly policy: NetworkPolicy,
    options: GuardedFetchOptions = {},
  ) {
    const resolveAll = options.resolve ?? systemResolve;
    this.maxRedirects = options.maxRedirects ?? MAX_REDIRECTS;
    const idle = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    // net.connect calls this for a host name; the socket then connects to what it returns, which was checked here.
    const lookup = (hostname: string, lookupOptions: LookupOptions, callback: LookupCallback): void => {
      resolveAll(hostname).then(
        (addresses) => {
          const first = addresses[0];
          if (!first)
            return callback(
              Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }),
              [],
            );
          for (const a of addresses) {
            const why = refusal(a.address, policy, hostname);
            if (why) return callback(refused(`${hostname} (${why})`), []);
          }
          if (lookupOptions.all) callback(null, addresses);
          else callback(null, first.address, first.family);
        },
        (err: NodeJS.ErrnoException) => callback(err, []),
      );
    };
    const connect = buildConnector({ timeout: idle, lookup });
    this.agent = new Agent({
      headersTimeout: idle,
      bodyTimeout: idle,
      // An address literal is connected to without a look-up: it is checked here instead.
      connect: (connectOptions, callback) => {
        const host = bareHost(connectOptions.hostname);
        const why = isIP(host) ? refusal(host, policy, host) : undefined;
        if (why) return callback(refused(why), null);
        return connect(connectOptions, callback);
      },
    });
  }

  /** Sends a request, following redirects by hand; a refused destination throws {@link DestinationRefusedError}. */
  async fetch(url: string | URL, req: GuardedRequest): Promise<GuardedResponse> {
    const timeout = req.timeoutMs ? AbortSignal.timeout(req.timeoutMs) : undefined;
    const signals = [req.signal, timeout].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
    let current = new URL(url);
    let method: 'GET' | 'HEAD' | 'POST' | 'DELETE' = req.method ?? 'GET';
    let body = req.body;
    const headers: Record<string, string> = Object.fromEntries(
      Object.entries(req.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
    for (let hop = 0; ; hop++) {
      if (current.protocol !== 'http:' && current.protocol !== 'https:')
        throw refused(`only http and https URLs are fetched, not ${current.protocol}`);
      if (current.username || current.password) {
        // Credentials in the URL become a Basic header (undici does not send them from the URL).
        headers.authorization ??= `Basic ${Buffer.from(`${decodeURIComponent(current.username)}:${decodeURIComponent(current.password)}`).toString('base64')}`;
        current.username = '';
        current.password = '';
      }
      let res: Dispatcher.ResponseData;
      try {
        res = await request(current, {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
          dispatcher: this.agent,
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        throw unwrap(err, current, timeout, req.timeoutMs);
      }
      const location = res.headers.location;
      if (!REDIRECTS.has(res.statusCode) || typeof location !== 'string') {
        return new GuardedResponse(res.statusCode, current, res.headers, res.body, req.limit);
      }
      await res.body.dump().catch(() => undefined);
      if (hop >= this.maxRedirects)
        throw new Error(`${current.host} redirected more than ${this.maxRedirects} times`);
      const next = new URL(location, current);
      // As fetch does: credentials stay with their origin, and a 303 (or a 301/302 after a POST) becomes a GET.
      if (next.origin !== current.origin) {
        delete headers.authorization;
        delete headers.cookie;
      }
      if (res.statusCode === 303 || (method === 'POST' && res.statusCode !== 307 && res.statusCode !== 308)) {
        method = 'GET';
        body = undefined;
        delete headers['content-type'];
      }
      current = next;
    }
  }

  /** Closes the connections kept open for reuse. */
  close(): Promise<void> {
    this.closed ??= this.agent.close();
    return this.closed;
  }
}

function refused(why: string): DestinationRefusedError {
  return new DestinationRefusedError(`the destination is refused: ${why}`);
}

/** The refusal itself when undici wraps it; a plain message for a timeout. */
function unwrap(err: unknown, url: URL, timeout: AbortSignal | undefined, timeoutMs?: number): Error {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    if (e instanceof DestinationRefusedError) return e;
    e = e.cause;
  }
  if (timeout?.aborted) return new Error(`${url.host} did not answer within ${timeoutMs} ms`);
  return err instanceof Error ? err : new Error(String(err));
}
