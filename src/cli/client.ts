/** An error the CLI reports as one line and exit code 1. */
export class CliError extends Error {}

/** The HTTP client of the CLI: REFIT_URL (default http://127.0.0.1:7071) and REFIT_KEY. */
export class RefitClient {
  readonly baseUrl: string;

  constructor(
    url = process.env.REFIT_URL ?? 'http://127.0.0.1:7071',
    private readonly key = process.env.REFIT_KEY,
  ) {
    this.baseUrl = url.replace(/\/+$/, '');
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
      throw new CliError(`${message} (HTTP ${response.status})`);
    }
    return response;
  }

  /** A JSON request. */
  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.request(method, path, body)).json()) as T;
  }
}
