/**
 * `conclave member list|add|remove|update|promote` and `conclave endpoint health|status`,
 * with etcdctl's output. The endpoint commands ask each endpoint on its own (a client per
 * endpoint), so one dead member shows as one failed row, not as a failed command.
 */
import { Command } from 'commander';
import { Client, type MemberInfo, type MembersResult, type StatusResult } from '../client/index.ts';
import { clientAction, clientOptions, endpointList, errorLine, UsageError, withGlobalOptions, type GlobalOptions } from './client-options.ts';
import { headerJson, idNumber, print, toJson, type Json } from './output.ts';
import { humanBytes } from './snapshot.ts';
import { boxTable } from './table.ts';

function memberJson(m: MemberInfo): Json {
  return { ID: idNumber(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner };
}

/** etcdctl's member row: id, started/unstarted, name, peer URLs, client URLs, learner. */
function memberRow(m: MemberInfo): string[] {
  return [BigInt(`0x${m.id}`).toString(16), m.name === '' ? 'unstarted' : 'started', m.name, m.peerUrls.join(','), m.clientUrls.join(','), String(m.isLearner)];
}

function listCommand(): Command {
  return withGlobalOptions(new Command('list').description('Lists all members in the cluster')).action(
    clientAction<GlobalOptions>(async (client, o) => {
      const r = await client.cluster.list();
      if (o.writeOut === 'json') print(`${toJson({ header: headerJson(r.header), members: r.members.map(memberJson) })}\n`);
      else if (o.writeOut === 'table') print(boxTable(['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'], r.members.map(memberRow)));
      else print(r.members.map((m) => `${memberRow(m).join(', ')}\n`).join(''));
    }),
  );
}

function urls(text: string | undefined): string[] {
  const list = (text ?? '').split(',').filter((u) => u !== '');
  if (list.length === 0) throw new UsageError('member peer urls not provided');
  return list;
}

function idArg(id: unknown): string {
  return id as string;
}

function addCommand(): Command {
  const cmd = new Command('add')
    .description('Adds a member into the cluster')
    .argument('<memberName>', 'name of the new member')
    .option('--peer-urls <urls>', 'comma separated peer URLs for the new member')
    .option('--learner', 'indicates if the new member is raft learner');
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions & { peerUrls?: string; learner?: boolean }>(async (client, o, [name]) => {
      const r = await client.cluster.add(urls(o.peerUrls), { isLearner: o.learner === true });
      if (o.writeOut === 'json') {
        print(`${toJson({ header: headerJson(r.header), member: memberJson(r.member), members: r.members.map(memberJson) })}\n`);
        return;
      }
      // As etcdctl: the environment the new member starts with.
      const initial = r.members.flatMap((m) => m.peerUrls.map((u) => `${m.id === r.member.id ? (name as string) : m.name}=${u}`)).filter((e) => !e.startsWith('='));
      print(
        `Member ${BigInt(`0x${r.member.id}`).toString(16).padStart(16)} added to cluster ${BigInt(`0x${r.header.clusterId}`).toString(16).padStart(16)}\n\n` +
          `ETCD_NAME="${name as string}"\nETCD_INITIAL_CLUSTER="${initial.join(',')}"\nETCD_INITIAL_ADVERTISE_PEER_URLS="${r.member.peerUrls.join(',')}"\nETCD_INITIAL_CLUSTER_STATE="existing"\n`,
      );
    }),
  );
}

/** remove, promote and update share their shape: an id in, "Member <id> <verb> cluster <id>" out. */
function changeCommand(name: string, description: string, verb: string, change: (client: Client, id: string, o: GlobalOptions & { peerUrls?: string }) => Promise<MembersResult>, peerUrls = false): Command {
  const cmd = new Command(name).description(description).argument('<memberID>', 'member id in hex');
  if (peerUrls) cmd.option('--peer-urls <urls>', 'comma separated peer URLs for the updated member');
  return withGlobalOptions(cmd).action(
    clientAction<GlobalOptions & { peerUrls?: string }>(async (client, o, [id]) => {
      const r = await change(client, idArg(id), o);
      const hex = (x: string): string => BigInt(`0x${x}`).toString(16).padStart(16);
      if (o.writeOut === 'json') print(`${toJson({ header: headerJson(r.header), members: r.members.map(memberJson) })}\n`);
      else print(`Member ${hex(idArg(id))} ${verb} cluster ${hex(r.header.clusterId)}\n`);
    }),
  );
}

export function memberCommand(): Command {
  return new Command('member')
    .description('Membership related commands')
    .addCommand(listCommand())
    .addCommand(addCommand())
    .addCommand(changeCommand('remove', 'Removes a member from the cluster', 'removed from', (c, id) => c.cluster.remove(id)))
    .addCommand(changeCommand('promote', 'Promotes a non-voting (learner) member to a voting one', 'promoted in', (c, id) => c.cluster.promote(id)))
    .addCommand(changeCommand('update', "Updates a member's peer URLs", 'updated in', (c, id, o) => c.cluster.update(id, urls(o.peerUrls)), true));
}

