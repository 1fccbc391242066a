/**
 * The auth changes that go through the log, already checked and prepared by the member that
 * received them: passwords arrive here hashed (never in plain text, and never hashed at apply
 * time, so applying stays cheap and every member stores the same bytes).
 */
import type { Permission } from './types.ts';

export type AuthRequest =
  | { readonly op: 'authEnable' }
  | { readonly op: 'authDisable' }
  /**
   * Issues a token for a user whose password the proposer checked at auth revision
   * `checkedRevision`; refused as stale if the revision moved since. A simple token is
   * `${tokenPrefix}.${entry index}`, registered by every member as it applies the entry.
   */
  | { readonly op: 'authenticate'; readonly name: string; readonly tokenPrefix: string; readonly checkedRevision: number }
  /** `password`: the hash; empty with `noPassword`. */
  | { readonly op: 'userAdd'; readonly name: string; readonly password: Uint8Array; readonly noPassword: boolean }
  | { readonly op: 'userDelete'; readonly name: string }
  | { readonly op: 'userChangePassword'; readonly name: string; readonly password: Uint8Array }
  | { readonly op: 'userGrantRole'; readonly user: string; readonly role: string }
  | { readonly op: 'userRevokeRole'; readonly name: string; readonly role: string }
  | { readonly op: 'roleAdd'; readonly name: string }
  | { readonly op: 'roleDelete'; readonly role: string }
  | { readonly op: 'roleGrantPermission'; readonly name: string; readonly permission: Permission }
  | { readonly op: 'roleRevokePermission'; readonly role: string; readonly key: Uint8Array; readonly rangeEnd: Uint8Array };

export type AuthOp = AuthRequest['op'];

export const AUTH_OPS: readonly AuthOp[] = [
  'authEnable',
  'authDisable',
  'authenticate',
  'userAdd',
  'userDelete',
  'userChangePassword',
  'userGrantRole',
  'userRevokeRole',
  'roleAdd',
  'roleDelete',
  'roleGrantPermission',
  'roleRevokePermission',
];

const AUTH_OP_SET: ReadonlySet<string> = new Set(AUTH_OPS);

export function isAuthRequest(r: { readonly op: string }): r is AuthRequest {
  return AUTH_OP_SET.has(r.op);
}
