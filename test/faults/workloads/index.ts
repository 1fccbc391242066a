/** The workloads by name, for the command line and the CI run. */
import { LeaseWorkload } from './leases.ts';
import { ListAppendWorkload } from './list-append.ts';
import { LockWorkload } from './locks.ts';
import { RegisterWorkload } from './register.ts';
import { WatchWorkload } from './watch.ts';
import type { Workload, WorkloadContext } from './workload.ts';

export const WORKLOAD_NAMES = ['register', 'append', 'watch', 'lease', 'lock'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export function createWorkload(name: WorkloadName, ctx: WorkloadContext): Workload {
  switch (name) {
    case 'register':
      return new RegisterWorkload(ctx);
    case 'append':
      return new ListAppendWorkload(ctx);
    case 'watch':
      return new WatchWorkload(ctx);
    case 'lease':
      return new LeaseWorkload(ctx);
    case 'lock':
      return new LockWorkload(ctx);
  }
}
