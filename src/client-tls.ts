/**
 * TLS for the connections nodescale opens to a broker (amqps://) or to Redis (rediss://), set per connection: the CA
 * that signed the server's certificate, and a client certificate and key for a server that asks for one (RabbitMQ's
 * `fail_if_no_peer_cert`, Redis's `tls-auth-clients yes`). What `tls.connect` takes, passed as given, so that two
 * connections of one process may trust different CAs; `NODE_EXTRA_CA_CERTS` is process-wide, and holds no client
 * certificate. The CLI reads each from a file (`--broker-ca FILE`, `--store-cert FILE`…: cli/args.ts).
 */
import { invalidOption } from './errors.ts';

export interface ClientTls {
  /** The CA certificate(s) to trust instead of Node's bundled ones, PEM. */
  ca?: string | Buffer | (string | Buffer)[];
  /** This client's certificate (chain), PEM: with `key`. */
  cert?: string | Buffer;
  /** Its private key, PEM: with `cert`. */
  key?: string | Buffer;
}

/**
 * `tls` checked against the URL it is for: only a TLS URL takes it (amqps:, rediss:), and a certificate goes with its
 * key. Undefined when none was given.
 */
export function checkClientTls(name: string, tls: ClientTls | undefined, url: string): ClientTls | undefined {
  if (tls === undefined) return undefined;
  if (typeof tls !== 'object' || tls === null) throw invalidOption(name, 'an object: { ca, cert, key }', tls);
  for (const field of Object.keys(tls))
    if (field !== 'ca' && field !== 'cert' && field !== 'key')
      throw invalidOption(name, 'an object of ca, cert and key (PEM)', `{ ${field} }`);
  if ((tls.cert === undefined) !== (tls.key === undefined))
    throw invalidOption(name, 'a client certificate with its key (cert and key, or neither)', Object.keys(tls));
  const protocol = URL.canParse(url) ? new URL(url).protocol : '';
  if (protocol !== 'amqps:' && protocol !== 'rediss:')
    throw invalidOption(name, 'given with a TLS URL only (amqps:// or rediss://)', protocol || url);
  return tls;
}

/**
 * For a connection that failed on a certificate, what to give: `flags` is the CLI's prefix (--broker, --store), `option`
 * the library's (tls, storeTls). Undefined for any other failure.
 */
export function certificateHint(error: unknown, flags: string, option: string): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (/SELF_SIGNED|UNABLE_TO_(GET|VERIFY)_ISSUER|UNABLE_TO_VERIFY_LEAF|CERT_UNTRUSTED/.test(code))
    return `the server's certificate is not signed by a CA this process trusts (${code}): give its CA (${flags}-ca FILE, or ${option}.ca)`;
  if (/CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|BAD_CERTIFICATE|UNKNOWN_CA/.test(code))
    return `the server refused this client's certificate, or asks for one (${code}): give ${flags}-cert FILE and ${flags}-key FILE (or ${option}.cert and .key)`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `the server's certificate does not name the host of the URL (${code})`;
  return undefined;
}
