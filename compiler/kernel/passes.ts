/** A lowering is an ordered list of named passes over one context (tinygrad style): easy to read, dump and test. */
export interface Pass<C> {
  name: string;
  run(ctx: C): void;
}

export interface PassTrace {
  name: string;
  ms: number;
}

/** Run the passes in order; `trace` (when given) records what ran. */
export function runPasses<C>(ctx: C, passes: Pass<C>[], trace?: PassTrace[]): C {
  for (const p of passes) {
    const t0 = performance.now();
    try {
      p.run(ctx);
    } catch (e) {
      if (e instanceof Error) e.message = `pass '${p.name}': ${e.message}`;
      throw e;
    }
    trace?.push({ name: p.name, ms: performance.now() - t0 });
  }
  return ctx;
}
