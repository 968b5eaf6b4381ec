/**
 * A one-line ticker on stderr while a long command runs, only when stderr is a terminal: the report
 * (or --json) on stdout stays clean for scripts, and a pipe or log file gets no carriage returns.
 */
export interface Progress {
  /** Clears the line; safe to call more than once. */
  stop(): void;
}

export function startProgress(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
  everyMs = 1000,
): Progress {
  if (!stream.isTTY) return { stop: () => undefined };
  const started = Date.now();
  let stopped = false;
  const draw = () => {
    const seconds = Math.round((Date.now() - started) / 1000);
    stream.write(`\r${label}: working… ${seconds} s`);
  };
  draw();
  const timer = setInterval(draw, everyMs);
  timer.unref();
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      stream.write("\r\x1b[K");
    },
  };
}
