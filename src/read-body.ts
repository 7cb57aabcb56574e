/**
 * A message body read whole, but never past a limit: the bytes, or null as soon as they pass `maxBytes` (the rest is
 * not read, and the stream is destroyed). For the tagger's fetched pages and the GraphQL request bodies.
 */
export async function readAtMost(stream: AsyncIterable<Buffer>, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream) {
    bytes += chunk.length;
    if (bytes > maxBytes) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
