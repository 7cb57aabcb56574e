/**
 * `nodescale doctor`: this machine (and a running process) checked for serving many connections, as Redis and
 * Elasticsearch check theirs at start-up. Each finding says what was found, why it matters and the exact fix. The
 * files it reads (/proc, /sys) come through `read`, so the checks are plain functions of what the kernel says.
 */
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import { cgroupCpuLimit, usableCpus } from '../supervisor/cpus.ts';

export type Severity = 'ok' | 'warn' | 'fail';

export interface Finding {
  check: string;
  severity: Severity;
  found: string;
  why: string;
  /** The exact change that fixes it (a sysctl.d line, a systemd or limits.conf line); null when ok. */
  fix: string | null;
}

export interface DoctorOptions {
  /** Connections each process is to hold at once (clients, plus upstream connections on a balancer). */
  connections: number;
  /** Workers per machine (nodescale run -w), for the CPU and memory checks. */
  workers: number;
  /** A running process whose own limits are checked (/proc/PID/limits), else this one's. */
  pid?: number;
  /** V8's heap limit of a worker, bytes; default this process's (the same flags give the same limit). */
  heapLimitBytes?: number;
  read?: (path: string) => string;
}

/** Node's listen backlog (net.Server#listen's default): the kernel caps it at somaxconn. */
export const NODE_BACKLOG = 511;

const SYSCTL_FILE = '/etc/sysctl.d/60-nodescale.conf';
const MiB = 1024 * 1024;

export function hardOpenFiles(limits: string): number | null {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  if (match === null) return null;
  return match[2] === 'unlimited' ? Infinity : Number(match[2]);
}

