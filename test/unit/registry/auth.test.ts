import {
  credentialIdentity,
  MalformedChallengeError,
  parseWwwAuthenticate,
  TokenCache,
} from '../../../src/registry/auth';

describe('registry/auth', () => {
  describe('parseWwwAuthenticate', () => {
    it.each([
      [
        "Docker Hub's /v2/ challenge (no scope)",
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
        [
          {
            scheme: 'Bearer',
            params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io' },
          },
        ],
      ],
      [
        "GHCR's challenge with a scope",
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
        [
          {
            scheme: 'Bearer',
            params: {
              realm: 'https://ghcr.io/token',
              service: 'ghcr.io',
              scope: 'repository:user/image:pull',
            },
          },
        ],
      ],
      [
        'a comma inside a quoted value (RFC 6750 §3 scope)',
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
        [
          {
            scheme: 'Bearer',
            params: {
              realm: 'https://auth.docker.io/token',
              service: 'registry.docker.io',
              scope: 'repository:samalba/my-app:pull,push',
            },
          },
        ],
      ],
      [
        "ECR's Basic challenge",
        'Basic realm="https://1.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com"',
        [
          {
            scheme: 'Basic',
            params: { realm: 'https://1.dkr.ecr.eu-west-1.amazonaws.com/', service: 'ecr.amazonaws.com' },
          },
        ],
      ],
      [
        'two challenges in one header (Codeberg: Bearer and Basic)',
        'Bearer realm="https://codeberg.org/v2/token",service="container_registry",scope="*", Basic realm="Gitea Package API"',
        [
          {
            scheme: 'Bearer',
            params: { realm: 'https://codeberg.org/v2/token', service: 'container_registry', scope: '*' },
          },
          { scheme: 'Basic', params: { realm: 'Gitea Package API' } },
        ],
      ],
      [
        'RFC 7235 §4.1: a scheme without parameters, then one with token values and spaces around "="',
        'Newauth, Basic realm = simple , charset=UTF-8',
        [
          { scheme: 'Newauth', params: {} },
          { scheme: 'Basic', params: { realm: 'simple', charset: 'UTF-8' } },
        ],
      ],
      [
        'escaped quotes and backslashes in a quoted value; case kept in values, names lower-cased',
        'Bearer REALM="https://Example.com/T",error_description="a \\"quoted\\" \\\\ word"',
        [
          {
            scheme: 'Bearer',
            params: { realm: 'https://Example.com/T', error_description: 'a "quoted" \\ word' },
          },
        ],
      ],
      [
        'a token68 challenge followed by a parameter challenge',
        'Negotiate abc+/def==, Bearer realm="r"',
        [
          { scheme: 'Negotiate', params: {}, token68: 'abc+/def==' },
          { scheme: 'Bearer', params: { realm: 'r' } },
        ],
      ],
      [
        'empty list elements (RFC 7230 §7)',
        ', Basic realm="a",, ,Bearer realm="b",',
        [
          { scheme: 'Basic', params: { realm: 'a' } },
          { scheme: 'Bearer', params: { realm: 'b' } },
        ],
      ],
    ])('parses %s', (_name, header, expected) => {
      expect(parseWwwAuthenticate(header)).toEqual(expected);
    });

    it.each([
      ['an empty header', '', 'it has no challenge'],
      ['an unclosed quoted value', 'Bearer realm="https://x/token', 'a quoted value is not closed'],
      ['a parameter without a value', 'Bearer service="x",realm=', "the parameter 'realm' has no value"],
      ['a repeated parameter', 'Bearer realm="a",realm="b"', "the parameter 'realm' appears twice"],
      ['a missing comma between parameters', 'Bearer realm="a" service="b"', "expected ',' at character 18"],
      ['a header that starts with a parameter', '="x"', 'expected an auth scheme at character 1'],
    ])('throws a MalformedChallengeError for %s', (_name, header, why) => {
      const parse = (): unknown => parseWwwAuthenticate(header);

      expect(parse).toThrow(MalformedChallengeError);
      expect(parse).toThrow(why);
    });
  });

  describe('TokenCache', () => {
    const who = credentialIdentity({ username: 'u', password: 'secret' });

    it('keeps a token until expires_in has passed (less a margin), then forgets it', () => {
      let now = 1_000_000;
      const cache = new TokenCache(() => now);
      cache.set('r', 's', 'repository:a:pull', who, { token: 't', expiresIn: 300 });

      now += 290_000;
      expect(cache.get('r', 's', 'repository:a:pull', who)).toBe('t');
      now += 10_000;
      expect(cache.get('r', 's', 'repository:a:pull', who)).toBeUndefined();
    });

    it('counts from issued_at, and uses 60 s when expires_in is absent', () => {
      let now = Date.parse('2026-01-01T00:00:30Z');
      const cache = new TokenCache(() => now);
      cache.set('r', 's', 'x', who, { token: 't', issuedAt: '2026-01-01T00:00:00Z' });

      expect(cache.get('r', 's', 'x', who)).toBe('t');
      now = Date.parse('2026-01-01T00:00:56Z');
      expect(cache.get('r', 's', 'x', who)).toBeUndefined();
    });

    it('keeps tokens apart per registry, service, scope and credential', () => {
      const cache = new TokenCache(() => 0);
      cache.set('r', 's', 'x', who, { token: 't' });

      expect(cache.get('r2', 's', 'x', who)).toBeUndefined();
      expect(cache.get('r', 's2', 'x', who)).toBeUndefined();
      expect(cache.get('r', 's', 'y', who)).toBeUndefined();
      expect(cache.get('r', 's', 'x', credentialIdentity(undefined))).toBeUndefined();
      expect(cache.get('r', 's', 'x', who)).toBe('t');
    });
  });

  describe('credentialIdentity', () => {
    it('does not contain the password', () => {
      expect(credentialIdentity({ username: 'u', password: 'hunter2' })).not.toContain('hunter2');
    });
  });
});
