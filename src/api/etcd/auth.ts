/**
 * etcd's Auth service: enable/disable/status, Authenticate, users and roles. Changes go through
 * the log and are checked there (root only once auth is enabled, except Authenticate); the reads
 * (UserGet, UserList, RoleGet, RoleList, AuthStatus) are answered from local state after a
 * linearizable barrier, with etcd's rules: a user may get itself and the roles it holds.
 * Passwords are hashed here, before proposing, so no plain password reaches the log.
 */
import type { Service } from 'protobufjs';
import type { CallContext, ServiceImpl } from '../grpc/index.ts';
import { checkName, hashPassword, NO_USER, PERMISSION_TYPES, AuthError, type AuthInfo, type AuthRequest } from '../../auth/index.ts';
import type { Member } from '../../server/member.ts';
import { fromAuthError, type Credentials } from '../../server/auth.ts';
import { serverError } from '../../server/errors.ts';
import { bytes, header } from './convert.ts';
import { grpcHandler } from './kv.ts';

/** Gateway paths of the Auth methods, as etcd's google.api.http annotations give them. */
export const AUTH_GATEWAY_PATHS: Record<string, string> = {
  AuthEnable: 'auth/enable',
  AuthDisable: 'auth/disable',
  AuthStatus: 'auth/status',
  Authenticate: 'auth/authenticate',
  UserAdd: 'auth/user/add',
  UserGet: 'auth/user/get',
  UserList: 'auth/user/list',
  UserDelete: 'auth/user/delete',
  UserChangePassword: 'auth/user/changepw',
  UserGrantRole: 'auth/user/grant',
  UserRevokeRole: 'auth/user/revoke',
  RoleAdd: 'auth/role/add',
  RoleGet: 'auth/role/get',
  RoleList: 'auth/role/list',
  RoleDelete: 'auth/role/delete',
  RoleGrantPermission: 'auth/role/grant',
  RoleRevokePermission: 'auth/role/revoke',
};

/** What the call presents: the `token` metadata (the gateway puts Authorization there) or a certificate name. */
export function credentials(call: CallContext): Credentials {
  const token = call.metadata.token ?? call.metadata.authorization;
  return call.tlsCommonName === undefined ? { token } : { token, commonName: call.tlsCommonName };
}

const NO_CALLER: Promise<AuthInfo> = Promise.resolve(NO_USER);

/** Who a call runs as (no user while auth is disabled: the common case, without any look-up). */
export function callerOf(member: Member, call: CallContext): Promise<AuthInfo> {
  if (!member.auth.state().enabled) return NO_CALLER;
  return member.auth.resolve(credentials(call));
}

interface PbPermission {
  permType: number;
  key: Uint8Array;
  range_end: Uint8Array;
}

interface PbName {
  name: string;
}
interface PbUserAdd {
  name: string;
  password: string;
  options: { no_password: boolean } | null;
  hashedPassword: string;
}
interface PbChangePassword {
  name: string;
  password: string;
  hashedPassword: string;
}
interface PbAuthenticate {
  name: string;
  password: string;
}
interface PbUserGrant {
  user: string;
  role: string;
}
interface PbUserRevoke {
  name: string;
  role: string;
}
interface PbRole {
  role: string;
}
interface PbRoleGrant {
  name: string;
  perm: PbPermission | null;
}
interface PbRoleRevoke {
  role: string;
  key: Uint8Array;
  range_end: Uint8Array;
}

/** Refuses a name the member could not store, before any hashing or proposing. */
function checkNameLength(name: string): void {
  try {
    checkName(name ?? '');
  } catch (e) {
    throw fromAuthError(e);
  }
}

/** A bcrypt hash (etcd ≥ 3.5 clients may send one) cannot be checked by this server's KDF. */
function refuseHashed(hashed: string): void {
  if (hashed !== undefined && hashed !== '') throw serverError('INVALID_ARGUMENT', 'pre-hashed passwords are not supported; send the password');
}

async function hash(password: string): Promise<Uint8Array> {
  try {
    return await hashPassword(password ?? '');
  } catch (e) {
    throw fromAuthError(e);
  }
}

export class AuthApi {
  constructor(private readonly member: Member) {}

  private head() {
    return { header: header(this.member.header()) };
  }

  private async change(request: AuthRequest, call: CallContext) {
    const as = await callerOf(this.member, call);
    await this.member.write(request, as);
    return this.head();
  }

  /** Caller of a read served locally, once the member has caught up with every committed change. */
  private async reader(call: CallContext): Promise<AuthInfo> {
    await this.member.linearizableBarrier();
    return callerOf(this.member, call);
  }

  enable(call: CallContext) {
    return this.change({ op: 'authEnable' }, call);
  }

  disable(call: CallContext) {
    return this.change({ op: 'authDisable' }, call);
  }

  /** etcd ≥ 3.5 (root only once enabled); 3.4 has no AuthStatus. */
  async status(call: CallContext) {
    const as = await this.reader(call);
    this.member.auth.checkAdmin(as);
    const state = this.member.auth.state();
    return { ...this.head(), enabled: state.enabled, authRevision: state.revision };
  }

  async authenticate(r: PbAuthenticate, call: CallContext) {
    const token = await this.member.auth.authenticate(r.name ?? '', r.password ?? '', credentials(call));
    return { ...this.head(), token };
  }

