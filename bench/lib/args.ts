/** `--quick` and `--only=a,b`; anything else is an error (so a typo does not run 3 minutes). */
export function parseArgs(argv: string[], rows: readonly string[]): { quick: boolean; only: Set<string> } {
  let quick = false;
  let only = new Set(rows);
  for (const arg of argv) {
    if (arg === '--quick') quick = true;
    else if (arg.startsWith('--only=')) {
      only = new Set(arg.slice('--only='.length).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
      const unknown = [...only].filter((row) => !rows.includes(row));
      if (unknown.length > 0) throw new Error(`--only: unknown row(s) ${unknown.join(', ')}; expected some of ${rows.join(',')}`);
    } else {
      throw new Error(`unknown argument ${arg}; expected --quick and/or --only=${rows.join(',')}`);
    }
  }
  return { quick, only };
}

/** `--<name>=<n>` among this process's arguments: an integer from `min` to `max`, or `fallback` when absent. */
export function countArg(name: string, fallback: number, min: number, max: number): number {
  const arg = process.argv.slice(2).find((a) => a.startsWith(`--${name}=`));
  const n = arg ? Number(arg.slice(`--${name}=`.length)) : fallback;
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}
