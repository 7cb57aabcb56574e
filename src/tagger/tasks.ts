/**
 * The tagger's compute tasks (nodescale/compute loads this module in each worker thread, or inline).
 */
import { extractTags } from './extract.ts';

export const tasks = {
  extract: ({ html, url }: { html: string; url: string }): string[] => extractTags(html, url),
};