  async userAdd(r: PbUserAdd, call: CallContext) {
    checkNameLength(r.name);
    const noPassword = r.options?.no_password === true;
    if (!noPassword) refuseHashed(r.hashedPassword);
    const password = noPassword ? new Uint8Array(0) : await hash(r.password);
    return this.change({ op: 'userAdd', name: r.name ?? '', password, noPassword }, call);
  }

  async userGet(r: PbName, call: CallContext) {
    const as = await this.reader(call);
    const name = r.name ?? '';
    // etcd: a user may always look itself up (and no user may look up the user "").
    if (name !== as.user) this.member.auth.checkAdmin(as);
    const user = this.member.auth.state().user(name);
    if (user === undefined) throw serverError('AUTH_USER_NOT_FOUND');
    return { ...this.head(), roles: [...user.roles] };
  }

  async userList(call: CallContext) {
    this.member.auth.checkAdmin(await this.reader(call));
    return { ...this.head(), users: this.member.auth.state().users().map((u) => u.name) };
  }

  userDelete(r: PbName, call: CallContext) {
    return this.change({ op: 'userDelete', name: r.name ?? '' }, call);
  }

  async userChangePassword(r: PbChangePassword, call: CallContext) {
    refuseHashed(r.hashedPassword);
    return this.change({ op: 'userChangePassword', name: r.name ?? '', password: await hash(r.password) }, call);
  }

  userGrantRole(r: PbUserGrant, call: CallContext) {
    return this.change({ op: 'userGrantRole', user: r.user ?? '', role: r.role ?? '' }, call);
  }

  userRevokeRole(r: PbUserRevoke, call: CallContext) {
    return this.change({ op: 'userRevokeRole', name: r.name ?? '', role: r.role ?? '' }, call);
  }

  roleAdd(r: PbName, call: CallContext) {
    checkNameLength(r.name);
    return this.change({ op: 'roleAdd', name: r.name ?? '' }, call);
  }

  async roleGet(r: PbRole, call: CallContext) {
    const as = await this.reader(call);
    const name = r.role ?? '';
    const state = this.member.auth.state();
    // etcd: a user may look up the roles it holds.
    if (!state.hasRole(as.user, name)) this.member.auth.checkAdmin(as);
    const role = state.role(name);
    if (role === undefined) throw serverError('AUTH_ROLE_NOT_FOUND');
    return { ...this.head(), perm: role.permissions.map((p) => ({ permType: PERMISSION_TYPES.indexOf(p.type), key: p.key, range_end: p.rangeEnd })) };
  }

  async roleList(call: CallContext) {
    this.member.auth.checkAdmin(await this.reader(call));
    return { ...this.head(), roles: this.member.auth.state().roles().map((r) => r.name) };
  }

  roleDelete(r: PbRole, call: CallContext) {
    return this.change({ op: 'roleDelete', role: r.role ?? '' }, call);
  }

  roleGrantPermission(r: PbRoleGrant, call: CallContext) {
    if (r.perm === null || r.perm === undefined) throw fromAuthError(new AuthError('AUTH_PERMISSION_NOT_GIVEN'));
    const type = PERMISSION_TYPES[r.perm.permType ?? 0];
    if (type === undefined) throw serverError('INVALID_ARGUMENT', `invalid permission type ${r.perm.permType}`);
    return this.change({ op: 'roleGrantPermission', name: r.name ?? '', permission: { type, key: bytes(r.perm.key), rangeEnd: bytes(r.perm.range_end) } }, call);
  }

  roleRevokePermission(r: PbRoleRevoke, call: CallContext) {
    return this.change({ op: 'roleRevokePermission', role: r.role ?? '', key: bytes(r.key), rangeEnd: bytes(r.range_end) }, call);
  }
}

export function authService(api: AuthApi, service: Service): [Service, ServiceImpl] {
  return [
    service,
    {
      AuthEnable: grpcHandler((_: object, call) => api.enable(call)),
      AuthDisable: grpcHandler((_: object, call) => api.disable(call)),
      AuthStatus: grpcHandler((_: object, call) => api.status(call)),
      Authenticate: grpcHandler((r: PbAuthenticate, call) => api.authenticate(r, call)),
      UserAdd: grpcHandler((r: PbUserAdd, call) => api.userAdd(r, call)),
      UserGet: grpcHandler((r: PbName, call) => api.userGet(r, call)),
      UserList: grpcHandler((_: object, call) => api.userList(call)),
      UserDelete: grpcHandler((r: PbName, call) => api.userDelete(r, call)),
      UserChangePassword: grpcHandler((r: PbChangePassword, call) => api.userChangePassword(r, call)),
      UserGrantRole: grpcHandler((r: PbUserGrant, call) => api.userGrantRole(r, call)),
      UserRevokeRole: grpcHandler((r: PbUserRevoke, call) => api.userRevokeRole(r, call)),
      RoleAdd: grpcHandler((r: PbName, call) => api.roleAdd(r, call)),
      RoleGet: grpcHandler((r: PbRole, call) => api.roleGet(r, call)),
      RoleList: grpcHandler((_: object, call) => api.roleList(call)),
      RoleDelete: grpcHandler((r: PbRole, call) => api.roleDelete(r, call)),
      RoleGrantPermission: grpcHandler((r: PbRoleGrant, call) => api.roleGrantPermission(r, call)),
      RoleRevokePermission: grpcHandler((r: PbRoleRevoke, call) => api.roleRevokePermission(r, call)),
    },
  ];
}
