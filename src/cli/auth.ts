/** `conclave user …`, `role …` and `auth …`: etcdctl's auth management commands and output. */
import { Command, Option } from 'commander';
import { prefixEnd, type Client, type Permission, type PermissionType, type ResponseHeader } from '../client/index.ts';
import { clientAction, UsageError, withGlobalOptions, type Args, type GlobalOptions } from './client-options.ts';
import { headerJson, print, toJson, type Json } from './output.ts';

/** A command whose answer is a header: "simple" prints `message`, "json" the header. */
function simpleCommand(name: string, description: string, args: readonly string[], run: (client: Client, args: Args, o: GlobalOptions & Record<string, unknown>) => Promise<{ header: ResponseHeader; message: string }>): Command {
  const cmd = new Command(name).description(description);
  for (const a of args) cmd.argument(a);
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions & Record<string, unknown>>(async (client, o, a) => {
      const r = await run(client, a, o);
      print(o.writeOut === 'json' ? `${toJson({ header: headerJson(r.header) })}\n` : `${r.message}\n`);
    }),
  );
}

/** "name:password", or a name with --new-user-password / --interactive=false style password in the argument. */
function nameAndPassword(arg: string, o: Record<string, unknown>): { name: string; password: string } {
  const colon = arg.indexOf(':');
  if (colon >= 0) return { name: arg.slice(0, colon), password: arg.slice(colon + 1) };
  if (o.password === false) return { name: arg, password: '' };
  if (typeof o.newUserPassword === 'string') return { name: arg, password: o.newUserPassword };
  throw new UsageError('give the password as <name>:<password> or with --new-user-password');
}

function out(o: GlobalOptions, json: () => Json, simple: () => string): void {
  print(o.writeOut === 'json' ? `${toJson(json())}\n` : simple());
}

export function userCommand(): Command {
  const add = simpleCommand('add', 'Adds a new user', ['<user>'], async (c, [arg], o) => {
    const { name, password } = nameAndPassword(arg as string, o);
    return { header: await c.auth.userAdd(name, password, { noPassword: o.password === false }), message: `User ${name} created` };
  })
    .option('--new-user-password <password>', 'supply password from the command line flag')
    .option('--no-password', 'create a user without password (CN based auth only)');
  const get = withGlobalOptions(new Command('get').description('Gets detailed information of a user').argument('<user>')).action(
    clientAction<GlobalOptions>(async (c, o, [name]) => {
      const r = await c.auth.userGet(name as string);
      out(o, () => ({ header: headerJson(r.header), roles: r.roles }), () => `User: ${name as string}\nRoles: ${r.roles.join(' ')}\n`);
    }),
  );
  const list = withGlobalOptions(new Command('list').description('Lists all users')).action(
    clientAction<GlobalOptions>(async (c, o) => {
      const r = await c.auth.userList();
      out(o, () => ({ header: headerJson(r.header), users: r.users }), () => r.users.map((u) => `${u}\n`).join(''));
    }),
  );
  const passwd = simpleCommand('passwd', 'Changes password of user', ['<user>'], async (c, [arg], o) => {
    const { name, password } = nameAndPassword(arg as string, o);
    return { header: await c.auth.userChangePassword(name, password), message: 'Password updated' };
  }).option('--new-user-password <password>', 'supply password from the command line flag');
  return new Command('user')
    .description('User related commands')
    .addCommand(add)
    .addCommand(get)
    .addCommand(list)
    .addCommand(simpleCommand('delete', 'Deletes a user', ['<user>'], async (c, [name]) => ({ header: await c.auth.userDelete(name as string), message: `User ${name as string} deleted` })))
    .addCommand(passwd)
    .addCommand(
      simpleCommand('grant-role', 'Grants a role to a user', ['<user>', '<role>'], async (c, [user, role]) => ({
        header: await c.auth.userGrantRole(user as string, role as string),
        message: `Role ${role as string} is granted to user ${user as string}`,
      })),
    )
    .addCommand(
      simpleCommand('revoke-role', 'Revokes a role from a user', ['<user>', '<role>'], async (c, [user, role]) => ({
        header: await c.auth.userRevokeRole(user as string, role as string),
        message: `Role ${role as string} is revoked from user ${user as string}`,
      })),
    );
}

/** A permission's keys as etcdctl prints them under "KV Read:" / "KV Write:". */
function permissionLine(p: Permission): string {
  const key = p.key.toString('utf8');
  if (p.rangeEnd.length === 0) return `\t${key}\n`;
  const end = p.rangeEnd.toString('utf8');
  let line = end === '\0' ? `\t[${key}, <open ended>` : `\t[${key}, ${end})`;
  if (prefixEnd(p.key).equals(p.rangeEnd)) line += ` (prefix ${key})`;
  return `${line}\n`;
}

