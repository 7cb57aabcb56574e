/**
 * A worker thread of `bench -w N`: runs one generator over its share of the connections and reports back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LoadGenerator, type GeneratorPlan } from './generator.ts';
import { encodeHistogram } from './histogram.ts';
import type { WorkerMessage } from './run.ts';

const port = parentPort!;
const plan = workerData as GeneratorPlan;
const generator = new LoadGenerator(plan);
const post = (message: WorkerMessage) => port.postMessage(message);

port.on('message', (message: { type: string }) => {
  if (message.type === 'stop') generator.stop();
});
const progress = setInterval(() => post({ type: 'progress', completed: generator.counters.completed }), 250);
const outcome = await generator.run(() => post({ type: 'measuring' }));
clearInterval(progress);
post({
  type: 'done',
  counters: outcome.counters,
  elapsedMs: outcome.elapsedMs,
  abortedBecause: outcome.abortedBecause,
  tlsError: outcome.tlsError,
  histogram: encodeHistogram(outcome.histogram),
  non2xxHistogram: encodeHistogram(outcome.non2xxHistogram),
  kindHistograms: outcome.kindHistograms.map(encodeHistogram),
});
port.close();
