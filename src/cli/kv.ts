/**
 * Key-value commands: get, put, del, txn, watch, compact — etcdctl's flags and its simple and
 * JSON output (and boxed tables as a Conclave extra).
 */
import { Command, Option } from 'commander';
import type { DeleteResult, GetOptions, GetResult, KeySelector, KeyValue, OpResult, PutResult, SortOrder, SortTarget, TxnResult, WatchEvent } from '../client/index.ts';
import { clientAction, UsageError, withGlobalOptions, type GlobalOptions } from './client-options.ts';
import { headerJson, kvJson, leaseHex, print, toJson, type Json } from './output.ts';
import { boxTable } from './table.ts';
import { parseLeaseId, parseTxn } from './txn-parse.ts';

/** Reads all of stdin (the value of put, the body of txn). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Key and value lines (with --keys-only the value line is there, empty, as etcdctl prints it). */
function kvLines(kvs: readonly KeyValue[], o: { valueOnly?: boolean } = {}): string {
  let out = '';
  for (const kv of kvs) {
    if (o.valueOnly !== true) out += `${kv.key.toString('utf8')}\n`;
    out += `${kv.value.toString('utf8')}\n`;
  }
  return out;
}

function kvTable(kvs: readonly KeyValue[]): string {
  return boxTable(
    ['KEY', 'VALUE', 'CREATE REVISION', 'MOD REVISION', 'VERSION', 'LEASE'],
    kvs.map((kv) => [kv.key.toString('utf8'), kv.value.toString('utf8'), String(kv.createRevision), String(kv.modRevision), String(kv.version), kv.lease === 0n ? '' : leaseHex(kv.lease)]),
  );
}

export function getJson(r: GetResult): Json {
  return { header: headerJson(r.header), kvs: r.kvs.map(kvJson), more: r.more, count: r.count };
}

function putJson(r: PutResult): Json {
  return { header: headerJson(r.header), prev_kv: r.prevKv === undefined ? undefined : kvJson(r.prevKv) };
}

function delJson(r: DeleteResult): Json {
  return { header: headerJson(r.header), deleted: r.deleted, prev_kvs: r.prevKvs.map(kvJson) };
}

function txnJson(r: TxnResult): Json {
  const one = (o: OpResult): Json => {
    switch (o.kind) {
      case 'get':
        return { response_range: getJson(o) };
      case 'put':
        return { response_put: putJson(o) };
      case 'delete':
        return { response_delete_range: delJson(o) };
      case 'txn':
        return { response_txn: txnJson(o) };
    }
  };
  return { header: headerJson(r.header), succeeded: r.succeeded, responses: r.responses.map(one) };
}

function putSimple(r: PutResult): string {
  return `OK\n${r.prevKv === undefined ? '' : kvLines([r.prevKv])}`;
}

function delSimple(r: DeleteResult): string {
  return `${r.deleted}\n${kvLines(r.prevKvs)}`;
}

function txnSimple(r: TxnResult): string {
  let out = r.succeeded ? 'SUCCESS\n' : 'FAILURE\n';
  for (const o of r.responses) {
    out += '\n';
    if (o.kind === 'get') out += kvLines(o.kvs);
    else if (o.kind === 'put') out += putSimple(o);
    else if (o.kind === 'delete') out += delSimple(o);
    else out += txnSimple(o);
  }
  return out;
}

/** Writes a result in the chosen format; `table` falls back to `simple` where it has none. */
function output(format: string, json: () => Json, simple: () => string, table?: () => string): void {
  if (format === 'json') print(`${toJson(json())}\n`);
  else if (format === 'table' && table !== undefined) print(table());
  else print(simple());
}

function selector(opts: { prefix?: boolean; fromKey?: boolean }, rangeEnd: string | undefined): KeySelector {
  const sel: KeySelector = {};
  if (opts.prefix === true) sel.prefix = true;
  if (opts.fromKey === true) sel.fromKey = true;
  if (rangeEnd !== undefined) sel.rangeEnd = rangeEnd;
  if (Object.keys(sel).length > 1) throw new UsageError('`--prefix`, `--from-key` and a range end exclude each other');
  return sel;
}

