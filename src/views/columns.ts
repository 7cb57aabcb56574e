/**
 * Text views shared by the CLI's commands and reports: aligned columns.
 */

/** Renders rows as aligned columns: the first column left-aligned, the others right-aligned. */
export function renderColumns(rows: string[][], gap = 2): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => {
          const pad = ' '.repeat(widths[i]! - [...cell].length);
          return i === 0 ? cell + pad : pad + cell;
        })
        .join(' '.repeat(gap))
        .trimEnd(),
    )
    .join('\n');
}
