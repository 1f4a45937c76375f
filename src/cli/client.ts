import { findStackKey, stackKeysFile } from '../local/api-key';

/** An error the CLI reports as one line and exit code 1. */
export class CliError extends Error {}

/** Where the CLI's API key came from, for a 401's message. */
type KeySource = 'REFIT_KEY' | 'file' | 'none';

/**
 * The HTTP client of the CLI: REFIT_URL (default http://127.0.0.1:7071) and the API key: REFIT_KEY when set,
 * otherwise the one `npm start` recorded for that URL in the user's config folder.
 */
export class RefitClient {
  readonly baseUrl: string;
  private readonly key: string | undefined;
  private readonly keySource: KeySource;

  constructor(url = process.env.REFIT_URL ?? 'http://127.0.0.1:7071', key = process.env.REFIT_KEY) {
    this.baseUrl = url.replace(/\/+$/, '');
    let found: string | undefined;
    try {
      found = key ? undefined : findStackKey(this.baseUrl);
    } catch {
      // REFIT_URL is not a URL: the request below says so
    }
    this.key = key || found;
    this.keySource = key ? 'REFIT_KEY' : found ? 'file' : 'none';
  }

  private unauthorized(message: string): string {
    const where = `Refit at ${this.baseUrl} refused`;
    if (this.keySource === 'REFIT_KEY') return `${where} the key in REFIT_KEY: ${message} (HTTP 401)`;
    if (this.keySource === 'file')
      return `${where} the key recorded for it in ${stackKeysFile()}: restart it with npm start to record its current key, or set REFIT_KEY (HTTP 401)`;
    return `${where} the request: it needs an API key, and none was found (REFIT_KEY is unset and ${stackKeysFile()} has none for ${this.baseUrl}; npm start records it there) (HTTP 401)`;
  }

  private url(path: string): string {
    return `${this.baseUrl}/api${path}`;
  }

  /** Sends a request; an ARM error envelope becomes a {@link CliError} with the server's message. */
  async request(method: string, path: string, body?: unknown): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.url(path), {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.key ? { 'x-functions-key': this.key } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new CliError(
        `cannot reach Refit at ${this.baseUrl} (${cause}): is it running? Start it with npm start, or set REFIT_URL`,
      );
    }
    if (!response.ok) {
      const text = await response.text();
      let message = text;
      try {
        const parsed = JSON.parse(text) as { error?: { message?: string } };
        message = parsed.error?.message ?? text;
      } catch {
        // not JSON: keep the text
      }
      if (response.status === 401) throw new CliError(this.unauthorized(message));
      throw new CliError(`${message} (HTTP ${response.status})`);
    }
    return response;
  }

  /** A JSON request. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.request(method, path, body)).json()) as T;
  }
}
