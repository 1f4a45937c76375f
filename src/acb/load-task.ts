import { LIMIT_SETTINGS } from '../config';
import { RefitError } from '../errors';
import type { SecretResolver } from '../secrets/key-vault';
import type { GuardedFetch } from '../net/guarded-fetch';
import { isGitSource } from '../runs/schedule-run';
import type { Run, RunSecrets } from '../runs/run';
import { decode, parseValuesFile, templateData, type TaskFileSpec } from '../runs/task-file-run';
import { AcbError } from './errors';
import { loadTaskFile, type AcbTask } from './task-file';
import type { TemplateData } from './template';

/** What loading a run's task file needs: the run, its secrets and a reader of files in its source. */
export interface LoadRunTaskOptions {
  readonly run: Run & { readonly spec: TaskFileSpec };
  readonly secrets: RunSecrets;
  /** The registry `$Registry` and `{{.Run.Registry}}` stand for. */
  readonly registry: string;
  /** Where the steps see the shared workspace (`{{.Run.SharedVolume}}`). */
  readonly sharedVolume: string;
  readonly commit: string | undefined;
  readonly branch: string | undefined;
  /** Reads a file of the source, refusing one outside it (`what` names it in the error). */
  readonly readSourceFile: (path: string, what: string) => Promise<string>;
  /** Fetches alias files given by URL (the guard: a refused destination fails the run). */
  readonly http: GuardedFetch;
  /** The largest alias file read from a URL. */
  readonly maxAliasBytes: number;
  /**
   * Resolves the task's `secrets:` Key Vault references (Azure mode, REFIT_IDENTITY_CLIENT_ID); without it each one
   * needs a secret value of its ID given with the run.
   */
  readonly keyVault?: SecretResolver | undefined;
}

/** A run's task file, loaded, with the values of its Key Vault secrets: the executor masks them in the log. */
export interface RunTask extends AcbTask {
  /** `{{.Secrets.<id>}}` values read from Key Vault, by secret ID (never stored, never logged). */
  readonly keyVaultSecrets: Readonly<Record<string, string>>;
}

const ALIAS_TIMEOUT_MS = 2000;

/** An alias file from a URL, through the guard, within the size limit; any failure names the URL. */
async function fetchAliasFile(http: GuardedFetch, src: string, maxBytes: number): Promise<string> {
  try {
    const res = await http.fetch(src, {
      timeoutMs: ALIAS_TIMEOUT_MS,
      limit: { bytes: maxBytes, setting: LIMIT_SETTINGS.aliasBytes },
    });
    if (res.status > 299) {
      await res.discard();
      throw new AcbError(`alias file '${src}' answered ${res.status}`);
    }
    return await res.text();
  } catch (err) {
    if (err instanceof AcbError) throw err;
    throw new AcbError(`alias file '${src}' could not be read: ${(err as Error).message}`);
  }
}

/**
 * Reads, renders and validates a run's acb task file (encoded or in the source) with its values and aliases; every
 * error names the file. As acb does, a file with `secrets:` is rendered once to read them, and again with
 * `{{.Secrets.<id>}}` set to the values Key Vault gives (read here, in Refit's process: the steps see the values,
 * never the identity). Executor-neutral: the executor only says how files of the source are read.
 */
export async function loadRunTask(options: LoadRunTaskOptions): Promise<RunTask> {
  const { run, secrets, readSourceFile } = options;
  const { spec } = run;
  const text = spec.encodedTaskContent
    ? decode(spec.encodedTaskContent)
    : await readSourceFile(spec.taskFilePath ?? 'acb.yaml', 'the task file');
  const valuesText = spec.encodedValuesContent
    ? decode(spec.encodedValuesContent)
    : spec.valuesFilePath
      ? await readSourceFile(spec.valuesFilePath, 'the values file')
      : '';
  const valuesFile = parseValuesFile(valuesText, spec.valuesFilePath ?? 'encodedValuesContent');
  const values = spec.values.map((v) => ({
    name: v.name,
    value: v.isSecret ? (secrets.values?.[v.name] ?? '') : (v.value ?? ''),
  }));
  const data = (secretValues: Readonly<Record<string, string>>): TemplateData =>
    templateData(
      {
        runId: run.runId,
        registry: options.registry,
        date: new Date(run.createTime),
        platform: run.platform,
        taskName: run.taskName,
        commit: options.commit,
        branch: options.branch,
        repository: spec.sourceLocation && isGitSource(spec.sourceLocation) ? spec.sourceLocation : undefined,
        triggeredBy: run.runType === 'QuickRun' ? 'manual' : undefined,
        sharedVolume: options.sharedVolume,
      },
      values,
      valuesFile,
      secretValues,
    );
  const file = spec.taskFilePath ?? 'the encoded task';
  // The second rendering reads the same alias files: each is fetched once.
  const aliasFiles = new Map<string, Promise<string>>();
  const readAliasSource = (src: string): Promise<string> => {
    let read = aliasFiles.get(src);
    if (!read) {
      read = /^https?:\/\//i.test(src)
        ? fetchAliasFile(options.http, src, options.maxAliasBytes)
        : readSourceFile(src, 'the alias file');
      aliasFiles.set(src, read);
    }
    return read;
  };
  try {
    const given = secrets.values ?? {};
    const task = await loadTaskFile(text, { data: data(given), readAliasSource });
    const fromVault = options.keyVault ? task.secrets.filter((s) => s.keyvault) : [];
    for (const secret of task.secrets) {
      if (fromVault.includes(secret) || given[secret.id] !== undefined) continue;
      throw new AcbError(
        options.keyVault
          ? `secret '${secret.id}' has no keyvault: give the Key Vault secret URI that holds it`
          : `secret '${secret.id}': Key Vault references are resolved by Refit in Azure; on this machine give the value as a secret value named '${secret.id}' (refit run --set-secret ${secret.id}=...)`,
      );
    }
    if (fromVault.length === 0) return { ...task, keyVaultSecrets: {} };
    const keyVaultSecrets = Object.fromEntries(
      await Promise.all(
        fromVault.map(async (secret) => {
          try {
            const value = await options.keyVault!.resolve(secret.keyvault!, {
              field: `secrets (${secret.id}).keyvault`,
              ...(secret.clientID ? { clientId: secret.clientID } : {}),
            });
            return [secret.id, value] as const;
          } catch (err) {
            if (err instanceof RefitError) throw new AcbError(`secret '${secret.id}': ${err.message}`);
            throw err;
          }
        }),
      ),
    );
    const rendered = await loadTaskFile(text, {
      data: data({ ...given, ...keyVaultSecrets }),
      readAliasSource,
    });
    return { ...rendered, keyVaultSecrets };
  } catch (err) {
    if (err instanceof AcbError) throw new AcbError(`${file}: ${err.message}`);
    throw err;
  }
}
