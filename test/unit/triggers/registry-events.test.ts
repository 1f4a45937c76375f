import {
  distributionPushes,
  dockerHubPush,
  harborPushes,
  imagePushOfGridEvent,
} from '../../../src/triggers/registry-events';

const digest = 'sha256:3013b0d761d4bad6ff16dd2805887a2f2c3fc140d6206086698b5c3e44e0f7fe';
// The real ImagePushed capture from the Azure SDK's test data (../shared/reference/events.md §1.3).
const acrData = {
  id: 'b734f818-f923-472b-aec8-50995013fd7c',
  timestamp: '2020-07-09T00:29:38.143428094Z',
  action: 'push',
  target: {
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    size: 1152,
    digest,
    length: 1152,
    repository: 'ubuntu',
    tag: '18.04',
  },
  request: {
    id: '6d472f8e-8366-408a-a248-fb76348c91a0',
    host: 'matellcr.azurecr.io',
    method: 'PUT',
    useragent: 'docker/19.03.8',
  },
};
const topic =
  '/subscriptions/faa080af-c1d8-40ad-9cce-e1a450ca5b57/resourceGroups/matell-rg/providers/Microsoft.ContainerRegistry/registries/matellcr';
const expected = {
  source: 'eventgrid',
  eventId: 'b734f818-f923-472b-aec8-50995013fd7c',
  registry: 'matellcr.azurecr.io',
  repository: 'ubuntu',
  tag: '18.04',
  digest,
  timestamp: '2020-07-09T00:29:38.143428094Z',
};

describe('registry-events', () => {
  describe('imagePushOfGridEvent', () => {
    it.each([
      [
        'the Event Grid schema',
        {
          id: acrData.id,
          topic,
          subject: 'ubuntu:18.04',
          eventType: 'Microsoft.ContainerRegistry.ImagePushed',
          data: acrData,
          dataVersion: '1.0',
        },
      ],
      [
        'data as a JSON string, as ACR sends it',
        {
          id: acrData.id,
          topic,
          eventType: 'Microsoft.ContainerRegistry.ImagePushed',
          data: JSON.stringify(acrData),
        },
      ],
      [
        'the CloudEvents 1.0 schema',
        {
          id: acrData.id,
          source: topic,
          specversion: '1.0',
          type: 'Microsoft.ContainerRegistry.ImagePushed',
          data: acrData,
        },
      ],
    ])('reads a push from %s', (_what, event) => {
      expect(imagePushOfGridEvent(event)).toEqual(expected);
    });

    it('takes the registry from the topic when the request host is missing', () => {
      const { request: _request, ...noRequest } = acrData;
      expect(
        imagePushOfGridEvent({
          id: 'x',
          topic,
          eventType: 'Microsoft.ContainerRegistry.ImagePushed',
          data: noRequest,
        })?.registry,
      ).toBe('matellcr.azurecr.io');
    });

    it.each([
      [
        'a delete',
        {
          eventType: 'Microsoft.ContainerRegistry.ImageDeleted',
          topic,
          data: { ...acrData, action: 'delete' },
        },
      ],
      ['a chart push', { eventType: 'Microsoft.ContainerRegistry.ChartPushed', topic, data: acrData }],
      [
        'data that is not JSON',
        { eventType: 'Microsoft.ContainerRegistry.ImagePushed', topic, data: '{broken' },
      ],
      [
        'a push without a tag',
        {
          eventType: 'Microsoft.ContainerRegistry.ImagePushed',
          topic,
          data: { ...acrData, target: { ...acrData.target, tag: undefined } },
        },
      ],
    ])('ignores %s', (_what, event) => {
      expect(imagePushOfGridEvent(event)).toBeNull();
    });
  });

  describe('distributionPushes', () => {
    it('keeps only tagged manifest pushes from an envelope', () => {
      const events = [
        {
          id: 'm1',
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest,
            repository: 'base',
            tag: 'v1',
          },
          request: { host: '127.0.0.1:5000' },
        },
        {
          id: 'b1',
          action: 'push',
          target: { mediaType: 'application/octet-stream', digest, repository: 'base' },
        },
        {
          id: 'm2',
          action: 'push',
          target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, repository: 'base' },
        },
        {
          id: 'p1',
          action: 'pull',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest,
            repository: 'base',
            tag: 'v1',
          },
        },
        { id: 'd1', action: 'delete', target: { mediaType: '', digest: '', repository: 'base', tag: 'v1' } },
      ];
      expect(distributionPushes(events, 'fallback:5000')).toEqual([
        {
          source: 'distribution',
          eventId: 'm1',
          registry: '127.0.0.1:5000',
          repository: 'base',
          tag: 'v1',
          digest,
          timestamp: expect.any(String),
        },
      ]);
    });
  });
});

