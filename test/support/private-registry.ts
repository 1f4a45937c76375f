// Registries on loopback for the tests of other registries than the home one: the CNCF registry with htpasswd or token auth, a
// token server of its own (distribution's token auth: a JWT signed by a key whose certificate the registry trusts),
// and a fault-injecting proxy in front of one.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { runProcess } from '../../src/process/run-process';
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { busyboxBase, untilTrue } from './api';

/** The test's first port plus `n` (REFIT_TEST_PORT_OFFSET moves them, so two checkouts can share a machine). */
export function testPort(n: number): number {
  return 18000 + Number(process.env.REFIT_TEST_PORT_OFFSET ?? '0') + n;
}

/** A running CNCF registry; `stop` ends it. */
export interface RunningRegistry {
  readonly host: string;
  stop(): Promise<void>;
}

/** How a registry authenticates: htpasswd (a bcrypt file) or token (a token server's JWTs). */
export type RegistryAuth =
  | { readonly htpasswd: { readonly user: string; readonly password: string } }
  | {
      readonly token: {
        readonly realm: string;
        readonly service: string;
        readonly issuer: string;
        readonly cert: string;
      };
    };

/**
 * Starts `docker-registry serve` on `port` (open when `auth` is null) with its data in `dir/storage` (shared when two
 * registries get one dir); deletes are enabled unless `deleteEnabled` is false (the registry then answers 405).
 */
