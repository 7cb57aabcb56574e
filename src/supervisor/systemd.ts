/**
 * `nodescale run` under systemd (`Type=notify`, the unit `nodescale deploy systemd` writes): it tells systemd once every
 * worker is ready, and keeps `WatchdogSec=` alive from its event loop, so a supervisor whose loop is stuck is
 * restarted. Node has no Unix datagram sockets, so `systemd-notify` sends each message for it, naming this process
 * (`--pid`, which `NotifyAccess=all` accepts from any process of the unit). Outside systemd (no NOTIFY_SOCKET) nothing
 * is sent. Debian 12's systemd-notify knows --ready, --pid and --status, not --reloading.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../logger.ts';

type Log = Logger;

const underSystemd = () => (process.env.NOTIFY_SOCKET ?? '') !== '';

function notify(args: string[], log: Log): void {
  // --no-block: no barrier to wait on; with --pid and NotifyAccess=all the message needs no living sender.
  execFile('systemd-notify', ['--no-block', `--pid=${process.pid}`, ...args], { timeout: 5000 }, (error) => {
    if (error !== null) log('warn', `systemd-notify ${args.join(' ')} failed: ${error.message}`);
  });
}

/** READY=1 with a status line, under systemd. */
export function notifyReady(status: string, log: Log): void {
  if (underSystemd()) notify(['--ready', `--status=${status}`], log);
}

/** A status line systemctl status shows, under systemd. */
export function notifyStatus(status: string, log: Log): void {
  if (underSystemd()) notify([`--status=${status}`], log);
}

/** WATCHDOG=1 every half of WatchdogSec (WATCHDOG_USEC), from the event loop; returns what stops it. */
export function startWatchdog(log: Log): () => void {
  const usec = Number(process.env.WATCHDOG_USEC);
  if (!underSystemd() || !(usec > 0)) return () => {};
  const timer = setInterval(() => notify(['WATCHDOG=1'], log), Math.max(100, usec / 2000));
  timer.unref();
  return () => clearInterval(timer);
}
