import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../../../src/errors';
import {
  checkDockerBuildRequest,
  isGitSource,
  newQuickBuildRun,
  parseRunRequest,
} from '../../../src/runs/schedule-run';
import { open } from '../../../src/storage/secret-box';

const acrExample = JSON.parse(
  readFileSync(join(__dirname, '../../fixtures/acr-schedule-run-docker-build.json'), 'utf8'),
) as Record<string, unknown>;
const valid = {
  type: 'DockerBuildRequest',
  imageNames: ['hello:{{.Run.ID}}'],
  sourceLocation: 'source/20261123/0b9f7a5e-8a61-4f6f-9d6a-1f0e2b3c4d5e.tar.gz',
  dockerFilePath: 'Dockerfile',
  platform: { os: 'Linux', architecture: 'amd64' },
};

function validationError(body: unknown): ValidationError {
  try {
    const request = parseRunRequest(body);
    checkDockerBuildRequest(request, '127.0.0.1:5000');
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('no validation error');
}

describe('schedule-run', () => {
  describe('parseRunRequest', () => {
    it("accepts the body of ACR's own REST example as it is", () => {
      const request = parseRunRequest(acrExample);
      expect(request).toMatchObject({
        type: 'DockerBuildRequest',
        imageNames: ['azurerest:testtag'],
        noCache: true,
        timeout: 3600,
      });
      expect(() => checkDockerBuildRequest(request, 'myreg.azurecr.io')).not.toThrow();
    });

    it('fills ACR defaults', () => {
      expect(parseRunRequest(valid)).toMatchObject({
        isPushEnabled: true,
        noCache: false,
        timeout: 3600,
        arguments: [],
        isArchiveEnabled: false,
        agentConfiguration: { cpu: 2 },
      });
    });

    it('accepts a lower-case os as the CLI sends it', () => {
      expect(
        parseRunRequest({ ...valid, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } })
          .platform,
      ).toEqual({ os: 'Linux', architecture: 'arm64', variant: 'v8' });
    });

    it.each([
      [{ ...valid, dockerFilePath: undefined }, 'dockerFilePath', 'dockerFilePath is required'],
      [{ ...valid, type: 'Nope' }, 'type', "type 'Nope' is not one of"],
      [{ ...valid, type: undefined }, 'type', 'type is required'],
      [{ ...valid, imageNames: ['Hello:1'] }, 'imageNames[0]', "'Hello:1' is not a valid image reference"],
      [{ ...valid, imageNames: ['ok:1', 'bad:tag:x'] }, 'imageNames[1]', 'not a valid'],
      [{ ...valid, timeout: 10 }, 'timeout', 'at least 300'],
      [{ ...valid, timeout: 30000 }, 'timeout', 'at most 28800'],
      [
        { ...valid, platform: { os: 'Plan9', architecture: 'amd64' } },
        'platform.os',
        "'Plan9' is not a valid value for os",
      ],
      [
        { ...valid, platform: { os: 'Linux', architecture: 'mips' } },
        'platform.architecture',
        "'mips' is not a valid architecture",
      ],
      [
        { ...valid, platform: { os: 'Windows', architecture: 'amd64' } },
        'platform.os',
        'Refit builds Linux images',
      ],
      [{ ...valid, platform: undefined }, 'platform', 'platform is required'],
      [{ ...valid, sourceLocation: 'ftp://x/y.tgz' }, 'sourceLocation', 'uses ftp://'],
      [{ ...valid, sourceLocation: 'file:///srv/r.git' }, 'sourceLocation', 'uses file://'],
      [{ ...valid, sourceLocation: 'ssh://git@github.com/o/r.git' }, 'sourceLocation', 'uses ssh://'],
      [{ ...valid, sourceLocation: 'ext::sh -c id' }, 'sourceLocation', 'transport::address'],
      [{ ...valid, sourceLocation: 'git@github.com:o/r.git' }, 'sourceLocation', 'scp-like'],
      [
        { ...valid, sourceLocation: 'ssh://u:hunter2@h/r.git' },
        'sourceLocation',
        "'ssh://u:*************@h/r.git' uses ssh://",
      ],
      [{ ...valid, sourceLocation: 'not a url' }, 'sourceLocation', 'neither an uploaded source'],
      [{ ...valid, dockerFilePath: '../../etc/passwd' }, 'dockerFilePath', 'inside the source'],
      [{ ...valid, arguments: [{ name: 'A=B', value: 'x' }] }, 'arguments[0].name', 'cannot contain ='],
      [{ ...valid, surprise: 1 }, 'surprise', "unknown property 'surprise'"],
      [
        { ...valid, FileTaskRunRequest: undefined, type: 'FileTaskRunRequest' },
        'type',
        'is not a DockerBuildRequest',
      ],
    ])('rejects %#: names %s', (body, target, message) => {
      const err = validationError(body);
      expect(err.target).toBe(target);
      expect(err.message).toContain(message);
      expect(err.status).toBe(400);
    });

    it.each([[null], [[]], ['text'], [42]])('rejects a body that is not an object (%j)', (body) => {
      expect(validationError(body).message).toContain('must be a JSON object');
    });
  });

  describe('isGitSource', () => {
    it.each([
      ['https://github.com/Azure-Samples/acr-build-helloworld-node.git', true],
      ['https://github.com/Azure-Samples/acr-build-helloworld-node#main:app', true],
      ['git://127.0.0.1:9418/app.git#main:src', true],
      ['https://dev.azure.com/org/proj/_git/repo#main', true],
      ['https://example.com/src.tar.gz', false],
      ['source/20261123/0b9f7a5e-8a61-4f6f-9d6a-1f0e2b3c4d5e.tar.gz', false],
    ])('%s → %s', (location, expected) => {
      expect(isGitSource(location)).toBe(expected);
    });
  });

  describe('newQuickBuildRun', () => {
    const key = randomBytes(32);
    const request = parseRunRequest({
      ...valid,
      imageNames: ['hello:{{.Run.ID}}', 'other.io/x/y:{{.Run.Date}}'],
      arguments: [
        { name: 'PLAIN', value: 'visible' },
        { name: 'TOKEN', value: 's3cr3t-value', isSecret: true },
      ],
    });
    const run = newQuickBuildRun(request, {
      runId: 'aa5',
      now: new Date('2026-11-23T02:30:05Z'),
      homeRegistry: '127.0.0.1:5000',
      secretKey: key,
    });

    it('is Queued, a QuickBuild, with rendered, fully qualified image names', () => {
      expect(run).toMatchObject({ runId: 'aa5', status: 'Queued', runType: 'QuickBuild', timeout: 3600 });
      expect(run.spec.imageNames).toEqual(['127.0.0.1:5000/hello:aa5', 'other.io/x/y:20261123-023005z']);
    });

    it('keeps secret values out of the stored spec and seals them', () => {
      expect(JSON.stringify(run.spec)).not.toContain('s3cr3t-value');
      expect(run.spec.arguments).toEqual([
        { name: 'PLAIN', isSecret: false, value: 'visible' },
        { name: 'TOKEN', isSecret: true },
      ]);
      expect(run.sealedSecrets).toBeDefined();
      expect(run.sealedSecrets).not.toContain('s3cr3t');
      expect(JSON.parse(open(key, run.sealedSecrets!))).toEqual({ arguments: { TOKEN: 's3cr3t-value' } });
    });

    it("seals a source URL's password with the run and stores the URL without it", () => {
      const withPassword = newQuickBuildRun(
        parseRunRequest({ ...valid, sourceLocation: 'https://alice:s3cret@git.example.com/r.git#main' }),
        { runId: 'aa7', now: new Date(), homeRegistry: 'r.io', secretKey: key },
      );
      expect(withPassword.spec.sourceLocation).toBe('https://alice@git.example.com/r.git#main');
      expect(JSON.stringify(withPassword)).not.toContain('s3cret');
      expect(JSON.parse(open(key, withPassword.sealedSecrets!))).toMatchObject({ gitToken: 's3cret' });
    });

    it('does not push when no image name is given, as az acr build', () => {
      const noImages = newQuickBuildRun(parseRunRequest({ ...valid, imageNames: [] }), {
        runId: 'aa6',
        now: new Date(),
        homeRegistry: 'r.io',
        secretKey: key,
      });
      expect(noImages.spec.isPushEnabled).toBe(false);
    });
  });
});
