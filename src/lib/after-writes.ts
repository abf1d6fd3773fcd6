/**
 * Runs `fn` once the requests handed to undici so far in this turn of the event loop have
 * been written to their sockets, so that work which can wait (the rest of a subscription's
 * set-up, say) runs while the upstream already works on the request, not before it is sent.
 *
 * undici writes a request on an idle keep-alive socket only in the next check phase, from a
 * `setImmediate` of its own: it first lets unsolicited bytes, a FIN or an RST already on that
 * socket be read (GHSA-35p6-xmwp-9g52). Its immediate may be queued after one queued here in
 * the same turn (the request reaches undici a few microtasks later), and immediates run in
 * order, so this waits for the check phase after the next one. A request that waits for a
 * connection or a free socket is written later still: this does not wait for it.
 */
export function afterRequestsWritten(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}
