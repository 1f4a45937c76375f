import { loadAciSettings, type AciSettings } from '../../../../src/executors/aci/aci-settings';
import {
  buildGroup,
  kanikoArgs,
  maskLines,
  type DockerRun,
  type GroupInputs,
} from '../../../../src/executors/aci/group-spec';
import { newQuickBuildRun, parseRunRequest } from '../../../../src/runs/schedule-run';

const SUB = '00000000-0000-0000-0000-000000000001';
const IDENTITY = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-builder`;
const SECRET_ARG = 'arg-s3cret-value-1';
const GIT_TOKEN = 'ghp_tokenvalue2';
const PASSWORD = 'registry-passw0rd-3';
const LOG_SAS = 'https://acct.blob.core.windows.net/logs/aa1.log?sv=2021&sig=logsig';
const REPORT_SAS = 'https://acct.queue.core.windows.net/run-completions/messages?sv=2021&sig=queuesig';

function settings(env: Record<string, string> = {}): AciSettings {
  return loadAciSettings({
    REFIT_ACI_SUBSCRIPTION_ID: SUB,
    REFIT_ACI_RESOURCE_GROUP: 'rg-builds',
    REFIT_ACI_LOCATION: 'westeurope',
    REFIT_ACI_IDENTITY_ID: IDENTITY,
    REFIT_ACI_IDENTITY_CLIENT_ID: '00000000-0000-0000-0000-0000000000c1',
    ...env,
  });
}

function run(overrides: Record<string, unknown> = {}): DockerRun {
  const request = parseRunRequest({
    type: 'DockerBuildRequest',
    sourceLocation: 'source/20261129/ctx.tar.gz',
    dockerFilePath: 'Dockerfile',
    imageNames: ['myreg.azurecr.io/app:{{.Run.ID}}', 'myreg.azurecr.io/app:latest'],
    platform: { os: 'Linux', architecture: 'arm64', variant: 'v8' },
    agentConfiguration: { cpu: 4 },
    arguments: [
      { name: 'PLAIN', value: 'visible', isSecret: false },
      { name: 'TOKEN', value: SECRET_ARG, isSecret: true },
    ],
    ...overrides,
  });
  return newQuickBuildRun(request, {
    runId: 'aa1',
    now: new Date(),
    homeRegistry: 'myreg.azurecr.io',
    secretKey: Buffer.alloc(32, 7),
  });
}

function inputs(overrides: Partial<GroupInputs> = {}): GroupInputs {
  return {
    source: {
      kind: 'git',
      url: 'https://github.com/org/app.git',
      ref: 'main',
      commit: 'abc123',
      folder: 'src',
      token: GIT_TOKEN,
    },
    logUrl: LOG_SAS,
    reportUrl: REPORT_SAS,
    buildArgs: [
      { name: 'PLAIN', value: 'visible', isSecret: false },
      { name: 'TOKEN', value: SECRET_ARG, isSecret: true },
    ],
    logins: { 'other.example.com': { username: 'bob', password: PASSWORD } },
    insecureRegistries: ['registry.internal:5000'],
    masks: [SECRET_ARG, GIT_TOKEN, PASSWORD],
    reportToken: 'report-token-4',
    maxLogBytes: 1024,
    homeRegistry: 'myreg.azurecr.io',
    tags: { 'refit-run': 'aa1', 'refit-deployment': 'd1' },
    ...overrides,
  };
}

/** The group as ARM returns it on GET: secure values and secret volumes are not returned. */
function asReturned(group: unknown): string {
  return JSON.stringify(group, (key, value: unknown) =>
    key === 'secureValue' || key === 'secret' ? undefined : value,
  );
}

describe('group-spec', () => {
  describe('buildGroup', () => {
    it('gives every secret only as a secure value or a secret volume: none is in a command, a plain value or a tag', () => {
      const group = buildGroup(run(), settings(), inputs());
      const shown = asReturned(group);
      for (const secret of [SECRET_ARG, GIT_TOKEN, PASSWORD, 'logsig', 'queuesig'])
        expect(shown).not.toContain(secret);
      expect(JSON.stringify(group)).toContain(SECRET_ARG);
    });

    it('is one run-once group: restartPolicy Never, Linux, the builder identity attached, tagged with its run', () => {
      const group = buildGroup(run(), settings(), inputs());
      expect(group).toMatchObject({
        location: 'westeurope',
        osType: 'Linux',
        sku: 'Standard',
        restartPolicy: 'Never',
        priority: 'Regular',
        identity: { type: 'UserAssigned', userAssignedIdentities: { [IDENTITY]: {} } },
        tags: { 'refit-run': 'aa1' },
      });
      expect(group.subnetIds).toBeUndefined();
      expect(group.initContainers?.map((c) => c.name)).toEqual(['fetch']);
      expect(group.containers.map((c) => c.name)).toEqual(['build', 'report']);
    });

    it("takes the build's CPU from the run's agentConfiguration and its memory from REFIT_ACI_MEMORY_GB", () => {
      const group = buildGroup(run(), settings({ REFIT_ACI_MEMORY_GB: '8' }), inputs());
      expect(group.containers[0]!.resources.requests).toEqual({ cpu: 4, memoryInGB: 8 });
    });

    it('asks for Spot priority, or a subnet, as configured', () => {
      expect(buildGroup(run(), settings({ REFIT_ACI_SPOT: 'true' }), inputs()).priority).toBe('Spot');
      const subnet = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/aci`;
      expect(buildGroup(run(), settings({ REFIT_ACI_SUBNET_ID: subnet }), inputs()).subnetIds).toEqual([
        { id: subnet },
      ]);
    });

    it('pulls its images with the identity when they live in the home registry, anonymously otherwise', () => {
      expect(buildGroup(run(), settings(), inputs()).imageRegistryCredentials).toBeUndefined();
      const mirrored = settings({ REFIT_ACI_KANIKO_IMAGE: 'myreg.azurecr.io/kaniko:v1.28.3-debug' });
      expect(buildGroup(run(), mirrored, inputs()).imageRegistryCredentials).toEqual([
        { server: 'myreg.azurecr.io', identity: IDENTITY },
      ]);
    });

    it('gives kaniko the logins of other registries in a secret volume at /kaniko/.docker, and none when there are none', () => {
      const group = buildGroup(run(), settings(), inputs());
      const config = group.volumes?.find((v) => v.name === 'docker-config')?.secret?.['config.json'];
      expect(JSON.parse(Buffer.from(config!, 'base64').toString('utf8'))).toEqual({
        auths: { 'other.example.com': { auth: Buffer.from(`bob:${PASSWORD}`).toString('base64') } },
      });
      expect(group.containers[0]!.volumeMounts).toContainEqual({
        name: 'docker-config',
        mountPath: '/kaniko/.docker',
        readOnly: true,
      });
      const none = buildGroup(run(), settings(), inputs({ logins: {} }));
      expect(none.volumes?.map((v) => v.name)).toEqual(['workspace']);
    });
    it("builds a fork's pull request with no identity and pushes nothing", () => {
      const fork = { ...run(), untrustedSource: true as const };
      const group = buildGroup(fork, settings(), inputs({ logins: {} }));
      expect(group.identity).toBeUndefined();
      const env = group.containers.flatMap((c) => c.environmentVariables ?? []).map((e) => e.name);
      expect(env).not.toContain('AZURE_CLIENT_ID');
      expect(kanikoArgs(fork, inputs())).toContain('--no-push');
      expect(kanikoArgs(fork, inputs()).some((a) => a.startsWith('--destination'))).toBe(false);
    });

    it('masks a secret of several lines by each of its long lines', () => {
      const pem = '-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nshort\n-----END KEY-----';
      expect(maskLines(['plain-secret', pem])).toEqual([
        'plain-secret',
        '-----BEGIN KEY-----',
        'MIIEvQIBADANBgkqhkiG9w0B',
        '-----END KEY-----',
      ]);
    });
  });

  describe('kanikoArgs', () => {
    it('builds the context folder for the run platform, pushes to every image name, passes plain build arguments', () => {
      const r = run();
      expect(kanikoArgs(r, inputs())).toEqual([
        '--context=dir:///refit-workspace/context/src',
        '--dockerfile=/refit-workspace/context/src/Dockerfile',
        ...r.spec.imageNames.map((i) => `--destination=${i}`),
        '--build-arg=PLAIN=visible',
        '--custom-platform=linux/arm64/v8',
        '--insecure-registry=registry.internal:5000',
        '--skip-tls-verify-registry=registry.internal:5000',
        '--digest-file=/refit-workspace/.refit/digest',
        '--image-name-tag-with-digest-file=/refit-workspace/.refit/images',
        '--verbosity=info',
      ]);
    });

    it('pushes nothing when push is disabled, and builds the target stage', () => {
      const args = kanikoArgs(
        run({ isPushEnabled: false, target: 'runtime' }),
        inputs({ insecureRegistries: [] }),
      );
      expect(args).toContain('--no-push');
      expect(args.some((a) => a.startsWith('--destination'))).toBe(false);
      expect(args).toContain('--target=runtime');
    });
  });
});

