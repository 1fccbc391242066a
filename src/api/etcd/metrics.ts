/**
 * The Prometheus metrics of GET /metrics, under etcd's names so existing dashboards and alerts
 * work. Values are read from the member when scraped, not kept in step on the hot path.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Member } from '../../server/member.ts';
import { ETCD_CLUSTER_VERSION, ETCD_SERVER_VERSION } from './maintenance.ts';

export function memberMetrics(member: Member): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: () => number, labels?: Record<string, string>): void => {
    // The gauge registers itself and reads its value at each scrape.
    new Gauge({
      name,
      help,
      registers: [registry],
      labelNames: labels === undefined ? [] : Object.keys(labels),
      collect() {
        if (labels === undefined) this.set(read());
        else this.set(labels, read());
      },
    });
  };
  gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', () => (member.status().leader === '' ? 0 : 1));
  gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', () => (member.status().leader === member.id ? 1 : 0));
  gauge('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.', () => (member.status().isLearner ? 1 : 0));
  gauge('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.', () => member.counters.leaderChanges);
  gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', () => member.status().raftIndex);
  gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', () => member.status().raftAppliedIndex);
  gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', () => member.pendingProposals());
  gauge('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.', () => member.counters.proposalsFailed);
  gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', () => member.mvcc().stats().dbBytes);
  gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', () => member.mvcc().stats().dbBytesInUse);
  gauge('etcd_debugging_mvcc_keys_total', 'Total number of keys.', () => member.mvcc().stats().indexedKeys);
  gauge('etcd_server_id', 'Server or member ID in hexadecimal format. 1 for \'server_id\' label with current ID.', () => 1, { server_id: member.id });
  gauge('etcd_server_version', 'Which version is running. 1 for \'server_version\' label with current version.', () => 1, { server_version: ETCD_SERVER_VERSION });
  gauge('etcd_cluster_version', 'Which version is running. 1 for \'cluster_version\' label with current cluster version', () => 1, {
    cluster_version: ETCD_CLUSTER_VERSION.split('.').slice(0, 2).join('.'),
  });
  return registry;
}