export function diagnose(options: DoctorOptions): Finding[] {
  const read = options.read ?? ((path: string) => readFileSync(path, 'utf8'));
  const tryRead = (path: string): string | null => {
    try {
      return read(path).trim();
    } catch {
      return null;
    }
  };
  const findings: Finding[] = [];
  const add = (check: string, ok: boolean, found: string, why: string, fix: string, severity: Severity = 'fail') =>
    findings.push({ check, severity: ok ? 'ok' : severity, found, why, fix: ok ? null : fix });

  // Open files: Node raises its soft limit to the hard one at start, so the hard limit is what counts.
  const who = options.pid === undefined ? 'self' : String(options.pid);
  const limits = tryRead(`/proc/${who}/limits`);
  const hard = limits === null ? null : hardOpenFiles(limits);
  const needed = options.connections + 1024; // the connections, and the files and pipes a process has besides
  if (hard === null)
    add(
      'open files',
      false,
      `cannot read /proc/${who}/limits`,
      'the limit cannot be checked',
      'run doctor on Linux, as the user that runs the service',
      'warn',
    );
  else
    add(
      'open files',
      hard >= needed,
      `hard limit ${hard} (${options.pid === undefined ? 'this shell' : `pid ${options.pid}`}), ${options.connections} connections need ${needed}`,
      'each connection is a file descriptor: past the limit, accept() fails with EMFILE and new clients hang',
      `LimitNOFILE=${Math.max(65_536, needed)} in the service's systemd unit (or "* hard nofile ${Math.max(65_536, needed)}" in /etc/security/limits.d/nodescale.conf)`,
    );

  const sysctl = (name: string) => tryRead(`/proc/sys/${name.replace(/\./g, '/')}`);
  for (const [name, what] of [
    ['net.core.somaxconn', 'the accept queue'],
    ['net.ipv4.tcp_max_syn_backlog', 'the queue of half-open connections'],
  ] as const) {
    const value = Number(sysctl(name));
    if (!Number.isFinite(value) || sysctl(name) === null) {
      add(
        name,
        false,
        `cannot read /proc/sys/${name.replace(/\./g, '/')}`,
        `${what} cannot be checked`,
        'run doctor on Linux',
        'warn',
      );
      continue;
    }
    add(
      name,
      value >= NODE_BACKLOG,
      `${value}`,
      `Node listens with a backlog of ${NODE_BACKLOG}, which the kernel cuts to ${name}: a burst of connections past ${what} is dropped or refused (the talk's somaxconn table)`,
      `echo '${name} = 4096' >> ${SYSCTL_FILE} && sysctl --system`,
    );
  }

  const range = sysctl('net.ipv4.ip_local_port_range')?.split(/\s+/).map(Number);
  if (range !== undefined && range.length === 2) {
    const ports = range[1]! - range[0]! + 1;
    add(
      'net.ipv4.ip_local_port_range',
      ports >= 28_000,
      `${range[0]}–${range[1]} (${ports} ports)`,
      'a balancer or a load generator opens a connection from a local port for each upstream connection: few ports, few connections to one upstream',
      `echo 'net.ipv4.ip_local_port_range = 10240 65535' >> ${SYSCTL_FILE} && sysctl --system`,
      'warn',
    );
  }
  const twReuse = sysctl('net.ipv4.tcp_tw_reuse');
  if (twReuse !== null)
    add(
      'net.ipv4.tcp_tw_reuse',
      twReuse === '1',
      twReuse,
      'a balancer that closes many upstream connections leaves them in TIME_WAIT; reuse lets new outgoing ones take their ports (2, the default, reuses on loopback only)',
      `echo 'net.ipv4.tcp_tw_reuse = 1' >> ${SYSCTL_FILE} && sysctl --system`,
      'warn',
    );

  // CPUs: a cgroup quota below the workers runs them in turns (latency), not in parallel.
  const quota = cgroupCpuLimit((path) => read(path));
  const cpus = usableCpus(quota);
  add(
    'CPUs for the workers',
    options.workers <= cpus,
    `${options.workers} worker(s), ${cpus} usable CPU(s)${quota === null ? '' : ` (cgroup quota ${quota})`}`,
    'more busy workers than CPUs share them in turns: each request waits for the others',
    `nodescale run -w auto (${cpus}), or raise the container's CPU quota`,
    'warn',
  );

  // Memory: a container's limit under the workers' heaps means the kernel's OOM killer, not V8, ends a worker that grows.
  const limitText = tryRead('/sys/fs/cgroup/memory.max') ?? tryRead('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  const limit = limitText === null || limitText === 'max' ? null : Number(limitText);
  if (limit !== null && Number.isFinite(limit) && limit < 2 ** 60) {
    const heap = options.heapLimitBytes ?? v8.getHeapStatistics().heap_size_limit;
    const needed = options.workers * (heap + 64 * MiB);
    const perWorker = Math.max(64, Math.floor((limit / options.workers - 64 * MiB) / MiB));
    add(
      'memory for the workers',
      needed <= limit,
      `${options.workers} worker(s) × (V8's heap limit ${Math.round(heap / MiB)} MiB + 64 MiB) = ${Math.round(needed / MiB)} MiB, the cgroup's limit ${Math.round(limit / MiB)} MiB`,
      "a worker that grows toward V8's limit is killed by the kernel (OOM, no crash bundle) before V8 says it is out of memory",
      `nodescale run --node-arg=--max-old-space-size=${perWorker} (or fewer workers, or a higher memory limit)`,
      'warn',
    );
  }

  const swaps = tryRead('/proc/swaps');
  if (swaps !== null) {
    const devices = swaps.split('\n').slice(1).filter(Boolean);
    add(
      'swap',
      devices.length === 0,
      devices.length === 0 ? 'none' : `${devices.length} swap device(s)`,
      'a garbage collection that touches swapped-out heap pages stops the event loop for as long as the disk takes',
      `swapoff -a (and remove them from /etc/fstab), or echo 'vm.swappiness = 1' >> ${SYSCTL_FILE}`,
      'warn',
    );
  }
  return findings;
}