describe('registry webhooks of other registries', () => {
  describe('dockerHubPush', () => {
    // docs.docker.com "Webhooks" sample (../shared/reference/events.md §4.1), trimmed to the fields read.
    const hub = {
      push_data: { pushed_at: 1417566161, pusher: 'trustedbuilder', tag: 'latest' },
      repository: { repo_name: 'svendowideit/testhook', name: 'testhook', namespace: 'svendowideit' },
    };
    it('reads the repository and tag; the digest is left to resolve', () => {
      expect(dockerHubPush(hub)).toEqual({
        source: 'dockerhub',
        eventId: 'svendowideit/testhook:latest@1417566161',
        registry: 'docker.io',
        repository: 'svendowideit/testhook',
        tag: 'latest',
        digest: '',
        timestamp: '2014-12-03T00:22:41.000Z',
      });
    });
    it('ignores other bodies', () => {
      expect(dockerHubPush({ events: [] })).toBeNull();
    });
    it.each([
      ['a repository of 40,000 characters', 'a'.repeat(40000), 'latest'],
      ['an upper-case repository', 'Me/App', 'latest'],
      ['a repository with a space', 'me/my app', 'latest'],
      ['a tag the grammar refuses', 'me/app', '-latest'],
      ['a tag over 128 characters', 'me/app', 'v'.repeat(129)],
    ])('ignores a push that names no well-formed image (%s)', (_what, repo_name, tag) => {
      expect(dockerHubPush({ push_data: { tag }, repository: { repo_name } })).toBeNull();
    });
  });

  describe('harborPushes', () => {
    const digest = 'sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8';
    // goharbor/website "Configure webhooks" PUSH_ARTIFACT sample (events.md §4.2).
    const defaultFormat = {
      type: 'PUSH_ARTIFACT',
      occur_at: 1586922308,
      operator: 'admin',
      event_data: {
        resources: [{ digest, tag: 'latest', resource_url: 'hub.harbor.com/test-webhook/debian:latest' }],
        repository: {
          date_created: 1586922308,
          name: 'debian',
          namespace: 'test-webhook',
          repo_full_name: 'test-webhook/debian',
          repo_type: 'private',
        },
      },
    };
    it('reads a PUSH_ARTIFACT', () => {
      expect(harborPushes(defaultFormat)).toEqual([
        {
          source: 'harbor',
          eventId: `test-webhook/debian:latest@${digest}`,
          registry: 'hub.harbor.com',
          repository: 'test-webhook/debian',
          tag: 'latest',
          digest,
          timestamp: '2020-04-15T03:45:08.000Z',
        },
      ]);
    });
    it('reads harbor.artifact.pushed in the CloudEvents format', () => {
      const ce = {
        specversion: '1.0',
        id: 'ce-1',
        source: '/projects/1/webhook/policies/3',
        type: 'harbor.artifact.pushed',
        time: '2023-03-06T06:08:43Z',
        data: defaultFormat.event_data,
      };
      expect(harborPushes(ce)).toEqual([
        expect.objectContaining({ eventId: 'ce-1', registry: 'hub.harbor.com', tag: 'latest', digest }),
      ]);
    });
    it('ignores pulls, and resources addressed only by digest', () => {
      expect(harborPushes({ ...defaultFormat, type: 'PULL_ARTIFACT' })).toBeNull();
      expect(
        harborPushes({
          ...defaultFormat,
          event_data: {
            ...defaultFormat.event_data,
            resources: [{ digest, tag: digest, resource_url: `h/x@${digest}` }],
          },
        }),
      ).toEqual([]);
    });
  });
});