/** Runs `ask` against each endpoint on its own client, in parallel. */
async function perEndpoint<T>(o: GlobalOptions, ask: (client: Client) => Promise<T>): Promise<{ endpoint: string; result?: T; error?: string; tookMs: number }[]> {
  return Promise.all(
    endpointList(o).map(async (endpoint) => {
      const client = new Client(clientOptions(o, [endpoint]));
      const started = performance.now();
      try {
        const result = await ask(client);
        return { endpoint, result, tookMs: performance.now() - started };
      } catch (e) {
        return { endpoint, error: errorLine(e, [endpoint]), tookMs: performance.now() - started };
      } finally {
        client.close();
      }
    }),
  );
}

/** A duration as Go's time.Duration prints it ("3.21ms", "1.5s"). */
export function goDuration(ms: number): string {
  if (ms >= 1000) return `${+(ms / 1000).toFixed(6)}s`;
  if (ms >= 1) return `${+ms.toFixed(6)}ms`;
  return `${+(ms * 1000).toFixed(3)}µs`;
}

function healthCommand(): Command {
  return withGlobalOptions(new Command('health').description('Checks the healthiness of endpoints specified in `--endpoints` flag')).action(
    clientAction<GlobalOptions>(async (_client, o) => {
      // As etcdctl: a linearizable read through Raft; permission denied still proves a quorum.
      const rows = await perEndpoint(o, async (c) => {
        try {
          await c.get('health');
        } catch (e) {
          if (!(e instanceof Error && e.message === 'etcdserver: permission denied')) throw e;
        }
      });
      if (o.writeOut === 'json') print(`${toJson(rows.map((r) => ({ endpoint: r.endpoint, health: r.error === undefined, took: goDuration(r.tookMs), error: r.error })))}\n`);
      else if (o.writeOut === 'table') print(boxTable(['ENDPOINT', 'HEALTH', 'TOOK', 'ERROR'], rows.map((r) => [r.endpoint, String(r.error === undefined), goDuration(r.tookMs), r.error ?? ''])));
      else {
        for (const r of rows) {
          if (r.error === undefined) print(`${r.endpoint} is healthy: successfully committed proposal: took = ${goDuration(r.tookMs)}\n`);
          else process.stderr.write(`${r.endpoint} is unhealthy: failed to commit proposal: ${r.error}\n`);
        }
      }
      if (rows.some((r) => r.error !== undefined)) {
        process.stderr.write('Error: unhealthy cluster\n');
        process.exitCode = 1;
      }
    }),
  );
}

function statusRow(endpoint: string, s: StatusResult): string[] {
  return [endpoint, BigInt(`0x${s.header.memberId}`).toString(16), s.version, humanBytes(s.dbSize), String(s.leader === s.header.memberId), String(s.isLearner), String(s.raftTerm), String(s.raftIndex), String(s.raftAppliedIndex), s.errors.join(', ')];
}

function statusCommand(): Command {
  return withGlobalOptions(new Command('status').description('Prints out the status of endpoints specified in `--endpoints` flag')).action(
    clientAction<GlobalOptions>(async (_client, o) => {
      const rows = await perEndpoint(o, (c) => c.status());
      for (const r of rows) if (r.error !== undefined) process.stderr.write(`Failed to get the status of endpoint ${r.endpoint} (${r.error})\n`);
      const ok = rows.filter((r) => r.result !== undefined) as { endpoint: string; result: StatusResult }[];
      if (o.writeOut === 'json') {
        const json = ok.map(({ endpoint, result: s }) => ({
          Endpoint: endpoint,
          Status: { header: headerJson(s.header), version: s.version, dbSize: s.dbSize, leader: idNumber(s.leader), raftIndex: s.raftIndex, raftTerm: s.raftTerm, raftAppliedIndex: s.raftAppliedIndex, errors: s.errors, dbSizeInUse: s.dbSizeInUse, isLearner: s.isLearner },
        }));
        print(`${toJson(json)}\n`);
      } else if (o.writeOut === 'table') {
        print(boxTable(['ENDPOINT', 'ID', 'VERSION', 'DB SIZE', 'IS LEADER', 'IS LEARNER', 'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'ERRORS'], ok.map((r) => statusRow(r.endpoint, r.result))));
      } else {
        print(ok.map((r) => `${statusRow(r.endpoint, r.result).join(', ')}\n`).join(''));
      }
      if (ok.length < rows.length) process.exitCode = 1;
    }),
  );
}

export function endpointCommand(): Command {
  return new Command('endpoint').description('Endpoint related commands').addCommand(healthCommand()).addCommand(statusCommand());
}
