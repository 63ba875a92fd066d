/** `seqc` command line. Each command lives in its own file; exit codes: 0 ok, 1 bad input, 2 internal error. */
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { checkCommand } from "./check.ts";
import { runCommand } from "./run.ts";
import { explainCommand } from "./explain.ts";
import { compileCommand } from "./compile.ts";
import { fmtCommand } from "./fmt.ts";
import { benchCommand } from "./bench.ts";
import { UserError } from "./errors.ts";

const commands = [checkCommand, explainCommand, runCommand, compileCommand, fmtCommand, benchCommand];

async function main(): Promise<number> {
  let code = 0;
  let cli = yargs(hideBin(process.argv)).scriptName("seqc").strict().demandCommand(1, "give a command: check, explain, run or compile").help().version(false);
  for (const c of commands) {
    cli = cli.command(c.command, c.describe, c.builder as never, async (argv: unknown) => {
      code = await c.handler(argv as never);
    });
  }
  await cli.fail((msg, err) => {
    if (err) throw err;
    process.stderr.write(`seqc: ${msg}\nRun 'seqc --help' for usage.\n`);
    process.exit(1);
  }).parseAsync();
  return code;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UserError) {
      process.stderr.write(`seqc: ${e.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`seqc: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\nThis is a bug in seqc; please report it with the input that caused it.\n`);
    process.exit(2);
  },
);
