/**
 * nodescale's one logger shape: what the runtime, the admin console, the tagger's stores, the compute services and the
 * supervisor take (`logger` or `log` options), so that one function routes all of them to pino or elsewhere.
 * `fields` is a flat object of what the line is about; a secret is never in it.
 */
export type LogLevel = 'error' | 'warn' | 'info';
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;
