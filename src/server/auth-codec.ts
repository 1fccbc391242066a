/**
 * Entry-payload encoding of the auth requests (see request-codec.ts for the envelope): names as
 * strings, hashed passwords and permission keys as length-prefixed bytes, a permission's type as
 * its index in PERMISSION_TYPES.
 */
import { PERMISSION_TYPES, type AuthRequest } from '../auth/index.ts';
import { CodecError, type Reader, type Writer } from '../util/binary.ts';

export function writeAuthRequest(w: Writer, r: AuthRequest): void {
  switch (r.op) {
    case 'authEnable':
    case 'authDisable':
      return;
    case 'authenticate':
      w.string(r.name);
      w.string(r.tokenPrefix);
      return w.uint(r.checkedRevision);
    case 'userAdd':
      w.string(r.name);
      w.bytes(r.password);
      return w.bool(r.noPassword);
    case 'userDelete':
      return w.string(r.name);
    case 'userChangePassword':
      w.string(r.name);
      return w.bytes(r.password);
    case 'userGrantRole':
      w.string(r.user);
      return w.string(r.role);
    case 'userRevokeRole':
      w.string(r.name);
      return w.string(r.role);
    case 'roleAdd':
      return w.string(r.name);
    case 'roleDelete':
      return w.string(r.role);
    case 'roleGrantPermission':
      w.string(r.name);
      w.u8(PERMISSION_TYPES.indexOf(r.permission.type));
      w.bytes(r.permission.key);
      return w.bytes(r.permission.rangeEnd);
    case 'roleRevokePermission':
      w.string(r.role);
      w.bytes(r.key);
      return w.bytes(r.rangeEnd);
  }
}

export function readAuthRequest(r: Reader, op: AuthRequest['op']): AuthRequest {
  switch (op) {
    case 'authEnable':
    case 'authDisable':
      return { op };
    case 'authenticate':
      return { op, name: r.string(), tokenPrefix: r.string(), checkedRevision: r.uint() };
    case 'userAdd':
      return { op, name: r.string(), password: r.bytes(), noPassword: r.bool() };
    case 'userDelete':
      return { op, name: r.string() };
    case 'userChangePassword':
      return { op, name: r.string(), password: r.bytes() };
    case 'userGrantRole':
      return { op, user: r.string(), role: r.string() };
    case 'userRevokeRole':
      return { op, name: r.string(), role: r.string() };
    case 'roleAdd':
      return { op, name: r.string() };
    case 'roleDelete':
      return { op, role: r.string() };
    case 'roleGrantPermission': {
      const name = r.string();
      const type = PERMISSION_TYPES[r.u8()];
      if (type === undefined) throw new CodecError('unknown permission type');
      return { op, name, permission: { type, key: r.bytes(), rangeEnd: r.bytes() } };
    }
    case 'roleRevokePermission':
      return { op, role: r.string(), key: r.bytes(), rangeEnd: r.bytes() };
  }
}
