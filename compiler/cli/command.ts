import type { Argv } from "yargs";

/** One `seqc` sub-command: yargs spec plus a handler returning the exit code. */
export interface Command<A> {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  handler: (argv: A) => Promise<number>;
}
