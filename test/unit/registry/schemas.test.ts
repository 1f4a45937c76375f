import { imageIndexSchema, imageManifestSchema, tokenResponseSchema } from '../../../src/registry/schemas';

const d = (n: string): string => `sha256:${n.repeat(64)}`;

describe('registry/schemas', () => {
  describe('imageIndexSchema', () => {
    it('reads an OCI index with an attestation entry, keeping fields it does not know', () => {
      const index = {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: d('a'),
            size: 480,
            platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
          },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: d('b'),
            size: 566,
            annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
            platform: { os: 'unknown', architecture: 'unknown' },
          },
        ],
        annotations: { x: 'y' },
      };

      const parsed = imageIndexSchema.parse(index);

      expect(parsed.manifests.map((m) => m.platform?.architecture)).toEqual(['arm64', 'unknown']);
      expect(parsed.annotations).toEqual({ x: 'y' });
    });

    it('reads a Docker manifest list with a Windows os.version', () => {
      const parsed = imageIndexSchema.parse({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests: [
          {
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
            digest: d('c'),
            size: 1,
            platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2340' },
          },
        ],
      });

      expect(parsed.manifests[0]?.platform?.['os.version']).toBe('10.0.20348.2340');
    });

    it.each([
      ['no manifests', { schemaVersion: 2 }],
      [
        'a digest that is not one',
        { schemaVersion: 2, manifests: [{ mediaType: 'x', digest: 'latest', size: 1 }] },
      ],
      ['schema version 1', { schemaVersion: 1, manifests: [] }],
      [
        'a manifest media type',
        { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', manifests: [] },
      ],
    ])('refuses an index with %s', (_name, body) => {
      expect(imageIndexSchema.safeParse(body).success).toBe(false);
    });
  });

  describe('imageManifestSchema', () => {
    it('reads an image manifest and refuses one without a config', () => {
      const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('e'), size: 2 };

      expect(imageManifestSchema.parse({ schemaVersion: 2, config, layers: [] }).config.digest).toBe(d('e'));
      expect(imageManifestSchema.safeParse({ schemaVersion: 2, layers: [] }).success).toBe(false);
    });
  });

  describe('tokenResponseSchema', () => {
    it.each([
      [
        'token',
        { token: 't', expires_in: 300, issued_at: '2026-01-01T00:00:00Z' },
        { token: 't', expiresIn: 300, issuedAt: '2026-01-01T00:00:00Z' },
      ],
      ['access_token only', { access_token: 'a' }, { token: 'a', expiresIn: undefined, issuedAt: undefined }],
      [
        'both (token wins; they are equivalent)',
        { token: 't', access_token: 'a' },
        { token: 't', expiresIn: undefined, issuedAt: undefined },
      ],
    ])('reads an answer with %s', (_name, body, expected) => {
      expect(tokenResponseSchema.parse(body)).toEqual(expected);
    });

    it.each([
      ['no token', { expires_in: 60 }],
      ['an empty token', { token: '' }],
      ['a non-positive expires_in', { token: 't', expires_in: 0 }],
    ])('refuses an answer with %s', (_name, body) => {
      expect(tokenResponseSchema.safeParse(body).success).toBe(false);
    });
  });
});
