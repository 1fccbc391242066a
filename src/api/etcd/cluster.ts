/** etcd's Cluster service, the read side a running cluster needs: MemberList. */
import type { Service } from 'protobufjs';
import type { ServiceImpl } from '../grpc/index.ts';
import type { Member } from '../../server/member.ts';
import { idToDecimal } from '../../server/ids.ts';
import { header } from './convert.ts';
import { grpcHandler } from './kv.ts';

export function clusterService(member: Member, service: Service): [Service, ServiceImpl] {
  return [
    service,
    {
      MemberList: grpcHandler(async () => ({
        // etcd's Cluster service fills the header without a revision.
        header: header(member.header(), 0),
        members: member.members().map((m) => ({ ID: idToDecimal(m.id), name: m.name, peerURLs: m.peerUrls, clientURLs: m.clientUrls, isLearner: m.isLearner })),
      })),
    },
  ];
}
