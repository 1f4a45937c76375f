import { registryFailure } from '../../../../src/executors/local/registry-failures';

describe('registry-failures', () => {
  describe('registryFailure', () => {
    it('names the registry that refused a pull for lack of credentials', () => {
      const output = [
        'STEP 1/2: FROM 127.0.0.1:18999/priv/base:1',
        'Trying to pull 127.0.0.1:18999/priv/base:1...',
        'Error: creating build container: initializing source docker://127.0.0.1:18999/priv/base:1: reading manifest 1 in 127.0.0.1:18999/priv/base: unauthorized: authentication required',
      ].join('\n');
      expect(registryFailure(output)).toBe('127.0.0.1:18999 refused the request: unauthorized');
    });

    it('names a registry that answers over plain HTTP only', () => {
      const output =
        'Error: creating build container: initializing source docker://registry.internal:5000/base:1: pinging container registry registry.internal:5000: Get "https://registry.internal:5000/v2/": http: server gave HTTP response to HTTPS client';
      expect(registryFailure(output)).toBe(
        'registry.internal:5000 answers over plain HTTP only: list it in REFIT_INSECURE_REGISTRIES to use it',
      );
    });

    it('names a push refused for lack of credentials', () => {
      const output =
        'Error: pushing image "app:1" to "docker://ghcr.io/org/app:1": writing blob: initiating layer upload to /v2/org/app/blobs/uploads/ in ghcr.io: requested access to the resource is denied';
      expect(registryFailure(output)).toBe('ghcr.io refused the request: unauthorized');
    });

    it('says nothing of a failure that is not the registry', () => {
      expect(
        registryFailure('error building at STEP "RUN false": exit status 1\nError: building at STEP'),
      ).toBe(undefined);
    });
  });
});
