// Validates the ARM traffic FakeAci recorded against the vendored ACI OpenAPI spec (test/fixtures/aci) with oav's
// programmatic TrafficValidator: oav 4.0.3's `validate-traffic` command crashes writing its HTML report
// (azure-mode.md §1.7). So a request the real service would refuse, or an answer the fake should not give, fails a test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { TrafficValidator } from 'oav/dist/lib/swaggerValidator/trafficValidator';
import type { RecordedPair } from './fake-aci';

/** The swagger of api-version 2023-05-01, the one `@azure/arm-containerinstance` 9.1.0 speaks. */
export const ACI_SPEC = join(
  __dirname,
  '../fixtures/aci/Microsoft.ContainerInstance/stable/2023-05-01/containerInstance.json',
);

/** One way a recorded request or response differs from the spec. */
export interface TrafficIssue {
  readonly operationId: string;
  readonly method: string;
  readonly url: string;
  /** oav's code, e.g. OBJECT_ADDITIONAL_PROPERTIES, INVALID_TYPE, or RUNTIME_ERROR when oav itself failed. */
  readonly code: string;
  readonly message: string;
  /** Where in the request or response body, as a JSON path (`$.properties.containers[0].image`). */
  readonly path: string;
  readonly source: 'request' | 'response' | 'runtime';
}

/**
 * Validates `pairs` against the ACI spec and returns every issue (none when all conform). Each call loads the spec
 * once (about half a second), so a test file calls it once with all its traffic. The polls of an Azure-AsyncOperation
 * URL are left out: that status resource is ARM's common LRO contract, not an operation of this spec.
 */
export async function validateAciTraffic(pairs: readonly RecordedPair[]): Promise<TrafficIssue[]> {
  const dir = mkdtempSync(join(tmpdir(), 'refit-aci-traffic-'));
  try {
    const written = new Map<string, RecordedPair>();
    pairs
      .filter((pair) => !/\/locations\/[^/]+\/operations\//i.test(new URL(pair.request.url).pathname))
      .forEach((pair, index) => {
        const file = `${String(index).padStart(5, '0')}.json`;
        written.set(file, pair);
        writeFileSync(
          join(dir, file),
          JSON.stringify({
            liveRequest: { ...pair.request, body: pair.request.body ?? null },
            liveResponse: {
              statusCode: String(pair.response.status),
              headers: pair.response.headers,
              body: pair.response.body ?? null,
            },
          }),
        );
      });
    if (written.size === 0) return [];
    const validator = new TrafficValidator(ACI_SPEC, dir);
    await validator.initialize();
    const results = await validator.validate();
    const issues: TrafficIssue[] = [];
    for (const result of results) {
      const pair = written.get(basename(result.payloadFilePath ?? ''));
      const where = {
        operationId: result.operationInfo?.operationId ?? 'unknown',
        method: pair?.request.method ?? '',
        url: pair?.request.url ?? result.payloadFilePath ?? '',
      };
      for (const error of result.errors ?? [])
        issues.push({
          ...where,
          code: error.code,
          message: error.message,
          path: error.jsonPathsInPayload?.[0] ?? '',
          source: error.issueSource ?? 'request',
        });
      for (const exception of result.runtimeExceptions ?? [])
        issues.push({
          ...where,
          code: exception.code,
          message: exception.message,
          path: '',
          source: 'runtime',
        });
    }
    // A request that matches no operation of the spec is only counted (and printed) by oav, never listed.
    if (validator.operationUndefinedResult > 0)
      issues.push({
        operationId: 'none',
        method: '',
        url: '',
        code: 'OPERATION_NOT_FOUND',
        message: `${validator.operationUndefinedResult} request(s) matched no operation of the spec`,
        path: '',
        source: 'runtime',
      });
    return issues;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