function roleGetSimple(role: string, perms: readonly Permission[]): string {
  const reads = perms.filter((p) => p.type !== 'WRITE').map(permissionLine);
  const writes = perms.filter((p) => p.type !== 'READ').map(permissionLine);
  return `Role ${role}\nKV Read:\n${reads.join('')}KV Write:\n${writes.join('')}`;
}

interface RangeOpts {
  prefix?: boolean;
  fromKey?: boolean;
}

function rangeSelector(o: RangeOpts, rangeEnd: string | undefined): { prefix?: boolean; fromKey?: boolean; rangeEnd?: string } {
  if ([o.prefix === true, o.fromKey === true, rangeEnd !== undefined].filter(Boolean).length > 1) throw new UsageError('--prefix, --from-key and a range end exclude each other');
  return { ...(o.prefix === true ? { prefix: true } : {}), ...(o.fromKey === true ? { fromKey: true } : {}), ...(rangeEnd !== undefined ? { rangeEnd } : {}) };
}

export function roleCommand(): Command {
  const get = withGlobalOptions(new Command('get').description('Gets detailed information of a role').argument('<role>')).action(
    clientAction<GlobalOptions>(async (c, o, [role]) => {
      const r = await c.auth.roleGet(role as string);
      out(
        o,
        () => ({ header: headerJson(r.header), perm: r.permissions.map((p) => ({ permType: ['READ', 'WRITE', 'READWRITE'].indexOf(p.type), key: p.key, range_end: p.rangeEnd })) }),
        () => roleGetSimple(role as string, r.permissions),
      );
    }),
  );
  const list = withGlobalOptions(new Command('list').description('Lists all roles')).action(
    clientAction<GlobalOptions>(async (c, o) => {
      const r = await c.auth.roleList();
      out(o, () => ({ header: headerJson(r.header), roles: r.roles }), () => r.roles.map((x) => `${x}\n`).join(''));
    }),
  );
  const grant = simpleCommand('grant-permission', 'Grants a key to a role', ['<role>', '<permission type>', '<key>', '[range_end]'], async (c, [role, type, key, end], o) => {
    const t = (type as string).toUpperCase();
    if (t !== 'READ' && t !== 'WRITE' && t !== 'READWRITE') throw new UsageError(`invalid permission type ${JSON.stringify(type)} (read, write or readwrite)`);
    const header = await c.auth.roleGrantPermission(role as string, t as PermissionType, key as string, rangeSelector(o as RangeOpts, end as string | undefined));
    return { header, message: `Role ${role as string} updated` };
  })
    .addOption(new Option('--prefix', 'grant a prefix permission'))
    .addOption(new Option('--from-key', 'grant a permission of keys that are greater than or equal to the given key using byte compare'));
  const revoke = simpleCommand('revoke-permission', 'Revokes a key from a role', ['<role>', '<key>', '[range_end]'], async (c, [role, key, end], o) => {
    const sel = rangeSelector(o as RangeOpts, end as string | undefined);
    const header = await c.auth.roleRevokePermission(role as string, key as string, sel);
    const what = Object.keys(sel).length === 0 ? `key ${key as string}` : `range [${key as string}, ${sel.rangeEnd ?? (sel.fromKey === true ? '<open ended>' : prefixEnd(Buffer.from(key as string)).toString('utf8'))})`;
    return { header, message: `Permission of ${what} is revoked from role ${role as string}` };
  })
    .addOption(new Option('--prefix', 'revoke a prefix permission'))
    .addOption(new Option('--from-key', 'revoke a permission of keys that are greater than or equal to the given key using byte compare'));
  return new Command('role')
    .description('Role related commands')
    .addCommand(simpleCommand('add', 'Adds a new role', ['<role>'], async (c, [role]) => ({ header: await c.auth.roleAdd(role as string), message: `Role ${role as string} created` })))
    .addCommand(get)
    .addCommand(list)
    .addCommand(simpleCommand('delete', 'Deletes a role', ['<role>'], async (c, [role]) => ({ header: await c.auth.roleDelete(role as string), message: `Role ${role as string} deleted` })))
    .addCommand(grant)
    .addCommand(revoke);
}

export function authCommand(): Command {
  const status = withGlobalOptions(new Command('status').description('Returns authentication status')).action(
    clientAction<GlobalOptions>(async (c, o) => {
      const r = await c.auth.status();
      out(o, () => ({ header: headerJson(r.header), enabled: r.enabled, authRevision: r.authRevision }), () => `Authentication Status: ${r.enabled}\nAuthRevision: ${r.authRevision}\n`);
    }),
  );
  return new Command('auth')
    .description('Enable or disable authentication')
    .addCommand(simpleCommand('enable', 'Enables authentication', [], async (c) => ({ header: await c.auth.enable(), message: 'Authentication Enabled' })))
    .addCommand(simpleCommand('disable', 'Disables authentication', [], async (c) => ({ header: await c.auth.disable(), message: 'Authentication Disabled' })))
    .addCommand(status);
}
