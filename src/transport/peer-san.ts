/**
 * etcd's extra check on the peer listener: a member's client certificate must name the address
 * it connects from. A certificate without IP or DNS subject alternative names passes (the CA's
 * signature is all there is to check); otherwise the remote IP must be one of its IP SANs, or
 * one of its DNS SANs must resolve to the remote IP. So a certificate copied off one member
 * cannot be used from another machine.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type tls from 'node:tls';

/** Resolves a name to its addresses (node's dns.lookup with all: true, replaceable in tests). */
export type Resolver = (name: string) => Promise<string[]>;

export const resolveAll: Resolver = async (name) => (await dnsLookup(name, { all: true })).map((a) => a.address);

/** IPv4 peers on a dual-stack socket show as ::ffff:a.b.c.d. */
function plainIp(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** The IP and DNS names of a certificate's subjectAltName ("IP Address:1.2.3.4, DNS:host"). */
export function subjectAltNames(cert: tls.PeerCertificate): { ips: string[]; dns: string[] } {
  const ips: string[] = [];
  const dns: string[] = [];
  for (const entry of (cert.subjectaltname ?? '').split(', ')) {
    if (entry.startsWith('IP Address:')) ips.push(plainIp(entry.slice('IP Address:'.length)));
    else if (entry.startsWith('DNS:')) dns.push(entry.slice('DNS:'.length));
  }
  return { ips, dns };
}

/** null when the certificate may be used from `remoteAddress`, else why not. */
export async function checkPeerSan(cert: tls.PeerCertificate, remoteAddress: string, resolve: Resolver = resolveAll): Promise<string | null> {
  const { ips, dns } = subjectAltNames(cert);
  if (ips.length === 0 && dns.length === 0) return null;
  const remote = plainIp(remoteAddress);
  if (ips.includes(remote)) return null;
  for (const name of dns.filter((n) => !n.startsWith('*.'))) {
    const addresses = await resolve(name).catch(() => []);
    if (addresses.some((a) => plainIp(a) === remote)) return null;
  }
  return `certificate is valid for ${[...ips, ...dns].join(', ')}, not ${remote}`;
}
