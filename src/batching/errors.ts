interface ErrorLike {
  name: string;
  message: string;
}

function isErrorLike(value: unknown): value is ErrorLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<ErrorLike>).name === 'string' &&
    typeof (value as Partial<ErrorLike>).message === 'string'
  );
}

/**
 * Something DataLoader treats as a failed slot. DataLoader tests `instanceof Error`, which
 * a DOMException (an AbortSignal's default reason) or an error from another realm may
 * fail: those are wrapped, keeping their name and message and the original as `cause`.
 */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (isErrorLike(value)) {
    const error = new Error(value.message, { cause: value });
    error.name = value.name;
    return error;
  }
  return new Error(String(value), { cause: value });
}

/** An `AbortError`, as fetch and undici name theirs. */
export function abortError(message: string): Error {
  const error = new Error(message);
  error.name = 'AbortError';
  return error;
}

/** Why a load whose request signal aborted fails: the signal's reason, as an Error. */
export function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason === undefined ? abortError('This operation was aborted') : toError(reason);
}
