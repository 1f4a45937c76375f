import { z } from 'zod';
import { acrBody, acrRequest, unsupported } from '../../../src/http/acr-body';
import { parseWith } from '../../../src/http/validate';
import { withRunRequestType } from '../../../src/runs/schedule-run';

describe('acr-body', () => {
  describe('acrBody', () => {
    it('drops explicit nulls at any depth, as if absent', () => {
      expect(acrBody({ a: null, b: { c: null, d: 1 }, e: [{ f: null, g: 'x' }] })).toEqual({
        b: { d: 1 },
        e: [{ g: 'x' }],
      });
    });

    it('keeps nulls inside credentials, where ARM gives a null login server the meaning "remove"', () => {
      const body = {
        properties: { credentials: { customRegistries: { 'a.example.com': null }, sourceRegistry: null } },
      };
      expect(acrBody(body, true)).toEqual(body);
    });

    it("drops a resource's read-only properties, and only a resource's", () => {
      const exported = {
        id: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/r/tasks/t',
        name: 't',
        type: 'Microsoft.ContainerRegistry/registries/tasks',
        systemData: { createdBy: 'someone' },
        identity: { type: 'SystemAssigned', principalId: 'p', tenantId: 't' },
        properties: {
          provisioningState: 'Succeeded',
          creationDate: '2018-01-25T06:54:23.536Z',
          status: 'Enabled',
        },
      };
      expect(acrBody(exported, true)).toEqual({
        identity: { type: 'SystemAssigned' },
        properties: { status: 'Enabled' },
      });
      // A run request's `type` is its discriminator: never dropped.
      expect(acrBody({ type: 'DockerBuildRequest', name: 'x' })).toEqual({
        type: 'DockerBuildRequest',
        name: 'x',
      });
    });

    it('keeps a __proto__ key a plain property (a strict schema then refuses it by name)', () => {
      const out = acrBody(JSON.parse('{"__proto__": {"polluted": true}, "a": 1}')) as Record<string, unknown>;
      expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
      expect(Object.keys(out)).toEqual(['__proto__', 'a']);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('leaves a value nested deeper than any ACR body as it is, without walking it', () => {
      let deep: unknown = { x: null };
      for (let i = 0; i < 100_000; i++) deep = [deep];
      expect(() => acrBody(deep)).not.toThrow();
    });
  });

  describe('unsupported', () => {
    const schema = acrRequest(
      z.object({ agentPoolName: unsupported('agent pools are not supported') }).strict(),
    );

    it('accepts the property absent or null, and refuses any value with the reason', () => {
      expect(parseWith(schema, { agentPoolName: null })).toEqual({});
      expect(() => parseWith(schema, { agentPoolName: 'pool' })).toThrow(
        'agentPoolName: agent pools are not supported',
      );
    });
  });

  describe('withRunRequestType', () => {
    it("gives a body without type the one type whose required property it has (ACR's 2019 examples)", () => {
      expect(withRunRequestType({ dockerFilePath: 'Dockerfile' })).toMatchObject({
        type: 'DockerBuildRequest',
      });
      expect(withRunRequestType({ taskFilePath: 'acb.yaml' })).toMatchObject({ type: 'FileTaskRunRequest' });
      expect(withRunRequestType({ encodedTaskContent: 'eA==' })).toMatchObject({
        type: 'EncodedTaskRunRequest',
      });
      expect(withRunRequestType({ taskId: 'myTask' })).toMatchObject({ type: 'TaskRunRequest' });
    });

    it('leaves a given type, an ambiguous body and a body with none of them as they are', () => {
      expect(withRunRequestType({ type: 'FileTaskRunRequest', dockerFilePath: 'D' })).toEqual({
        type: 'FileTaskRunRequest',
        dockerFilePath: 'D',
      });
      expect(withRunRequestType({ dockerFilePath: 'D', taskFilePath: 'a.yaml' })).toEqual({
        dockerFilePath: 'D',
        taskFilePath: 'a.yaml',
      });
      expect(withRunRequestType({ sourceLocation: 'x' })).toEqual({ sourceLocation: 'x' });
      expect(withRunRequestType('text')).toBe('text');
    });
  });
});
