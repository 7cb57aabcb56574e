/**
 * A flame graph of a V8 CPU profile (.cpuprofile), as one self-contained SVG: no script, no network; each frame's
 * tooltip (<title>) gives its function, file, line, and total and self time. Width is time, height is stack depth,
 * callers below callees. (idle) time is left out: it is the loop waiting, not work.
 */
import { escapeXml } from '../views/svg-chart.ts';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime?: number;
  endTime?: number;
}

interface Frame {
  node: CpuProfileNode;
  selfUs: number;
  totalUs: number;
  children: Frame[];
}

const WIDTH = 1200;
const ROW = 17;
const CHAR = 6.6;

function label(node: CpuProfileNode): string {
  return node.callFrame.functionName || '(anonymous)';
}

function location(node: CpuProfileNode): string {
  const { url, lineNumber } = node.callFrame;
  if (!url) return '';
  return `${url.replace(/^file:\/\//, '')}:${lineNumber + 1}`;
}

/** Colours: our code warm, node internals green, V8/native grey, GC purple. */
function colour(node: CpuProfileNode, depth: number): string {
  const { url, functionName } = node.callFrame;
  const shade = (depth * 37) % 40;
  if (functionName === '(garbage collector)') return `hsl(280, 55%, ${55 + shade / 4}%)`;
  if (!url) return `hsl(0, 0%, ${70 + shade / 4}%)`;
  if (url.startsWith('node:')) return `hsl(140, 45%, ${55 + shade / 4}%)`;
  if (url.includes('/node_modules/')) return `hsl(200, 55%, ${60 + shade / 4}%)`;
  return `hsl(${20 + shade}, 85%, ${58 + shade / 5}%)`;
}

/** Time per node from samples and timeDeltas (exact), or hitCount × the mean interval. */
function selfTimes(profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  if (profile.samples && profile.timeDeltas && profile.samples.length === profile.timeDeltas.length) {
    profile.samples.forEach((id, i) =>
      self.set(id, (self.get(id) ?? 0) + Math.max(0, profile.timeDeltas![i + 1] ?? profile.timeDeltas![i]!)),
    );
  } else {
    const hits = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
    const interval =
      hits > 0 && profile.endTime !== undefined && profile.startTime !== undefined
        ? (profile.endTime - profile.startTime) / hits
        : 1000;
    for (const n of profile.nodes) self.set(n.id, (n.hitCount ?? 0) * interval);
  }
  return self;
}

export function buildFrames(profile: CpuProfile): Frame | null {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = selfTimes(profile);
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  const root = profile.nodes.find((n) => !childIds.has(n.id));
  if (root === undefined) return null;
  const build = (node: CpuProfileNode): Frame | null => {
    if (node.callFrame.functionName === '(idle)') return null;
    const children = (node.children ?? [])
      .map((id) => byId.get(id))
      .filter((n): n is CpuProfileNode => n !== undefined)
      .map(build)
      .filter((f): f is Frame => f !== null && f.totalUs > 0);
    children.sort((a, b) => label(a.node).localeCompare(label(b.node)));
    const selfUs = self.get(node.id) ?? 0;
    return { node, selfUs, totalUs: selfUs + children.reduce((sum, c) => sum + c.totalUs, 0), children };
  };
  return build(root);
}

function depthOf(frame: Frame): number {
  return 1 + Math.max(0, ...frame.children.map(depthOf));
}

export function renderFlameGraph(profile: CpuProfile, title = 'CPU profile'): string {
  const root = buildFrames(profile);
  const total = root?.totalUs ?? 0;
  const depth = root === null ? 1 : depthOf(root);
  const height = 50 + depth * ROW + 20;
  const rects: string[] = [];
  const draw = (frame: Frame, x: number, level: number) => {
    const width = (frame.totalUs / total) * WIDTH;
    if (width < 0.3) return;
    const y = height - 20 - (level + 1) * ROW;
    const name = label(frame.node);
    const where = location(frame.node);
    const tip = `${name}${where ? ` (${where})` : ''}\ntotal ${(frame.totalUs / 1000).toFixed(1)} ms (${((frame.totalUs / total) * 100).toFixed(1)}%), self ${(frame.selfUs / 1000).toFixed(1)} ms`;
    const chars = Math.floor((width - 6) / CHAR);
    const text = chars >= 3 ? (name.length > chars ? `${name.slice(0, chars - 1)}…` : name) : '';
    rects.push(
      `<g><title>${escapeXml(tip)}</title><rect x="${x.toFixed(2)}" y="${y}" width="${Math.max(0.3, width - 0.5).toFixed(2)}" height="${ROW - 1}" rx="2" fill="${colour(frame.node, level)}"/>` +
        (text ? `<text x="${(x + 3).toFixed(2)}" y="${y + 12}">${escapeXml(text)}</text>` : '') +
        '</g>',
    );
    let childX = x;
    for (const child of frame.children) {
      draw(child, childX, level + 1);
      childX += (child.totalUs / total) * WIDTH;
    }
  };
  if (root !== null && total > 0) draw(root, 0, 0);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="ui-monospace, monospace" font-size="11">
<rect width="${WIDTH}" height="${height}" fill="#fff"/>
<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-family="system-ui, sans-serif" font-weight="600">${escapeXml(title)}</text>
<text x="${WIDTH / 2}" y="40" text-anchor="middle" font-family="system-ui, sans-serif" fill="#555">${(total / 1000).toFixed(0)} ms on CPU (idle left out); width is time, hover a frame for details</text>
${rects.join('\n')}
</svg>
`;
}
