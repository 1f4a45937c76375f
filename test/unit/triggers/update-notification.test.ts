import { notificationBody, type UpdateNotification } from '../../../src/triggers/update-notification';

const notification = (payloadType: 'Default' | 'Token'): UpdateNotification => ({
  endpoint: 'https://hooks.example/notify',
  payloadType,
  taskName: 'app',
  runId: 'cf12',
  registry: 'myregistry.azurecr.io',
  imageUpdateTrigger: {
    id: 'evt-1',
    timestamp: '2026-11-23T08:00:00Z',
    images: [{ registry: 'myregistry.azurecr.io', repository: 'base', tag: '1', digest: 'sha256:ab' }],
  },
});

describe('update trigger notification bodies', () => {
  it('carries only the token with payload type Token', () => {
    expect(notificationBody(notification('Token'), 'dG9r')).toEqual({ updateTriggerToken: 'dG9r' });
  });

  it('carries the token and what triggered which run with payload type Default', () => {
    expect(notificationBody(notification('Default'), undefined)).toEqual({
      updateTriggerToken: null,
      action: 'baseImageUpdated',
      registry: 'myregistry.azurecr.io',
      taskName: 'app',
      runId: 'cf12',
      imageUpdateTrigger: notification('Default').imageUpdateTrigger,
    });
  });
});