function integerOption(text: string | undefined, name: string): number {
  if (text === undefined) return 0;
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid --${name} ${JSON.stringify(text)}`);
  return Number(text);
}

interface GetOpts extends GlobalOptions {
  prefix?: boolean;
  fromKey?: boolean;
  limit?: string;
  rev?: string;
  sortBy?: string;
  order?: string;
  keysOnly?: boolean;
  countOnly?: boolean;
  printValueOnly?: boolean;
  consistency: string;
}

const SORT_TARGETS: Record<string, SortTarget> = { CREATE: 'CREATE', KEY: 'KEY', MODIFY: 'MOD', VALUE: 'VALUE', VERSION: 'VERSION' };

function getCommand(): Command {
  const cmd = new Command('get')
    .description('Gets the key or a range of keys')
    .argument('<key>', 'the key, or the start of the range')
    .argument('[range_end]', 'end of the range [key, range_end)')
    .option('--prefix', 'get keys with matching prefix')
    .option('--from-key', "get keys that are greater than or equal to the given key using byte compare")
    .option('--limit <n>', 'maximum number of results')
    .option('--rev <revision>', 'specify the kv revision')
    .addOption(new Option('--sort-by <target>', 'sort target').choices(['CREATE', 'KEY', 'MODIFY', 'VALUE', 'VERSION']))
    .addOption(new Option('--order <order>', 'order of sort').choices(['ASCEND', 'DESCEND']))
    .option('--keys-only', 'get only the keys')
    .option('--count-only', 'get only the count')
    .option('--print-value-only', 'only write values when using the "simple" output format')
    .addOption(new Option('--consistency <l|s>', 'linearizable (l) or serializable (s)').choices(['l', 's']).default('l'));
  return withGlobalOptions(cmd).action(
    clientAction<GetOpts>(async (client, o, [key, rangeEnd]) => {
      const options: GetOptions = { ...selector(o, rangeEnd as string | undefined), limit: integerOption(o.limit, 'limit'), revision: integerOption(o.rev, 'rev') };
      if (o.sortBy !== undefined || o.order !== undefined) options.sort = { target: SORT_TARGETS[o.sortBy ?? 'KEY']!, order: (o.order ?? 'ASCEND') as SortOrder };
      if (o.consistency === 's') options.serializable = true;
      if (o.keysOnly === true) options.keysOnly = true;
      if (o.countOnly === true) options.countOnly = true;
      const r = await client.get(key as string, options);
      output(
        o.writeOut,
        () => getJson(r),
        () => (o.countOnly === true ? `${r.count}\n` : kvLines(r.kvs, { valueOnly: o.printValueOnly })),
        () => kvTable(r.kvs),
      );
    }),
  );
}

interface PutOpts extends GlobalOptions {
  lease?: string;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

function putCommand(): Command {
  const cmd = new Command('put')
    .description('Puts the given key into the store (the value from stdin when it is not given)')
    .argument('<key>', 'the key')
    .argument('[value]', 'the value (read from stdin when absent)')
    .option('--lease <id>', 'lease ID (in hexadecimal) to attach to the key')
    .option('--prev-kv', 'return the previous key-value pair before modification')
    .option('--ignore-value', 'updates the key using its current value')
    .option('--ignore-lease', 'updates the key using its current lease');
  return withGlobalOptions(cmd).action(
    clientAction<PutOpts>(async (client, o, [key, given]) => {
      let value = given as string | undefined;
      if (value !== undefined && o.ignoreValue === true) throw new UsageError('put command needs only 1 argument when --ignore-value is set');
      if (value === undefined && o.ignoreValue !== true) value = await readStdin();
      const r = await client.put(key as string, value ?? '', {
        ...(o.lease !== undefined ? { lease: parseLeaseId(o.lease) } : {}),
        prevKv: o.prevKv === true,
        ignoreValue: o.ignoreValue === true,
        ignoreLease: o.ignoreLease === true,
      });
      output(o.writeOut, () => putJson(r), () => putSimple(r));
    }),
  );
}

interface DelOpts extends GlobalOptions {
  prefix?: boolean;
  fromKey?: boolean;
  prevKv?: boolean;
}

function delCommand(): Command {
  const cmd = new Command('del')
    .description('Removes the specified key or range of keys [key, range_end)')
    .argument('<key>', 'the key, or the start of the range')
    .argument('[range_end]', 'end of the range')
    .option('--prefix', 'delete keys with matching prefix')
    .option('--from-key', 'delete keys that are greater than or equal to the given key using byte compare')
    .option('--prev-kv', 'return deleted key-value pairs');
  return withGlobalOptions(cmd).action(
    clientAction<DelOpts>(async (client, o, [key, rangeEnd]) => {
      const r = await client.delete(key as string, { ...selector(o, rangeEnd as string | undefined), prevKv: o.prevKv === true });
      output(o.writeOut, () => delJson(r), () => delSimple(r));
    }),
  );
}

function txnCommand(): Command {
  const cmd = new Command('txn').description(
    'Txn processes all the requests in one transaction, read from stdin: compares, a blank line, success requests, a blank line, failure requests',
  );
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions>(async (client, o) => {
      const t = parseTxn(await readStdin());
      const r = await client
        .txn()
        .if(...t.compares)
        .then(...t.success)
        .else(...t.failure)
        .commit();
      output(o.writeOut, () => txnJson(r), () => txnSimple(r));
    }),
  );
}

interface WatchOpts extends GlobalOptions {
  prefix?: boolean;
  rev?: string;
  prevKv?: boolean;
}

function eventSimple(e: WatchEvent): string {
  return `${e.type.toUpperCase()}\n${e.prevKv === undefined ? '' : kvLines([e.prevKv])}${kvLines([e.kv])}`;
}

function eventJson(e: WatchEvent): Json {
  return { type: e.type === 'delete' ? 'DELETE' : 'PUT', kv: kvJson(e.kv), prev_kv: e.prevKv === undefined ? undefined : kvJson(e.prevKv) };
}

function watchCommand(): Command {
  const cmd = new Command('watch')
    .description('Watches events stream on keys or prefixes until interrupted')
    .argument('<key>', 'the key, or the start of the range')
    .argument('[range_end]', 'end of the range')
    .option('--prefix', 'watch on a prefix if prefix is set')
    .option('--rev <revision>', 'revision to start watching')
    .option('--prev-kv', 'get the previous key-value pair before the event happens');
  return withGlobalOptions(cmd).action(
    clientAction<WatchOpts>(async (client, o, [key, rangeEnd]) => {
      const startRevision = integerOption(o.rev, 'rev');
      const watcher = client.watch(key as string, { ...selector(o, rangeEnd as string | undefined), prevKv: o.prevKv === true, ...(startRevision > 0 ? { startRevision } : {}) });
      const stop = (): void => watcher.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        for await (const e of watcher) output(o.writeOut, () => eventJson(e), () => eventSimple(e));
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    }),
  );
}

interface CompactOpts extends GlobalOptions {
  physical?: boolean;
}

function compactCommand(): Command {
  const cmd = new Command('compact')
    .description('Compacts the event history in the store up to the given revision')
    .argument('<revision>', 'revision to compact up to')
    .option('--physical', 'wait until the compaction has physically freed the space');
  return withGlobalOptions(cmd).action(
    clientAction<CompactOpts>(async (client, o, [rev]) => {
      const revision = integerOption(rev as string, 'revision');
      const h = await client.compact(revision, { physical: o.physical === true });
      output(o.writeOut, () => ({ header: headerJson(h) }), () => `compacted revision ${revision}\n`);
    }),
  );
}

export function kvCommands(): Command[] {
  return [getCommand(), putCommand(), delCommand(), txnCommand(), watchCommand(), compactCommand()];
}
