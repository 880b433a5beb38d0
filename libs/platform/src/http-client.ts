// HTTP client for calls between workloads: keep-alive connections, a deadline per request, and off
// the mesh the caller's own certificate plus a check of the server's SPIFFE id.
import { Agent as HttpAgent, IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import type { ServiceIdentity } from './identity';
import { spiffeIdFromSubjectAltName, TlsMaterial } from './tls';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = unknown>(): T;
}

/** The request got no HTTP answer: refused, reset, TLS handshake failure or deadline. */
export class HttpTransportError extends Error {
  override readonly name = 'HttpTransportError';
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A string or Buffer is sent as is; anything else as JSON. */
  body?: unknown;
  timeoutMs?: number;
  /** Off the mesh: the server must present this SPIFFE id (instead of a host-name check). */
  expectedPeer?: string;
}

export interface HttpClientOptions {
  /** Present this certificate and trust only this CA; without it, plain HTTP or public CAs. */
  tls?: TlsMaterial;
  timeoutMs?: number;
  maxSockets?: number;
  maxResponseBytes?: number;
  /**
   * Retry once when a kept-alive connection turns out to be closed by the server (ECONNRESET on a
   * reused socket). Only for idempotent calls.
   */
  retryStaleConnection?: boolean;
}

const DEFAULT_TIMEOUT_MS = 5_000;

export class HttpClient {
  private readonly http: HttpAgent;
  // One agent per expected peer: a pooled connection was verified for exactly one identity.
  private readonly https = new Map<string, HttpsAgent>();

  constructor(private readonly options: HttpClientOptions = {}) {
    this.http = new HttpAgent({ keepAlive: true, maxSockets: options.maxSockets ?? 64 });
  }

  private httpsAgent(expectedPeer: string | undefined): HttpsAgent {
    const key = expectedPeer ?? '';
    let agent = this.https.get(key);
    if (!agent) {
      const tls = this.options.tls;
      agent = new HttpsAgent({
        keepAlive: true,
        maxSockets: this.options.maxSockets ?? 64,
        minVersion: 'TLSv1.3',
        ...(tls ? { cert: tls.cert, key: tls.key, ca: tls.ca } : {}),
        ...(expectedPeer
          ? {
              checkServerIdentity: (_host: string, cert: PeerCertificate) => {
                const actual = spiffeIdFromSubjectAltName(cert.subjectaltname);
                return actual === expectedPeer
                  ? undefined
                  : new Error(`server is ${actual ?? 'no SPIFFE id'}, expected ${expectedPeer}`);
              },
            }
          : {}),
      });
      this.https.set(key, agent);
    }
    return agent;
  }

  async request(url: string | URL, options: HttpRequestOptions = {}): Promise<HttpResponse> {
    try {
      return await this.once(new URL(url), options);
    } catch (error) {
      if (
        this.options.retryStaleConnection &&
        error instanceof HttpTransportError &&
        error.code === 'STALE_CONNECTION'
      ) {
        return this.once(new URL(url), options);
      }
      throw error;
    }
  }

  private once(url: URL, options: HttpRequestOptions): Promise<HttpResponse> {
    const secure = url.protocol === 'https:';
    let payload: Buffer | undefined;
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined) {
      if (typeof options.body === 'string' || Buffer.isBuffer(options.body)) {
        payload = Buffer.from(options.body);
      } else {
        payload = Buffer.from(JSON.stringify(options.body));
        headers['content-type'] ??= 'application/json';
      }
      headers['content-length'] = String(payload.length);
    }
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const limit = this.options.maxResponseBytes ?? 1024 * 1024;
    const send = secure ? httpsRequest : httpRequest;
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = send(url, {
        method: options.method ?? 'GET',
        headers,
        agent: secure ? this.httpsAgent(options.expectedPeer) : this.http,
      });
      const deadline = setTimeout(() => {
        req.destroy(new HttpTransportError(`no answer within ${timeoutMs} ms`, 'TIMEOUT'));
      }, timeoutMs);
      req.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(deadline);
        if (error instanceof HttpTransportError) return reject(error);
        // The server closed an idle kept-alive connection just as it was reused.
        const stale = req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
        const code = stale ? 'STALE_CONNECTION' : (error.code ?? 'ERROR');
        reject(new HttpTransportError(`${url.origin}: ${error.message}`, code, { cause: error }));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            req.destroy(new HttpTransportError(`response larger than ${limit} bytes`, 'TOO_LARGE'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(deadline);
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body) as T,
          });
        });
        res.on('error', () => undefined); // reported through req's error
      });
      req.end(payload);
    });
  }

  /** Closes every pooled connection. */
  close(): void {
    this.http.destroy();
    for (const agent of this.https.values()) agent.destroy();
    this.https.clear();
  }
}

/** A client for this service's own calls to other workloads: it presents the service's certificate. */
export function serviceHttpClient(
  identity: ServiceIdentity,
  options: Omit<HttpClientOptions, 'tls'> = {},
): HttpClient {
  return new HttpClient({
    ...options,
    ...(identity.transport.mode === 'mutual-tls' ? { tls: identity.transport.material } : {}),
  });
}
