/**
 * `nodescale console … inspect`: the process's inspector opened on 127.0.0.1 (a random port) for the console
 * session only, and closed when it ends; refused when one is open already. Over TCP it needs the token like every
 * command (console.test.ts).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { AdminClient } from '../../src/socket/client.ts';
import { askSupervisor, defaultControlPath } from '../../src/supervisor/control.ts';
import { startSupervised } from '../helpers/supervised.ts';
import { waitUntil } from '../helpers/wait.ts';

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

test(
  'inspect: the inspector on loopback for the session only, gone after it; a second one refused meanwhile',
  { timeout: 60_000 },
  async (t) => {
    const name = `inspect-${process.pid}`;
    await startSupervised(t, name, ['-w', '1', '--console']);
    const { socketPath } = (await askSupervisor(defaultControlPath(name), 'console', { worker: 0 })) as {
      socketPath: string;
    };
    const client = await AdminClient.connect(socketPath);
    t.after(() => client.close());
    const events: { url: string; devtools: string }[] = [];
    const id = client.nextId;
    const session = client.request(
      'inspect',
      {},
      { onEvent: (event) => events.push(event as (typeof events)[number]) },
    );
    await waitUntil(() => events.length === 1, 'the inspector opened', 10_000);
    const url = new URL(events[0]!.url);
    assert.equal(url.protocol, 'ws:');
    assert.equal(url.hostname, '127.0.0.1', 'loopback only');
    assert.match(events[0]!.devtools, /^devtools:\/\/devtools\/bundled\/js_app\.html\?.*ws=127\.0\.0\.1:\d+\//);
    const port = Number(url.port);
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
      webSocketDebuggerUrl: string;
    }[];
    assert.equal(targets[0]?.webSocketDebuggerUrl, events[0]!.url);

    // One at a time.
    const other = await AdminClient.connect(socketPath);
    t.after(() => other.close());
    await assert.rejects(other.request('inspect'), { code: 'NS_ERR_INSPECT_OPEN' });
    await assert.rejects(other.request('inspect', { minutes: 1000 }), { code: 'NS_ERR_INVALID_OPTION' });

    // The session ends: the port is gone.
    await client.request('unwatch', { id });
    assert.deepEqual(await session, { closed: true });
    await waitUntil(async () => !(await accepts(port)), 'the inspector closed', 5000);
  },
);
