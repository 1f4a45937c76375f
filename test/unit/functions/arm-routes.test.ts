import { HttpRequest } from '@azure/functions';
import { checkArmRequest, withArmIds } from '../../../functions/arm-routes';
import type { ArmSettings } from '../../../src/config';

const REGISTRY_ID =
  '/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/myreg';

const request = (query: string, registryName = 'myreg', group = 'rg1', subscription = 'sub1'): HttpRequest =>
  new HttpRequest({
    method: 'GET',
    url: `https://refit.example/api${REGISTRY_ID}/runs${query}`,
    query: Object.fromEntries(new URLSearchParams(query)),
    params: { subscriptionId: subscription, resourceGroupName: group, registryName },
  });

const arm: ArmSettings = { registryName: 'myreg', subscriptionId: undefined, resourceGroup: undefined };

describe('functions/arm-routes', () => {
  describe('checkArmRequest', () => {
    it.each(['2019-04-01', '2019-06-01-preview', '2025-03-01-preview'])('accepts api-version %s', (v) => {
      expect(() => checkArmRequest(request(`?api-version=${v}`), arm)).not.toThrow();
    });

    it('accepts the registry name in any case, and any subscription and resource group unless configured', () => {
      expect(() => checkArmRequest(request('?api-version=2019-04-01', 'MyReg', 'x', 'y'), arm)).not.toThrow();
    });

    it.each<[string, HttpRequest, ArmSettings, number, string, string]>([
      [
        'no api-version',
        request(''),
        arm,
        400,
        'MissingApiVersionParameter',
        'The api-version query parameter (?api-version=) is required for all requests.',
      ],
      [
        'another api-version',
        request('?api-version=2023-01-01-preview'),
        arm,
        400,
        'InvalidApiVersionParameter',
        "The api-version '2023-01-01-preview' is invalid. The supported versions are '2019-04-01,2019-06-01-preview,2025-03-01-preview'.",
      ],
      [
        'another registry',
        request('?api-version=2019-04-01', 'other'),
        arm,
        404,
        'ResourceNotFound',
        "The Resource 'Microsoft.ContainerRegistry/registries/other' under resource group 'rg1' was not found",
      ],
      [
        'another subscription than the configured one',
        request('?api-version=2019-04-01'),
        { ...arm, subscriptionId: 'sub2' },
        404,
        'SubscriptionNotFound',
        "The subscription 'sub1' could not be found.",
      ],
      [
        'another resource group than the configured one',
        request('?api-version=2019-04-01'),
        { ...arm, resourceGroup: 'rg2' },
        404,
        'ResourceGroupNotFound',
        "Resource group 'rg1' could not be found.",
      ],
    ])('answers %s as ARM does', (_what, req, settings, status, code, message) => {
      expect(() => checkArmRequest(req, settings)).toThrow(
        expect.objectContaining({ status, code, message: expect.stringContaining(message) }),
      );
    });
  });

  describe('withArmIds', () => {
    it('gives a run or a task its ARM id', () => {
      const run = withArmIds({ status: 200, jsonBody: { id: '/runs/aa1', name: 'aa1' } }, REGISTRY_ID);
      expect(run).toEqual({ status: 200, jsonBody: { id: `${REGISTRY_ID}/runs/aa1`, name: 'aa1' } });
      const task = withArmIds({ status: 201, jsonBody: { id: '/tasks/t1' } }, REGISTRY_ID);
      expect(task.jsonBody).toEqual({ id: `${REGISTRY_ID}/tasks/t1` });
    });

    it("gives each resource of a list its ARM id and keeps the list's nextLink", () => {
      const page = withArmIds(
        { status: 200, jsonBody: { value: [{ id: '/runs/a' }, { id: '/runs/b' }], nextLink: 'https://n' } },
        REGISTRY_ID,
      );
      expect(page.jsonBody).toEqual({
        value: [{ id: `${REGISTRY_ID}/runs/a` }, { id: `${REGISTRY_ID}/runs/b` }],
        nextLink: 'https://n',
      });
    });

    it('leaves errors, bodies without ids and empty answers as they are', () => {
      const error = { status: 404, jsonBody: { error: { code: 'ResourceNotFound', message: 'x' } } };
      expect(withArmIds(error, REGISTRY_ID)).toEqual(error);
      const upload = { status: 200, jsonBody: { uploadUrl: 'u', relativePath: 'p' } };
      expect(withArmIds(upload, REGISTRY_ID)).toEqual(upload);
      expect(withArmIds({ status: 204 }, REGISTRY_ID)).toEqual({ status: 204 });
    });
  });
});
