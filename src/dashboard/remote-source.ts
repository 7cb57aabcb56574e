/**
 * A supervisor watched through its control socket (`watch`, supervisor/control.ts): what `nodescale dashboard
 * --name` and `nodescale top` read, with no change to the running supervisor. Its events and samples are emitted as
 * the supervisor's own are ('event', 'sample'); status() is the last status it sent (every second). 'closed' when the
 * supervisor goes away.
 */
import { EventEmitter } from 'node:events';
import { connectSupervisor, type WatchMessage } from '../supervisor/control.ts';
import type { WorkerStatus } from '../supervisor/status.ts';
import type { DashboardSource } from './collector.ts';

export interface RemoteSource extends DashboardSource {
  close(): void;
}

export async function watchSupervisor(socketPath: string): Promise<RemoteSource> {
  const client = await connectSupervisor(socketPath);
  let workers: WorkerStatus[] = [];
  const source = Object.assign(new EventEmitter(), {
    status: () => workers,
    close: () => client.destroy(),
  });
  const onMessage = (message: WatchMessage) => {
    if (message.type === 'status') workers = message.workers;
    else if (message.type === 'event') source.emit('event', message.event);
    else source.emit('sample', message.sample);
  };
  client.request('watch', {}, { onEvent: (message) => onMessage(message as WatchMessage) }).then(
    () => source.emit('closed', 'the supervisor ended the watch'),
    (error: Error) => source.emit('closed', error.message),
  );
  return source;
}
