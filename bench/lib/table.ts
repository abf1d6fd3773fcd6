/** Renders rows as a fixed-width text table (numbers right-aligned). */
export function renderTable(title: string, header: string[], rows: Array<Array<string | number>>): string {
  const cells = rows.map((row) => row.map((cell) => (typeof cell === 'number' ? formatNumber(cell) : cell)));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((row) => typeof row[i] === 'number' || row[i] === '' || row[i] === '-'));
  const line = (row: string[]) =>
    `| ${row.map((cell, i) => (numeric[i] ? (cell ?? '').padStart(widths[i]) : (cell ?? '').padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [`\n${title}`, line(header), rule, ...cells.map(line)].join('\n');
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '-';
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}
