/**
 * The Auth service's management calls: enabling auth, users, roles and their key-range
 * permissions (etcdctl's `auth`, `user` and `role` commands). Managing auth needs the root role
 * once auth is enabled. (Authenticate itself is rpc.ts's business.)
 */
import { bytes, num, type Int64 } from '../api/etcd/convert.ts';
import { fromHeader, keyRange, type Bytes, type KeySelector, type PbHeaderIn, type ResponseHeader } from './kv.ts';
import { method, type CallOptions, type Rpc, type Safety } from './rpc.ts';

export type PermissionType = 'READ' | 'WRITE' | 'READWRITE';

const PERMISSION_TYPES: readonly PermissionType[] = ['READ', 'WRITE', 'READWRITE'];

export interface Permission {
  type: PermissionType;
  key: Buffer;
  /** Empty: the single key; "\0": every key from `key` on; else [key, rangeEnd). */
  rangeEnd: Buffer;
}

export interface AuthStatusResult {
  header: ResponseHeader;
  enabled: boolean;
  authRevision: number;
}

interface PbPermissionIn {
  permType: number;
  key: Uint8Array;
  range_end: Uint8Array;
}

interface PbAuthResponseIn {
  header: PbHeaderIn | null;
  enabled?: boolean;
  authRevision?: Int64;
  roles?: string[];
  users?: string[];
  perm?: PbPermissionIn[];
}

const m = (name: string) => method('etcdserverpb.Auth', name);
const AUTH = {
  enable: m('AuthEnable'),
  disable: m('AuthDisable'),
  status: m('AuthStatus'),
  userAdd: m('UserAdd'),
  userGet: m('UserGet'),
  userList: m('UserList'),
  userDelete: m('UserDelete'),
  userChangePassword: m('UserChangePassword'),
  userGrantRole: m('UserGrantRole'),
  userRevokeRole: m('UserRevokeRole'),
  roleAdd: m('RoleAdd'),
  roleGet: m('RoleGet'),
  roleList: m('RoleList'),
  roleDelete: m('RoleDelete'),
  roleGrantPermission: m('RoleGrantPermission'),
  roleRevokePermission: m('RoleRevokePermission'),
} as const;

export class Auth {
  constructor(private readonly rpc: Rpc) {}

  private async call(desc: keyof typeof AUTH, request: object, safety: Safety, options: CallOptions | undefined): Promise<PbAuthResponseIn> {
    return this.rpc.unary<PbAuthResponseIn>(AUTH[desc], request, safety, options);
  }

  async enable(options?: CallOptions): Promise<ResponseHeader> {
    return fromHeader((await this.call('enable', {}, 'mutation', options)).header);
  }

  async disable(options?: CallOptions): Promise<ResponseHeader> {
    return fromHeader((await this.call('disable', {}, 'mutation', options)).header);
  }

  async status(options?: CallOptions): Promise<AuthStatusResult> {
    const r = await this.call('status', {}, 'idempotent', options);
    return { header: fromHeader(r.header), enabled: r.enabled === true, authRevision: num(r.authRevision) };
  }

  /** Adds a user; without a password (`noPassword`) it can authenticate only by TLS certificate. */
  async userAdd(name: string, password: string, options?: { noPassword?: boolean } & CallOptions): Promise<ResponseHeader> {
    const noPassword = options?.noPassword === true;
    return fromHeader((await this.call('userAdd', { name, password: noPassword ? '' : password, options: { no_password: noPassword } }, 'mutation', options)).header);
  }

  async userGet(name: string, options?: CallOptions): Promise<{ header: ResponseHeader; roles: string[] }> {
    const r = await this.call('userGet', { name }, 'idempotent', options);
    return { header: fromHeader(r.header), roles: r.roles ?? [] };
  }

  async userList(options?: CallOptions): Promise<{ header: ResponseHeader; users: string[] }> {
    const r = await this.call('userList', {}, 'idempotent', options);
    return { header: fromHeader(r.header), users: r.users ?? [] };
  }

  async userDelete(name: string, options?: CallOptions): Promise<ResponseHeader> {
    return fromHeader((await this.call('userDelete', { name }, 'mutation', options)).header);
  }

  async userChangePassword(name: string, password: string, options?: CallOptions): Promise<ResponseHeader> {
    return fromHeader((await this.call('userChangePassword', { name, password }, 'mutation', options)).header);
  }

  async userGrantRole(user: string, role: string, options?: CallOptions): Promise<ResponseHeader> {
    return fromHeader((await this.call('userGrantRole', { user, role }, 'mutation', options)).header);
  }

  async userRevokeRole(name: string, role: string, options?: CallOptions): Promise<ResponseHeader> {
    return fromHeader((await this.call('userRevokeRole', { name, role }, 'mutation', options)).header);
  }

  async roleAdd(name: string, options?: CallOptions): Promise<ResponseHeader> {
    return fromHeader((await this.call('roleAdd', { name }, 'mutation', options)).header);
  }

  async roleGet(role: string, options?: CallOptions): Promise<{ header: ResponseHeader; permissions: Permission[] }> {
    const r = await this.call('roleGet', { role }, 'idempotent', options);
    const permissions = (r.perm ?? []).map((p) => ({
      type: PERMISSION_TYPES[p.permType] ?? 'READ',
      key: Buffer.from(bytes(p.key)),
      rangeEnd: Buffer.from(bytes(p.range_end)),
    }));
    return { header: fromHeader(r.header), permissions };
  }

  async roleList(options?: CallOptions): Promise<{ header: ResponseHeader; roles: string[] }> {
    const r = await this.call('roleList', {}, 'idempotent', options);
    return { header: fromHeader(r.header), roles: r.roles ?? [] };
  }

  async roleDelete(role: string, options?: CallOptions): Promise<ResponseHeader> {
    return fromHeader((await this.call('roleDelete', { role }, 'mutation', options)).header);
  }

  /** Grants `type` on a key, a prefix, a range or every key from `key` on (see KeySelector). */
  async roleGrantPermission(name: string, type: PermissionType, key: Bytes, sel?: KeySelector & CallOptions): Promise<ResponseHeader> {
    const range = keyRange(key, sel);
    const perm = { permType: PERMISSION_TYPES.indexOf(type), key: range.key, range_end: range.range_end ?? Buffer.alloc(0) };
    return fromHeader((await this.call('roleGrantPermission', { name, perm }, 'mutation', sel)).header);
  }

  async roleRevokePermission(role: string, key: Bytes, sel?: KeySelector & CallOptions): Promise<ResponseHeader> {
    const range = keyRange(key, sel);
    return fromHeader((await this.call('roleRevokePermission', { role, key: range.key, range_end: range.range_end ?? Buffer.alloc(0) }, 'mutation', sel)).header);
  }
}
