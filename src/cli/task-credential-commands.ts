import type { Command } from 'commander';
import { outputOption, print } from './args';
import { CliError, type RefitClient } from './client';
import { table, tsv } from './format';
import { taskPath } from './task-resource';

/** A custom registry's login as a task shows it: the user name and the types, never the password. */
interface ShownLogin {
  userName?: { type?: string; value?: string } | null;
  password?: { type?: string } | null;
  identity?: string | null;
}

type Logins = Record<string, ShownLogin>;

interface CredentialOptions {
  name: string;
  loginServer: string;
  username?: string;
  password?: string;
  useIdentity?: string;
}

/** The customRegistries entry the flags give, as az's get_custom_registry_credentials builds it. */
function loginOf(opts: CredentialOptions): Record<string, unknown> {
  if (opts.username !== undefined && opts.password === undefined)
    throw new CliError('-p/--password is required with -u/--username');
  if (opts.password !== undefined && opts.username === undefined)
    throw new CliError('-u/--username is required with -p/--password');
  if (opts.username === undefined) {
    if (opts.useIdentity === undefined)
      throw new CliError('give -u/--username and -p/--password (or --use-identity)');
    return { identity: opts.useIdentity };
  }
  return {
    userName: { type: 'Opaque', value: opts.username },
    password: { type: 'Opaque', value: opts.password },
    ...(opts.useIdentity !== undefined ? { identity: opts.useIdentity } : {}),
  };
}

function loginRow([server, login]: [string, ShownLogin]): string[] {
  return [
    server,
    login.userName?.value ?? '',
    login.userName?.type ?? '',
    login.password?.type ?? '',
    login.identity ?? '',
  ];
}

/** `refit task credential add|update|remove|list` (az acr task credential …): a task's custom registry logins. */
export function addCredentialCommands(task: Command, client: RefitClient): void {
  const credential = task
    .command('credential')
    .description('Custom registry logins of a task: add, update, remove, list.');
  const logins = async (name: string): Promise<Logins> => {
    const current = await client.json<{ properties: { credentials?: { customRegistries?: Logins } } }>(
      'GET',
      taskPath(name),
    );
    return current.properties.credentials?.customRegistries ?? {};
  };
  const patch = async (name: string, customRegistries: Record<string, unknown>): Promise<void> => {
    const updated = await client.json<{ properties: { credentials?: { customRegistries?: Logins } } }>(
      'PATCH',
      taskPath(name),
      { properties: { credentials: { customRegistries } } },
    );
    // As az prints: the task's custom registries after the change.
    print(updated.properties.credentials?.customRegistries ?? {});
  };
  const withLogin = (name: string, description: string): Command =>
    credential
      .command(name)
      .description(description)
      .requiredOption('-n, --name <name>', 'the task name')
      .requiredOption('--login-server <server>', 'the registry login server, e.g. registry.example.com:5000')
      .option('-u, --username <user>', 'the user name to log in with')
      .option('-p, --password <password>', 'the password (or token) to log in with')
      .option('--use-identity <identity>', 'a managed identity to log in with (Azure mode only)');

  withLogin('add', 'Add a registry login to a task.').action(async (opts: CredentialOptions) => {
    const login = loginOf(opts);
    if (opts.loginServer in (await logins(opts.name)))
      throw new CliError(
        `login server '${opts.loginServer}' already exists on task '${opts.name}': use refit task credential update`,
      );
    await patch(opts.name, { [opts.loginServer]: login });
  });

  withLogin('update', "Change a task's login to a registry.").action(async (opts: CredentialOptions) => {
    const login = loginOf(opts);
    if (!(opts.loginServer in (await logins(opts.name))))
      throw new CliError(
        `task '${opts.name}' has no login for '${opts.loginServer}': use refit task credential add`,
      );
    await patch(opts.name, { [opts.loginServer]: login });
  });

  credential
    .command('remove')
    .description("Remove a task's login to a registry.")
    .requiredOption('-n, --name <name>', 'the task name')
    .requiredOption('--login-server <server>', 'the registry login server')
    .action(async (opts: { name: string; loginServer: string }) => {
      if (!(opts.loginServer in (await logins(opts.name))))
        throw new CliError(`task '${opts.name}' has no login for '${opts.loginServer}'`);
      // ARM's merge: a login server set to null is removed.
      await patch(opts.name, { [opts.loginServer]: null });
    });

  credential
    .command('list')
    .description('List the registry logins of a task (passwords are never shown).')
    .requiredOption('-n, --name <name>', 'the task name')
    .addOption(outputOption())
    .action(async (opts: { name: string; output: 'json' | 'table' | 'tsv' }) => {
      const found = await logins(opts.name);
      const rows = Object.entries(found).map(loginRow);
      if (opts.output === 'table')
        process.stdout.write(
          table(['LOGIN SERVER', 'USERNAME', 'USERNAME TYPE', 'PASSWORD TYPE', 'IDENTITY'], rows) + '\n',
        );
      else if (opts.output === 'tsv') process.stdout.write(tsv(rows) + (rows.length ? '\n' : ''));
      else print(found);
    });
}