export async function startRegistry(
  dir: string,
  name: string,
  port: number,
  auth: RegistryAuth | null,
  options: { readonly deleteEnabled?: boolean } = {},
): Promise<RunningRegistry> {
  mkdirSync(join(dir, 'storage'), { recursive: true });
  const lines = [
    'version: 0.1',
    'log: { level: error, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'storage'))} }, delete: { enabled: ${options.deleteEnabled ?? true} } }`,
    `http: { addr: "127.0.0.1:${port}" }`,
  ];
  if (!auth) {
    // Open, as a registry that never calls Refit and needs no credentials.
  } else if ('htpasswd' in auth) {
    const file = join(dir, `${name}.htpasswd`);
    writeFileSync(file, execFileSync('htpasswd', ['-Bbn', auth.htpasswd.user, auth.htpasswd.password]));
    lines.push(`auth: { htpasswd: { realm: refit-test, path: ${JSON.stringify(file)} } }`);
  } else {
    const t = auth.token;
    lines.push(
      `auth: { token: { realm: "${t.realm}", service: "${t.service}", issuer: "${t.issuer}", rootcertbundle: ${JSON.stringify(t.cert)} } }`,
    );
  }
  const config = join(dir, `${name}.yml`);
  writeFileSync(config, lines.join('\n') + '\n');
  const child: ChildProcess = spawn('docker-registry', ['serve', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const host = `127.0.0.1:${port}`;
  try {
    await untilTrue(
      `the registry on ${host} answering`,
      async () => {
        // An exit (a port in use, a bad configuration) fails at once, with what the registry said.
        if (child.exitCode !== null) throw new Error(`the registry exited: ${stderr}`);
        const res = await fetch(`http://${host}/v2/`).catch(() => undefined);
        return res?.status === (auth ? 401 : 200);
      },
      15000,
    );
  } catch (err) {
    child.kill();
    throw err;
  }
  return {
    host,
    stop: async () => {
      if (child.exitCode === null) child.kill();
      await exited;
    },
  };
}

/** A key and its self-signed certificate, made with openssl (node:crypto makes keys but not certificates). */
export function makeSigningCert(dir: string): { key: string; cert: string } {
  const key = join(dir, 'token.key');
  const cert = join(dir, 'token.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=refit-test-token',
    ],
    { stdio: 'ignore' },
  );
  return { key, cert };
}

/** A token server as the CNCF registry's token auth expects; counts the requests it answers. */
export interface TokenServer {
  readonly realm: string;
  /** Every request it received: the scope asked for and whether it came with the right credentials. */
  readonly requests: { scope: string | null; authenticated: boolean }[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/**
 * Grants every action asked for to `user:password` (Basic), nothing to anonymous requests, and answers 401 to wrong
 * credentials. The JWT carries the certificate in `x5c`, which the registry checks against its rootcertbundle.
 */
export async function startTokenServer(
  port: number,
  opts: {
    issuer: string;
    service: string;
    user: string;
    password: string;
    key: string;
    cert: string;
    expiresIn: number;
  },
): Promise<TokenServer> {
  const key = createPrivateKey(readFileSync(opts.key));
  const der = new X509Certificate(readFileSync(opts.cert)).raw;
  const requests: TokenServer['requests'] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scope = url.searchParams.get('scope');
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    const given = basic ? Buffer.from(basic[1]!, 'base64').toString() : null;
    const authenticated = given === `${opts.user}:${opts.password}`;
    requests.push({ scope, authenticated });
    if (given !== null && !authenticated) {
      res.statusCode = 401;
      return res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED' }] }));
    }
    const access = [];
    const m = scope ? /^repository:([^:]+):(.+)$/.exec(scope) : null;
    if (m && authenticated) access.push({ type: 'repository', name: m[1], actions: m[2]!.split(',') });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = {
      iss: opts.issuer,
      sub: authenticated ? opts.user : '',
      aud: url.searchParams.get('service') ?? opts.service,
      exp: now + opts.expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signing}.${b64url(sign('sha256', Buffer.from(signing), key))}`;
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({ token, expires_in: opts.expiresIn, issued_at: new Date(now * 1000).toISOString() }),
    );
  });
  await listen(server, port);
  return { realm: `http://127.0.0.1:${port}/token`, requests, stop: () => close(server) };
}

/** What the fault proxy does to manifest requests: pass them on, answer a fault, or pass them on late. */
export type Fault = 'none' | { status: number; retryAfter?: string } | 'drop-digest' | { delayMs: number };

/** A proxy in front of a registry that injects faults into manifest answers. */
export interface FaultProxy {
  readonly host: string;
  fault: Fault;
  /** Every manifest request it received: method, path, when (epoch ms), and the fault it answered, if any. */
  readonly manifestRequests: { method: string; path: string; at: number; faulted: boolean }[];
  stop(): Promise<void>;
}

/**
 * Starts a proxy on `port` to `target` (host:port). `intercept` answers the requests it takes (returning true) itself,
 * e.g. ACR's `/oauth2/exchange` in front of a CNCF registry.
 */
export async function startFaultProxy(
  port: number,
  target: string,
  intercept?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<FaultProxy> {
  const proxy: FaultProxy = {
    host: `127.0.0.1:${port}`,
    fault: 'none',
    manifestRequests: [],
    stop: () => close(server),
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (intercept?.(req, res)) return;
    const fault = proxy.fault;
    if (req.url?.includes('/manifests/'))
      proxy.manifestRequests.push({
        method: req.method ?? '',
        path: req.url,
        at: Date.now(),
        faulted: typeof fault === 'object' && 'status' in fault,
      });
    if (req.url?.includes('/manifests/') && typeof fault === 'object' && 'status' in fault) {
      res.statusCode = fault.status;
      if (fault.retryAfter) res.setHeader('retry-after', fault.retryAfter);
      return res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}');
    }
    const [hostname, targetPort] = target.split(':');
    const late = req.url?.includes('/manifests/') && typeof fault === 'object' && 'delayMs' in fault;
    const upstream = request(
      {
        hostname,
        port: Number(targetPort),
        path: req.url,
        method: req.method,
        headers: { ...req.headers, host: target },
      },
      (up) => {
        const headers = { ...up.headers };
        if (fault === 'drop-digest' && req.url?.includes('/manifests/'))
          delete headers['docker-content-digest'];
        const answer = (): void => {
          if (res.destroyed) return void up.resume();
          res.writeHead(up.statusCode ?? 502, headers);
          up.pipe(res);
        };
        if (late) setTimeout(answer, fault.delayMs);
        else answer();
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await listen(server, port);
  return proxy;
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** What a push made: the digest the tag points at, and each platform's manifest digest. */
export interface PushedImage {
  readonly digest: string;
  readonly platforms: Record<string, string>;
}

/**
 * Pushes a small image (a config blob and no layers per platform; an index when there are several) through the
 * registry API with Basic credentials, as any client does: blob uploads, then manifests, then the tag.
 */
export async function pushImage(
  host: string,
  repository: string,
  tag: string,
  credentials: { user: string; password: string },
  platforms: string[],
  salt: string,
): Promise<PushedImage> {
  const auth = {
    authorization: `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`,
  };
  const base = `http://${host}/v2/${repository}`;
  const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const putManifest = async (reference: string, type: string, body: Buffer): Promise<void> => {
    const res = await fetch(`${base}/manifests/${reference}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': type },
      body,
    });
    if (res.status !== 201) throw new Error(`manifest PUT answered ${res.status}: ${await res.text()}`);
  };
  const manifests: { digest: string; size: number; platform: { os: string; architecture: string } }[] = [];
  for (const platform of platforms) {
    const [os, architecture] = platform.split('/') as [string, string];
    const config = Buffer.from(
      JSON.stringify({ architecture, os, rootfs: { type: 'layers', diff_ids: [] }, salt }),
    );
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST', headers: auth });
    if (start.status !== 202) throw new Error(`blob upload answered ${start.status}`);
    const location = new URL(start.headers.get('location')!, `http://${host}`);
    location.searchParams.set('digest', digestOf(config));
    const put = await fetch(location, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: config,
    });
    if (put.status !== 201) throw new Error(`blob PUT answered ${put.status}`);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: digestOf(config),
          size: config.length,
        },
        layers: [],
      }),
    );
    const digest = digestOf(manifest);
    await putManifest(platforms.length === 1 ? tag : digest, OCI_MANIFEST, manifest);
    manifests.push({ digest, size: manifest.length, platform: { os, architecture } });
  }
  if (platforms.length === 1)
    return { digest: manifests[0]!.digest, platforms: { [platforms[0]!]: manifests[0]!.digest } };
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: manifests.map((m) => ({ mediaType: OCI_MANIFEST, ...m })),
    }),
  );
  await putManifest(tag, OCI_INDEX, index);
  return {
    digest: digestOf(index),
    platforms: Object.fromEntries(
      manifests.map((m) => [`${m.platform.os}/${m.platform.architecture}`, m.digest]),
    ),
  };
}

/** Runs buildah on a storage of the test's own in `root` (the stack's is untouched); fails on a non-zero exit. */
export async function buildah(root: string, args: string[]): Promise<void> {
  let output = '';
  const result = await runProcess(
    'buildah',
    ['--root', join(root, 'storage'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', ...args],
    { onOutput: (c) => (output += c) },
  );
  if (result.code !== 0) throw new Error(`buildah ${args.join(' ')} failed: ${output}`);
}

/**
 * Copies the stack's busybox base (a shell, FROM scratch) to each of `targets` (`host/repository:tag` on a registry on
 * loopback), with buildah on the test's storage in `root`, logging in as `login` when the registry needs one.
 */
export async function copyBusybox(
  root: string,
  targets: readonly string[],
  login?: { readonly username: string; readonly password: string },
): Promise<void> {
  await buildah(root, ['pull', '--tls-verify=false', `docker://${busyboxBase()}`]);
  for (const target of targets)
    await buildah(root, [
      'push',
      '--tls-verify=false',
      ...(login ? ['--creds', `${login.username}:${login.password}`] : []),
      busyboxBase(),
      `docker://${target}`,
    ]);
}
