// Choosing TCP ports on 127.0.0.1 for the components the stack starts.
import { createServer } from 'node:net';

export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () =>
      server.close(() => resolve(true)),
    );
  });
}

export function pickFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() =>
        port > 0 ? resolve(port) : reject(new Error('could not pick a free port')),
      );
    });
  });
}

// Requested ports must be free; otherwise the previous run's port is preferred (stable URLs across
// restarts), else any free port. `taken` keeps the chosen ports distinct.
export async function choosePort(
  name: string,
  requested: number | undefined,
  remembered: number | undefined,
  taken: Set<number>,
): Promise<number> {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested <= 0 || requested > 65535) {
      throw new Error(`invalid ${name} port ${requested}`);
    }
    if (taken.has(requested) || !(await isPortFree(requested))) {
      throw new Error(
        `${name} port ${requested} on 127.0.0.1 is already in use; choose another port or leave it unset`,
      );
    }
    taken.add(requested);
    return requested;
  }
  if (remembered !== undefined && !taken.has(remembered) && (await isPortFree(remembered))) {
    taken.add(remembered);
    return remembered;
  }
  for (;;) {
    const port = await pickFreePort();
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
}
