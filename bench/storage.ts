/**
 * The storage issue's figures in one command: the WAL (256-byte entries in batches of 64,
 * sequential and group-committed) and then the MVCC store over 1,000,000 keys of 256 bytes.
 *   npm run bench -- storage [--quick]     (--quick: 2 s per WAL run, 200,000 keys)
 */
import { benchMvcc } from './mvcc.ts';
import { benchWal } from './wal.ts';

export default async function benchStorage(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  await benchWal(['--seconds', quick ? '2' : '3', '--entry-bytes', '256', '--batch', '64']);
  console.log('');
  await benchMvcc(['--keys', quick ? '200000' : '1000000', '--value-bytes', '256']);
}
