/**
 * The set of requests a run sends, and the picker that chooses the next one on the hot path.
 *
 * Templates × data rows are rendered once, at start, when they fit (REQUEST_SET_LIMITS): a send then writes bytes
 * made before the run, as with one URL. A template that uses `{{seq}}`, or a set too large to hold, is rendered per
 * send instead: one string build and one Buffer per request, the documented cost of a unique body per request.
 *
 * Order: the n-th request uses template n mod T and data row ⌊n / T⌋ mod R (every row with every template, in turn);
 * with weights, the template is drawn at random in their proportions (seeded: `seed` repeats a run's order) and the
 * row is n mod R. Generator threads interleave n (thread w of W sends n = w, w + W, …), so `{{seq}}` is unique
 * within a run.
 */
import { NodescaleError } from '../errors.ts';
import { parseTarget, RequestTemplate, type DataRow, type RequestShape } from './request.ts';
import { mulberry32 } from '../random.ts';

export const REQUEST_SET_LIMITS = Object.freeze({
  /** Templates × rows rendered at start, at most. */
  requests: 100_000,
  /** Bytes rendered at start, at most. */
  bytes: 64 * 1024 * 1024,
});

/** What a generator needs to send a run's requests: plain data, so it crosses to worker threads. */
export interface RequestSetPlan {
  /** Templates (T). */
  templates: number;
  /** Data rows (R): 1 without data. */
  rows: number;
  /** Rendered at start: request (t, r) is `rendered[t * rows + r]`; null when rendered per send. */
  rendered: Uint8Array[] | null;
  /** Per send: the templates' shapes, the data, and the target they are rendered for. */
  perSend: { target: string; shapes: RequestShape[]; data: DataRow[] } | null;
  /** The template is a HEAD request (its response has no body). */
  head: boolean[];
  /** The template's result name: an index into `names`, or -1. */
  kind: number[];
  names: string[];
  /** Cumulative weights, for picking at random; null: in order. */
  weights: number[] | null;
  seed: number;
}

/** Builds the plan; checks every placeholder against the data, so a missing field fails before the run. */
export function planRequestSet(
  target: URL,
  shapes: RequestShape[],
  data: DataRow[] | null,
  names: (string | null)[],
  weights: (number | null)[],
  seed: number,
): RequestSetPlan {
  const parsed = parseTarget(target);
  const templates = shapes.map((shape) => new RequestTemplate(parsed, shape));
  const rows = data ?? [{}];
  const fields = new Set<string>();
  for (const template of templates) for (const field of template.fields) fields.add(field);
  const dataFields = [...fields].filter((field) => field !== 'seq');
  if (data === null && dataFields.length > 0)
    throw new NodescaleError(
      'NS_ERR_DATA_FILE',
      `{{${dataFields[0]}}} needs a value from a data file: give --data FILE.jsonl (only {{seq}} needs none)`,
    );
  rows.forEach((row, i) => {
    for (const field of dataFields)
      if (row[field] === undefined)
        throw new NodescaleError(
          'NS_ERR_DATA_FILE',
          `data row ${i + 1} has no field "${field}" (used as {{${field}}})`,
        );
  });
  const kindNames: string[] = [];
  const kind = shapes.map((shape, i) => {
    if (!names.some((name) => name !== null)) return -1;
    const name = names[i] ?? `${shape.method} ${shape.path}`;
    const index = kindNames.indexOf(name);
    return index >= 0 ? index : kindNames.push(name) - 1;
  });
  let cumulative: number[] | null = null;
  if (weights.some((weight) => weight !== null)) {
    let sum = 0;
    cumulative = weights.map((weight) => (sum += weight ?? 1));
  }
  const plan: RequestSetPlan = {
    templates: templates.length,
    rows: rows.length,
    rendered: null,
    perSend: null,
    head: templates.map((template) => template.head),
    kind,
    names: kindNames,
    weights: cumulative,
    seed,
  };
  if (!fields.has('seq') && templates.length * rows.length <= REQUEST_SET_LIMITS.requests) {
    const rendered: Uint8Array[] = [];
    let bytes = 0;
    for (const template of templates)
      for (const row of rows) {
        const request = template.render(row, 0);
        bytes += request.length;
        if (bytes > REQUEST_SET_LIMITS.bytes) break;
        rendered.push(request);
      }
    if (bytes <= REQUEST_SET_LIMITS.bytes) return { ...plan, rendered };
  }
  // Rendered per send: each one is still checked now, on its first row, so a bad value fails before the run.
  for (const template of templates) template.render(rows[0]!, 0);
  return { ...plan, perSend: { target: target.href, shapes, data: rows } };
}

/** Chooses the next request of one generator thread. */
export class RequestPicker {
  /** The template of the request last returned by next(). */
  template = 0;
  readonly #plan: RequestSetPlan;
  readonly #rendered: Buffer[] | null;
  readonly #templates: RequestTemplate[] | null;
  readonly #random: (() => number) | null;
  readonly #stride: number;
  #n: number;

  constructor(plan: RequestSetPlan, thread: number, threads: number) {
    this.#plan = plan;
    this.#rendered = plan.rendered?.map((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)) ?? null;
    this.#templates =
      plan.perSend === null
        ? null
        : plan.perSend.shapes.map((shape) => new RequestTemplate(parseTarget(plan.perSend!.target), shape));
    this.#random = plan.weights === null ? null : mulberry32(plan.seed + thread * 0x9e3779b9);
    this.#n = thread;
    this.#stride = threads;
  }

  /** True when every send is the same bytes: the generator may batch them. */
  get single(): boolean {
    return this.#rendered !== null && this.#rendered.length === 1;
  }

  next(): Buffer {
    const plan = this.#plan;
    const n = this.#n;
    this.#n += this.#stride;
    let template: number;
    let row: number;
    if (this.#random === null) {
      template = n % plan.templates;
      row = Math.floor(n / plan.templates) % plan.rows;
    } else {
      template = pick(plan.weights!, this.#random());
      row = n % plan.rows;
    }
    this.template = template;
    if (this.#rendered !== null) return this.#rendered[template * plan.rows + row]!;
    return this.#templates![template]!.render(plan.perSend!.data[row]!, n);
  }
}

/** The index of the first cumulative weight above `u` × the total: binary search. */
function pick(cumulative: number[], u: number): number {
  const target = u * cumulative[cumulative.length - 1]!;
  let low = 0;
  let high = cumulative.length - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (cumulative[mid]! > target) high = mid;
    else low = mid + 1;
  }
  return low;
}
