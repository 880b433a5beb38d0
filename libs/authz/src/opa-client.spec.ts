import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuthorizationUnavailableError, DECISION_PATH, OpaClient } from './opa-client';
import type { AuthzInput } from './authz-input';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

describe('OPA client', () => {
  let server: Server;
  let handler: Handler;
  let url: string;
  let client: OpaClient;
  const input = { attributes: {} } as unknown as AuthzInput;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => handler(req, body, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = new OpaClient({ url, timeoutMs: 200 });
  });

  afterAll(async () => {
    client.onApplicationShutdown();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const answer =
    (status: number, body: unknown): Handler =>
    (_req, _body, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };

  async function unavailable(): Promise<AuthorizationUnavailableError> {
    const error = await client.decide(input).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthorizationUnavailableError);
    return error as AuthorizationUnavailableError;
  }

  it('posts the input to finance/authz/decision and returns the decision with its id', async () => {
    let seen: { path?: string; body?: unknown } = {};
    handler = (req, body, res) => {
      seen = { path: req.url, body: JSON.parse(body) };
      answer(200, {
        decision_id: 'd-1',
        result: { allow: false, reason: 'denied: no rule', caller: 'auditor' },
      })(req, body, res);
    };
    expect(await client.decide(input)).toEqual({
      allow: false,
      reason: 'denied: no rule',
      caller: 'auditor',
      decisionId: 'd-1',
    });
    expect(seen).toEqual({ path: DECISION_PATH, body: { input } });
  });

  it('treats a missing policy, an error status or an odd body as unavailable, never as a decision', async () => {
    handler = answer(200, {});
    expect((await unavailable()).kind).toBe('no-decision');
    handler = answer(500, { code: 'internal_error' });
    expect((await unavailable()).kind).toBe('bad-response');
    handler = answer(200, { result: { allow: 'yes' } });
    expect((await unavailable()).kind).toBe('bad-response');
  });

  it('gives up at its deadline', async () => {
    handler = () => undefined; // never answers
    expect((await unavailable()).kind).toBe('timeout');
  });

  it('reports an OPA that is not listening as unreachable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const nowhere = new OpaClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 1000 });
    const error = await nowhere.decide(input).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'unreachable' });
    nowhere.onApplicationShutdown();
  });

  it('retries once when OPA drops the kept-alive connection it was about to reuse', async () => {
    const seen = new WeakSet<object>();
    let dropped = 0;
    handler = (req, body, res) => {
      // A second request on a connection is dropped unanswered, like an OPA that just closed it.
      if (seen.has(req.socket)) {
        dropped++;
        req.socket.destroy();
        return;
      }
      seen.add(req.socket);
      answer(200, { result: { allow: true, reason: 'allowed by x', caller: 'auditor' } })(
        req,
        body,
        res,
      );
    };
    expect((await client.decide(input)).allow).toBe(true);
    expect((await client.decide(input)).allow).toBe(true);
    expect(dropped).toBe(1);
  });
});
