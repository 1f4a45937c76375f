import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../../src/config';
import { names } from '../../../src/storage/storage';
import { functions } from '../../../functions/definitions';
import { occurrences } from '../../../src/triggers/timers';

// There is no Bicep compiler offline: these checks parse the templates with tree-sitter-bicep and hold them to
// Refit's own contracts (settings, storage names, function names, role IDs). They say nothing of ARM validity.

const root = join(__dirname, '../../..');
const infra = join(root, 'infra');

interface Declaration {
  kind: 'param' | 'var' | 'output' | 'resource' | 'module';
  name: string;
  type?: unknown;
  hasDefault?: boolean;
  value?: any;
}
interface ParsedFile {
  errors: string[];
  declarations: Declaration[];
}

function bicepFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? bicepFiles(join(dir, e.name)) : e.name.endsWith('.bicep') ? [join(dir, e.name)] : [],
  );
}

/** Parses Bicep files in a child node (web-tree-sitter's wasm loading does not run under jest's module system). */
function parseBicep(files: string[]): Record<string, ParsedFile> {
  const out = execFileSync(process.execPath, [join(__dirname, 'parse-bicep.js'), ...files], {
    cwd: root,
    encoding: 'utf8',
  });
  return JSON.parse(out) as Record<string, ParsedFile>;
}

const files = bicepFiles(infra);
const parsed = parseBicep(files);
const file = (path: string): ParsedFile => parsed[join(infra, path)]!;
const declarations = (path: string, kind: Declaration['kind']): Declaration[] =>
  file(path).declarations.filter((d) => d.kind === kind);
const declaration = (path: string, kind: Declaration['kind'], name: string): Declaration => {
  const found = declarations(path, kind).find((d) => d.name === name);
  if (!found) throw new Error(`${path} has no ${kind} named ${name}`);
  return found;
};
/** A resource's or module's body: the object after `=`, or the body of its `if` (the condition is kept as @if). */
const body = (d: Declaration): Record<string, any> => d.value as Record<string, any>;

