/** The lease subsystem's surface for the server and the store; internals stay in their modules. */
export { Lessor, type LeaseId, type LeaseInfo, type TimeToLive, type RenewResult, type LeaseCheckpoint } from './lessor.ts';
export * from './errors.ts';
export * from './limits.ts';
export { lessorStateMagic, lessorStateVersion } from './codec.ts';
