/**
 * Sums the samples of `metric` in a Prometheus text exposition by the value of `label`
 * (e.g. `graphql_server_errors_total` by `error_type`). Samples without the label count
 * under ''.
 */
export function sumByLabel(text: string, metric: string, label: string): Record<string, number> {
  const sums: Record<string, number> = {};
  const labelPattern = new RegExp(`(?:^|,)${label}="((?:[^"\\\\]|\\\\.)*)"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric) || (line[metric.length] !== '{' && line[metric.length] !== ' ')) continue;
    const close = line.lastIndexOf('}');
    const labels = line[metric.length] === '{' ? line.slice(metric.length + 1, close) : '';
    const value = Number(line.slice((close >= 0 ? close : metric.length) + 1).trim().split(' ')[0]);
    const key = labelPattern.exec(labels)?.[1] ?? '';
    sums[key] = (sums[key] ?? 0) + (Number.isFinite(value) ? value : 0);
  }
  return sums;
}
