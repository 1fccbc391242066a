/** The workloads by name, for the command line and the CI run. */
import { RegisterWorkload } from './register.ts';
import type { Workload, WorkloadContext } from './workload.ts';

export const WORKLOAD_NAMES = ['register'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export function createWorkload(name: WorkloadName, ctx: WorkloadContext): Workload {
  switch (name) {
    case 'register':
      return new RegisterWorkload(ctx);
  }
}
