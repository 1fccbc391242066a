/**
 * Free loopback ports for test servers. Ports are drawn at random below Linux's ephemeral range
 * (32768–60999): a port the OS hands out for listen(0) is also one it may give, a moment later,
 * to an outgoing connection's source port (members dial each other constantly), and then the
 * server that was meant to take it fails with EADDRINUSE. Each pick is checked by binding it.
 */
import net from 'node:net';

export const TEST_PORT_RANGE = { min: 20_000, max: 32_000 } as const;

/** Ports this process handed out, never given twice. */
const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (;;) {
    const port = TEST_PORT_RANGE.min + Math.floor(Math.random() * (TEST_PORT_RANGE.max - TEST_PORT_RANGE.min));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await canBind(port)) return port;
  }
}

export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) ports.push(await freePort());
  return ports;
}
