// What registries answer, checked once at the boundary. Permissive (third-party payloads): the fields Refit reads are
// checked, everything else is kept as it came (annotations, artifactType, subject, fields of later spec versions).
import { z } from 'zod';

/** The media types of a multi-platform index. */
export const INDEX_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
] as const;
/** The media types of a single-platform image manifest. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

const digest = z.string().regex(/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/, 'not a digest');

/** A content descriptor (OCI image-spec descriptor.md). */
export const descriptorSchema = z.looseObject({
  mediaType: z.string(),
  digest,
  size: z.number().int().nonnegative(),
});

/** A platform as an index names it; `unknown/unknown` marks attestations, not images. */
export const platformSchema = z.looseObject({
  os: z.string(),
  architecture: z.string(),
  variant: z.string().optional(),
  'os.version': z.string().optional(),
});

/** An OCI image index or a Docker manifest list. */
export const imageIndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.enum(INDEX_MEDIA_TYPES).optional(),
  manifests: z.array(descriptorSchema.extend({ platform: platformSchema.optional() })),
});
/** An OCI image index or a Docker manifest list. */
export type ImageIndex = z.infer<typeof imageIndexSchema>;

/** An OCI image manifest or a Docker v2 schema 2 manifest. */
export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.enum(MANIFEST_MEDIA_TYPES).optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});
/** An OCI image manifest or a Docker v2 schema 2 manifest. */
export type ImageManifest = z.infer<typeof imageManifestSchema>;

/** An image's config blob (OCI image-spec config.md): the run configuration Refit reads of it. */
export const imageConfigSchema = z.looseObject({
  config: z
    .looseObject({
      Entrypoint: z.array(z.string()).nullable().optional(),
      Cmd: z.array(z.string()).nullable().optional(),
      WorkingDir: z.string().optional(),
    })
    .nullable()
    .optional(),
});

/**
 * The token service's answer (distribution docs/spec/auth/token.md): `token` or `access_token` (equivalent),
 * `expires_in` in seconds, `issued_at` in RFC 3339.
 */
export const tokenResponseSchema = z
  .looseObject({
    token: z.string().min(1).optional(),
    access_token: z.string().min(1).optional(),
    expires_in: z.number().positive().optional(),
    issued_at: z.string().optional(),
  })
  .refine((t) => t.token !== undefined || t.access_token !== undefined, 'has neither token nor access_token')
  .transform((t) => ({
    token: (t.token ?? t.access_token)!,
    expiresIn: t.expires_in,
    issuedAt: t.issued_at,
  }));
/** A token answer, normalised: the token and how long it lives. */
export type TokenResponse = z.infer<typeof tokenResponseSchema>;

/** ACR's answer to `POST /oauth2/exchange` (Azure/acr docs/AAD-OAuth.md; data-plane spec AcrRefreshToken). */
export const acrRefreshTokenSchema = z.looseObject({ refresh_token: z.string().min(1) });

/** ACR's error body (data-plane spec AcrErrors): `{"errors":[{"code","message","detail"}]}`. */
export const acrErrorsSchema = z.looseObject({
  errors: z.array(z.looseObject({ code: z.string().optional(), message: z.string().optional() })).min(1),
});
