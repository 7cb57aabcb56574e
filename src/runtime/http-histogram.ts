/**
 * The HTTP latency histogram by route, method and status. Recording is the per-request hot path: a nested Map lookup
 * and a bucket search, no label hashing, no allocation once a series exists (prom-client's labelled observe() costs
 * about 0.45 µs a call, about 3% of a hello-world request by itself). It is exposed through prom-client's registry
 * as a metric object with get(), in prom-client's histogram format, so aggregation across cluster workers works too.
 */

interface Series {
  route: string;
  method: string;
  status: string;
  statusCode: number;
  /** Cumulative counts are computed at export; these are per-bucket. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

export class HttpHistogram {
  readonly name: string;
  readonly help = 'Duration of HTTP requests served, by route, method and status code, in seconds.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: number[];
  readonly #series = new Map<string, Map<string, Map<number, Series>>>();
  /** The series observed last: most requests land in the same series as the one before (three comparisons). */
  #last: Series | null = null;

  constructor(name: string, bounds: number[]) {
    this.name = name;
    this.#bounds = bounds;
  }

  observe(route: string, method: string, status: number, seconds: number): void {
    let series = this.#last;
    if (series === null || series.statusCode !== status || series.route !== route || series.method !== method)
      this.#last = series = this.#find(route, method, status);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    series.buckets[i]!++;
    series.sum += seconds;
    series.count++;
  }

  #find(route: string, method: string, status: number): Series {
    let byMethod = this.#series.get(route);
    if (byMethod === undefined) this.#series.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let series = byStatus.get(status);
    if (series === undefined) {
      series = {
        route,
        method,
        status: String(status),
        statusCode: status,
        buckets: new Float64Array(this.#bounds.length + 1),
        sum: 0,
        count: 0,
      };
      byStatus.set(status, series);
    }
    return series;
  }

  /** The buckets' upper bounds, seconds (+Inf after the last). */
  get bounds(): readonly number[] {
    return this.#bounds;
  }

  /** Requests in each bucket since the start (or the last reset), every series together: one count per bound, +Inf's last. */
  totals(): number[] {
    const totals = new Array<number>(this.#bounds.length + 1).fill(0);
    for (const byMethod of this.#series.values())
      for (const byStatus of byMethod.values())
        for (const series of byStatus.values())
          for (let i = 0; i < totals.length; i++) totals[i]! += series.buckets[i]!;
    return totals;
  }

  reset(): void {
    this.#series.clear();
    this.#last = null;
  }

  /** prom-client's metric interface. */
  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { metricName: string; labels: Record<string, string | number>; value: number }[];
  } {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const byMethod of this.#series.values()) {
      for (const byStatus of byMethod.values()) {
        for (const s of byStatus.values()) {
          const labels = { route: s.route, method: s.method, status: s.status };
          let cumulative = 0;
          this.#bounds.forEach((bound, i) => {
            cumulative += s.buckets[i]!;
            values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: bound }, value: cumulative });
          });
          values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count });
          values.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
          values.push({ metricName: `${this.name}_count`, labels, value: s.count });
        }
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
