/** Public surface of the watch layer (used by the gRPC Watch service). */
export { WatchHub } from './hub.ts';
export type { WatchHubStats } from './hub.ts';
export { WatchStream } from './stream.ts';
export type { StreamBuffer } from './stream.ts';
export { invalidWatchId } from './types.ts';
export type { WatchFilter, WatchMessage, WatcherSpec } from './types.ts';
export { defaultWatchLimits, resolveWatchLimits } from './limits.ts';
export type { WatchLimits } from './limits.ts';
export * from './errors.ts';
