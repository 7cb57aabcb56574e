/**
 * A share of the CPU for a lab host: a cgroup of cgroup v1's cpu controller (/sys/fs/cgroup/cpu, which this machine
 * has), its quota `cores` × the period, so that a host of the lab gets what a machine of that size would, and a
 * scaling table on two cores means something. Processes are added by pid; what they fork later stays in it. remove()
 * deletes the group once its processes are gone (the lab removes its hosts first).
 */
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NodescaleError } from '../errors.ts';

const ROOT = '/sys/fs/cgroup/cpu';
const PERIOD_US = 100_000;

export interface CpuLimit {
  readonly cores: number;
  add(pids: readonly number[]): void;
  remove(): Promise<void>;
}

export function limitCpu(name: string, cores: number): CpuLimit {
  if (!/^[a-z0-9-]{1,64}$/.test(name)) throw new NodescaleError('NS_ERR_LAB', `cgroup name ${JSON.stringify(name)}`);
  if (!(cores > 0 && cores <= 256)) throw new NodescaleError('NS_ERR_LAB', `a CPU share of ${cores} cores`);
  const dir = path.join(ROOT, name);
  try {
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
    writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(Math.round(cores * PERIOD_US)));
  } catch (error) {
    throw new NodescaleError(
      'NS_ERR_LAB',
      `cannot make the cgroup ${dir} (cgroup v1's cpu controller, root): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return {
    cores,
    add(pids) {
      for (const pid of pids) {
        try {
          writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
        } catch {
          // exited meanwhile
        }
      }
    },
    async remove() {
      const deadline = Date.now() + 5_000;
      for (;;) {
        try {
          rmdirSync(dir);
          return;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') return;
          // EBUSY: a process is still in it, exiting.
          if (Date.now() > deadline) return;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    },
  };
}