/** README.md's "Deploy to Azure" section, up to the next level-2 heading. */
function deploySection(): string {
  const text = readFileSync(join(root, 'README.md'), 'utf8');
  const start = text.indexOf('## Deploy to Azure\n');
  if (start < 0) throw new Error('README.md has no "Deploy to Azure" section');
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The rows of the first Markdown table in `text` whose header's first cell is `first`, as trimmed cells. */
function table(text: string, first: string): string[][] {
  const lines = text.split('\n');
  const header = lines.findIndex((l) => l.startsWith('|') && l.split('|')[1]?.trim() === first);
  if (header < 0) throw new Error(`no table headed "${first}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

describe('infra/', () => {
  it('has the files of an azd template: main.bicep, main.parameters.json, abbreviations.json, app/rbac.bicep', () => {
    for (const path of ['main.bicep', 'main.parameters.json', 'abbreviations.json', 'app/rbac.bicep'])
      expect(existsSync(join(infra, path))).toBe(true);
  });

  describe('*.bicep', () => {
    it.each(files.map((f) => [relative(root, f), f]))(
      '%s parses with no ERROR or MISSING node',
      (_name, path) => {
        expect(parsed[path]!.errors).toEqual([]);
        expect(parsed[path]!.declarations.length).toBeGreaterThan(0);
      },
    );
  });

  describe('main.bicep', () => {
    it('is deployed at subscription scope', () => {
      expect(readFileSync(join(infra, 'main.bicep'), 'utf8')).toMatch(/^targetScope = 'subscription'$/m);
    });

    it('references only module files that exist', () => {
      for (const path of files) {
        for (const m of parsed[path]!.declarations.filter((d) => d.kind === 'module')) {
          const target = m.type as string;
          expect(target).not.toMatch(/^br[:/]/); // a registry module cannot be restored offline
          expect({ module: m.name, exists: existsSync(join(dirname(path), target)) }).toEqual({
            module: m.name,
            exists: true,
          });
        }
      }
    });

    it('passes each module every parameter it requires and none it does not declare', () => {
      for (const m of declarations('main.bicep', 'module')) {
        const target = relative(infra, join(infra, m.type as string));
        const params = declarations(target, 'param');
        const given = Object.keys(body(m).params ?? {}).sort();
        const required = params.filter((p) => !p.hasDefault).map((p) => p.name);
        expect({ module: m.name, missing: required.filter((p) => !given.includes(p)) }).toEqual({
          module: m.name,
          missing: [],
        });
        const declared = params.map((p) => p.name);
        expect({ module: m.name, unknown: given.filter((p) => !declared.includes(p)) }).toEqual({
          module: m.name,
          unknown: [],
        });
      }
    });

    it('deploys rbac.bicep into each scope it grants in: the app, the builds and the registry resource groups', () => {
      const rbac = declarations('main.bicep', 'module').filter((m) => m.type === 'app/rbac.bicep');
      const scopes = Object.fromEntries(rbac.map((m) => [body(m).params.grants, body(m).scope.expr]));
      const registry = body(declaration('main.bicep', 'module', 'registry')).scope.expr;
      expect(scopes).toEqual({ app: 'rg', builds: 'buildRg', registry });
      // The container groups go to the resource group the app is Contributor in.
      expect(body(declaration('main.bicep', 'module', 'api')).params.buildResourceGroupName.expr).toBe(
        'buildRg.name',
      );
    });

    it('names its outputs in UPPER_SNAKE case', () => {
      const outputs = declarations('main.bicep', 'output').map((o) => o.name);
      expect(outputs.length).toBeGreaterThan(0);
      for (const name of outputs) expect(name).toMatch(/^[A-Z][A-Z0-9_]*$/);
    });
  });

  describe('main.parameters.json', () => {
    it('gives every parameter of main.bicep without a default a value, and names no other', () => {
      const json = JSON.parse(readFileSync(join(infra, 'main.parameters.json'), 'utf8'));
      const given = Object.keys(json.parameters).sort();
      const params = declarations('main.bicep', 'param');
      const required = params.filter((p) => !p.hasDefault).map((p) => p.name);
      expect(required.filter((p) => !given.includes(p))).toEqual([]);
      expect(given.filter((p) => !params.some((d) => d.name === p))).toEqual([]);
    });
  });

  describe('app/api.bicep', () => {
    const app = () => declaration('app/api.bicep', 'resource', 'app');
    const appSettings = (): { name: string; value: unknown }[] =>
      body(app()).properties.siteConfig.appSettings;

    // A value for each setting the Bicep computes (ARM fills them in): shaped as Azure's would be.
    const computed: Record<string, string> = {
      AzureWebJobsStorage__accountName: 'strefit0123456789',
      AzureWebJobsStorage__clientId: '11111111-1111-4111-8111-111111111111',
      AzureWebJobsStorage__blobServiceUri: 'https://strefit0123456789.blob.core.windows.net/',
      AzureWebJobsStorage__queueServiceUri: 'https://strefit0123456789.queue.core.windows.net/',
      AzureWebJobsStorage__tableServiceUri: 'https://strefit0123456789.table.core.windows.net/',
      AZURE_CLIENT_ID: '11111111-1111-4111-8111-111111111111',
      APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-0000-0000-0000-000000000000',
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING:
        'ClientId=11111111-1111-4111-8111-111111111111;Authorization=AAD',
      REFIT_REGISTRY: 'crrefit0123456789.azurecr.io',
      REFIT_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
      REFIT_IDENTITY_CLIENT_ID: '11111111-1111-4111-8111-111111111111',
      REFIT_ACI_SUBSCRIPTION_ID: '22222222-2222-4222-8222-222222222222',
      REFIT_ACI_RESOURCE_GROUP: 'rg-refit-builds',
      REFIT_ACI_LOCATION: 'westeurope',
      REFIT_ACI_IDENTITY_ID:
        '/subscriptions/22222222-2222-4222-8222-222222222222/resourceGroups/rg-refit/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-refit-builder',
      REFIT_ACI_IDENTITY_CLIENT_ID: '33333333-3333-4333-8333-333333333333',
    };

    /** The app's settings as the host would see them: literals as written, computed values filled in. */
    function environment(): Record<string, string> {
      const env: Record<string, string> = {};
      for (const { name, value } of appSettings()) {
        if (typeof value === 'string') env[name] = value;
        else if (name in computed) env[name] = computed[name]!;
        else throw new Error(`app setting ${name} is computed and the test has no value for it`);
      }
      return env;
    }

    it('sets every setting src/config.ts requires for the aci executor: loadConfig accepts them', () => {
      const config = loadConfig(environment());
      expect(config.executor).toBe('aci');
      expect(config.aci).toMatchObject({
        resourceGroup: 'rg-refit-builds',
        identityClientId: '33333333-3333-4333-8333-333333333333',
      });
      // Identity-based storage (shared keys are off): an account name, never a connection string.
      expect(config.storage).toEqual({ accountName: 'strefit0123456789' });
      expect(config.identityClientId).toBe('11111111-1111-4111-8111-111111111111');
    });

    it("sets the host's identity-based storage with the app's user-assigned identity", () => {
      const settings = Object.fromEntries(appSettings().map((s) => [s.name, s.value]));
      expect(settings.AzureWebJobsStorage__credential).toBe('managedidentity');
      expect(settings.AzureWebJobsStorage).toBeUndefined();
      // DefaultAzureCredential (storage, ARM) picks the user-assigned identity by AZURE_CLIENT_ID.
      expect(settings.AZURE_CLIENT_ID).toEqual(settings.AzureWebJobsStorage__clientId);
      expect(settings.REFIT_IDENTITY_CLIENT_ID).toEqual(settings.AzureWebJobsStorage__clientId);
    });

    it('sets none of the settings Flex Consumption refuses, and runs Node 20 on Flex Consumption', () => {
      const refused = [
        'FUNCTIONS_WORKER_RUNTIME',
        'FUNCTIONS_EXTENSION_VERSION',
        'WEBSITE_RUN_FROM_PACKAGE',
        'WEBSITE_CONTENTSHARE',
        'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
        'SCM_DO_BUILD_DURING_DEPLOYMENT',
        'ENABLE_ORYX_BUILD',
        'WEBSITE_TIME_ZONE',
        'TZ',
      ];
      expect(appSettings().filter((s) => refused.includes(s.name))).toEqual([]);
      expect(body(app()).properties.functionAppConfig.runtime).toEqual({ name: 'node', version: '20' });
      expect(body(declaration('app/api.bicep', 'resource', 'plan')).sku).toEqual({
        tier: 'FlexConsumption',
        name: 'FC1',
      });
      expect(body(app()).identity.type).toBe('UserAssigned');
    });
  });

  describe('app/storage.bicep', () => {
    const list = (name: string) =>
      [...(declaration('app/storage.bicep', 'var', name).value as string[])].sort();

    it('creates the tables, queues and blob containers named in src/storage/storage.ts', () => {
      expect(list('tableNames')).toEqual(Object.values(names.tables).sort());
      expect(list('queueNames')).toEqual(Object.values(names.queues).sort());
      expect(list('containerNames')).toEqual(Object.values(names.containers).sort());
      expect(declaration('app/storage.bicep', 'var', 'runCompletionsQueueName').value).toBe(
        names.queues.runCompletions,
      );
    });

    it('turns shared keys and public blob access off', () => {
      const account = body(declaration('app/storage.bicep', 'resource', 'account'));
      expect(account.properties.allowSharedKeyAccess).toBe(false);
      expect(account.properties.allowBlobPublicAccess).toBe(false);
    });
  });

  describe('app/rbac.bicep', () => {
    // Azure's built-in roles, as https://learn.microsoft.com/azure/role-based-access-control/built-in-roles lists
    // them (Storage, Containers, Monitor, Privileged and Identity pages: each role's "id").
    const builtIn: Record<string, [string, string]> = {
      storageBlobDataOwner: ['Storage Blob Data Owner', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'],
      storageQueueDataContributor: ['Storage Queue Data Contributor', '974c5e8b-45b9-4653-ba55-5f855dd0fb88'],
      storageTableDataContributor: ['Storage Table Data Contributor', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'],
      storageQueueDataMessageSender: [
        'Storage Queue Data Message Sender',
        'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a',
      ],
      monitoringMetricsPublisher: ['Monitoring Metrics Publisher', '3913510d-42f4-4e42-8a64-420c390055eb'],
      acrPush: ['AcrPush', '8311e382-0749-4cb8-b61a-304f252e45ec'],
      acrPull: ['AcrPull', '7f951dda-4ed3-4680-a7ca-43fe172d538d'],
      acrDelete: ['AcrDelete', 'c2f4ef07-c644-48eb-af81-4b1b4947fb11'],
      contributor: ['Contributor', 'b24988ac-6180-42a0-ab88-20f7382dd24c'],
      managedIdentityOperator: ['Managed Identity Operator', 'f1a07417-d97a-45cb-824c-7a7467783830'],
    };
    const roles = () => declaration('app/rbac.bicep', 'var', 'roles').value as Record<string, string>;
    const assignments = () =>
      declarations('app/rbac.bicep', 'resource').filter((r) =>
        String(r.type).startsWith('Microsoft.Authorization/roleAssignments@'),
      );
    /** The role key (of `roles`) an assignment grants, read from its roleDefinitionId expression. */
    const roleOf = (r: Declaration): string => {
      const b = body(r);
      const props = (b.properties ?? b.body?.properties) as { roleDefinitionId: { expr: string } };
      const match =
        /^subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions', (?:roles\.(\w+)|role)\)$/.exec(
          props.roleDefinitionId.expr,
        );
      if (!match)
        throw new Error(`${r.name} takes its role from ${props.roleDefinitionId.expr}, not the roles table`);
      // `role` is the loop variable over appStorageRoles.
      return match[1] ?? 'appStorageRoles';
    };

    it('uses the built-in role definition IDs, each under its role name', () => {
      const used = roles();
      for (const [key, id] of Object.entries(used)) {
        expect({ key, id }).toEqual({ key, id: builtIn[key]?.[1] });
      }
    });

    it('takes every role definition ID from the roles table (no GUID written elsewhere)', () => {
      const text = readFileSync(join(infra, 'app/rbac.bicep'), 'utf8');
      const guids = text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi) ?? [];
      expect(guids.sort()).toEqual(Object.values(roles()).sort());
      for (const r of assignments()) expect(roleOf(r)).toBeDefined();
    });

    it('grants what the code uses: storage data roles, groups, identity, base-image reads and run-image deletes to the app, completions and registry to the builder', () => {
      // principal:role:scope:condition — the condition says which of main.bicep's three rbac deployments makes it.
      const grants = assignments().map((r) => {
        const b = body(r);
        const inner = b.body ?? b;
        const condition = String(inner['@if']).replace(/^\(|\)$/g, '');
        return `${inner.properties.principalId.expr}:${roleOf(r)}:${inner.scope?.expr ?? 'resourceGroup'}:${condition}`;
      });
      expect(grants.sort()).toEqual(
        [
          'appPrincipalId:appStorageRoles:storage:inApp',
          'userPrincipalId:appStorageRoles:storage:inApp && !empty(userPrincipalId)',
          'builderPrincipalId:storageQueueDataMessageSender:runCompletionsQueue:inApp',
          'appPrincipalId:managedIdentityOperator:builderIdentity:inApp',
          'appPrincipalId:monitoringMetricsPublisher:applicationInsights:inApp',
          'appPrincipalId:contributor:resourceGroup:inBuilds',
          'builderPrincipalId:acrPush:registry:inRegistry',
          'builderPrincipalId:acrPull:registry:inRegistry',
          'appPrincipalId:acrPull:registry:inRegistry',
          'appPrincipalId:acrDelete:registry:inRegistry',
        ].sort(),
      );
      expect(
        [...(declaration('app/rbac.bicep', 'var', 'appStorageRoles').value as { expr: string }[])]
          .map((r) => r.expr)
          .sort(),
      ).toEqual(
        [
          'roles.storageBlobDataOwner',
          'roles.storageQueueDataContributor',
          'roles.storageTableDataContributor',
        ].sort(),
      );
    });
  });

  describe('README.md "Deploy to Azure"', () => {
    it('lists in its role table exactly the assignments of rbac.bicep: each principal, role and scope', () => {
      // The README names roles as Azure does; rbac.bicep's roles table by key (its IDs are checked above).
      const names: Record<string, string> = {
        'Storage Blob Data Owner': 'storageBlobDataOwner',
        'Storage Queue Data Contributor': 'storageQueueDataContributor',
        'Storage Table Data Contributor': 'storageTableDataContributor',
        'Storage Queue Data Message Sender': 'storageQueueDataMessageSender',
        'Monitoring Metrics Publisher': 'monitoringMetricsPublisher',
        AcrPush: 'acrPush',
        AcrPull: 'acrPull',
        AcrDelete: 'acrDelete',
        Contributor: 'contributor',
        'Managed Identity Operator': 'managedIdentityOperator',
      };
      const principals: Record<string, string> = {
        app: 'appPrincipalId',
        builder: 'builderPrincipalId',
        you: 'userPrincipalId',
      };
      const scopes: Record<string, string> = {
        'storage account': 'storage',
        '`run-completions` queue': 'runCompletionsQueue',
        'builder identity': 'builderIdentity',
        'Application Insights': 'applicationInsights',
        'builds resource group': 'resourceGroup',
        registry: 'registry',
      };
      const promised = table(deploySection(), 'identity').flatMap(([who, roles, on]) =>
        roles!
          .split(/,\s*/)
          .map(
            (role) =>
              `${principals[who!] ?? `unknown identity ${who}`}:${names[role] ?? `unknown role ${role}`}:${scopes[on!] ?? `unknown scope ${on}`}`,
          ),
      );

      const storageRoles = (
        declaration('app/rbac.bicep', 'var', 'appStorageRoles').value as { expr: string }[]
      ).map((r) => r.expr.replace(/^roles\./, ''));
      const granted = declarations('app/rbac.bicep', 'resource')
        .filter((r) => String(r.type).startsWith('Microsoft.Authorization/roleAssignments@'))
        .flatMap((r) => {
          const inner = body(r).body ?? body(r);
          const expr = inner.properties.roleDefinitionId.expr as string;
          const role = /roles\.(\w+)\)$/.exec(expr)?.[1];
          return (role ? [role] : storageRoles).map(
            (key) => `${inner.properties.principalId.expr}:${key}:${inner.scope?.expr ?? 'resourceGroup'}`,
          );
        });
      const roleKeys = Object.keys(declaration('app/rbac.bicep', 'var', 'roles').value as object);
      expect(roleKeys.sort()).toEqual(Object.values(names).sort());
      expect(promised.sort()).toEqual(granted.sort());
    });

    it('states the billed timer executions and their minimum GB-s that functions/definitions.ts and api.bicep give', () => {
      const day = { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-01-02T00:00:00Z') };
      const perDay = functions
        .filter((f) => f.kind === 'timer')
        .reduce((n, f) => n + occurrences(f.schedule, day.from, day.to, 100_000).length, 0);
      const memoryMB = Number(
        /^param instanceMemoryMB int = (\d+)$/m.exec(readFileSync(join(infra, 'app/api.bicep'), 'utf8'))?.[1],
      );
      const n = (x: number) => x.toLocaleString('en-US');
      const text = deploySection().replace(/\s+/g, ' ');
      // At least 1,000 ms billed per execution, at the instance's memory (Flex Consumption billing), 30 days.
      expect(text).toContain(`${n(perDay)} executions a day, ${n(perDay * 30)} a month`);
      expect(text).toContain(`at least ${n((perDay * 30 * memoryMB) / 1024)} GB-s`);
    });
  });

  describe('azure.yaml', () => {
    const azure = () => parseYaml(readFileSync(join(root, 'azure.yaml'), 'utf8'));
    const hookScripts = (): string[] =>
      Object.values(azure().hooks as Record<string, Record<string, { run: string }>>).flatMap((h) =>
        Object.values(h).map((s) => s.run),
      );

    it("deploys the project's function app, and every hook script it runs exists", () => {
      const api = azure().services.api;
      expect(api).toMatchObject({ host: 'function', language: 'ts' });
      expect(existsSync(join(root, api.project))).toBe(true);
      expect(Object.keys(azure().hooks.postdeploy).sort()).toEqual(['posix', 'windows']);
      for (const run of hookScripts())
        expect({ run, exists: existsSync(join(root, run)) }).toEqual({ run, exists: true });
    });

    it('subscribes an Event Grid function that functions/definitions.ts registers, to image pushes', () => {
      for (const kind of ['posix', 'windows']) {
        const script = readFileSync(join(root, azure().hooks.postdeploy[kind].run), 'utf8');
        const target = /\/functions\/([A-Za-z0-9_-]+)/.exec(script)?.[1];
        const registered = functions.find((f) => f.name === target);
        expect({ kind, target, trigger: registered?.kind }).toEqual({
          kind,
          target: 'imageEventGrid',
          trigger: 'eventGrid',
        });
        expect(script).toContain('--endpoint-type azurefunction');
        expect(script).toContain('--included-event-types Microsoft.ContainerRegistry.ImagePushed');
      }
    });

    it('reads from the azd environment only what main.bicep outputs', () => {
      const outputs = declarations('main.bicep', 'output').map((o) => o.name);
      for (const run of hookScripts().filter((r) => r.includes('subscribe-events'))) {
        const script = readFileSync(join(root, run), 'utf8');
        // sh reads the environment as $NAME (after eval of get-values); pwsh as $values['NAME'].
        const pattern = run.endsWith('.ps1') ? /\$values\['([A-Z0-9_]+)'\]/g : /\$\{?([A-Z][A-Z0-9_]+)/g;
        const read = [...script.matchAll(pattern)].map((m) => m[1]!);
        expect(read.length).toBeGreaterThan(0);
        expect({ run, unknown: read.filter((v) => !outputs.includes(v)) }).toEqual({ run, unknown: [] });
      }
    });
  });
});
