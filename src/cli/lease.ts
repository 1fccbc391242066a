/** `conclave lease grant|revoke|timetolive|list|keep-alive`: etcdctl's lease commands and output. */
import { Command } from 'commander';
import { clientAction, UsageError, withGlobalOptions, type GlobalOptions } from './client-options.ts';
import { headerJson, leaseHex, print, toJson, type Json } from './output.ts';
import { parseLeaseId } from './txn-parse.ts';

function out(format: string, json: () => Json, simple: () => string): void {
  print(format === 'json' ? `${toJson(json())}\n` : simple());
}

function grantCommand(): Command {
  return withGlobalOptions(new Command('grant').description('Creates leases').argument('<ttl>', 'time to live in seconds')).action(
    clientAction<GlobalOptions>(async (client, o, [ttlText]) => {
      const ttl = Number(ttlText);
      if (!Number.isInteger(ttl)) throw new UsageError(`bad TTL (${JSON.stringify(ttlText)})`);
      const r = await client.grant(ttl);
      out(o.writeOut, () => ({ ...(headerJson(r.header) as object), ID: r.id, TTL: r.ttl }), () => `lease ${leaseHex(r.id)} granted with TTL(${r.ttl}s)\n`);
    }),
  );
}

function revokeCommand(): Command {
  return withGlobalOptions(new Command('revoke').description('Revokes leases (and deletes their keys)').argument('<leaseID>', 'lease id in hex')).action(
    clientAction<GlobalOptions>(async (client, o, [id]) => {
      const lease = parseLeaseId(id as string);
      const h = await client.revoke(lease);
      out(o.writeOut, () => ({ header: headerJson(h) }), () => `lease ${leaseHex(lease)} revoked\n`);
    }),
  );
}

function timeToLiveCommand(): Command {
  const cmd = new Command('timetolive').description('Get lease information').argument('<leaseID>', 'lease id in hex').option('--keys', 'get keys attached to this lease');
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions & { keys?: boolean }>(async (client, o, [id]) => {
      const r = await client.timeToLive(parseLeaseId(id as string), { keys: o.keys === true });
      out(
        o.writeOut,
        () => ({ ...(headerJson(r.header) as object), ID: r.id, TTL: r.ttl, 'granted-ttl': r.grantedTtl, keys: r.keys }),
        () => {
          if (r.ttl === -1) return `lease ${leaseHex(r.id)} already expired\n`;
          const keys = o.keys === true ? `, attached keys([${r.keys.map((k) => k.toString('utf8')).join(' ')}])` : '';
          return `lease ${leaseHex(r.id)} granted with TTL(${r.grantedTtl}s), remaining(${r.ttl}s)${keys}\n`;
        },
      );
    }),
  );
}

function listCommand(): Command {
  return withGlobalOptions(new Command('list').description('List all active leases')).action(
    clientAction<GlobalOptions>(async (client, o) => {
      const r = await client.leases();
      out(
        o.writeOut,
        () => ({ header: headerJson(r.header), leases: r.ids.map((ID) => ({ ID })) }),
        () => `found ${r.ids.length} leases\n${r.ids.map((id) => `${leaseHex(id)}\n`).join('')}`,
      );
    }),
  );
}

function keepAliveCommand(): Command {
  const cmd = new Command('keep-alive').description('Keeps a lease alive until interrupted (or once with --once)').argument('<leaseID>', 'lease id in hex').option('--once', 'renew the lease once, then exit');
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions & { once?: boolean }>(async (client, o, [id]) => {
      const lease = await client.keepAlive(parseLeaseId(id as string));
      const line = (ttl: number): void => out(o.writeOut, () => ({ ID: lease.id, TTL: ttl }), () => `lease ${leaseHex(lease.id)} keepalived with TTL(${ttl})\n`);
      const done = new Promise<string | null>((resolve) => {
        lease.on('keepalive', (ttl) => {
          line(ttl);
          if (o.once === true) resolve(null);
        });
        void lease.lost.then(() => resolve(`lease ${leaseHex(lease.id)} expired or revoked.`));
        process.once('SIGINT', () => resolve(null));
        process.once('SIGTERM', () => resolve(null));
      });
      const ended = await done;
      lease.close();
      if (ended !== null) print(`${ended}\n`);
    }),
  );
}

export function leaseCommand(): Command {
  return new Command('lease')
    .description('Lease related commands')
    .addCommand(grantCommand())
    .addCommand(revokeCommand())
    .addCommand(timeToLiveCommand())
    .addCommand(listCommand())
    .addCommand(keepAliveCommand());
}
