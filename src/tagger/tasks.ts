/**
 * The tagger's compute tasks (nodescale/compute loads this module in each worker thread, or inline).
 */
import { extractTags } from './extract.ts';

export const tasks = {
  extract: ({ html, url }: { html: string; url: string }): string[] => extractTags(html, url),
};

// Load the NLP model (and warm the pipeline) as the thread starts, not on the first request it serves.
extractTags('<title>Warm-up</title><p>The model loads once per thread, when the thread starts.</p>', 'http://warm-up/');
