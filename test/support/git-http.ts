import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GitServer } from './git';

/**
 * A real git smart-HTTP server on loopback: `git http-backend` run as a CGI behind a node http server, serving the
 * bare repositories of a {@link GitServer}. Every request needs HTTP Basic credentials whose password is `token`
 * (any user name, as GitHub and Azure DevOps take a token); the URLs it was asked for are kept in `requests`.
 */
export class GitHttpServer {
  readonly repos = new GitServer();
  readonly requests: { readonly url: string; readonly authorized: boolean }[] = [];
  private server: Server | undefined;
  port = 0;

  constructor(private readonly token: string) {}

  /** Starts the server on a free loopback port. */
  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** The http:// URL of a repository. */
  url(repo: string): string {
    return `http://127.0.0.1:${this.port}/${repo}.git`;
  }

  private authorized(req: IncomingMessage): boolean {
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1) === this.token;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const authorized = this.authorized(req);
    this.requests.push({ url: req.url ?? '', authorized });
    if (!authorized) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="refit-test"' }).end('credentials needed\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    // The CGI variables http-backend reads (see `git help http-backend`).
    const backend = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: this.repos.base,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.replace(/^\?/, ''),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: 'token',
        REMOTE_ADDR: '127.0.0.1',
        ...(req.headers['content-encoding']
          ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] }
          : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
      },
    });
    req.pipe(backend.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    backend.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else res.setHeader(name, value);
      }
      res.writeHead(status);
      res.write(head.subarray(end + 4));
    });
    backend.on('close', () => res.end());
  }
}
