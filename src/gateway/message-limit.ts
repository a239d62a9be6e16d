/**
 * Bounds what one upstream message may make the gateway buffer. The MCP SDK's client parses a
 * response (an SSE event, or a whole JSON body) only once it is complete, so a server that sends
 * one endless event made the gateway grow until it died, taking every agent's session with it.
 * The count restarts at each blank line (the end of an SSE event); a JSON body has none, so it
 * is bounded as a whole. Linear in the bytes, one `indexOf` per line.
 */
export function limitMessageSize(body: ReadableStream<Uint8Array>, maxBytes: number, tooLarge: () => Error): ReadableStream<Uint8Array> {
  let since = 0; // bytes since the last blank line
  let line = 0; // bytes of the current line so far
  let lastByte = -1; // last byte of the current line (to tell "\r\n" from a line)
  return body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      let pos = 0;
      while (pos < chunk.length) {
        const nl = chunk.indexOf(0x0a, pos);
        const end = nl < 0 ? chunk.length : nl;
        if (end > pos) { line += end - pos; lastByte = chunk[end - 1]!; }
        since += end - pos;
        if (nl < 0) break;
        since += 1;
        if (line === 0 || (line === 1 && lastByte === 0x0d)) since = 0;
        line = 0;
        pos = nl + 1;
      }
      if (since > maxBytes) controller.error(tooLarge());
      else controller.enqueue(chunk);
    },
  }));
}
