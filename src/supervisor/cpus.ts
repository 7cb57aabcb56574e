/**
 * How many workers `-w auto` means: the CPUs this process may use, honouring a cgroup v2 CPU quota
 * (/sys/fs/cgroup/cpu.max, "quota period") as containers set it, and os.availableParallelism() (affinity): pm2's
 * `-i max` counts the host's CPUs and oversubscribes a container (pm2#4347).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export function cgroupCpuLimit(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | null {
  try {
    const [quota, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    if (quota === undefined || quota === 'max' || period === undefined) return null;
    const cpus = Number(quota) / Number(period);
    return Number.isFinite(cpus) && cpus > 0 ? cpus : null;
  } catch {
    return null;
  }
}

export function usableCpus(limit: number | null = cgroupCpuLimit(), parallelism = os.availableParallelism()): number {
  return Math.max(1, Math.min(parallelism, limit === null ? parallelism : Math.floor(limit)));
}
