import { ContainerInstanceManagementClient } from '@azure/arm-containerinstance';
import type { HttpClient } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/identity';
import { DefaultAzureCredential } from '@azure/identity';
import type { Config } from '../../config';

/** How Refit reaches Azure's control plane: the app's identity, and (tests only) an HTTP client of their own. */
export interface AzureAccess {
  readonly credential?: TokenCredential;
  /** Every request of the Azure SDKs goes to it instead of the network: a fake of the documented surface. */
  readonly httpClient?: HttpClient;
}

/**
 * The ACI management client of the aci executor, signed in as the function app's identity (DefaultAzureCredential:
 * its managed identity in Azure). It does not retry: a throttled create is admission control's to wait out, and the
 * reconcile sweep repeats every read and delete once a minute.
 */
export function aciClient(config: Config, azure: AzureAccess = {}): ContainerInstanceManagementClient {
  const aci = config.aci;
  if (!aci) throw new Error('the aci executor needs the REFIT_ACI_* settings');
  return new ContainerInstanceManagementClient(
    azure.credential ?? new DefaultAzureCredential(),
    aci.subscriptionId,
    {
      endpoint: aci.armEndpoint,
      retryOptions: { maxRetries: 0 },
      ...(azure.httpClient ? { httpClient: azure.httpClient } : {}),
    },
  );
}
