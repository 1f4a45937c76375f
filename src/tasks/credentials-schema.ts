import { z } from 'zod';
import { shown } from '../http/validate';

const secretObject = z
  .object({
    type: z
      .enum(['Opaque', 'Vaultsecret'], {
        error: (i) => `'${shown(i.input)}' is not a secret type: use Opaque or Vaultsecret`,
      })
      .default('Opaque'),
    value: z.string().optional(),
  })
  .strict();

const customRegistryCredentials = z
  .object({
    userName: secretObject.nullish(),
    password: secretObject.nullish(),
    identity: z.string().nullish(),
  })
  .strict();

/**
 * ACR's Credentials: how runs log in to the home registry (sourceRegistry) and to other registries
 * (customRegistries, keyed by login server). In a Tasks_Update or a run request, a login server set to null is
 * removed (ARM's merge).
 */
export const credentialsSchema = z
  .object({
    sourceRegistry: z
      .object({
        loginMode: z
          .enum(['None', 'Default'], {
            error: (i) => `'${shown(i.input)}' is not a login mode: use None or Default`,
          })
          .optional(),
        identity: z.string().nullish(),
      })
      .strict()
      .nullish(),
    customRegistries: z.record(z.string(), customRegistryCredentials.nullable()).nullish(),
  })
  .strict();

/** Credentials as a request gives them. */
export type CredentialsBody = z.output<typeof credentialsSchema>;
