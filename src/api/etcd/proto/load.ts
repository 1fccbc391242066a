// Loads Conclave's etcd v3 .proto definitions with protobufjs.
//
// Imports inside the .proto files are written relative to this directory
// (e.g. "mvccpb/kv.proto"), so the Root resolves every import against it.
// keepCase keeps etcd's original field names (create_revision, prev_kv, TTL,
// peerURLs ...) because the JSON gateway uses those names verbatim.

import path from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import type { Root, Service, Type } from "protobufjs";

/** Directory holding the .proto tree (this file's directory). */
export const PROTO_DIR: string = path.dirname(fileURLToPath(import.meta.url));

/** Every .proto file of the etcd v3 API, relative to PROTO_DIR. */
export const PROTO_FILES: readonly string[] = [
  "mvccpb/kv.proto",
  "authpb/auth.proto",
  "etcdserverpb/rpc.proto",
  "v3lockpb/v3lock.proto",
  "v3electionpb/v3election.proto",
];

/** Parses all etcd protos into a fresh, fully resolved Root. */
export function loadEtcdProtos(dir: string = PROTO_DIR): Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string =>
    path.isAbsolute(target) ? target : path.join(dir, target);
  root.loadSync(
    PROTO_FILES.map((f) => path.join(dir, f)),
    { keepCase: true },
  );
  root.resolveAll();
  return root;
}

let cached: Root | undefined;

/** Shared Root, parsed on first use. */
export function etcdProtoRoot(): Root {
  cached ??= loadEtcdProtos();
  return cached;
}

/** Looks up a message type by fully-qualified name, e.g. "etcdserverpb.PutRequest". */
export function etcdType(name: string): Type {
  return etcdProtoRoot().lookupType(name);
}

/** Looks up a service by fully-qualified name, e.g. "etcdserverpb.KV". */
export function etcdService(name: string): Service {
  return etcdProtoRoot().lookupService(name);
}
