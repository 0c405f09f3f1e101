/** Columns padded to their widest cell, two spaces apart: how the CLI prints lists. */
export function table(columns: readonly string[], cells: string[][]): string {
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(columns), ...cells.map(line)].join("\n");
}
