/**
 * The requests in flight, per connection, with when each began. This is the runtime's per-request hot path, so it
 * is written for the common case: one request at a time on a keep-alive connection.
 *
 * Each connection's state hangs off the socket itself, under a symbol. A socket lives across many keep-alive
 * requests, so its shape changes once, and finding the state costs a property load. A Map keyed by socket costs a
 * hash lookup per request, and one keyed by response about 0.25 µs a request (measured). HTTP/1.1 answers in order
 * (node:http enforces it), so the response that finishes is always the oldest on its connection: the oldest sits in
 * two fields, and only pipelined requests behind it use the queue.
 *
 * Aborted responses never finish: sweep() forgets the connections that closed, and what was in flight on them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Tracked = ServerResponse & { req: IncomingMessage };

type Socket = { destroyed: boolean } & Record<symbol, Flight | undefined>;

class Flight {
  readonly socket: Socket;
  /** The oldest response in flight on this connection, or null when none is. */
  response: Tracked | null = null;
  start = 0;
  /** Pipelined responses behind the oldest, with their starts: [response, start, response, start, …]. */
  queue: (Tracked | number)[] | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  get size(): number {
    return (this.response === null ? 0 : 1) + (this.queue === null ? 0 : this.queue.length / 2);
  }
}

export class Flights {
  /** Each instance its own key: two runtimes seeing one connection (protect() and a middleware) keep apart. */
  readonly #key = Symbol('nodescale.flight');
  /** Every connection seen and not yet swept: where sweep() and entries() look. */
  readonly #flights = new Set<Flight>();
  #count = 0;

  /** Requests in flight, aborted ones included until the next sweep(). */
  get count(): number {
    return this.#count;
  }

  /** Whether this connection is new: the caller sweeps now and then as connections come. */
  begin(connection: object, response: Tracked, start: number): boolean {
    const socket = connection as Socket;
    let flight = socket[this.#key];
    const fresh = flight === undefined;
    if (flight === undefined) {
      socket[this.#key] = flight = new Flight(socket);
      this.#flights.add(flight);
    }
    this.#count++;
    if (flight.response === null) {
      flight.response = response;
      flight.start = start;
    } else {
      (flight.queue ??= []).push(response, start);
    }
    return fresh;
  }

  /** When the response began (as given to begin()), or -1 if it is not tracked here (answered by the runtime itself). */
  finish(socket: object, response: ServerResponse): number {
    const flight = (socket as Socket)[this.#key];
    if (flight === undefined || flight.response !== response) return -1;
    const start = flight.start;
    const queue = flight.queue;
    if (queue === null || queue.length === 0) {
      flight.response = null;
    } else {
      flight.response = queue.shift() as Tracked;
      flight.start = queue.shift() as number;
    }
    this.#count--;
    return start;
  }

  /** Forgets closed connections; what was in flight on them was aborted (the client went away) and never finishes. */
  sweep(): void {
    for (const flight of this.#flights) {
      if (!flight.socket.destroyed) continue;
      this.#count -= flight.size;
      this.#flights.delete(flight);
    }
  }

  /** Every response in flight, with its start. */
  *entries(): Generator<[Tracked, number]> {
    for (const flight of this.#flights) {
      if (flight.response !== null) yield [flight.response, flight.start];
      const queue = flight.queue ?? [];
      for (let i = 0; i < queue.length; i += 2) yield [queue[i] as Tracked, queue[i + 1] as number];
    }
  }
}