describe('aci-settings', () => {
  describe('loadAciSettings', () => {
    it('reads the defaults: 4 GB, Regular priority, the pinned kaniko release, ACI list prices', () => {
      expect(settings()).toMatchObject({
        memoryGb: 4,
        spot: false,
        kanikoImage: 'ghcr.io/osscontainertools/kaniko:v1.28.3-debug',
        armEndpoint: 'https://management.azure.com',
        prices: { coreSecond: 0.00001125, gbSecond: 0.00000124 },
      });
    });

    it.each([
      [{ REFIT_ACI_SUBSCRIPTION_ID: 'not-a-guid' }, 'REFIT_ACI_SUBSCRIPTION_ID'],
      [{ REFIT_ACI_RESOURCE_GROUP: '' }, 'REFIT_ACI_RESOURCE_GROUP'],
      [{ REFIT_ACI_IDENTITY_ID: '/subscriptions/x/resourceGroups/y' }, 'REFIT_ACI_IDENTITY_ID'],
      [{ REFIT_ACI_MEMORY_GB: '0' }, 'REFIT_ACI_MEMORY_GB'],
      [{ REFIT_ACI_SPOT: 'yes' }, 'REFIT_ACI_SPOT'],
      [{ REFIT_ACI_ARM_ENDPOINT: 'http://127.0.0.1:1' }, 'REFIT_ACI_ARM_ENDPOINT'],
      [
        {
          REFIT_ACI_SPOT: 'true',
          REFIT_ACI_SUBNET_ID: `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/aci`,
        },
        'REFIT_ACI_SPOT',
      ],
    ])('refuses %j, naming %s', (env, name) => {
      expect(() => settings(env)).toThrow(expect.objectContaining({ target: name }));
    });
  });
});
